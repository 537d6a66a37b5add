"""The SQL store: every query of the contract, written once for both SQL backends.

SQLite and PostgreSQL differ in how they connect, lock, allocate ids, load rows
in bulk and spell a few things; :class:`SqlStore` is given exactly those as a
:class:`~proctor.store.sql.dialect.Dialect` and holds everything else. Queries
are written with ``?`` placeholders; the dialect translates them once
(:meth:`Dialect.q`). Writes go through
:func:`~proctor.store.sql.transaction.in_transaction`, which retries what the
dialect calls transient.

Every query is answered from an index or a maintained table: the latest run is
the top of ``runs``' primary key, a run's results come from ``results(run)``, a
test's history from ``results(test, run)``, the failing set and timings from
their own small tables. None of them reads a stored stream, and none of them
slows down as runs accumulate except by the size of what it returns.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from proctor.store.contract import RunWriter, Store, check_limit
from proctor.store.errors import StoreError, UnknownRun, UnknownTest
from proctor.store.failures import FailureRow, Sighting, SignatureLike, SignedFailure
from proctor.store.model import (
    GarbageReport,
    HistoryEntry,
    RunCounts,
    RunInfo,
    RunMetadata,
    SlowTest,
    StoreStats,
    TestStats,
    clears_failing,
)
from proctor.store.sql.dialect import Dialect
from proctor.store.sql.failures import SqlFailures
from proctor.store.sql.interned import Interned
from proctor.store.sql.records import RECORD_COLUMNS, attachments_by_key, build_records
from proctor.store.sql.rules import EXISTS, STATUSES, timed
from proctor.store.sql.transaction import in_transaction
from proctor.store.sql.write import WritePath, write_batch
from proctor.wire.event import NS_PER_SECOND, Status
from proctor.wire.record import Attachment, TestRecord

__all__ = ["SqlRunWriter", "SqlStore"]

T = TypeVar("T")

_RUN_COLUMNS = (
    "id, started_ns, finished_ns, interrupted, partial, source, git_commit, git_branch, "
    "git_dirty, python, platform, hostname, ci_provider, ci_job_id, ci_url, command, writer, "
    "first_ns, last_ns, n_total, n_passed, n_failed, n_skipped, n_xfail, n_uxsuccess, "
    "n_incomplete, n_exists, test_ns"
)
_STATS_COLUMNS = (
    "s.results, s.passed, s.failed, s.skipped, s.timed, s.total_ns, s.min_ns, s.max_ns, "
    "s.last_ns, s.expected_ns, s.last_run"
)
_TIMED = timed("r.")


def _writer_name() -> str:
    import socket  # only writers need it; readers start faster without

    return f"{socket.gethostname()}:{os.getpid()}"


class SqlStore(Store):
    """The contract over a DB-API connection, in the given dialect.

    Reads use the store's own connection; each run writer gets a connection of
    its own (so reads on the store never see a half-written batch, and a
    writer's transaction never blocks the store's). With ``create`` a new
    repository is made and an old one upgraded; the dialect's ``read_only``
    opens only what exists, as it is, and every write fails.
    """

    def __init__(self, dialect: Dialect, *, create: bool = True) -> None:
        self.dialect = dialect
        self.backend = dialect.name
        self.location = dialect.location
        self.interned = Interned(dialect)
        self._conn = dialect.connect()
        try:
            self.schema_version = dialect.migrate(self._conn, create)
        except BaseException:
            dialect.close(self._conn)
            raise
        self._failures = SqlFailures(dialect, self._conn, self.interned)

    def snapshot(self) -> AbstractContextManager[Any]:
        """A read transaction on the store's connection, yielding a cursor:
        one consistent view (for tables outside the contract: bugs, rules)."""
        return self.dialect.snapshot(self._conn)

    def transaction(self) -> AbstractContextManager[Any]:
        """A write transaction on the store's connection, yielding a cursor,
        tried once (for work that cannot be run again, such as a caller's
        block); driver errors are left to the caller to translate."""
        return self.dialect.transaction(self._conn)

    def write(self, work: Callable[[Any], T]) -> T:
        """``work(cursor)`` in a write transaction on the store's connection,
        retried while the dialect calls the failure transient."""
        return in_transaction(self._conn, self.dialect, work)

    # -- writing

    def begin_run(self, metadata: RunMetadata | None = None) -> RunWriter:
        metadata = metadata or RunMetadata()
        started = metadata.started_ns or time.time_ns()
        values: dict[str, object] = {
            "started_ns": started,
            "interrupted": 1,
            "partial": 1 if metadata.partial else 0,
            "source": metadata.source,
            "git_commit": metadata.git_commit,
            "git_branch": metadata.git_branch,
            "git_dirty": None if metadata.git_dirty is None else int(metadata.git_dirty),
            "python": metadata.python,
            "platform": metadata.platform,
            "hostname": metadata.hostname,
            "ci_provider": metadata.ci_provider,
            "ci_job_id": metadata.ci_job_id,
            "ci_url": metadata.ci_url,
            "command": metadata.command,
            "writer": _writer_name(),
        }
        dialect = self.dialect

        def insert(cur: Any) -> int:
            run_id = dialect.insert_run(cur, list(values), list(values.values()))
            dialect.claim_run(cur, run_id)
            if metadata.properties:
                cur.executemany(
                    dialect.q("INSERT INTO run_properties (run, key, value) VALUES (?, ?, ?)"),
                    [(run_id, key, value) for key, value in sorted(metadata.properties.items())],
                )
            return run_id

        return self._writer(insert)

    def resume_run(self, run_id: int) -> RunWriter:
        dialect = self.dialect

        def reopen(cur: Any) -> int:
            cur.execute(
                dialect.q(
                    "UPDATE runs SET finished_ns = NULL, interrupted = 1, writer = ? WHERE id = ?"
                ),
                (_writer_name(), run_id),
            )
            if cur.rowcount == 0:
                raise UnknownRun(f"there is no run {run_id} in {self.location}")
            dialect.claim_run(cur, run_id)
            return run_id

        return self._writer(reopen)

    def _writer(self, claim: Callable[[Any], int]) -> SqlRunWriter:
        """A writer on a new connection, for the run ``claim(cursor)`` makes its own."""
        conn = self.dialect.connect()
        try:
            run_id = in_transaction(conn, self.dialect, claim)
        except BaseException:
            self.dialect.close(conn)
            raise
        return SqlRunWriter(self, conn, run_id)

    def check_writable(self) -> None:
        # A real write (of a value onto itself), rolled back: SQLite finds a
        # read-only file, and a server a read-only transaction or a missing
        # privilege, only when a row is written.
        class Probe(Exception):
            pass

        def probe(cur: Any) -> None:
            cur.execute(
                "UPDATE schema_migrations SET applied_ns = applied_ns "
                "WHERE version = (SELECT max(version) FROM schema_migrations)"
            )
            raise Probe

        try:
            self.write(probe)
        except Probe:
            return

    def finish_run(self, conn: Any, run_id: int, interrupted: bool, finished_ns: int) -> RunInfo:
        """Finish the run a writer wrote on ``conn``, then close ``conn``
        (what :class:`SqlRunWriter` finishes with)."""
        try:
            return in_transaction(
                conn,
                self.dialect,
                lambda cur: self._finish_transaction(cur, run_id, interrupted, finished_ns),
            )
        finally:
            self.dialect.close(conn)

    def _finish_transaction(
        self, cur: Any, run_id: int, interrupted: bool, finished_ns: int
    ) -> RunInfo:
        q = self.dialect.q
        cur.execute(
            q("UPDATE runs SET finished_ns = ?, interrupted = ? WHERE id = ?"),
            (finished_ns, 1 if interrupted else 0, run_id),
        )
        cur.execute(q(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?"), (run_id,))
        row = cur.fetchone()
        if row is None:
            raise UnknownRun(f"run {run_id} was removed from {self.location} while running")
        info = self._run_info(row, self._properties(cur, [run_id]).get(run_id, {}))
        if clears_failing(info):
            # Complete: forget the tests it did not run, where their entry
            # is older than it. An entry from a later run (begun after
            # this one, writing at the same time) stays: it is newer news.
            # Rows are locked in test order, as every writer takes them.
            cur.execute(
                q(
                    "DELETE FROM failing WHERE test IN (SELECT test FROM failing "
                    f"WHERE run < ? ORDER BY test{self.dialect.for_update})"
                ),
                (run_id,),
            )
        return info

    # -- runs

    def _run_info(self, row: Sequence[Any], properties: Mapping[str, str]) -> RunInfo:
        metadata = RunMetadata(
            started_ns=row[1],
            git_commit=row[6],
            git_branch=row[7],
            git_dirty=None if row[8] is None else bool(row[8]),
            python=row[9],
            platform=row[10],
            hostname=row[11],
            ci_provider=row[12],
            ci_job_id=row[13],
            ci_url=row[14],
            command=row[15],
            source=row[5],
            partial=bool(row[4]),
            properties=dict(properties),
        )
        return RunInfo(
            id=row[0],
            metadata=metadata,
            counts=RunCounts(*row[19:28]),
            finished_ns=row[2],
            interrupted=bool(row[3]) or row[2] is None,
            first_ns=row[17],
            last_ns=row[18],
            writer=row[16],
        )

    def _properties(self, cur: Any, run_ids: Sequence[int]) -> dict[int, dict[str, str]]:
        found: dict[int, dict[str, str]] = {}
        if not run_ids:
            return found
        cur.execute(
            self.dialect.q(
                "SELECT run, key, value FROM run_properties WHERE run >= ? AND run <= ? "
                "ORDER BY run, key"
            ),
            (min(run_ids), max(run_ids)),
        )
        wanted = set(run_ids)
        for run_id, key, value in cur.fetchall():
            if run_id in wanted:
                found.setdefault(run_id, {})[key] = value
        return found

    def _runs_where(
        self, cur: Any, where: str, params: Sequence[object], tail: str = ""
    ) -> list[RunInfo]:
        cur.execute(
            self.dialect.q(f"SELECT {_RUN_COLUMNS} FROM runs {where} ORDER BY id DESC {tail}"),
            params,
        )
        rows = cur.fetchall()
        properties = self._properties(cur, [row[0] for row in rows])
        return [self._run_info(row, properties.get(row[0], {})) for row in rows]

    def _get_run(self, cur: Any, run_id: int) -> RunInfo:
        found = self._runs_where(cur, "WHERE id = ?", (run_id,))
        if not found:
            raise UnknownRun(f"there is no run {run_id} in {self.location}")
        return found[0]

    def run(self, run_id: int) -> RunInfo:
        with self.snapshot() as cur:
            return self._get_run(cur, run_id)

    def latest_run(self) -> RunInfo | None:
        with self.snapshot() as cur:
            found = self._runs_where(cur, "", (), "LIMIT 1")
        return found[0] if found else None

    def runs(
        self,
        *,
        branch: str | None = None,
        commit: str | None = None,
        since_ns: int | None = None,
        until_ns: int | None = None,
        limit: int | None = None,
    ) -> list[RunInfo]:
        conditions: list[str] = []
        params: list[object] = []
        if branch is not None:
            conditions.append("git_branch = ?")
            params.append(branch)
        if commit:
            # A prefix as a range, so the index on git_commit answers it.
            conditions.append("git_commit >= ? AND git_commit < ?")
            params += [commit, commit[:-1] + chr(ord(commit[-1]) + 1)]
        if since_ns is not None:
            conditions.append("started_ns >= ?")
            params.append(since_ns)
        if until_ns is not None:
            conditions.append("started_ns < ?")
            params.append(until_ns)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        tail = ""
        if check_limit(limit) is not None:
            tail = "LIMIT ?"
            params.append(limit)
        with self.snapshot() as cur:
            return self._runs_where(cur, where, params, tail)

    def records(self, run_id: int, *, attachments: bool = True) -> list[TestRecord]:
        with self.snapshot() as cur:
            self._get_run(cur, run_id)
            cur.execute(
                self.dialect.q(
                    f"SELECT r.seq, {RECORD_COLUMNS} FROM results r "
                    "JOIN tests t ON t.id = r.test WHERE r.run = ? ORDER BY r.seq"
                ),
                (run_id,),
            )
            rows = cur.fetchall()
            files: dict[Any, tuple[Attachment, ...]] = {}
            if attachments:
                cur.execute(
                    self.dialect.q(
                        "SELECT a.seq, a.name, a.mime, b.codec, b.data FROM attachments a "
                        "JOIN blobs b ON b.id = a.blob WHERE a.run = ? ORDER BY a.seq, a.ordinal"
                    ),
                    (run_id,),
                )
                files = attachments_by_key(cur.fetchall())
            return build_records(self.interned, cur, rows, files)

    # The failing set is small and the tests table is not: these read the
    # failing rows and sort in Python, where a planner would rather walk the
    # whole index of test ids to return them sorted.

    def failing_ids(self) -> list[str]:
        with self.snapshot() as cur:
            cur.execute("SELECT (SELECT t.test_id FROM tests t WHERE t.id = f.test) FROM failing f")
            return sorted(row[0] for row in cur.fetchall())

    def failing_records(self) -> list[TestRecord]:
        with self.snapshot() as cur:
            cur.execute(
                f"SELECT r.run, r.seq, {RECORD_COLUMNS} FROM failing f "
                "JOIN results r ON r.run = f.run AND r.seq = f.seq JOIN tests t ON t.id = f.test"
            )
            found = sorted(cur.fetchall(), key=lambda row: row[2])
            # Attachments run by run, through the primary key (run, seq): one
            # join over the failing set lets planners scan every attachment.
            by_run: dict[int, list[int]] = {}
            for row in found:
                by_run.setdefault(row[0], []).append(row[1])
            files: dict[Any, tuple[Attachment, ...]] = {}
            for run_id, positions in sorted(by_run.items()):
                rows = self.dialect.fetch_in(
                    cur,
                    "SELECT a.seq, a.name, a.mime, b.codec, b.data, a.ordinal "
                    "FROM attachments a JOIN blobs b ON b.id = a.blob "
                    "WHERE a.run = ? AND a.seq IN ({})",
                    sorted(positions),
                    (run_id,),
                )
                rows.sort(key=lambda row: (row[0], row[5]))
                for seq, attached in attachments_by_key(row[:5] for row in rows).items():
                    files[run_id, seq] = attached
            return build_records(
                self.interned, cur, [((row[0], row[1]), *row[2:]) for row in found], files
            )

    def durations(self, test_ids: Iterable[str] | None = None) -> dict[str, float]:
        base = (
            "SELECT t.test_id, s.expected_ns FROM test_stats s JOIN tests t ON t.id = s.test "
            "WHERE s.expected_ns IS NOT NULL"
        )
        with self.snapshot() as cur:
            if test_ids is None:
                cur.execute(base)
                rows = cur.fetchall()
            else:
                rows = self.dialect.fetch_in(
                    cur, base + f" AND t.{self.dialect.test_key} IN ({{}})", self._keys(test_ids)
                )
        return {test_id: expected / NS_PER_SECOND for test_id, expected in rows}

    def test_stats(self, test_ids: Iterable[str]) -> dict[str, TestStats]:
        with self.snapshot() as cur:
            rows = self.dialect.fetch_in(
                cur,
                f"SELECT t.test_id, {_STATS_COLUMNS} FROM test_stats s "
                f"JOIN tests t ON t.id = s.test WHERE t.{self.dialect.test_key} IN ({{}})",
                self._keys(test_ids),
            )
        return {row[0]: TestStats(*row) for row in rows}

    def slowest(
        self, *, limit: int | None = 10, run_id: int | None = None, by_mean: bool = False
    ) -> list[SlowTest]:
        limit = check_limit(limit)
        tail = "" if limit is None else f" LIMIT {int(limit)}"
        with self.snapshot() as cur:
            if by_mean:
                cur.execute(
                    f"SELECT t.test_id, {_STATS_COLUMNS} FROM test_stats s "
                    "JOIN tests t ON t.id = s.test WHERE s.timed > 0 "
                    f"ORDER BY CAST(s.total_ns AS DOUBLE PRECISION) / s.timed DESC, t.test_id{tail}"
                )
                return [
                    SlowTest(row[0], row[6] / row[5] / NS_PER_SECOND, TestStats(*row))
                    for row in cur.fetchall()
                ]
            if run_id is None:
                cur.execute("SELECT max(id) FROM runs")
                run_id = cur.fetchone()[0]
                if run_id is None:
                    return []
            else:
                self._get_run(cur, run_id)
            # Rank inside the run first, then join names and statistics for
            # just the rows kept.
            cur.execute(
                self.dialect.q(
                    f"SELECT t.test_id, r.elapsed_ns, {_STATS_COLUMNS} FROM "
                    "(SELECT r.seq, r.test, r.elapsed_ns FROM results r "
                    f"WHERE r.run = ? AND {_TIMED} ORDER BY r.elapsed_ns DESC, r.seq{tail}) r "
                    "JOIN tests t ON t.id = r.test LEFT JOIN test_stats s ON s.test = r.test "
                    "ORDER BY r.elapsed_ns DESC, r.seq"
                ),
                (run_id,),
            )
            return [
                SlowTest(
                    row[0],
                    row[1] / NS_PER_SECOND,
                    TestStats(row[0], *row[2:]) if row[2] is not None else TestStats(row[0]),
                )
                for row in cur.fetchall()
            ]

    def test_history(self, test_id: str, *, limit: int | None = None) -> list[HistoryEntry]:
        limit = check_limit(limit)
        tail = "" if limit is None else f" LIMIT {int(limit)}"
        with self.snapshot() as cur:
            cur.execute(
                self.dialect.q(f"SELECT id FROM tests WHERE {self.dialect.test_key} = ?"),
                (self.dialect.key(test_id),),
            )
            row = cur.fetchone()
            if row is None:
                raise UnknownTest(f"no results for {test_id!r} in {self.location}")
            cur.execute(
                self.dialect.q(
                    "SELECT r.run, u.started_ns, u.git_commit, u.git_branch, r.status, "
                    f"r.start_ns, r.elapsed_ns, r.route FROM {self.dialect.by_test} "
                    f"WHERE r.status <> {EXISTS} ORDER BY u.id DESC, r.seq DESC{tail}"
                ),
                (row[0],),
            )
            return [
                HistoryEntry(
                    run,
                    started,
                    commit,
                    branch,
                    STATUSES[status],
                    start,
                    # A test that never finished has no duration (as model.is_timed).
                    elapsed / NS_PER_SECOND
                    if elapsed is not None and STATUSES[status].is_final
                    else None,
                    route,
                )
                for run, started, commit, branch, status, start, elapsed, route in cur.fetchall()
            ]

    def find_tests(self, fragment: str, *, limit: int = 10) -> list[str]:
        with self.snapshot() as cur:
            cur.execute(
                self.dialect.q(
                    f"SELECT test_id FROM tests WHERE {self.dialect.contains('test_id')} "
                    f"ORDER BY test_id LIMIT {int(check_limit(limit) or 0)}"
                ),
                (fragment,),
            )
            return [row[0] for row in cur.fetchall()]

    def _keys(self, texts: Iterable[str]) -> list[Any]:
        """The distinct keys of ``texts``, sorted."""
        return sorted({self.dialect.key(text) for text in texts})

    # -- housekeeping

    def stats(self) -> StoreStats:
        from proctor.store.sql import housekeeping  # off the everyday path

        return housekeeping.repository_stats(self.dialect, self._conn)

    def remove_runs(self, run_ids: Iterable[int]) -> list[int]:
        from proctor.store.sql import housekeeping

        return housekeeping.remove_runs(self.dialect, self._conn, run_ids)

    def collect_garbage(self, *, vacuum: bool = False) -> GarbageReport:
        from proctor.store.sql import housekeeping

        before = self.dialect.size_bytes(self._conn)
        report = housekeeping.collect_garbage(self.dialect, self._conn)
        try:
            reusable = self.dialect.reclaim_space(self._conn, vacuum)
        except StoreError:
            raise
        except Exception as error:
            raise self.dialect.translate(error) from error
        after = self.dialect.size_bytes(self._conn)
        return report._replace(
            freed_bytes=max(before - after, 0), reusable_bytes=reusable, size_bytes=after
        )

    def seed_durations(self, durations: Mapping[str, float]) -> int:
        from proctor.store.sql import housekeeping

        return housekeeping.seed_durations(self.dialect, self.interned, self._conn, durations)

    def close(self) -> None:
        self.dialect.close(self._conn)

    # -- failure signatures (sql/failures.py)

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

    def cluster_ids(self, prefix: str, *, algorithm: str, limit: int | None = None) -> list[str]:
        return self._failures.cluster_ids(prefix, algorithm=algorithm, limit=limit)

    def signing_progress(self, algorithm: str) -> tuple[int, int]:
        return self._failures.signing_progress(algorithm)

    def set_signing_progress(self, algorithm: str, position: tuple[int, int]) -> None:
        self._failures.set_signing_progress(algorithm, position)

    def unsigned_failures(
        self, *, algorithm: str, after: tuple[int, int] = (0, -1), limit: int = 1000
    ) -> list[tuple[int, int, TestRecord]]:
        return self._failures.unsigned_failures(algorithm=algorithm, after=after, limit=limit)

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


class SqlRunWriter(RunWriter):
    """A run writer on its own connection (so reads on the store never see a
    half-written batch, and a writer's transaction never blocks the store's)."""

    def __init__(self, store: SqlStore, conn: Any, run_id: int) -> None:
        super().__init__(run_id)
        self._store = store
        self._conn = conn
        self._path = WritePath(store.dialect, store.interned, store.location)

    def _write(self, records: list[TestRecord]) -> None:
        write_batch(self._path, self._conn, self.run_id, records, self._store.signer)

    def _finish(self, interrupted: bool, finished_ns: int) -> RunInfo:
        return self._store.finish_run(self._conn, self.run_id, interrupted, finished_ns)
