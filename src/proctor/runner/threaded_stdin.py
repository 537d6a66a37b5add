"""Reading tests' input (a debugger's commands) from the controller's own stdin.

A daemon thread reads one line per request and posts it to the backend, so the
controller's loop never blocks on the terminal while other workers' results
keep arriving. At end of input every later request is answered with ``b""``
(end of input for the test). The stream is :attr:`ThreadedStdin.interactive`
when it is a terminal.
"""

from __future__ import annotations

import os
import stat
import threading
from typing import BinaryIO

from proctor.runner.backend import StdinLine, WorkerBackend

__all__ = ["ThreadedStdin"]


class ThreadedStdin:
    """A :class:`~proctor.runner.backend.StdinSource` over a binary stream."""

    def __init__(self, backend: WorkerBackend, stream: BinaryIO) -> None:
        self._backend = backend
        self._stream = stream
        self._requests = threading.Semaphore(0)
        self._thread: threading.Thread | None = None
        try:
            self._interactive = stream.isatty()
        except (OSError, ValueError):
            self._interactive = False
        self._ended = _is_devnull(stream)

    @property
    def interactive(self) -> bool:
        return self._interactive

    @property
    def exhausted(self) -> bool:
        return self._ended

    def request(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, daemon=True, name="proctor-stdin")
            self._thread.start()
        self._requests.release()

    def _serve(self) -> None:
        ended = False
        while True:
            self._requests.acquire()
            line = b""
            if not ended:
                try:
                    line = self._stream.readline()
                except (OSError, ValueError):
                    line = b""
                ended = not line
                self._ended = ended
            self._backend.post(StdinLine(line))


def _is_devnull(stream: BinaryIO) -> bool:
    """Whether ``stream`` is ``/dev/null`` (or closed): no input will ever come."""
    try:
        here = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    try:
        null = os.stat(os.devnull)
    except OSError:  # pragma: no cover
        return False
    return stat.S_ISCHR(here.st_mode) and here.st_rdev == null.st_rdev
