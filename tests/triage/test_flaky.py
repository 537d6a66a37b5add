"""Flaky and broken verdicts (proctor.triage.flaky), on the in-memory store and SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from proctor.config import ConfigError
from proctor.store import Store, open_store
from proctor.store.memory import MemoryStore
from proctor.triage.clusters import Window, window_runs
from proctor.triage.flaky import Verdict, judge
from proctor.triage.settings import TriageSettings

from .history import fault, ok, store_run


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened = MemoryStore() if request.param == "memory" else open_store(str(tmp_path / "r"))
    yield opened
    opened.close()


def _all(store: Store, settings: TriageSettings | None = None) -> dict[str, Verdict]:
    return {v.test_id: v for v in judge(store, window_runs(store, Window()), settings)}


def test_pass_and_fail_on_one_commit_and_variant_is_flaky_with_the_evidence(store: Store) -> None:
    a = store_run(store, [ok("t"), ok("other")], day=0, commit="c1")
    b = store_run(store, [fault("t", "f"), ok("other")], day=1, commit="c1")
    verdicts = judge(store, window_runs(store, Window()))
    assert [v.test_id for v in verdicts] == ["t"]
    (verdict,) = verdicts
    assert verdict.verdict == "flaky"
    assert verdict.failed_runs == [b.id]
    assert verdict.passed_runs == [a.id]
    assert verdict.impact == [b.id]  # its run's one failure
    (evidence,) = verdict.evidence
    assert (evidence.commit, evidence.variant) == ("c1", ("3.11", "linux", ""))
    assert (evidence.passed, evidence.failed) == ((a.id,), (b.id,))
    assert f"passed in run {a.id} and failed in run {b.id} on commit c1" in verdict.reasons[0]


def test_different_commits_variants_dirty_trees_or_no_commit_are_not_evidence(
    store: Store,
) -> None:
    store_run(store, [ok("commit")], day=0, commit="c1")
    store_run(store, [fault("commit", "f")], day=1, commit="c2")
    store_run(store, [ok("variant")], day=2, commit="c3", python="3.12")
    store_run(store, [fault("variant", "f")], day=3, commit="c3", python="3.11")
    store_run(store, [ok("dirty")], day=4, commit="c4")
    store_run(store, [fault("dirty", "f")], day=5, commit="c4", dirty=True)
    store_run(store, [ok("job")], day=8, commit="c5", job="py311-unit")
    store_run(store, [fault("job", "f")], day=9, commit="c5", job="py311-integration")
    store_run(store, [ok("nogit")], day=6, commit=None)
    store_run(store, [fault("nogit", "f")], day=7, commit=None)
    assert _all(store) == {}


def test_failing_at_the_edge_of_history_is_broken_and_says_which_runs(store: Store) -> None:
    runs = [store_run(store, [ok("t"), ok("u")], day=0, commit="c0").id]
    runs += [
        store_run(store, [fault("t", "f"), fault("u", "g")], day=day, commit=f"c{day}").id
        for day in range(1, 4)
    ]
    verdicts = _all(store)
    assert set(verdicts) == {"t", "u"}
    verdict = verdicts["t"]
    assert verdict.verdict == "broken"
    assert verdict.impact == []  # u failed in every run too
    assert (
        f"failed in its last 3 runs (runs {runs[1]}, {runs[2]}, {runs[3]})" in (verdict.reasons[0])
    )


def test_six_of_the_last_ten_is_broken_and_thresholds_are_configurable(store: Store) -> None:
    pattern = [False, True, False, True, False, False, True, False, True, False]  # 6 failures
    for day, passes in enumerate(pattern):
        store_run(store, [ok("t") if passes else fault("t", "f")], day=day, commit=f"c{day}")
    verdict = _all(store)["t"]
    assert verdict.verdict == "broken"
    assert "failed in 6 of its last 10 runs" in verdict.reasons[0]
    strict = TriageSettings(broken_failures=7)
    assert _all(store, strict) == {}


def test_a_test_that_recovered_drops_off_after_enough_passes(store: Store) -> None:
    store_run(store, [ok("t")], day=0)
    store_run(store, [fault("t", "f")], day=1)
    for day in range(2, 6):
        store_run(store, [ok("t")], day=day)
    assert "t" in _all(store)  # four passes since
    store_run(store, [ok("t")], day=6)
    assert _all(store) == {}  # five
    assert "t" in _all(store, TriageSettings(recovered_after=6))


def test_verdicts_are_ranked_by_impact() -> None:
    store = MemoryStore()
    store_run(store, [ok("low"), ok("high")], day=0)
    store_run(store, [fault("low", "f"), fault("high", "g")], day=1)
    store_run(store, [ok("low"), fault("high", "g")], day=2)
    store_run(store, [ok("low"), ok("high")], day=3)
    assert [v.test_id for v in judge(store, window_runs(store, Window()))] == ["high", "low"]


def test_settings_are_checked_with_where_they_came_from() -> None:
    assert TriageSettings.from_table({"broken-window": 12}, "x").broken_window == 12
    with pytest.raises(ConfigError, match=r"pyproject.toml \[tool.proctor.triage\]: unknown"):
        TriageSettings.from_table({"nope": 1}, "pyproject.toml [tool.proctor.triage]")
    with pytest.raises(ConfigError, match="should be a whole number"):
        TriageSettings.from_table({"window_days": 0}, "x")
    with pytest.raises(ConfigError, match="should be a whole number"):
        TriageSettings.from_table({"window_days": True}, "x")
    with pytest.raises(ConfigError, match="cannot be more than broken_window"):
        TriageSettings.from_table({"broken_failures": 11}, "x")
