"""Looking after an SQL repository: statistics, removing runs, garbage, seeded timings.

Operations off the everyday path, kept out of ``sql.py`` (the queries every
command runs) so that each module holds one thing. Each function works on a
:class:`~proctor.store.sql.SqlStore` through its hooks, like ``sqlwrite``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from proctor.store.model import GarbageReport, StoreStats, failing_change
from proctor.store.sqlrules import EXISTS, FAILED_IN, PASSED, SKIPPED, STATUSES, timed
from proctor.store.sqlwrite import intern_tests
from proctor.wire.event import NS_PER_SECOND

if TYPE_CHECKING:
    from proctor.store.sql import SqlStore

__all__ = ["collect_garbage", "remove_run", "repository_stats", "seed_durations"]

_TIMED = timed("r.")


def remove_run(store: SqlStore, cur: Any, run_id: int) -> bool:
    """Delete one run inside the caller's transaction; False if it did not exist.

    Its results leave the per-test statistics (counts and durations; the
    minimum, maximum, last and weighted mean describe what was seen and stay),
    and each test whose newest execution was in it gets its failing entry and
    newest run recomputed from what remains.

    The run's row is read with the lock every batch of its writer takes first
    (PostgreSQL), so a batch being written is either all removed with the run
    (it committed first) or refused (the writer finds its run gone)."""
    cur.execute(store._q("SELECT id FROM runs WHERE id = ?" + store._for_update), (run_id,))
    if cur.fetchone() is None:
        return False
    cur.execute(
        store._q(
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
        store._q(
            "UPDATE test_stats SET results = results - ?, passed = passed - ?, "
            "failed = failed - ?, skipped = skipped - ?, timed = timed - ?, "
            "total_ns = total_ns - ? WHERE test = ?"
        ),
        [(*row[1:], row[0]) for row in lost],
    )
    cur.executemany(
        store._q("DELETE FROM test_stats WHERE test = ? AND results <= 0"),
        [(row[0],) for row in lost],
    )
    # Tests whose newest execution was in this run: their failing entry
    # and newest run are recomputed from what remains.
    cur.execute(
        store._q(
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
        cur.execute(store._q(f"DELETE FROM {table} WHERE {column} = ?"), (run_id,))
    for test in newest_here:
        cur.execute(
            store._q(
                f"SELECT r.seq, r.run, r.status FROM {store._by_test} "
                f"WHERE r.status <> {EXISTS} ORDER BY u.id DESC, r.seq DESC LIMIT 1"
            ),
            (test,),
        )
        latest = cur.fetchone()
        cur.execute(
            store._q("UPDATE test_stats SET last_run = ? WHERE test = ?"),
            (None if latest is None else latest[1], test),
        )
        if latest is not None and failing_change(STATUSES[latest[2]]):
            cur.execute(
                store._q(
                    "INSERT INTO failing (test, run, seq) VALUES (?, ?, ?) "
                    "ON CONFLICT (test) DO UPDATE SET run = excluded.run, "
                    "seq = excluded.seq"
                ),
                (test, latest[1], latest[0]),
            )
        else:
            cur.execute(store._q("DELETE FROM failing WHERE test = ?"), (test,))
    return True


def collect_garbage(store: SqlStore) -> GarbageReport:
    """Delete the blobs no attachment refers to (the backend locks writers out)."""
    orphan = "NOT EXISTS (SELECT 1 FROM attachments a WHERE a.blob = blobs.id)"
    try:
        with store._transaction(store._conn) as cur:
            store._lock_blobs(cur)
            cur.execute(
                f"SELECT count(*), COALESCE(sum(length(data)), 0) FROM blobs WHERE {orphan}"
            )
            count, size = cur.fetchone()
            if count:
                cur.execute(f"DELETE FROM blobs WHERE {orphan}")
    except Exception as error:
        raise store._translate(error) from error
    return GarbageReport(blobs=count, blob_bytes=int(size))


def seed_durations(store: SqlStore, durations: Mapping[str, float]) -> int:
    """Give tests without timings a starting expected duration."""
    if not durations:
        return 0
    try:
        with store._transaction(store._conn) as cur:
            new = intern_tests(store, cur, set(durations))
            ids = {**store._test_ids, **new}
            timed = {
                row[0]
                for row in store._fetch_in(
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
                store._q(
                    "INSERT INTO test_stats (test, expected_ns) VALUES (?, ?) "
                    "ON CONFLICT (test) DO UPDATE SET expected_ns = excluded.expected_ns"
                ),
                rows,
            )
    except Exception as error:
        raise store._translate(error) from error
    store._remember(new, {})
    return len(rows)


def repository_stats(store: SqlStore) -> StoreStats:
    """Counts and sizes, from the runs' counters and the small tables."""
    with store._snapshot() as cur:
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
        location=store.location,
        backend=store.backend,
        schema_version=version,
        runs=runs,
        results=int(results),
        tests=tests,
        failing=failing,
        attachments=int(attachments),
        blobs=blobs,
        blob_bytes=int(blob_bytes),
        raw_attachment_bytes=int(raw),
        size_bytes=store._size_bytes(),
        first_started_ns=first,
        last_started_ns=last,
        interrupted_runs=int(interrupted),
    )
