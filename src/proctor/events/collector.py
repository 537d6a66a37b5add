"""Assemble test records from events.

One collector turns the event stream into :class:`~proctor.wire.record.TestRecord`
values: the reporters, the JUnit and v1 writers, the store and triage all read
records made here, so they agree on what a test was.

Rules (python-subunit/testtools semantics, minus their losses):

* A test is keyed by (test id, route code); the same id on two routes is two tests.
* The first timestamp is its start, the last its stop.
* Its tags are those of the last event that carried any.
* A file is (name) within the test; chunks append until a chunk flagged EOF,
  after which the same name starts a new attachment. The MIME type is the first
  one given (``application/octet-stream`` if none). Empty files are kept.
* The first final status completes the record, which is passed on at once, so
  memory holds only tests still running.
* At :meth:`RecordCollector.close`, tests that never finished are passed on with
  status ``INPROGRESS`` (or ``NONE`` when no status was ever seen).
* Events without a test id (non-test output) go to ``on_other`` if given.
"""

from __future__ import annotations

from collections.abc import Callable

from proctor.wire.event import INTERIM, Event, Status
from proctor.wire.record import DEFAULT_MIME_TYPE, Attachment, TestRecord

__all__ = ["RecordCollector", "collect_records"]


class _OpenFile:
    __slots__ = ("chunks", "mime_type", "name")

    def __init__(self, name: str, mime_type: str | None) -> None:
        self.name = name
        self.mime_type = mime_type
        self.chunks: list[bytes] = []


class _OpenTest:
    __slots__ = ("files", "open_files", "runnable", "start", "status", "stop", "tags")

    def __init__(self) -> None:
        self.status = Status.NONE
        self.start: int | None = None
        self.stop: int | None = None
        self.tags: frozenset[str] = frozenset()
        self.runnable = True
        self.files: list[_OpenFile] = []  # in order of first chunk
        self.open_files: dict[str, _OpenFile] = {}  # name -> file not yet at EOF


class RecordCollector:
    """A sink that calls ``on_record`` with each test's record as it completes."""

    def __init__(
        self,
        on_record: Callable[[TestRecord], None],
        on_other: Callable[[Event], None] | None = None,
    ) -> None:
        self._on_record = on_record
        self._on_other = on_other
        self._open: dict[tuple[str, str | None], _OpenTest] = {}

    @property
    def running(self) -> list[tuple[str, str | None]]:
        """(test id, route code) of the tests started and not yet finished."""
        return list(self._open)

    def send(self, event: Event) -> None:
        test_id = event.test_id
        if test_id is None:
            if self._on_other is not None:
                self._on_other(event)
            return
        key = (test_id, event.route_code)
        test = self._open.get(key)
        if test is None:
            test = self._open[key] = _OpenTest()
        timestamp = event.timestamp
        if timestamp is not None:
            if test.start is None:
                test.start = timestamp
            test.stop = timestamp
        if event.tags:
            test.tags = event.tags
        name = event.file_name
        if name is not None:
            current = test.open_files.get(name)
            if current is None:
                current = _OpenFile(name, event.mime_type)
                test.files.append(current)
                test.open_files[name] = current
            elif current.mime_type is None and event.mime_type:
                current.mime_type = event.mime_type
            if event.file_bytes:
                current.chunks.append(event.file_bytes)
            if event.eof:
                del test.open_files[name]
        status = event.status
        if status is not Status.NONE:
            test.status = status
            test.runnable = event.runnable
            if status not in INTERIM:
                del self._open[key]
                self._on_record(_finish(test_id, event.route_code, test))

    def close(self) -> None:
        pending, self._open = self._open, {}
        for (test_id, route_code), test in pending.items():
            self._on_record(_finish(test_id, route_code, test))


def _finish(test_id: str, route_code: str | None, test: _OpenTest) -> TestRecord:
    return TestRecord(
        test_id=test_id,
        status=test.status,
        route_code=route_code,
        start=test.start,
        stop=test.stop,
        tags=test.tags,
        attachments=tuple(
            Attachment(
                name=f.name,
                content=b"".join(f.chunks),
                mime_type=f.mime_type or DEFAULT_MIME_TYPE,
            )
            for f in test.files
        ),
        runnable=test.runnable,
    )


def collect_records(events: list[Event] | tuple[Event, ...]) -> list[TestRecord]:
    """Every record in a finished, in-memory list of events (completion order)."""
    records: list[TestRecord] = []
    collector = RecordCollector(records.append)
    for event in events:
        collector.send(event)
    collector.close()
    return records
