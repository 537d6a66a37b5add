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

from proctor.wire.event import DEFAULT_MIME_TYPE, INTERIM, Event, Status
from proctor.wire.record import Attachment, TestRecord

__all__ = ["RecordCollector", "collect_records"]


class _OpenFile:
    __slots__ = ("chunks", "dropped", "held", "mime_type", "name", "tail")

    def __init__(self, name: str, mime_type: str | None) -> None:
        self.name = name
        self.mime_type = mime_type
        self.chunks: list[bytes] = []  # the content (its head, under a limit)
        self.held = 0  # bytes in chunks
        self.tail = b""  # under a limit: the last bytes seen after the head filled
        self.dropped = 0  # under a limit: bytes between head and tail, not kept

    def add(self, data: bytes, limit: int | None) -> None:
        if limit is None:
            self.chunks.append(data)
            return
        half = limit // 2
        if self.held < half:
            take = data[: half - self.held]
            self.chunks.append(take)
            self.held += len(take)
            data = data[len(take) :]
            if not data:
                return
        tail = self.tail + data
        if len(tail) > half:
            self.dropped += len(tail) - half
            tail = tail[-half:]
        self.tail = tail

    def content(self) -> bytes:
        head = b"".join(self.chunks)
        if not self.dropped:
            return head + self.tail
        note = f"\n[... {self.dropped} bytes not kept ...]\n".encode()
        return head + note + self.tail


class _OpenTest:
    __slots__ = ("files", "open_files", "runnable", "start", "status", "stop", "tags")

    def __init__(self, start: int | None, tags: frozenset[str]) -> None:
        self.status = Status.NONE
        self.start = start
        self.stop = start
        self.tags = tags
        self.runnable = True
        self.files: list[_OpenFile] | None = None  # in order of first chunk
        self.open_files: dict[str, _OpenFile] | None = None  # name -> file not yet at EOF


_NO_ATTACHMENTS: tuple[Attachment, ...] = ()
_tuple_new = tuple.__new__  # builds a TestRecord without its Python-level __new__


class RecordCollector:
    """A sink that calls ``on_record`` with each test's record as it completes."""

    def __init__(
        self,
        on_record: Callable[[TestRecord], None],
        on_other: Callable[[Event], None] | None = None,
        *,
        content_limit: int | None = None,
    ) -> None:
        """``content_limit`` bounds what is kept of each attachment: its first and
        last ``content_limit / 2`` bytes, with a note of what was left out between
        (for display; memory then stays bounded even for a test that writes
        gigabytes). 0 keeps names and MIME types only."""
        self._on_record = on_record
        self._on_other = on_other
        self._limit = content_limit
        # A test seen once holds its first event (cheap); it becomes an
        # _OpenTest only when a second event does not simply finish it.
        self._open: dict[tuple[str, str | None], _OpenTest | Event] = {}

    @property
    def running(self) -> list[tuple[str, str | None]]:
        """(test id, route code) of the tests started and not yet finished."""
        return list(self._open)

    def send(self, event: Event) -> None:
        # On the hot path: every event of every stream that is shown or stored
        # goes through here, so the common shapes take the fewest steps.
        test_id, status, tags, runnable, name, content, eof, mime, route, timestamp = event
        if test_id is None:
            if self._on_other is not None:
                self._on_other(event)
            return
        key = (test_id, route)
        opened = self._open
        test = opened.get(key)
        if test is None:
            if name is None:
                if status not in INTERIM:
                    # A whole test in one event (a listing, a converted report).
                    self._on_record(
                        _tuple_new(
                            TestRecord,
                            (test_id, status, route, timestamp, timestamp, tags, (), runnable),
                        )
                    )
                else:
                    opened[key] = event
                return
            test = opened[key] = _OpenTest(timestamp, tags)
        else:
            if type(test) is Event:
                first = test
                if name is None and status not in INTERIM:
                    # Started, then finished, and nothing between: most tests.
                    del opened[key]
                    start = first.timestamp if first.timestamp is not None else timestamp
                    self._on_record(
                        _tuple_new(
                            TestRecord,
                            (
                                test_id,
                                status,
                                route,
                                start,
                                start if timestamp is None else timestamp,
                                tags or first.tags,
                                (),
                                runnable,
                            ),
                        )
                    )
                    return
                test = opened[key] = _opened(first)
            assert type(test) is _OpenTest
            if timestamp is not None:
                if test.start is None:
                    test.start = timestamp
                test.stop = timestamp
            if tags:
                test.tags = tags
        if name is not None:
            self._file(test, name, content, eof, mime, self._limit)
        if status is not Status.NONE:
            test.status = status
            test.runnable = runnable
            if status not in INTERIM:
                del opened[key]
                self._on_record(_finish(test_id, route, test))

    @staticmethod
    def _file(
        test: _OpenTest, name: str, content: bytes, eof: bool, mime: str | None, limit: int | None
    ) -> None:
        if test.files is None or test.open_files is None:
            test.files = []
            test.open_files = {}
        current = test.open_files.get(name)
        if current is None:
            current = _OpenFile(name, mime)
            test.files.append(current)
            test.open_files[name] = current
        elif current.mime_type is None and mime:
            current.mime_type = mime
        if content and limit != 0:
            current.add(content, limit)
        if eof:
            del test.open_files[name]

    def close(self) -> None:
        pending, self._open = self._open, {}
        for (test_id, route_code), test in pending.items():
            opened = _opened(test) if type(test) is Event else test
            assert type(opened) is _OpenTest
            self._on_record(_finish(test_id, route_code, opened))


def _opened(first: Event) -> _OpenTest:
    """The open test a first event (without a file) describes."""
    test = _OpenTest(first.timestamp, first.tags)
    if first.status is not Status.NONE:
        test.status = first.status
        test.runnable = first.runnable
    return test


def _finish(test_id: str, route_code: str | None, test: _OpenTest) -> TestRecord:
    files = test.files
    attachments = (
        _NO_ATTACHMENTS
        if files is None
        else tuple(Attachment(f.name, f.content(), f.mime_type or DEFAULT_MIME_TYPE) for f in files)
    )
    return TestRecord(
        test_id,
        test.status,
        route_code,
        test.start,
        test.stop,
        test.tags,
        attachments,
        test.runnable,
    )


def collect_records(events: list[Event] | tuple[Event, ...]) -> list[TestRecord]:
    """Every record in a finished, in-memory list of events (completion order)."""
    records: list[TestRecord] = []
    collector = RecordCollector(records.append)
    for event in events:
        collector.send(event)
    collector.close()
    return records
