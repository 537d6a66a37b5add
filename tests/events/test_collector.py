"""RecordCollector: events -> test records, with python-subunit's semantics minus its losses."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from proctor.events import Event, RecordCollector, Status, TestRecord, collect_records
from proctor.wire.event import DEFAULT_MIME_TYPE, TRACEBACK_MIME_TYPE
from tests.wire.strategies import events


def test_a_test_is_assembled_from_its_events() -> None:
    records = collect_records(
        [
            Event(test_id="t", status=Status.INPROGRESS, timestamp=1_000),
            Event(test_id="t", file_name="stdout", file_bytes=b"hel", timestamp=2_000),
            Event(
                test_id="t",
                file_name="traceback",
                file_bytes=b"Boom",
                eof=True,
                mime_type=TRACEBACK_MIME_TYPE,
            ),
            Event(test_id="t", file_name="stdout", file_bytes=b"lo", eof=True),
            Event(test_id="t", status=Status.FAIL, tags=frozenset({"w"}), timestamp=5_000),
        ]
    )
    assert len(records) == 1
    record = records[0]
    assert record.test_id == "t"
    assert record.status is Status.FAIL
    assert (record.start, record.stop) == (1_000, 5_000)
    assert record.duration == 4e-6
    assert record.tags == frozenset({"w"})
    assert [(a.name, a.content, a.mime_type) for a in record.attachments] == [
        ("stdout", b"hello", DEFAULT_MIME_TYPE),
        ("traceback", b"Boom", TRACEBACK_MIME_TYPE),
    ]
    assert record.finished


def test_the_same_name_after_eof_starts_a_new_attachment() -> None:
    """testtools appends to the first file and ignores EOF; we keep two files."""
    records = collect_records(
        [
            Event(test_id="t", file_name="log", file_bytes=b"one", eof=True),
            Event(test_id="t", file_name="log", file_bytes=b"two", eof=True),
            Event(test_id="t", status=Status.SUCCESS),
        ]
    )
    assert [a.content for a in records[0].attachments] == [b"one", b"two"]


def test_empty_files_are_kept() -> None:
    records = collect_records(
        [
            Event(test_id="t", file_name="reason", file_bytes=b"", eof=True),
            Event(test_id="t", status=Status.SKIP),
        ]
    )
    assert [(a.name, a.content) for a in records[0].attachments] == [("reason", b"")]


def test_route_codes_separate_tests_with_the_same_id() -> None:
    records = collect_records(
        [
            Event(test_id="t", status=Status.INPROGRESS, route_code="0"),
            Event(test_id="t", status=Status.INPROGRESS, route_code="1"),
            Event(test_id="t", status=Status.SUCCESS, route_code="1"),
            Event(test_id="t", status=Status.FAIL, route_code="0"),
        ]
    )
    assert [(r.route_code, r.status) for r in records] == [
        ("1", Status.SUCCESS),
        ("0", Status.FAIL),
    ]
    assert [r.worker for r in records] == ["1", "0"]


def test_unfinished_tests_are_reported_at_close() -> None:
    got: list[TestRecord] = []
    collector = RecordCollector(got.append)
    collector.send(Event(test_id="done", status=Status.SUCCESS))
    collector.send(Event(test_id="crashed", status=Status.INPROGRESS, timestamp=7))
    collector.send(Event(test_id="files-only", file_name="stdout", file_bytes=b"x"))
    assert [r.test_id for r in got] == ["done"]
    assert sorted(collector.running) == [("crashed", None), ("files-only", None)]
    collector.close()
    unfinished = {r.test_id: r for r in got[1:]}
    assert unfinished["crashed"].status is Status.INPROGRESS
    assert not unfinished["crashed"].finished
    assert unfinished["files-only"].status is Status.NONE
    assert unfinished["files-only"].attachments[0].content == b"x"


def test_non_test_events_go_to_on_other() -> None:
    others: list[Event] = []
    collector = RecordCollector(lambda record: None, on_other=others.append)
    passthrough = Event(file_name="stdout", file_bytes=b"noise")
    collector.send(passthrough)
    assert others == [passthrough]


def test_worker_falls_back_to_the_stestr_tag() -> None:
    record = TestRecord("t", Status.SUCCESS, tags=frozenset({"worker-3", "slow"}))
    assert record.worker == "3"
    assert TestRecord("t", Status.SUCCESS).worker is None


@given(st.lists(events(), max_size=30))
def test_every_test_event_lands_in_exactly_one_record(batch: list[Event]) -> None:
    records = collect_records(batch)
    with_ids = [e for e in batch if e.test_id is not None]
    finals = [e for e in with_ids if e.status.is_final]
    assert sum(r.finished for r in records) == len(finals)
    content = sum(len(e.file_bytes) for e in with_ids if e.file_name is not None)
    assert sum(len(a.content) for r in records for a in r.attachments) == content
