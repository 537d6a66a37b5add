"""Standard output that can fail: a reader that went away, a full disk.

``proctor last | head -1`` closes the pipe after one line; ``proctor run >
/dev/full`` cannot write a byte. Neither may end in a traceback (not even at
interpreter shutdown, when Python flushes stdout one last time), and a run must
not lose a result because its output could not be shown.

:func:`guarded_stdout` (used by :func:`proctor.cli.commands.main` around every
command) replaces ``sys.stdout`` with a wrapper whose writes and flushes never
raise ``OSError``. At the first failure it points the file descriptor at
``/dev/null`` (so whatever is still buffered, and the final flush, go nowhere
quietly) and then, by the :class:`Policy`:

* ``STOP`` (the query and stream commands): raises :class:`OutputClosed`, which
  ends the command; its answer could no longer reach anyone.
* ``CONTINUE`` (``proctor run``, set by :func:`continue_on_failure`): drops the
  rest of the output and lets the command go on, so every test still runs and
  every result is stored.

A stdout closed before Python started (``>&-``) fails the same way at the
first write. A full disk, an I/O error or a closed stdout (anything but a
closed pipe) is reported on stderr in one line when it happens. The exit
status (:func:`exit_status`): a closed pipe ends a query or stream command with
141 (128 + SIGPIPE, what the shell reports for ``cat`` or ``git log`` in the
same place) and leaves ``run``'s status as it is; any other failure gives 2
(``run``: its own status when that is already non-zero, since the tests'
verdict stands).

A file the user named for a report or a stream (``last --junit FILE``,
``export --output FILE``) is written by :func:`write_output`: a failure is one
line naming the file, and exit status 2.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import io
import os
import sys
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, BinaryIO, TextIO, cast

from proctor.cli.repository import RepositoryError
from proctor.exitcode import ExitCode

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = [
    "GuardedStdout",
    "OutputClosed",
    "Policy",
    "continue_on_failure",
    "exit_status",
    "guarded_stdout",
    "reserve_standard_descriptors",
    "write_output",
]


class OutputClosed(Exception):
    """Standard output failed and the command should stop (see the module docstring)."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


class Policy(enum.Enum):
    STOP = "stop"
    CONTINUE = "continue"


class _State:
    """What the text and binary sides of one guarded stdout share."""

    def __init__(self, original: TextIO, err: TextIO, policy: Policy) -> None:
        self.original = original
        self.err = err
        self.policy = policy
        self.error: OSError | None = None

    @property
    def broken_pipe(self) -> bool:
        return self.error is not None and self.error.errno in (errno.EPIPE, errno.ECONNRESET)

    def fail(self, error: OSError) -> None:
        if self.error is None:
            self.error = error
            self._silence()
            if not self.broken_pipe:
                what = error.strerror or str(error)
                then = (
                    "the run goes on, and every result is stored"
                    if self.policy is Policy.CONTINUE
                    else "the output is incomplete"
                )
                with contextlib.suppress(OSError, ValueError):
                    self.err.write(f"proctor: cannot write to standard output ({what}); {then}\n")
                    self.err.flush()
        if self.policy is Policy.STOP:
            raise OutputClosed(error)

    def _silence(self) -> None:
        """Point the descriptor at /dev/null, so that what is still buffered (and
        the interpreter's last flush) is written nowhere instead of failing again."""
        try:
            fd = self.original.fileno()
        except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
            return  # not a file (a test's buffer): writes are dropped by the wrapper
        with contextlib.suppress(OSError):
            null = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(null, fd)
            finally:
                os.close(null)


class _GuardedBinary(io.RawIOBase):
    """``sys.stdout.buffer`` under the guard."""

    def __init__(self, state: _State, raw: BinaryIO) -> None:
        super().__init__()
        self._state = state
        self._raw = raw

    def writable(self) -> bool:
        return True

    def write(self, data: Buffer) -> int:
        view = memoryview(data).cast("B")
        size = len(view)
        try:
            # Until all is written: under PYTHONUNBUFFERED, ``sys.stdout.buffer`` is
            # the unbuffered file, whose write may take only part (a pipe
            # interrupted by a signal); callers, as usual, ignore the count.
            while view and self._state.error is None:
                written = self._raw.write(view)
                view = view[written or 0 :]
        except OSError as error:
            self._state.fail(error)
        return size

    def flush(self) -> None:
        if self._state.error is None:
            try:
                self._raw.flush()
            except OSError as error:
                self._state.fail(error)

    def fileno(self) -> int:
        return self._raw.fileno()

    def isatty(self) -> bool:
        try:
            return self._raw.isatty()
        except (OSError, ValueError):
            return False

    def close(self) -> None:  # the real stream is not ours to close
        pass


class GuardedStdout(io.TextIOBase):
    """``sys.stdout`` under the guard (see the module docstring)."""

    def __init__(self, state: _State) -> None:
        super().__init__()
        self._state = state
        self._stream = state.original
        raw = getattr(self._stream, "buffer", None)
        self._buffer = _GuardedBinary(state, raw) if raw is not None else None
        # Under PYTHONUNBUFFERED the text layer writes straight to the unbuffered
        # file and ignores a short write (a pipe whose reader left mid-write, a
        # signal): the rest would be lost without an error. Text is then encoded
        # here and written by the binary side, which writes all or fails.
        self._unbuffered = isinstance(raw, io.RawIOBase) and self._buffer is not None

    @property
    def failed(self) -> OSError | None:
        return self._state.error

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return cast(str, getattr(self._stream, "encoding", "utf-8"))

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return cast("str | None", getattr(self._stream, "errors", "strict"))

    @property
    def buffer(self) -> BinaryIO:
        if self._buffer is None:
            raise AttributeError("buffer")
        return cast(BinaryIO, self._buffer)

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if self._state.error is None:
            if self._unbuffered:
                assert self._buffer is not None
                self._buffer.write(text.encode(self.encoding, self.errors or "strict"))
                return len(text)
            try:
                self._stream.write(text)
            except OSError as error:
                self._state.fail(error)
        return len(text)

    def flush(self) -> None:
        if self._state.error is None:
            try:
                self._stream.flush()
            except OSError as error:
                self._state.fail(error)

    def fileno(self) -> int:
        return self._stream.fileno()

    def isatty(self) -> bool:
        try:
            return self._stream.isatty()
        except (OSError, ValueError):
            return False

    def close(self) -> None:
        pass


class _Closed(io.TextIOBase):
    """What stands for a stdout that was closed before Python started
    (``proctor last >&-``, where ``sys.stdout`` is None): every write fails."""

    encoding = "utf-8"
    errors = "strict"

    @property
    def buffer(self) -> _Closed:
        return self

    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        raise OSError(errno.EBADF, "it is closed")

    def flush(self) -> None:
        pass

    def fileno(self) -> int:
        raise OSError(errno.EBADF, "it is closed")

    def isatty(self) -> bool:
        return False


def reserve_standard_descriptors() -> None:
    """Open /dev/null on any of descriptors 0, 1 and 2 that is closed.

    Otherwise the next file opened (the repository's database) would take the
    number, and whatever writes to "stdout" (a child process, faulthandler, C
    code) would write into it. For the console script, before anything is opened.
    """
    for fd in (0, 1, 2):
        if not _is_open(fd):
            try:
                null = os.open(os.devnull, os.O_RDWR)
            except OSError:  # pragma: no cover - no /dev/null
                return
            if null != fd:
                os.dup2(null, fd)
                os.close(null)


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


_current: list[_State] = []


@contextlib.contextmanager
def guarded_stdout() -> Iterator[GuardedStdout]:
    """``sys.stdout`` guarded for the duration (see the module docstring); the
    policy is ``STOP`` until :func:`continue_on_failure`."""
    original = sys.stdout
    stream = original if original is not None else cast(TextIO, _Closed())
    state = _State(stream, sys.stderr, Policy.STOP)
    guarded = GuardedStdout(state)
    sys.stdout = cast(TextIO, guarded)
    _current.append(state)
    try:
        yield guarded
    finally:
        _current.remove(state)
        if sys.stdout is cast(IO[str], guarded):
            sys.stdout = original


def continue_on_failure() -> None:
    """From now on, a failing stdout drops the output and lets the command go on."""
    if _current:
        _current[-1].policy = Policy.CONTINUE


def exit_status(guarded: GuardedStdout, status: int) -> int:
    """The command's exit status, given what became of its output."""
    state = guarded._state
    if state.error is None:
        return status
    if state.policy is Policy.CONTINUE:
        if state.broken_pipe or status != 0:
            return status
        return ExitCode.ERROR
    return ExitCode.BROKEN_PIPE if state.broken_pipe else ExitCode.ERROR


def write_output(path: str, data: bytes) -> None:
    """Write a report or stream to ``path``; a failure exits 2 naming the file
    (1 is what ``last`` and ``failing`` say when tests failed)."""
    try:
        with open(path, "wb") as handle:
            handle.write(data)
    except OSError as error:
        raise RepositoryError(f"cannot write {path}: {error.strerror or error}") from None
