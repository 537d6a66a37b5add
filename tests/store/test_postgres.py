"""What only the PostgreSQL backend does: concurrent sessions racing on one run,
processes racing to create one schema."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from proctor.store import RunMetadata, open_store
from proctor.store.sql import postgres_schema
from proctor.store.sql import write as sqlwrite
from proctor.store.sql.postgres import PostgresStore

from .conftest import PostgresSchemas
from .factory import failure, record

pytestmark = pytest.mark.postgres


def _wait_until_blocked(admin: Any, pid: int) -> None:
    """Until the session ``pid`` waits for a lock (it has met the writer's)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        row = admin.execute(
            "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)
        ).fetchone()
        if row is not None and row[0] == "Lock":
            return
        time.sleep(0.01)
    pytest.fail(f"session {pid} never waited for the writer's lock")


def _rows(admin: Any, schema: str, table: str) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = admin.execute(f'SELECT * FROM "{schema}".{table}').fetchall()
    return rows


def test_removing_a_run_waits_for_the_batch_being_written(postgres_url: str) -> None:
    import psycopg

    schema = postgres_url.rsplit("%3D", 1)[1]
    store = open_store(postgres_url)
    assert isinstance(store, PostgresStore)
    writer = store.begin_run(RunMetadata())
    writer.add(record("t.first"))
    writer.flush()
    remover = open_store(postgres_url)
    assert isinstance(remover, PostgresStore)
    removed: list[int] = []
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        # A batch held open in its transaction while another session removes the run.
        with store.dialect.transaction(writer._conn) as cur:  # type: ignore[attr-defined]
            path = sqlwrite.WritePath(store.dialect, store.interned, store.location)
            sqlwrite.write_in(path, cur, writer.run_id, [failure("t.fails")], store.signer)
            thread = threading.Thread(
                target=lambda: removed.extend(remover.remove_runs([writer.run_id]))
            )
            thread.start()
            _wait_until_blocked(admin, remover._conn.info.backend_pid)
        thread.join()
        assert removed == [writer.run_id]
        for table in ("runs", "results", "attachments", "failing", "test_stats"):
            assert _rows(admin, schema, table) == [], table
    assert remover.collect_garbage().blobs == 1  # the batch's traceback is collectable
    assert writer.interrupt() is None  # its run is gone: nothing to finish
    remover.close()
    store.close()


OPENER = """
import sys
from proctor.store.sql.postgres import PostgresStore
print("ready", flush=True)
sys.stdin.readline()
PostgresStore(sys.argv[1]).close()
print("opened", flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(3))
def test_processes_opening_a_new_schema_at_once_create_it_once(
    postgres_schemas: PostgresSchemas, trial: int
) -> None:
    import psycopg

    url = postgres_schemas.new_url()
    children = [
        subprocess.Popen(
            [sys.executable, "-c", OPENER, url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        for child in children:  # every one connected and waiting...
            assert child.stdout is not None
            assert child.stdout.readline() == "ready\n"
        for child in children:  # ...then all at once
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        for child in children:
            out, err = child.communicate(timeout=120)
            assert child.returncode == 0, err
            assert out == "opened\n"
        with psycopg.connect(url) as conn:
            versions = [row[0] for row in conn.execute("SELECT version FROM schema_migrations")]
        assert sorted(versions) == [m.version for m in postgres_schema.MIGRATIONS]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.communicate()
        postgres_schemas.drop(url)


def test_a_search_path_naming_no_schema_is_explained(postgres_schemas: PostgresSchemas) -> None:
    from proctor.store import StoreUnavailable

    url = postgres_schemas.new_url()
    postgres_schemas.drop(url)
    with pytest.raises(StoreUnavailable, match=r"CREATE SCHEMA"):
        open_store(url)


def test_only_connection_errors_are_reported_as_a_lost_connection(postgres_url: str) -> None:
    from psycopg import OperationalError, errors

    with open_store(postgres_url) as store:
        assert isinstance(store, PostgresStore)
        too_big = store.dialect.translate(
            errors.ProgramLimitExceeded("index row requires 10688 bytes")
        )
        assert "refused a query: index row requires 10688 bytes" in str(too_big)
        cut = store.dialect.translate(errors.ConnectionFailure("server closed the connection"))
        assert "lost the connection" in str(cut)
        broken = store.dialect.translate(OperationalError("consuming input failed"))
        assert "lost the connection" in str(broken)
