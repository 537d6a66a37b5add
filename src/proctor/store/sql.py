"""The SQL store: every query of the contract, written once for both SQL backends.

SQLite and PostgreSQL differ in how they connect, lock, allocate ids, load rows
in bulk and spell a few things; :class:`SqlStore` leaves exactly those to the
backend as hooks (the ``_`` methods marked abstract) and holds everything else.
Queries are written with ``?`` placeholders; a backend whose driver uses
another style translates them once (:meth:`SqlStore._q`).

Every query is answered from an index or a maintained table: the latest run is
the top of ``runs``' primary key, a run's results come from ``results(run)``, a
test's history from ``results(test, run)``, the failing set and timings from
their own small tables. None of them reads a stored stream, and none of them
slows down as runs accumulate except by the size of what it returns.
"""

from __future__ import annotations

import abc
import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from proctor.store.blobs import decode_blob, digest
from proctor.store.contract import RunWriter, Store, check_limit
from proctor.store.errors import StoreError, UnknownRun, UnknownTest
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
from proctor.store.sqlfailures import SqlFailures
from proctor.store.sqlrules import EXISTS, STATUSES, timed
from proctor.store.sqlwrite import (
    STATS_COLUMNS,
    STATS_CONFLICT,
    STATS_SELECT,
    STATS_WHERE,
    write_batch,
)
from proctor.wire.event import NS_PER_SECOND
from proctor.wire.record import Attachment, TestRecord

__all__ = ["SqlRunWriter", "SqlStore"]

_RUN_COLUMNS = (
    "id, started_ns, finished_ns, interrupted, partial, source, git_commit, git_branch, "
    "git_dirty, python, platform, hostname, ci_provider, ci_job_id, ci_url, command, writer, "
    "first_ns, last_ns, n_total, n_passed, n_failed, n_skipped, n_xfail, n_uxsuccess, "
    "n_incomplete, n_exists, test_ns"
)
_RECORD_COLUMNS = "t.test_id, r.status, r.start_ns, r.elapsed_ns, r.route, r.tagset, r.runnable"
_STATS_COLUMNS = (
    "s.results, s.passed, s.failed, s.skipped, s.timed, s.total_ns, s.min_ns, s.max_ns, "
    "s.last_ns, s.expected_ns, s.last_run"
)
_TIMED = timed("r.")


def _writer_name() -> str:
    import socket  # only writers need it; readers start faster without

    return f"{socket.gethostname()}:{os.getpid()}"


class SqlStore(SqlFailures, Store):
    """Shared implementation of the contract over a DB-API connection."""

    schema_version = 0
    _for_share = ""
    """Appended to the blob look-up: PostgreSQL locks the rows it links to."""
    _for_update = ""
    """Appended to the look-up of a run's row by its writer: PostgreSQL locks it."""
    _by_test = "runs u JOIN results r ON r.run = u.id AND r.test = ?"
    """A test's results, run by run from the newest, through ``results(run, test)``."""
    _hashed_keys = False
    """Whether test ids and tag sets are found by the SHA-256 of their text (in
    a ``digest`` column) rather than by the text: PostgreSQL's index entries
    cannot hold a long one."""

    def __init__(self, location: str) -> None:
        self.location = location
        self._test_ids: dict[str, int] = {}
        self._tagsets: dict[frozenset[str], int] = {}
        self._tagsets_by_id: dict[int, frozenset[str]] = {}
        self._conn = self._connect()

    # -- hooks for a backend

    @abc.abstractmethod
    def _connect(self) -> Any:
        """A new connection, in autocommit mode (transactions are explicit)."""

    @abc.abstractmethod
    def _transaction(self, conn: Any) -> AbstractContextManager[Any]:
        """A write transaction on ``conn``, yielding a cursor; rolled back on error."""

    @abc.abstractmethod
    def _snapshot(self) -> AbstractContextManager[Any]:
        """A read transaction on the reading connection: one consistent view."""

    @abc.abstractmethod
    def _insert_run(self, cur: Any, columns: Sequence[str], values: Sequence[object]) -> int:
        """Insert a ``runs`` row; return its new id."""

    @abc.abstractmethod
    def _size_bytes(self) -> int:
        """Bytes the repository takes on disk."""

    @abc.abstractmethod
    def _contains(self, column: str) -> str:
        """A case-sensitive "column contains ?" condition."""

    def _q(self, sql: str) -> str:
        """``sql`` in the driver's placeholder style."""
        return sql

    def _key(self, text: str) -> Any:
        """What a test id or tag set is found by (see :attr:`_hashed_keys`)."""
        if self._hashed_keys:
            return digest(text.encode("utf-8"))
        return text

    @property
    def _test_key(self) -> str:
        """The column of ``tests`` that :meth:`_key` values are found in."""
        return "digest" if self._hashed_keys else "test_id"

    def _bulk_insert(
        self, cur: Any, table: str, columns: Sequence[str], rows: list[tuple[object, ...]]
    ) -> None:
        marks = ", ".join("?" * len(columns))
        cur.executemany(
            self._q(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"), rows
        )

    def _update_stats(self, cur: Any, run_id: int, first: int, last: int, rounds: int) -> None:
        """Add the results with ids ``first..last`` of the run to ``test_stats``.

        ``rounds`` is the most results one test has among them; SQLite applies
        the upsert row by row in result order, so it needs no rounds.
        """
        cur.execute(
            self._q(
                f"INSERT INTO test_stats ({STATS_COLUMNS}) {STATS_SELECT} FROM results "
                f"WHERE run = ? AND seq >= ? AND seq <= ? AND {STATS_WHERE} ORDER BY seq"
                + STATS_CONFLICT
            ),
            (run_id, first, last),
        )

    def _keys(self, texts: Iterable[str]) -> list[Any]:
        """The distinct keys of ``texts``, sorted."""
        return sorted({self._key(text) for text in texts})

    def _fetch_in(
        self, cur: Any, sql: str, values: Sequence[object], params: Sequence[object] = ()
    ) -> list[Any]:
        """Rows of ``sql`` (holding ``IN ({})`` after any other ``params``) for
        every value, in chunks."""
        rows: list[Any] = []
        for start in range(0, len(values), 500):
            chunk = values[start : start + 500]
            cur.execute(self._q(sql.format(", ".join("?" * len(chunk)))), [*params, *chunk])
            rows.extend(cur.fetchall())
        return rows

    def _retryable(self, error: Exception) -> bool:
        """Whether a failed write transaction may simply be tried again."""
        return False

    def _translate(self, error: Exception) -> Exception:
        """A driver error as the StoreError to show (or the error itself)."""
        return error

    def _lock_blobs(self, cur: Any) -> None:
        """Keep writers from linking to blobs while garbage is collected."""

    def _reclaim_space(self, vacuum: bool) -> int:
        """Give freed space back to the disk where the backend can (``vacuum``:
        the thorough way); return the bytes still free inside the files."""
        return 0

    def _claim_run(self, cur: Any, run_id: int) -> None:
        """Mark the writer's connection as writing ``run_id`` until it closes
        (PostgreSQL: a lock any host sees in :meth:`writers_alive`)."""

    def _close_connection(self, conn: Any) -> None:
        conn.close()

    # -- caches (updated only after a commit; see sqlwrite)

    def _remember(self, tests: dict[str, int], tagsets: dict[frozenset[str], int]) -> None:
        self._test_ids.update(tests)
        self._tagsets.update(tagsets)
        for tags, tagset_id in tagsets.items():
            self._tagsets_by_id[tagset_id] = tags

    def _tags(self, cur: Any, ids: Iterable[int | None]) -> dict[int, frozenset[str]]:
        wanted = {tagset_id for tagset_id in ids if tagset_id is not None}
        missing = sorted(wanted - self._tagsets_by_id.keys())
        if missing:
            for tagset_id, text in self._fetch_in(
                cur, "SELECT id, tags FROM tagsets WHERE id IN ({})", missing
            ):
                tags = frozenset(json.loads(text))
                self._tagsets_by_id[tagset_id] = tags
                self._tagsets[tags] = tagset_id
        return self._tagsets_by_id

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
        conn = self._connect()
        try:
            with self._transaction(conn) as cur:
                run_id = self._insert_run(cur, list(values), list(values.values()))
                self._claim_run(cur, run_id)
                if metadata.properties:
                    cur.executemany(
                        self._q("INSERT INTO run_properties (run, key, value) VALUES (?, ?, ?)"),
                        [
                            (run_id, key, value)
                            for key, value in sorted(metadata.properties.items())
                        ],
                    )
        except Exception as error:
            self._close_connection(conn)
            raise self._translate(error) from error
        return SqlRunWriter(self, conn, run_id)

    def check_writable(self) -> None:
        # A real write (of a value onto itself), rolled back: SQLite finds a
        # read-only file, and a server a read-only transaction or a missing
        # privilege, only when a row is written.
        class Probe(Exception):
            pass

        try:
            with self._transaction(self._conn) as cur:
                cur.execute(
                    "UPDATE schema_migrations SET applied_ns = applied_ns "
                    "WHERE version = (SELECT max(version) FROM schema_migrations)"
                )
                raise Probe
        except Probe:
            return
        except StoreError:
            raise
        except Exception as error:
            raise self._translate(error) from error

    def resume_run(self, run_id: int) -> RunWriter:
        conn = self._connect()
        try:
            with self._transaction(conn) as cur:
                cur.execute(
                    self._q(
                        "UPDATE runs SET finished_ns = NULL, interrupted = 1, writer = ? "
                        "WHERE id = ?"
                    ),
                    (_writer_name(), run_id),
                )
                if cur.rowcount == 0:
                    raise UnknownRun(f"there is no run {run_id} in {self.location}")
                self._claim_run(cur, run_id)
        except Exception as error:
            self._close_connection(conn)
            raise self._translate(error) from error
        return SqlRunWriter(self, conn, run_id)

    def _finish_run(self, conn: Any, run_id: int, interrupted: bool, finished_ns: int) -> RunInfo:
        try:
            attempt = 0
            while True:
                attempt += 1
                try:
                    return self._finish_transaction(conn, run_id, interrupted, finished_ns)
                except StoreError:
                    raise
                except Exception as error:
                    if attempt < 5 and self._retryable(error):
                        continue
                    raise self._translate(error) from error
        finally:
            self._close_connection(conn)

    def _finish_transaction(
        self, conn: Any, run_id: int, interrupted: bool, finished_ns: int
    ) -> RunInfo:
        with self._transaction(conn) as cur:
            cur.execute(
                self._q("UPDATE runs SET finished_ns = ?, interrupted = ? WHERE id = ?"),
                (finished_ns, 1 if interrupted else 0, run_id),
            )
            cur.execute(self._q(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?"), (run_id,))
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
                    self._q(
                        "DELETE FROM failing WHERE test IN (SELECT test FROM failing "
                        f"WHERE run < ? ORDER BY test{self._for_update})"
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
            self._q(
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
            self._q(f"SELECT {_RUN_COLUMNS} FROM runs {where} ORDER BY id DESC {tail}"), params
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
        with self._snapshot() as cur:
            return self._get_run(cur, run_id)

    def latest_run(self) -> RunInfo | None:
        with self._snapshot() as cur:
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
        with self._snapshot() as cur:
            return self._runs_where(cur, where, params, tail)

    def records(self, run_id: int, *, attachments: bool = True) -> list[TestRecord]:
        with self._snapshot() as cur:
            self._get_run(cur, run_id)
            cur.execute(
                self._q(
                    f"SELECT r.seq, {_RECORD_COLUMNS} FROM results r "
                    "JOIN tests t ON t.id = r.test WHERE r.run = ? ORDER BY r.seq"
                ),
                (run_id,),
            )
            rows = cur.fetchall()
            files: dict[Any, tuple[Attachment, ...]] = {}
            if attachments:
                cur.execute(
                    self._q(
                        "SELECT a.seq, a.name, a.mime, b.codec, b.data FROM attachments a "
                        "JOIN blobs b ON b.id = a.blob WHERE a.run = ? ORDER BY a.seq, a.ordinal"
                    ),
                    (run_id,),
                )
                files = _attachments(cur.fetchall())
            return self._records(cur, rows, files)

    def _records(
        self, cur: Any, rows: list[Any], files: dict[Any, tuple[Attachment, ...]]
    ) -> list[TestRecord]:
        """Records from rows of (key, ``_RECORD_COLUMNS``...), with the
        attachments ``files`` holds under each key. This loop is most of the
        cost of ``proctor last``: everything in it is a local or a lookup."""
        tags = self._tags(cur, {row[6] for row in rows})
        statuses = STATUSES
        empty: frozenset[str] = frozenset()
        none: tuple[Attachment, ...] = ()
        make = TestRecord
        records: list[TestRecord] = []
        append = records.append
        get = files.get
        for key, test_id, status, start, elapsed, route, tagset, runnable in rows:
            # elapsed is stored only when both timestamps are known.
            append(
                make(
                    test_id,
                    statuses[status],
                    route,
                    start,
                    None if elapsed is None else start + elapsed,
                    empty if tagset is None else tags[tagset],
                    get(key, none),
                    runnable == 1,
                )
            )
        return records

    # The failing set is small and the tests table is not: these read the
    # failing rows and sort in Python, where a planner would rather walk the
    # whole index of test ids to return them sorted.

    def failing_ids(self) -> list[str]:
        with self._snapshot() as cur:
            cur.execute("SELECT (SELECT t.test_id FROM tests t WHERE t.id = f.test) FROM failing f")
            return sorted(row[0] for row in cur.fetchall())

    def failing_records(self) -> list[TestRecord]:
        with self._snapshot() as cur:
            cur.execute(
                f"SELECT r.run, r.seq, {_RECORD_COLUMNS} FROM failing f "
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
                rows = self._fetch_in(
                    cur,
                    "SELECT a.seq, a.name, a.mime, b.codec, b.data, a.ordinal "
                    "FROM attachments a JOIN blobs b ON b.id = a.blob "
                    "WHERE a.run = ? AND a.seq IN ({})",
                    sorted(positions),
                    (run_id,),
                )
                rows.sort(key=lambda row: (row[0], row[5]))
                for seq, attached in _attachments(row[:5] for row in rows).items():
                    files[run_id, seq] = attached
            return self._records(cur, [((row[0], row[1]), *row[2:]) for row in found], files)

    def durations(self, test_ids: Iterable[str] | None = None) -> dict[str, float]:
        base = (
            "SELECT t.test_id, s.expected_ns FROM test_stats s JOIN tests t ON t.id = s.test "
            "WHERE s.expected_ns IS NOT NULL"
        )
        with self._snapshot() as cur:
            if test_ids is None:
                cur.execute(base)
                rows = cur.fetchall()
            else:
                rows = self._fetch_in(
                    cur, base + f" AND t.{self._test_key} IN ({{}})", self._keys(test_ids)
                )
        return {test_id: expected / NS_PER_SECOND for test_id, expected in rows}

    def test_stats(self, test_ids: Iterable[str]) -> dict[str, TestStats]:
        with self._snapshot() as cur:
            rows = self._fetch_in(
                cur,
                f"SELECT t.test_id, {_STATS_COLUMNS} FROM test_stats s "
                f"JOIN tests t ON t.id = s.test WHERE t.{self._test_key} IN ({{}})",
                self._keys(test_ids),
            )
        return {row[0]: TestStats(*row) for row in rows}

    def slowest(
        self, *, limit: int | None = 10, run_id: int | None = None, by_mean: bool = False
    ) -> list[SlowTest]:
        limit = check_limit(limit)
        tail = "" if limit is None else f" LIMIT {int(limit)}"
        with self._snapshot() as cur:
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
                self._q(
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
        with self._snapshot() as cur:
            cur.execute(
                self._q(f"SELECT id FROM tests WHERE {self._test_key} = ?"), (self._key(test_id),)
            )
            row = cur.fetchone()
            if row is None:
                raise UnknownTest(f"no results for {test_id!r} in {self.location}")
            cur.execute(
                self._q(
                    "SELECT r.run, u.started_ns, u.git_commit, u.git_branch, r.status, "
                    f"r.start_ns, r.elapsed_ns, r.route FROM {self._by_test} "
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
        with self._snapshot() as cur:
            cur.execute(
                self._q(
                    f"SELECT test_id FROM tests WHERE {self._contains('test_id')} "
                    f"ORDER BY test_id LIMIT {int(check_limit(limit) or 0)}"
                ),
                (fragment,),
            )
            return [row[0] for row in cur.fetchall()]

    # -- housekeeping

    def stats(self) -> StoreStats:
        from proctor.store.sqlhousekeeping import repository_stats

        return repository_stats(self)

    def remove_runs(self, run_ids: Iterable[int]) -> list[int]:
        from proctor.store.sqlhousekeeping import remove_run

        # One transaction per run: a long clean-up never holds the write lock
        # for long, and stopping it half way leaves whole runs, never half of one.
        removed: list[int] = []
        for run_id in sorted(set(run_ids)):
            attempt = 0
            while True:
                attempt += 1
                try:
                    with self._transaction(self._conn) as cur:
                        found = remove_run(self, cur, run_id)
                except StoreError:
                    raise
                except Exception as error:
                    # Writers lock failing rows before statistics, a removal
                    # the other way round: a deadlock is possible, and harmless.
                    if attempt < 5 and self._retryable(error):
                        continue
                    raise self._translate(error) from error
                break
            if found:
                removed.append(run_id)
        return removed

    def collect_garbage(self, *, vacuum: bool = False) -> GarbageReport:
        from proctor.store.sqlhousekeeping import collect_garbage

        before = self._size_bytes()
        report = collect_garbage(self)
        try:
            reusable = self._reclaim_space(vacuum)
        except StoreError:
            raise
        except Exception as error:
            raise self._translate(error) from error
        after = self._size_bytes()
        return report._replace(
            freed_bytes=max(before - after, 0), reusable_bytes=reusable, size_bytes=after
        )

    def seed_durations(self, durations: Mapping[str, float]) -> int:
        from proctor.store.sqlhousekeeping import seed_durations

        return seed_durations(self, durations)

    def close(self) -> None:
        self._close_connection(self._conn)


class SqlRunWriter(RunWriter):
    """A run writer on its own connection (so reads on the store never see a
    half-written batch, and a writer's transaction never blocks the store's)."""

    def __init__(self, store: SqlStore, conn: Any, run_id: int) -> None:
        super().__init__(run_id)
        self._store = store
        self._conn = conn

    def _write(self, records: list[TestRecord]) -> None:
        write_batch(self._store, self._conn, self.run_id, records)

    def _finish(self, interrupted: bool, finished_ns: int) -> RunInfo:
        return self._store._finish_run(self._conn, self.run_id, interrupted, finished_ns)


def _attachments(rows: Iterable[Any]) -> dict[Any, tuple[Attachment, ...]]:
    """Rows of (key, name, mime, codec, data), in order, as attachments per key."""
    files: dict[Any, list[Attachment]] = {}
    for key, name, mime, codec, data in rows:
        files.setdefault(key, []).append(Attachment(name, decode_blob(codec, data), mime))
    return {key: tuple(attached) for key, attached in files.items()}
