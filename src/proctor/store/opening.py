"""Choosing a backend from a repository URL.

``Config.repository_url`` is a directory (``<root>/.proctor`` by default), a
database file, ``sqlite:///path``, ``postgresql://...`` or ``memory:``. A
directory holds the SQLite database as :data:`~proctor.store.sql.sqlite.DEFAULT_FILE`,
so other tools can keep their own files beside it in ``.proctor/``.
"""

from __future__ import annotations

from pathlib import Path

from proctor.store.contract import Store
from proctor.store.errors import StoreUnavailable

__all__ = ["SQLITE_SUFFIXES", "open_store", "sqlite_path"]

SQLITE_SUFFIXES = (".sqlite", ".sqlite3", ".db")


def sqlite_path(url: str) -> Path:
    """The database file a non-PostgreSQL repository URL names."""
    if url.startswith("sqlite://"):
        url = url[len("sqlite://") :]
    path = Path(url).expanduser()
    if path.suffix in SQLITE_SUFFIXES or path.is_file():
        return path
    from proctor.store.sql.sqlite import DEFAULT_FILE

    return path / DEFAULT_FILE


def open_store(url: str, *, create: bool = True, read_only: bool = False) -> Store:
    """Open the repository at ``url``, creating it (and upgrading its schema) as needed.

    With ``create=False`` a repository that does not exist yet raises
    :class:`~proctor.store.errors.RepositoryNotFound` instead of being created:
    commands that only read must not leave an empty repository behind.

    With ``read_only=True`` the database itself refuses every write (SQLite
    opens the file with ``mode=ro``; PostgreSQL sessions set
    ``default_transaction_read_only``), so a write raises a
    :class:`~proctor.store.errors.StoreError`; nothing is created or upgraded,
    and a repository that does not exist, or whose schema is older than this
    Proctor's, is refused with one. For readers that must never change what
    they show (a web UI). The in-memory store has nothing to protect and
    ignores it.
    """
    if url.startswith(("postgresql://", "postgres://")):
        from proctor.store.sql.postgres import PostgresStore

        return PostgresStore(url, create=create and not read_only, read_only=read_only)
    if url in ("memory:", "memory://"):
        from proctor.store.memory import MemoryStore

        return MemoryStore()
    scheme = url.split("://", 1)[0] if "://" in url else None
    if scheme not in (None, "sqlite", "file"):
        raise StoreUnavailable(
            f"cannot open a repository at {url!r}: Proctor stores runs in SQLite (a directory "
            "or file path) or PostgreSQL (a postgresql:// URL)"
        )
    if scheme == "file":
        url = url[len("file://") :]
    from proctor.store.sql.sqlite import SQLiteStore

    return SQLiteStore(sqlite_path(url), create=create and not read_only, read_only=read_only)
