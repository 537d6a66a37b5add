"""Writing a batch of records in one SQL transaction (shared by SQLite and PostgreSQL).

One batch touches every table a result affects, in this order (the same order in
every writer, so concurrent PostgreSQL writers queue on row locks instead of
deadlocking; rows within a table are also taken in sorted order):

0. ``runs``: read where the batch starts in the run (a result is keyed by its
   run and its position in it);
1. ``tests`` and ``tagsets``: intern the ids and tag sets the batch names;
2. ``blobs``: look up attachment contents by digest, insert the new ones;
3. ``results`` and ``attachments``: bulk insert, appended to the run; then
   ``signatures`` and ``failures``: the failing results' signatures (store.signer);
4. ``runs``: add the batch's counts and widen its time span;
5. ``test_stats``: add counts and durations from the result rows just stored,
   by ``INSERT ... SELECT ... ON CONFLICT DO UPDATE`` in result order, so the
   weighted mean is exactly what the in-memory fake computes (and no Python
   loop binds a parameter per row); this locks each test's row, and leaves in
   it the newest run with a result of the test;
6. ``failing``: apply :func:`~proctor.store.model.failing_change` per test,
   the last result of a test in the batch winning, for the tests whose
   newest run is this one: a result never replaces the entry a later run
   (one begun after it, writing concurrently) gave its test.

Caches of test ids and tag sets are updated only after the commit: a rolled
back transaction (a deadlock retried on PostgreSQL) must not leave ids behind
that the database never kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, NamedTuple

from proctor.store.blobs import digest, encode_blob
from proctor.store.errors import UnknownRun
from proctor.store.failures import Signer
from proctor.store.model import EWMA_WEIGHT, RETRIED_TAG, RunCounts, failing_change
from proctor.store.sql.dialect import Dialect
from proctor.store.sql.failures import sign_batch
from proctor.store.sql.interned import Interned
from proctor.store.sql.rules import EXISTS, FAILED_IN, PASSED, SKIPPED, timed
from proctor.store.sql.transaction import in_transaction
from proctor.wire.event import Status
from proctor.wire.record import TestRecord

__all__ = [
    "STATS_COLUMNS",
    "STATS_CONFLICT",
    "STATS_SELECT",
    "STATS_WHERE",
    "WritePath",
    "encode_tags",
    "intern_tests",
    "write_batch",
    "write_in",
]


STATS_COLUMNS = (
    "test, results, passed, failed, skipped, timed, total_ns, min_ns, max_ns, last_ns, "
    "expected_ns, last_run"
)
STATS_CONFLICT = f"""
ON CONFLICT (test) DO UPDATE SET
    results = test_stats.results + 1,
    passed = test_stats.passed + excluded.passed,
    failed = test_stats.failed + excluded.failed,
    skipped = test_stats.skipped + excluded.skipped,
    timed = test_stats.timed + excluded.timed,
    total_ns = test_stats.total_ns + excluded.total_ns,
    min_ns = CASE WHEN test_stats.min_ns IS NULL OR excluded.min_ns < test_stats.min_ns
                  THEN excluded.min_ns ELSE test_stats.min_ns END,
    max_ns = CASE WHEN test_stats.max_ns IS NULL OR excluded.max_ns > test_stats.max_ns
                  THEN excluded.max_ns ELSE test_stats.max_ns END,
    last_ns = COALESCE(excluded.last_ns, test_stats.last_ns),
    expected_ns = CASE
        WHEN excluded.expected_ns IS NULL THEN test_stats.expected_ns
        WHEN test_stats.expected_ns IS NULL THEN excluded.expected_ns
        ELSE test_stats.expected_ns
             + {EWMA_WEIGHT!r} * (excluded.expected_ns - test_stats.expected_ns)
    END,
    last_run = CASE WHEN test_stats.last_run IS NULL OR excluded.last_run > test_stats.last_run
                    THEN excluded.last_run ELSE test_stats.last_run END
"""
"""How one result's row adds to its test's statistics (see model.EWMA_WEIGHT)."""

_CHANGE = tuple(failing_change(status) for status in Status)
_COUNTS_TIME = tuple(status.is_final and status is not Status.EXISTS for status in Status)
"""By stored status: whether a result with both timestamps adds to the run's test time."""

_TIMED = timed()
STATS_SELECT = f"""
SELECT test, 1,
    CASE WHEN status = {PASSED} THEN 1 ELSE 0 END,
    CASE WHEN status IN ({FAILED_IN}) THEN 1 ELSE 0 END,
    CASE WHEN status = {SKIPPED} THEN 1 ELSE 0 END,
    CASE WHEN {_TIMED} THEN 1 ELSE 0 END,
    CASE WHEN {_TIMED} THEN elapsed_ns ELSE 0 END,
    CASE WHEN {_TIMED} THEN elapsed_ns END,
    CASE WHEN {_TIMED} THEN elapsed_ns END,
    CASE WHEN {_TIMED} THEN elapsed_ns END,
    CASE WHEN {_TIMED} THEN CAST(elapsed_ns AS DOUBLE PRECISION) END,
    run
"""
"""Each stored result as a row to add to its test's statistics (select only
results that are not ``exists``: see :data:`STATS_WHERE`)."""
STATS_WHERE = f"status <> {EXISTS}"


class WritePath(NamedTuple):
    """What batches are written with: the backend's dialect, the store's
    interned ids (updated after each commit) and its location (for messages)."""

    dialect: Dialect
    interned: Interned
    location: str


def encode_tags(tags: frozenset[str]) -> str:
    """A tag set's stored form: a JSON list, sorted (tags may hold any character)."""
    return json.dumps(sorted(tags), ensure_ascii=False, separators=(",", ":"))


def write_batch(
    path: WritePath, conn: Any, run_id: int, records: list[TestRecord], signer: Signer | None
) -> None:
    """Store ``records`` for ``run_id`` on ``conn`` in one transaction (retried
    when the backend says the failure was transient), signing the failing
    ones with ``signer``; then remember the ids it interned."""
    new_tests, new_tagsets = in_transaction(
        conn, path.dialect, lambda cur: write_in(path, cur, run_id, records, signer)
    )
    path.interned.remember(new_tests, new_tagsets)


def write_in(
    path: WritePath, cur: Any, run_id: int, records: list[TestRecord], signer: Signer | None
) -> tuple[dict[str, int], dict[frozenset[str], int]]:
    """Write ``records`` for ``run_id`` inside the caller's transaction on
    ``cur``; return the test ids and tag sets it interned (to remember once
    the transaction commits)."""
    dialect, interned = path.dialect, path.interned
    first_seq = _next_position(path, cur, run_id)
    new_tests = intern_tests(dialect, interned, cur, {record.test_id for record in records})
    test_ids = {**interned.test_ids, **new_tests}
    tag_sets = {record.tags for record in records if record.tags}
    new_tagsets = _intern_tagsets(dialect, interned, cur, tag_sets)
    tagset_ids = {**interned.tagsets, **new_tagsets}
    blob_ids = _intern_blobs(dialect, cur, records)

    # The hot loop: one tuple per result, everything else by table look-up.
    results: list[tuple[object, ...]] = []
    attachments: list[tuple[object, ...]] = []
    changes: dict[int, tuple[int, bool]] = {}
    by_status = [0] * len(_CHANGE)
    test_ns = attachment_count = attachment_bytes = 0
    repeats: dict[int, int] = {}  # test -> results in this batch, for tests with several
    first: int | None = None
    last: int | None = None
    append = results.append
    for seq, record in enumerate(records, first_seq):
        test = test_ids[record.test_id]
        status = int(record.status)
        tags = record.tags
        # A failed attempt run again (--rerun-failures) is stored, and counted in the
        # run's total (its results' positions), not among its outcomes.
        counted = not (tags and RETRIED_TAG in tags)
        start = record.start
        stop = record.stop
        elapsed = None
        if start is not None and stop is not None:
            elapsed = stop - start
            if first is None or start < first:
                first = start
            if last is None or stop > last:
                last = stop
            if _COUNTS_TIME[status]:
                test_ns += elapsed
        if counted:
            by_status[status] += 1
        append(
            (
                run_id,
                seq,
                test,
                status,
                start,
                elapsed,
                record.route_code,
                tagset_ids[tags] if tags else None,
                1 if record.runnable else 0,
            )
        )
        if record.attachments:
            for ordinal, attachment in enumerate(record.attachments):
                content = attachment.content
                attachments.append(
                    (
                        run_id,
                        seq,
                        ordinal,
                        attachment.name,
                        attachment.mime_type,
                        blob_ids[digest(content)],
                    )
                )
                attachment_count += 1
                attachment_bytes += len(content)
        change = _CHANGE[status]
        if change is not None:
            if test in changes:
                repeats[test] = repeats.get(test, 1) + 1
            changes[test] = (seq, change)

    dialect.bulk_insert(
        cur,
        "results",
        ("run", "seq", "test", "status", "start_ns", "elapsed_ns", "route", "tagset", "runnable"),
        results,
    )
    if attachments:
        dialect.bulk_insert(
            cur, "attachments", ("run", "seq", "ordinal", "name", "mime", "blob"), attachments
        )
    sign_batch(dialect, signer, cur, run_id, first_seq, records, test_ids)
    counts = RunCounts(
        total=len(records),
        passed=by_status[Status.SUCCESS],
        failed=by_status[Status.FAIL],
        skipped=by_status[Status.SKIP],
        xfail=by_status[Status.XFAIL],
        uxsuccess=by_status[Status.UXSUCCESS],
        incomplete=by_status[Status.INPROGRESS] + by_status[Status.NONE],
        exists=by_status[Status.EXISTS],
        test_ns=test_ns,
    )
    _add_counts(path, cur, run_id, counts, first, last, attachment_count, attachment_bytes)
    if changes:
        rounds = max(repeats.values(), default=1)
        dialect.update_stats(cur, run_id, first_seq, first_seq + len(records) - 1, rounds)
        _merge_failing(dialect, cur, run_id, _newest(dialect, cur, run_id, changes))
    return new_tests, new_tagsets


def _next_position(path: WritePath, cur: Any, run_id: int) -> int:
    """Where the batch starts in its run (the run's row, locked where that
    means something: one writer per run)."""
    dialect = path.dialect
    cur.execute(dialect.q("SELECT n_total FROM runs WHERE id = ?" + dialect.for_update), (run_id,))
    row = cur.fetchone()
    if row is None:
        raise UnknownRun(
            f"run {run_id} was removed from {path.location} while it was being written; "
            "its remaining results were not stored"
        )
    position: int = row[0]
    return position


def intern_tests(dialect: Dialect, interned: Interned, cur: Any, names: set[str]) -> dict[str, int]:
    """The ids of the test ids ``names`` that ``interned`` does not know yet,
    inserting those the database does not hold."""
    missing = [name for name in names if name not in interned.test_ids]
    if not missing:
        return {}
    return _intern(dialect, cur, "tests", "test_id", missing)


def _intern_tagsets(
    dialect: Dialect, interned: Interned, cur: Any, tag_sets: Iterable[frozenset[str]]
) -> dict[frozenset[str], int]:
    missing = {encode_tags(tags): tags for tags in tag_sets if tags not in interned.tagsets}
    if not missing:
        return {}
    found = _intern(dialect, cur, "tagsets", "tags", list(missing))
    return {missing[text]: tagset_id for text, tagset_id in found.items()}


def _intern(
    dialect: Dialect, cur: Any, table: str, column: str, texts: list[str]
) -> dict[str, int]:
    """The ids of ``texts`` in ``table``, inserting those it does not hold.

    Rows are found by their key (:meth:`Dialect.key`: the text itself, or on
    PostgreSQL its digest, in the ``digest`` column) and inserted in key order,
    the lock order every writer follows.
    """
    by_key = {dialect.key(text): text for text in texts}
    keys = sorted(by_key)  # all str, or all bytes
    key_column = dialect.key_column(column)
    select = f"SELECT {key_column}, id FROM {table} WHERE {key_column} IN ({{}})"

    def look_up(wanted: list[Any]) -> dict[str, int]:
        return {
            by_key[bytes(key) if isinstance(key, memoryview) else key]: row_id
            for key, row_id in dialect.fetch_in(cur, select, wanted)
        }

    found = look_up(keys)
    absent = [key for key in keys if by_key[key] not in found]
    if absent:
        dialect.insert_keys(cur, table, column, [(key, by_key[key]) for key in absent])
        found.update(look_up(absent))
    return found


def _intern_blobs(dialect: Dialect, cur: Any, records: list[TestRecord]) -> dict[bytes, int]:
    contents: dict[bytes, bytes] = {}
    for record in records:
        for attachment in record.attachments:
            contents.setdefault(digest(attachment.content), attachment.content)
    if not contents:
        return {}
    keys = sorted(contents)
    sql = "SELECT digest, id FROM blobs WHERE digest IN ({})" + dialect.for_share
    found: dict[bytes, int] = {
        bytes(key): blob_id for key, blob_id in dialect.fetch_in(cur, sql, keys)
    }
    new = [key for key in keys if key not in found]
    if new:
        rows = []
        for key in new:
            content = contents[key]
            codec, data = encode_blob(content)
            rows.append((key, len(content), codec, data))
        cur.executemany(
            dialect.q(
                "INSERT INTO blobs (digest, size, codec, data) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (digest) DO NOTHING"
            ),
            rows,
        )
        found.update((bytes(key), blob_id) for key, blob_id in dialect.fetch_in(cur, sql, new))
    return found


def _add_counts(
    path: WritePath,
    cur: Any,
    run_id: int,
    counts: RunCounts,
    first: int | None,
    last: int | None,
    attachments: int,
    attachment_bytes: int,
) -> None:
    sets = [
        "n_total = n_total + ?",
        "n_passed = n_passed + ?",
        "n_failed = n_failed + ?",
        "n_skipped = n_skipped + ?",
        "n_xfail = n_xfail + ?",
        "n_uxsuccess = n_uxsuccess + ?",
        "n_incomplete = n_incomplete + ?",
        "n_exists = n_exists + ?",
        "test_ns = test_ns + ?",
        "n_attachments = n_attachments + ?",
        "attachment_bytes = attachment_bytes + ?",
    ]
    params: list[object] = [
        counts.total,
        counts.passed,
        counts.failed,
        counts.skipped,
        counts.xfail,
        counts.uxsuccess,
        counts.incomplete,
        counts.exists,
        counts.test_ns,
        attachments,
        attachment_bytes,
    ]
    if first is not None and last is not None:
        sets.append(
            "first_ns = CASE WHEN first_ns IS NULL OR first_ns > ? THEN ? ELSE first_ns END"
        )
        sets.append("last_ns = CASE WHEN last_ns IS NULL OR last_ns < ? THEN ? ELSE last_ns END")
        params += [first, first, last, last]
    cur.execute(
        path.dialect.q(f"UPDATE runs SET {', '.join(sets)} WHERE id = ?"), [*params, run_id]
    )
    if cur.rowcount == 0:
        raise UnknownRun(
            f"run {run_id} was removed from {path.location} while it was being written; "
            "its remaining results were not stored"
        )


def _newest(
    dialect: Dialect, cur: Any, run_id: int, changes: dict[int, tuple[int, bool]]
) -> dict[int, tuple[int, bool]]:
    """The ``changes`` of tests for which this run is the newest with a result.

    Called after the statistics were updated: their rows now hold, locked
    until the commit (PostgreSQL; SQLite's whole write is serialised), the
    newest run that stored a result of each test, this one included. A test
    whose newest run is a later one (a run begun after this one, writing at
    the same time) keeps the failing entry that run gave it. When no later run
    exists at all, which is every run written alone, nothing needs looking up.
    """
    cur.execute("SELECT max(id) FROM runs")
    newest = cur.fetchone()[0]
    if newest is None or newest <= run_id:
        return changes
    later = dialect.fetch_in(
        cur,
        "SELECT test FROM test_stats WHERE last_run > ? AND test IN ({})",
        sorted(changes),
        (run_id,),
    )
    if not later:
        return changes
    skipped = {row[0] for row in later}
    return {test: change for test, change in changes.items() if test not in skipped}


def _merge_failing(
    dialect: Dialect, cur: Any, run_id: int, changes: dict[int, tuple[int, bool]]
) -> None:
    if not changes:
        return
    cur.execute("SELECT test FROM failing")
    listed = {row[0] for row in cur.fetchall()}
    gone = sorted(test for test, (_, failing) in changes.items() if not failing and test in listed)
    now = sorted((test, run_id, seq) for test, (seq, failing) in changes.items() if failing)
    if gone:
        cur.executemany(dialect.q("DELETE FROM failing WHERE test = ?"), [(test,) for test in gone])
    if now:
        cur.executemany(
            dialect.q(
                "INSERT INTO failing (test, run, seq) VALUES (?, ?, ?) ON CONFLICT (test) "
                "DO UPDATE SET run = excluded.run, seq = excluded.seq"
            ),
            now,
        )
