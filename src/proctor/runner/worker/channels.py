"""The worker's two protocol channels: results out, commands in.

:class:`ResultsWriter` is the sink every event goes through. It holds events
and encodes them in one batch when :meth:`~ResultsWriter.flush` is called: at
the start of each test (so the previous test's result and the new test's
``inprogress`` leave in a single ``write``), at class boundaries, and at the end
of every command. So a passing test costs one system call, a crash loses
nothing that happened before the crashed test started, and progress stays live.

:class:`CommandReader` reads JSON-line commands with plain blocking ``os.read``
calls: the worker does nothing else while it waits, so it needs neither threads
nor ``select``. Commands that arrive while a test waits for stdin are queued
and obeyed, in order, after the test.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable

from proctor.runner.protocol import Command, ProtocolError, Quit, Stdin, decode_command
from proctor.wire.event import Event
from proctor.wire.v2 import EncodeError, encode, encode_many

__all__ = [
    "CommandReader",
    "ControllerGone",
    "ResultsWriter",
    "forget_fork",
    "leave_if_forked",
    "wire_aliases",
    "wire_text",
    "write_all",
]


class ControllerGone(BaseException):
    """The results channel is closed: nobody is listening, so the worker stops.

    A ``BaseException`` so that no ``except Exception`` in a test framework
    between the write and the worker's main loop can swallow it.
    """


class ResultsWriter:
    """A sink that encodes events in batches and writes them to a file descriptor."""

    __slots__ = ("_fd", "_pending", "closed", "gone")

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._pending: list[Event] = []
        self.closed = False
        self.gone = False
        """Whether the results channel was found closed (a framework may swallow the error)."""

    def send(self, event: Event) -> None:
        self._pending.append(event)

    def flush(self) -> None:
        """Encode and write everything held; raise :class:`ControllerGone` if the pipe is closed."""
        pending = self._pending
        if not pending:
            return
        leave_if_forked()
        try:
            data = encode_many(pending)
        except EncodeError:
            data = b"".join(_encode_safely(event) for event in pending)
        pending.clear()
        try:
            written = os.write(self._fd, data)  # write_all, its usual single write inlined
            if written < len(data):
                write_all(self._fd, data[written:])
        except (BrokenPipeError, ConnectionResetError):
            self.gone = True
            raise ControllerGone("the results channel was closed") from None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.flush()


_forked = False


def _after_fork_in_child() -> None:
    global _forked
    _forked = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def forget_fork() -> None:
    """This forked process is a worker in its own right (a watch zygote's child,
    :mod:`proctor.runner.worker.zygote`), not a test's child: do not end it."""
    global _forked
    _forked = False


def leave_if_forked() -> None:
    """End a forked child that has escaped its test back into the worker.

    A test may fork, and its child may return into the test framework (a
    ``sys.exit()`` in the child is caught by unittest like any exception). Such
    a child would go on running the rest of the batch, writing packets into the
    controller's pipe between the parent's, truncating the parent's capture
    files and reading its commands. The worker's machinery calls this before
    touching any of those; in a child it exits at once, status 0. A fork hook
    sets the flag, so the check costs a comparison per test.
    """
    if _forked:
        os._exit(0)


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` (``os.write`` may write less); errors propagate.

    Once per test on the results channel: one call, and a view only for a short write.
    """
    written = os.write(fd, data)
    if written < len(data):
        view = memoryview(data)[written:]
        while view:
            view = view[os.write(fd, view) :]


def _encode_safely(event: Event) -> bytes:
    """Encode an event whose strings subunit cannot carry, after repairing them.

    Test ids come from user code: a lone surrogate (from an undecodable file
    name) or a NUL would make the encoder refuse the whole batch. Replacing the
    offending characters keeps the stream going and the test visible.
    """
    try:
        return encode(event)
    except EncodeError:
        return encode(
            event._replace(
                test_id=_repair(event.test_id),
                tags=frozenset(_repair(tag) or "" for tag in event.tags),
                file_name=_repair(event.file_name),
                mime_type=_repair(event.mime_type),
                route_code=_repair(event.route_code),
            )
        )


def _repair(text: str | None) -> str | None:
    if text is None:
        return None
    raw = text.encode("utf-8", "backslashreplace").replace(b"\x00", b"\\x00")
    return raw.decode("utf-8")


def wire_text(text: str) -> str:
    """``text`` as the results channel carries it in a test id (or a tag, a file name).

    Unchanged unless subunit cannot carry it: a lone surrogate becomes
    ``\\udcff``, a NUL ``\\x00`` (the repair :meth:`ResultsWriter.flush` makes).
    """
    if "\x00" not in text:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            pass
        else:
            return text
    return _repair(text) or ""


def wire_aliases(ids: Iterable[str]) -> dict[str, str]:
    """``{id as the controller sees it: id}`` for the ids the results channel repairs.

    The controller can only name a test by the id it received; a suite looks an
    id it does not know up here before calling it unknown.
    """
    aliases: dict[str, str] = {}
    for test_id in ids:
        seen = wire_text(test_id)
        if seen != test_id:
            aliases.setdefault(seen, test_id)
    return aliases


class CommandReader:
    """Reads commands (JSON lines) from a file descriptor, blocking."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = b""
        self._queue: deque[Command | ProtocolError] = deque()
        self.eof = False

    def next(self) -> Command | ProtocolError | None:
        """The next command (or the error a bad line makes); ``None`` at end of input."""
        if self._queue:
            return self._queue.popleft()
        return self._read()

    def wait_for_stdin(self) -> bytes:
        """Block until a :class:`Stdin` command arrives and return its bytes.

        Other commands are queued for later. A :class:`Quit`, or the end of the
        channel, means no input is coming: it returns ``b""`` (end of input).
        """
        while True:
            command = self._read()
            if command is None:
                return b""
            if isinstance(command, Stdin):
                return command.data
            self._queue.append(command)
            if isinstance(command, Quit):
                return b""

    def _read(self) -> Command | ProtocolError | None:
        leave_if_forked()
        while True:
            newline = self._buffer.find(b"\n")
            while newline < 0:
                if self.eof:
                    return self._last_line()
                chunk = os.read(self._fd, 65536)
                if not chunk:
                    self.eof = True
                    continue
                self._buffer += chunk
                newline = self._buffer.find(b"\n")
            line = self._buffer[:newline]
            self._buffer = self._buffer[newline + 1 :]
            if line.strip():
                return _decode(line)

    def _last_line(self) -> Command | ProtocolError | None:
        line, self._buffer = self._buffer, b""
        return _decode(line) if line.strip() else None


def _decode(line: bytes) -> Command | ProtocolError:
    try:
        return decode_command(line)
    except ProtocolError as error:
        return error
