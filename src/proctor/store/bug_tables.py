"""The repository's bug records: event rows, per-bug snapshots and a copy's filters.

Three tables, the same on both SQL backends (SQLite's affinities; PostgreSQL's
``BIGINT`` and ``BYTEA``):

* ``bug_events``, one row per event: id (primary key, the content id), bug, kind,
  lamport, author, wall, data (the canonical bytes); indexed by bug.
* ``bugs``, one row per bug: id, title, status, severity, assignee, author, tags
  (``" a b "``), links (JSON), created, updated, lamport, events, heads, older,
  search (lowercased title, description and comments).
* ``bug_filters``, one row per filter the copy was made with: position, expression.

``bugs`` is a materialised snapshot, rebuilt per bug from its events whenever
events arrive (Fossil's TICKET / TICKETCHNG pattern), so ``proctor bug list``
filters in SQL. The store knows bugs only as rows: what an event means, and
whether it is genuine, is :mod:`proctor.bugs` (above this layer), which checks
every row it reads.

The tables are created by the first write (``CREATE TABLE IF NOT EXISTS``, in
the same transaction) rather than by a numbered migration, so they land
independently of other schema changes; reading a repository that has none
finds no bugs and writes nothing. Writers are serialised (SQLite's ``BEGIN
IMMEDIATE``, a PostgreSQL transaction-scoped advisory lock), so a merge reads
and rewrites a bug's snapshot without another writer slipping in between.

The row types and protocols are in :mod:`proctor.store.bug_rows`, the SQL
tables in :mod:`proctor.store.sql.bugs`; this module keeps the in-memory fake
and :func:`bug_tables`, which picks one for a store.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from proctor.store.bug_rows import BugSession, BugTables, EventRow, ListQuery, SnapshotRow
from proctor.store.contract import Store
from proctor.store.errors import StoreError

__all__ = [
    "BugSession",
    "BugTables",
    "EventRow",
    "ListQuery",
    "MemoryBugTables",
    "SnapshotRow",
    "bug_tables",
]


# -- in memory ------------------------------------------------------------------------------


@dataclass
class _MemoryData:
    events: dict[str, EventRow] = field(default_factory=dict)
    snapshots: dict[str, SnapshotRow] = field(default_factory=dict)
    filters: list[str] = field(default_factory=list)


class _MemorySession(BugSession):
    def __init__(self, data: _MemoryData, writable: bool) -> None:
        self._data = data
        self._writable = writable

    def events(self, bugs: Collection[str] | None = None) -> list[EventRow]:
        chosen = None if bugs is None else set(bugs)
        rows = [r for r in self._data.events.values() if chosen is None or r.bug in chosen]
        return sorted(rows, key=lambda r: (r.lamport, r.id))

    def snapshots(
        self, query: ListQuery | None = None, ids: Collection[str] | None = None
    ) -> list[SnapshotRow]:
        if ids is not None:
            return [self._data.snapshots[i] for i in sorted(set(ids)) if i in self._data.snapshots]
        query = query or ListQuery()
        rows = [r for r in self._data.snapshots.values() if _matches(r, query)]
        rows.sort(key=lambda r: (-r.updated, r.id))
        return rows if query.limit is None else rows[: query.limit]

    def bug_ids(self, prefix: str = "", limit: int | None = None) -> list[str]:
        found = sorted(i for i in self._data.snapshots if i.startswith(prefix))
        return found if limit is None else found[:limit]

    def heads(
        self, ids: Collection[str] | None = None
    ) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
        rows = self._data.snapshots
        chosen = rows if ids is None else [i for i in ids if i in rows]
        return {bug: (rows[bug].heads, rows[bug].older) for bug in chosen}

    def head_texts(self) -> dict[str, str]:
        return {bug: " ".join(row.heads) for bug, row in self._data.snapshots.items()}

    def filters(self) -> list[str]:
        return list(self._data.filters)

    def _check(self) -> None:
        if not self._writable:
            raise StoreError("a read session cannot write")

    def insert_events(self, rows: Iterable[EventRow]) -> None:
        self._check()
        for row in rows:
            self._data.events.setdefault(row.id, row)

    def put_snapshots(self, rows: Sequence[SnapshotRow]) -> None:
        self._check()
        for row in rows:
            self._data.snapshots[row.id] = row

    def set_filters(self, expressions: Sequence[str]) -> None:
        self._check()
        self._data.filters = list(expressions)


def _matches(row: SnapshotRow, query: ListQuery) -> bool:
    return (
        (not query.statuses or row.status in query.statuses)
        and all(tag in row.tags for tag in query.tags)
        and (query.assignee is None or row.assignee == query.assignee)
        and (query.text is None or query.text.lower() in row.search)
    )


class MemoryBugTables(BugTables):
    """Bug tables in memory: the fake for fast tests, with the same all-or-nothing writes."""

    def __init__(self, location: str = "memory:") -> None:
        self.location = location
        self._data = _MemoryData()
        self._lock = threading.Lock()

    @contextmanager
    def reading(self) -> Iterator[BugSession]:
        yield _MemorySession(self._data, writable=False)

    @contextmanager
    def writing(self) -> Iterator[BugSession]:
        with self._lock:
            draft = _MemoryData(
                dict(self._data.events), dict(self._data.snapshots), list(self._data.filters)
            )
            yield _MemorySession(draft, writable=True)
            self._data = draft


_MEMORY: weakref.WeakKeyDictionary[Store, MemoryBugTables] = weakref.WeakKeyDictionary()


def bug_tables(store: Store) -> BugTables:
    """The bug tables of ``store`` (for the in-memory store, a fake kept beside it)."""
    from proctor.store.sql.store import SqlStore

    if isinstance(store, SqlStore):
        from proctor.store.sql.bugs import SqlBugTables

        return SqlBugTables(store)
    tables = _MEMORY.get(store)
    if tables is None:
        tables = _MEMORY[store] = MemoryBugTables(getattr(store, "location", "memory:"))
    return tables
