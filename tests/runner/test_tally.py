"""What the records add up to, alone: counts, --maxfail, --rerun-failures."""

from __future__ import annotations

from proctor.runner.rerun import Reruns
from proctor.runner.run_state import Phase, RunState
from proctor.runner.tally import Tally
from proctor.store.model import RETRIED_TAG
from proctor.wire.event import NS_PER_SECOND, Status
from proctor.wire.record import TestRecord
from tests.runner.controller_support import RecordingReporter
from tests.runner.parts_support import queue_of


class Counted:
    def __init__(self, *, maxfail: int | None = None, reruns: int = 0) -> None:
        self.state = RunState.new(None, 1)
        self.reporter = RecordingReporter()
        self.stored: list[TestRecord] = []
        self.halts: list[str] = []
        self.tally = Tally(
            self.state,
            Reruns(reruns),
            self.reporter,
            maxfail=maxfail,
            record_sinks=[self.stored.append],
            halt=self.halts.append,
        )


def _record(test_id: str, status: Status, seconds: float = 0.0) -> TestRecord:
    return TestRecord(test_id, status, start=0, stop=round(seconds * NS_PER_SECOND))


def test_records_are_counted_stored_and_reported() -> None:
    c = Counted()
    passed, failed = _record("m.A.t1", Status.SUCCESS), _record("m.A.t2", Status.FAIL)
    unfinished = _record("m.A.t3", Status.INPROGRESS)
    assert not c.tally.records_due
    for record in (passed, failed, unfinished):
        c.tally.record(record)
    result = c.state.result
    assert result.counts[Status.SUCCESS] == 1
    assert result.counts[Status.FAIL] == 1
    assert result.failures == [failed]
    assert result.unfinished == [unfinished]
    assert c.state.progress.failed == 1
    assert c.stored == [passed, failed, unfinished]
    assert c.reporter.of("record") == ["m.A.t1", "m.A.t2", "m.A.t3"]
    assert c.tally.records_due


def test_the_maxfail_th_failure_halts_the_run() -> None:
    c = Counted(maxfail=2)
    c.tally.record(_record("m.A.t1", Status.FAIL))
    assert c.halts == []
    c.tally.record(_record("m.A.t2", Status.UXSUCCESS))
    assert c.halts == ["stopping after 2 failures (--maxfail 2)"]


def test_a_failure_with_attempts_left_runs_again_first_and_is_not_counted() -> None:
    c = Counted(reruns=1)
    c.state.queue = queue_of("m.B.t1")
    c.state.phase = Phase.RUNNING
    c.tally.record(_record("m.A.t1", Status.FAIL))
    result = c.state.result
    assert result.counts[Status.FAIL] == 0
    assert [r.test_id for r in result.retried] == ["m.A.t1"]
    assert RETRIED_TAG in c.stored[0].tags
    batch = c.state.queue.take(1)
    assert batch is not None
    assert batch.ids[0] == "m.A.t1"
    assert c.state.progress.total == 1
    assert c.reporter.of("notice") == ["m.A.t1 failed; running it again (2 of 2)"]
    c.tally.record(_record("m.A.t1", Status.SUCCESS))
    assert result.flaky == ["m.A.t1"]
    assert "attempt-2" in c.stored[-1].tags
    assert result.counts[Status.SUCCESS] == 1


def test_a_failure_is_not_run_again_once_the_run_winds_down() -> None:
    c = Counted(reruns=1)
    c.state.queue = queue_of()
    c.state.phase = Phase.RUNNING
    c.state.interrupts = 1
    c.tally.record(_record("m.A.t1", Status.FAIL))
    assert c.state.result.retried == []
    assert c.state.result.counts[Status.FAIL] == 1


def test_a_retry_that_never_ran_settles_as_its_failed_attempt() -> None:
    c = Counted(reruns=1)
    c.state.queue = queue_of()
    c.state.phase = Phase.RUNNING
    failed = _record("m.A.t1", Status.FAIL)
    c.tally.record(failed)
    c.state.drop_queue()
    assert c.state.result.not_run == ["m.A.t1"]
    c.tally.settle_retries()
    result = c.state.result
    assert result.not_run == []
    assert result.counts[Status.FAIL] == 1
    assert [r.test_id for r in result.failures] == ["m.A.t1"]


def test_the_runs_pace_is_known_after_ten_tests() -> None:
    c = Counted()
    for i in range(9):
        c.tally.record(_record(f"m.A.t{i}", Status.SUCCESS, 0.5))
    assert c.tally.observed_seconds(4) is None
    c.tally.record(_record("m.A.t9", Status.SUCCESS, 0.5))
    assert c.tally.observed_seconds(4) == 2.0


def test_tests_a_worker_never_reported_are_counted_apart_and_done() -> None:
    c = Counted()
    c.tally.unreported(["m.A.t1", "m.A.t2"])
    assert c.state.result.unreported == ["m.A.t1", "m.A.t2"]
    assert c.state.progress.done == 2
