"""The bug tables of an SQL repository (see :mod:`proctor.store.bug_tables`).

The same statements on both backends, given the
:class:`~proctor.store.sql.dialect.Dialect` for what differs (placeholders, the
binary column type, whether a table exists, the lock that serialises writers).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from proctor.store.bug_rows import BugSession, BugTables, EventRow, ListQuery, SnapshotRow
from proctor.store.errors import StoreError, StoreUnavailable
from proctor.store.sql.dialect import Dialect

if TYPE_CHECKING:
    from proctor.store.sql.store import SqlStore

__all__ = ["SqlBugTables"]

_LOCK_KEY = 0x70726F6362756773  # "procbugs": PostgreSQL advisory lock for bug writers
_CHUNK = 500

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


def _event_rows(rows: Iterable[Sequence[Any]]) -> list[EventRow]:
    return [
        EventRow(
            a if type(a) is str else str(a),
            b if type(b) is str else str(b),
            c if type(c) is str else str(c),
            d if type(d) is int else int(d),
            e if type(e) is str else str(e),
            f if type(f) is int else int(f),
            g if type(g) is bytes else _bytes(g),
        )
        for a, b, c, d, e, f, g in rows
    ]


def _bytes(data: Any) -> bytes:
    if isinstance(data, str):  # SQLite lets a TEXT value into a BLOB column
        return data.encode("utf-8", "surrogatepass")
    return bytes(data)  # a memoryview from a driver, say


def _by_clock(row: EventRow) -> tuple[int, str]:
    return (row.lamport, row.id)


class _SqlSession(BugSession):
    def __init__(self, dialect: Dialect, cur: Any, present: bool, writable: bool) -> None:
        self._dialect = dialect
        self._cur = cur
        self._present = present
        self._writable = writable

    def _q(self, sql: str) -> str:
        return self._dialect.q(sql)

    def _select(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        if not self._present:
            return []
        self._cur.execute(self._q(sql), tuple(params))
        return list(self._cur.fetchall())

    def events(self, bugs: Collection[str] | None = None) -> list[EventRow]:
        # Sorted here rather than by SQL: SQLite would sort the rows with their data.
        if bugs is None:
            found = _event_rows(self._select(f"SELECT {_EVENT_COLUMNS} FROM bug_events"))
        else:
            chosen = sorted(set(bugs))
            found = []
            for start in range(0, len(chosen), _CHUNK):
                part = chosen[start : start + _CHUNK]
                marks = ", ".join("?" * len(part))
                found += _event_rows(
                    self._select(
                        f"SELECT {_EVENT_COLUMNS} FROM bug_events WHERE bug IN ({marks})", part
                    )
                )
        found.sort(key=_by_clock)
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
            where.append(self._dialect.contains("tags"))
            params.append(f" {tag} ")
        if query.assignee is not None:
            where.append("assignee = ?")
            params.append(query.assignee)
        if query.text is not None:
            where.append(self._dialect.contains("search"))
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

    def insert_events(self, rows: Iterable[EventRow]) -> None:
        self._check()
        self._cur.executemany(
            self._q(
                f"INSERT INTO bug_events ({_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO NOTHING"
            ),
            rows,  # tuples in the columns' order
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

    def __init__(self, store: SqlStore) -> None:
        self._store = store
        self._dialect = store.dialect
        self.location = str(store.location)

    @contextmanager
    def reading(self) -> Iterator[BugSession]:
        try:
            with self._store.snapshot() as cur:
                present = self._dialect.table_exists(cur, "bug_filters")
                yield _SqlSession(self._dialect, cur, present, writable=False)
        except StoreError:
            raise
        except Exception as error:
            raise self._translated(error) from None

    @contextmanager
    def writing(self) -> Iterator[BugSession]:
        # The caller's block runs inside the transaction, so it is tried once:
        # a retry would have to run the block again.
        try:
            with self._store.transaction() as cur:
                self._dialect.serialize(cur, _LOCK_KEY)
                for statement in _tables(self._dialect.blob_type):
                    cur.execute(statement)
                yield _SqlSession(self._dialect, cur, True, writable=True)
        except StoreError:
            raise
        except Exception as error:
            raise self._translated(error) from None

    def _translated(self, error: Exception) -> Exception:
        translated = self._dialect.translate(error)
        if isinstance(translated, StoreError) or not isinstance(translated, Exception):
            return translated
        if not _is_database_error(error):
            return error
        detail = str(error).strip() or type(error).__name__
        return StoreUnavailable(f"cannot read or write the bugs in {self.location}: {detail}")


def _is_database_error(error: Exception) -> bool:
    module = type(error).__module__
    return module.startswith(("sqlite3", "psycopg"))
