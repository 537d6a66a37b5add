"""Router, TestFilter, Tagger, TimestampFiller, Tee and Summary."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proctor.events import (
    Event,
    ListSink,
    Router,
    Selection,
    Status,
    Summary,
    Tagger,
    Tee,
    TestFilter,
    TimestampFiller,
)
from tests.wire.strategies import events


def _feed(sink: object, batch: list[Event]) -> None:
    for event in batch:
        sink.send(event)  # type: ignore[attr-defined]
    sink.close()  # type: ignore[attr-defined]


def run_of(*spec: tuple[str, Status]) -> list[Event]:
    """inprogress + a traceback for failures + the final status, per test."""
    out: list[Event] = []
    for n, (test_id, status) in enumerate(spec):
        out.append(Event(test_id=test_id, status=Status.INPROGRESS, timestamp=n * 10))
        if status is Status.FAIL:
            out.append(Event(test_id=test_id, file_name="traceback", file_bytes=b"tb", eof=True))
        out.append(Event(test_id=test_id, status=status, timestamp=n * 10 + 5))
    return out


def test_router_sends_by_first_route_segment_and_can_consume_it() -> None:
    zero, one, rest = ListSink(), ListSink(), ListSink()
    router = Router({"0": zero, "1": one}, fallback=rest, consume=True)
    _feed(
        router,
        [
            Event(test_id="a", route_code="0/3"),
            Event(test_id="b", route_code="1"),
            Event(test_id="c", route_code="2"),
            Event(test_id="d"),
        ],
    )
    assert [(e.test_id, e.route_code) for e in zero.events] == [("a", "3")]
    assert [(e.test_id, e.route_code) for e in one.events] == [("b", None)]
    assert [e.test_id for e in rest.events] == ["c", "d"]
    assert all(sink.closed for sink in (zero, one, rest))


def test_filter_keeps_whole_tests_untouched() -> None:
    stream = [
        Event(test_id="ok", status=Status.EXISTS),
        *run_of(("ok", Status.SUCCESS), ("bad", Status.FAIL)),
    ]
    kept = ListSink()
    _feed(TestFilter(kept, Selection(statuses=frozenset({Status.FAIL}))), stream)
    assert kept.events == [e for e in stream if e.test_id == "bad"]
    assert kept.events[0].timestamp == 10  # the start timestamp survives


def test_filter_by_tags_and_id_regex() -> None:
    stream = [
        Event(test_id="pkg.a", status=Status.SUCCESS, tags=frozenset({"slow"})),
        Event(test_id="pkg.b", status=Status.SUCCESS, tags=frozenset({"fast"})),
        Event(test_id="other.c", status=Status.SUCCESS, tags=frozenset({"slow"})),
    ]
    kept = ListSink()
    selection = Selection(
        with_tags=frozenset({"slow"}), include=re.compile(r"^pkg\."), exclude=re.compile("zzz")
    )
    _feed(TestFilter(kept, selection), stream)
    assert [e.test_id for e in kept.events] == ["pkg.a"]
    kept = ListSink()
    _feed(TestFilter(kept, Selection(without_tags=frozenset({"slow"}))), stream)
    assert [e.test_id for e in kept.events] == ["pkg.b"]


def test_filter_judges_unfinished_tests_at_close_and_passes_other_output() -> None:
    kept = ListSink()
    noise = Event(file_name="stdout", file_bytes=b"noise")
    _feed(
        TestFilter(kept, Selection(statuses=frozenset({Status.INPROGRESS}))),
        [noise, Event(test_id="hung", status=Status.INPROGRESS)],
    )
    assert kept.events == [noise, Event(test_id="hung", status=Status.INPROGRESS)]
    kept = ListSink()
    _feed(TestFilter(kept, Selection(), keep_other=False), [noise])
    assert kept.events == []


@given(st.lists(events(), max_size=25))
def test_a_filter_that_keeps_everything_changes_nothing_but_order_per_test(
    batch: list[Event],
) -> None:
    kept = ListSink()
    _feed(TestFilter(kept, Selection()), batch)
    assert sorted(kept.events, key=repr) == sorted(batch, key=repr)
    for test_id in {e.test_id for e in batch}:
        assert [e for e in kept.events if e.test_id == test_id and e.route_code is None] == [
            e for e in batch if e.test_id == test_id and e.route_code is None
        ]


def test_tagger_adds_and_removes_on_test_events_only() -> None:
    out = ListSink()
    noise = Event(file_name="stdout", file_bytes=b"x")
    _feed(
        Tagger(out, add={"new"}, remove={"old"}),
        [Event(test_id="t", tags=frozenset({"old", "keep"})), noise],
    )
    assert out.events == [Event(test_id="t", tags=frozenset({"keep", "new"})), noise]


def test_timestamp_filler_uses_the_clock_only_where_missing() -> None:
    out = ListSink()
    ticks = iter([100, 200])
    _feed(
        TimestampFiller(out, clock=lambda: next(ticks)),
        [Event(test_id="a"), Event(test_id="b", timestamp=5)],
    )
    assert [e.timestamp for e in out.events] == [100, 5]


def test_tee_sends_to_every_sink_in_order() -> None:
    first, second = ListSink(), ListSink()
    _feed(Tee(first, second), run_of(("a", Status.SUCCESS)))
    assert first.events == second.events
    assert len(first.events) == 2
    assert first.closed
    assert second.closed


@pytest.mark.parametrize(
    ("spec", "successful", "line"),
    [
        ([("a", Status.SUCCESS)], True, "1 passed, 0 failed, 0 skipped"),
        ([("a", Status.SUCCESS), ("b", Status.FAIL)], False, "1 passed, 1 failed, 0 skipped"),
        (
            [("a", Status.XFAIL), ("b", Status.SKIP)],
            True,
            "0 passed, 0 failed, 1 skipped, 1 xfailed",
        ),
        ([("a", Status.UXSUCCESS)], False, "0 passed, 0 failed, 0 skipped, 1 unexpectedly passed"),
    ],
)
def test_summary_counts_and_judges(
    spec: list[tuple[str, Status]], successful: bool, line: str
) -> None:
    summary = Summary()
    _feed(summary, run_of(*spec))
    assert summary.successful is successful
    assert summary.outcome_line() == line
    assert summary.tests_run == len(spec)
    assert summary.wall_time == (len(spec) * 10 - 5) / 1e9


def test_summary_counts_exists_apart_and_unfinished_as_failures() -> None:
    summary = Summary()
    _feed(
        summary,
        [
            Event(test_id="listed", status=Status.EXISTS),
            Event(test_id="crashed", status=Status.INPROGRESS, route_code="1"),
            Event(test_id="ok", status=Status.SUCCESS, tags=frozenset({"t"})),
        ],
    )
    assert summary.counts[Status.EXISTS] == 1
    assert summary.tests_run == 2
    assert [(f.test_id, f.route_code) for f in summary.unfinished] == [("crashed", "1")]
    assert not summary.successful
    assert summary.failed == 1
    assert summary.tags == {"t"}
    assert summary.outcome_line() == "1 passed, 0 failed, 0 skipped, 1 unfinished"
