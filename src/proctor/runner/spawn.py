"""Starting a worker process, cheaply enough to do it first thing.

:func:`spawn` starts ``python -m proctor.worker --serve`` with its two pipes,
in a session of its own, tied to this process's life (:func:`lifeline`), and
:func:`make_capture_dir` makes the private directory for a run's capture
files. Both import nothing beyond ``os``, ``subprocess`` and ``signal`` (no
dataclasses: it imports ``inspect``), so
that ``proctor run`` can start its first worker before it imports anything
else (:func:`start_early`): the worker then imports and discovers the suite
while the controller imports click, the store and the views. The
:class:`~proctor.runner.subprocess_backend.SubprocessBackend` adopts that
worker (:func:`take_early`) when it would have started the same one.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import sys

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

TYPE_CHECKING = False  # (not typing's: importing typing costs ~5 ms on the way to the spawn)
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import IO, Protocol

    class WorkerProcess(Protocol):
        """What a backend needs of a worker process: a :class:`subprocess.Popen`,
        or a child of a watch zygote (:class:`proctor.runner.watch.zygotes.ForkedProcess`)."""

        @property
        def pid(self) -> int: ...
        @property
        def returncode(self) -> int | None: ...
        @property
        def stdout(self) -> IO[bytes] | None: ...
        def poll(self) -> int | None: ...
        def wait(self, timeout: float | None = None) -> int: ...


__all__ = [
    "Spawned",
    "discard_early",
    "lifeline",
    "make_capture_dir",
    "remove_capture_dir",
    "remove_stale_capture_dirs",
    "spawn",
    "start_early",
    "take_early",
    "tie_to_parent",
    "widen_pipe",
    "worker_argv",
]

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
_lifeline: Callable[[], None] | None = None


def lifeline(*, subreaper: bool = True) -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the kernel SIGKILL the child when this process
    dies (Linux's ``PR_SET_PDEATHSIG``) and makes the child a subreaper
    (``PR_SET_CHILD_SUBREAPER``: orphans among its descendants are re-parented to
    it, not to init, so what its tests leave running stays in its tree; see
    :mod:`proctor.runner.leftovers`). Both survive ``exec``. None where that
    cannot be had. ``subreaper=False``: only the first (a watch zygote, whose
    children are the subreapers)."""
    global _lifeline
    if not sys.platform.startswith("linux"):
        return None
    if subreaper and _lifeline is not None:
        return _lifeline
    try:
        prctl = _libc_prctl()
    except (ImportError, OSError, AttributeError):  # pragma: no cover - no libc prctl
        return None
    parent = os.getpid()

    def die_with_parent() -> None:  # runs in the child, between fork and exec
        _tie(prctl, parent, subreaper)

    if subreaper:
        _lifeline = die_with_parent
    return die_with_parent


def _tie(prctl: Callable[[int, int], int], parent: int, subreaper: bool) -> None:
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if subreaper:
        prctl(PR_SET_CHILD_SUBREAPER, 1)
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)


def tie_to_parent(parent: int, subreaper: bool = True) -> None:
    """In a process forked from ``parent`` (not exec'd: a watch zygote's child):
    what :func:`lifeline` does between fork and exec. Exits at once if ``parent``
    is already gone."""
    try:
        prctl = _libc_prctl() if sys.platform.startswith("linux") else None
    except (ImportError, OSError, AttributeError):  # pragma: no cover - no libc prctl
        prctl = None
    if prctl is not None:
        _tie(prctl, parent, subreaper)
    elif os.getppid() != parent:  # pragma: no cover - not Linux
        os._exit(1)


def _libc_prctl() -> Callable[[int, int], int]:
    """libc's ``prctl``, through ``_ctypes`` alone when it can (importing ``ctypes``
    costs 2-4 ms, on the way to starting the first worker), else through ``ctypes``."""
    try:
        import _ctypes

        class _Int(_ctypes._SimpleCData):  # type: ignore[type-arg]  # what ctypes.c_int is
            _type_ = "i"

        class _Function(_ctypes.CFuncPtr):  # what ctypes.CDLL(...).prctl is
            _flags_ = _ctypes.FUNCFLAG_CDECL
            _restype_ = _Int

        libc = _ctypes.dlopen(None, os.RTLD_NOW)  # type: ignore[arg-type]  # (this process)
        address = _ctypes.dlsym(libc, "prctl")
        function: Callable[[int, int], int] = _Function(address)
        return function
    except Exception:  # a private module: fall back to the public one
        import ctypes

        prctl: Callable[[int, int], int] = ctypes.CDLL(None).prctl
        return prctl


def worker_argv(
    python: str,
    commands_fd: int,
    results_fd: int,
    *,
    root: str | None = None,
    framework: str | None = None,
    top_dir: str | None = None,
    test_path: str | None = None,
    capture: bool = True,
    capture_dir: str | None = None,
    extra_args: tuple[str, ...] = (),
    pytest_args: tuple[str, ...] = (),
) -> list[str]:
    """The command line of a server worker (see docs/worker-protocol.md)."""
    argv = [
        python,
        "-m",
        "proctor.worker",
        "--serve",
        f"--commands-fd={commands_fd}",
        f"--results-fd={results_fd}",
    ]
    if root is not None:
        argv.append(f"--root={root}")
    if capture_dir is not None:
        argv.append(f"--capture-dir={capture_dir}")
    if framework:
        argv.append(f"--framework={framework}")
    if top_dir:
        argv.append(f"--top-dir={top_dir}")
    if test_path:
        argv.append(f"--test-path={test_path}")
    if not capture:
        argv.append("--no-capture")
    argv.extend(extra_args)
    if pytest_args:
        argv.append("--")
        argv.extend(pytest_args)
    return argv


class Spawned:
    """A started worker process and the controller's ends of its pipes.

    ``own_child``: the process is this process's child, so the backend kills its
    group before reaping it. False for a watch zygote's child: the zygote, its
    parent, does that (:mod:`proctor.runner.worker.zygote`)."""

    __slots__ = ("commands", "own_child", "process", "results")

    def __init__(
        self, process: WorkerProcess, commands: int, results: int, *, own_child: bool = True
    ) -> None:
        self.process = process
        self.commands = commands  # write end
        self.results = results  # read end
        self.own_child = own_child


def spawn(
    argv: Callable[[int, int], list[str]], cwd: str, env: Mapping[str, str] | None = None
) -> Spawned:
    """Start a worker whose command line is ``argv(commands_fd, results_fd)``.

    Its stdin is ``/dev/null``, its stdout and stderr one pipe (``process.stdout``);
    it leads a session of its own (the terminal's Ctrl-C reaches only the
    controller, and killing its process group kills what its tests started) and
    dies with this process (:func:`lifeline`).
    """
    commands_read, commands_write = os.pipe()
    results_read, results_write = os.pipe()
    widen_pipe(results_write)
    try:
        process = subprocess.Popen(
            argv(commands_read, results_write),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            pass_fds=(commands_read, results_write),
            env=dict(env) if env is not None else None,
            start_new_session=True,
            preexec_fn=lifeline(),  # only prctl between fork and exec: no locks taken
        )
    except BaseException:
        for fd in (commands_read, commands_write, results_read, results_write):
            os.close(fd)
        raise
    os.close(commands_read)
    os.close(results_write)
    return Spawned(process, commands_write, results_read)


RESULTS_PIPE_SIZE = 1024 * 1024
"""Bytes the results pipe holds, where the system lets us choose (Linux).

The default (64 KiB) holds about 500 passing tests' results; a controller busy
for a moment (writing a batch to the repository, drawing the screen) would
then stop a fast worker in its ``write``. 1 MiB (Linux's default limit for
an unprivileged process) holds about 8,000: the worker runs on, and the
controller catches up.
"""


def widen_pipe(fd: int, size: int = RESULTS_PIPE_SIZE) -> None:
    """Ask for a pipe buffer of ``size`` bytes on ``fd``; keep the default if refused."""
    setpipe = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if setpipe is None:
        return
    with contextlib.suppress(OSError):  # over /proc/sys/fs/pipe-max-size, or not Linux
        fcntl.fcntl(fd, setpipe, size)


def make_capture_dir() -> str:
    """A new private directory (mode 0700) for a run's capture files, under
    ``$TMPDIR`` (or the first of ``/tmp``, ``/var/tmp`` that is writable)."""
    bases = [os.environ.get(name) for name in ("TMPDIR", "TEMP", "TMP")]
    for base in [*(b for b in bases if b), "/tmp", "/var/tmp", os.getcwd()]:
        for _ in range(10):
            path = os.path.join(base, f"{CAPTURE_PREFIX}{os.getpid()}-{os.urandom(4).hex()}")
            try:
                os.mkdir(path, 0o700)
            except FileExistsError:
                continue
            except OSError:
                break
            return path
    raise OSError("no writable directory for the workers' capture files")


def remove_capture_dir(path: str) -> None:
    """Remove a capture directory and the files in it (workers do not make subdirectories)."""
    try:
        entries = list(os.scandir(path))
    except OSError:
        return
    for entry in entries:
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
    try:
        os.rmdir(path)
    except OSError:
        import shutil

        shutil.rmtree(path, ignore_errors=True)


CAPTURE_PREFIX = "proctor-run-"
"""Capture directories are ``proctor-run-<controller pid>-<random>``."""
CLOCK_SLACK = 2.0
"""Seconds of doubt between a process's start time (``/proc``) and a file's time."""


def remove_stale_capture_dirs(base: str) -> list[str]:
    """Remove the capture directories in ``base`` left by controllers that are gone
    (killed outright: nothing of theirs ran to remove them). The removed paths.

    A directory is stale when it is this user's, and the pid in its name is not a
    running process, or is one that started after the directory was last
    modified (the pid was reused: the controller that made it started before
    it). A directory of a run going on now is never touched, nor one this
    process cannot judge (another user's, a pid it may not signal).
    """
    removed: list[str] = []
    try:
        entries = list(os.scandir(base))
    except OSError:
        return removed
    uid = os.getuid()
    me = os.getpid()
    for entry in entries:
        name = entry.name
        if not name.startswith(CAPTURE_PREFIX):
            continue
        pid_text = name[len(CAPTURE_PREFIX) :].partition("-")[0]
        if not pid_text.isdigit() or int(pid_text) == me:
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if info.st_uid != uid or not entry.is_dir(follow_symlinks=False):
            continue
        if _owner_alive(int(pid_text), info.st_mtime):
            continue
        remove_capture_dir(entry.path)
        removed.append(entry.path)
    return removed


def _owner_alive(pid: int, modified: float) -> bool:
    """Whether process ``pid`` may be the one that made a directory last modified
    at ``modified`` (epoch seconds)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: not ours to judge
    started = _start_time(pid)
    return started is None or started <= modified + CLOCK_SLACK


def _start_time(pid: int) -> float | None:
    """When ``pid`` started (epoch seconds), from ``/proc``; None where unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        with open("/proc/stat", "rb") as system:
            boot = next(line for line in system if line.startswith(b"btime "))
        ticks = os.sysconf("SC_CLK_TCK")
        return int(boot.split()[1]) + int(fields[19]) / ticks
    except (OSError, ValueError, IndexError, StopIteration):
        return None


# -- the first worker, started before the rest of proctor is imported -----------------------


class _Early:
    __slots__ = ("adopted", "capture", "capture_dir", "cwd", "python", "spawned")

    def __init__(
        self, spawned: Spawned, python: str, cwd: str, capture: bool, capture_dir: str
    ) -> None:
        self.spawned = spawned
        self.python = python
        self.cwd = cwd
        self.capture = capture
        self.capture_dir = capture_dir
        self.adopted = False


_early: _Early | None = None


def start_early(*, capture: bool = True) -> None:
    """Start worker 0 now, configured by the project itself (no ``--root``, no
    ``--framework``: the worker reads the configuration of the project around the
    working directory, as the controller will). Nothing happens if one was started."""
    global _early
    if _early is not None:
        return
    capture_dir = make_capture_dir()
    python = sys.executable
    cwd = os.getcwd()

    def argv(commands_fd: int, results_fd: int) -> list[str]:
        return worker_argv(
            python, commands_fd, results_fd, capture=capture, capture_dir=capture_dir
        )

    try:
        spawned = spawn(argv, cwd)
    except BaseException:
        remove_capture_dir(capture_dir)
        raise
    _early = _Early(spawned, python, cwd, capture, capture_dir)
    atexit.register(discard_early)


def take_early(*, root: str, python: str, capture: bool) -> tuple[Spawned, str] | None:
    """The early worker and its capture directory, if it is the worker a backend
    would start for the project at ``root`` configured by its configuration alone
    (the caller checks that), with this Python and capture setting: then it is the
    caller's to use and to end. None otherwise."""
    early = _early
    if early is None or early.adopted:
        return None
    if python != early.python or capture != early.capture:
        return None
    from pathlib import Path

    from proctor.config import find_root

    if str(find_root(Path(early.cwd))) != root:
        return None  # (the worker finds its root as the controller does: the same one)
    early.adopted = True
    return early.spawned, early.capture_dir


def discard_early() -> None:
    """End an early worker nobody adopted, and remove its capture directory (at exit)."""
    early = _early
    if early is None or early.adopted:
        return
    early.adopted = True  # (once)
    process = early.spawned.process
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
    for fd in (early.spawned.commands, early.spawned.results):
        with contextlib.suppress(OSError):
            os.close(fd)
    remove_capture_dir(early.capture_dir)
