"""The debug desk alone: who gets the input, and what waits while a test has the terminal."""

from __future__ import annotations

from proctor.runner.backend import StdinLine
from proctor.runner.debugging import DebugDesk
from proctor.runner.protocol import Stdin
from proctor.testing import FakeStdin
from proctor.wire.event import Status
from proctor.wire.record import TestRecord
from tests.runner.controller_support import RecordingReporter
from tests.runner.parts_support import Parts, parts


def _busy(p: Parts, test_id: str) -> None:
    slot = p.ready_slot()
    slot.add_batch([test_id], [1.0], 0.0)
    slot.current = test_id


def test_without_input_a_request_gets_end_of_input_at_once() -> None:
    p = parts()
    desk = DebugDesk(p.reporter, None)
    _busy(p, "m.A.t1")
    slot = p.pool.slots[0]
    desk.wants_input(slot, "m.A.t1")
    assert p.worker(slot).commands == [Stdin(b"")]
    assert desk.input_over


def test_piped_input_answers_requests_in_order_and_the_clock_runs() -> None:
    p = parts()
    stdin = FakeStdin(p.backend, [b"1\n", b"2\n"], interactive=False)
    desk = DebugDesk(p.reporter, stdin)
    _busy(p, "m.A.t1")
    _busy(p, "m.B.t1")
    first, second = p.pool.slots[0], p.pool.slots[1]
    desk.wants_input(first, "m.A.t1")
    desk.wants_input(second, "m.B.t1")
    assert not first.waiting_input
    for message in p.backend.wait(0.0):
        assert isinstance(message, StdinLine)
        desk.line(message.data, 0.0)
    assert p.worker(first).commands == [Stdin(b"1\n")]
    assert p.worker(second).commands == [Stdin(b"2\n")]


def test_at_a_terminal_one_test_has_it_and_other_reports_wait_for_its_end() -> None:
    p = parts()
    reporter = RecordingReporter()
    desk = DebugDesk(reporter, FakeStdin(p.backend, [b"c\n"]))
    _busy(p, "m.A.t1")
    _busy(p, "m.B.t1")
    debugged, other = p.pool.slots[0], p.pool.slots[1]
    debugged.add_output(b"(Pdb) ", 0.0)
    desk.wants_input(debugged, "m.A.t1")
    desk.wants_input(other, "m.B.t1")  # waits its turn
    assert debugged.waiting_input  # its --timeout clock is stopped
    assert other.waiting_input
    assert reporter.of("debug_start") == [("m.A.t1", b"(Pdb) ")]
    desk.reporter.record(TestRecord("m.C.t1", Status.FAIL))
    desk.reporter.notice("later")
    assert reporter.of("record") == []
    [line] = p.backend.wait(0.0)
    assert isinstance(line, StdinLine)
    desk.line(line.data, 1.0)
    assert p.worker(debugged).commands == [Stdin(b"c\n")]
    assert not debugged.waiting_input
    assert debugged.since == 1.0  # the clock starts again from the line
    debugged.finish("m.A.t1", 2.0)
    desk.finished(debugged, "m.A.t1", 2.0)
    assert reporter.of("debug_end") == ["m.A.t1"]
    assert reporter.of("record") == ["m.C.t1"]
    assert reporter.of("notice") == ["later"]
    assert reporter.of("debug_start")[-1] == ("m.B.t1", b"")  # the next in line
