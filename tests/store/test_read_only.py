"""``open_store(url, read_only=True)``: reads work, every write fails, nothing is created.

SQLite opens the file with ``mode=ro`` and PostgreSQL sessions set
``default_transaction_read_only``: the database refuses the writes, and the
store says so with a StoreError.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from proctor.store import RepositoryNotFound, RunMetadata, Store, StoreError, open_store
from proctor.store.bug_tables import EventRow, bug_tables
from proctor.store.opening import sqlite_path
from proctor.store.rules_table import load_rules, replace_rules
from proctor.store.sql import sqlite_schema
from proctor.wire.event import Status

from .factory import failure, record


def _fill(url: str) -> int:
    with open_store(url) as store:
        store.write_run([record("t.a"), failure("t.b"), record("t.c", Status.SKIP)])
        replace_rules(store, [("r1", "b1", "test:t.b", "2026-01-01", "ann")])
        run = store.write_run([failure("t.b", "again"), record("t.d")])
        gone = store.write_run([failure("t.x", "its traceback is garbage once removed")])
        store.remove_runs([gone.id])
        return run.id


def _writes(store: Store) -> dict[str, Callable[[], object]]:
    """Every way to write, each as a call that should fail."""

    def bug_write() -> None:
        with bug_tables(store).writing() as session:
            session.insert_events([EventRow("e" * 64, "b" * 64, "create", 1, "ann", 1, b"{}")])

    return {
        "begin_run": lambda: store.begin_run(RunMetadata()),
        "write_run": lambda: store.write_run([record("t.new")]),
        "resume_run": lambda: store.resume_run(1),
        "remove_runs": lambda: store.remove_runs([1]),
        "seed_durations": lambda: store.seed_durations({"t.z": 1.0}),
        "collect_garbage": lambda: store.collect_garbage(),
        "check_writable": store.check_writable,
        "set_clusters": lambda: store.set_clusters("frames-v1", {"x": "y"}),
        "replace_rules": lambda: replace_rules(store, []),
        "bug_tables.writing": bug_write,
    }


def test_a_read_only_store_reads_and_refuses_every_write(repository_url: str) -> None:
    last = _fill(repository_url)
    with open_store(repository_url, read_only=True) as store:
        latest = store.latest_run()
        assert latest is not None
        assert latest.id == last
        assert [run.id for run in store.runs()] == [last, last - 1]
        assert [r.test_id for r in store.records(last - 1)] == ["t.a", "t.b", "t.c"]
        assert store.failing_ids() == ["t.b"]
        assert [entry.run_id for entry in store.test_history("t.b")] == [last, last - 1]
        assert set(store.durations()) == {"t.a", "t.b", "t.c", "t.d"}
        assert store.stats().runs == 2
        assert load_rules(store) == [("r1", "b1", "test:t.b", "2026-01-01", "ann")]
        with bug_tables(store).reading() as session:
            assert session.bug_ids() == []
        for name, write in _writes(store).items():
            with pytest.raises(StoreError, match="read-only") as caught:
                write()
            assert "Traceback" not in str(caught.value), name
        # Still readable after the refusals.
        assert store.failing_ids() == ["t.b"]
    with open_store(repository_url) as store:  # and nothing changed
        assert [run.id for run in store.runs()] == [last, last - 1]
        assert [run.counts.total for run in store.runs()] == [2, 3]
        assert store.durations().keys() == {"t.a", "t.b", "t.c", "t.d"}
        assert load_rules(store) == [("r1", "b1", "test:t.b", "2026-01-01", "ann")]
        assert store.collect_garbage().blobs == 1  # the read-only one collected none


def test_a_read_only_store_sees_what_writers_add_later(repository_url: str) -> None:
    _fill(repository_url)
    with open_store(repository_url, read_only=True) as reader:
        with open_store(repository_url) as writer, writer.begin_run() as run:
            run.add(failure("t.e"))
            run.flush()
            assert "t.e" in reader.failing_ids()
        assert reader.run(run.run_id).finished


def test_a_missing_sqlite_repository_is_refused_and_not_created(tmp_path: Path) -> None:
    for url in (str(tmp_path / "nothing"), str(tmp_path / "r.sqlite")):
        with pytest.raises(RepositoryNotFound, match="no repository at"):
            open_store(url, read_only=True)
    assert list(tmp_path.iterdir()) == []
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    with pytest.raises(RepositoryNotFound, match="the file is empty"):
        open_store(str(empty), read_only=True)
    assert empty.read_bytes() == b""


@pytest.mark.postgres
def test_a_missing_postgres_repository_is_refused_and_not_created(postgres_url: str) -> None:
    import psycopg

    with pytest.raises(RepositoryNotFound, match="no repository at"):
        open_store(postgres_url, read_only=True)
    schema = postgres_url.rsplit("%3D", 1)[1]
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        tables = admin.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = %s", (schema,)
        ).fetchone()
    assert tables == (0,)


def test_an_old_sqlite_repository_opened_read_only_is_refused_unchanged(tmp_path: Path) -> None:
    path = sqlite_path(str(tmp_path / "old.sqlite"))
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in sqlite_schema.V1.statements:
        conn.execute(statement)
    conn.execute("INSERT INTO schema_migrations VALUES (1, 0, ?)", (sqlite_schema.V1.description,))
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match=r"schema version 1.*read-only.*cannot be upgraded"):
        open_store(str(path), read_only=True)
    assert path.read_bytes() == before
    with open_store(str(path)) as store:  # a writable open upgrades it as ever
        assert store.stats().schema_version == sqlite_schema.MIGRATIONS[-1].version
