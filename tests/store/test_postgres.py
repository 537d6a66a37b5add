"""What only the PostgreSQL backend does: concurrent sessions racing on one run."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from proctor.store import RunMetadata, open_store, sqlwrite
from proctor.store.postgres import PostgresStore

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
        with store._transaction(writer._conn) as cur:  # type: ignore[attr-defined]
            sqlwrite._write(store, cur, writer.run_id, [failure("t.fails")])
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
