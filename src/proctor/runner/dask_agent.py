"""A warm Dask client on the controller's machine, shared by successive runs.

Importing ``distributed`` and connecting to a scheduler cost ``proctor run
--cluster`` about 0.2-0.3 s before its first test server could be placed:
most of a run of a few thousand fast tests. The agent pays it once: a process
of this user's (``python -m proctor.runner.dask_agent``) holds a connected
``distributed.Client`` and listens on a Unix socket in the private runtime
directory (:func:`proctor.runner.runtime_dir.runtime_dir`); a run connects to
it (:func:`connect`, about a millisecond) and asks it to place its servers.
The servers still connect straight back to the controller (the token, the
revision and environment check, TLS: :mod:`proctor.runner.dask_backend`);
the agent only submits and cancels their tasks and says when one ends.

One agent per scheduler address, interpreter and Dask configuration (the
socket's name is a digest of them, of the agent's own code and of the
``DASK_*`` environment variables), started by the first run that needs it
(:func:`start`, under a lock, so that two runs starting at once share one).
It exits when no run has used it for ``idle`` seconds, and at once when it
loses its scheduler; a run whose agent is gone starts another.

The protocol is one JSON object a line each way:

* ``{"op": "hello", "protocol": 1}``, answered ``{"ok": true, "scheduler":
  ADDRESS, "slots": N, "tls": {...} | null}`` (``slots``: the cluster's worker
  threads; ``tls``: the client-side TLS settings, to listen with) or ``{"ok":
  false, "error": TEXT}``;
* ``{"op": "submit", "worker": N, "key": KEY, "args": [...]}``: one task of
  :func:`proctor.runner.remote.serve_remote` (``pure=False``, ``retries=0``);
  ``{"ok": true, "done": N, "error": TEXT | null}`` comes when it has ended;
* ``{"op": "cancel", "worker": N}``.

When a run's connection closes, the tasks it placed that have not ended are
cancelled (a controller killed outright leaves nothing queued on the cluster).
The agent accepts connections only from its own user (``SO_PEERCRED`` where
there is one; the directory is private anyway), and runs nothing but
:func:`~proctor.runner.remote.serve_remote` with arguments of the right types.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import struct
import sys
import threading
import time

TYPE_CHECKING = False  # (not typing's at run time: this is imported first thing by a run)
if TYPE_CHECKING:
    import ssl
    from collections.abc import Callable, Sequence
    from typing import Any

    Done = Callable[[int, object], None]

__all__ = [
    "PROTOCOL",
    "AgentError",
    "AgentLauncher",
    "agent_socket",
    "connect",
    "main",
    "start",
]

PROTOCOL = 1
START_TIMEOUT = 60.0
"""Seconds a run waits for a new agent to connect to its scheduler and say so."""
GREET_TIMEOUT = 10.0
"""Seconds a run waits for an agent's answer to its ``hello`` (the agent asks the
scheduler for its worker threads: milliseconds, unless something is wrong)."""


class AgentError(Exception):
    """The agent could not be started or reached (``definite`` False: the run may
    do without it), or cannot use the cluster (``definite``: nor could the run)."""

    def __init__(self, message: str, *, definite: bool = False) -> None:
        super().__init__(message)
        self.definite = definite


# -- the controller's side ------------------------------------------------------------------


def agent_socket(cluster: str, directory: str) -> str:
    """The socket of the agent for ``cluster`` (an address, or a scheduler file:
    the address in it) in ``directory``."""
    parts = [
        f"protocol {PROTOCOL}",
        _scheduler_of(cluster),
        sys.executable,
        str(_mtime(__file__)),
    ]
    parts += [f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith("DASK_")]
    for folder in _dask_config_paths():
        with contextlib.suppress(OSError):
            for entry in sorted(os.scandir(folder), key=lambda e: e.name):
                parts.append(f"{entry.path} {_mtime(entry.path)}")
    # (12 hex digits: a socket's path holds 107 bytes at most)
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]
    return os.path.join(directory, f"dask-{digest}.sock")


def connect(path: str) -> socket.socket | None:
    """A connection to the agent listening at ``path``; None if none listens."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
    except OSError:
        conn.close()
        return None
    return conn


def start(path: str, cluster: str, idle: float) -> socket.socket:
    """Connect to the agent at ``path``, starting it (for ``cluster``, to exit
    after ``idle`` seconds unused) if none listens. :class:`AgentError` when it
    cannot be started or cannot reach the cluster (its words)."""
    import fcntl

    conn = connect(path)
    if conn is not None:
        return conn
    with open(os.path.join(os.path.dirname(path), "dask-agents.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one run starts it; the others wait for it
        conn = connect(path)
        if conn is not None:
            return conn
        _sweep(os.path.dirname(path))  # what agents killed outright left
        _launch(path, cluster, idle)
        conn = connect(path)
    if conn is None:
        raise AgentError("the Dask agent said it was ready, but does not answer")
    return conn


def _sweep(directory: str) -> None:
    """Remove the sockets nobody listens on (and their logs) in ``directory``."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            if entry.name.startswith("dask-") and entry.name.endswith(".sock"):
                conn = connect(entry.path)
                if conn is not None:
                    conn.close()  # a live one (it sees a connection come and go)
                    continue
                for stale in (entry.path, f"{entry.path}.log"):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(stale)


def _launch(path: str, cluster: str, idle: float) -> None:
    """Start the agent and wait until it listens (or says why it cannot)."""
    import selectors
    import subprocess

    import proctor

    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(proctor.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    if os.path.isfile(cluster):
        cluster = os.path.abspath(cluster)  # (the agent works in /)
    argv = [sys.executable, "-m", "proctor.runner.dask_agent", path, cluster, str(idle)]
    try:
        log = open(f"{path}.log", "wb")  # noqa: SIM115 - the child has its own copy
    except OSError as error:
        raise AgentError(f"cannot write the Dask agent's log: {error}") from None
    with log:
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                cwd="/",
                env=env,
                start_new_session=True,
            )
        except OSError as error:
            raise AgentError(f"cannot start the Dask agent: {error}") from None
    assert process.stdout is not None
    answer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + START_TIMEOUT
        while b"\n" not in answer:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                break
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                break
            answer += chunk
    process.stdout.close()
    process.wait()  # (the agent itself is its child, which goes on alone)
    line = answer.partition(b"\n")[0].decode(errors="replace")
    if line == "ready":
        return
    if line.startswith("error: "):
        raise AgentError(line[len("error: ") :], definite=True)
    if line.startswith("fail: "):
        raise AgentError(line[len("fail: ") :])
    raise AgentError(f"the Dask agent did not start (its log: {path}.log)")


def _scheduler_of(cluster: str) -> str:
    if os.path.isfile(cluster):
        try:
            with open(cluster, encoding="utf-8") as file:
                return f"file {os.path.abspath(cluster)} {json.load(file).get('address')}"
        except (OSError, ValueError, AttributeError):
            return f"file {os.path.abspath(cluster)}"
    return cluster if "://" in cluster else f"tcp://{cluster}"


def _dask_config_paths() -> list[str]:
    """Where Dask reads its YAML configuration (as ``dask.config.paths``)."""
    import site

    paths = [
        os.environ.get("DASK_ROOT_CONFIG", "/etc/dask"),
        os.path.join(sys.prefix, "etc", "dask"),
        *[os.path.join(prefix, "etc", "dask") for prefix in site.PREFIXES],
        os.path.join(os.path.expanduser("~"), ".config", "dask"),
    ]
    if "DASK_CONFIG" in os.environ:
        paths.append(os.environ["DASK_CONFIG"])
    return list(dict.fromkeys(paths))


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


class AgentLauncher:
    """Tasks submitted by the warm agent (:mod:`proctor.runner.dask_agent`) over
    ``conn``; a thread reads what the agent reports."""

    @classmethod
    def greet(cls, conn: socket.socket) -> AgentLauncher:
        """Say hello to the agent on ``conn``: a launcher, or :class:`AgentError`
        (not definite) when it does not answer as it should."""
        try:
            conn.settimeout(GREET_TIMEOUT)
            conn.sendall(json.dumps({"op": "hello", "protocol": PROTOCOL}).encode() + b"\n")
            answer = bytearray()
            while b"\n" not in answer:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                answer.extend(chunk)
            hello = json.loads(bytes(answer).partition(b"\n")[0])
            conn.settimeout(None)
        except (OSError, ValueError):
            conn.close()
            raise AgentError("the Dask agent does not answer") from None
        if not isinstance(hello, dict) or not hello.get("ok"):
            conn.close()  # (it lost its scheduler: it exits; the next run starts another)
            raise AgentError(str(hello.get("error") if isinstance(hello, dict) else hello))
        return cls(conn, hello)

    def __init__(self, conn: socket.socket, hello: dict[str, Any]) -> None:
        self._conn = conn
        self._scheduler = str(hello["scheduler"])
        self._slots = int(hello["slots"])
        self._tls: dict[str, Any] | None = hello.get("tls")
        self._done: dict[int, Done] = {}
        self._lock = threading.Lock()
        self._closed = False
        self.gone = False
        """The agent went away (its tasks not yet started will never start)."""
        self._reader = threading.Thread(target=self._read, name="proctor-dask-agent", daemon=True)
        self._reader.start()

    @property
    def scheduler(self) -> str:
        return self._scheduler

    def slots(self) -> int:
        return self._slots

    def listen_context(self) -> ssl.SSLContext | None:
        from proctor.runner.dask_tls import tls_listen_context

        return None if self._tls is None else tls_listen_context(self._tls)

    def submit(self, worker: int, key: str, args: tuple[Any, ...], done: Done) -> None:
        with self._lock:
            if self.gone:
                if not self._closed:
                    done(worker, "the Dask agent of this run went away")
                return
            self._done[worker] = done
        self._send({"op": "submit", "worker": worker, "key": key, "args": list(args)})

    def cancel(self, worker: int) -> None:
        self._send({"op": "cancel", "worker": worker})

    def failure(self, payload: object) -> str | None:
        return None if payload is None else str(payload)

    def close(self) -> None:
        """Close the connection (the agent cancels what has not ended); no
        ``done`` is called once this has returned."""
        with self._lock:
            self._closed = True
        with contextlib.suppress(OSError):
            self._conn.shutdown(socket.SHUT_RDWR)
        self._conn.close()

    def _send(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):  # the reader reports the agent gone
            self._conn.sendall(json.dumps(message).encode() + b"\n")

    def _read(self) -> None:
        try:
            for line in self._conn.makefile("rb"):
                report = json.loads(line)
                worker = int(report["done"])
                with self._lock:
                    done = self._done.pop(worker, None)
                    if done is not None and not self._closed:
                        done(worker, report.get("error"))
        except (OSError, ValueError, KeyError, TypeError):
            pass
        with self._lock:  # the agent is gone: tasks that did not report never will
            self.gone = True
            orphans, self._done = self._done, {}
            if not self._closed:
                for worker, done in orphans.items():
                    done(worker, "the Dask agent of this run went away")


# -- the agent ------------------------------------------------------------------------------


class _Agent:
    """The agent's state: its client, and how long it has been unused."""

    def __init__(self, client: Any, idle: float) -> None:
        self.client = client
        self.idle = idle
        self.lock = threading.Lock()
        self.connections = 0
        self.last_used = time.monotonic()

    def healthy(self) -> bool:
        return str(getattr(self.client, "status", "")) == "running"

    def hello(self) -> dict[str, Any]:
        client = self.client
        threads: dict[str, int] = client.nthreads()
        scheduler = str(client.scheduler.address)
        tls = None
        if scheduler.startswith("tls://"):
            security = client.security
            tls = {
                "ca_file": security.tls_ca_file,
                "cert": security.tls_client_cert,
                "key": security.tls_client_key,
                "ciphers": security.tls_ciphers,
                "min_version": int(security.tls_min_version),
                "max_version": (
                    None if security.tls_max_version is None else int(security.tls_max_version)
                ),
            }
        return {"ok": True, "scheduler": scheduler, "slots": sum(threads.values()), "tls": tls}

    def serve(self, conn: socket.socket) -> None:
        """One run's connection, until it closes."""
        from proctor.runner.remote import serve_remote

        futures: dict[int, Any] = {}
        write = threading.Lock()

        def send(message: dict[str, Any]) -> None:
            with write, contextlib.suppress(OSError):
                conn.sendall(json.dumps(message).encode() + b"\n")

        def ended(worker: int, future: Any) -> None:
            send({"ok": True, "done": worker, "error": _failure(future)})

        try:
            if not _same_user(conn):
                return
            for line in conn.makefile("rb"):
                request = json.loads(line)
                op = request.get("op")
                if op == "hello":
                    if not self.healthy():
                        send({"ok": False, "error": "the agent lost its scheduler"})
                        return
                    send(self.hello())
                elif op == "submit":
                    worker, key, args = _submission(request)
                    try:
                        future = self.client.submit(
                            serve_remote, *args, key=key, pure=False, retries=0
                        )
                    except Exception as error:  # the client is closing, say
                        send({"ok": True, "done": worker, "error": repr(error)})
                        continue
                    futures[worker] = future
                    future.add_done_callback(lambda done, worker=worker: ended(worker, done))
                elif op == "cancel":
                    future = futures.get(int(request["worker"]))
                    if future is not None:
                        future.cancel()
        except (OSError, ValueError, KeyError, TypeError):
            pass  # a broken or foreign request ends the connection
        finally:
            for future in futures.values():  # the run is over (or its controller died)
                if not future.done():
                    with contextlib.suppress(Exception):
                        future.cancel()
            conn.close()
            with self.lock:
                self.connections -= 1
                self.last_used = time.monotonic()

    def run(self, listener: socket.socket) -> None:
        listener.settimeout(1.0)
        while self.healthy():
            with self.lock:
                unused = self.connections == 0 and time.monotonic() - self.last_used > self.idle
            if unused:
                return
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            with self.lock:
                self.connections += 1
                self.last_used = time.monotonic()
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()


def _submission(request: dict[str, Any]) -> tuple[int, str, tuple[Any, ...]]:
    """What a ``submit`` asks for, checked to be :func:`serve_remote`'s arguments."""
    worker, key, args = request["worker"], request["key"], request["args"]
    if not (isinstance(worker, int) and isinstance(key, str) and isinstance(args, list)):
        raise TypeError("a malformed submission")
    address, token, number, root, argv, env, tls = args
    host, port = address
    fine = (
        isinstance(host, str)
        and isinstance(port, int)
        and isinstance(token, str)
        and number == worker
        and isinstance(root, str)
        and isinstance(argv, list)
        and all(isinstance(part, str) for part in argv)
        and _strings(env)
        and isinstance(tls, bool)
    )
    if not fine:
        raise TypeError("a malformed submission")
    return worker, key, ((host, port), token, number, root, argv, env, tls)


def _strings(env: object) -> bool:
    """Whether ``env`` is None or an environment (names and values strings)."""
    if env is None:
        return True
    return isinstance(env, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in env.items()
    )


def _failure(future: Any) -> str | None:
    """Why a task ended without its server, if it failed (None: it returned)."""
    status = str(getattr(future, "status", ""))
    if status == "finished":
        return None
    if status == "cancelled":
        return "the task was cancelled"
    try:
        return repr(future.exception(timeout=10))
    except Exception as error:  # lost with its worker, the client closing
        return repr(error)


def _same_user(conn: socket.socket) -> bool:
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:  # pragma: no cover - not Linux: the private directory must do
        return True
    credentials = conn.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    _, uid, _ = struct.unpack("3i", credentials)
    return bool(uid == os.getuid())


def main(argv: Sequence[str]) -> int:
    """``python -m proctor.runner.dask_agent SOCKET CLUSTER IDLE``: detach, connect,
    say ``ready`` (or ``error: ...``) on stdout, then serve."""
    path, cluster, idle = argv[0], argv[1], float(argv[2])
    if os.fork() > 0:  # the run waits for this one; the agent goes on in the child
        return 0
    os.setsid()
    import signal

    signal.signal(signal.SIGTERM, _leave)  # (kill PID: tidily, its socket removed)
    try:
        listener, agent = _open(path, cluster, idle)
    except AgentError as error:
        _say(f"{'error' if error.definite else 'fail'}: {error}")
        return 1
    _say("ready")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    identity = os.stat(path).st_ino
    try:
        agent.run(listener)
    finally:
        listener.close()
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == identity:  # not a successor's
                os.unlink(path)
                os.unlink(f"{path}.log")  # (kept only when it did not start, or died)
        with contextlib.suppress(Exception):
            agent.client.close(timeout=5)
    return 0


def _open(path: str, cluster: str, idle: float) -> tuple[socket.socket, _Agent]:
    try:
        import distributed
    except ImportError:
        raise AgentError(
            "--cluster needs Dask: pip install 'proctor[cluster]' (dask, distributed)",
            definite=True,
        ) from None
    Client: Any = distributed.Client
    try:
        if os.path.isfile(cluster):
            client = Client(scheduler_file=cluster, timeout=30)
        else:
            client = Client(cluster, timeout=30)
    except (OSError, TimeoutError, ValueError) as error:
        raise AgentError(
            f"cannot reach the Dask cluster {cluster}: {error}", definite=True
        ) from None
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(path)
        os.chmod(path, 0o600)
        listener.listen(64)
    except OSError as error:
        listener.close()
        client.close()
        raise AgentError(f"cannot listen on {path}: {error}") from None
    return listener, _Agent(client, idle)


def _leave(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _say(line: str) -> None:
    with contextlib.suppress(OSError):
        os.write(1, (line + "\n").encode())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
