"""Choosing tests (filters, lists, --failing), listing, and isolation against fake workers."""

from __future__ import annotations

from pathlib import Path

import pytest

from proctor.runner.history import RecordsHistory, worker_sequences
from proctor.runner.isolate import IsolationError, find_culprits, suspects_of
from proctor.runner.options import RunOptions
from proctor.runner.protocol import ListTests, RunTests
from proctor.runner.selection import Selection, SelectionError, read_id_file, select
from proctor.testing import FakeTest
from proctor.wire.event import Status
from tests.runner.controller_support import passing, run_fake

IDS = ["a.T.test_one", "a.T.test_two", "b.U.test_three", "c.V.test_p[1-2]", "c.V.test_p[3]"]


def test_filters_are_searched_regexes_ored() -> None:
    assert select(IDS, Selection(filters=("two", "^c"))).ids == [
        "a.T.test_two",
        "c.V.test_p[1-2]",
        "c.V.test_p[3]",
    ]


def test_exclude_regex_and_exclude_list(tmp_path: Path) -> None:
    listed = tmp_path / "exclude.txt"
    listed.write_text("# flaky ones\nc.V.test_p[1-2]  # a comment, as stestr allows\n\n")
    chosen = select(IDS, Selection(exclude_regex=("one",), exclude_list=listed))
    assert chosen.ids == ["a.T.test_two", "b.U.test_three", "c.V.test_p[3]"]


def test_include_list_matches_regexes_and_literal_ids(tmp_path: Path) -> None:
    listed = tmp_path / "include.txt"
    listed.write_text("test_three\nc.V.test_p[1-2]\n")
    assert select(IDS, Selection(include_list=listed)).ids == ["b.U.test_three", "c.V.test_p[1-2]"]


def test_load_list_names_exact_ids_and_reports_missing_ones(tmp_path: Path) -> None:
    listed = tmp_path / "load.txt"
    listed.write_text("b.U.test_three\ngone.T.test\na.T.test_one\n")
    chosen = select(IDS, Selection(load_list=listed))
    assert chosen.ids == ["a.T.test_one", "b.U.test_three"]
    assert chosen.missing == ["gone.T.test"]
    assert chosen.named == ["b.U.test_three", "gone.T.test", "a.T.test_one"]


def test_failing_intersects_with_a_load_list(tmp_path: Path) -> None:
    listed = tmp_path / "load.txt"
    listed.write_text("a.T.test_one\na.T.test_two\n")
    chosen = select(
        IDS, Selection(failing=True, load_list=listed), ["a.T.test_two", "b.U.test_three"]
    )
    assert chosen.ids == ["a.T.test_two"]


def test_bad_regex_and_missing_file_are_selection_errors(tmp_path: Path) -> None:
    with pytest.raises(SelectionError, match="not a regex"):
        select(IDS, Selection(filters=("(",)))
    with pytest.raises(SelectionError, match="cannot read"):
        read_id_file(tmp_path / "nope")


def test_the_listing_comes_from_one_of_the_run_workers() -> None:
    outcome = run_fake(passing(10), RunOptions(concurrency=3))
    listings = [w for w in outcome.backend.workers.values() if ListTests() in w.commands]
    assert len(listings) == 1
    assert len(outcome.backend.workers) == 3


def test_list_only_runs_nothing() -> None:
    outcome = run_fake(
        passing(10), RunOptions(concurrency=2, list_only=True, selection=Selection(filters=("m1",)))
    )
    assert outcome.result.selected == [t.test_id for t in passing(10) if "m1" in t.test_id]
    assert outcome.result.ran == 0
    assert not any(
        isinstance(c, RunTests) for w in outcome.backend.workers.values() for c in w.commands
    )


def test_failing_runs_what_failed_last_time() -> None:
    suite = [*passing(6), FakeTest("m.X.test_bad", outcome="fail")]
    history = RecordsHistory()
    first = run_fake(suite, RunOptions(concurrency=2))
    history.add_run(first.records)
    assert history.failing_ids() == ["m.X.test_bad"]
    again = run_fake(
        suite, RunOptions(concurrency=2, selection=Selection(failing=True)), history=history
    )
    assert [r.test_id for r in again.records] == ["m.X.test_bad"]


def test_a_serial_load_list_runs_in_the_lists_order(tmp_path: Path) -> None:
    suite = passing(6, modules=2)
    order = [suite[4].test_id, suite[1].test_id, suite[3].test_id]
    listed = tmp_path / "load.txt"
    listed.write_text("\n".join(order) + "\n")
    options = RunOptions(concurrency=1, ordered=True, selection=Selection(load_list=listed))
    outcome = run_fake(suite, options)
    assert outcome.backend.workers[0].ran == order


def test_only_skips_the_listing_and_keeps_the_order() -> None:
    suite = passing(5, modules=1)
    ids = (suite[3].test_id, suite[0].test_id)
    outcome = run_fake(suite, RunOptions(concurrency=4, only=ids, ordered=True))
    assert len(outcome.backend.workers) == 1
    assert outcome.backend.workers[0].ran == list(ids)
    assert ListTests() not in outcome.backend.workers[0].commands


def test_worker_sequences_follow_start_times_per_worker() -> None:
    outcome = run_fake(passing(20, modules=2), RunOptions(concurrency=2))
    sequences = worker_sequences(outcome.records)
    for worker, fake in outcome.backend.workers.items():
        assert sequences[str(worker)] == fake.ran


def _polluted_suite() -> list[FakeTest]:
    tests = [FakeTest(f"m.A.test_{i:02d}") for i in range(40)]
    victim = FakeTest("m.Z.test_victim", fails_after=frozenset({"m.A.test_07", "m.A.test_29"}))
    return [*tests, victim]


def test_isolation_finds_the_two_tests_that_together_break_a_third() -> None:
    suite = _polluted_suite()
    first = run_fake(
        suite, RunOptions(concurrency=1, only=tuple(t.test_id for t in suite), ordered=True)
    )
    assert first.status_of("m.Z.test_victim") == "fail"
    worker, suspects = suspects_of("m.Z.test_victim", first.records)
    assert len(suspects) == 40

    def probe(ids: list[str]) -> bool:
        run = run_fake(suite, RunOptions(only=tuple(ids), ordered=True))
        return run.status_of("m.Z.test_victim") == "fail"

    found = find_culprits("m.Z.test_victim", worker, suspects, probe)
    assert found.culprits == ["m.A.test_07", "m.A.test_29"]
    assert not found.fails_alone
    assert found.probes <= 2 + 2 * 7


def test_isolation_reports_a_test_that_fails_alone_and_one_not_in_the_last_run() -> None:
    found = find_culprits("t", "0", ["a", "b"], lambda ids: True)
    assert found.fails_alone
    assert found.probes == 1
    with pytest.raises(IsolationError, match="did not run"):
        suspects_of("nope", run_fake(passing(3), RunOptions()).records)


def test_records_history_keeps_the_latest_outcome_per_test() -> None:
    history = RecordsHistory()
    suite = [FakeTest("m.A.t", outcome="fail", duration=0.5)]
    history.add_run(run_fake(suite, RunOptions()).records)
    history.add_run(run_fake([FakeTest("m.A.t", duration=0.25)], RunOptions()).records)
    assert history.failing_ids() == []
    assert history.durations(["m.A.t", "other"]) == {"m.A.t": pytest.approx(0.25)}
    assert all(r.status is Status.SUCCESS for r in history.last_run())


@pytest.mark.parametrize("option", ["include_list", "exclude_list"])
def test_a_bad_regex_in_a_list_file_names_the_file_line_and_column(
    tmp_path: Path, option: str
) -> None:
    listed = tmp_path / "list.txt"
    listed.write_text("# reasons\ntest_one\n\n   a.T.test_(two  # flaky\n")
    with pytest.raises(SelectionError) as raised:
        select(IDS, Selection(**{option: listed}))  # type: ignore[arg-type]
    message = str(raised.value)
    # Line 4: the pattern starts at column 4, and its unclosed "(" is its 10th character.
    assert message.startswith(f"{listed}:4:13: 'a.T.test_(two' is not a regex: ")
    assert "missing )" in message


def test_an_id_that_is_a_valid_regex_still_matches_itself_literally(tmp_path: Path) -> None:
    listed = tmp_path / "exclude.txt"
    listed.write_text("c.V.test_p[1-2]\n")  # as a regex, [1-2] is a class: it would not match
    assert select(IDS, Selection(exclude_list=listed)).ids == [*IDS[:3], "c.V.test_p[3]"]
