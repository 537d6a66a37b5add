"""--maxfail and --ff against fake workers on a virtual clock (fast, exact)."""

from __future__ import annotations

from proctor.exitcode import ExitCode
from proctor.runner.history import RecordsHistory
from proctor.runner.options import RunOptions
from proctor.runner.planning import plan_run
from proctor.testing import FakeTest
from proctor.wire.event import Status
from tests.runner.controller_support import passing, run_fake


def _suite() -> list[FakeTest]:
    tests = passing(40, modules=1, duration=0.1)  # one class: discovery order
    for position in (5, 12, 30):
        tests[position] = FakeTest(tests[position].test_id, outcome="fail", duration=0.1)
    return tests


def test_maxfail_halts_the_run_and_every_test_is_accounted_for_once() -> None:
    for workers, maxfail in ((1, 1), (2, 2), (3, 1)):
        suite = _suite()
        outcome = run_fake(suite, RunOptions(concurrency=workers, maxfail=maxfail))
        result = outcome.result
        assert result.exit_code == ExitCode.FAILED
        assert not result.interrupted
        assert maxfail <= len(result.failures) <= maxfail + workers - 1
        assert result.not_run
        finished = [t.test_id for t in suite if outcome.status_of(t.test_id) is not None]
        assert not set(finished) & set(result.not_run)
        assert len(finished) + len(result.not_run) == len(suite)  # each test once
        assert not result.unfinished
        notices = [str(n) for n in outcome.reporter.of("notice")]
        assert any(f"stopping after {maxfail} failure" in n for n in notices)
        assert not any("crashed" in n or "exited" in n for n in notices)


def test_maxfail_one_on_one_worker_runs_nothing_after_the_first_failure() -> None:
    suite = _suite()
    outcome = run_fake(suite, RunOptions(concurrency=1, maxfail=1))
    result = outcome.result
    assert [r.test_id for r in result.failures] == [suite[5].test_id]
    assert result.counts[Status.SUCCESS] == 5
    assert result.not_run == [t.test_id for t in suite[6:]]


def test_a_maxfail_not_reached_changes_nothing() -> None:
    outcome = run_fake(_suite(), RunOptions(concurrency=2, maxfail=4))
    assert len(outcome.result.failures) == 3
    assert outcome.result.not_run == []


def test_failed_first_puts_the_failing_tests_first_and_keeps_the_rest() -> None:
    suite = _suite()
    history = RecordsHistory()
    history.add_run(run_fake(suite, RunOptions(concurrency=1)).records)
    failing = set(history.failing_ids())
    assert len(failing) == 3
    ids = [t.test_id for t in suite]
    plan = plan_run(ids, RunOptions(failed_first=True), history, 1).plan
    order = [test_id for unit in plan.units for test_id in unit.ids]
    assert sorted(order) == sorted(ids)
    assert set(order[:3]) == failing
    assert order[3:] == [test_id for test_id in ids if test_id not in failing]
    again = run_fake(suite, RunOptions(concurrency=1, failed_first=True), history=history)
    started = [r.test_id for r in sorted(again.records, key=lambda r: r.start or 0)]
    assert set(started[:3]) == failing
