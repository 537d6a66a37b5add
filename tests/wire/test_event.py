"""The Event contract: its field order, its fast constructor, the outcome ranking and the
MIME types beside Status, and the C codec's check of the field order."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest

from proctor.wire import _v2_format, v2
from proctor.wire.event import (
    DEFAULT_MIME_TYPE,
    OUTCOME_RANK,
    SIMPLE_TRACEBACK_MIME_TYPE,
    TEXT_MIME_TYPE,
    TRACEBACK_MIME_TYPE,
    Event,
    Status,
    new_event,
    worse_outcome,
)

EVENT_FIELDS = (
    "test_id",
    "status",
    "tags",
    "runnable",
    "file_name",
    "file_bytes",
    "eof",
    "mime_type",
    "route_code",
    "timestamp",
)


def test_the_field_order_of_event_is_pinned() -> None:
    # The decoders, the unittest adapter, the controller and the C codec build and
    # read events by position: reordering the fields is a change to all of them.
    assert Event._fields == EVENT_FIELDS


def test_new_event_builds_the_event_the_keywords_build() -> None:
    fields = ("t", Status.FAIL, frozenset({"a"}), False, "f", b"x", True, "m", "r", 5)
    built = new_event(Event, fields)
    assert type(built) is Event
    assert built == Event(
        test_id="t",
        status=Status.FAIL,
        tags=frozenset({"a"}),
        runnable=False,
        file_name="f",
        file_bytes=b"x",
        eof=True,
        mime_type="m",
        route_code="r",
        timestamp=5,
    )
    assert built.route_code == "r"
    assert built.timestamp == 5


def test_outcomes_rank_fail_over_uxsuccess_over_xfail_over_skip_over_success() -> None:
    order = [Status.NONE, Status.SUCCESS, Status.SKIP, Status.XFAIL, Status.UXSUCCESS, Status.FAIL]
    assert sorted(OUTCOME_RANK, key=OUTCOME_RANK.__getitem__) == order
    for lower, higher in itertools.pairwise(order):
        assert worse_outcome(lower, higher) is higher
        assert worse_outcome(higher, lower) is higher
    assert worse_outcome(Status.SKIP, Status.SKIP) is Status.SKIP
    assert Status.EXISTS not in OUTCOME_RANK
    assert Status.INPROGRESS not in OUTCOME_RANK


def test_the_mime_types_are_python_subunits() -> None:
    assert DEFAULT_MIME_TYPE == "application/octet-stream"
    assert TEXT_MIME_TYPE == "text/plain; charset=utf8"
    assert TRACEBACK_MIME_TYPE == 'text/x-traceback; charset="utf8"; language="python"'
    assert SIMPLE_TRACEBACK_MIME_TYPE == 'text/x-traceback; charset="utf8"'


class _Reordered(NamedTuple):
    status: Status = Status.NONE
    test_id: str | None = None
    tags: frozenset[str] = frozenset()
    runnable: bool = True
    file_name: str | None = None
    file_bytes: bytes = b""
    eof: bool = False
    mime_type: str | None = None
    route_code: str | None = None
    timestamp: int | None = None


class _Short(NamedTuple):
    test_id: str | None = None
    status: Status = Status.NONE


@pytest.fixture
def speedups() -> Iterator[Any]:
    if not v2.ACCELERATED:
        pytest.skip("the C codec is not in use")
    from proctor.wire import _speedups  # type: ignore[attr-defined,unused-ignore]

    yield _speedups
    _speedups.configure(Event, _v2_format.STATUSES)  # as it was, whatever a test did


@pytest.mark.parametrize("wrong", [_Reordered, _Short, tuple])
def test_the_c_codec_refuses_an_event_type_whose_fields_it_does_not_know(
    speedups: Any, wrong: type
) -> None:
    with pytest.raises(TypeError, match="the C codec"):
        speedups.configure(wrong, _v2_format.STATUSES)


def test_the_c_codec_refuses_statuses_out_of_wire_order(speedups: Any) -> None:
    with pytest.raises(TypeError, match="wire order"):
        speedups.configure(Event, _v2_format.STATUSES[::-1])


def test_loading_the_c_codec_fails_loudly_when_event_changed(
    speedups: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_v2_format, "Event", _Reordered)
    with pytest.raises(TypeError, match=r"fields are \('status', 'test_id'"):
        _v2_format._load_speedups()
    # A refused configuration changes nothing: the codec still decodes Events.
    monkeypatch.undo()
    packet = v2.encode(Event(test_id="t", status=Status.SUCCESS))
    assert v2.decode(packet, accelerate=True) == [Event(test_id="t", status=Status.SUCCESS)]
