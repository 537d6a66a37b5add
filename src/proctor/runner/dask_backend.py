"""Workers on a Dask cluster: ``proctor run --cluster tcp://HOST:8786``.

Dask only places and supervises the test servers; it schedules no test. For
each worker the controller wants, one long-running task (``pure=False``, a
unique key, ``retries=0``) runs :func:`proctor.runner.remote.serve_remote` on
a Dask worker: it starts ``python -m proctor.worker --serve`` in the project
checkout there (the same path as the controller's) and connects back to this
backend's TCP listener, where its channels arrive as frames on one connection.
The tasks are submitted by a launcher (:mod:`proctor.runner.dask_launch`): the
warm agent that successive runs share (:mod:`proctor.runner.dask_agent`), or a
``distributed.Client`` of this process; and, when the agent was up, before the
command line was even parsed (:mod:`proctor.runner.dask_early`: this backend
adopts those servers, their listener and token).
To the controller it is a worker like a local one: the same commands, the same
results stream, the same scheduling (history-timed, longest first, shrinking
batches).

Admission: a connection must first send this run's random token (compared in
constant time; anything else is closed unanswered), then the code revision and
environment digest of its side (:func:`proctor.runner.remote.identity`). A
server whose revision or environment differs from the controller's is refused,
and the run stops (exit 3) with an error that says which and how.

Faults: a connection that ends without the worker's exit status means the Dask
worker or its host died: the worker is reported dead (its test fails with that
cause, the rest of its batch is requeued, a replacement is started, as for a
local crash) and its task is cancelled so that Dask does not run it again
elsewhere. A task that fails before connecting (the import of Proctor fails
there, the controller cannot be reached) is a worker that died starting.
Ctrl-C: the controller kills or quits every worker through the connections;
:meth:`DaskBackend.close` closes them, and a server whose connection closes
ends its worker.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import secrets
import selectors
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from proctor.runner.backend import Exited, Message, Output, Results
from proctor.runner.dask_early import reachable_from, take_early
from proctor.runner.dask_launch import ClientLauncher, ClusterError, Launcher, agent_launcher
from proctor.runner.protocol import Command, control_event, encode_command
from proctor.runner.remote import (
    CAPTURE,
    COMMANDS,
    MAX_HELLO,
    RESULTS,
    Identity,
    decode_frames,
    encode_frame,
    identity,
    keepalive,
    receive,
)
from proctor.wire import v2

if TYPE_CHECKING:
    from proctor.runner.subprocess_backend import WorkerSpec

__all__ = ["ClusterError", "DaskBackend", "DaskWorker", "remote_argv"]

LOST = 255
"""The exit status reported for a worker whose connection ended without one."""


def remote_argv(spec: WorkerSpec) -> list[str]:
    """The worker's command line after the interpreter, with the placeholders
    :func:`~proctor.runner.remote.serve_remote` fills in."""
    argv = spec.argv(-1, -2, "@" if spec.capture else None)[1:]
    marks = {"--commands-fd=-1": COMMANDS, "--results-fd=-2": RESULTS, "--capture-dir=@": CAPTURE}
    return [marks.get(part, part) for part in argv]


@dataclass
class _Pending:
    """A connection that has not said who it is yet."""

    conn: socket.socket
    buffer: bytearray
    since: float


class DaskWorker:
    """One remote worker, as the controller sees it (a ``WorkerHandle``)."""

    def __init__(self, backend: DaskBackend, worker: int) -> None:
        self._backend = backend
        self._worker = worker
        self.pid: int | None = None
        self.host: str | None = None
        self.conn: socket.socket | None = None
        self.buffer = bytearray()
        self.unsent: list[bytes] = []
        self.ended = False

    @property
    def worker(self) -> int:
        return self._worker

    @property
    def route(self) -> str:
        """Its route code once connected: ``HOST:N`` (the host as it names itself)."""
        if self.host is None:
            return str(self._worker)
        host = "".join("_" if c in "/:" or c.isspace() else c for c in self.host)
        return f"{host}:{self._worker}"

    def send(self, command: Command) -> None:
        self._frame(encode_frame(b"C", encode_command(command)))

    def dump_stacks(self) -> None:
        self._frame(encode_frame(b"D"))

    def kill(self) -> None:
        if self.ended:
            return
        if self.conn is not None:
            self._frame(encode_frame(b"K"))
        else:  # not connected yet: nothing runs tests there
            self._backend.end(self, -9, b"")

    def _frame(self, data: bytes) -> None:
        if self.ended:
            return
        if self.conn is None:
            self.unsent.append(data)
            return
        with contextlib.suppress(OSError):  # its end is noticed by the reader
            self.conn.sendall(data)


class DaskBackend:
    """Remote workers on a Dask cluster (see the module docstring).

    ``client``: a ``distributed.Client`` to place them with (not closed here);
    otherwise one of its own, or, with ``agent_idle`` > 0, the warm agent for
    ``cluster`` (:mod:`proctor.runner.dask_agent`, started if need be, to exit
    after that many seconds unused; without it when none can be had).
    """

    def __init__(
        self,
        spec: WorkerSpec,
        cluster: str,
        *,
        env: Mapping[str, str] | None = None,
        client: Any = None,
        agent_idle: float = 0.0,
    ) -> None:
        from proctor.runner.spawn import discard_early

        discard_early()  # the worker started first thing would run here, not there
        self.spec = spec
        self.closed = False
        early = None
        configured = spec.from_configuration and spec.env is None and not spec.extra_args
        if client is None and agent_idle > 0 and not env and configured:
            # The servers placed before the command line was even parsed.
            early = take_early(
                cluster, root=str(spec.root), python=spec.python, capture=spec.capture
            )
        self._early = early
        # Who this side is, found while the cluster is reached (git, the environment).
        self._identity: Identity | None = None
        self._identity_thread: threading.Thread | None = None
        if early is not None:
            self._identity_thread = early.identity_thread
        else:
            self._identity_thread = threading.Thread(
                target=self._find_identity, name="proctor-identity", daemon=True
            )
            self._identity_thread.start()
        launcher: Launcher | None = None
        if client is not None:
            launcher = ClientLauncher(client, own=False)
        elif early is not None:
            launcher = early.launcher
        elif agent_idle > 0:
            launcher = agent_launcher(cluster, agent_idle)
        if launcher is None:
            launcher = ClientLauncher.connect(cluster)
        self._launcher = launcher
        self._cluster = cluster
        self._retired: list[Launcher] = []  # (an agent gone)
        if early is not None:
            self._listener = early.listener
        scheduler = launcher.scheduler
        scheme = urlsplit(scheduler).scheme
        self._tls: ssl.SSLContext | None = None
        if scheme == "tls":
            try:
                self._tls = launcher.listen_context()
            except (ClusterError, OSError, ValueError) as error:
                self.close()
                raise ClusterError(f"the Dask cluster at {scheduler}: {error}") from None
            if self._tls is None:
                self.close()
                raise ClusterError(
                    f"the Dask cluster at {scheduler} uses tls://, but no client certificate "
                    "is configured here (distributed.comm.tls.client in Dask's configuration)"
                )
        elif scheme not in ("tcp", "inproc", ""):
            self.close()
            raise ClusterError(
                f"the Dask cluster at {scheduler} uses {scheme}://; "
                "proctor's connections to its workers support tcp:// and tls://"
            )
        if early is not None:
            self._token, self._run = early.token, early.run
        else:
            self._token = secrets.token_urlsafe(32)
            self._run = secrets.token_hex(4)
            self._listener = socket.create_server((reachable_from(scheduler), 0))
            self._listener.setblocking(False)
        host, port = self._listener.getsockname()[:2]
        self.address: tuple[str, int] = (str(host), int(port))
        self._argv = remote_argv(spec)
        self._env = dict(env) if env is not None else None
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, "listener")
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self._selector.register(self._wake_read, selectors.EVENT_READ, "wake")
        self._inbox: deque[Message | tuple[int, object]] = deque()
        self._workers: dict[int, DaskWorker] = {}
        self._pending: dict[socket.socket, _Pending] = {}
        self._ended: list[DaskWorker] = []  # connections to close once the exit is handled
        self.refused = 0
        if early is not None:
            for worker in range(early.count):
                self._workers[worker] = DaskWorker(self, worker)
            early.adopt(self._task_ended)

    @property
    def identity(self) -> Identity:
        """The controller's revision and environment (what every server must match)."""
        thread, self._identity_thread = getattr(self, "_identity_thread", None), None
        if thread is not None:
            thread.join()
        early = getattr(self, "_early", None)
        if self._identity is None and early is not None:
            self._identity = early.identity
        if self._identity is None:  # the thread failed: the error comes from here
            self._identity = identity(str(self.spec.root))
        return self._identity

    @identity.setter
    def identity(self, value: Identity) -> None:
        self._identity_thread = None
        self._identity = value

    def _find_identity(self) -> None:
        with contextlib.suppress(Exception):  # (asked again, in the open, if it fails)
            self._identity = identity(str(self.spec.root))

    def slots(self) -> int:
        """Worker threads in the cluster now (one test server each, by default)."""
        return max(1, self._launcher.slots())

    # -- WorkerBackend --------------------------------------------------------------------

    def prestart(self, count: int) -> None:
        """Submit servers 0 to ``count - 1`` now: they start on the cluster (and
        import the suite there) while this process reads the history."""
        for worker in range(count):
            if worker not in self._workers:
                self._submit(worker)

    def start(self, worker: int) -> DaskWorker:
        handle = self._workers.get(worker)
        return handle if handle is not None else self._submit(worker)

    def _submit(self, worker: int) -> DaskWorker:
        handle = DaskWorker(self, worker)
        self._workers[worker] = handle
        if getattr(self._launcher, "gone", False):
            # The agent went away (killed, or it lost the scheduler): the servers it
            # placed are on their own; the next ones are placed from this process.
            try:
                replacement = ClientLauncher.connect(self._cluster)
            except ClusterError as error:
                self.end(handle, 1, f"proctor: {error}\n".encode())
                return handle
            self._retired.append(self._launcher)
            self._launcher = replacement
        args = (
            self.address,
            self._token,
            worker,
            str(self.spec.root),
            self._argv,
            self._env,
            self._tls is not None,
        )
        self._launcher.submit(
            worker, f"proctor-{self._run}-worker-{worker}", args, self._task_ended
        )
        return handle

    def _task_ended(self, worker: int, payload: object) -> None:
        self.post_raw((worker, payload))  # (from another thread)

    def wait(self, timeout: float | None) -> list[Message]:
        for handle in self._ended:  # the controller has handled their exits by now
            self._disconnect(handle)
        self._ended.clear()
        if not self._inbox:
            for key, _ in self._selector.select(timeout):
                self._ready(key)
        messages: list[Message] = []
        while self._inbox:
            item = self._inbox.popleft()
            if isinstance(item, tuple):
                self._task_done(*item)
            else:
                messages.append(item)
        while self._inbox:  # what _task_done delivered
            item = self._inbox.popleft()
            if not isinstance(item, tuple):
                messages.append(item)
        return messages

    def post(self, message: Message) -> None:
        self.post_raw(message)

    def post_raw(self, item: Message | tuple[int, object]) -> None:
        self._inbox.append(item)  # deque.append is atomic: safe from threads and handlers
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_write, b"\0")

    def now(self) -> float:
        return time.monotonic()

    def time_ns(self) -> int:
        return time.time_ns()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        launchers: list[Launcher | None] = [
            *getattr(self, "_retired", ()),
            getattr(self, "_launcher", None),
        ]
        for launcher in launchers:
            if launcher is not None:
                launcher.close()  # cancels the tasks that have not ended; no more posts
        for handle in list(getattr(self, "_workers", {}).values()):
            self._disconnect(handle)
        for pending in list(getattr(self, "_pending", {}).values()):
            pending.conn.close()
        for part in ("_selector", "_listener"):
            closing = getattr(self, part, None)
            if closing is not None:
                closing.close()
        for fd in (getattr(self, "_wake_read", None), getattr(self, "_wake_write", None)):
            if fd is not None:
                os.close(fd)

    # -- the connections ------------------------------------------------------------------

    def end(self, handle: DaskWorker, returncode: int, output: bytes) -> None:
        """Report ``handle``'s worker gone (once)."""
        if handle.ended:
            return
        handle.ended = True
        if output:
            self._inbox.append(Output(handle.worker, output))
        self._inbox.append(Exited(handle.worker, returncode))
        self._ended.append(handle)
        self._launcher.cancel(handle.worker)  # never run again elsewhere by Dask

    def _disconnect(self, handle: DaskWorker) -> None:
        conn, handle.conn = handle.conn, None
        if conn is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(conn)
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _ready(self, key: selectors.SelectorKey) -> None:
        what = key.data
        if what == "wake":
            with contextlib.suppress(BlockingIOError):
                os.read(self._wake_read, 4096)
        elif what == "listener":
            try:
                conn, _ = self._listener.accept()
                conn.settimeout(10)
                keepalive(conn)
                if self._tls is not None:
                    conn = self._tls.wrap_socket(conn, server_side=True)  # the handshake
            except (BlockingIOError, OSError):  # ssl.SSLError too: not one of ours
                return
            conn.settimeout(30)
            self._pending[conn] = _Pending(conn, bytearray(), time.monotonic())
            self._selector.register(conn, selectors.EVENT_READ, conn)
        elif isinstance(what, DaskWorker):
            self._read(what)
        else:
            self._hello(self._pending[what])

    def _hello(self, pending: _Pending) -> None:
        conn = pending.conn
        data = receive(conn)
        pending.buffer.extend(data)
        if data and b"\n" not in pending.buffer and len(pending.buffer) < MAX_HELLO:
            return
        del self._pending[conn]
        self._selector.unregister(conn)
        line, _, rest = bytes(pending.buffer).partition(b"\n")
        try:
            hello = json.loads(line)
            token = str(hello["token"])
            worker = int(hello["worker"])
        except (ValueError, KeyError, TypeError):
            conn.close()  # not one of ours
            return
        if not hmac.compare_digest(token.encode(), self._token.encode()):
            conn.close()
            return
        handle = self._workers.get(worker)
        if handle is None or handle.ended or handle.conn is not None:
            _reply(conn, {"ok": False, "reason": "no such worker in this run (stale)"})
            conn.close()
            return
        host = str(hello.get("host", "?"))
        problem = self._mismatch(hello, host, worker)
        if problem is not None:
            self.refused += 1
            _reply(conn, {"ok": False, "reason": problem})
            conn.close()
            error = v2.encode_many([control_event("error", message=problem)])
            self._inbox.append(Results(worker, error))
            self.end(handle, 2, b"")
            return
        _reply(conn, {"ok": True})
        handle.conn = conn
        handle.host = host
        handle.buffer.extend(rest)
        self._selector.register(conn, selectors.EVENT_READ, handle)
        unsent, handle.unsent = handle.unsent, []
        for frame in unsent:
            handle._frame(frame)
        if handle.buffer:
            self._frames(handle)

    def _mismatch(self, hello: dict[str, Any], host: str, worker: int) -> str | None:
        mine = self.identity
        where = f"worker {worker} on {host}"
        if hello.get("revision") != mine.revision:
            return (
                f"{where} refuses to start: its checkout is at a different code revision "
                f"({hello.get('revision')}; the controller's is {mine.revision}). "
                "Check out the same commit there (and the same uncommitted changes)."
            )
        if hello.get("environment") != mine.environment:
            return (
                f"{where} refuses to start: its environment differs ({hello.get('python')}, "
                f"{hello.get('packages')} packages, digest {hello.get('environment')}; the "
                f"controller's: {mine.python}, {mine.packages} packages, digest "
                f"{mine.environment}). Install the same Python and packages there."
            )
        return None

    def _read(self, handle: DaskWorker) -> None:
        conn = handle.conn
        assert conn is not None
        data = receive(conn)
        if not data:
            self._disconnect(handle)
            where = f" on {handle.host}" if handle.host else ""
            self.end(
                handle,
                LOST,
                f"proctor: lost the connection to worker {handle.worker}{where} without its "
                "exit status: its Dask worker or its host died, or the network failed\n".encode(),
            )
            return
        handle.buffer.extend(data)
        self._frames(handle)

    def _frames(self, handle: DaskWorker) -> None:
        for kind, payload in decode_frames(handle.buffer):
            if kind == b"R":
                self._inbox.append(Results(handle.worker, payload))
            elif kind == b"O":
                self._inbox.append(Output(handle.worker, payload))
            elif kind == b"X":
                try:
                    code = int(payload)
                except ValueError:
                    code = LOST
                self.end(handle, code, b"")

    def _task_done(self, worker: int, payload: object) -> None:
        handle = self._workers.get(worker)
        if handle is None or handle.ended or handle.conn is not None:
            return  # the connection says how it ended
        failure = self._launcher.failure(payload)
        if failure is None:
            self.end(handle, 1, b"proctor: the Dask task ended before its worker connected\n")
            return
        text = f"proctor: the Dask task of worker {worker} failed: {failure}\n"
        self.end(handle, 1, text.encode())


def _reply(conn: socket.socket, message: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):
        conn.sendall(json.dumps(message).encode() + b"\n")
