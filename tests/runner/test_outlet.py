"""Where events and a worker's own output go, alone."""

from __future__ import annotations

from proctor.wire.event import Event, Status
from tests.runner.parts_support import parts


def test_an_event_goes_to_the_sink_and_the_collector() -> None:
    p = parts()
    event = Event(test_id="m.A.t1", status=Status.SUCCESS, route_code="0")
    p.outlet.send(event)
    p.outlet.collector.close()
    assert p.sink.events == [event]
    assert [r.test_id for r in p.records] == ["m.A.t1"]


def test_a_workers_output_is_passed_on_once_on_its_route() -> None:
    p = parts()
    slot = p.ready_slot()
    slot.add_output(b"one\n", 0.0)
    p.outlet.flush_output(slot, more=b"two\n")
    p.outlet.flush_output(slot)  # nothing new
    slot.add_output(b"three\n", 0.0)
    p.outlet.flush_output(slot, end=len(slot.output) - 2)
    assert [(e.file_name, e.file_bytes, e.route_code) for e in p.sink.events] == [
        ("stderr", b"one\ntwo\n", "0"),
        ("stderr", b"thre", "0"),
    ]
    assert p.reporter.of("output") == [b"one\ntwo\n", b"thre"]
