"""The PostgreSQL backend: one repository shared by a team or a CI fleet.

psycopg 3 is imported only when a ``postgresql://`` URL is opened, so the
SQLite commands and ``proctor --help`` never pay for it.

How it differs from SQLite, and why:

* Results and attachments are loaded with ``COPY`` (several times faster than
  row inserts): a result's key is its run and its position in the run.
* Many writers work at once. Each batch takes row locks in one global order
  (tables in the order of ``sqlwrite``, rows sorted), so writers queue instead
  of deadlocking; a deadlock or serialization failure that happens anyway is
  retried with the whole batch, which was rolled back.
* Writers lock the blobs they link to (``FOR SHARE``) and garbage collection
  locks the table, so a blob is never removed under a result being stored.
* Reads run in ``REPEATABLE READ`` transactions: ``last`` shows one consistent
  moment of a run still being written.
* The schema lives in the connection's ``search_path``; point two projects at
  two schemas with ``?options=-csearch_path%3Dname`` in the URL.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from proctor.store.errors import RepositoryNotFound, StoreError, StoreUnavailable
from proctor.store.migrations import check_version, pending
from proctor.store.model import RunInfo
from proctor.store.postgres_schema import MIGRATIONS
from proctor.store.sql import SqlStore
from proctor.store.sqlwrite import STATS_COLUMNS, STATS_CONFLICT, STATS_SELECT, STATS_WHERE

__all__ = ["PostgresStore"]

_MIGRATION_LOCK = 0x70726F63  # "proc": the advisory lock taken while migrating
_TABLES = (
    "schema_migrations",
    "tests",
    "tagsets",
    "runs",
    "results",
    "blobs",
    "attachments",
    "failing",
    "run_properties",
    "test_stats",
)


def _int4(value: int) -> int:
    """An unsigned 32-bit number as the signed one with the same bits (a lock key)."""
    return value - (1 << 32) if value >= 1 << 31 else value


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


class PostgresStore(SqlStore):
    """A repository in a PostgreSQL database (the connection's current schema)."""

    backend = "postgresql"
    _for_share = " FOR SHARE"
    _for_update = " FOR UPDATE"
    _hashed_keys = True
    # LATERAL makes the probe of results(run, test) per run the only plan: with
    # a plain join the planner may walk the whole index backwards instead.
    _by_test = (
        "runs u CROSS JOIN LATERAL (SELECT r.* FROM results r WHERE r.run = u.id AND r.test = ?) r"
    )

    def __init__(self, url: str, *, create: bool = True, connect_timeout: int = 10) -> None:
        self._url = url
        self._connect_timeout = connect_timeout
        self._queries: dict[str, str] = {}
        self._runs_table: int | None = None
        super().__init__(redact(url))
        try:
            self.schema_version = self._migrate(create)
        except BaseException:
            self._conn.close()
            raise

    # -- connections and transactions

    def _connect(self) -> Any:
        import psycopg

        extra: dict[str, Any] = {}
        if "connect_timeout" not in self._url:
            extra["connect_timeout"] = self._connect_timeout
        try:
            conn = psycopg.connect(self._url, autocommit=True, **extra)
        except psycopg.Error as error:
            detail = (
                str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            )
            raise StoreUnavailable(
                f"cannot connect to the repository at {self.location}: {detail}. "
                "Check the URL (--repository or [tool.proctor] repository) and that the "
                "server is running and accepts this user."
            ) from None
        # A server crash may lose the last batches acknowledged, never corrupt
        # anything: the same trade as SQLite's synchronous=NORMAL.
        conn.execute("SET synchronous_commit = off")
        return conn

    @contextmanager
    def _transaction(self, conn: Any) -> Iterator[Any]:
        with conn.transaction():
            yield conn.cursor()

    @contextmanager
    def _snapshot(self) -> Iterator[Any]:
        import psycopg

        try:
            with self._conn.transaction():
                cur = self._conn.cursor()
                cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                yield cur
        except psycopg.Error as error:
            raise self._translate(error) from None

    def _retryable(self, error: Exception) -> bool:
        from psycopg import errors

        return isinstance(error, (errors.DeadlockDetected, errors.SerializationFailure))

    def _translate(self, error: Exception) -> Exception:
        import psycopg

        if isinstance(error, StoreError) or not isinstance(error, psycopg.Error):
            return error
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        # SQLSTATE class 08 is "connection exception"; a connection that broke
        # under the driver has no SQLSTATE at all.
        state = getattr(error, "sqlstate", None)
        if (state or "").startswith("08") or (
            state is None and isinstance(error, psycopg.OperationalError)
        ):
            return StoreUnavailable(
                f"lost the connection to the repository at {self.location}: {detail}"
            )
        return StoreUnavailable(f"the repository at {self.location} refused a query: {detail}")

    # -- schema

    def _current_version(self, cur: Any) -> int:
        # pg_tables through the statement's snapshot: to_regclass() goes through
        # the session's catalog cache, which can still say "no such table"
        # after another session has created it.
        cur.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables "
            "WHERE schemaname = current_schema() AND tablename = 'schema_migrations')"
        )
        if not cur.fetchone()[0]:
            return 0
        cur.execute("SELECT max(version) FROM schema_migrations")
        return int(cur.fetchone()[0] or 0)

    def _migrate(self, create: bool) -> int:
        import psycopg

        conn = self._conn
        try:
            cur = conn.cursor()
            current = self._current_version(cur)
            check_version(current, MIGRATIONS, self.location)
            if not pending(current, MIGRATIONS):
                return current
            if current == 0 and not create:
                raise RepositoryNotFound(
                    f"there is no repository at {self.location} yet: nothing has been stored. "
                    "Run your tests with `proctor run`, or store a stream with `proctor load`."
                )
            if current == 0 and cur.execute("SELECT current_schema()").fetchone()[0] is None:
                raise StoreUnavailable(
                    f"no schema of the search path of {self.location} exists, so there is "
                    "nowhere to create the repository: create the schema (CREATE SCHEMA name) "
                    "or name an existing one with ?options=-csearch_path%3Dname in the URL"
                )
            # A session lock, taken before the transaction begins: the
            # transaction then starts after whoever held it committed, and
            # sees every table it created.
            cur.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
            try:
                with self._transaction(conn) as cur:
                    current = self._current_version(cur)
                    check_version(current, MIGRATIONS, self.location)
                    for migration in pending(current, MIGRATIONS):
                        for statement in migration.statements:
                            cur.execute(statement)
                        cur.execute(
                            "INSERT INTO schema_migrations (version, applied_ns, description) "
                            "VALUES (%s, %s, %s)",
                            (migration.version, time.time_ns(), migration.description),
                        )
                        current = migration.version
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
        except psycopg.Error as error:
            raise self._translate(error) from None
        return current

    # -- dialect

    def _q(self, sql: str) -> str:
        query = self._queries.get(sql)
        if query is None:
            query = self._queries[sql] = sql.replace("%", "%%").replace("?", "%s")
        return query

    def _fetch_in(
        self, cur: Any, sql: str, values: Sequence[object], params: Sequence[object] = ()
    ) -> list[Any]:
        if not values:
            return []
        cur.execute(self._q(sql.replace("IN ({})", "= ANY(?)")), (*params, list(values)))
        rows: list[Any] = cur.fetchall()
        return rows

    def _insert_run(self, cur: Any, columns: Sequence[str], values: Sequence[object]) -> int:
        marks = ", ".join(["%s"] * len(columns))
        cur.execute(
            f"INSERT INTO runs ({', '.join(columns)}) VALUES ({marks}) RETURNING id", values
        )
        run_id: int = cur.fetchone()[0]
        return run_id

    def _bulk_insert(
        self, cur: Any, table: str, columns: Sequence[str], rows: list[tuple[object, ...]]
    ) -> None:
        with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def _update_stats(self, cur: Any, run_id: int, first: int, last: int, rounds: int) -> None:
        # One statement may not update a row twice, so a test's second result
        # in the batch goes in a second statement ("round"), and so on. Rows are
        # taken in test order within a round: the lock order of every writer.
        batch = f"run = %s AND seq >= %s AND seq <= %s AND {STATS_WHERE}"
        params: tuple[int, ...]
        for round_ in range(1, rounds + 1):
            if rounds == 1:
                source, params = f"results WHERE {batch}", (run_id, first, last)
            else:
                source = (
                    "(SELECT *, row_number() OVER (PARTITION BY test ORDER BY seq) AS round "
                    f"FROM results WHERE {batch}) numbered WHERE round = %s"
                )
                params = (run_id, first, last, round_)
            cur.execute(
                f"INSERT INTO test_stats ({STATS_COLUMNS}) {STATS_SELECT} FROM {source} "
                "ORDER BY test" + STATS_CONFLICT,
                params,
            )

    def _lock_blobs(self, cur: Any) -> None:
        cur.execute("LOCK TABLE blobs IN EXCLUSIVE MODE")

    def _reclaim_space(self, vacuum: bool) -> int:
        # PostgreSQL reuses the space of deleted rows (autovacuum marks it);
        # giving it back to the system (VACUUM FULL) would lock every table
        # against the writers of a shared repository, so that is left to its
        # administrators.
        if vacuum:
            self._conn.execute(f"VACUUM (ANALYZE) {', '.join(_TABLES)}")
        return 0

    # A writer holds a session-level advisory lock keyed (runs table, run id)
    # for as long as its connection lives: the server drops it when the writer
    # finishes, dies or loses its connection, and every host sees it.

    def _runs_oid(self, cur: Any) -> int:
        """The oid of this schema's ``runs`` table: the first key of the
        writers' locks, so that schemas sharing a database never mix them."""
        if self._runs_table is None:
            cur.execute("SELECT 'runs'::regclass::oid::bigint")
            self._runs_table = int(cur.fetchone()[0])
        return self._runs_table

    def _claim_run(self, cur: Any, run_id: int) -> None:
        oid = self._runs_oid(cur)
        cur.execute("SELECT pg_advisory_lock(%s, %s)", (_int4(oid), _int4(run_id & 0xFFFFFFFF)))

    def writers_alive(self, runs: Iterable[RunInfo]) -> dict[int, bool | None]:
        unfinished = [info.id for info in runs if not info.finished]
        if not unfinished:
            return {}
        with self._snapshot() as cur:
            oid = self._runs_oid(cur)
            cur.execute(
                "SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' "
                "AND objsubid = 2 AND granted AND classid::bigint = %s "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                (oid,),
            )
            held = {row[0] for row in cur.fetchall()}
        return {run_id: (run_id & 0xFFFFFFFF) in held for run_id in unfinished}

    def _size_bytes(self) -> int:
        with self._snapshot() as cur:
            cur.execute(
                "SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname = ANY(%s)",
                (list(_TABLES),),
            )
            return int(cur.fetchone()[0])

    def _contains(self, column: str) -> str:
        return f"strpos({column}, ?) > 0"
