"""Run against run, and where a test started failing: the rules, case by case."""

from __future__ import annotations

from proctor.store.model import HistoryEntry
from proctor.web.compare import compare_runs
from proctor.web.queries import started_failing
from proctor.wire.event import NS_PER_SECOND, Status
from proctor.wire.record import TestRecord


def rec(test_id: str, status: Status, seconds: float | None = 0.1) -> TestRecord:
    if seconds is None:
        return TestRecord(test_id, status)
    return TestRecord(test_id, status, None, 0, round(seconds * NS_PER_SECOND))


def test_a_retried_failure_counts_as_a_failure() -> None:
    base = [rec("a", Status.SUCCESS)]
    head = [rec("a", Status.FAIL), rec("a", Status.SUCCESS)]
    result = compare_runs(base, head)
    assert [c.test_id for c in result.new_failures] == ["a"]
    assert result.common == 1


def test_unfinished_and_unexpected_successes_are_failures_listings_are_not_tests() -> None:
    base = [rec("a", Status.SUCCESS), rec("b", Status.SUCCESS), rec("c", Status.EXISTS)]
    head = [rec("a", Status.INPROGRESS, None), rec("b", Status.UXSUCCESS), rec("c", Status.EXISTS)]
    result = compare_runs(base, head)
    assert [c.test_id for c in result.new_failures] == ["a", "b"]
    assert result.added == []
    assert result.removed == []
    assert result.common == 2


def test_a_new_test_that_fails_is_added_and_a_new_failure() -> None:
    result = compare_runs([], [rec("n", Status.FAIL)])
    assert [c.test_id for c in result.added] == ["n"]
    assert [c.test_id for c in result.new_failures] == ["n"]
    assert result.new_failures[0].base is None


def test_a_failing_test_that_disappears_is_removed_not_fixed() -> None:
    result = compare_runs([rec("gone", Status.FAIL)], [])
    assert [c.test_id for c in result.removed] == ["gone"]
    assert result.fixed == []


def test_a_skip_after_a_failure_is_fixed_and_skips_are_not_failures() -> None:
    result = compare_runs(
        [rec("a", Status.FAIL), rec("b", Status.SKIP)],
        [rec("a", Status.SKIP), rec("b", Status.SUCCESS)],
    )
    assert [c.test_id for c in result.fixed] == ["a"]
    assert result.new_failures == []


def test_only_real_duration_changes_are_listed_largest_first() -> None:
    base = [rec("tiny", Status.SUCCESS, 0.001), rec("big", Status.SUCCESS, 10.0)]
    base += [rec("x", Status.SUCCESS, 1.0), rec("y", Status.SUCCESS, 1.0)]
    base += [rec("quick", Status.SUCCESS, 4.0)]
    head = [rec("tiny", Status.SUCCESS, 0.04), rec("big", Status.SUCCESS, 11.0)]
    head += [rec("x", Status.SUCCESS, 2.0), rec("y", Status.SUCCESS, 5.0)]
    head += [rec("quick", Status.SUCCESS, 1.0)]
    result = compare_runs(base, head)
    # tiny: under 0.05 s of change; big: under 25% of its time.
    assert [c.test_id for c in result.slower] == ["y", "x"]
    assert [c.test_id for c in result.faster] == ["quick"]
    assert result.faster[0].delta == -3.0


def entry(run: int, status: Status, commit: str | None = None) -> HistoryEntry:
    return HistoryEntry(run, run, commit, "main", status, None, 0.1, None)


def test_started_failing_finds_the_first_run_of_the_current_streak() -> None:
    history = [
        entry(9, Status.FAIL, "c9"),
        entry(8, Status.UXSUCCESS, "c8"),
        entry(7, Status.INPROGRESS, "c7"),
        entry(6, Status.EXISTS),  # a listing: not an execution
        entry(5, Status.SUCCESS, "c5"),
        entry(4, Status.FAIL, "c4"),
    ]
    change = started_failing(history)
    assert change is not None
    assert change.first_failure.run_id == 7
    assert change.streak == 3
    assert change.last_good is not None
    assert change.last_good.git_commit == "c5"


def test_a_passing_test_has_no_changepoint_and_an_unbroken_streak_no_last_good() -> None:
    assert started_failing([entry(2, Status.SUCCESS), entry(1, Status.FAIL)]) is None
    assert started_failing([]) is None
    change = started_failing([entry(2, Status.FAIL), entry(1, Status.FAIL)])
    assert change is not None
    assert change.first_failure.run_id == 1
    assert change.last_good is None
