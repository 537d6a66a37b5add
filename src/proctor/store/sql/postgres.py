"""The PostgreSQL backend: one repository shared by a team or a CI fleet.

psycopg 3 is imported only when a ``postgresql://`` URL is opened, so the
SQLite commands and ``proctor --help`` never pay for it.

How it differs from SQLite, and why:

* Results and attachments are loaded with ``COPY`` (several times faster than
  row inserts): a result's key is its run and its position in the run.
* Many writers work at once. Each batch takes row locks in one global order
  (tables in the order of ``write``, rows sorted), so writers queue instead
  of deadlocking; a deadlock or serialization failure that happens anyway is
  retried with the whole batch, which was rolled back.
* Writers lock the blobs they link to (``FOR SHARE``) and garbage collection
  locks the table, so a blob is never removed under a result being stored.
* Reads run in ``REPEATABLE READ`` transactions: ``last`` shows one consistent
  moment of a run still being written.
* The schema lives in the connection's ``search_path``; point two projects at
  two schemas with ``?options=-csearch_path%3Dname`` in the URL.
* Read-only (``open_store(url, read_only=True)``): every session sets
  ``default_transaction_read_only``, so the server refuses every write;
  nothing is created or upgraded.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from proctor.store.blobs import digest
from proctor.store.errors import RepositoryNotFound, StoreError, StoreUnavailable
from proctor.store.model import RunInfo
from proctor.store.sql.migrations import check_version, pending
from proctor.store.sql.postgres_schema import MIGRATIONS
from proctor.store.sql.store import SqlStore
from proctor.store.sql.transaction import in_transaction
from proctor.store.sql.write import STATS_COLUMNS, STATS_CONFLICT, STATS_SELECT, STATS_WHERE

__all__ = ["PostgresDialect", "PostgresStore", "redact"]

_MIGRATION_LOCK = 0x70726F63  # "proc": the advisory lock taken while migrating
_READ_ONLY = "25006"  # SQLSTATE read_only_sql_transaction
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


def _detail(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


class PostgresDialect:
    """PostgreSQL: ``%s`` placeholders, ``COPY``, row locks in a fixed order,
    advisory locks for writers and migrations."""

    name = "postgresql"
    for_share = " FOR SHARE"
    for_update = " FOR UPDATE"
    # LATERAL makes the probe of results(run, test) per run the only plan: with
    # a plain join the planner may walk the whole index backwards instead.
    by_test = (
        "runs u CROSS JOIN LATERAL (SELECT r.* FROM results r WHERE r.run = u.id AND r.test = ?) r"
    )
    test_key = "digest"
    blob_type = "BYTEA"

    def __init__(self, url: str, *, connect_timeout: int = 10, read_only: bool = False) -> None:
        self.url = url
        self.location = redact(url)
        self.connect_timeout = connect_timeout
        self.read_only = read_only
        self._queries: dict[str, str] = {}
        self._runs_table: int | None = None

    # -- connecting and opening

    def connect(self) -> Any:
        import psycopg

        extra: dict[str, Any] = {}
        if "connect_timeout" not in self.url:
            extra["connect_timeout"] = self.connect_timeout
        try:
            conn = psycopg.connect(self.url, autocommit=True, **extra)
        except psycopg.Error as error:
            raise StoreUnavailable(
                f"cannot connect to the repository at {self.location}: {_detail(error)}. "
                "Check the URL (--repository or [tool.proctor] repository) and that the "
                "server is running and accepts this user."
            ) from None
        # A server crash may lose the last batches acknowledged, never corrupt
        # anything: the same trade as SQLite's synchronous=NORMAL.
        conn.execute("SET synchronous_commit = off")
        if self.read_only:
            conn.execute("SET default_transaction_read_only = on")
        return conn

    def close(self, conn: Any) -> None:
        conn.close()

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

    def migrate(self, conn: Any, create: bool) -> int:
        import psycopg

        try:
            cur = conn.cursor()
            current = self._current_version(cur)
            check_version(current, MIGRATIONS, self.location)
            if not pending(current, MIGRATIONS):
                return current
            if current == 0 and (self.read_only or not create):
                raise RepositoryNotFound(
                    f"there is no repository at {self.location} yet: nothing has been stored. "
                    "Run your tests with `proctor run`, or store a stream with `proctor load`."
                )
            if self.read_only:
                raise StoreUnavailable(
                    f"the repository at {self.location} has schema version {current}, older "
                    f"than this Proctor's {MIGRATIONS[-1].version}, and was opened read-only, "
                    "so it cannot be upgraded: run any proctor command that writes to it "
                    "(proctor stats) once"
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
                return in_transaction(conn, self, self._apply_migrations)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
        except psycopg.Error as error:
            raise self.translate(error) from None

    def _apply_migrations(self, cur: Any) -> int:
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
        return current

    # -- transactions and errors

    @contextmanager
    def transaction(self, conn: Any) -> Iterator[Any]:
        with conn.transaction():
            yield conn.cursor()

    @contextmanager
    def snapshot(self, conn: Any) -> Iterator[Any]:
        import psycopg

        try:
            with conn.transaction():
                cur = conn.cursor()
                cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                yield cur
        except psycopg.Error as error:
            raise self.translate(error) from None

    def transient(self, error: Exception) -> bool:
        from psycopg import errors

        return isinstance(error, (errors.DeadlockDetected, errors.SerializationFailure))

    def translate(self, error: Exception) -> Exception:
        import psycopg

        if isinstance(error, StoreError) or not isinstance(error, psycopg.Error):
            return error
        detail = _detail(error)
        # SQLSTATE class 08 is "connection exception"; a connection that broke
        # under the driver has no SQLSTATE at all.
        state = getattr(error, "sqlstate", None)
        if (state or "").startswith("08") or (
            state is None and isinstance(error, psycopg.OperationalError)
        ):
            return StoreUnavailable(
                f"lost the connection to the repository at {self.location}: {detail}"
            )
        if state == _READ_ONLY and self.read_only:
            return StoreUnavailable(
                f"cannot write to the repository at {self.location}: it was opened "
                f"read-only ({detail})"
            )
        return StoreUnavailable(f"the repository at {self.location} refused a query: {detail}")

    # -- spelling

    def q(self, sql: str) -> str:
        query = self._queries.get(sql)
        if query is None:
            query = self._queries[sql] = sql.replace("%", "%%").replace("?", "%s")
        return query

    def key(self, text: str) -> Any:
        return digest(text.encode("utf-8"))

    def key_column(self, column: str) -> str:
        return "digest"

    def insert_keys(
        self, cur: Any, table: str, column: str, texts: Sequence[tuple[Any, str]]
    ) -> None:
        cur.executemany(
            f"INSERT INTO {table} ({column}, digest) VALUES (%s, %s) "
            "ON CONFLICT (digest) DO NOTHING",
            [(text, key) for key, text in texts],
        )

    def contains(self, column: str) -> str:
        return f"strpos({column}, ?) > 0"

    def fetch_in(
        self, cur: Any, sql: str, values: Sequence[object], params: Sequence[object] = ()
    ) -> list[Any]:
        if not values:
            return []
        cur.execute(self.q(sql.replace("IN ({})", "= ANY(?)")), (*params, list(values)))
        rows: list[Any] = cur.fetchall()
        return rows

    def insert_run(self, cur: Any, columns: Sequence[str], values: Sequence[object]) -> int:
        marks = ", ".join(["%s"] * len(columns))
        cur.execute(
            f"INSERT INTO runs ({', '.join(columns)}) VALUES ({marks}) RETURNING id", values
        )
        run_id: int = cur.fetchone()[0]
        return run_id

    def bulk_insert(
        self, cur: Any, table: str, columns: Sequence[str], rows: list[tuple[object, ...]]
    ) -> None:
        with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def update_stats(self, cur: Any, run_id: int, first: int, last: int, rounds: int) -> None:
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

    def table_exists(self, cur: Any, table: str) -> bool:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
        return bool(cur.fetchone()[0])

    def quick(self, cur: Any) -> None:
        # No JIT compilation for this transaction: its cost estimate for many
        # small index probes turns JIT on, which then takes 300 ms to compile
        # a query that runs in tens of milliseconds.
        cur.execute("SET LOCAL jit = off")

    # -- locking

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

    def claim_run(self, cur: Any, run_id: int) -> None:
        oid = self._runs_oid(cur)
        cur.execute("SELECT pg_advisory_lock(%s, %s)", (_int4(oid), _int4(run_id & 0xFFFFFFFF)))

    def writers_alive(self, conn: Any, runs: Iterable[RunInfo]) -> dict[int, bool | None]:
        """For the unfinished ``runs``: whether a session holds its writer's lock."""
        unfinished = [info.id for info in runs if not info.finished]
        if not unfinished:
            return {}
        with self.snapshot(conn) as cur:
            oid = self._runs_oid(cur)
            cur.execute(
                "SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' "
                "AND objsubid = 2 AND granted AND classid::bigint = %s "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                (oid,),
            )
            held = {row[0] for row in cur.fetchall()}
        return {run_id: (run_id & 0xFFFFFFFF) in held for run_id in unfinished}

    def lock_blobs(self, cur: Any) -> None:
        cur.execute("LOCK TABLE blobs IN EXCLUSIVE MODE")

    def serialize(self, cur: Any, key: int) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (key,))

    # -- storage

    def size_bytes(self, conn: Any) -> int:
        with self.snapshot(conn) as cur:
            cur.execute(
                "SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname = ANY(%s)",
                (list(_TABLES),),
            )
            return int(cur.fetchone()[0])

    def reclaim_space(self, conn: Any, vacuum: bool) -> int:
        # PostgreSQL reuses the space of deleted rows (autovacuum marks it);
        # giving it back to the system (VACUUM FULL) would lock every table
        # against the writers of a shared repository, so that is left to its
        # administrators.
        if vacuum:
            conn.execute(f"VACUUM (ANALYZE) {', '.join(_TABLES)}")
        return 0


class PostgresStore(SqlStore):
    """A repository in a PostgreSQL database (the connection's current schema)."""

    def __init__(
        self,
        url: str,
        *,
        create: bool = True,
        connect_timeout: int = 10,
        read_only: bool = False,
    ) -> None:
        self.postgres = PostgresDialect(url, connect_timeout=connect_timeout, read_only=read_only)
        super().__init__(self.postgres, create=create)

    def writers_alive(self, runs: Iterable[RunInfo]) -> dict[int, bool | None]:
        return self.postgres.writers_alive(self._conn, runs)
