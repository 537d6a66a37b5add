"""The history a ``--shard`` job splits by: pinned to the runs finished before its commit."""

from __future__ import annotations

import time

from proctor.cli.run_shard import PINNED_RUNS, pinned_history
from proctor.runner.history import StoreHistory
from proctor.runner.shard import split
from proctor.store.memory import MemoryStore
from proctor.wire.event import Status
from proctor.wire.record import TestRecord

IDS = [f"pkg.m{n % 3}.T.test_{n:02d}" for n in range(30)]


def _store_run(store: MemoryStore, seconds: dict[str, float]) -> None:
    start = time.time_ns()
    records = [
        TestRecord(test_id, Status.SUCCESS, start=start, stop=start + round(s * 1e9))
        for test_id, s in seconds.items()
    ]
    store.write_run(records)


def test_sibling_shards_storing_their_results_do_not_change_the_split() -> None:
    store = MemoryStore()
    before = {test_id: 0.01 * (n + 1) for n, test_id in enumerate(IDS)}
    _store_run(store, before)
    commit = time.time_ns() + 1  # every run of this CI build finishes after its commit
    time.sleep(0.001)
    first = pinned_history(StoreHistory(store), store, commit).durations(IDS)
    assert first == before
    # A sibling job stores its part with very different timings...
    _store_run(store, {test_id: 5.0 - 0.1 * n for n, test_id in enumerate(IDS[:15])})
    live = StoreHistory(store).durations(IDS)
    assert split(IDS, live, 3) != split(IDS, before, 3)  # (the race, without pinning)
    # ...and a job starting later still splits by the runs before the commit.
    later = pinned_history(StoreHistory(store), store, commit).durations(IDS)
    assert later == before
    assert split(IDS, later, 3) == split(IDS, first, 3)


def test_the_latest_runs_before_the_commit_count_the_newest_last() -> None:
    store = MemoryStore()
    for n in range(PINNED_RUNS + 2):
        _store_run(store, {IDS[0]: 1.0 + n, IDS[n + 1]: 0.5})
    commit = time.time_ns() + 1
    durations = pinned_history(StoreHistory(store), store, commit).durations(IDS)
    assert durations[IDS[0]] == 1.0 + PINNED_RUNS + 1  # the newest run's figure
    assert IDS[1] not in durations  # only in a run older than the last PINNED_RUNS
    assert IDS[PINNED_RUNS + 2] in durations


def test_without_a_commit_time_the_live_history_is_used() -> None:
    store = MemoryStore()
    _store_run(store, {IDS[0]: 1.0})
    live = StoreHistory(store)
    assert pinned_history(live, store, None) is live
    assert pinned_history(live, None, time.time_ns()) is live
