"""Stopping a run early, alone: Ctrl-C and signals, halts, a suite that cannot load."""

from __future__ import annotations

import signal

from proctor.runner.backend import Interrupted
from proctor.runner.early_stop import EarlyStop
from proctor.runner.protocol import Quit
from proctor.runner.run_state import Phase
from proctor.runner.slot import Slot, SlotState, StopReason
from tests.runner.parts_support import Parts, parts


def _running(p: Parts) -> tuple[Slot, Slot]:
    """An idle worker and a busy one, with two tests still queued."""
    p.running("m.B.t1", "m.B.t2")
    idle, busy = p.ready_slot(), p.ready_slot()
    busy.add_batch(["m.A.t1", "m.A.t2"], [1.0, 1.0], 0.0)
    return idle, busy


def test_the_first_ctrl_c_lets_running_tests_finish_and_starts_no_new_one() -> None:
    p = parts()
    stop = EarlyStop(p.state, p.pool, p.reporter)
    idle, busy = _running(p)
    stop.interrupt(Interrupted())
    result = p.state.result
    assert result.interrupted
    assert result.signal is None
    assert sorted(result.not_run) == ["m.B.t1", "m.B.t2"]
    assert p.worker(idle).commands == [Quit()]
    assert busy.stop_after_current
    assert not busy.killed
    assert p.state.phase is Phase.RUNNING
    assert p.reporter.of("notice") == [
        "Interrupted: no new tests will start; waiting for 1 running test to finish. "
        "Ctrl-C again stops them now."
    ]


def test_the_second_ctrl_c_stops_every_worker_now() -> None:
    p = parts()
    stop = EarlyStop(p.state, p.pool, p.reporter)
    _, busy = _running(p)
    stop.interrupt(Interrupted())
    stop.interrupt(Interrupted())
    assert busy.killed
    assert busy.stop_reason is StopReason.INTERRUPT
    assert p.state.phase is Phase.STOPPING
    assert p.reporter.of("notice")[-1] == "Interrupted again: stopping the workers now."


def test_sigterm_stops_every_worker_at_once_and_is_remembered() -> None:
    p = parts()
    stop = EarlyStop(p.state, p.pool, p.reporter)
    idle, busy = _running(p)
    stop.interrupt(Interrupted(signal.SIGTERM))
    assert p.state.result.signal == signal.SIGTERM
    assert idle.killed
    assert busy.killed
    assert p.reporter.of("notice") == ["Received SIGTERM: stopping the workers now."]


def test_a_halt_drops_the_queue_once_without_interrupting() -> None:
    p = parts()
    stop = EarlyStop(p.state, p.pool, p.reporter)
    idle, busy = _running(p)
    stop.halt("stopping after 1 failure (--maxfail 1)")
    stop.halt("stopping after 2 failures (--maxfail 2)")
    assert p.state.halted == "stopping after 1 failure (--maxfail 1)"
    assert not p.state.result.interrupted
    assert sorted(p.state.result.not_run) == ["m.B.t1", "m.B.t2"]
    assert p.worker(idle).commands == [Quit()]
    assert busy.stop_after_current
    assert p.reporter.of("notice") == [
        "stopping after 1 failure (--maxfail 1): the run stops; tests not started are "
        "reported as not run"
    ]


def test_no_halt_after_ctrl_c() -> None:
    p = parts()
    stop = EarlyStop(p.state, p.pool, p.reporter)
    _running(p)
    stop.interrupt(Interrupted())
    stop.halt("stopping after 1 failure (--maxfail 1)")
    assert p.state.halted is None


def test_after_its_test_a_worker_winding_down_is_stopped_and_its_batch_not_run() -> None:
    p = parts()
    stop = EarlyStop(p.state, p.pool, p.reporter)
    _, busy = _running(p)
    busy.finish("m.A.t1", 1.0)
    stop.after_test(busy)
    assert p.state.result.not_run == ["m.A.t2"]
    assert busy.discarding
    assert busy.killed
    assert busy.stop_reason is StopReason.INTERRUPT


def test_a_worker_that_stops_on_its_own_halts_the_run_and_its_exit_is_expected() -> None:
    p = parts()
    stop = EarlyStop(p.state, p.pool, p.reporter)
    _, busy = _running(p)
    stop.worker_stops(busy, 4, "pytest.exit() in a test; the worker stops", now=5.0)
    assert busy.exit_expected == 4
    assert busy.state is SlotState.STOPPING
    assert busy.quit_at == 5.0
    assert p.state.halted == "pytest.exit() in a test"
    assert p.state.result.not_run == ["m.A.t1", "m.A.t2", "m.B.t1", "m.B.t2"]


def test_a_suite_that_cannot_load_stops_every_worker() -> None:
    p = parts()
    stop = EarlyStop(p.state, p.pool, p.reporter)
    failed, other = p.pool.start(), p.ready_slot()
    stop.load_failed(failed, "ImportError: boom", now=1.0)
    assert failed.load_error == "ImportError: boom"
    assert failed.state is SlotState.STOPPING
    assert not failed.killed
    assert p.worker(other).commands == [Quit()]
    assert p.state.phase is Phase.STOPPING
