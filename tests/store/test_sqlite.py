"""What only the SQLite backend does: where the file lives, how it is opened, what it refuses."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from proctor.store import RepositoryNotFound, SchemaTooNew, StoreUnavailable, open_store
from proctor.store.opening import sqlite_path
from proctor.store.sql.sqlite import DEFAULT_FILE, SQLiteStore
from proctor.store.sql.sqlite_schema import MIGRATIONS
from proctor.wire.event import Status
from proctor.wire.record import Attachment

from .factory import record


def test_a_directory_url_holds_the_database_file(tmp_path: Path) -> None:
    with open_store(str(tmp_path / ".proctor")) as store:
        store.write_run([record("a")])
    assert (tmp_path / ".proctor" / DEFAULT_FILE).is_file()
    assert sqlite_path(str(tmp_path / ".proctor")) == tmp_path / ".proctor" / DEFAULT_FILE
    assert sqlite_path(f"sqlite://{tmp_path}/x.db") == tmp_path / "x.db"
    with open_store(f"file://{tmp_path}/other.sqlite") as other:
        assert other.location == str(tmp_path / "other.sqlite")


def test_a_new_repository_uses_wal_and_the_latest_schema(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "r.sqlite")
    assert store.schema_version == MIGRATIONS[-1].version
    store.close()
    conn = sqlite3.connect(tmp_path / "r.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
    versions = [row[0] for row in conn.execute("SELECT version FROM schema_migrations")]
    assert versions == [m.version for m in MIGRATIONS]
    conn.close()


def test_reading_a_missing_repository_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(RepositoryNotFound, match="nothing has been stored") as caught:
        open_store(str(tmp_path / ".proctor"), create=False)
    assert "proctor run" in str(caught.value)
    assert not (tmp_path / ".proctor").exists()


def test_a_file_that_is_not_a_database_is_refused_with_advice(tmp_path: Path) -> None:
    bogus = tmp_path / "repository.sqlite"
    bogus.write_bytes(b"this is not sqlite, it is a text file\n" * 100)
    with pytest.raises(StoreUnavailable, match="not a readable Proctor repository") as caught:
        open_store(str(tmp_path))
    assert "move it aside" in str(caught.value)
    assert bogus.read_bytes().startswith(b"this is not sqlite")


def _other_application(path: Path, table: str = "users") -> bytes:
    conn = sqlite3.connect(path)
    conn.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, version TEXT)")
    conn.execute(f"INSERT INTO {table} (version) VALUES ('20240101000000')")
    conn.commit()
    conn.close()
    return path.read_bytes()


@pytest.mark.parametrize("table", ["users", "schema_migrations"])
@pytest.mark.parametrize("create", [False, True])
def test_another_applications_database_is_left_untouched(
    tmp_path: Path, table: str, create: bool
) -> None:
    path = tmp_path / "app.db"
    before = _other_application(path, table)
    with pytest.raises(StoreUnavailable, match=rf"SQLite database of something else .*{table}"):
        open_store(str(path), create=create)
    assert path.read_bytes() == before
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()


def test_an_empty_file_is_a_repository_only_once_something_is_stored(tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite"
    path.touch()
    with pytest.raises(RepositoryNotFound, match="nothing has been stored"):
        open_store(str(path), create=False)
    assert path.read_bytes() == b""
    with open_store(str(path)) as store:
        store.write_run([record("a")])
    with open_store(str(path), create=False) as again:
        assert again.stats().runs == 1


def test_an_unknown_url_scheme_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match=r"SQLite .* or PostgreSQL"):
        open_store("mysql://localhost/x")


def test_a_repository_from_a_newer_proctor_is_refused(tmp_path: Path) -> None:
    open_store(str(tmp_path)).close()
    conn = sqlite3.connect(tmp_path / DEFAULT_FILE)
    conn.execute("INSERT INTO schema_migrations VALUES (99, 0, 'from the future')")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaTooNew, match=r"schema version 99.*Upgrade Proctor"):
        open_store(str(tmp_path))


def test_a_locked_repository_times_out_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    SQLiteStore(path).close()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        store = SQLiteStore(path, timeout=0.1)
        with pytest.raises(StoreUnavailable, match="locked by another process"):
            store.write_run([record("a")])
        store.close()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


def _heavy_runs(path: Path, count: int) -> list[int]:
    """Runs each holding 300 KB of incompressible attachment content."""
    import random

    rng = random.Random(3)
    with SQLiteStore(path) as store:
        return [
            store.write_run(
                [record("t.a", Status.FAIL, attachments=(Attachment("b", rng.randbytes(300_000)),))]
            ).id
            for _ in range(count)
        ]


def _file_size(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def test_garbage_collection_gives_the_space_back_to_the_disk(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    ids = _heavy_runs(path, 6)
    before = _file_size(path)
    with SQLiteStore(path) as store:
        store.remove_runs(ids[:-1])
        report = store.collect_garbage()
    assert report.blobs == 5
    assert _file_size(path) < before - 1_400_000
    assert report.freed_bytes >= 1_400_000
    assert report.size_bytes == _file_size(path)
    assert report.reusable_bytes < 100_000


def test_an_older_repository_gives_its_space_back_once_vacuumed(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    ids = _heavy_runs(path, 6)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA auto_vacuum = NONE")  # as repositories were made before
    conn.execute("VACUUM")
    conn.close()
    with SQLiteStore(path) as store:
        store.remove_runs(ids[:-1])
        kept = store.collect_garbage()
        assert kept.size_bytes >= 1_700_000  # 300 KB of it are still in use
        assert kept.reusable_bytes >= 1_400_000
        vacuumed = store.collect_garbage(vacuum=True)
        assert vacuumed.freed_bytes >= 1_400_000
        assert store.stats().runs == 1
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # and from now on, gc does
    conn.close()


def test_a_process_that_leaves_its_connection_to_the_exit_loses_nothing(tmp_path: Path) -> None:
    """What the console scripts do (close_at_exit, then os._exit): no checkpoint
    on the way out, and still every run is there, for readers and later writers."""
    import subprocess
    import sys

    url = str(tmp_path / ".proctor")
    child = (
        "import os, sys\n"
        "from proctor.store import open_store\n"
        "from tests.store.factory import record\n"
        "store = open_store(sys.argv[1])\n"
        "store.write_run([record(f't{i}') for i in range(int(sys.argv[2]))])\n"
        "store.close_at_exit()\n"
        "os._exit(0)\n"
    )
    root = Path(__file__).resolve().parents[2]
    for count in (300, 5):
        done = subprocess.run(
            [sys.executable, "-c", child, url, str(count)], cwd=root, capture_output=True
        )
        assert done.returncode == 0, done.stderr
    path = tmp_path / ".proctor" / DEFAULT_FILE
    assert Path(f"{path}-wal").stat().st_size > 0  # the log was left, not folded in
    with open_store(url, create=False) as store:
        assert [info.counts.total for info in store.runs()] == [5, 300]
        store.write_run([record("after")])
        assert len(store.runs()) == 3
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
