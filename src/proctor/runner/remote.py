"""A worker on another machine: its channels bridged over one TCP connection.

:func:`serve_remote` runs where the worker is to run (in a Dask worker's
thread, see :mod:`proctor.runner.dask_backend`): it starts ``python -m
proctor.worker --serve`` in the project checkout there, exactly as the local
backend does (:func:`proctor.runner.spawn.spawn`), and while that worker imports
the suite it connects back to the controller, proves it belongs to this run (the
per-run token) and says what code and environment it runs (:func:`identity`);
the controller answers whether it may serve. A refused server kills its worker,
which has had no command. Then it carries the worker's channels as frames:

=====  ======================  =============================================
kind   direction               payload
=====  ======================  =============================================
``C``  controller -> server    bytes for the worker's commands pipe
``D``  controller -> server    (none) dump every thread's stack (SIGUSR1)
``K``  controller -> server    (none) kill the worker and what it started
``R``  server -> controller    bytes from the worker's results pipe
``O``  server -> controller    the worker's own stdout/stderr
``X``  server -> controller    the worker's exit status, ASCII
=====  ======================  =============================================

A frame is its kind (1 byte), the payload's length (4 bytes, big-endian) and the
payload. The handshake before the frames is one JSON line each way. When the
controller's end of the connection closes, the worker's commands channel is
closed (a worker exits when its commands end, between tests) and it is killed
if it has not exited 5 seconds later.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from proctor.runner.runtime_dir import runtime_dir

if TYPE_CHECKING:
    from proctor.runner.spawn import Spawned

__all__ = [
    "CAPTURE",
    "COMMANDS",
    "HEADER",
    "RESULTS",
    "Identity",
    "decode_frames",
    "encode_frame",
    "identity",
    "keepalive",
    "serve_remote",
]

COMMANDS = "--commands-fd=@"
RESULTS = "--results-fd=@"
CAPTURE = "--capture-dir=@"

HEADER = struct.Struct(">cI")
MAX_HELLO = 64 * 1024
_READ = 65536


def keepalive(sock: socket.socket) -> None:
    """Notice a peer whose host vanished (no FIN ever comes) within about 25 s:
    TCP keepalive probes after 10 s of silence, every 5 s, 3 of them; and, where
    the system has it (Linux), data unacknowledged for 25 s ends the connection
    too. Without that bound, a side with data in flight when the network went
    (a command just sent) does not probe at all: it retransmits, and gives up
    only after the system's retries, some 15 minutes on Linux."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (
        ("TCP_KEEPIDLE", 10),
        ("TCP_KEEPINTVL", 5),
        ("TCP_KEEPCNT", 3),
        ("TCP_USER_TIMEOUT", 25_000),  # milliseconds
    ):
        option = getattr(socket, name, None)
        if option is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, option, value)


def encode_frame(kind: bytes, payload: bytes = b"") -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


def decode_frames(buffer: bytearray) -> list[tuple[bytes, bytes]]:
    """The complete frames at the start of ``buffer``, removed from it."""
    frames: list[tuple[bytes, bytes]] = []
    offset = 0
    size = HEADER.size
    while len(buffer) - offset >= size:
        kind, length = HEADER.unpack_from(buffer, offset)
        if len(buffer) - offset - size < length:
            break
        start = offset + size
        frames.append((kind, bytes(buffer[start : start + length])))
        offset = start + length
    del buffer[:offset]
    return frames


@dataclass(frozen=True, slots=True)
class Identity:
    """What must be the same on the controller and a remote worker."""

    revision: str
    """The git commit of the checkout, with a digest of its uncommitted changes."""
    environment: str
    """A digest of the Python version and every installed distribution's version."""
    python: str
    packages: int


def _git(root: str, *args: str) -> bytes | None:
    try:
        done = subprocess.run(
            ["git", "--no-optional-locks", "-C", root, *args],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def identity(root: str) -> Identity:
    """The code revision of ``root`` and the environment of this interpreter."""
    commit = _git(root, "rev-parse", "HEAD")
    if commit is None:
        revision = "(not a git checkout)"
    else:
        revision = commit.decode().strip()
        diff = _git(root, "diff", "HEAD", "--no-ext-diff", "--binary")
        if diff:
            revision += "+dirty:" + hashlib.sha256(diff).hexdigest()[:12]
    digest, python, packages = environment()
    return Identity(revision, digest, python, packages)


_environment: tuple[list[tuple[str, str]], tuple[str, str, int]] | None = None


def environment() -> tuple[str, str, int]:
    """This interpreter's environment: a digest of the Python version and every
    installed distribution's version, the version, and how many distributions.

    Reading every distribution's metadata costs 40-60 ms; the answer is kept, in
    this process and in a file of the private runtime directory
    (:func:`proctor.runner.runtime_dir.runtime_dir`: the newest
    :data:`ENVIRONMENTS_KEPT`, one per ``sys.path``), for as long as no
    distribution on ``sys.path`` has come, gone or changed (:func:`_path_stamp`:
    installing, removing or upgrading one adds, removes or rewrites its
    ``*.dist-info`` or ``*.egg-info``); other files coming and going there (in the
    working directory, say) do not matter.
    """
    global _environment
    stamp = _path_stamp()
    if _environment is not None and _environment[0] == stamp:
        return _environment[1]
    cache = _environment_cache()
    found = _read_environment(cache, stamp) if cache is not None else None
    if found is None:
        found = _compute_environment()
        if cache is not None:
            _write_environment(cache, stamp, found)
    _environment = (stamp, found)
    return found


_DISTRIBUTIONS = (".dist-info", ".egg-info", ".egg")


def _path_stamp() -> list[tuple[str, str]]:
    """For each entry of ``sys.path``, what in it could be a distribution: a digest of
    the names of its ``*.dist-info``, ``*.egg-info`` and ``*.egg`` entries with their
    modification times and their metadata files'; a file's own time (a zip)."""
    return [(path, _entry_stamp(path)) for path in map(os.path.abspath, sys.path)]


def _entry_stamp(path: str) -> str:
    try:
        entries = os.scandir(path)
    except NotADirectoryError:
        return f"file {_mtime(path)}"
    except OSError:
        return "none"
    marks: list[str] = []
    with entries:
        for entry in entries:
            if entry.name.endswith(_DISTRIBUTIONS):
                inside = (os.path.join(entry.path, name) for name in ("METADATA", "PKG-INFO"))
                marks.append(" ".join([entry.name, *map(str, map(_mtime, [entry.path, *inside]))]))
    return hashlib.sha256("\n".join(sorted(marks)).encode()).hexdigest()[:16]


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def _compute_environment() -> tuple[str, str, int]:
    from importlib import metadata

    names = sorted({name for name in map(_named, metadata.distributions()) if name})
    python = f"{sys.implementation.name} {'.'.join(map(str, sys.version_info[:3]))}"
    digest = hashlib.sha256("\n".join([python, *names]).encode()).hexdigest()[:16]
    return digest, python, len(names)


def _named(dist: Any) -> str | None:
    """``name==version`` of an installed distribution; None if its metadata cannot
    be read (a half-removed installation: not one)."""
    try:
        return f"{dist.metadata['Name'] or ''}=={dist.version}".lower()
    except Exception:
        return None


ENVIRONMENTS_KEPT = 8
"""Environments the cache file of one interpreter keeps (the newest), one per ``sys.path``."""


def _environment_cache() -> str | None:
    """The file keeping this interpreter's environments (with each ``sys.path``)."""
    directory = runtime_dir()
    if directory is None:
        return None
    key = hashlib.sha256(sys.executable.encode()).hexdigest()[:16]
    return os.path.join(directory, f"environment-{key}.json")


def _kept_environments(path: str) -> list[dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as file:
            kept = json.load(file)
    except (OSError, ValueError):
        return []
    return [entry for entry in kept if isinstance(entry, dict)] if isinstance(kept, list) else []


def _read_environment(path: str, stamp: list[tuple[str, str]]) -> tuple[str, str, int] | None:
    try:
        for entry in _kept_environments(path):
            if [tuple(item) for item in entry["stamp"]] == stamp:
                return str(entry["digest"]), str(entry["python"]), int(entry["packages"])
    except (KeyError, TypeError, ValueError):  # not what this writes: read it all again
        return None
    return None


def _write_environment(
    path: str, stamp: list[tuple[str, str]], found: tuple[str, str, int]
) -> None:
    """Keep ``found`` first, with the newest others of other paths (two processes
    writing at once: one's is lost, and found again next time)."""
    digest, python, packages = found
    paths = [entry for entry, _ in stamp]
    try:
        others = [
            entry
            for entry in _kept_environments(path)
            if [item[0] for item in entry["stamp"]] != paths
        ]
    except (KeyError, TypeError, IndexError):  # not what this writes: start again
        others = []
    record = {"stamp": stamp, "digest": digest, "python": python, "packages": packages}
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        with open(temporary, "w", encoding="utf-8") as file:
            json.dump([record, *others][:ENVIRONMENTS_KEPT], file)
        os.replace(temporary, path)  # whole or not at all, whoever reads it
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)


def receive(conn: socket.socket) -> bytes:
    """What ``conn`` has (after the selector said it is readable), with the rest of
    a TLS record already decrypted; empty at the end of the connection."""
    try:
        data = conn.recv(_READ)
        pending = getattr(conn, "pending", None)
        while data and pending is not None and pending():
            data += conn.recv(pending())
    except OSError:
        return b""
    return data


class _Bridge:
    """Carries one worker's channels over ``conn``, in one thread (a TLS
    connection must not be read and written by two threads at once)."""

    def __init__(self, conn: socket.socket, spawned: Spawned, inbound: bytes) -> None:
        self.conn = conn
        self.process = spawned.process
        self.commands = spawned.commands
        self.inbound = bytearray(inbound)
        self.connected = True
        self.kill_at: float | None = None

    def kill(self) -> None:
        from proctor.runner.leftovers import kill_tree

        pid = self.process.pid
        kill_tree(pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)

    def send(self, data: bytes) -> None:
        if self.connected:
            try:
                self.conn.sendall(data)
            except OSError:
                self.lost()

    def lost(self) -> None:
        """The controller is gone: end the worker's commands; kill it 5 s later."""
        if self.connected:
            self.connected = False
            self.close_commands()
            self.kill_at = time.monotonic() + 5.0

    def close_commands(self) -> None:
        if self.commands >= 0:
            with contextlib.suppress(OSError):
                os.close(self.commands)
            self.commands = -1

    def obey(self) -> None:
        for kind, payload in decode_frames(self.inbound):
            if kind == b"C" and self.commands >= 0:
                with contextlib.suppress(OSError):
                    os.write(self.commands, payload)  # small: a JSON line
            elif kind == b"D":
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(self.process.pid, signal.SIGUSR1)
            elif kind == b"K":
                self.kill()

    def run(self, results: int, output: int) -> int:
        selector = selectors.DefaultSelector()
        selector.register(results, selectors.EVENT_READ, b"R")
        selector.register(output, selectors.EVENT_READ, b"O")
        selector.register(self.conn, selectors.EVENT_READ, b"")
        self.obey()
        drain_until: float | None = None  # the worker is gone; its output may be held open
        try:
            while len(selector.get_map()) > (1 if self.connected else 0):
                now = time.monotonic()
                deadlines = [t for t in (self.kill_at, drain_until) if t is not None]
                if drain_until is not None and now >= drain_until:
                    break
                if self.kill_at is not None and now >= self.kill_at:
                    self.kill()
                    self.kill_at = None
                    continue
                timeout = max(0.0, min(deadlines) - now) if deadlines else None
                for key, _ in selector.select(timeout):
                    if key.data == b"":
                        data = receive(self.conn)
                        if data:
                            self.inbound.extend(data)
                            self.obey()
                        else:
                            selector.unregister(self.conn)
                            self.lost()
                        continue
                    data = os.read(key.fd, _READ)
                    if data:
                        self.send(encode_frame(key.data, data))
                        continue
                    selector.unregister(key.fd)
                    if key.data == b"R":
                        drain_until = time.monotonic() + 1.0
                if not self.connected and len(selector.get_map()) == 0:
                    break
        finally:
            selector.close()
        returncode = self.process.wait()
        self.close_commands()
        if self.connected:
            self.send(encode_frame(b"X", str(returncode).encode()))
            # The controller reads a dead test's output from the capture files (on
            # this machine when it is the same one) once it has the exit: keep them
            # until it closes the connection.
            self.conn.settimeout(30.0)
            while self.connected and receive(self.conn):
                pass
        return returncode


def serve_remote(
    address: tuple[str, int],
    token: str,
    worker: int,
    root: str,
    argv: Sequence[str],
    env: dict[str, str] | None = None,
    tls: bool = False,
) -> str:
    """Run worker number ``worker`` here for the controller at ``address``.

    ``argv`` is the worker's command line after the interpreter, with the exact
    arguments :data:`COMMANDS`, :data:`RESULTS` and :data:`CAPTURE` standing for
    what is made here; the interpreter is this one. ``tls``: the connection is
    TLS with the Dask worker's own certificate (the cluster uses ``tls://``).
    Returns how it ended (for Dask's logs; the controller learns it through the
    connection).

    The worker is started first, so that it imports the suite while this side
    checks its revision and environment and is admitted; it gets no command
    before that, and a server refused (or that cannot reach the controller)
    kills it.
    """
    from proctor.runner.spawn import make_capture_dir, remove_capture_dir, spawn

    capture_dir = make_capture_dir()

    def command_line(commands: int, results: int) -> list[str]:
        values = {
            COMMANDS: f"--commands-fd={commands}",
            RESULTS: f"--results-fd={results}",
            CAPTURE: f"--capture-dir={capture_dir}",
        }
        return [sys.executable, *(values.get(part, part) for part in argv)]

    spawned: Spawned | None = None
    failure: OSError | None = None
    try:
        spawned = spawn(command_line, root, env)
    except OSError as error:
        failure = error
    conn: socket.socket | None = None
    try:
        admitted = _admission(address, token, worker, root, tls)
        if isinstance(admitted, str):
            return admitted
        conn, rest = admitted
        if spawned is None:
            said = f"proctor: cannot start a worker: {failure}\n".encode()
            conn.sendall(encode_frame(b"O", said))
            conn.sendall(encode_frame(b"X", b"1"))
            return f"cannot start: {failure}"
        running, spawned = spawned, None  # from here the bridge ends it
        output = running.process.stdout
        assert output is not None
        try:
            returncode = _Bridge(conn, running, rest).run(running.results, output.fileno())
        finally:
            with contextlib.suppress(OSError):
                os.close(running.results)
    finally:
        if spawned is not None:
            _discard(spawned)
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        remove_capture_dir(capture_dir)
    return f"worker {worker} exited with {returncode}"


def _admission(
    address: tuple[str, int], token: str, worker: int, root: str, tls: bool
) -> tuple[socket.socket, bytes] | str:
    """Connect to the controller and be admitted: the connection and what came
    after the controller's answer, or why not."""
    mine = identity(root)
    conn = socket.create_connection(address, timeout=60)
    keepalive(conn)
    if tls:
        from distributed import get_worker

        security: Any = get_worker().security  # (untyped)
        context = security.get_connection_args("worker").get("ssl_context")
        if context is None:
            conn.close()
            return "the cluster uses tls:// but this Dask worker has no TLS context"
        conn = context.wrap_socket(conn)
    conn.settimeout(None)
    hello = {
        "token": token,
        "worker": worker,
        "revision": mine.revision,
        "environment": mine.environment,
        "python": mine.python,
        "packages": mine.packages,
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
    reply_bytes = bytearray()
    try:
        conn.sendall(json.dumps(hello).encode() + b"\n")
        while b"\n" not in reply_bytes and len(reply_bytes) < MAX_HELLO:
            chunk = receive(conn)
            if not chunk:
                conn.close()
                return "the controller closed the connection"
            reply_bytes.extend(chunk)
        line, _, rest = bytes(reply_bytes).partition(b"\n")
        reply = json.loads(line)
    except BaseException:
        conn.close()
        raise
    if not reply.get("ok"):
        conn.close()
        return f"refused: {reply.get('reason')}"
    return conn, rest


def _discard(spawned: Spawned) -> None:
    """End a worker that was started for nothing (refused; the controller gone)."""
    from proctor.runner.leftovers import kill_tree

    pid = spawned.process.pid
    kill_tree(pid)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    spawned.process.wait()
    for fd in (spawned.commands, spawned.results):
        with contextlib.suppress(OSError):
            os.close(fd)
    if spawned.process.stdout is not None:
        spawned.process.stdout.close()
