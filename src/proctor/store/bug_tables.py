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
"""

from __future__ import annotations

import abc
import json
import threading
import weakref
from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from proctor.store.contract import Store
from proctor.store.errors import StoreError, StoreUnavailable

__all__ = [
    "BugSession",
    "BugTables",
    "EventRow",
    "ListQuery",
    "MemoryBugTables",
    "SnapshotRow",
    "SqlBugTables",
    "bug_tables",
]

_LOCK_KEY = 0x70726F6362756773  # "procbugs": PostgreSQL advisory lock for bug writers
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class EventRow:
    """One stored event: its content id, bug, a few columns for queries, its canonical bytes."""

    id: str
    bug: str
    kind: str
    lamport: int
    author: str
    wall: int
    data: bytes


@dataclass(frozen=True, slots=True)
class SnapshotRow:
    """A bug's current state, as ``list`` and sync read it."""

    id: str
    title: str
    status: str
    severity: str
    assignee: str
    author: str
    tags: tuple[str, ...]
    links: tuple[tuple[str, str], ...]
    created: int
    updated: int
    lamport: int
    events: int
    heads: tuple[str, ...]
    older: tuple[str, ...]
    search: str  # lowercased title, description and comments


@dataclass(frozen=True, slots=True)
class ListQuery:
    """``list`` filters; each given one must hold. Newest update first."""

    statuses: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    assignee: str | None = None
    text: str | None = None  # case-insensitive substring of title, description, comments
    limit: int | None = None


_EVENT_COLUMNS = "id, bug, kind, lamport, author, wall, data"
_LISTED_COLUMNS = (
    "id, title, status, severity, assignee, author, tags, '[]', created, updated, "
    "lamport, events, '', '', ''"
)
"""What ``list`` reads: the snapshot without links, heads and the (long) search text."""
_SNAPSHOT_COLUMNS = (
    "id, title, status, severity, assignee, author, tags, links, created, updated, "
    "lamport, events, heads, older, search"
)


def _tables(blob: str) -> tuple[str, ...]:
    return (
        "CREATE TABLE IF NOT EXISTS bug_events (id TEXT PRIMARY KEY, bug TEXT NOT NULL, "
        "kind TEXT NOT NULL, lamport BIGINT NOT NULL, author TEXT NOT NULL, "
        f"wall BIGINT NOT NULL, data {blob} NOT NULL)",
        "CREATE INDEX IF NOT EXISTS bug_events_bug ON bug_events (bug)",
        "CREATE TABLE IF NOT EXISTS bugs (id TEXT PRIMARY KEY, title TEXT NOT NULL, "
        "status TEXT NOT NULL, severity TEXT NOT NULL, assignee TEXT NOT NULL, "
        "author TEXT NOT NULL, tags TEXT NOT NULL, links TEXT NOT NULL, "
        "created BIGINT NOT NULL, updated BIGINT NOT NULL, lamport BIGINT NOT NULL, "
        "events BIGINT NOT NULL, heads TEXT NOT NULL, older TEXT NOT NULL, "
        "search TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS bugs_updated ON bugs (updated)",
        "CREATE TABLE IF NOT EXISTS bug_filters (position BIGINT PRIMARY KEY, "
        "expression TEXT NOT NULL)",
    )


def _snapshot_values(row: SnapshotRow) -> tuple[object, ...]:
    return (
        row.id,
        row.title,
        row.status,
        row.severity,
        row.assignee,
        row.author,
        " " + " ".join(row.tags) + " ",
        json.dumps([list(link) for link in row.links], ensure_ascii=False),
        row.created,
        row.updated,
        row.lamport,
        row.events,
        " ".join(row.heads),
        " ".join(row.older),
        row.search,
    )


def _snapshot_row(values: Sequence[Any]) -> SnapshotRow:
    parsed: tuple[tuple[str, str], ...] = ()
    if values[7] != "[]":
        try:
            parsed = tuple((str(kind), str(target)) for kind, target in json.loads(values[7]))
        except (ValueError, TypeError):
            parsed = ()
    return SnapshotRow(
        str(values[0]),
        str(values[1]),
        str(values[2]),
        str(values[3]),
        str(values[4]),
        str(values[5]),
        tuple(str(values[6]).split()),
        parsed,
        int(values[8]),
        int(values[9]),
        int(values[10]),
        int(values[11]),
        tuple(str(values[12]).split()),
        tuple(str(values[13]).split()),
        str(values[14]),
    )


def _event_row(values: Sequence[Any]) -> EventRow:
    data = values[6]
    if isinstance(data, str):  # SQLite lets a TEXT value into a BLOB column
        data = data.encode("utf-8", "surrogatepass")
    return EventRow(
        str(values[0]),
        str(values[1]),
        str(values[2]),
        int(values[3]),
        str(values[4]),
        int(values[5]),
        bytes(data),
    )


class BugSession(abc.ABC):
    """One transaction on the bug tables: reads see one consistent state."""

    @abc.abstractmethod
    def events(self, bugs: Collection[str] | None = None) -> list[EventRow]:
        """The events of ``bugs`` (every event if None), by (lamport, id)."""

    @abc.abstractmethod
    def snapshots(
        self, query: ListQuery | None = None, ids: Collection[str] | None = None
    ) -> list[SnapshotRow]:
        """Snapshots matching ``query`` (newest update first) or with these ``ids``.

        Rows found by ``query`` may leave out links, heads, older ids and search text.
        """

    @abc.abstractmethod
    def bug_ids(self, prefix: str = "", limit: int | None = None) -> list[str]:
        """Sorted bug ids starting with ``prefix``."""

    @abc.abstractmethod
    def heads(
        self, ids: Collection[str] | None = None
    ) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
        """Per bug (of ``ids``, or every bug), its heads and older ids (for a sync summary)."""

    @abc.abstractmethod
    def head_texts(self) -> dict[str, str]:
        """Per bug, its sorted heads as one string: equal strings, equal heads (cheap to read)."""

    @abc.abstractmethod
    def filters(self) -> list[str]:
        """The filter expressions this copy was made with (none: a whole copy)."""

    @abc.abstractmethod
    def insert_events(self, rows: Sequence[EventRow]) -> None:
        """Add events (one already held, by id, is left as it is)."""

    @abc.abstractmethod
    def put_snapshots(self, rows: Sequence[SnapshotRow]) -> None:
        """Replace these bugs' snapshots."""

    @abc.abstractmethod
    def set_filters(self, expressions: Sequence[str]) -> None:
        """Record the filters this copy is made with."""


class BugTables(abc.ABC):
    """Where a repository's bug records live."""

    location: str

    @abc.abstractmethod
    def reading(self) -> AbstractContextManager[BugSession]:
        """A read-only session (nothing is created)."""

    @abc.abstractmethod
    def writing(self) -> AbstractContextManager[BugSession]:
        """A write session: all of it is committed, or (on an exception) none of it."""


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

    def insert_events(self, rows: Sequence[EventRow]) -> None:
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


# -- SQL ------------------------------------------------------------------------------------


class _SqlSession(BugSession):
    def __init__(self, store: Any, cur: Any, present: bool, writable: bool) -> None:
        self._store = store
        self._cur = cur
        self._present = present
        self._writable = writable

    def _q(self, sql: str) -> str:
        text: str = self._store._q(sql)
        return text

    def _select(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        if not self._present:
            return []
        self._cur.execute(self._q(sql), tuple(params))
        return list(self._cur.fetchall())

    def events(self, bugs: Collection[str] | None = None) -> list[EventRow]:
        if bugs is None:
            rows = self._select(f"SELECT {_EVENT_COLUMNS} FROM bug_events ORDER BY lamport, id")
            return [_event_row(r) for r in rows]
        chosen = sorted(set(bugs))
        found: list[EventRow] = []
        for start in range(0, len(chosen), _CHUNK):
            part = chosen[start : start + _CHUNK]
            marks = ", ".join("?" * len(part))
            rows = self._select(
                f"SELECT {_EVENT_COLUMNS} FROM bug_events WHERE bug IN ({marks})", part
            )
            found.extend(_event_row(r) for r in rows)
        found.sort(key=lambda r: (r.lamport, r.id))
        return found

    def snapshots(
        self, query: ListQuery | None = None, ids: Collection[str] | None = None
    ) -> list[SnapshotRow]:
        if ids is not None:
            chosen = sorted(set(ids))
            found: list[SnapshotRow] = []
            for start in range(0, len(chosen), _CHUNK):
                part = chosen[start : start + _CHUNK]
                marks = ", ".join("?" * len(part))
                rows = self._select(
                    f"SELECT {_SNAPSHOT_COLUMNS} FROM bugs WHERE id IN ({marks}) ORDER BY id",
                    part,
                )
                found.extend(_snapshot_row(r) for r in rows)
            return found
        query = query or ListQuery()
        where: list[str] = []
        params: list[object] = []
        if query.statuses:
            where.append(f"status IN ({', '.join('?' * len(query.statuses))})")
            params.extend(query.statuses)
        for tag in query.tags:
            where.append(self._store._contains("tags"))
            params.append(f" {tag} ")
        if query.assignee is not None:
            where.append("assignee = ?")
            params.append(query.assignee)
        if query.text is not None:
            where.append(self._store._contains("search"))
            params.append(query.text.lower())
        sql = f"SELECT {_LISTED_COLUMNS} FROM bugs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY updated DESC, id"
        if query.limit is not None:
            sql += f" LIMIT {int(query.limit)}"
        return [_snapshot_row(r) for r in self._select(sql, params)]

    def bug_ids(self, prefix: str = "", limit: int | None = None) -> list[str]:
        sql = "SELECT id FROM bugs"
        params: list[object] = []
        if prefix:
            # Bug ids are lowercase hex: every id starting with prefix sorts below prefix + "g".
            sql += " WHERE id >= ? AND id < ?"
            params = [prefix, prefix + "g"]
        sql += " ORDER BY id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [str(r[0]) for r in self._select(sql, params)]

    def heads(
        self, ids: Collection[str] | None = None
    ) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
        if ids is None:
            rows = self._select("SELECT id, heads, older FROM bugs")
        else:
            chosen = sorted(set(ids))
            rows = []
            for start in range(0, len(chosen), _CHUNK):
                part = chosen[start : start + _CHUNK]
                marks = ", ".join("?" * len(part))
                rows += self._select(
                    f"SELECT id, heads, older FROM bugs WHERE id IN ({marks})", part
                )
        return {str(r[0]): (tuple(str(r[1]).split()), tuple(str(r[2]).split())) for r in rows}

    def head_texts(self) -> dict[str, str]:
        return dict(self._select("SELECT id, heads FROM bugs"))

    def filters(self) -> list[str]:
        return [str(r[0]) for r in self._select("SELECT expression FROM bug_filters ORDER BY 1")]

    def _check(self) -> None:
        if not self._writable:
            raise StoreError("a read session cannot write")

    def insert_events(self, rows: Sequence[EventRow]) -> None:
        self._check()
        self._cur.executemany(
            self._q(
                f"INSERT INTO bug_events ({_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO NOTHING"
            ),
            [(r.id, r.bug, r.kind, r.lamport, r.author, r.wall, r.data) for r in rows],
        )

    def put_snapshots(self, rows: Sequence[SnapshotRow]) -> None:
        self._check()
        ids = [r.id for r in rows]
        for start in range(0, len(ids), _CHUNK):
            part = ids[start : start + _CHUNK]
            self._cur.execute(
                self._q(f"DELETE FROM bugs WHERE id IN ({', '.join('?' * len(part))})"), part
            )
        self._cur.executemany(
            self._q(f"INSERT INTO bugs ({_SNAPSHOT_COLUMNS}) VALUES ({', '.join('?' * 15)})"),
            [_snapshot_values(r) for r in rows],
        )

    def set_filters(self, expressions: Sequence[str]) -> None:
        self._check()
        self._cur.execute("DELETE FROM bug_filters")
        self._cur.executemany(
            self._q("INSERT INTO bug_filters (position, expression) VALUES (?, ?)"),
            list(enumerate(expressions)),
        )


class SqlBugTables(BugTables):
    """The bug tables of a SQLite or PostgreSQL repository."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.location = str(store.location)

    def _exists(self, cur: Any) -> bool:
        if self._store.backend == "postgresql":
            cur.execute("SELECT to_regclass('bug_filters') IS NOT NULL")
        else:
            cur.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'bug_filters'"
            )
        return bool(cur.fetchone()[0])

    @contextmanager
    def reading(self) -> Iterator[BugSession]:
        try:
            with self._store._snapshot() as cur:
                yield _SqlSession(self._store, cur, self._exists(cur), writable=False)
        except StoreError:
            raise
        except Exception as error:
            raise self._translated(error) from None

    @contextmanager
    def writing(self) -> Iterator[BugSession]:
        store = self._store
        blob = "BYTEA" if store.backend == "postgresql" else "BLOB"
        try:
            with store._transaction(store._conn) as cur:
                if store.backend == "postgresql":
                    cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
                for statement in _tables(blob):
                    cur.execute(statement)
                yield _SqlSession(store, cur, True, writable=True)
        except StoreError:
            raise
        except Exception as error:
            raise self._translated(error) from None

    def _translated(self, error: Exception) -> Exception:
        translated = self._store._translate(error)
        if isinstance(translated, StoreError) or not isinstance(translated, Exception):
            return translated
        if not _is_database_error(error):
            return error
        detail = str(error).strip() or type(error).__name__
        return StoreUnavailable(f"cannot read or write the bugs in {self.location}: {detail}")


def _is_database_error(error: Exception) -> bool:
    module = type(error).__module__
    return module.startswith(("sqlite3", "psycopg"))


_MEMORY: weakref.WeakKeyDictionary[Store, MemoryBugTables] = weakref.WeakKeyDictionary()


def bug_tables(store: Store) -> BugTables:
    """The bug tables of ``store`` (for the in-memory store, a fake kept beside it)."""
    from proctor.store.sql import SqlStore

    if isinstance(store, SqlStore):
        return SqlBugTables(store)
    tables = _MEMORY.get(store)
    if tables is None:
        tables = _MEMORY[store] = MemoryBugTables(getattr(store, "location", "memory:"))
    return tables
