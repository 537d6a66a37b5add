"""The warm parent of ``proctor watch``'s workers: a fork server (a "zygote").

``python -m proctor.runner.worker.zygote --control-fd=N --root=R`` imports the
worker's own modules, then serves one controller over a Unix socket (packets
of JSON, see below). It never imports the project's own code: it imports, in
the background, the modules its children reported as *not the project's*
(the standard library, site-packages and whatever lies outside the project
root), and for each ``fork`` request forks a child that becomes an ordinary
server worker (:func:`proctor.runner.worker.main.main`) on the pipes the
controller sent with the request. The child imports the project's modules
itself, so its results are those of a freshly spawned worker; it only skips
the imports its parent already did.

Requests (controller to zygote; one JSON object per packet):

* ``{"op": "fork", "argv": [...], "cwd": ...}`` with three descriptors
  (commands read end, results write end, output write end). Answer
  ``{"op": "forked", "pid": N}``, or ``{"op": "refused", "why": ...}`` when this
  zygote must not fork (a thread is running in it; a file it imported changed
  since: it is stale) and exits: the controller starts a new one.
* ``{"op": "preload", "modules": [...], "exclude": [...]}``: import these (names
  the controller knows from an earlier zygote), in the background; never import
  the excluded ones (an earlier zygote found they start a thread), not even when
  a child reports them.

* ``{"op": "session", "argv": [...], "cwd": ..., "fixtures": [[name, node id], ...]}``
  with one descriptor (a control socket): once its imports are done, fork a
  *session zygote* on that socket (:mod:`.warm_session`: a pytest session kept
  warm, its session fixtures set up), which serves ``fork`` requests as this
  one does and says ``{"op": "warm", "fixtures": [...]}`` when ready, or
  ``{"op": "cold", "why": ..., "fixture": F}`` (and ends) when it cannot keep
  the session (``F``: the fixture that did something outside the process).
  This zygote reports ``{"op": "session", "pid": N}``, reaps it and reports
  its exit as for a worker.

Reports (zygote to controller): ``{"op": "exited", "pid": N, "code": C}`` once
a child ended and was reaped (``C`` as :attr:`subprocess.Popen.returncode`);
``{"op": "learned", "modules": [...], "rewrite": ..., "fixtures": [...]}`` when a
child reported modules this zygote did not hold (and, a pytest child, how pytest
rewrote asserts and the session fixtures it set up); ``{"op": "threaded",
"module": M}`` when importing ``M`` started a thread (the zygote then refuses
to fork).

Safety rules, each for a reason:

* **No threads at fork.** Before each fork the zygote checks that it has one
  thread (``/proc/self/task``); a module that starts one on import is reported
  and the zygote refuses to fork. The zygote's own loop is a single ``select``.
* **Never stale.** Before each fork every file of every module it holds is
  ``stat``-ed and compared with what it was at import; any change (an edited
  third-party module, a reinstalled package, proctor itself edited when it is
  the project) makes it refuse: a new zygote imports the new code.
* **Nothing leaks into the child** but what a spawned worker would have: the
  zygote's socket, pidfds and report pipes are closed in it, its stdin is
  ``/dev/null``, its stdout and stderr the output pipe, it leads a session of
  its own, dies with the zygote (``PR_SET_PDEATHSIG``) and is a subreaper, as a
  spawned worker is (:func:`proctor.runner.spawn.lifeline`).
* **Reaped as the controller would reap a worker**: when a child ends, its
  process group is killed, then what carries its mark if it failed
  (:mod:`proctor.runner.leftovers`), then it is reaped and its status sent.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import importlib.util
import json
import os
import select
import signal
import socket
import sys
from collections.abc import Callable, Collection, Sequence
from typing import NamedTuple

from proctor.runner import fastexit
from proctor.runner.worker.rewriting import Rewriting

__all__ = ["COMMANDS_FD_SLOT", "RESULTS_FD_SLOT", "main", "warm_modules"]

COMMANDS_FD_SLOT = "--commands-fd="
RESULTS_FD_SLOT = "--results-fd="
PACKET = 1 << 20
"""Largest packet read from the control socket (a module list of a big suite)."""

_WORKER_MODULES = ("proctor.runner.worker.main", "proctor.runner.worker.server", "unittest")


def warm_modules(
    root: str, rewritten: bool = False, held: Collection[str] = frozenset()
) -> list[str]:
    """The modules of this process that a zygote for the project at ``root`` may
    hold, in the order they were imported: those not under ``root``, or under it
    but in an installation directory (a virtual environment inside the project).
    Not ``__main__``; what pytest rewrote (plugins' distributions) only with
    ``rewritten`` (the zygote then imports them through pytest's rewriter,
    :mod:`proctor.runner.worker.rewriting`; a zygote that imported them plainly
    would keep pytest from rewriting them). Modules in ``held`` (what the zygote
    held when it forked this process) are left out: it knows them."""
    root = os.path.join(os.path.realpath(root), "")
    installed = tuple(os.path.join(os.path.realpath(p), "") for p in _install_dirs())
    names = []
    modules = list(sys.modules.items())
    left = set()
    if not rewritten:
        left = {  # (a package pytest rewrote in part is left to it whole)
            name.partition(".")[0]
            for name, module in modules
            if type(getattr(module, "__loader__", None)).__name__ == "AssertionRewritingHook"
        }
    real_dirs: dict[str, str] = {}
    for name, module in modules:
        if name == "__main__" or module is None or name.partition(".")[0] in left:
            continue
        if name in held:
            continue
        path = getattr(module, "__file__", None)
        if path is None:
            spec = getattr(module, "__spec__", None)
            origin = getattr(spec, "origin", None)
            if origin not in ("built-in", "frozen"):
                continue  # a namespace package, or a module made in memory
            names.append(name)
            continue
        directory, base = os.path.split(path)
        if directory not in real_dirs:
            real_dirs[directory] = os.path.realpath(directory)
        real = os.path.join(real_dirs[directory], base)
        if real.startswith(root) and not real.startswith(installed):
            continue
        names.append(name)
    return names


def _install_dirs() -> list[str]:
    """The standard library's and site-packages' directories (not whole prefixes:
    a project may live under ``/usr/local``)."""
    import site
    import sysconfig

    paths = sysconfig.get_paths()
    dirs = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    with contextlib.suppress(AttributeError):  # (an old virtualenv's site module)
        dirs.update(site.getsitepackages())
    return sorted(dirs)


class _Child(NamedTuple):
    pid: int
    pidfd: int
    report: int


class Task(NamedTuple):
    """What a forked child of a zygote is to become."""

    kind: str
    """``worker`` (a server worker) or ``session`` (a session zygote)."""
    argv: list[str]
    cwd: str
    fds: dict[str, int]
    fixtures: list[tuple[str, str]]
    """For a session zygote: the session fixtures to set up (name, node id)."""


class Zygote:
    """The loop of the zygote process (see the module docstring)."""

    def __init__(self, control: socket.socket, root: str) -> None:
        self.control = control
        self.root = root
        self.children: dict[int, _Child] = {}  # by pidfd
        self.reports: dict[int, bytearray] = {}  # report read end -> bytes so far
        self.sessions: dict[int, _Child] = {}  # session zygotes forked from here, by pidfd
        self.session_requests: list[tuple[dict[str, object], int]] = []  # after the imports
        self.role = "base"  # or "session": a session zygote (warm_session)
        self.checks: list[Callable[[], str | None]] = []  # more reasons to refuse a fork
        self.stopping = False
        self.held_at_fork: frozenset[str] = frozenset()  # in a child: its zygote's modules
        self.pending: list[str] = []
        self.held: set[str] = set(sys.modules)
        self.files: dict[str, tuple[int, int]] = {}
        self.threaded: str | None = None
        self.excluded: set[str] = set()  # modules known to start a thread: never imported
        self.rewriting: Rewriting | None = None  # pytest's assertion rewriter, once told
        self.spoiled: str | None = None  # why children would differ from pytest's own import
        self._dirty = True  # modules imported since the last snapshot
        self._snapshot()

    # -- the loop ------------------------------------------------------------------

    def serve(self) -> Task | None:
        """Serve until the controller goes (or a session zygote must end); in a
        forked child, return what the child is to become."""
        while True:
            if self.session_requests and not self.pending:
                request, fd = self.session_requests.pop(0)
                task = self._fork_session(request, fd)
                if task is not None:
                    return task
            watched = [self.control.fileno(), *self.children, *self.reports, *self.sessions]
            timeout = 0.0 if self.pending and not self.children else None
            ready, _, _ = select.select(watched, [], [], timeout)
            for fd in ready:
                if fd in self.children:
                    self._reap(self.children.pop(fd))
                elif fd in self.sessions:
                    self._reap(self.sessions.pop(fd))
            for fd in ready:
                if fd in self.reports:
                    self._read_report(fd)
            if self.control.fileno() in ready:
                try:
                    data, fds, _, _ = socket.recv_fds(self.control, PACKET, 4)
                except OSError:
                    data, fds = b"", []
                if not data:
                    self._shut_down()
                    return None
                task = self._obey(json.loads(data), fds)
                if task is not None:
                    return task
                if self.stopping:
                    return None
            if not ready and self.pending and not self.children:
                self._import_next()

    def _obey(self, request: dict[str, object], fds: list[int]) -> Task | None:
        op = request.get("op")
        if op == "session" and len(fds) == 1 and self.role == "base":
            self.session_requests.append((request, fds[0]))  # once the imports are done
            return None
        if op == "preload":
            excluded = request.get("exclude")
            if isinstance(excluded, list):
                self.excluded.update(str(name) for name in excluded)
            if "rewrite" in request:  # before any import it would have rewritten
                self._rewrite(request["rewrite"])
            modules = request.get("modules")
            if isinstance(modules, list):
                self._want([str(name) for name in modules])
            return None
        if op != "fork" or len(fds) != 3:
            for fd in fds:
                os.close(fd)
            return None
        why = self._unsafe()
        if why is not None:
            for fd in fds:
                os.close(fd)
            self.send({"op": "refused", "why": why})
            self._shut_down()
            if self.role == "session":  # it ends its pytest session: fixtures torn down
                self.stopping = True
                return None
            os._exit(0)
        argv = [str(item) for item in request["argv"]]  # type: ignore[attr-defined]
        cwd = str(request["cwd"])
        report_read, report_write = os.pipe()
        settled_read, settled_write = os.pipe()
        _flush_std()
        pid = os.fork()
        if pid == 0:  # the child: it becomes a worker
            self.held_at_fork = frozenset(sys.modules)
            os.close(report_read)
            os.close(settled_read)
            commands, results, output = fds
            descriptors = {
                "commands": commands,
                "results": results,
                "output": output,
                "report": report_write,
                "settled": settled_write,
            }
            return Task("worker", argv, cwd, descriptors, [])
        os.close(report_write)
        os.close(settled_write)
        for fd in fds:
            os.close(fd)
        # Answer once the child leads its own session: the controller may kill
        # its process group as soon as it knows the pid.
        with contextlib.suppress(OSError):
            os.read(settled_read, 1)
        os.close(settled_read)
        pidfd = os.pidfd_open(pid)
        self.children[pidfd] = _Child(pid, pidfd, report_read)
        self.reports[report_read] = bytearray()
        self.send({"op": "forked", "pid": pid})
        return None

    def _fork_session(self, request: dict[str, object], fd: int) -> Task | None:
        """Fork a session zygote (:mod:`.warm_session`) for ``request``; its
        control socket is ``fd``. The pool hears of it as ``{"op": "session"}``."""
        why = self._unsafe()
        if why is not None:
            with contextlib.suppress(OSError):
                socket.socket(fileno=fd).close()
            return None
        argv = [str(item) for item in request.get("argv", [])]  # type: ignore[attr-defined]
        fixtures = [
            (str(pair[0]), str(pair[1]))
            for pair in request.get("fixtures", [])  # type: ignore[attr-defined]
            if isinstance(pair, list) and len(pair) == 2
        ]
        _flush_std()
        pid = os.fork()
        if pid == 0:
            return Task("session", argv, str(request.get("cwd", ".")), {"control": fd}, fixtures)
        os.close(fd)
        pidfd = os.pidfd_open(pid)
        self.sessions[pidfd] = _Child(pid, pidfd, -1)
        self.send({"op": "session", "pid": pid})
        return None

    def private_fds(self) -> list[int]:
        """The zygote's own descriptors, which a child must not keep."""
        return [self.control.fileno(), *self.children, *self.reports, *self.sessions]

    # -- safety --------------------------------------------------------------------

    def _unsafe(self) -> str | None:
        if self.threaded is not None:
            return f"importing {self.threaded} started a thread"
        if self.spoiled is not None:
            return self.spoiled
        self._snapshot()
        if _threads() > 1:
            return "a thread is running in the warm parent"
        for path, seen in self.files.items():
            try:
                info = os.stat(path)
            except OSError:
                return f"{path} is gone"
            if (info.st_mtime_ns, info.st_size) != seen:
                return f"{path} changed"
        for check in self.checks:
            why = check()
            if why is not None:
                return why
        return None

    def mark_imported(self) -> None:
        """Modules were imported outside :meth:`_import_next` (a session's set-up)."""
        self._dirty = True

    def _snapshot(self) -> None:
        """Remember the file of every module held, as it is now (those imported
        since the last time)."""
        if not self._dirty:
            return
        self._dirty = False
        for module in list(sys.modules.values()):
            path = getattr(module, "__file__", None)
            if path is None or path in self.files:
                continue
            try:
                info = os.stat(path)
            except OSError:
                continue
            self.files[path] = (info.st_mtime_ns, info.st_size)

    # -- learning --------------------------------------------------------------------

    def _want(self, names: Sequence[str]) -> None:
        new = [
            n
            for n in names
            if n not in self.held and n not in sys.modules and n not in self.excluded
        ]
        if new:
            self.held.update(new)
            self.pending.extend(new)

    def _import_next(self) -> None:
        name = self.pending.pop(0)
        if name not in sys.modules:
            self._dirty = True
            with contextlib.suppress(Exception, SystemExit):
                importlib.import_module(name)
            if self.threaded is None and _threads() > 1:
                self.threaded = name
                self.send({"op": "threaded", "module": name})
        if not self.pending:
            self._snapshot()
            gc.collect()
            gc.freeze()  # what the children inherit is never touched by their collector

    def _read_report(self, fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b""
        if data:
            self.reports[fd] += data
            return
        raw = bytes(self.reports.pop(fd))
        os.close(fd)
        try:
            report = json.loads(raw) if raw else {}
        except ValueError:
            report = {}
        if not isinstance(report, dict):
            report = {"modules": report}
        names = report.get("modules")
        names = names if isinstance(names, list) else []
        learned: dict[str, object] = {"op": "learned"}
        if "rewrite" in report:  # a pytest child: how pytest rewrote asserts in it
            learned["rewrite"] = report["rewrite"]
            self._rewrite(report["rewrite"])
        new = [str(n) for n in names if n not in self.held and n not in sys.modules]
        if new:
            self._want(new)
        learned["modules"] = new
        if report.get("fixtures"):
            learned["fixtures"] = report["fixtures"]
        if new or len(learned) > 2:
            self.send(learned)

    def _rewrite(self, spec: object) -> None:
        """Import what pytest rewrites as pytest would (``spec`` from a child:
        :func:`proctor.runner.worker.warmth.rewrite_spec`); a zygote that
        imported it otherwise is spoiled (it refuses to fork and is replaced)."""
        if self.spoiled is not None:
            return
        if not isinstance(spec, dict):  # the children do not rewrite (--assert=plain)
            if self.rewriting is not None and self.rewriting.rewrote():
                self.spoiled = "pytest no longer rewrites asserts in the workers"
            return
        try:
            if self.rewriting is None:
                self.rewriting = Rewriting(spec)
                self.spoiled = self.rewriting.spoiled
            else:
                self.spoiled = self.rewriting.update(spec)
        except Exception as error:  # pytest's internals moved: leave it to the children
            self.spoiled = f"pytest's assertion rewriter could not be set up: {error}"

    # -- children ------------------------------------------------------------------

    def _reap(self, child: _Child) -> None:
        from proctor.runner.leftovers import kill_marked

        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGKILL)  # what stayed in its group
        if _failed(child.pid):
            kill_marked(child.pid)
        _, status = os.waitpid(child.pid, 0)
        os.close(child.pidfd)
        self.send({"op": "exited", "pid": child.pid, "code": os.waitstatus_to_exitcode(status)})

    def _shut_down(self) -> None:
        for child in [*self.children.values(), *self.sessions.values()]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(child.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(child.pid, 0)
            os.close(child.pidfd)
        self.children.clear()
        self.sessions.clear()
        for _, fd in self.session_requests:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.session_requests.clear()
        for fd in self.reports:
            os.close(fd)
        self.reports.clear()

    def send(self, message: dict[str, object]) -> None:
        with contextlib.suppress(OSError):
            self.control.send(json.dumps(message).encode())


def _failed(pid: int) -> bool:
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except OSError:
        return False
    return info is not None and not (info.si_code == os.CLD_EXITED and info.si_status == 0)


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:  # pragma: no cover - no /proc
        import threading

        return threading.active_count()


def _flush_std() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()


# -- the child -----------------------------------------------------------------------------


def _worker_process(zygote: Zygote, parent: int, task: Task) -> list[str]:
    """In a forked child: set the process up as :func:`proctor.runner.spawn.spawn`
    sets a spawned worker up; the worker's command line."""
    from proctor.runner.spawn import tie_to_parent
    from proctor.runner.worker import channels

    fds = task.fds
    os.setsid()
    tie_to_parent(parent)  # dies with the zygote; a subreaper, as a spawned worker is
    os.close(fds["settled"])  # (the zygote answers the controller now)
    for fd in zygote.private_fds():
        with contextlib.suppress(OSError):
            os.close(fd)
    output = fds["output"]
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.close(output)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    channels.forget_fork()  # this child is the worker, not a test's stray child
    # What the zygote froze stays frozen (gc.freeze's advice for a fork server):
    # the child's collector never touches, so never copies, the zygote's objects.
    importlib.invalidate_caches()  # directories may have changed since the zygote looked
    os.chdir(task.cwd)
    argv = [
        f"{COMMANDS_FD_SLOT}{fds['commands']}"
        if item.startswith(COMMANDS_FD_SLOT)
        else f"{RESULTS_FD_SLOT}{fds['results']}"
        if item.startswith(RESULTS_FD_SLOT)
        else item
        for item in task.argv
    ]
    spec = importlib.util.find_spec("proctor.worker")
    sys.argv = [spec.origin if spec is not None and spec.origin else "-m", *argv]  # as spawned
    if zygote.rewriting is not None:
        zygote.rewriting.remove()  # pytest installs its own
    os.set_inheritable(fds["report"], False)
    return argv


def _report(zygote: Zygote, report: int) -> None:
    """The child's last word to its zygote: what it may hold for the next ones."""
    with contextlib.suppress(OSError):
        from proctor.runner.worker.channels import write_all
        from proctor.runner.worker.warmth import LEARNED

        modules = warm_modules(
            zygote.root, rewritten=LEARNED.rewrite is not None, held=zygote.held_at_fork
        )
        write_all(report, json.dumps(LEARNED.report(modules)).encode())
    with contextlib.suppress(OSError):
        os.close(report)


def _become_worker(zygote: Zygote, parent: int, task: Task) -> int:
    """In a forked child: become a worker and run; its exit status."""
    argv = _worker_process(zygote, parent, task)
    from proctor.runner.worker.main import main as worker_main

    code = worker_main(argv)
    _report(zygote, task.fds["report"])
    return code


def _become_session(zygote: Zygote, parent: int, task: Task) -> int:
    """In a forked child: become a session zygote (:mod:`.warm_session`) on the
    control socket the request came with; in its forked children, their exit status."""
    from proctor.runner.spawn import tie_to_parent

    os.setsid()  # a group of its own: killed with what it leaves when it ends
    tie_to_parent(parent, subreaper=False)
    for fd in zygote.private_fds():
        with contextlib.suppress(OSError):
            os.close(fd)
    zygote.control = socket.socket(fileno=task.fds["control"])
    os.set_inheritable(zygote.control.fileno(), False)
    zygote.children, zygote.reports, zygote.sessions = {}, {}, {}
    zygote.session_requests = []
    zygote.role = "session"
    me = os.getpid()
    worker: list[Task] = []

    def become_worker(child: Task) -> object:
        from proctor.runner.worker.main import prepare

        worker.append(child)
        return prepare(_worker_process(zygote, me, child))

    def report(code: int) -> int:
        _report(zygote, worker[0].fds["report"])
        return code

    from proctor.runner.worker.warm_session import run_session

    try:
        return run_session(zygote, task.argv, task.fixtures, become_worker, report)
    except Exception as error:  # (in the session zygote: it says why, and ends)
        if worker:
            raise
        zygote.send({"op": "cold", "why": f"{type(error).__name__}: {error}", "fixture": None})
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    control_fd = root = None
    for arg in args:
        if arg.startswith("--control-fd="):
            control_fd = int(arg.partition("=")[2])
        elif arg.startswith("--root="):
            root = arg.partition("=")[2]
    if control_fd is None or root is None:
        print(
            "usage: python -m proctor.runner.worker.zygote --control-fd=N --root=DIR",
            file=sys.stderr,
        )
        return 2
    control = socket.socket(fileno=control_fd)
    os.set_inheritable(control_fd, False)
    for name in _WORKER_MODULES:
        importlib.import_module(name)
    zygote = Zygote(control, os.path.realpath(root))
    parent = os.getpid()
    task = zygote.serve()
    if task is None:
        return 0
    if task.kind == "session":
        return _become_session(zygote, parent, task)
    return _become_worker(zygote, parent, task)


if __name__ == "__main__":
    fastexit.install()  # first: the children inherit it, and exit as a spawned worker does
    fastexit.leave(main(), "proctor.worker")
