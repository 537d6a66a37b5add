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
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from proctor.store.errors import RepositoryNotFound, StoreError, StoreUnavailable
from proctor.store.migrations import check_version, pending
from proctor.store.sql import SqlStore
from proctor.store.sqlite_schema import MIGRATIONS

__all__ = ["DEFAULT_FILE", "SQLiteStore"]

DEFAULT_FILE = "repository.sqlite"
"""The database's name inside a repository directory such as ``.proctor/``."""
_INCREMENTAL = 2  # PRAGMA auto_vacuum's value for INCREMENTAL
_OURS = frozenset({"schema_migrations", "tests", "runs", "results"})
"""Tables every Proctor repository has (version 1 created them in one transaction)."""


_LEFT_TO_EXIT: list[Any] = []
"""Connections :meth:`SQLiteStore.close_at_exit` leaves to the end of the process."""


class SQLiteStore(SqlStore):
    """A repository in one SQLite file."""

    backend = "sqlite"
    # Without statistics SQLite would rather scan every result, or each run
    # whole, than probe the (run, test) index run by run: say how.
    _by_test = (
        "runs u CROSS JOIN results r INDEXED BY results_run_test ON r.run = u.id AND r.test = ?"
    )

    def __init__(
        self, path: str | os.PathLike[str], *, create: bool = True, timeout: float = 60.0
    ) -> None:
        self.path = Path(path)
        self._timeout = timeout
        if not self.path.is_file():
            if self.path.exists():
                raise StoreUnavailable(
                    f"{self.path} is a directory, not a repository file; "
                    f"point --repository at its parent or at a file"
                )
            if not create:
                raise RepositoryNotFound(
                    f"there is no repository at {self.path} yet: nothing has been stored. "
                    "Run your tests with `proctor run`, or store a result stream with "
                    "`proctor load FILE` or `proctor import .stestr`."
                )
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise StoreUnavailable(
                    f"cannot create the repository directory {self.path.parent}: "
                    f"{error.strerror or error}"
                ) from None
        super().__init__(str(self.path))
        try:
            self.schema_version = self._migrate(create)
        except BaseException:
            self._conn.close()
            raise

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

    # -- connections and transactions

    def _connect(self) -> Any:
        try:
            conn = sqlite3.connect(
                self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as error:
            raise self._translate(error) from None
        try:
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA cache_size = -65536")
        except sqlite3.Error as error:  # not a database, say: nothing to keep open
            conn.close()
            raise self._translate(error) from None
        return conn

    @contextmanager
    def _transaction(self, conn: Any) -> Iterator[Any]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn.cursor()
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def _snapshot(self) -> Iterator[Any]:
        conn = self._conn
        try:
            conn.execute("BEGIN")
            try:
                yield conn.cursor()
            finally:
                conn.execute("COMMIT")
        except sqlite3.Error as error:
            raise self._translate(error) from None

    def _translate(self, error: Exception) -> Exception:
        if isinstance(error, StoreError) or not isinstance(error, sqlite3.Error):
            return error
        message = str(error)
        if "locked" in message or "busy" in message:
            return StoreUnavailable(
                f"{self.path} stayed locked by another process for {self._timeout:.0f} s; "
                "wait for the other proctor command to finish and try again"
            )
        if "not a database" in message or "malformed" in message:
            return StoreUnavailable(
                f"{self.path} is not a readable Proctor repository ({message}); move it "
                "aside and run again to start a new one, or point --repository elsewhere"
            )
        if "readonly" in message or "read-only" in message:
            return StoreUnavailable(
                f"cannot write to {self.path}: the file, or the directory it is in, is "
                f"read-only ({message}); make both writable, or point --repository elsewhere"
            )
        if "full" in message:
            return StoreUnavailable(f"cannot write to {self.path}: the disk is full ({message})")
        return StoreUnavailable(f"{self.path}: {message}")

    # -- schema

    def _current_version(self) -> int:
        """The schema version; 0 for an empty database. A database holding
        anything but a Proctor repository is refused, whatever its tables are
        called (another tool may have a ``schema_migrations`` too), so that no
        command ever adds Proctor's tables to it or switches its journal."""
        try:
            names = {
                row[0]
                for row in self._conn.execute(
                    "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
                    "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
                )
            }
            if not names:
                return 0
            if names >= _OURS:
                version = self._conn.execute(
                    "SELECT max(version) FROM schema_migrations"
                ).fetchone()[0]
                if isinstance(version, int):
                    return version
        except sqlite3.Error as error:
            raise self._translate(error) from None
        shown = ", ".join(sorted(names)[:5]) + (", ..." if len(names) > 5 else "")
        raise StoreUnavailable(
            f"{self.path} is an SQLite database of something else (it holds {shown}), "
            "not a Proctor repository; Proctor leaves it untouched. Point --repository "
            "at a Proctor repository, or at a new file or directory to start one."
        )

    def _migrate(self, create: bool) -> int:
        current = self._current_version()
        check_version(current, MIGRATIONS, str(self.path))
        if not pending(current, MIGRATIONS):
            return current
        if current == 0 and not create:
            raise RepositoryNotFound(
                f"there is no repository at {self.path} yet (the file is empty): nothing has "
                "been stored. Run your tests with `proctor run`, or store a result stream with "
                "`proctor load FILE` or `proctor import .stestr`."
            )
        try:
            if current == 0:
                # Before the first table: free pages can then be cut off the
                # file after a gc (see _reclaim_space).
                self._conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
                self._conn.execute("PRAGMA journal_mode = WAL")
            with self._transaction(self._conn) as cur:
                cur.execute("SELECT name FROM sqlite_master WHERE name = 'schema_migrations'")
                if cur.fetchone() is not None:  # another process may have got here first
                    cur.execute("SELECT max(version) FROM schema_migrations")
                    current = int(cur.fetchone()[0] or 0)
                for migration in pending(current, MIGRATIONS):
                    for statement in migration.statements:
                        cur.execute(statement)
                    cur.execute(
                        "INSERT INTO schema_migrations (version, applied_ns, description) "
                        "VALUES (?, ?, ?)",
                        (migration.version, time.time_ns(), migration.description),
                    )
                    current = migration.version
        except sqlite3.Error as error:
            raise self._translate(error) from None
        return current

    def _reclaim_space(self, vacuum: bool) -> int:
        conn = self._conn
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

    # -- dialect

    def _insert_run(self, cur: Any, columns: Sequence[str], values: Sequence[object]) -> int:
        marks = ", ".join("?" * len(columns))
        cur.execute(f"INSERT INTO runs ({', '.join(columns)}) VALUES ({marks})", values)
        run_id: int = cur.lastrowid
        return run_id

    def _size_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal"):
            with suppress(OSError):
                total += os.stat(f"{self.path}{suffix}").st_size
        return total

    def _contains(self, column: str) -> str:
        return f"instr({column}, ?) > 0"
