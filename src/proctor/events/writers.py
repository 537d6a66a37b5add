"""Sinks that write events to a binary file object.

Each writer buffers encoded events and writes them out in blocks; call
:meth:`flush` at natural boundaries (the end of an input batch) so a live pipe
sees results as they happen, and :meth:`close` at the end.
"""

from __future__ import annotations

from typing import BinaryIO

from proctor.wire import v2
from proctor.wire.event import Event

__all__ = ["PassthroughWriter", "V2Writer"]

_FLUSH_EVENTS = 4096


class V2Writer:
    """Writes events as subunit v2."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._pending: list[Event] = []

    def send(self, event: Event) -> None:
        self._pending.append(event)
        if len(self._pending) >= _FLUSH_EVENTS:
            self._write()

    def _write(self) -> None:
        if self._pending:
            self._stream.write(v2.encode_many(self._pending))
            self._pending.clear()

    def flush(self) -> None:
        self._write()
        self._stream.flush()

    def close(self) -> None:
        self.flush()


class PassthroughWriter:
    """Writes the raw bytes of non-test file events (what tests printed) unchanged."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def send(self, event: Event) -> None:
        if event.test_id is None and event.file_name is not None and event.file_bytes:
            self._stream.write(event.file_bytes)

    def flush(self) -> None:
        self._stream.flush()

    def close(self) -> None:
        self.flush()
