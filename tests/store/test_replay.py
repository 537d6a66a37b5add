"""Stored records back to streams: our collector and python-subunit read the same tests."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from proctor.events.collector import collect_records
from proctor.events.emit import record_events, records_to_v2
from proctor.store import Store
from proctor.wire import v2
from proctor.wire.event import NS_PER_SECOND, TRACEBACK_MIME_TYPE, Status
from proctor.wire.record import Attachment, TestRecord
from tests.wire.strategies import small_text, timestamps, wire_text

from .factory import T0

attachments = st.builds(
    Attachment,
    name=wire_text,
    content=st.binary(max_size=200),
    mime_type=small_text,
)


@st.composite
def records(draw: st.DrawFn) -> TestRecord:
    status = draw(st.sampled_from(Status))
    start = draw(st.none() | timestamps)
    last = 2**32 * NS_PER_SECOND - 1  # the latest moment subunit v2 can carry
    stop = None if start is None else start + draw(st.integers(0, min(10**12, last - start)))
    return TestRecord(
        test_id=draw(wire_text),
        status=status,
        route_code=draw(st.none() | small_text),
        start=start,
        stop=stop,
        tags=draw(st.frozensets(small_text, max_size=3)),
        attachments=tuple(draw(st.lists(attachments, max_size=3))),
        # A stream says whether a test is runnable only with a status.
        runnable=status is Status.NONE or draw(st.booleans()),
    )


def _distinct(items: list[TestRecord]) -> list[TestRecord]:
    # Two records of one (test id, route) would be one test in a stream.
    seen: set[tuple[str, str | None]] = set()
    kept = []
    for item in items:
        if (item.test_id, item.route_code) not in seen:
            seen.add((item.test_id, item.route_code))
            kept.append(item)
    return kept


def _key(record: TestRecord) -> tuple[str, str]:
    return record.test_id, record.route_code or ""


@given(st.lists(records(), max_size=8).map(_distinct))
def test_events_of_records_collect_back_into_the_same_records(items: list[TestRecord]) -> None:
    events = [event for item in items for event in record_events(item)]
    assert sorted(collect_records(events), key=_key) == sorted(items, key=_key)
    decoded = v2.decode(records_to_v2(items))
    assert sorted(collect_records(decoded), key=_key) == sorted(items, key=_key)


def _subunit_tests(stream: bytes) -> dict[str, dict[str, Any]]:
    import subunit
    import testtools

    found: dict[str, dict[str, Any]] = {}
    result = testtools.StreamToDict(lambda test: found.__setitem__(test["id"], test))
    result.startTestRun()
    subunit.ByteStreamToStreamResult(io.BytesIO(stream), non_subunit_name="stdout").run(result)
    result.stopTestRun()
    return found


def _utc(ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns // NS_PER_SECOND, dt.timezone.utc).replace(
        microsecond=ns % NS_PER_SECOND // 1000
    )


def test_python_subunit_reads_an_exported_run_as_the_same_tests(store: Store) -> None:
    traceback = b'Traceback (most recent call last):\n  File "t.py"\nAssertionError: 1 != 2\n'
    stored = [
        TestRecord(
            "pkg.A.test_pass", Status.SUCCESS, "0", T0, T0 + 1_500_000_000, frozenset({"worker-0"})
        ),
        TestRecord(
            "pkg.A.test_fail",
            Status.FAIL,
            "1",
            T0 + 1000,
            T0 + 2_000_000_000,
            frozenset({"worker-1", "slow"}),
            (
                Attachment("traceback", traceback, TRACEBACK_MIME_TYPE),
                Attachment("stdout", b"printed\n", "text/plain; charset=utf8"),
            ),
        ),
        TestRecord(
            "pkg.B.test_skip",
            Status.SKIP,
            None,
            T0,
            T0 + 3000,
            frozenset(),
            (Attachment("reason", b"no network", "text/plain; charset=utf8"),),
        ),
        TestRecord("pkg.B.test_xfail", Status.XFAIL, None, T0, T0 + 4000),
        TestRecord("pkg.B.test_ux", Status.UXSUCCESS, None, T0, T0 + 5000),
        TestRecord(
            "pkg.B.test_binary",
            Status.SUCCESS,
            None,
            T0,
            T0 + 6000,
            frozenset(),
            (Attachment("data", bytes(range(256)), "application/octet-stream"),),
        ),
    ]
    info = store.write_run(stored)
    tests = _subunit_tests(records_to_v2(store.records(info.id)))
    assert tests.keys() == {r.test_id for r in stored}
    for record in stored:
        seen = tests[record.test_id]
        assert seen["status"] == record.status.wire_name
        assert seen["tags"] == set(record.tags)
        assert seen["timestamps"] == [_utc(record.start or 0), _utc(record.stop or 0)]
        details = seen["details"]
        assert set(details) == {a.name for a in record.attachments}
        for attachment in record.attachments:
            content = details[attachment.name]
            assert b"".join(content.iter_bytes()) == attachment.content
            kind = content.content_type
            assert f"{kind.type}/{kind.subtype}" == attachment.mime_type.split(";")[0]
