"""A worker on another machine: its channels bridged over one TCP connection.

:func:`serve_remote` runs where the worker is to run (in a Dask worker's
thread, see :mod:`proctor.runner.dask_backend`): it connects back to the
controller, proves it belongs to this run (the per-run token) and says what
code and environment it would run (:func:`identity`); the controller answers
whether it may start. Then it starts ``python -m proctor.worker --serve`` in the
project checkout there, exactly as the local backend does
(:func:`proctor.runner.spawn.spawn`), and carries its channels as frames:

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
import threading
from collections.abc import Sequence
from dataclasses import dataclass

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
    TCP keepalive probes after 10 s of silence, every 5 s, 3 of them."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", 10), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 3)):
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
    from importlib import metadata

    commit = _git(root, "rev-parse", "HEAD")
    if commit is None:
        revision = "(not a git checkout)"
    else:
        revision = commit.decode().strip()
        diff = _git(root, "diff", "HEAD", "--no-ext-diff", "--binary")
        if diff:
            revision += "+dirty:" + hashlib.sha256(diff).hexdigest()[:12]
    names = sorted(
        {
            f"{dist.metadata['Name'] or ''}=={dist.version}".lower()
            for dist in metadata.distributions()
        }
    )
    python = f"{sys.implementation.name} {'.'.join(map(str, sys.version_info[:3]))}"
    digest = hashlib.sha256("\n".join([python, *names]).encode()).hexdigest()[:16]
    return Identity(revision, digest, python, len(names))


def _pump_commands(
    conn: socket.socket, commands: int, pid: int, buffer: bytearray, stopped: threading.Event
) -> None:
    """Controller -> worker: commands, stack dumps, kills; at the end, close the
    commands channel and kill the worker if it has not gone 5 s later."""
    from proctor.runner.leftovers import kill_tree

    def kill() -> None:
        kill_tree(pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)

    try:
        while True:
            for kind, payload in decode_frames(buffer):
                if kind == b"C":
                    with contextlib.suppress(OSError):
                        os.write(commands, payload)  # small: a JSON line
                elif kind == b"D":
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGUSR1)
                elif kind == b"K":
                    kill()
            try:
                data = conn.recv(_READ)
            except OSError:
                data = b""
            if not data:
                break
            buffer.extend(data)
    finally:
        with contextlib.suppress(OSError):
            os.close(commands)
        if not stopped.wait(5.0):
            kill()


def serve_remote(
    address: tuple[str, int],
    token: str,
    worker: int,
    root: str,
    argv: Sequence[str],
    env: dict[str, str] | None = None,
) -> str:
    """Run worker number ``worker`` here for the controller at ``address``.

    ``argv`` is the worker's command line after the interpreter, with the exact
    arguments :data:`COMMANDS`, :data:`RESULTS` and :data:`CAPTURE` standing for
    what is made here; the interpreter is this one. Returns how it ended (for
    Dask's logs; the controller learns it through the connection).
    """
    from proctor.runner.spawn import make_capture_dir, remove_capture_dir, spawn

    mine = identity(root)
    conn = socket.create_connection(address, timeout=60)
    conn.settimeout(None)
    keepalive(conn)
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
    conn.sendall(json.dumps(hello).encode() + b"\n")
    reply_bytes = bytearray()
    while b"\n" not in reply_bytes and len(reply_bytes) < MAX_HELLO:
        chunk = conn.recv(4096)
        if not chunk:
            conn.close()
            return "the controller closed the connection"
        reply_bytes.extend(chunk)
    line, _, rest = bytes(reply_bytes).partition(b"\n")
    reply = json.loads(line)
    if not reply.get("ok"):
        conn.close()
        return f"refused: {reply.get('reason')}"
    capture_dir = make_capture_dir()

    def command_line(commands: int, results: int) -> list[str]:
        values = {
            COMMANDS: f"--commands-fd={commands}",
            RESULTS: f"--results-fd={results}",
            CAPTURE: f"--capture-dir={capture_dir}",
        }
        return [sys.executable, *(values.get(part, part) for part in argv)]

    try:
        spawned = spawn(command_line, root, env)
    except OSError as error:
        conn.sendall(encode_frame(b"O", f"proctor: cannot start a worker: {error}\n".encode()))
        conn.sendall(encode_frame(b"X", b"1"))
        conn.close()
        remove_capture_dir(capture_dir)
        return f"cannot start: {error}"
    process = spawned.process
    stopped = threading.Event()
    pump = threading.Thread(
        target=_pump_commands,
        args=(conn, spawned.commands, process.pid, bytearray(rest), stopped),
        daemon=True,
        name=f"proctor-remote-{worker}",
    )
    pump.start()
    assert process.stdout is not None
    output = process.stdout.fileno()
    selector = selectors.DefaultSelector()
    selector.register(spawned.results, selectors.EVENT_READ, b"R")
    selector.register(output, selectors.EVENT_READ, b"O")
    open_fds = 2
    try:
        while open_fds:
            for key, _ in selector.select():
                fd = key.fd
                data = os.read(fd, _READ)
                if data:
                    conn.sendall(encode_frame(key.data, data))
                else:
                    selector.unregister(fd)
                    open_fds -= 1
        returncode = process.wait()
        stopped.set()
        conn.sendall(encode_frame(b"X", str(returncode).encode()))
        # The controller reads a dead test's output from the capture files (on this
        # machine when it is the same one) once it has the exit: keep them until it
        # closes the connection.
        pump.join(30.0)
    except OSError:  # the controller went away: the pump ends the worker
        returncode = process.wait()
        stopped.set()
    finally:
        selector.close()
        with contextlib.suppress(OSError):
            os.close(spawned.results)
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_RDWR)
        conn.close()
        remove_capture_dir(capture_dir)
    return f"worker {worker} exited with {returncode}"
