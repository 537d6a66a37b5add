"""The store's reading half: all the dashboard may touch.

The dashboard holds a :class:`ReadOnlyRepository`, never the :class:`Store`,
so no page can write, remove or collect garbage, whatever a request asks. It
also serialises the calls: the server answers requests on several threads, and
a backend's connection is one.

It opens the repository read-only (``open_store(url, read_only=True)``: SQLite
``mode=ro``, a PostgreSQL session whose transactions are read-only), a second
guard below this one that the database enforces; pointing ``proctor ui`` at a
place with no history explains itself instead of creating an empty repository.

The triage and bugs layers read the store through their own functions
(:func:`~proctor.triage.clusters.summarise`, :func:`~proctor.triage.flaky.judge`,
:func:`~proctor.triage.detail.cluster_detail`, the rules' :class:`Explainer`,
:class:`~proctor.bugs.repository.BugRepository`'s reading half, the bugs' live
evidence); the methods below call them with the store under the same lock, so
those layers' reading functions are reused whole and still no page holds the store.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from proctor.store.contract import Store
from proctor.store.failures import FailureRow
from proctor.store.model import HistoryEntry, RunInfo, SlowTest, StoreStats, TestStats
from proctor.wire.record import TestRecord

if TYPE_CHECKING:
    from proctor.bugs.event import BugEvent
    from proctor.bugs.evidence import LinkEvidence
    from proctor.bugs.state import BugLink, BugState
    from proctor.store.bug_tables import SnapshotRow
    from proctor.triage.clusters import Cluster, Explanation
    from proctor.triage.detail import ClusterDetail
    from proctor.triage.flaky import Verdict
    from proctor.triage.notes import ClusterNote
    from proctor.triage.rules import Rule
    from proctor.triage.settings import TriageSettings

__all__ = ["ReadOnlyRepository", "open_readonly"]


class ReadOnlyRepository:
    """The reading methods of a :class:`Store`, one call at a time."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self.location = store.location
        self.backend = store.backend

    def run(self, run_id: int) -> RunInfo:
        with self._lock:
            return self._store.run(run_id)

    def latest_run(self) -> RunInfo | None:
        with self._lock:
            return self._store.latest_run()

    def runs(
        self,
        *,
        branch: str | None = None,
        commit: str | None = None,
        since_ns: int | None = None,
        until_ns: int | None = None,
        limit: int | None = None,
    ) -> list[RunInfo]:
        with self._lock:
            return self._store.runs(
                branch=branch, commit=commit, since_ns=since_ns, until_ns=until_ns, limit=limit
            )

    def records(self, run_id: int, *, attachments: bool = True) -> list[TestRecord]:
        with self._lock:
            return self._store.records(run_id, attachments=attachments)

    def test_history(self, test_id: str, *, limit: int | None = None) -> list[HistoryEntry]:
        with self._lock:
            return self._store.test_history(test_id, limit=limit)

    def test_stats(self, test_ids: Iterable[str]) -> dict[str, TestStats]:
        with self._lock:
            return self._store.test_stats(test_ids)

    def find_tests(self, fragment: str, *, limit: int = 10) -> list[str]:
        with self._lock:
            return self._store.find_tests(fragment, limit=limit)

    def slowest(self, *, limit: int | None = 10, run_id: int | None = None) -> list[SlowTest]:
        with self._lock:
            return self._store.slowest(limit=limit, run_id=run_id)

    def writers_alive(self, runs: Iterable[RunInfo]) -> dict[int, bool | None]:
        with self._lock:
            return self._store.writers_alive(runs)

    def stats(self) -> StoreStats:
        with self._lock:
            return self._store.stats()

    def close(self) -> None:
        with self._lock:
            self._store.close()

    # -- triage (proctor.triage), each under the lock

    def result(self, run_id: int, seq: int) -> TestRecord | None:
        with self._lock:
            return self._store.result(run_id, seq)

    def failures(self, run_ids: Iterable[int]) -> list[FailureRow]:
        """The signed failures of the runs under the current algorithm, newest run first."""
        from proctor.triage.algorithm import ALGORITHM

        with self._lock:
            return self._store.failures(list(run_ids), algorithm=ALGORITHM)

    def stored_rules(self) -> list[Rule]:
        """The repository's copy of the known-bug rules (``proctor rules sync``)."""
        from proctor.triage.rules import StoreRuleBook

        with self._lock:
            return StoreRuleBook(self._store).load()

    def clusters(
        self,
        runs: Sequence[RunInfo],
        rules: Sequence[Rule],
        *,
        branch: str | None,
        gone_after_runs: int,
    ) -> tuple[list[Cluster], int]:
        """The failure clusters of ``runs`` (oldest first), each explained by
        ``rules`` (:func:`proctor.triage.clusters.summarise`), and the failures."""
        from proctor.triage.clusters import summarise
        from proctor.triage.explain import Explainer

        with self._lock:
            explainer = Explainer(self._store, rules) if rules else None
            return summarise(
                self._store,
                runs,
                gone_after_runs=gone_after_runs,
                branch=branch,
                explain=None if explainer is None else explainer.cluster,
            )

    def verdicts(self, runs: Sequence[RunInfo], settings: TriageSettings) -> list[Verdict]:
        """The flaky and broken tests of ``runs``, oldest first
        (:func:`proctor.triage.flaky.judge`)."""
        from proctor.triage.flaky import judge

        with self._lock:
            return judge(self._store, runs, settings)

    def test_verdict(
        self, test_id: str, history: Sequence[HistoryEntry], settings: TriageSettings
    ) -> Verdict | None:
        """The flaky or broken verdict on one test over the executions shown
        (``history``, newest first: :func:`proctor.triage.flaky.judge_test`)."""
        from proctor.triage.flaky import judge_test

        if not history:
            return None
        wanted = {entry.run_id for entry in history}
        with self._lock:
            runs = self._store.runs(
                since_ns=min(entry.run_started_ns for entry in history),
                until_ns=max(entry.run_started_ns for entry in history) + 1,
            )
        infos = {info.id: info for info in runs if info.id in wanted}
        executions = [
            (infos[entry.run_id], entry.status)
            for entry in reversed(history)
            if entry.run_id in infos
        ]
        return judge_test(test_id, executions, settings)

    def cluster_detail(self, cluster: str) -> ClusterDetail | None:
        """One cluster whole (:func:`proctor.triage.detail.cluster_detail`), or None."""
        from proctor.triage.detail import cluster_detail

        with self._lock:
            return cluster_detail(self._store, cluster)

    def cluster_id(self, given: str) -> str:
        """The cluster ``given`` names, its id or a unique prefix
        (:func:`proctor.triage.detail.resolve_cluster`; raises its ``ClusterNotFound``)."""
        from proctor.triage.detail import resolve_cluster

        with self._lock:
            return resolve_cluster(self._store, given)

    def explain(self, rows: Sequence[FailureRow], rules: Sequence[Rule]) -> list[Explanation]:
        """What explains each failure among ``rules`` (the first that does)."""
        from proctor.triage.clusters import Explanation
        from proctor.triage.explain import Explainer

        if not rules:
            return [Explanation() for _ in rows]
        with self._lock:
            explainer = Explainer(self._store, rules)
            return [explainer.failure(row) for row in rows]

    def run_notes(self, info: RunInfo, rules: Sequence[Rule]) -> list[ClusterNote]:
        """The clusters of one run's failures (:func:`proctor.triage.notes.notes_for_run`)."""
        from proctor.triage.explain import Explainer
        from proctor.triage.notes import notes_for_run

        with self._lock:
            explainer = Explainer(self._store, rules) if rules else None
            return notes_for_run(
                self._store, info, explain=None if explainer is None else explainer.pair
            )

    # -- bugs (proctor.bugs), each under the lock

    def bug_snapshots(self) -> tuple[list[SnapshotRow], dict[str, str]]:
        """Every bug's snapshot (links included), newest update first, and the
        short id of each."""
        from proctor.bugs.shortid import short_ids
        from proctor.store.bug_tables import bug_tables

        with self._lock, bug_tables(self._store).reading() as session:
            every = session.bug_ids()
            rows = session.snapshots(ids=every) if every else []
        rows.sort(key=lambda row: (row.updated, row.id), reverse=True)
        return rows, short_ids(every, every)

    def bug(self, prefix: str) -> tuple[BugState, list[BugEvent]]:
        """The bug whose id starts with ``prefix``: its state and its events,
        parents first (``UnknownBug``, ``AmbiguousBugId`` when not one bug)."""
        from proctor.bugs.repository import BugRepository
        from proctor.store.bug_tables import bug_tables

        with self._lock:
            replica = BugRepository(bug_tables(self._store)).replica(prefix)
        bug = replica.bug_ids()[0]
        return replica.state(bug), replica.events(bug)

    def bug_evidence(
        self, links: Iterable[BugLink], *, days: int, now_ns: int
    ) -> list[LinkEvidence]:
        """Live evidence for a bug's links (:func:`proctor.bugs.evidence.evidence`)."""
        from proctor.bugs.evidence import evidence

        with self._lock:
            return evidence(self._store, links, days=days, now_ns=now_ns)


def open_readonly(url: str) -> ReadOnlyRepository:
    """The repository at ``url`` for reading; ``RepositoryNotFound`` when there is none."""
    from proctor.store.opening import open_store

    return ReadOnlyRepository(open_store(url, create=False, read_only=True))
