"""Sinks that write events to a binary file object.

Each writer buffers encoded events and writes them out in blocks; call
:meth:`flush` at natural boundaries (the end of an input batch) so a live pipe
sees results as they happen, and :meth:`close` at the end.
"""

from __future__ import annotations

import shutil
import tempfile
from typing import BinaryIO

from proctor.events.collector import RecordCollector
from proctor.wire import v2
from proctor.wire.event import Event
from proctor.wire.record import TestRecord

__all__ = ["JUnitWriter", "JsonlWriter", "PassthroughWriter", "V1Writer", "V2Writer"]

_SPOOL_IN_MEMORY = 16 * 1024 * 1024
_BLOCK = 1024 * 1024

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
        if not self._pending:
            return
        try:
            data = v2.encode_many(self._pending)
        except v2.EncodeError:
            # Write every event before the one that cannot be written, then say why.
            good: list[bytes] = []
            try:
                for event in self._pending:
                    good.append(v2.encode(event))  # noqa: PERF401 - keep those before a failure
            finally:
                self._stream.write(b"".join(good))
                self._pending.clear()
            raise
        self._stream.write(data)
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


class JsonlWriter:
    """Writes events as JSON lines, one event per line, losslessly."""

    def __init__(self, stream: BinaryIO) -> None:
        from proctor.wire import jsonl  # imported by the writers that need it only

        self._stream = stream
        self._encode = jsonl.encode_event

    def send(self, event: Event) -> None:
        self._stream.write(self._encode(event))

    def flush(self) -> None:
        self._stream.flush()

    def close(self) -> None:
        self.flush()


class V1Writer:
    """Writes subunit v1, a test at a time as each completes (like subunit-2to1).

    Output that belongs to no test is written raw, where it came.
    """

    def __init__(self, stream: BinaryIO) -> None:
        from proctor.wire import v1

        self._stream = stream
        self._encoder = v1.V1Encoder()
        self._collector = RecordCollector(self._record, on_other=self._other)

    def _record(self, record: TestRecord) -> None:
        self._stream.write(self._encoder.record(record))

    def _other(self, event: Event) -> None:
        if event.file_name is not None and event.file_bytes:
            self._stream.write(self._encoder.passthrough(event.file_bytes))

    def send(self, event: Event) -> None:
        self._collector.send(event)

    def flush(self) -> None:
        self._stream.flush()

    def close(self) -> None:
        self._collector.close()
        self.flush()


class JUnitWriter:
    """Writes a JUnit XML report when the stream ends.

    JUnit puts the counts in the ``<testsuite>`` start tag, before the test
    cases, so each ``<testcase>`` is written as its test completes to a spool
    (memory up to 16 MiB, then a temporary file) and copied out after the head
    at :meth:`close`. Memory stays flat however long the stream.
    """

    def __init__(self, stream: BinaryIO, *, name: str = "proctor") -> None:
        self._stream = stream
        self._name = name
        from proctor.wire import junit  # its regexes take ~15 ms to compile: only when used

        self._junit = junit
        self._totals = junit.JUnitTotals()
        # Both spools live until close(), which closes them.
        self._cases = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)  # noqa: SIM115
        self._output = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)  # noqa: SIM115
        self._pending: list[bytes] = []  # written to the spool in blocks
        self._pending_size = 0
        self._collector = RecordCollector(self._record, on_other=self._other)
        self.send = self._collector.send  # type: ignore[method-assign]  # one call less per event

    def _record(self, record: TestRecord) -> None:
        self._totals.add(record)
        case = self._junit.testcase_xml(record)
        self._pending.append(case)
        self._pending_size += len(case)
        if self._pending_size >= _BLOCK:
            self._cases.write(b"".join(self._pending))
            self._pending.clear()
            self._pending_size = 0

    def _other(self, event: Event) -> None:
        if event.file_name is not None and event.file_bytes:
            self._output.write(event.file_bytes)

    def send(self, event: Event) -> None:
        self._collector.send(event)

    @property
    def successful(self) -> bool:
        """No test failed, errored (never finished) or passed unexpectedly."""
        return not (self._totals.failures or self._totals.errors)

    def flush(self) -> None:
        pass  # nothing can be written before the counts are known

    def close(self) -> None:
        self._collector.close()
        self._cases.write(b"".join(self._pending))
        self._pending.clear()
        out = self._stream
        junit = self._junit
        out.write(junit.document_head(self._totals, name=self._name))
        self._cases.seek(0)
        shutil.copyfileobj(self._cases, out)
        self._output.seek(0)
        chunks = iter(lambda: self._output.read(_BLOCK), b"")
        for part in junit.output_xml_parts("system-out", chunks):
            out.write(part)
        out.write(junit.document_tail())
        out.flush()
        self._cases.close()
        self._output.close()
