"""Warm parents for ``proctor watch``'s workers: one zygote per worker slot.

A :class:`ZygotePool` is a :data:`~proctor.runner.subprocess_backend.Spawner`:
a watch session's backends ask it for a worker and it forks one from a zygote
(:mod:`proctor.runner.worker.zygote`) that has no child running, starting one
when all are busy; so a session has as many zygotes as it ran workers at once
(a replacement for a crashed worker comes from the crashed one's zygote). The
child is an ordinary server worker on pipes made here, as
:func:`proctor.runner.spawn.spawn` makes them, so the controller, the protocol,
Ctrl-C, ``--timeout``, the debugger's stdin and crash replacement see no
difference; only its parent is the zygote, which reaps it and sends its exit
status (:class:`ForkedProcess` stands for the :class:`subprocess.Popen`).

What the zygotes import is learned: each child reports, as it exits, the
modules it imported that are not the project's; its zygote imports them
between cycles, and the pool remembers them (in order) so that a new zygote
imports them at once. A zygote that refuses to fork (stale: a file it imported
changed; or a module started a thread in it) is replaced; a module that starts
a thread is never imported by a zygote again. When forking fails three times
in a row for a slot, that request is served by :func:`~proctor.runner.spawn.spawn`,
and after ten failures the pool spawns only (it says so once).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from typing import IO

from proctor.runner.spawn import Spawned, lifeline, spawn, widen_pipe

__all__ = ["ForkedProcess", "ZygotePool", "fork_server_available"]

PACKET = 1 << 20
REPLY_TIMEOUT = 60.0
"""Seconds to wait for a zygote's answer (it may be importing a big module)."""
ATTEMPTS = 3
GIVE_UP = 10
WORKER_MODULE = ("-m", "proctor.worker")


def fork_server_available() -> bool:
    """Whether this system can run zygotes (Linux: fork, pidfds, descriptor passing)."""
    return (
        hasattr(os, "fork")
        and hasattr(os, "pidfd_open")
        and hasattr(socket, "send_fds")
        and hasattr(socket, "SOCK_SEQPACKET")
        and os.path.isdir("/proc/self/task")
    )


class ZygoteGone(Exception):
    """The zygote is not there to answer."""


class _Zygote:
    """The controller's end of one zygote process."""

    def __init__(self, python: str, root: str, env: Mapping[str, str] | None) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.process = subprocess.Popen(
                [
                    python,
                    "-m",
                    "proctor.runner.worker.zygote",
                    f"--control-fd={theirs.fileno()}",
                    f"--root={root}",
                ],
                cwd=root,
                env=dict(env) if env is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,  # out of the terminal's reach, as workers are
                preexec_fn=lifeline(subreaper=False),  # its children are the subreapers
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.socket = ours
        self.statuses: dict[int, int] = {}
        self.children: list[ForkedProcess] = []
        self.learned: list[str] = []
        self.rewrite: list[object] = []  # how pytest rewrote asserts in a child, as reported
        self.threaded: list[str] = []
        self.gone = False

    def send(self, message: dict[str, object], fds: list[int] | None = None) -> None:
        data = json.dumps(message).encode()
        try:
            if fds:
                socket.send_fds(self.socket, [data], fds)
            else:
                self.socket.send(data)
        except OSError as error:
            self.gone = True
            raise ZygoteGone(str(error)) from None

    def receive(self, timeout: float | None) -> dict[str, object] | None:
        """The next answer or report (reports are filed); None after ``timeout``."""
        if self.gone:
            raise ZygoteGone("it exited")
        self.socket.settimeout(timeout)
        try:
            data = self.socket.recv(PACKET)
        except (TimeoutError, BlockingIOError):
            return None
        except OSError:
            data = b""
        if not data:
            self.gone = True
            raise ZygoteGone("it exited")
        message: dict[str, object] = json.loads(data)
        op = message.get("op")
        if op == "exited":
            self.statuses[int(message["pid"])] = int(message["code"])  # type: ignore[call-overload]
        elif op == "learned":
            self.learned.extend(str(name) for name in message["modules"])  # type: ignore[attr-defined]
            if "rewrite" in message:
                self.rewrite.append(message["rewrite"])
        elif op == "threaded":
            self.threaded.append(str(message["module"]))
        return message

    def answer(self) -> dict[str, object]:
        """Wait for the answer to a request (filing the reports that come first)."""
        deadline = time.monotonic() + REPLY_TIMEOUT
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise ZygoteGone("it did not answer")
            message = self.receive(left)
            if message is not None and message.get("op") in ("forked", "refused"):
                return message

    def status(self, pid: int, timeout: float | None) -> int | None:
        """The exit status of child ``pid``; None if not known within ``timeout``.
        Its children die with a zygote that is gone (SIGKILL)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while pid not in self.statuses:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            try:
                self.receive(REPLY_TIMEOUT if left is None else left)
            except ZygoteGone:
                return self.statuses.setdefault(pid, -signal.SIGKILL)
        return self.statuses[pid]

    def drain(self) -> None:
        """File the reports that are there (without waiting)."""
        with contextlib.suppress(ZygoteGone):
            while self.receive(0.0) is not None:
                pass

    def busy(self) -> bool:
        """Whether a child of this zygote is still running (or not reaped yet)."""
        self.children = [child for child in self.children if child.returncode is None]
        return bool(self.children)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(self.process.pid, signal.SIGKILL)

    def close(self) -> None:
        """End it (its children with it) and reap it."""
        self.socket.close()  # end of requests: it kills its children and exits
        self.gone = True
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            self.process.wait()


class ForkedProcess:
    """A worker forked by a zygote, as a backend sees a :class:`subprocess.Popen`.

    Its zygote reaps it and sends the status; :meth:`wait` waits for that."""

    def __init__(self, pid: int, zygote: _Zygote, output: int) -> None:
        self.pid = pid
        self._zygote = zygote
        self.stdout: IO[bytes] | None = os.fdopen(output, "rb", buffering=0)
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self._zygote.drain()
            self.returncode = self._zygote.statuses.pop(self.pid, None)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            code = self._zygote.status(self.pid, timeout)
            if code is None:
                raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout or 0.0)
            self._zygote.statuses.pop(self.pid, None)
            self.returncode = code
        return self.returncode


class ZygotePool:
    """One zygote per worker slot for a watch session (see the module docstring).

    ``notify`` gets a line for the user when the pool stops forking."""

    def __init__(self, root: str, notify: Callable[[str], None] | None = None) -> None:
        self.root = root
        self.notify = notify
        self.modules: list[str] = []
        """What the zygotes import, in order (learned from their children)."""
        self.excluded: set[str] = set()
        """Modules that started a thread when a zygote imported them."""
        self.rewrite: list[object] = []
        """How pytest rewrote asserts in the last pytest child (empty: not known yet):
        a new zygote sets pytest's rewriter up so before importing anything."""
        self.zygotes: list[_Zygote] = []
        self.failures = 0
        self.disabled: str | None = None
        self.forks = 0
        self.restarts = 0

    def __call__(
        self,
        worker: int,
        argv: Callable[[int, int], list[str]],
        cwd: str,
        env: Mapping[str, str] | None,
    ) -> Spawned:
        """Worker ``worker``, forked from its slot's zygote (a :data:`Spawner`)."""
        command = argv(-1, -1)  # the child puts its own descriptors in
        if self.disabled is None and tuple(command[1:3]) == WORKER_MODULE:
            for _ in range(ATTEMPTS):
                zygote = self._zygote(command[0], env)
                try:
                    spawned = self._fork(zygote, command[3:], cwd)
                except ZygoteGone:
                    spawned = None
                if spawned is not None:
                    self.forks += 1
                    return spawned
                self._retire(zygote)
                self.failures += 1
                if self.failures >= GIVE_UP:
                    self._disable("the warm parents kept failing")
                    break
        return spawn(argv, cwd, env)

    def _fork(self, zygote: _Zygote, args: list[str], cwd: str) -> Spawned | None:
        zygote.drain()
        self._learn(zygote)
        commands_read, commands_write = os.pipe()
        results_read, results_write = os.pipe()
        output_read, output_write = os.pipe()
        widen_pipe(results_write)
        ours = (commands_write, results_read, output_read)
        theirs = [commands_read, results_write, output_write]
        try:
            zygote.send({"op": "fork", "argv": args, "cwd": cwd}, theirs)
            for fd in theirs:
                os.close(fd)
            theirs = []
            answer = zygote.answer()
        except BaseException:
            for fd in (*ours, *theirs):
                os.close(fd)
            raise
        self._learn(zygote)
        if answer.get("op") != "forked":
            for fd in ours:
                os.close(fd)
            return None
        process = ForkedProcess(int(answer["pid"]), zygote, output_read)  # type: ignore[call-overload]
        zygote.children.append(process)
        return Spawned(process, commands_write, results_read, own_child=False)

    def _zygote(self, python: str, env: Mapping[str, str] | None) -> _Zygote:
        """The first zygote with no child running (a new one if all are busy)."""
        for zygote in list(self.zygotes):
            if zygote.gone or zygote.process.poll() is not None:
                self._retire(zygote)
            elif not zygote.busy():
                return zygote
        zygote = _Zygote(python, self.root, env)
        self.zygotes.append(zygote)
        modules = [m for m in self.modules if m not in self.excluded]
        if modules or self.excluded or self.rewrite:
            preload: dict[str, object] = {
                "op": "preload",
                "modules": modules,
                "exclude": sorted(self.excluded),
            }
            if self.rewrite:
                preload["rewrite"] = self.rewrite[-1]
            zygote.send(preload)
        return zygote

    def _learn(self, zygote: _Zygote) -> None:
        if zygote.threaded:
            for name in zygote.threaded:
                self.excluded.add(name)
            zygote.threaded.clear()
        if zygote.rewrite:
            self.rewrite[:] = zygote.rewrite[-1:]
            zygote.rewrite.clear()
        if zygote.learned:
            known = set(self.modules)
            self.modules.extend(m for m in zygote.learned if m not in known)
            zygote.learned.clear()

    def _retire(self, zygote: _Zygote) -> None:
        self.zygotes.remove(zygote)
        zygote.drain()
        self._learn(zygote)
        zygote.close()
        self.restarts += 1

    def _disable(self, why: str) -> None:
        self.disabled = why
        if self.notify is not None:
            self.notify(f"[watch] {why}: starting fresh workers from now on.")

    def close(self) -> None:
        """End every zygote (and any child still running) and reap them."""
        while self.zygotes:
            self.zygotes.pop().close()
