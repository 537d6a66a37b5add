"""The SQLite backend: the default repository, one file in ``.proctor/``.

Why these settings:

* WAL journal: readers (``proctor last`` during a run) never block the writer
  and never see half a batch; a writer killed mid-transaction leaves nothing
  behind but a journal that the next opening rolls back.
* ``synchronous=NORMAL``: in WAL mode this cannot corrupt the database; a
  power cut (not a crash) may lose the last batches. Test results are cheap to
  lose and ingest speed is not, so that is the right trade.
* Writes take the lock up front (``BEGIN IMMEDIATE``) and wait up to the busy
  timeout for it, so two runs writing into one repository queue batch by
  batch instead of failing with "database is locked".
* A 64 MiB page cache per connection keeps the hot ends of the indexes in
  memory while a run is written.
* Read-only (``open_store(url, read_only=True)``): the file is opened with
  ``mode=ro``, so SQLite itself refuses every write; nothing is created or
  upgraded, and a missing file is a :class:`RepositoryNotFound`.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import quote

from proctor.store.errors import RepositoryNotFound, StoreError, StoreUnavailable
from proctor.store.sql.migrations import check_version, pending
from proctor.store.sql.sqlite_schema import MIGRATIONS
from proctor.store.sql.store import SqlStore
from proctor.store.sql.transaction import in_transaction
from proctor.store.sql.write import STATS_COLUMNS, STATS_CONFLICT, STATS_SELECT, STATS_WHERE

__all__ = ["DEFAULT_FILE", "SQLiteDialect", "SQLiteStore"]

DEFAULT_FILE = "repository.sqlite"
"""The database's name inside a repository directory such as ``.proctor/``."""
_INCREMENTAL = 2  # PRAGMA auto_vacuum's value for INCREMENTAL
_OURS = frozenset({"schema_migrations", "tests", "runs", "results"})
"""Tables every Proctor repository has (version 1 created them in one transaction)."""
_TRANSIENT = frozenset({"SQLITE_BUSY_SNAPSHOT", "SQLITE_BUSY_RECOVERY", "SQLITE_LOCKED"})
"""Lock errors SQLite returns at once, without waiting out the busy timeout."""
_NOT_FOUND = (
    "Run your tests with `proctor run`, or store a result stream with "
    "`proctor load FILE` or `proctor import .stestr`."
)


_LEFT_TO_EXIT: list[Any] = []
"""Connections :meth:`SQLiteStore.close_at_exit` leaves to the end of the process."""


class SQLiteDialect:
    """SQLite: one file, ``BEGIN IMMEDIATE`` writers, a busy timeout."""

    name = "sqlite"
    for_share = ""
    for_update = ""
    # Without statistics SQLite would rather scan every result, or each run
    # whole, than probe the (run, test) index run by run: say how.
    by_test = (
        "runs u CROSS JOIN results r INDEXED BY results_run_test ON r.run = u.id AND r.test = ?"
    )
    test_key = "test_id"
    blob_type = "BLOB"

    def __init__(self, path: Path, *, timeout: float = 60.0, read_only: bool = False) -> None:
        self.path = path
        self.location = str(path)
        self.timeout = timeout
        self.read_only = read_only

    # -- connecting and opening

    def connect(self) -> Any:
        try:
            if self.read_only:
                conn = sqlite3.connect(
                    f"file:{quote(str(self.path.absolute()))}?mode=ro",
                    uri=True,
                    timeout=self.timeout,
                    isolation_level=None,
                    check_same_thread=False,
                )
            else:
                conn = sqlite3.connect(
                    self.path,
                    timeout=self.timeout,
                    isolation_level=None,
                    check_same_thread=False,
                )
        except sqlite3.Error as error:
            raise self.translate(error) from None
        try:
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA cache_size = -65536")
        except sqlite3.Error as error:  # not a database, say: nothing to keep open
            conn.close()
            raise self.translate(error) from None
        return conn

    def close(self, conn: Any) -> None:
        conn.close()

    def _current_version(self, conn: Any) -> int:
        """The schema version; 0 for an empty database. A database holding
        anything but a Proctor repository is refused, whatever its tables are
        called (another tool may have a ``schema_migrations`` too), so that no
        command ever adds Proctor's tables to it or switches its journal."""
        try:
            names = {
                row[0]
                for row in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
                    "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
                )
            }
            if not names:
                return 0
            if names >= _OURS:
                version = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]
                if isinstance(version, int):
                    return version
        except sqlite3.Error as error:
            raise self.translate(error) from None
        shown = ", ".join(sorted(names)[:5]) + (", ..." if len(names) > 5 else "")
        raise StoreUnavailable(
            f"{self.path} is an SQLite database of something else (it holds {shown}), "
            "not a Proctor repository; Proctor leaves it untouched. Point --repository "
            "at a Proctor repository, or at a new file or directory to start one."
        )

    def migrate(self, conn: Any, create: bool) -> int:
        current = self._current_version(conn)
        check_version(current, MIGRATIONS, str(self.path))
        if not pending(current, MIGRATIONS):
            return current
        if current == 0 and (self.read_only or not create):
            raise RepositoryNotFound(
                f"there is no repository at {self.path} yet (the file is empty): nothing has "
                f"been stored. {_NOT_FOUND}"
            )
        if self.read_only:
            raise StoreUnavailable(
                f"{self.path} has schema version {current}, older than this Proctor's "
                f"{MIGRATIONS[-1].version}, and was opened read-only, so it cannot be "
                "upgraded: run any proctor command that writes to it (proctor stats) once"
            )
        try:
            if current == 0:
                # Before the first table: free pages can then be cut off the
                # file after a gc (see reclaim_space).
                conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
                conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.Error as error:
            raise self.translate(error) from None
        return in_transaction(conn, self, _apply_migrations)

    # -- transactions and errors

    @contextmanager
    def transaction(self, conn: Any) -> Iterator[Any]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn.cursor()
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def snapshot(self, conn: Any) -> Iterator[Any]:
        try:
            conn.execute("BEGIN")
            try:
                yield conn.cursor()
            finally:
                conn.execute("COMMIT")
        except sqlite3.Error as error:
            raise self.translate(error) from None

    def transient(self, error: Exception) -> bool:
        # Plain SQLITE_BUSY comes after the connection waited out its busy
        # timeout: trying again would only multiply the wait.
        name = getattr(error, "sqlite_errorname", "")
        return isinstance(error, sqlite3.Error) and name.startswith(tuple(_TRANSIENT))

    def translate(self, error: Exception) -> Exception:
        if isinstance(error, StoreError) or not isinstance(error, sqlite3.Error):
            return error
        message = str(error)
        if "locked" in message or "busy" in message:
            return StoreUnavailable(
                f"{self.path} stayed locked by another process for {self.timeout:.0f} s; "
                "wait for the other proctor command to finish and try again"
            )
        if "not a database" in message or "malformed" in message:
            return StoreUnavailable(
                f"{self.path} is not a readable Proctor repository ({message}); move it "
                "aside and run again to start a new one, or point --repository elsewhere"
            )
        if self.read_only and ("readonly" in message or "read-only" in message):
            return StoreUnavailable(
                f"cannot write to {self.path}: the repository was opened read-only ({message})"
            )
        if "readonly" in message or "read-only" in message:
            return StoreUnavailable(
                f"cannot write to {self.path}: the file, or the directory it is in, is "
                f"read-only ({message}); make both writable, or point --repository elsewhere"
            )
        if "full" in message:
            return StoreUnavailable(f"cannot write to {self.path}: the disk is full ({message})")
        return StoreUnavailable(f"{self.path}: {message}")

    # -- spelling

    def q(self, sql: str) -> str:
        return sql

    def key(self, text: str) -> Any:
        return text

    def key_column(self, column: str) -> str:
        return column

    def insert_keys(
        self, cur: Any, table: str, column: str, texts: Sequence[tuple[Any, str]]
    ) -> None:
        cur.executemany(
            f"INSERT INTO {table} ({column}) VALUES (?) ON CONFLICT ({column}) DO NOTHING",
            [(text,) for _, text in texts],
        )

    def contains(self, column: str) -> str:
        return f"instr({column}, ?) > 0"

    def fetch_in(
        self, cur: Any, sql: str, values: Sequence[object], params: Sequence[object] = ()
    ) -> list[Any]:
        rows: list[Any] = []
        for start in range(0, len(values), 500):
            chunk = values[start : start + 500]
            cur.execute(sql.format(", ".join("?" * len(chunk))), [*params, *chunk])
            rows.extend(cur.fetchall())
        return rows

    def insert_run(self, cur: Any, columns: Sequence[str], values: Sequence[object]) -> int:
        marks = ", ".join("?" * len(columns))
        cur.execute(f"INSERT INTO runs ({', '.join(columns)}) VALUES ({marks})", values)
        run_id: int = cur.lastrowid
        return run_id

    def bulk_insert(
        self, cur: Any, table: str, columns: Sequence[str], rows: list[tuple[object, ...]]
    ) -> None:
        marks = ", ".join("?" * len(columns))
        cur.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)

    def update_stats(self, cur: Any, run_id: int, first: int, last: int, rounds: int) -> None:
        # SQLite applies the upsert row by row in result order: no rounds needed.
        cur.execute(
            f"INSERT INTO test_stats ({STATS_COLUMNS}) {STATS_SELECT} FROM results "
            f"WHERE run = ? AND seq >= ? AND seq <= ? AND {STATS_WHERE} ORDER BY seq"
            + STATS_CONFLICT,
            (run_id, first, last),
        )

    def table_exists(self, cur: Any, table: str) -> bool:
        cur.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        )
        return bool(cur.fetchone()[0])

    def quick(self, cur: Any) -> None:
        pass

    # -- locking: BEGIN IMMEDIATE serialises every writer already

    def claim_run(self, cur: Any, run_id: int) -> None:
        pass

    def lock_blobs(self, cur: Any) -> None:
        pass

    def serialize(self, cur: Any, key: int) -> None:
        pass

    # -- storage

    def size_bytes(self, conn: Any) -> int:
        total = 0
        for suffix in ("", "-wal"):
            with suppress(OSError):
                total += os.stat(f"{self.path}{suffix}").st_size
        return total

    def reclaim_space(self, conn: Any, vacuum: bool) -> int:
        if vacuum:
            # Also what turns on incremental auto-vacuum for a repository
            # created before it was the default (it takes effect with VACUUM).
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            conn.execute("VACUUM")
        elif conn.execute("PRAGMA auto_vacuum").fetchone()[0] == _INCREMENTAL:
            # executescript steps the pragma to its end; execute() would free
            # one page.
            conn.executescript("PRAGMA incremental_vacuum;")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        free: int = conn.execute("PRAGMA freelist_count").fetchone()[0]
        page: int = conn.execute("PRAGMA page_size").fetchone()[0]
        return free * page


def _apply_migrations(cur: Any) -> int:
    """Apply the migrations pending in the transaction on ``cur``; the version reached."""
    current = 0
    cur.execute("SELECT name FROM sqlite_master WHERE name = 'schema_migrations'")
    if cur.fetchone() is not None:  # another process may have got here first
        cur.execute("SELECT max(version) FROM schema_migrations")
        current = int(cur.fetchone()[0] or 0)
    for migration in pending(current, MIGRATIONS):
        for statement in migration.statements:
            cur.execute(statement)
        cur.execute(
            "INSERT INTO schema_migrations (version, applied_ns, description) VALUES (?, ?, ?)",
            (migration.version, time.time_ns(), migration.description),
        )
        current = migration.version
    return current


class SQLiteStore(SqlStore):
    """A repository in one SQLite file."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool = True,
        timeout: float = 60.0,
        read_only: bool = False,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            if self.path.exists():
                raise StoreUnavailable(
                    f"{self.path} is a directory, not a repository file; "
                    f"point --repository at its parent or at a file"
                )
            if read_only or not create:
                raise RepositoryNotFound(
                    f"there is no repository at {self.path} yet: nothing has been stored. "
                    + _NOT_FOUND
                )
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise StoreUnavailable(
                    f"cannot create the repository directory {self.path.parent}: "
                    f"{error.strerror or error}"
                ) from None
        super().__init__(
            SQLiteDialect(self.path, timeout=timeout, read_only=read_only), create=create
        )

    def close_at_exit(self) -> None:
        """Sync the write-ahead log and leave the connection to the end of the process.

        Closing the last connection to a WAL database checkpoints it: SQLite
        copies the log into the database file and syncs that, about 6 ms after a
        5,000-test run, which every command would add to its exit. Left open,
        the connection ends with the process; the log stays valid beside the
        database (the next connection reads through it) and SQLite folds it in
        by its automatic checkpoints, every 1,000 pages of later writes. What
        the close gave besides is durability (``synchronous=NORMAL`` does not
        sync the log at commit): one ``fsync`` of the log gives that.
        """
        with suppress(OSError):  # no log (nothing written since the last checkpoint)
            fd = os.open(f"{self.path}-wal", os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _LEFT_TO_EXIT.append(self._conn)  # a collected connection would close itself
