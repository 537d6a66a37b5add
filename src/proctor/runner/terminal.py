"""Reading tests' input (a debugger's commands) from the controller's own stdin.

A daemon thread reads one line per request and posts it to the backend, so the
controller's loop never blocks on the terminal while other workers' results
keep arriving. At end of input every later request is answered with ``b""``
(end of input for the test). The stream is :attr:`ThreadedStdin.interactive`
when it is a terminal.
"""

from __future__ import annotations

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

    @property
    def interactive(self) -> bool:
        return self._interactive

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
            self._backend.post(StdinLine(line))
