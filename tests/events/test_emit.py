"""A test told as events (events/emit.py): the shapes, and the collector assembles them back."""

from __future__ import annotations

from proctor.events.collector import collect_records
from proctor.events.emit import ending_events, file_events, record_events, status_event
from proctor.wire.event import TEXT_MIME_TYPE, Event, Status
from proctor.wire.record import Attachment, TestRecord

REASON = Attachment("reason", b"why", TEXT_MIME_TYPE)
LOG = Attachment("log", b"", "application/x-log")


def test_status_event_carries_the_status_tags_runnable_route_and_time() -> None:
    assert status_event("t", Status.INPROGRESS, 5) == Event(
        test_id="t", status=Status.INPROGRESS, timestamp=5
    )
    assert status_event("t", Status.FAIL, 7, frozenset({"w"}), False, "0") == Event(
        test_id="t",
        status=Status.FAIL,
        tags=frozenset({"w"}),
        runnable=False,
        route_code="0",
        timestamp=7,
    )


def test_file_events_are_complete_files_without_tags_or_status() -> None:
    assert file_events("t", [REASON, LOG], None, "1") == [
        Event(
            test_id="t",
            file_name="reason",
            file_bytes=b"why",
            eof=True,
            mime_type=TEXT_MIME_TYPE,
            route_code="1",
        ),
        Event(
            test_id="t",
            file_name="log",
            file_bytes=b"",
            eof=True,
            mime_type="application/x-log",
            route_code="1",
        ),
    ]
    assert file_events(None, [REASON], 3)[0].test_id is None  # output outside any test


def test_ending_events_are_the_files_then_the_final_status_at_one_time() -> None:
    tags = frozenset({"worker-0"})
    events = ending_events("t", Status.SKIP, [REASON], 9, tags, False, "0")
    assert events == [
        *file_events("t", [REASON], 9, "0"),
        status_event("t", Status.SKIP, 9, tags, False, "0"),
    ]
    assert ending_events("t", Status.SUCCESS, [], 9) == [status_event("t", Status.SUCCESS, 9)]


def test_a_test_told_live_is_assembled_into_its_record() -> None:
    tags = frozenset({"a"})
    events = [
        status_event("t", Status.INPROGRESS, 100, tags, True, "0"),
        *ending_events("t", Status.FAIL, [REASON, LOG], 250, tags, True, "0"),
    ]
    assert collect_records(events) == [
        TestRecord("t", Status.FAIL, "0", 100, 250, tags, (REASON, LOG), True)
    ]


def test_record_events_give_the_record_back() -> None:
    record = TestRecord("t", Status.XFAIL, "2", 10, 30, frozenset({"x"}), (REASON,), True)
    events = record_events(record)
    assert events[0] == status_event("t", Status.INPROGRESS, 10, frozenset({"x"}), True, "2")
    assert events[1].timestamp is None  # stored files are streamed without a time
    assert collect_records(events) == [record]
