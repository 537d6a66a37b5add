"""``in_transaction``: the one retrying write transaction of the SQL store."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from proctor.store import StoreError, StoreUnavailable, UnknownRun
from proctor.store.sql.postgres import PostgresDialect
from proctor.store.sql.sqlite import SQLiteDialect
from proctor.store.sql.transaction import ATTEMPTS, backoff, in_transaction


def _busy_snapshot() -> sqlite3.OperationalError:
    """The error SQLite returns at once (no busy wait) when a snapshot went stale."""
    error = sqlite3.OperationalError("database is locked")
    error.sqlite_errorname = "SQLITE_BUSY_SNAPSHOT"
    return error


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[tuple[SQLiteDialect, Any]]:
    dialect = SQLiteDialect(tmp_path / "t.sqlite", timeout=0.1)
    conn = dialect.connect()
    conn.execute("CREATE TABLE t (v INTEGER)")
    yield dialect, conn
    conn.close()


def _rows(conn: Any) -> list[int]:
    return [row[0] for row in conn.execute("SELECT v FROM t ORDER BY v")]


def test_a_transient_failure_is_rolled_back_and_the_work_run_again(
    sqlite: tuple[SQLiteDialect, Any],
) -> None:
    dialect, conn = sqlite
    calls: list[int] = []
    pauses: list[float] = []

    def work(cur: Any) -> str:
        calls.append(1)
        cur.execute("INSERT INTO t VALUES (?)", (len(calls),))
        if len(calls) < 3:
            raise _busy_snapshot()
        return "done"

    assert in_transaction(conn, dialect, work, sleep=pauses.append) == "done"
    assert len(calls) == 3
    assert _rows(conn) == [3]  # the failed attempts left nothing behind
    assert len(pauses) == 2
    for attempt, pause in enumerate(pauses, 1):
        assert 0.5 * 0.005 * 2**attempt <= pause <= 1.5 * 0.005 * 2**attempt


def test_a_transient_failure_that_persists_is_reported_after_the_last_attempt(
    sqlite: tuple[SQLiteDialect, Any],
) -> None:
    dialect, conn = sqlite
    calls: list[int] = []

    def work(cur: Any) -> None:
        calls.append(1)
        raise _busy_snapshot()

    pauses: list[float] = []
    with pytest.raises(StoreUnavailable, match="stayed locked by another process"):
        in_transaction(conn, dialect, work, sleep=pauses.append)
    assert len(calls) == ATTEMPTS
    assert len(pauses) == ATTEMPTS - 1


def test_other_errors_are_translated_and_not_retried(sqlite: tuple[SQLiteDialect, Any]) -> None:
    dialect, conn = sqlite
    calls: list[int] = []

    def work(cur: Any) -> None:
        calls.append(1)
        cur.execute("INSERT INTO t VALUES (1)")
        cur.execute("INSERT INTO nowhere VALUES (1)")

    with pytest.raises(StoreUnavailable, match="no such table: nowhere"):
        in_transaction(conn, dialect, work, sleep=pytest.fail)
    assert len(calls) == 1
    assert _rows(conn) == []


def test_a_store_error_of_the_work_comes_out_as_it_is(sqlite: tuple[SQLiteDialect, Any]) -> None:
    dialect, conn = sqlite
    refused = UnknownRun("there is no run 7")

    def work(cur: Any) -> None:
        cur.execute("INSERT INTO t VALUES (1)")
        raise refused

    with pytest.raises(StoreError) as caught:
        in_transaction(conn, dialect, work, sleep=pytest.fail)
    assert caught.value is refused
    assert _rows(conn) == []


def test_plain_busy_after_the_timeout_is_not_retried(tmp_path: Path) -> None:
    # SQLite already waited out its busy timeout: waiting again would only
    # multiply the wait.
    dialect = SQLiteDialect(tmp_path / "t.sqlite", timeout=0.05)
    conn = dialect.connect()
    blocker = dialect.connect()
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreUnavailable, match="stayed locked"):
            in_transaction(conn, dialect, lambda cur: None, sleep=pytest.fail)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        conn.close()


def test_backoff_grows_and_is_capped() -> None:
    for attempt in range(1, 12):
        base = min(0.005 * 2**attempt, 0.5)
        assert 0.5 * base <= backoff(attempt) <= 1.5 * base


@pytest.mark.postgres
def test_a_real_deadlock_is_retried_and_both_writers_succeed(postgres_url: str) -> None:
    dialect = PostgresDialect(postgres_url)
    setup = dialect.connect()
    setup.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)")
    setup.execute("INSERT INTO t VALUES (1, 0), (2, 0)")
    both_locked_one = threading.Barrier(2, timeout=30)
    attempts: list[str] = []
    failures: list[BaseException] = []

    def writer(name: str, first: int, second: int) -> None:
        conn = dialect.connect()

        def work(cur: Any) -> None:
            attempts.append(name)
            cur.execute("UPDATE t SET v = v + 1 WHERE id = %s", (first,))
            if attempts.count(name) == 1:
                both_locked_one.wait()  # each holds one row and wants the other's
            cur.execute("UPDATE t SET v = v + 1 WHERE id = %s", (second,))

        try:
            in_transaction(conn, dialect, work)
        except BaseException as error:  # reported by the main thread
            failures.append(error)
        finally:
            conn.close()

    threads = [
        threading.Thread(target=writer, args=("a", 1, 2)),
        threading.Thread(target=writer, args=("b", 2, 1)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    assert sorted(attempts) in (["a", "a", "b"], ["a", "b", "b"])  # one was the victim
    assert setup.execute("SELECT id, v FROM t ORDER BY id").fetchall() == [(1, 2), (2, 2)]
    setup.close()
