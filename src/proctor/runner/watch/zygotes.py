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
a thread is never imported by a zygote again.

For pytest suites each base zygote may also have a *session zygote*
(:mod:`proctor.runner.worker.warm_session`), which the pool starts between
cycles (:meth:`ZygotePool.idle`) once a pytest worker reported, with the
session fixtures the workers used: a worker is forked from it when it is warm
and the worker's arguments match, else from the base zygote. One that went
cold names the fixture the next one must leave to the workers (or says that no
session can be kept); one that refused (stale) is ended, and a new one started
after the cycle.

When forking fails three times in a row for a slot, that request is served by
:func:`~proctor.runner.spawn.spawn`, and after ten failures the pool spawns
only (it says so once).
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
SESSION_END = 5.0
"""Seconds a session zygote has to tear its session down when the pool ends it."""
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
    """The controller's end of one zygote process: a base zygote (``process``, this
    process's child) or a session zygote (its base zygote's child, reaped there)."""

    def __init__(self, ours: socket.socket, process: subprocess.Popen[bytes] | None) -> None:
        self.socket = ours
        self.process = process
        self.statuses: dict[int, int] = {}
        self.children: list[ForkedProcess] = []
        self.learned: list[str] = []
        self.rewrite: list[object] = []  # how pytest rewrote asserts in a child, as reported
        self.fixtures: list[tuple[str, str]] = []  # session fixtures its children used
        self.threaded: list[str] = []
        self.gone = False
        self.session: _Zygote | None = None
        """A base zygote's session zygote (warm_session), if one was asked for."""
        self.session_pids: list[int] = []
        self.warm: list[tuple[str, str]] | None = None
        """A session zygote's kept fixtures, once it said it is ready."""
        self.cold: tuple[str, str | None] | None = None
        """Why a session zygote could not keep its session warm (and which fixture)."""
        self.started_with: list[tuple[str, str]] = []
        self.argv: list[str] = []

    @classmethod
    def start(cls, python: str, root: str, env: Mapping[str, str] | None) -> _Zygote:
        """A new base zygote process."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            process = subprocess.Popen(
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
        return cls(ours, process)

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
            pid = int(message["pid"])  # type: ignore[call-overload]
            if pid in self.session_pids:
                self.session_pids.remove(pid)
            self.statuses[pid] = int(message["code"])  # type: ignore[call-overload]
        elif op == "learned":
            self.learned.extend(str(name) for name in message["modules"])  # type: ignore[attr-defined]
            if "rewrite" in message:
                self.rewrite.append(message["rewrite"])
            self.fixtures.extend(_pairs(message.get("fixtures")))
        elif op == "session":
            self.session_pids.append(int(message["pid"]))  # type: ignore[call-overload]
        elif op == "warm":
            self.warm = _pairs(message.get("fixtures"))
        elif op == "cold":
            fixture = message.get("fixture")
            self.cold = (str(message.get("why")), None if fixture is None else str(fixture))
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
        """Whether a child of this zygote (or of its session zygote) is still
        running (or not reaped yet)."""
        self.children = [child for child in self.children if child.returncode is None]
        return bool(self.children) or (self.session is not None and self.session.busy())

    def ended(self) -> bool:
        return self.gone or (self.process is not None and self.process.poll() is not None)

    def kill(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.process.pid, signal.SIGKILL)

    def close_session(self, wait: bool = False) -> None:
        """End this base zygote's session zygote: it tears its session down (the
        fixtures it set up) and exits (this zygote reaps it). With ``wait``, wait
        for every session zygote of this one to be gone (5 s at most each)."""
        session, self.session = self.session, None
        if session is not None:
            session.socket.close()
            session.gone = True
        if not wait:
            return
        with contextlib.suppress(ZygoteGone):
            self.drain()
            for pid in list(self.session_pids):
                self.status(pid, SESSION_END)

    def close(self) -> None:
        """End it (its children with it) and reap it."""
        self.close_session(wait=True)
        self.socket.close()  # end of requests: it kills its children and exits
        self.gone = True
        if self.process is None:
            return
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            self.process.wait()


def _settings_of(args: list[str]) -> list[str]:
    """A worker's arguments less those that differ from one worker to the next."""
    return [
        arg
        for arg in args
        if not arg.startswith(("--commands-fd=", "--results-fd=", "--capture-dir=", "--only="))
    ]


def _pairs(value: object) -> list[tuple[str, str]]:
    if not isinstance(value, list):
        return []
    return [
        (str(item[0]), str(item[1])) for item in value if isinstance(item, list) and len(item) == 2
    ]


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
        self.fixtures: list[tuple[str, str]] = []
        """Session fixtures the workers set up, in order (what a session zygote keeps)."""
        self.impure: set[str] = set()
        """Session fixtures a session zygote found it must not keep."""
        self.sessions: str | None = None
        """Why no session zygote is started any more (None: they are)."""
        self.session_forks = 0
        self._worker: tuple[str, list[str], str, Mapping[str, str] | None] | None = None
        """The last worker asked for (python, its arguments, cwd, env): what a session
        zygote is started for."""

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
            self._worker = (command[0], command[3:], cwd, env)
            for _ in range(ATTEMPTS):
                zygote = self._zygote(command[0], env)
                spawned = self._fork_warm(zygote, command[3:], cwd)
                if spawned is not None:
                    self.session_forks += 1
                    self.forks += 1
                    return spawned
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

    def _fork_warm(self, zygote: _Zygote, args: list[str], cwd: str) -> Spawned | None:
        """A worker forked from ``zygote``'s session zygote, if it has one that is
        warm for these arguments and agrees to fork (else None: the base serves)."""
        session = zygote.session
        if session is None:
            return None
        with contextlib.suppress(ZygoteGone):
            session.drain()
        self._learn(session)
        if session.cold is not None or session.gone:
            self._end_session(zygote)
            return None
        if session.warm is None or _settings_of(args) != _settings_of(session.argv):
            return None
        try:
            spawned = self._fork(session, args, cwd)
        except ZygoteGone:
            spawned = None
        if spawned is None:  # stale: it ends its session; the base serves this cycle
            self._end_session(zygote)
        return spawned

    def idle(self) -> None:
        """Between cycles: start a session zygote for each base zygote that has
        none, and end those that cannot serve (cold, or started before the workers
        reported a fixture they could keep)."""
        if self.disabled is not None or self._worker is None:
            return
        for zygote in self.zygotes:
            with contextlib.suppress(ZygoteGone):
                zygote.drain()
            self._learn(zygote)
        if not self.rewrite:
            return  # (no pytest worker has reported yet: maybe not a pytest suite)
        _, args, cwd, _ = self._worker
        for zygote in list(self.zygotes):
            if zygote.ended() or zygote.busy():
                continue
            session = zygote.session
            if session is not None:
                with contextlib.suppress(ZygoteGone):
                    session.drain()
                self._learn(session)
                wanted = [f for f in self.fixtures if f[0] not in self.impure]
                if (
                    session.cold is not None
                    or session.gone
                    or _settings_of(args) != _settings_of(session.argv)
                    or (session.warm is not None and wanted != session.started_with)
                ):
                    self._end_session(zygote)
                    session = None
            if session is None and self.sessions is None:
                self._start_session(zygote, args, cwd)

    def _start_session(self, zygote: _Zygote, args: list[str], cwd: str) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        fixtures = [f for f in self.fixtures if f[0] not in self.impure]
        try:
            zygote.send(
                {
                    "op": "session",
                    "argv": args,
                    "cwd": cwd,
                    "fixtures": [list(f) for f in fixtures],
                },
                [theirs.fileno()],
            )
        except ZygoteGone:
            ours.close()
            return
        finally:
            theirs.close()
        session = _Zygote(ours, None)
        session.started_with = fixtures
        session.argv = list(args)
        zygote.session = session

    def _end_session(self, zygote: _Zygote) -> None:
        """End ``zygote``'s session zygote, learning why it went cold if it did."""
        session = zygote.session
        if session is None:
            return
        if session.cold is not None:
            why, fixture = session.cold
            if fixture is not None:
                self.impure.add(fixture)  # the next one leaves it to the workers
                self._say(f"[watch] each worker sets the session fixture {fixture} up: {why}.")
            elif self.sessions is None:
                self.sessions = why
                self._say(f"[watch] no pytest session kept warm between cycles: {why}.")
        zygote.close_session()

    def _zygote(self, python: str, env: Mapping[str, str] | None) -> _Zygote:
        """The first zygote with no child running (a new one if all are busy)."""
        for zygote in list(self.zygotes):
            if zygote.ended():
                self._retire(zygote)
            elif not zygote.busy():
                return zygote
        zygote = _Zygote.start(python, self.root, env)
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
        if zygote.fixtures:
            self.fixtures.extend(f for f in zygote.fixtures if f not in self.fixtures)
            zygote.fixtures.clear()

    def _retire(self, zygote: _Zygote) -> None:
        self.zygotes.remove(zygote)
        zygote.drain()
        self._learn(zygote)
        zygote.close()
        self.restarts += 1

    def _disable(self, why: str) -> None:
        self.disabled = why
        self._say(f"[watch] {why}: starting fresh workers from now on.")

    def _say(self, line: str) -> None:
        if self.notify is not None:
            self.notify(line)

    def close(self) -> None:
        """End every zygote (and any child still running) and reap them."""
        while self.zygotes:
            self.zygotes.pop().close()
