"""An in-memory store: the fake every other layer's tests use.

It follows the whole contract (the same contract tests run on it as on SQLite
and PostgreSQL), so a runner or triage test can write runs, ask for durations
and the failing set, and trust that the real backends answer the same. It
keeps records as they were given, so it is also the reference the SQL backends
are checked against. Nothing is persisted; a crash loses everything, which is
the one promise it does not keep.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from proctor.store.contract import RunWriter, Store, check_limit
from proctor.store.errors import UnknownRun, UnknownTest
from proctor.store.failures import FailureRow, Sighting, SignatureLike, SignedFailure
from proctor.store.memfailures import MemoryFailures
from proctor.store.model import (
    EWMA_WEIGHT,
    GarbageReport,
    HistoryEntry,
    RunCounts,
    RunInfo,
    RunMetadata,
    SlowTest,
    StoreStats,
    TestStats,
    clears_failing,
    failing_change,
    is_timed,
)
from proctor.wire.event import NS_PER_SECOND, Status
from proctor.wire.record import TestRecord

__all__ = ["MemoryStore"]

SCHEMA_VERSION = 0  # nothing to migrate


@dataclass
class StoredRun:
    """A run as the in-memory store keeps it: its metadata, counts and records."""

    metadata: RunMetadata
    writer: str
    counts: RunCounts = field(default_factory=RunCounts)
    finished_ns: int | None = None
    interrupted: bool = True
    first_ns: int | None = None
    last_ns: int | None = None
    records: list[TestRecord] = field(default_factory=list)

    def info(self, run_id: int) -> RunInfo:
        return RunInfo(
            id=run_id,
            metadata=self.metadata,
            counts=self.counts,
            finished_ns=self.finished_ns,
            interrupted=self.interrupted,
            first_ns=self.first_ns,
            last_ns=self.last_ns,
            writer=self.writer,
        )


@dataclass
class _Stats:
    results: int = 0
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    timed: int = 0
    total_ns: int = 0
    min_ns: int | None = None
    max_ns: int | None = None
    last_ns: int | None = None
    expected_ns: float | None = None
    last_run: int | None = None

    def freeze(self, test_id: str) -> TestStats:
        return TestStats(
            test_id,
            self.results,
            self.passed,
            self.failed,
            self.skipped,
            self.timed,
            self.total_ns,
            self.min_ns,
            self.max_ns,
            self.last_ns,
            self.expected_ns,
            self.last_run,
        )


class MemoryStore(Store):
    """A store held in dictionaries; see the module docstring."""

    backend = "memory"

    def __init__(self, location: str = "memory:") -> None:
        self.location = location
        self._runs: dict[int, StoredRun] = {}
        self._next_run = 1
        self._failing: dict[str, tuple[int, int]] = {}  # test id -> (run, index)
        self._stats: dict[str, _Stats] = {}
        self._tests: set[str] = set()
        self._failures = MemoryFailures(self._runs)

    # -- writing

    def begin_run(self, metadata: RunMetadata | None = None) -> RunWriter:
        metadata = metadata or RunMetadata()
        if metadata.started_ns is None:
            metadata = metadata._replace(started_ns=time.time_ns())
        run_id = self._next_run
        self._next_run += 1
        self._runs[run_id] = StoredRun(metadata, f"{socket.gethostname()}:{os.getpid()}")
        return _MemoryWriter(self, run_id)

    def resume_run(self, run_id: int) -> RunWriter:
        run = self._get(run_id)
        run.finished_ns = None
        run.interrupted = True
        return _MemoryWriter(self, run_id)

    def store_batch(self, run_id: int, records: list[TestRecord]) -> None:
        """Add a writer's batch to its run (what :class:`_MemoryWriter` writes with)."""
        run = self._runs.get(run_id)
        if run is None:
            raise UnknownRun(
                f"run {run_id} was removed from {self.location} while it was being written; "
                "its remaining results were not stored"
            )
        run.counts = run.counts.plus(RunCounts.of(records))
        self._failures.sign_records(self.signer, run_id, len(run.records), records)
        for record in records:
            index = len(run.records)
            run.records.append(record)
            self._tests.add(record.test_id)
            for moment in (record.start, record.stop):
                if moment is not None:
                    if run.first_ns is None or moment < run.first_ns:
                        run.first_ns = moment
                    if run.last_ns is None or moment > run.last_ns:
                        run.last_ns = moment
            change = failing_change(record.status)
            if change is None:
                continue
            if self._count(record, run_id) != run_id:
                continue  # a later run stored a result of this test: its entry stands
            if change:
                self._failing[record.test_id] = (run_id, index)
            else:
                self._failing.pop(record.test_id, None)

    def _count(self, record: TestRecord, run_id: int) -> int:
        """Add ``record`` to its test's statistics; return the newest run with
        a result of the test."""
        stats = self._stats.setdefault(record.test_id, _Stats())
        stats.results += 1
        stats.last_run = run_id if stats.last_run is None else max(stats.last_run, run_id)
        if record.status is Status.SUCCESS:
            stats.passed += 1
        elif record.status is Status.SKIP:
            stats.skipped += 1
        elif failing_change(record.status):
            stats.failed += 1
        if is_timed(record):
            elapsed = record.stop - record.start  # type: ignore[operator]
            stats.timed += 1
            stats.total_ns += elapsed
            stats.min_ns = elapsed if stats.min_ns is None else min(stats.min_ns, elapsed)
            stats.max_ns = elapsed if stats.max_ns is None else max(stats.max_ns, elapsed)
            stats.last_ns = elapsed
            if stats.expected_ns is None:
                stats.expected_ns = float(elapsed)
            else:
                stats.expected_ns += EWMA_WEIGHT * (elapsed - stats.expected_ns)
        return stats.last_run

    def finish_run(self, run_id: int, interrupted: bool, finished_ns: int) -> RunInfo:
        """Finish a writer's run (what :class:`_MemoryWriter` finishes with)."""
        run = self._get(run_id)
        run.finished_ns = finished_ns
        run.interrupted = interrupted
        info = run.info(run_id)
        if clears_failing(info):
            for test_id, (failing_run, _) in list(self._failing.items()):
                if failing_run < run_id:  # a later run's entry is newer news
                    del self._failing[test_id]
        return info

    # -- runs

    def _get(self, run_id: int) -> StoredRun:
        run = self._runs.get(run_id)
        if run is None:
            raise UnknownRun(f"there is no run {run_id} in {self.location}")
        return run

    def run(self, run_id: int) -> RunInfo:
        return self._get(run_id).info(run_id)

    def latest_run(self) -> RunInfo | None:
        if not self._runs:
            return None
        run_id = max(self._runs)
        return self._runs[run_id].info(run_id)

    def runs(
        self,
        *,
        branch: str | None = None,
        commit: str | None = None,
        since_ns: int | None = None,
        until_ns: int | None = None,
        limit: int | None = None,
    ) -> list[RunInfo]:
        found: list[RunInfo] = []
        if check_limit(limit) == 0:
            return found
        for run_id in sorted(self._runs, reverse=True):
            meta = self._runs[run_id].metadata
            started = meta.started_ns or 0
            if branch is not None and meta.git_branch != branch:
                continue
            if commit is not None and not (meta.git_commit or "").startswith(commit):
                continue
            if since_ns is not None and started < since_ns:
                continue
            if until_ns is not None and started >= until_ns:
                continue
            found.append(self._runs[run_id].info(run_id))
            if limit is not None and len(found) >= limit:
                break
        return found

    def records(self, run_id: int, *, attachments: bool = True) -> list[TestRecord]:
        records = self._get(run_id).records
        if attachments:
            return list(records)
        return [record._replace(attachments=()) for record in records]

    # -- tests

    def failing_ids(self) -> list[str]:
        return sorted(self._failing)

    def failing_records(self) -> list[TestRecord]:
        return [
            self._runs[run_id].records[index]
            for _, (run_id, index) in sorted(self._failing.items())
        ]

    def durations(self, test_ids: Iterable[str] | None = None) -> dict[str, float]:
        wanted = self._stats if test_ids is None else set(test_ids)
        return {
            test_id: stats.expected_ns / NS_PER_SECOND
            for test_id in wanted
            if (stats := self._stats.get(test_id)) is not None and stats.expected_ns is not None
        }

    def test_stats(self, test_ids: Iterable[str]) -> dict[str, TestStats]:
        return {
            test_id: stats.freeze(test_id)
            for test_id in test_ids
            if (stats := self._stats.get(test_id)) is not None
        }

    def _frozen(self, test_id: str) -> TestStats:
        stats = self._stats.get(test_id)
        return stats.freeze(test_id) if stats is not None else TestStats(test_id)

    def slowest(
        self, *, limit: int | None = 10, run_id: int | None = None, by_mean: bool = False
    ) -> list[SlowTest]:
        if by_mean:
            ranked = [
                SlowTest(
                    test_id, stats.total_ns / stats.timed / NS_PER_SECOND, stats.freeze(test_id)
                )
                for test_id, stats in self._stats.items()
                if stats.timed
            ]
        else:
            if run_id is None:
                latest = self.latest_run()
                if latest is None:
                    return []
                run_id = latest.id
            ranked = [
                SlowTest(record.test_id, record.duration or 0.0, self._frozen(record.test_id))
                for record in self._get(run_id).records
                if is_timed(record)
            ]
        ranked.sort(key=lambda slow: (-slow.duration, slow.test_id))
        return ranked if check_limit(limit) is None else ranked[:limit]

    def test_history(self, test_id: str, *, limit: int | None = None) -> list[HistoryEntry]:
        if test_id not in self._tests:
            raise UnknownTest(f"no results for {test_id!r} in {self.location}")
        entries: list[HistoryEntry] = []
        if check_limit(limit) == 0:
            return entries
        for run_id in sorted(self._runs, reverse=True):
            run = self._runs[run_id]
            for record in reversed(run.records):
                if record.test_id != test_id or record.status is Status.EXISTS:
                    continue
                entries.append(
                    HistoryEntry(
                        run_id,
                        run.metadata.started_ns or 0,
                        run.metadata.git_commit,
                        run.metadata.git_branch,
                        record.status,
                        record.start,
                        record.duration,
                        record.route_code,
                    )
                )
                if limit is not None and len(entries) >= limit:
                    return entries
        return entries

    def find_tests(self, fragment: str, *, limit: int = 10) -> list[str]:
        found = sorted(test_id for test_id in self._tests if fragment in test_id)
        return found[: check_limit(limit)]

    # -- housekeeping

    def stats(self) -> StoreStats:
        contents: set[bytes] = set()
        attachments = raw = 0
        for run in self._runs.values():
            for record in run.records:
                for attachment in record.attachments:
                    attachments += 1
                    raw += len(attachment.content)
                    contents.add(attachment.content)
        starts = [run.metadata.started_ns or 0 for run in self._runs.values()]
        return StoreStats(
            location=self.location,
            backend=self.backend,
            schema_version=SCHEMA_VERSION,
            runs=len(self._runs),
            results=sum(run.counts.total for run in self._runs.values()),
            tests=len(self._tests),
            failing=len(self._failing),
            attachments=attachments,
            blobs=len(contents),
            blob_bytes=sum(len(content) for content in contents),
            raw_attachment_bytes=raw,
            size_bytes=0,
            first_started_ns=min(starts, default=None),
            last_started_ns=max(starts, default=None),
            interrupted_runs=sum(run.interrupted for run in self._runs.values()),
        )

    def remove_runs(self, run_ids: Iterable[int]) -> list[int]:
        removed = sorted({run_id for run_id in run_ids if run_id in self._runs})
        for run_id in removed:
            run = self._runs.pop(run_id)
            for record in run.records:
                self._uncount(record)
        for test_id in sorted(self._stats.keys() | self._failing.keys()):
            stats = self._stats.get(test_id)
            failing = self._failing.get(test_id)
            newest = stats.last_run if stats is not None else None
            if newest not in removed and (failing is None or failing[0] not in removed):
                continue
            latest = self._latest_result(test_id)
            if stats is not None:
                stats.last_run = None if latest is None else latest[0]
            if latest is not None and failing_change(self._record(latest).status):
                self._failing[test_id] = latest
            else:
                self._failing.pop(test_id, None)
        return removed

    def _record(self, where: tuple[int, int]) -> TestRecord:
        return self._runs[where[0]].records[where[1]]

    def _latest_result(self, test_id: str) -> tuple[int, int] | None:
        for run_id in sorted(self._runs, reverse=True):
            records = self._runs[run_id].records
            for index in range(len(records) - 1, -1, -1):
                record = records[index]
                if record.test_id == test_id and record.status is not Status.EXISTS:
                    return run_id, index
        return None

    def _uncount(self, record: TestRecord) -> None:
        stats = self._stats.get(record.test_id)
        if stats is None or record.status is Status.EXISTS:
            return
        stats.results -= 1
        if record.status is Status.SUCCESS:
            stats.passed -= 1
        elif record.status is Status.SKIP:
            stats.skipped -= 1
        elif failing_change(record.status):
            stats.failed -= 1
        if is_timed(record):
            stats.timed -= 1
            stats.total_ns -= record.stop - record.start  # type: ignore[operator]
        if stats.results <= 0:
            del self._stats[record.test_id]

    def collect_garbage(self, *, vacuum: bool = False) -> GarbageReport:
        return GarbageReport()  # contents live inside the records they belong to

    def seed_durations(self, durations: Mapping[str, float]) -> int:
        seeded = 0
        for test_id, seconds in durations.items():
            stats = self._stats.get(test_id)
            if stats is not None and stats.expected_ns is not None:
                continue
            stats = self._stats.setdefault(test_id, _Stats())
            stats.expected_ns = seconds * NS_PER_SECOND
            self._tests.add(test_id)
            seeded += 1
        return seeded

    def close(self) -> None:
        pass

    # -- failure signatures (memfailures.py)

    def failures(self, run_ids: Iterable[int], *, algorithm: str) -> list[FailureRow]:
        return self._failures.failures(run_ids, algorithm=algorithm)

    def sightings(
        self, digests: Iterable[str], *, algorithm: str, before_ns: int, count_runs: int = 0
    ) -> dict[str, Sighting]:
        return self._failures.sightings(
            digests, algorithm=algorithm, before_ns=before_ns, count_runs=count_runs
        )

    def cluster_failures(
        self, cluster: str, *, algorithm: str, limit: int | None = None
    ) -> list[FailureRow]:
        return self._failures.cluster_failures(cluster, algorithm=algorithm, limit=limit)

    def unsigned_failures(
        self, *, algorithm: str, after: tuple[int, int] = (0, -1), limit: int = 1000
    ) -> list[tuple[int, int, TestRecord]]:
        return self._failures.unsigned_failures(algorithm=algorithm, after=after, limit=limit)

    def cluster_ids(self, prefix: str, *, algorithm: str, limit: int | None = None) -> list[str]:
        return self._failures.cluster_ids(prefix, algorithm=algorithm, limit=limit)

    def signing_progress(self, algorithm: str) -> tuple[int, int]:
        return self._failures.signing_progress(algorithm)

    def set_signing_progress(self, algorithm: str, position: tuple[int, int]) -> None:
        self._failures.set_signing_progress(algorithm, position)

    def add_signatures(
        self, signed: Sequence[tuple[int, int, SignatureLike | SignedFailure]]
    ) -> int:
        return self._failures.add_signatures(signed)

    def set_clusters(self, algorithm: str, clusters: Mapping[str, str]) -> None:
        self._failures.set_clusters(algorithm, clusters)

    def result(self, run_id: int, seq: int) -> TestRecord | None:
        return self._failures.result(run_id, seq)

    def outcomes(self, run_ids: Iterable[int]) -> list[tuple[int, str, Status]]:
        return self._failures.outcomes(run_ids)


class _MemoryWriter(RunWriter):
    def __init__(self, store: MemoryStore, run_id: int) -> None:
        super().__init__(run_id)
        self._store = store

    def _write(self, records: list[TestRecord]) -> None:
        self._store.store_batch(self.run_id, records)

    def _finish(self, interrupted: bool, finished_ns: int) -> RunInfo:
        return self._store.finish_run(self.run_id, interrupted, finished_ns)
