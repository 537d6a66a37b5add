"""What differs between the SQL backends, as one object: the dialect.

Every query of the SQL store is written once, with ``?`` placeholders, against
this protocol; :class:`~proctor.store.sql.sqlite.SQLiteDialect` and
:class:`~proctor.store.sql.postgres.PostgresDialect` implement it. The store,
the write path (``write``), housekeeping, the failure tables and the bug and
rule tables are each given the dialect, and ask it rather than branching on
the backend's name:

* connecting and opening: a new connection, the schema checked and upgraded
  (or, read-only, only checked);
* transactions: a write transaction and a consistent read snapshot on a
  connection, and which errors are transient (worth retrying the whole
  transaction: :func:`~proctor.store.sql.transaction.in_transaction`) and how
  a driver error reads as a :class:`~proctor.store.errors.StoreError`;
* spelling: placeholders, ``IN`` lists, inserting a run and returning its id,
  bulk loads, the statistics upsert, how test ids and tag sets are keyed;
* locking: the row locks a writer takes, the lock that marks a run as being
  written, the lock that keeps writers out of garbage collection;
* storage: the bytes the repository takes and giving freed space back.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

__all__ = ["Dialect"]


class Dialect(Protocol):
    """One SQL backend's connections, transactions, errors, spelling and locks."""

    name: str
    """The backend's name (:attr:`Store.backend`): ``sqlite`` or ``postgresql``."""
    location: str
    """Where the repository is, for messages (a PostgreSQL URL without its password)."""
    read_only: bool
    """Whether connections refuse every write (and opening creates and upgrades nothing)."""
    for_share: str
    """Appended to the blob look-up: PostgreSQL locks the rows a batch links to."""
    for_update: str
    """Appended to the look-up of a run's row by its writer: PostgreSQL locks it."""
    by_test: str
    """A test's results, run by run from the newest, through ``results(run, test)``."""
    test_key: str
    """The column of ``tests`` that :meth:`key` values are found in."""
    blob_type: str
    """The column type of binary data (for tables created outside the migrations)."""

    # -- connecting and opening

    def connect(self) -> Any:
        """A new connection, in autocommit mode (transactions are explicit)."""

    def close(self, conn: Any) -> None:
        """Close a connection."""

    def migrate(self, conn: Any, create: bool) -> int:
        """Check the schema on ``conn`` and apply the pending migrations (read-only:
        refuse a repository that needs any); return the schema version."""

    # -- transactions and errors

    def transaction(self, conn: Any) -> AbstractContextManager[Any]:
        """A write transaction on ``conn``, yielding a cursor; rolled back on error.
        Not retried: see :func:`~proctor.store.sql.transaction.in_transaction`."""

    def snapshot(self, conn: Any) -> AbstractContextManager[Any]:
        """A read transaction on ``conn``: one consistent view; driver errors
        come out as :class:`~proctor.store.errors.StoreError`."""

    def transient(self, error: Exception) -> bool:
        """Whether a failed write transaction may simply be tried again."""

    def translate(self, error: Exception) -> Exception:
        """A driver error as the StoreError to show (any other error as it is)."""

    # -- spelling

    def q(self, sql: str) -> str:
        """``sql`` (``?`` placeholders) in the driver's placeholder style."""

    def key(self, text: str) -> Any:
        """What a test id or tag set is found by: the text, or (PostgreSQL,
        whose index entries cannot hold a long one) its SHA-256 digest."""

    def key_column(self, column: str) -> str:
        """The column holding :meth:`key` values for a table keyed by ``column``."""

    def insert_keys(
        self, cur: Any, table: str, column: str, texts: Sequence[tuple[Any, str]]
    ) -> None:
        """Insert (key, text) rows into an interning table, leaving those held."""

    def contains(self, column: str) -> str:
        """A case-sensitive "``column`` contains ?" condition."""

    def fetch_in(
        self, cur: Any, sql: str, values: Sequence[object], params: Sequence[object] = ()
    ) -> list[Any]:
        """Rows of ``sql`` (holding ``IN ({})`` after any other ``params``) for every value."""

    def insert_run(self, cur: Any, columns: Sequence[str], values: Sequence[object]) -> int:
        """Insert a ``runs`` row; return its new id."""

    def bulk_insert(
        self, cur: Any, table: str, columns: Sequence[str], rows: list[tuple[object, ...]]
    ) -> None:
        """Append rows to ``table`` (PostgreSQL: by ``COPY``)."""

    def update_stats(self, cur: Any, run_id: int, first: int, last: int, rounds: int) -> None:
        """Add the results with positions ``first..last`` of the run to ``test_stats``;
        ``rounds`` is the most results one test has among them."""

    def table_exists(self, cur: Any, table: str) -> bool:
        """Whether ``table`` exists (tables created by their first write)."""

    def quick(self, cur: Any) -> None:
        """Make the current transaction's many small probes cheap to plan."""

    # -- locking

    def claim_run(self, cur: Any, run_id: int) -> None:
        """Mark the writer's connection as writing ``run_id`` until it closes."""

    def lock_blobs(self, cur: Any) -> None:
        """Keep writers from linking to blobs while garbage is collected."""

    def serialize(self, cur: Any, key: int) -> None:
        """Let one transaction at a time past this point (under ``key``) until it ends."""

    # -- storage

    def size_bytes(self, conn: Any) -> int:
        """Bytes the repository takes on disk."""

    def reclaim_space(self, conn: Any, vacuum: bool) -> int:
        """Give freed space back to the disk where the backend can (``vacuum``:
        the thorough way); return the bytes still free inside the files."""
