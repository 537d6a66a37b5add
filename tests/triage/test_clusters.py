"""Clusters over a window (proctor.triage.clusters), on the in-memory store and SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from proctor.store import Store, open_store
from proctor.store.memory import MemoryStore
from proctor.triage.clusters import Explanation, Window, summarise, window_runs

from .history import DAY, T0, fault, ok, store_run


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened = MemoryStore() if request.param == "memory" else open_store(str(tmp_path / "r"))
    yield opened
    opened.close()


def _history(store: Store) -> list[int]:
    """Days 0-9, one run a day: 'old' fails on days 0-1, is absent 2-6, back on 7-9
    (regressed); 'steady' fails every day (ongoing before the window); 'fresh'
    first fails on day 8 (new); 'fixed' fails on days 5-6 only (gone by the end)."""
    ids = []
    for day in range(10):
        records = [fault("t_steady_a", "steady"), fault("t_steady_b", "steady")]
        records.append(fault("t_old", "old") if day in (0, 1, 7, 8, 9) else ok("t_old"))
        records.append(fault("t_fresh", "fresh") if day >= 8 else ok("t_fresh"))
        records.append(fault("t_fixed", "fixed") if day in (5, 6) else ok("t_fixed"))
        ids.append(store_run(store, records, day=day).id)
    return ids


def test_clusters_are_ranked_with_counts_states_trend_and_share(store: Store) -> None:
    _history(store)
    runs = window_runs(store, Window(since_ns=T0 + 5 * DAY))
    assert [info.metadata.started_ns for info in runs] == [T0 + d * DAY for d in range(5, 10)]
    clusters, total = summarise(store, runs, gone_after_runs=3, trend_bins=5)
    assert total == 10 + 3 + 2 + 2
    by_site = {c.key.split(":")[1].split(" ")[0]: c for c in clusters}
    assert set(by_site) == {"steady", "old", "fresh", "fixed"}
    steady = by_site["steady"]
    assert clusters[0] is steady
    assert (steady.failures, len(steady.tests), len(steady.runs)) == (10, 2, 5)
    assert steady.trend == [2, 2, 2, 2, 2]
    assert steady.share == pytest.approx(10 / 17)
    assert steady.state == "ongoing"
    assert by_site["old"].state == "regressed"
    assert by_site["old"].trend == [0, 0, 1, 1, 1]
    assert by_site["fresh"].state == "new"
    assert by_site["fixed"].state == "gone"
    assert by_site["fixed"].first_ever_ns == T0 + 5 * DAY
    assert steady.first_ever_ns == T0
    assert steady.example is not None
    assert steady.example.run == runs[-1].id  # the newest failure is the example
    assert steady.explanation == Explanation(None, None)


def test_a_cluster_seen_before_without_a_gap_is_ongoing_not_regressed(store: Store) -> None:
    _history(store)
    runs = window_runs(store, Window(since_ns=T0 + 8 * DAY))
    clusters, _ = summarise(store, runs, gone_after_runs=3)
    states = {c.key.split(":")[1].split(" ")[0]: c.state for c in clusters}
    # 'old' was last seen before the window on day 7: one run before, no gap.
    assert states == {"steady": "ongoing", "old": "ongoing", "fresh": "new"}


def test_windows_by_run_count_and_branch_and_the_explain_seam(store: Store) -> None:
    ids = _history(store)
    runs = window_runs(store, Window(runs=2))
    assert [info.id for info in runs] == ids[-2:]
    assert window_runs(store, Window(branch="other")) == []
    clusters, total = summarise(store, runs, explain=lambda cluster: Explanation("rule-1", "31"))
    assert total == 8
    assert {c.explanation.bug for c in clusters} == {"31"}
    assert summarise(store, []) == ([], 0)


def test_the_trend_is_per_day_over_a_window_of_days(store: Store) -> None:
    _history(store)
    runs = window_runs(store, Window(since_ns=T0))
    clusters, _ = summarise(store, runs)
    steady = clusters[0]
    assert len(steady.trend) == 10
    assert steady.trend == [2] * 10


def test_run_notes_count_other_runs_mark_new_clusters_and_take_explanations(store: Store) -> None:
    import io

    from proctor.cli.triage_view import show_notes
    from proctor.triage.notes import notes_for_run

    _history(store)
    newest = store.runs(limit=1)[0]
    notes = {n.key.split(":")[1].split(" ")[0]: n for n in notes_for_run(store, newest)}
    assert set(notes) == {"steady", "old", "fresh"}
    assert notes["steady"].other_runs == 9
    assert notes["steady"].tests == ("t_steady_a", "t_steady_b")
    assert not notes["steady"].new
    assert not notes["fresh"].new  # it first failed the day before
    assert notes["fresh"].other_runs == 1
    first = store.runs(since_ns=T0, until_ns=T0 + 1)[0]
    (steady_then, old_then) = notes_for_run(store, first, explain=lambda row: ("r1", "31"))
    assert steady_then.new
    assert (steady_then.rule, steady_then.bug) == ("r1", "31")
    out = io.StringIO()
    show_notes(out, [steady_then, old_then])
    assert "known: bug 31 (rule r1)" in out.getvalue()
    assert "first seen in this run" in out.getvalue()


def test_notes_say_a_hundred_and_more_rather_than_counting_every_run() -> None:
    import io

    from proctor.cli.triage_view import show_notes
    from proctor.triage.notes import RUNS_COUNTED, ClusterNote

    out = io.StringIO()
    note = ClusterNote("c" * 16, "traceback", "K", ("t",), RUNS_COUNTED + 1, T0, False)
    show_notes(out, [note, note._replace(other_runs=RUNS_COUNTED)])
    assert f"also failed in {RUNS_COUNTED}+ other runs since" in out.getvalue()
    assert f"also failed in {RUNS_COUNTED} other runs since" in out.getvalue()
