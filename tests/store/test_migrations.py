"""Repositories built by an older schema are upgraded in place, history intact.

Each backend's version-1 database is built the way version 1 of Proctor built
it (its migration statements), filled through plain SQL in the version-1
layout, and then opened with the current code.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from proctor.store import RunMetadata, open_store
from proctor.store.blobs import digest, encode_blob
from proctor.store.sql import postgres_schema, sqlite_schema
from proctor.store.sql.migrations import Migration
from proctor.wire.event import NS_PER_SECOND, Status
from proctor.wire.record import Attachment, TestRecord

T0 = 1_600_000_000 * NS_PER_SECOND
TRACEBACK = b"Traceback (most recent call last):\nAssertionError: old failure\n" * 5


def _fill_v1(execute: Callable[..., Any], mark: str) -> None:
    """Two runs in the version-1 layout: run 2 fails test b with a traceback."""

    def sql(text: str) -> str:
        return text.replace("?", mark)

    execute(sql("INSERT INTO tests (id, test_id) VALUES (?, ?)"), (1, "pkg.test_a"))
    execute(sql("INSERT INTO tests (id, test_id) VALUES (?, ?)"), (2, "pkg.test_b"))
    execute(sql("INSERT INTO tagsets (id, tags) VALUES (?, ?)"), (1, '["worker-0"]'))
    for run, (status_b, seconds) in enumerate([(3, 1), (6, 3)], start=1):
        execute(
            sql(
                "INSERT INTO runs (id, started_ns, finished_ns, interrupted, partial, source, "
                "git_commit, git_branch, n_total, n_passed, n_failed, test_ns) "
                "VALUES (?, ?, ?, 0, 1, 'run', ?, 'main', 2, ?, ?, ?)"
            ),
            (
                run,
                T0 + run,
                T0 + run + 10,
                f"c{run}",
                2 if status_b == 3 else 1,
                0 if status_b == 3 else 1,
                (1 + seconds) * NS_PER_SECOND,
            ),
        )
        for seq, (test, status, elapsed) in enumerate(
            [(1, 3, NS_PER_SECOND), (2, status_b, seconds * NS_PER_SECOND)]
        ):
            execute(
                sql(
                    "INSERT INTO results (run, seq, test, status, start_ns, elapsed_ns, route, "
                    "tagset, runnable) VALUES (?, ?, ?, ?, ?, ?, '0', 1, 1)"
                ),
                (run, seq, test, status, T0, elapsed),
            )
    codec, data = encode_blob(TRACEBACK)
    execute(
        sql("INSERT INTO blobs (id, digest, size, codec, data) VALUES (1, ?, ?, ?, ?)"),
        (digest(TRACEBACK), len(TRACEBACK), codec, data),
    )
    execute(
        "INSERT INTO attachments (run, seq, ordinal, name, mime, blob) "
        "VALUES (2, 1, 0, 'traceback', 'text/x-traceback', 1)"
    )
    execute("INSERT INTO failing (test, run, seq) VALUES (2, 2, 1)")


def _apply(execute: Callable[..., Any], migration: Migration, mark: str) -> None:
    for statement in migration.statements:
        execute(statement)
    execute(
        f"INSERT INTO schema_migrations (version, applied_ns, description) "
        f"VALUES ({mark}, {mark}, {mark})",
        (migration.version, 0, migration.description),
    )


def _v1_sqlite(tmp_path: Path) -> str:
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    _apply(conn.execute, sqlite_schema.V1, "?")
    _fill_v1(conn.execute, "?")
    conn.commit()
    conn.close()
    return str(path)


def _v1_postgres(url: str) -> str:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        _apply(conn.execute, postgres_schema.V1, "%s")
        _fill_v1(conn.execute, "%s")
        # Version 1 ids were given explicitly above; move the sequences past them.
        for sequence, value in [
            ("runs_id_seq", 2),
            ("tests_id_seq", 2),
            ("tagsets_id_seq", 1),
            ("blobs_id_seq", 1),
        ]:
            conn.execute("SELECT setval(%s, %s)", (sequence, value))
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def v1_repository(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return _v1_sqlite(tmp_path)
    return _v1_postgres(request.getfixturevalue("postgres_url"))


def _latest(url: str) -> int:
    schema = postgres_schema if url.startswith("postgresql") else sqlite_schema
    return schema.MIGRATIONS[-1].version


def _count(url: str, table: str) -> int:
    """Rows of ``table``, read with the database's own driver."""
    if url.startswith("postgresql"):
        import psycopg

        with psycopg.connect(url) as conn:
            row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    else:
        conn = sqlite3.connect(url)
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        conn.close()
    assert row is not None
    return int(row[0])


def test_a_version_1_repository_is_upgraded_keeping_its_history(v1_repository: str) -> None:
    with open_store(v1_repository) as store:
        assert store.stats().schema_version == _latest(v1_repository)
        runs = store.runs()
        assert [run.id for run in runs] == [2, 1]
        assert runs[0].metadata.git_commit == "c2"
        assert runs[0].metadata.ci_provider is None  # a column version 2 added
        assert store.records(2) == [
            TestRecord(
                "pkg.test_a",
                Status.SUCCESS,
                "0",
                T0,
                T0 + NS_PER_SECOND,
                frozenset({"worker-0"}),
                (),
                True,
            ),
            TestRecord(
                "pkg.test_b",
                Status.FAIL,
                "0",
                T0,
                T0 + 3 * NS_PER_SECOND,
                frozenset({"worker-0"}),
                (Attachment("traceback", TRACEBACK, "text/x-traceback"),),
                True,
            ),
        ]
        assert store.failing_ids() == ["pkg.test_b"]
        # Version 2's statistics were filled from the stored history.
        assert store.durations() == {"pkg.test_a": 1.0, "pkg.test_b": 2.0}
        b = store.test_stats(["pkg.test_b"])["pkg.test_b"]
        assert (b.results, b.passed, b.failed, b.last_ns, b.last_run) == (
            2,
            1,
            1,
            3 * NS_PER_SECOND,
            2,
        )
        assert [entry.run_id for entry in store.test_history("pkg.test_a")] == [2, 1]
        # And the upgraded repository takes new runs like a new one, finding the
        # tests and tag sets it holds (PostgreSQL's version 3 keys them anew).
        info = store.write_run(
            [
                TestRecord(
                    "pkg.test_b",
                    Status.SUCCESS,
                    None,
                    T0,
                    T0 + NS_PER_SECOND,
                    frozenset({"worker-0"}),
                )
            ],
            RunMetadata(ci_provider="jenkins"),
        )
        assert info.id == 3
        assert store.failing_ids() == []
        assert store.test_stats(["pkg.test_b"])["pkg.test_b"].results == 3
        assert (store.stats().tests, _count(v1_repository, "tagsets")) == (2, 1)
    with open_store(v1_repository) as again:  # opening a current repository changes nothing
        assert again.stats().schema_version == _latest(v1_repository)
        assert again.stats().runs == 3


def _signed_before_messages(url: str) -> str:
    """``url`` (a filled version-1 repository) taken to the version before
    messages were stored, run 2's failure signed there as that version did."""
    from proctor.triage.signature import ALGORITHM
    from proctor.triage.signer import RecordSigner

    failed = TestRecord(
        "pkg.test_b", Status.FAIL, attachments=(Attachment("traceback", TRACEBACK, "text/plain"),)
    )
    signature = RecordSigner()(failed)
    assert signature is not None
    values = (ALGORITHM, signature.digest, signature.kind, signature.key, "c0ffee" + "0" * 10)
    if url.startswith("postgresql"):
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            for migration in postgres_schema.MIGRATIONS[1:-1]:
                _apply(conn.execute, migration, "%s")
            conn.execute(
                "INSERT INTO signatures (id, algorithm, digest, kind, key, cluster) "
                "VALUES (1, %s, %s, %s, %s, %s)",
                values,
            )
            conn.execute("SELECT setval('signatures_id_seq', 1)")
            conn.execute(
                "INSERT INTO failures (run, seq, signature, test, status, run_ns) "
                "VALUES (2, 1, 1, 2, 6, %s)",
                (T0 + 2,),
            )
        return url
    conn = sqlite3.connect(url)
    for migration in sqlite_schema.MIGRATIONS[1:-1]:
        _apply(conn.execute, migration, "?")
    conn.execute(
        "INSERT INTO signatures (id, algorithm, digest, kind, key, cluster) "
        "VALUES (1, ?, ?, ?, ?, ?)",
        values,
    )
    conn.execute(
        "INSERT INTO failures (run, seq, signature, test, status, run_ns) "
        "VALUES (2, 1, 1, 2, 6, ?)",
        (T0 + 2,),
    )
    conn.commit()
    conn.close()
    return url


def test_failures_signed_before_messages_are_signed_again_for_them(v1_repository: str) -> None:
    from proctor.triage.recluster import catch_up
    from proctor.triage.signature import ALGORITHM

    url = _signed_before_messages(v1_repository)
    with open_store(url) as store:
        assert store.stats().schema_version == _latest(url)
        (row,) = store.failures([1, 2], algorithm=ALGORITHM)
        assert (row.run, row.seq, row.type, row.message) == (2, 1, None, None)
        assert [(run, seq) for run, seq, _ in store.unsigned_failures(algorithm=ALGORITHM)] == [
            (2, 1)
        ]
        report = catch_up(store)
        assert (report.signed, report.done) == (1, True)
        (again,) = store.failures([1, 2], algorithm=ALGORITHM)
        assert (again.type, again.message) == ("AssertionError", "old failure")
        assert (again.digest, again.cluster) == (row.digest, "c0ffee" + "0" * 10)
        assert store.unsigned_failures(algorithm=ALGORITHM) == []
