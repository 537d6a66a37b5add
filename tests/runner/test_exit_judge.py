"""The exit judgement alone: what each kind of worker exit means for its tests."""

from __future__ import annotations

from collections.abc import Sequence

from proctor.runner.exit_judge import ExitJudge
from proctor.runner.options import RunOptions
from proctor.runner.run_state import Phase
from proctor.runner.slot import Slot, SlotState, StopReason
from proctor.wire.event import Event, Status
from tests.runner.parts_support import Parts, parts

SEGFAULT = b"Fatal Python error: Segmentation fault\n"


class Judged:
    """An exit judge on ``parts``, remembering what it delivered as the worker's results."""

    def __init__(self, p: Parts) -> None:
        self.parts = p
        self.delivered: list[tuple[int, list[Event]]] = []
        self.judge = ExitJudge(
            p.state,
            p.options,
            p.pool,
            p.outlet,
            p.reporter,
            deliver=self._deliver,
            now=p.backend.now,
            time_ns=p.backend.time_ns,
        )

    def _deliver(self, slot: Slot, events: Sequence[Event]) -> None:
        self.delivered.append((slot.worker, list(events)))


def _busy(p: Parts, *test_ids: str) -> Slot:
    slot = p.ready_slot()
    slot.add_batch(list(test_ids), [1.0] * len(test_ids), 0.0)
    slot.current = test_ids[0]
    return slot


def _notices(p: Parts) -> list[str]:
    return [str(notice) for notice in p.reporter.of("notice")]


def test_a_crash_fails_the_running_test_and_puts_the_rest_back_in_front() -> None:
    p = parts()
    j = Judged(p)
    p.running("m.B.t1")
    slot = _busy(p, "m.A.t1", "m.A.t2")
    slot.add_output(SEGFAULT, 0.5)
    j.judge.judge(slot, -11)
    assert slot.state is SlotState.DEAD
    record = p.record("m.A.t1")
    assert record.status is Status.FAIL
    traceback = record.attachment("traceback")
    assert traceback is not None
    assert "killed by signal 11 (SIGSEGV) while running this test" in traceback.text()
    assert "Fatal Python error: Segmentation fault" in traceback.text()
    assert _notices(p) == ["worker 0 killed by signal 11 (SIGSEGV) while running m.A.t1"]
    assert p.state.progress.done == 1
    assert p.state.queue is not None
    batch = p.state.queue.take(1)
    assert batch is not None
    assert batch.ids[0] == "m.A.t2"
    assert p.state.result.not_run == []


def test_a_crashed_workers_tests_are_not_run_once_the_run_has_halted() -> None:
    p = parts()
    j = Judged(p)
    p.running()
    p.state.halted = "stopping after 1 failure (--maxfail 1)"
    slot = _busy(p, "m.A.t1", "m.A.t2")
    j.judge.judge(slot, 3)
    assert p.record("m.A.t1").status is Status.FAIL
    assert p.state.result.not_run == ["m.A.t2"]


def test_a_worker_killed_for_a_timeout_fails_its_test_with_the_stacks() -> None:
    p = parts(RunOptions(timeout=2.0))
    j = Judged(p)
    p.running()
    slot = _busy(p, "m.A.t1", "m.A.t2")
    p.pool.check_deadlines(2.0)
    slot.add_output(b"Thread 0x1 (most recent call first):\n  File x in m.A.t1\n", 2.0)
    p.pool.check_deadlines(3.0)
    assert slot.killed
    j.judge.judge(slot, -9)
    traceback = p.record("m.A.t1").attachment("traceback")
    assert traceback is not None
    assert "Timed out: still running after 2s (--timeout)" in traceback.text()
    assert "File x in m.A.t1" in traceback.text()
    assert _notices(p) == ["m.A.t1 timed out after 2s; worker 0 killed"]
    assert j.delivered == [(0, [])]  # what it sent of the test meanwhile: nothing
    assert p.state.queue is not None
    assert p.state.queue.count == 1


def test_a_timed_out_test_that_had_finished_blames_nobody_and_the_next_runs_again() -> None:
    p = parts(RunOptions(timeout=2.0))
    j = Judged(p)
    p.running()
    slot = _busy(p, "m.A.t1", "m.A.t2")
    p.pool.check_deadlines(2.0)
    finished = Event(test_id="m.A.t1", status=Status.SUCCESS)
    started = Event(test_id="m.A.t2", status=Status.INPROGRESS)
    slot.held.extend([finished, started])
    p.pool.check_deadlines(4.0)
    slot.finish("m.A.t1", 4.0)  # (as delivering its result would)
    j.judge.judge(slot, -9)
    assert j.delivered == [(0, [finished])]  # not the inprogress of the next one
    assert p.records == []
    assert _notices(p) == [
        "worker 0 was killed because m.A.t1 ran over --timeout, but the test had just "
        "finished; m.A.t2 will run again"
    ]
    assert p.state.queue is not None
    batch = p.state.queue.take(1)
    assert batch is not None
    assert batch.ids == ("m.A.t2",)


def test_a_worker_stopped_by_ctrl_c_leaves_its_unstarted_tests_not_run() -> None:
    p = parts()
    j = Judged(p)
    slot = _busy(p, "m.A.t1", "m.A.t2", "m.A.t3")
    p.pool.stop(slot, StopReason.INTERRUPT)
    j.judge.judge(slot, -9)
    assert p.state.result.not_run == ["m.A.t2", "m.A.t3"]  # m.A.t1: reported unfinished
    assert p.records == []
    assert _notices(p) == []


def test_a_worker_stuck_starting_when_none_ever_got_ready_stops_the_run() -> None:
    p = parts(RunOptions(start_wait=5.0))
    j = Judged(p)
    slot = p.pool.start()
    p.pool.check_deadlines(5.0)
    p.pool.check_deadlines(10.0)
    j.judge.judge(slot, -9)
    error = p.state.result.error
    assert error is not None
    assert error.startswith("worker 0 (pid 10000) was not ready after 5s")
    assert p.state.phase is Phase.STOPPING


def test_a_worker_stuck_starting_beside_a_ready_one_is_a_notice() -> None:
    p = parts(RunOptions(start_wait=5.0))
    j = Judged(p)
    p.ready_slot()
    slot = p.pool.start()
    p.pool.check_deadlines(5.0)
    p.pool.check_deadlines(10.0)
    j.judge.judge(slot, -9)
    assert p.state.result.error is None
    [notice] = _notices(p)
    assert notice.startswith("worker 1 (pid 10001) was not ready after 5s")


def test_a_worker_stuck_quitting_is_a_notice_with_its_stacks() -> None:
    p = parts(RunOptions(quit_wait=30.0))
    j = Judged(p)
    slot = p.ready_slot()
    p.pool.stop(slot, StopReason.QUIT)
    p.pool.check_deadlines(30.0)
    slot.add_output(b"Thread 0x2 (most recent call first):\n  File t.py in run\n", 30.0)
    p.pool.check_deadlines(40.0)
    j.judge.judge(slot, -9)
    [notice] = _notices(p)
    assert "had not exited 30s after quit" in notice
    assert "File t.py in run" in notice
    assert p.state.result.error is None


def test_a_suite_that_cannot_load_is_the_runs_error_once() -> None:
    p = parts()
    j = Judged(p)
    first, second = p.pool.start(), p.pool.start()
    for slot in (first, second):
        slot.load_error = "ImportError: boom"
        slot.add_output(b"Traceback (most recent call last):\nImportError: boom\n", 0.0)
        j.judge.judge(slot, 2)
    assert p.state.result.error == (
        "the suite could not be loaded (worker 0: ImportError: boom); its output:\n"
        "Traceback (most recent call last):\nImportError: boom"
    )


def test_an_announced_exit_is_no_news_but_a_different_status_is_a_teardown_failure() -> None:
    p = parts()
    j = Judged(p)
    calm, crashed = p.ready_slot(), p.ready_slot()
    for slot in (calm, crashed):
        slot.exit_expected = 4
        slot.stop_reason = StopReason.QUIT
    j.judge.judge(calm, 4)
    assert p.records == []
    assert _notices(p) == []
    j.judge.judge(crashed, 1)
    assert [r.test_id for r in p.records] == ["worker-1 teardown"]


def test_a_non_zero_exit_after_quit_is_a_failing_teardown_entry() -> None:
    p = parts()
    j = Judged(p)
    slot = p.ready_slot()
    p.pool.stop(slot, StopReason.QUIT)
    slot.add_output(b"Exception in tearDownModule\n", 1.0)
    j.judge.judge(slot, 1)
    record = p.record("worker-0 teardown")
    assert record.status is Status.FAIL
    assert not record.runnable
    traceback = record.attachment("traceback")
    assert traceback is not None
    assert "exited with code 1 while tearing down after quit" in traceback.text()
    assert "Exception in tearDownModule" in traceback.text()
    assert _notices(p) == ["worker 0 exited with code 1 while tearing down after quit"]
    assert [e.file_bytes for e in p.sink.events if e.file_name == "stderr"] == [
        b"Exception in tearDownModule\n"
    ]


def test_a_death_while_idle_or_starting_is_a_notice_and_counts_against_restarts() -> None:
    p = parts(RunOptions(max_worker_restarts=1), wanted=1)
    j = Judged(p)
    p.running("m.A.t1")
    idle = p.ready_slot()
    idle.add_output(b"boom\n", 0.0)
    j.judge.judge(idle, 1)
    starting = p.pool.start()
    starting.add_output(b"boom\n", 0.0)
    j.judge.judge(starting, 1)
    assert _notices(p) == [
        "worker 0 exited with code 1 while idle; its last output:\nboom",
        "worker 1 failed to start: it exited with code 1 (the same output as the last)",
    ]
    p.pool.top_up()  # two deaths, over the limit of one
    error = p.state.result.error
    assert error is not None
    assert error.startswith("stopped after 2 worker deaths")


def test_the_exit_of_a_worker_the_controller_killed_is_no_news() -> None:
    p = parts()
    j = Judged(p)
    slot = p.pool.start()
    p.pool.stop(slot, StopReason.QUIT)  # not ready yet: killed
    j.judge.judge(slot, -9)
    assert p.records == []
    assert _notices(p) == []
    assert p.state.result.error is None
