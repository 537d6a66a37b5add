"""Per-test output capture: file-descriptor level, for the worker's whole life.

Why fd-level rather than swapping ``sys.stdout``: it also catches what C
extensions, ``os.write``, subprocesses and logging handlers bound to the
original ``sys.stderr`` at import time write, which a ``sys``-level swap
misses (and which would otherwise land, unattributed, in the worker's own
output). Why it is cheap: the redirection is set up **once**, when the worker
starts, not per test. Fds 1 and 2 point at two temporary files for the life
of the worker; at the end of each test the worker flushes Python's own
``sys.stdout``/``sys.stderr`` buffers and asks each file for its position
(one ``lseek`` each). Nothing written costs nothing more; something written
is read back with ``pread``, and the file is truncated for the next test.
Then fds 1 and 2 are pointed at their files again (one ``dup2`` each, as
pytest re-dups per test): a test that closed fd 1, or whose file reused
the number, cannot break the capture of the tests after it.

What the worker's own stdout and stderr were at start-up is kept on two other
descriptors (the *live* ones): faulthandler writes there, so a crash report
is never captured away, and output goes there when capture is off or while a
test is interactive (it asked for stdin: a debugger's prompt must be seen).

The capture files are named in the ``ready`` control event, so after a crash
the controller can read what the dead test printed; the worker deletes them
when it exits normally. A test that writes more than :data:`MAX_CAPTURE`
bytes to one stream keeps its first megabyte and the rest of the last 64
(the middle is replaced by a line saying how much was dropped), so a runaway
test cannot exhaust the worker's memory. Logging records (at whatever level the loggers let
through; levels are not changed) are collected by a root handler into a
``log`` attachment.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import TextIO

from proctor.runner.worker.channels import leave_if_forked, write_all
from proctor.wire.event import TEXT_MIME_TYPE
from proctor.wire.record import Attachment

__all__ = ["FdCapture", "LogCapture", "Output", "PassThrough"]

LOG_FORMAT = "%(asctime)s %(levelname)-8s %(name)s: %(message)s"
_lseek = os.lseek
_dup2 = os.dup2
SEEK_CUR = os.SEEK_CUR
MAX_CAPTURE = 64 * 1024 * 1024
"""Bytes of one stream of one test kept at most; beyond, the middle is dropped."""
CAPTURE_HEAD = 1024 * 1024
"""Of those, how many come from the start of the output (the rest from its end)."""


class LogCapture(logging.Handler):
    """Collects formatted log records until :meth:`take`."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.setFormatter(logging.Formatter(LOG_FORMAT))
        self._lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._lines.append(self.format(record))
        except Exception:
            self.handleError(record)

    def take(self) -> list[Attachment]:
        if not self._lines:
            return []
        lines, self._lines = self._lines, []
        text = "\n".join(lines) + "\n"
        return [Attachment("log", text.encode("utf-8", "replace"), TEXT_MIME_TYPE)]

    def install(self) -> None:
        logging.getLogger().addHandler(self)

    def uninstall(self) -> None:
        logging.getLogger().removeHandler(self)


class _Target:
    """One captured descriptor (1 or 2) and its file."""

    __slots__ = ("fd", "file_fd", "live_fd", "name", "path")

    def __init__(self, fd: int, name: str, live_fd: int, directory: str | None) -> None:
        self.fd = fd
        self.name = name
        self.live_fd = live_fd
        self.file_fd, self.path = _make_file(
            directory, f"proctor-worker-{os.getpid()}-{name}-", ".out"
        )

    def read_and_reset(self) -> bytes:
        size = os.lseek(self.file_fd, 0, os.SEEK_CUR)
        if not size:
            return b""
        if size <= MAX_CAPTURE:
            data = self._read(0, size)
        else:  # keep the start and the (usually more telling) end
            omitted = size - MAX_CAPTURE
            data = b"".join(
                (
                    self._read(0, CAPTURE_HEAD),
                    f"\n[... {omitted} bytes of output omitted ...]\n".encode(),
                    self._read(CAPTURE_HEAD + omitted, size),
                )
            )
        os.ftruncate(self.file_fd, 0)
        os.lseek(self.file_fd, 0, os.SEEK_SET)
        return data

    def _read(self, start: int, stop: int) -> bytes:
        chunks = []
        while start < stop:
            chunk = os.pread(self.file_fd, stop - start, start)
            if not chunk:
                break
            chunks.append(chunk)
            start += len(chunk)
        return b"".join(chunks)


def _make_file(directory: str | None, prefix: str, suffix: str) -> tuple[int, str]:
    """A new file only this user can read, open for reading and writing (what
    :func:`tempfile.mkstemp` does, without importing :mod:`tempfile` and with it
    :mod:`shutil` and :mod:`random`: 3-4 ms of every worker's start)."""
    if directory is None:
        directory = next(
            (path for path in map(os.environ.get, ("TMPDIR", "TEMP", "TMP")) if path),
            "/tmp" if os.name == "posix" else os.getcwd(),
        )
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        path = os.path.join(directory, f"{prefix}{os.urandom(6).hex()}{suffix}")
        try:
            return os.open(path, flags, 0o600), path
        except FileExistsError:
            continue
    raise FileExistsError(f"no unused file name like {prefix}...{suffix} in {directory}")


class FdCapture:
    """Redirects fds 1 and 2 into temporary files (see the module docstring)."""

    def __init__(
        self,
        live_out: int,
        live_err: int,
        *,
        directory: str | None = None,
        streams: tuple[TextIO | None, TextIO | None] | None = None,
    ) -> None:
        where = directory
        self._targets = (
            _Target(1, "stdout", live_out, where),
            _Target(2, "stderr", live_err, where),
        )
        self._streams = streams if streams is not None else (sys.stdout, sys.stderr)
        self._held: list[Attachment] = []
        self.live = False
        self._flush_streams()
        self._saved = [os.dup(target.fd) for target in self._targets]
        for target in self._targets:
            os.dup2(target.file_fd, target.fd)

    @property
    def paths(self) -> dict[str, str]:
        """The capture files by name (``stdout``, ``stderr``)."""
        return {target.name: target.path for target in self._targets}

    def _flush_streams(self) -> None:
        # Once per test: a plain try (contextlib.suppress costs a generator).
        for stream in self._streams:
            if stream is not None:
                try:  # noqa: SIM105
                    stream.flush()
                except Exception:  # a closed or broken stream has no output to give
                    pass

    def take(self) -> list[Attachment]:
        """What fds 1 and 2 received since the last call; ends a live spell.

        Fds 1 and 2 are pointed at the capture files again (one ``dup2`` each),
        whatever the test did to them. Once per test, so the common case (nothing
        written) is kept to four system calls and no method calls.
        """
        leave_if_forked()  # a forked child must not truncate the parent's files
        for stream in self._streams:  # _flush_streams, inlined
            if stream is not None:
                try:  # noqa: SIM105 - contextlib.suppress costs a generator
                    stream.flush()
                except Exception:  # a closed or broken stream has no output to give
                    pass
        out: list[Attachment] = []
        if self._held:
            out, self._held = self._held, []
        for target in self._targets:
            file_fd = target.file_fd
            if _lseek(file_fd, 0, SEEK_CUR):
                data = target.read_and_reset()
                if data:
                    out.append(Attachment(target.name, data, TEXT_MIME_TYPE))
            # Point the fd at its file again, every time: after a live spell,
            # and after a test that closed fd 1 or 2 (or let a file it opened
            # reuse the number), so the next test's output lands where it should.
            _dup2(file_fd, target.fd)
        self.live = False
        return _merge(out) if len(out) > 1 else out

    def go_live(self) -> None:
        """Send output to the live descriptors until the next :meth:`take`.

        What the test printed so far is shown there first (a debugger's banner
        and prompt are among it) and kept for the test's attachments.
        """
        if self.live:
            return
        self._flush_streams()
        for target in self._targets:
            data = target.read_and_reset()
            if data:
                self._held.append(Attachment(target.name, data, TEXT_MIME_TYPE))
                with contextlib.suppress(OSError):  # nobody reads the live output: still run
                    write_all(target.live_fd, data)
            os.dup2(target.live_fd, target.fd)
        self.live = True

    def close(self) -> None:
        """Put fds 1 and 2 back as they were and delete the files."""
        self._flush_streams()
        for target, saved in zip(self._targets, self._saved, strict=True):
            os.dup2(saved, target.fd)
            os.close(saved)
            os.close(target.file_fd)
            with contextlib.suppress(OSError):
                os.unlink(target.path)


def _merge(attachments: list[Attachment]) -> list[Attachment]:
    """One attachment per name (held chunks and the rest joined), in first-seen order."""
    if len(attachments) < 2:
        return attachments
    by_name: dict[str, list[bytes]] = {}
    for item in attachments:
        by_name.setdefault(item.name, []).append(item.content)
    return [Attachment(name, b"".join(parts), TEXT_MIME_TYPE) for name, parts in by_name.items()]


class PassThrough:
    """No capture: output goes wherever fds 1 and 2 already go."""

    live = True
    paths: dict[str, str] = {}

    def take(self) -> list[Attachment]:
        return []

    def go_live(self) -> None:
        pass

    def close(self) -> None:
        pass


class Output:
    """Captured output for the event adapter: the fd capture plus the log handler."""

    def __init__(self, fds: FdCapture | PassThrough, log: LogCapture | None) -> None:
        self.fds = fds
        self.log = log
        if log is not None:
            log.install()

    @property
    def paths(self) -> dict[str, str]:
        return self.fds.paths

    def take(self) -> list[Attachment]:
        taken = self.fds.take()
        log = self.log
        if log is not None and log._lines:  # once per test: no call when nothing was logged
            taken.extend(log.take())
        return taken

    def go_live(self) -> None:
        self.fds.go_live()

    def close(self) -> None:
        if self.log is not None:
            self.log.uninstall()
        self.fds.close()
