"""Workers as ``python -m proctor.worker --serve`` processes.

Each worker gets three pipes: commands (JSON lines, written by us), results
(subunit v2, read by us), and its own stdout and stderr merged into one
(faulthandler's crash reports and stack dumps arrive there). Everything is
multiplexed on one ``selectors`` loop in the controller's thread, with no
reader threads. So nothing is decoded twice and there is no hand-off between
threads on the hot path.

Details that matter:

* **Commands never block the controller.** A ``RunTests`` for a big batch can
  be larger than a pipe's buffer, and a worker only reads commands between
  batches. A blocking write could then wait on a worker that is itself blocked
  writing results nobody reads. So commands are written without blocking and
  the rest is kept until the pipe is writable.
* **Exits are seen even if a child of the test holds the pipes open.** The
  process is watched with a pidfd (Linux) or, failing that, by a thread that
  waits for it. When it ends, whatever is left in its pipes is read, and then
  :class:`~proctor.runner.backend.Exited` is reported.
* **Each worker is a session leader** (``start_new_session``), so the
  terminal's Ctrl-C reaches only the controller (which decides what it means),
  and a **subreaper** (``PR_SET_CHILD_SUBREAPER``): killing a worker kills
  its whole tree first, then its group; a worker's group is killed when it
  exits, before it is reaped (see :mod:`proctor.runner.leftovers`).
* **Workers die with the controller.** On Linux each worker is started with
  ``PR_SET_PDEATHSIG`` (``prctl`` in the child, before ``exec``): if the
  controller dies, even by SIGKILL, the kernel kills its workers. (A worker
  also quits when its commands pipe closes, but only between tests: a hung
  test would keep it alive forever.)
* **Capture files live in a directory of the run's own** (``--capture-dir``),
  removed by :meth:`SubprocessBackend.close`: the files of workers that were
  killed, or that the controller could not salvage, do not pile up in /tmp.
  A controller killed outright cannot remove its directory: the next run's
  ``close`` removes the directories whose controller is gone
  (:func:`~proctor.runner.spawn.remove_stale_capture_dirs`).
* :meth:`SubprocessBackend.post` is safe in a signal handler: it appends to a
  deque and writes one byte to a non-blocking wake-up pipe.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from proctor.runner.backend import Exited, Message, Output, Results
from proctor.runner.leftovers import kill_marked, kill_tree
from proctor.runner.protocol import Command, encode_command
from proctor.runner.spawn import (
    Spawned,
    make_capture_dir,
    remove_capture_dir,
    remove_stale_capture_dirs,
    spawn,
    take_early,
    worker_argv,
)

__all__ = ["Spawner", "SubprocessBackend", "SubprocessWorker", "WorkerSpec", "spawn_fresh"]

Spawner = Callable[[int, Callable[[int, int], list[str]], str, "Mapping[str, str] | None"], Spawned]
"""Starts worker ``n`` with the command line ``argv(commands_fd, results_fd)`` in
``cwd`` with ``env``: :func:`spawn_fresh` (a new process), or a watch session's
warm parents (:class:`proctor.runner.watch.zygotes.ZygotePool`)."""


def spawn_fresh(
    worker: int, argv: Callable[[int, int], list[str]], cwd: str, env: Mapping[str, str] | None
) -> Spawned:
    """A new worker process (:func:`proctor.runner.spawn.spawn`)."""
    return spawn(argv, cwd, env)


_READ_SIZE = 1 << 20
COALESCE = 0.002
"""Seconds :meth:`SubprocessBackend.wait` lets pass between two returns while
results trickle in. A worker writes once per test (so that a crash loses
nothing); without this the controller woke for nearly every fast test (319
wake-ups for 1,000 tests), each costing system calls and a pass through its
loop on a machine whose cores the workers need. 2 ms is far below what a
person or a timeout notices, and a pipe's 64 KiB buffer holds hundreds of
fast tests' results."""
COALESCE_BELOW = 16 * 1024
"""...but only when the last wake-up brought less than this: bulk output (a
print storm) is read at full speed, never throttled by the pause."""
DUMP_SIGNAL = signal.SIGUSR1
"""What the worker registers with faulthandler to dump every thread's stack."""


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """How to start a worker for a project."""

    root: Path
    python: str = sys.executable
    framework: str | None = None
    test_path: str | None = None
    top_dir: str | None = None
    pytest_args: tuple[str, ...] = ()
    capture: bool = True
    env: Mapping[str, str] | None = None
    extra_args: tuple[str, ...] = field(default=())
    from_configuration: bool = False
    """The settings are the project configuration's, unchanged (nothing on the
    command line overrode them): a worker started early, which read the
    configuration itself, is the same worker (see :mod:`proctor.runner.spawn`)."""

    def argv(self, commands_fd: int, results_fd: int, capture_dir: str | None = None) -> list[str]:
        return worker_argv(
            self.python,
            commands_fd,
            results_fd,
            root=str(self.root),
            framework=self.framework,
            top_dir=self.top_dir,
            test_path=self.test_path,
            capture=self.capture,
            capture_dir=capture_dir,
            extra_args=self.extra_args,
            pytest_args=self.pytest_args,
        )


def _failed(pid: int) -> bool:
    """Whether the ended, unreaped child ``pid`` exited with a failure or a signal
    (read without reaping it: ``waitid`` with ``WNOWAIT``)."""
    waitid = getattr(os, "waitid", None)
    if waitid is None:  # pragma: no cover - not Linux
        return False
    try:
        info = waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except OSError:
        return False
    return info is not None and not (info.si_code == os.CLD_EXITED and info.si_status == 0)


class _ProcessEnded:
    """Internal: the waiter thread saw the process end (no pidfd)."""

    __slots__ = ("worker",)

    def __init__(self, worker: int) -> None:
        self.worker = worker


class SubprocessWorker:
    """One worker process and its pipes (the backend's handle for it)."""

    def __init__(self, backend: SubprocessBackend, worker: int, spawned: Spawned) -> None:
        self._backend = backend
        self.worker = worker
        self.process = spawned.process
        self.own_child = spawned.own_child
        self._commands = spawned.commands
        self._results = spawned.results
        assert self.process.stdout is not None
        self._output = self.process.stdout.fileno()
        os.set_blocking(self._results, False)
        os.set_blocking(self._output, False)
        os.set_blocking(self._commands, False)
        self._outbox = bytearray()
        self._writing = False
        self.open_fds: set[int] = {self._results, self._output}
        self.pidfd: int | None = None
        self.ended = False
        self.claimed = False  # handed to the controller (not just pre-started)

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def send(self, command: Command) -> None:
        if self._commands < 0:
            return
        self._outbox += encode_command(command)
        self.write_pending()

    def write_pending(self) -> None:
        """Write what the commands pipe takes now; wait for writability for the rest."""
        while self._outbox and self._commands >= 0:
            try:
                written = os.write(self._commands, self._outbox)
            except BlockingIOError:
                break
            except (BrokenPipeError, OSError):
                self._outbox.clear()  # the worker is gone; its exit will be reported
                break
            del self._outbox[:written]
        want = bool(self._outbox) and self._commands >= 0
        if want != self._writing:
            self._writing = want
            self._backend.watch_writes(self, self._commands, want)

    def dump_stacks(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.process.pid, DUMP_SIGNAL)

    def kill(self) -> None:
        """Kill the worker, everything its tests started first (see
        :mod:`proctor.runner.leftovers`), then its process group."""
        if self.process.returncode is None and not self.ended:
            kill_tree(self.process.pid)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)

    def close_commands(self) -> None:
        if self._commands >= 0:
            if self._writing:
                self._backend.watch_writes(self, self._commands, False)
                self._writing = False
            os.close(self._commands)
            self._commands = -1


class SubprocessBackend:
    """Starts and watches worker processes (see the module docstring)."""

    def __init__(self, spec: WorkerSpec, spawner: Spawner = spawn_fresh) -> None:
        self.spec = spec
        self._spawner = spawner
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self._selector.register(self._wake_read, selectors.EVENT_READ, None)
        self._posted: deque[Message | _ProcessEnded] = deque()
        self._workers: dict[int, SubprocessWorker] = {}
        self._pidfd = hasattr(os, "pidfd_open")
        self._closed = False
        self._last_return = 0.0
        self._last_bytes = 0
        self._early: Spawned | None = None
        early = None
        if spec.from_configuration and spec.env is None and not spec.extra_args:
            early = take_early(root=str(spec.root), python=spec.python, capture=spec.capture)
        if early is not None:
            self._early, self.capture_dir = early  # worker 0, started first thing
        else:
            self.capture_dir = make_capture_dir()
        """Where the workers' capture files go; removed with everything in it by :meth:`close`."""

    # -- WorkerBackend --------------------------------------------------------------------

    def prestart(self, count: int) -> None:
        """Start workers 0 to ``count - 1`` now, before the controller asks for them.

        The CLI calls this first thing, so the workers import the suite while the
        controller's own modules (the store, the views) are still being imported.
        """
        for worker in range(count):
            if worker not in self._workers:
                self._spawn(worker)

    def start(self, worker: int) -> SubprocessWorker:
        handle = self._workers.get(worker)
        if handle is not None and not handle.claimed:
            handle.claimed = True
            return handle
        handle = self._spawn(worker)
        handle.claimed = True
        return handle

    def _spawn(self, worker: int) -> SubprocessWorker:
        if worker == 0 and self._early is not None:
            spawned, self._early = self._early, None
        else:
            spec = self.spec
            capture_dir = self.capture_dir

            def argv(commands_fd: int, results_fd: int) -> list[str]:
                return spec.argv(commands_fd, results_fd, capture_dir)

            spawned = self._spawner(worker, argv, str(spec.root), spec.env)
        handle = SubprocessWorker(self, worker, spawned)
        self._workers[worker] = handle
        self._selector.register(handle._results, selectors.EVENT_READ, (handle, "results"))
        self._selector.register(handle._output, selectors.EVENT_READ, (handle, "output"))
        pidfd = None
        if self._pidfd:
            try:
                pidfd = os.pidfd_open(handle.process.pid)
            except OSError:
                pidfd = None
        if pidfd is not None:
            handle.pidfd = pidfd
            self._selector.register(pidfd, selectors.EVENT_READ, (handle, "exit"))
        else:
            threading.Thread(
                target=self._wait_in_thread, args=(handle,), daemon=True, name="proctor-waiter"
            ).start()
        return handle

    def wait(self, timeout: float | None) -> list[Message]:
        messages: list[Message] = []
        if self._posted:
            timeout = 0.0
        elif self._last_bytes < COALESCE_BELOW:
            # Little arrived last time: let results pile up for a moment rather
            # than waking once per fast test (see COALESCE).
            pause = COALESCE - (time.monotonic() - self._last_return)
            if pause > 0 and (timeout is None or pause < timeout):
                time.sleep(pause)
                if timeout is not None:
                    timeout -= pause
        try:
            ready = self._selector.select(timeout)
        except InterruptedError:  # pragma: no cover - PEP 475 retries; kept for safety
            ready = []
        ended: list[SubprocessWorker] = []
        for key, _ in ready:
            data = key.data
            if data is None:
                with contextlib.suppress(BlockingIOError):
                    while os.read(self._wake_read, 4096):
                        pass
                continue
            handle, what = data
            if what == "write":
                handle.write_pending()
            elif what == "exit":
                ended.append(handle)
            else:
                self._read(handle, key.fd, what, messages)
        while self._posted:
            item = self._posted.popleft()
            if isinstance(item, _ProcessEnded):
                ended.append(self._workers[item.worker])
            else:
                messages.append(item)
        for handle in ended:
            if not handle.ended:
                self._finish(handle, messages)
        self._last_return = time.monotonic()
        self._last_bytes = sum(
            len(message.data) for message in messages if isinstance(message, (Results, Output))
        )
        return messages

    def post(self, message: Message | _ProcessEnded) -> None:
        self._posted.append(message)
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_write, b"\0")

    def now(self) -> float:
        return time.monotonic()

    def time_ns(self) -> int:
        return time.time_ns()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._early is not None:  # adopted, never claimed: it is ours to end
            self._spawn(0)
        for handle in list(self._workers.values()):
            if not handle.ended:
                handle.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    handle.process.wait(timeout=5)
                self._finish(handle, [])
        self._selector.close()
        for fd in (self._wake_read, self._wake_write):
            with contextlib.suppress(OSError):
                os.close(fd)
        remove_capture_dir(self.capture_dir)
        # Those of controllers killed outright (SIGKILL, an OOM kill) are this run's to remove.
        remove_stale_capture_dirs(os.path.dirname(self.capture_dir))

    # -- internals ------------------------------------------------------------------------

    def watch_writes(self, handle: SubprocessWorker, fd: int, want: bool) -> None:
        if want:
            self._selector.register(fd, selectors.EVENT_WRITE, (handle, "write"))
        else:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(fd)

    def _read(self, handle: SubprocessWorker, fd: int, what: str, messages: list[Message]) -> None:
        try:
            data = os.read(fd, _READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            messages.append(
                Results(handle.worker, data) if what == "results" else Output(handle.worker, data)
            )
        else:
            self._close_fd(handle, fd)

    def _close_fd(self, handle: SubprocessWorker, fd: int) -> None:
        if fd in handle.open_fds:
            handle.open_fds.discard(fd)
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(fd)
            if fd == handle._output:
                assert handle.process.stdout is not None
                handle.process.stdout.close()
            else:
                os.close(fd)

    def _finish(self, handle: SubprocessWorker, messages: list[Message]) -> None:
        """The process ended: drain its pipes, release everything, report the exit."""
        handle.ended = True
        for fd, what in ((handle._results, "results"), (handle._output, "output")):
            while fd in handle.open_fds:
                try:
                    data = os.read(fd, _READ_SIZE)
                except BlockingIOError:
                    break  # a child of the test still holds it open: stop here
                except OSError:
                    data = b""
                if not data:
                    self._close_fd(handle, fd)
                    break
                messages.append(
                    Results(handle.worker, data)
                    if what == "results"
                    else Output(handle.worker, data)
                )
        for fd in list(handle.open_fds):
            self._close_fd(handle, fd)
        handle.close_commands()
        if handle.pidfd is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(handle.pidfd)
            os.close(handle.pidfd)
            handle.pidfd = None
        if handle.process.returncode is None and handle.own_child:
            # (A zygote's child is its to reap, and it does this first.)
            # Not reaped yet, so the worker's pid (its group's id) is still its own:
            # whatever stayed in its process group goes with it, and, if it died,
            # whatever its tests started that carries its mark.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(handle.process.pid, signal.SIGKILL)
            if _failed(handle.process.pid):
                kill_marked(handle.process.pid)
        returncode = handle.process.wait()
        messages.append(Exited(handle.worker, returncode))

    def _wait_in_thread(self, handle: SubprocessWorker) -> None:
        """Wait for the process to end without reaping it (``WNOWAIT``, where there
        is ``waitid``): :meth:`_finish` kills its group first, then reaps it."""
        waitid = getattr(os, "waitid", None)
        if waitid is not None:
            with contextlib.suppress(ChildProcessError, OSError):
                waitid(os.P_PID, handle.process.pid, os.WEXITED | os.WNOWAIT)
        else:  # pragma: no cover - not Linux
            handle.process.wait()
        self.post(_ProcessEnded(handle.worker))
