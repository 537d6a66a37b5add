"""Looking after an SQL repository: statistics, removing runs, garbage, seeded timings.

Operations off the everyday path, kept out of ``store`` (the queries every
command runs) so that each module holds one thing. Each function is given the
backend's :class:`~proctor.store.sql.dialect.Dialect` and the connection (or
the transaction's cursor) to work on, like ``write``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import partial
from typing import Any

from proctor.store.model import GarbageReport, StoreStats, failing_change
from proctor.store.sql.dialect import Dialect
from proctor.store.sql.interned import Interned
from proctor.store.sql.rules import EXISTS, FAILED_IN, PASSED, SKIPPED, STATUSES, timed
from proctor.store.sql.transaction import in_transaction
from proctor.store.sql.write import intern_tests
from proctor.wire.event import NS_PER_SECOND

__all__ = ["collect_garbage", "remove_run", "remove_runs", "repository_stats", "seed_durations"]

_TIMED = timed("r.")


def remove_runs(dialect: Dialect, conn: Any, run_ids: Iterable[int]) -> list[int]:
    """Delete the runs ``run_ids`` that exist, in order; return those removed.

    One transaction per run: a long clean-up never holds the write lock for
    long, and stopping it half way leaves whole runs, never half of one.
    Writers lock failing rows before statistics, a removal the other way
    round: a deadlock is possible, and harmless (the run is tried again)."""
    return [
        run_id
        for run_id in sorted(set(run_ids))
        if in_transaction(conn, dialect, partial(remove_run, dialect, run_id=run_id))
    ]


def remove_run(dialect: Dialect, cur: Any, run_id: int) -> bool:
    """Delete one run inside the caller's transaction; False if it did not exist.

    Its results leave the per-test statistics (counts and durations; the
    minimum, maximum, last and weighted mean describe what was seen and stay),
    and each test whose newest execution was in it gets its failing entry and
    newest run recomputed from what remains.

    The run's row is read with the lock every batch of its writer takes first
    (PostgreSQL), so a batch being written is either all removed with the run
    (it committed first) or refused (the writer finds its run gone)."""
    cur.execute(dialect.q("SELECT id FROM runs WHERE id = ?" + dialect.for_update), (run_id,))
    if cur.fetchone() is None:
        return False
    cur.execute(
        dialect.q(
            "SELECT test, count(*), "
            f"sum(CASE WHEN status = {PASSED} THEN 1 ELSE 0 END), "
            f"sum(CASE WHEN status IN ({FAILED_IN}) THEN 1 ELSE 0 END), "
            f"sum(CASE WHEN status = {SKIPPED} THEN 1 ELSE 0 END), "
            f"sum(CASE WHEN {_TIMED} THEN 1 ELSE 0 END), "
            f"sum(CASE WHEN {_TIMED} THEN r.elapsed_ns ELSE 0 END) "
            f"FROM results r WHERE r.run = ? AND r.status <> {EXISTS} GROUP BY test ORDER BY test"
        ),
        (run_id,),
    )
    lost = cur.fetchall()
    cur.executemany(
        dialect.q(
            "UPDATE test_stats SET results = results - ?, passed = passed - ?, "
            "failed = failed - ?, skipped = skipped - ?, timed = timed - ?, "
            "total_ns = total_ns - ? WHERE test = ?"
        ),
        [(*row[1:], row[0]) for row in lost],
    )
    cur.executemany(
        dialect.q("DELETE FROM test_stats WHERE test = ? AND results <= 0"),
        [(row[0],) for row in lost],
    )
    # Tests whose newest execution was in this run: their failing entry
    # and newest run are recomputed from what remains.
    cur.execute(
        dialect.q(
            "SELECT test FROM test_stats WHERE last_run = ? "
            "UNION SELECT test FROM failing WHERE run = ? ORDER BY 1"
        ),
        (run_id, run_id),
    )
    newest_here = [row[0] for row in cur.fetchall()]
    for table, column in (
        ("attachments", "run"),
        ("failures", "run"),
        ("results", "run"),
        ("run_properties", "run"),
        ("runs", "id"),
    ):
        cur.execute(dialect.q(f"DELETE FROM {table} WHERE {column} = ?"), (run_id,))
    for test in newest_here:
        cur.execute(
            dialect.q(
                f"SELECT r.seq, r.run, r.status FROM {dialect.by_test} "
                f"WHERE r.status <> {EXISTS} ORDER BY u.id DESC, r.seq DESC LIMIT 1"
            ),
            (test,),
        )
        latest = cur.fetchone()
        cur.execute(
            dialect.q("UPDATE test_stats SET last_run = ? WHERE test = ?"),
            (None if latest is None else latest[1], test),
        )
        if latest is not None and failing_change(STATUSES[latest[2]]):
            cur.execute(
                dialect.q(
                    "INSERT INTO failing (test, run, seq) VALUES (?, ?, ?) "
                    "ON CONFLICT (test) DO UPDATE SET run = excluded.run, "
                    "seq = excluded.seq"
                ),
                (test, latest[1], latest[0]),
            )
        else:
            cur.execute(dialect.q("DELETE FROM failing WHERE test = ?"), (test,))
    return True


def collect_garbage(dialect: Dialect, conn: Any) -> GarbageReport:
    """Delete the blobs no attachment refers to (the dialect locks writers out)."""
    orphan = "NOT EXISTS (SELECT 1 FROM attachments a WHERE a.blob = blobs.id)"

    def collect(cur: Any) -> tuple[int, int]:
        dialect.lock_blobs(cur)
        cur.execute(f"SELECT count(*), COALESCE(sum(length(data)), 0) FROM blobs WHERE {orphan}")
        count, size = cur.fetchone()
        if count:
            cur.execute(f"DELETE FROM blobs WHERE {orphan}")
        return count, size

    count, size = in_transaction(conn, dialect, collect)
    return GarbageReport(blobs=count, blob_bytes=int(size))


def seed_durations(
    dialect: Dialect, interned: Interned, conn: Any, durations: Mapping[str, float]
) -> int:
    """Give tests without timings a starting expected duration."""
    if not durations:
        return 0

    def seed(cur: Any) -> tuple[dict[str, int], int]:
        new = intern_tests(dialect, interned, cur, set(durations))
        ids = {**interned.test_ids, **new}
        timed = {
            row[0]
            for row in dialect.fetch_in(
                cur,
                "SELECT test FROM test_stats WHERE expected_ns IS NOT NULL AND test IN ({})",
                sorted(ids[name] for name in durations),
            )
        }
        rows = sorted(
            (ids[name], seconds * NS_PER_SECOND)
            for name, seconds in durations.items()
            if ids[name] not in timed
        )
        cur.executemany(
            dialect.q(
                "INSERT INTO test_stats (test, expected_ns) VALUES (?, ?) "
                "ON CONFLICT (test) DO UPDATE SET expected_ns = excluded.expected_ns"
            ),
            rows,
        )
        return new, len(rows)

    new, seeded = in_transaction(conn, dialect, seed)
    interned.remember(new, {})
    return seeded


def repository_stats(dialect: Dialect, conn: Any) -> StoreStats:
    """Counts and sizes, from the runs' counters and the small tables."""
    with dialect.snapshot(conn) as cur:
        cur.execute(
            "SELECT count(*), COALESCE(sum(n_total), 0), min(started_ns), max(started_ns), "
            "COALESCE(sum(CASE WHEN interrupted = 1 OR finished_ns IS NULL THEN 1 ELSE 0 END), "
            "0), "
            "COALESCE(sum(n_attachments), 0), COALESCE(sum(attachment_bytes), 0) FROM runs"
        )
        runs, results, first, last, interrupted, attachments, raw = cur.fetchone()
        cur.execute("SELECT count(*) FROM tests")
        tests = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM failing")
        failing = cur.fetchone()[0]
        cur.execute("SELECT count(*), COALESCE(sum(length(data)), 0) FROM blobs")
        blobs, blob_bytes = cur.fetchone()
        cur.execute("SELECT max(version) FROM schema_migrations")
        version = cur.fetchone()[0]
    return StoreStats(
        location=dialect.location,
        backend=dialect.name,
        schema_version=version,
        runs=runs,
        results=int(results),
        tests=tests,
        failing=failing,
        attachments=int(attachments),
        blobs=blobs,
        blob_bytes=int(blob_bytes),
        raw_attachment_bytes=int(raw),
        size_bytes=dialect.size_bytes(conn),
        first_started_ns=first,
        last_started_ns=last,
        interrupted_runs=int(interrupted),
    )
