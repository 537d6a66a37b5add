"""--rerun-failures: failing tests run again in the same run, on fake workers."""

from __future__ import annotations

from proctor.exitcode import ExitCode
from proctor.runner.options import RunOptions
from proctor.testing import FakeBackend, FakeTest
from proctor.wire.event import Status
from tests.runner.controller_support import Outcome, passing, run_fake

FLAKY = "pkg.test_f.Case.test_flaky"
BROKEN = "pkg.test_b.Case.test_broken"
CRASHY = "pkg.test_c.Case.test_crashy"


def _attempts(outcome: Outcome, test_id: str) -> list[tuple[str, frozenset[str]]]:
    """The status and tags of each attempt at ``test_id``, as the event sink saw them."""
    return [(r.status.wire_name, r.tags) for r in outcome.records if r.test_id == test_id]


def test_a_test_failing_once_then_passing_is_flaky_and_the_run_passes() -> None:
    suite = [*passing(20), FakeTest(FLAKY, outcome="fail", then="success")]
    outcome = run_fake(suite, RunOptions(concurrency=2, rerun_failures=2))
    result = outcome.result
    assert result.exit_code == ExitCode.OK
    assert result.flaky == [FLAKY]
    assert result.failures == []
    assert [r.test_id for r in result.retried] == [FLAKY]
    assert result.counts[Status.SUCCESS] == 21
    assert result.counts[Status.FAIL] == 0
    assert result.outcome_line() == "21 passed, 0 failed, 0 skipped, 1 flaky"
    attempts = _attempts(outcome, FLAKY)
    assert [status for status, _ in attempts] == ["fail", "success"]
    assert "attempt-2" in attempts[1][1]
    assert "attempt-2" not in attempts[0][1]
    assert outcome.backend.runs[FLAKY] == 2
    assert any("running it again (2 of 3)" in str(n) for n in outcome.reporter.of("notice"))
    assert outcome.reporter.of("record").count(FLAKY) == 2


def test_an_always_failing_test_runs_n_plus_one_times_and_fails_the_run() -> None:
    suite = [*passing(10), FakeTest(BROKEN, outcome="fail")]
    outcome = run_fake(suite, RunOptions(concurrency=2, rerun_failures=2))
    result = outcome.result
    assert result.exit_code == ExitCode.FAILED
    assert outcome.backend.runs[BROKEN] == 3
    assert [r.test_id for r in result.failures] == [BROKEN]
    assert "attempt-3" in result.failures[0].tags
    assert result.counts[Status.FAIL] == 1
    assert len(result.retried) == 2
    assert result.flaky == []
    assert [status for status, _ in _attempts(outcome, BROKEN)] == ["fail"] * 3
    assert result.outcome_line() == "10 passed, 1 failed, 0 skipped"


def test_without_the_option_a_failure_runs_once() -> None:
    suite = [*passing(5), FakeTest(FLAKY, outcome="fail", then="success")]
    outcome = run_fake(suite, RunOptions(concurrency=2))
    assert outcome.result.exit_code == ExitCode.FAILED
    assert outcome.backend.runs[FLAKY] == 1
    assert outcome.result.flaky == []
    assert outcome.result.retried == []


def test_a_test_crashing_its_worker_is_retried_on_the_replacement_and_passes() -> None:
    suite = [*passing(6), FakeTest(CRASHY, outcome="crash", then="success")]
    outcome = run_fake(suite, RunOptions(concurrency=1, rerun_failures=1))
    result = outcome.result
    assert result.exit_code == ExitCode.OK
    assert result.flaky == [CRASHY]
    assert result.worker_restarts == 1
    ran_it = [w for w in outcome.backend.workers.values() if CRASHY in w.ran]
    assert len(ran_it) == 2  # the crashed worker, then its replacement
    assert [status for status, _ in _attempts(outcome, CRASHY)] == ["fail", "success"]
    traceback = result.retried[0].attachment("traceback")
    assert traceback is not None
    assert "killed by signal 11" in traceback.text()
    assert result.counts[Status.SUCCESS] == 7


def test_a_rerun_left_over_when_the_run_stops_keeps_its_failure() -> None:
    # One worker holds the whole run, in order, in one batch, so the retry waits behind ten
    # 1 s tests; Ctrl-C at 1.5 s stops the run before it: the failed attempt
    # is the test's outcome (a failure, not "not run").
    suite = [FakeTest(FLAKY, outcome="fail", then="success"), *passing(10, duration=1.0)]
    backend = FakeBackend(suite)
    backend.interrupt_at(1.5)
    order = tuple(test.test_id for test in suite)
    options = RunOptions(concurrency=1, rerun_failures=1, only=order, ordered=True)
    outcome = run_fake(suite, options, backend=backend)
    result = outcome.result
    assert result.exit_code == ExitCode.INTERRUPTED
    assert backend.runs[FLAKY] == 1
    assert len(backend.workers) == 1  # the retry waited for the one worker (--serial)
    assert [r.test_id for r in result.failures] == [FLAKY]
    assert FLAKY not in result.not_run
    assert result.counts[Status.FAIL] == 1
    assert result.flaky == []
