"""The worker pool alone: starting, deadlines, condemning, killing, replacing."""

from __future__ import annotations

from proctor.runner.options import RunOptions
from proctor.runner.protocol import Quit
from proctor.runner.run_state import Phase
from proctor.runner.slot import DUMP_QUIET, SlotState, StopReason
from proctor.wire.event import Event, Status
from tests.runner.parts_support import parts


def test_workers_are_numbered_in_the_order_they_start() -> None:
    p = parts()
    first, second = p.pool.start(), p.pool.start()
    assert (first.worker, second.worker) == (0, 1)
    assert sorted(p.pool.slots) == [0, 1]
    assert sorted(p.backend.workers) == [0, 1]
    assert p.pool.alive() == [first, second]


def test_a_worker_not_ready_by_start_wait_is_asked_for_its_stacks_then_killed() -> None:
    p = parts(RunOptions(start_wait=5.0, dump_wait=2.0))
    slot = p.pool.start()
    assert p.pool.next_deadline() == 5.0
    p.pool.check_deadlines(4.9)
    assert not slot.condemned
    p.pool.check_deadlines(5.0)
    assert slot.condemned
    assert slot.stop_reason is StopReason.STUCK_STARTING
    assert slot.state is SlotState.STOPPING
    assert p.worker(slot).dumps == 1
    assert not p.worker(slot).killed
    assert p.pool.next_deadline() == 7.0  # the dump's wait
    p.pool.check_deadlines(7.0)
    assert slot.killed
    assert p.worker(slot).killed
    assert p.pool.next_deadline() is None  # killed: only its exit is awaited


def test_the_kill_comes_once_the_dump_has_stopped_arriving() -> None:
    p = parts(RunOptions(timeout=3.0, dump_wait=2.0))
    slot = p.ready_slot()
    slot.add_batch(["m.A.t1"], [1.0], 0.0)
    p.pool.check_deadlines(3.0)
    slot.add_output(b"Thread 0x1 (most recent call first):\n", 3.5)
    assert p.pool.next_deadline() == 3.5 + DUMP_QUIET


def test_a_test_over_timeout_condemns_its_worker_naming_the_test() -> None:
    p = parts(RunOptions(timeout=3.0))
    slot = p.ready_slot()
    slot.add_batch(["m.A.t1", "m.A.t2"], [1.0, 1.0], 0.0)
    slot.current = "m.A.t1"
    assert p.pool.deadline_of(slot) == 3.0
    p.pool.check_deadlines(3.0)
    assert slot.timed_out == "m.A.t1"
    assert slot.stop_reason is StopReason.TIMEOUT
    assert slot.reprieve == (SlotState.READY, None)


def test_a_test_waiting_for_input_is_not_under_its_timeout() -> None:
    p = parts(RunOptions(timeout=3.0))
    slot = p.ready_slot()
    slot.add_batch(["m.A.t1"], [1.0], 0.0)
    slot.waiting_input = True
    assert p.pool.deadline_of(slot) is None


def test_a_reprieve_puts_the_worker_back_and_hands_over_what_was_held() -> None:
    p = parts(RunOptions(timeout=3.0))
    slot = p.ready_slot()
    slot.add_batch(["m.A.t1"], [1.0], 0.0)
    p.pool.check_deadlines(3.0)
    held = [Event(test_id="m.A.t1", status=Status.SUCCESS)]
    slot.held.extend(held)
    assert p.pool.reprieve(slot) == held
    assert slot.state is SlotState.READY
    assert slot.stop_reason is None
    assert not slot.condemned
    assert slot.kill_at is None
    assert slot.timed_out is None
    assert slot.held == []
    [notice] = p.reporter.of("notice")
    assert "m.A.t1 finished just after its --timeout (3s), before worker 0 was killed" in str(
        notice
    )


def test_quit_goes_to_a_serving_worker_and_its_wait_counts_from_its_last_test() -> None:
    p = parts(RunOptions(quit_wait=30.0, dump_wait=1.0))
    slot = p.ready_slot()
    slot.add_batch(["m.A.t1"], [1.0], 0.0)
    p.pool.stop(slot, StopReason.QUIT)
    assert p.worker(slot).commands == [Quit()]
    assert slot.state is SlotState.STOPPING
    assert slot.quit_at == 0.0
    assert p.pool.quit_deadline(slot) is None  # busy: its test runs first
    slot.finish("m.A.t1", 10.0)
    assert p.pool.quit_deadline(slot) == 40.0
    p.pool.check_deadlines(40.0)
    assert slot.stop_reason is StopReason.STUCK_QUITTING
    assert slot.condemned


def test_stopping_a_worker_that_is_not_serving_kills_it() -> None:
    p = parts()
    slot = p.pool.start()
    p.pool.stop(slot, StopReason.QUIT)
    assert slot.killed
    assert p.worker(slot).killed
    assert p.worker(slot).commands == []
    assert slot.stop_reason is StopReason.QUIT


def test_stop_all_stops_the_run_and_every_worker() -> None:
    p = parts()
    serving, starting = p.ready_slot(), p.pool.start()
    p.pool.stop_all(StopReason.QUIT)
    assert p.state.phase is Phase.STOPPING
    assert p.worker(serving).commands == [Quit()]
    assert starting.killed


def test_winding_down_quits_idle_workers_and_marks_busy_ones() -> None:
    p = parts()
    idle, busy = p.ready_slot(), p.ready_slot()
    busy.add_batch(["m.A.t1"], [1.0], 0.0)
    p.pool.wind_down()
    assert p.worker(idle).commands == [Quit()]
    assert busy.stop_after_current
    assert p.worker(busy).commands == []


def test_a_dead_worker_is_replaced_with_a_notice_naming_it() -> None:
    p = parts(wanted=1)
    dead = p.pool.start()
    dead.state = SlotState.DEAD
    p.pool.exited(dead, None)
    p.pool.top_up()
    assert sorted(p.pool.slots) == [0, 1]
    assert p.state.result.worker_restarts == 1
    assert p.reporter.of("notice") == ["worker 1 started in place of worker 0"]


def test_a_worker_stopped_on_purpose_is_replaced_without_a_notice() -> None:
    p = parts(wanted=1)
    dead = p.pool.start()
    dead.state = SlotState.DEAD
    p.pool.exited(dead, StopReason.QUIT)
    p.pool.top_up()
    assert sorted(p.pool.slots) == [0, 1]
    assert p.reporter.of("notice") == []


def test_no_more_workers_start_than_there_are_queued_tests() -> None:
    p = parts(wanted=3)
    p.running("m.A.t1")
    p.pool.top_up()
    assert sorted(p.pool.slots) == [0]


def test_no_worker_starts_while_the_run_winds_down() -> None:
    p = parts(wanted=2)
    p.running("m.A.t1", "m.B.t1")
    p.state.halted = "stopping after 1 failure (--maxfail 1)"
    p.pool.top_up()
    assert p.pool.slots == {}


def test_deaths_not_caused_by_a_test_past_the_limit_stop_the_run_with_the_last() -> None:
    p = parts(RunOptions(max_worker_restarts=1), wanted=1)
    p.running("m.A.t1", "m.B.t1")
    p.pool.unproductive_death("worker 0 failed to start: it exited with code 1")
    p.pool.top_up()
    assert p.state.result.error is None
    assert sorted(p.pool.slots) == [0]
    p.pool.slots[0].state = SlotState.DEAD
    p.pool.unproductive_death("worker 1 failed to start: it exited with code 1")
    p.pool.top_up()
    assert p.state.result.error == (
        "stopped after 2 worker deaths not caused by a test (limit 1, --max-worker-restarts); "
        "the last: worker 1 failed to start: it exited with code 1"
    )
    assert sorted(p.state.result.not_run) == ["m.A.t1", "m.B.t1"]
    assert p.state.phase is Phase.STOPPING
    assert sorted(p.pool.slots) == [0]
