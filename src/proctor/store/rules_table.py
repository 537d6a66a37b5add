"""The repository's copy of the known-bug rules: one table, kept apart from the migrations.

``proctor-rules.toml`` at the project root is the reviewed source of truth;
the repository holds a copy so that what reads the repository alone (ingest,
a dashboard, a CI job without the checkout) sees the same rules. The store
knows rules only as rows of text, ``(id, bug, where, added, author)``: the
language lives in :mod:`proctor.triage`, above this layer.

The table is created by the first write (``CREATE TABLE IF NOT EXISTS``, in
the same transaction), not by a numbered migration, so that it can land
independently of other schema changes; reading a repository that has none
gives no rules and writes nothing. Both SQL backends take the same
statements; the in-memory store keeps its copy beside the store object.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from proctor.store.contract import Store
from proctor.store.errors import StoreError, StoreUnavailable

if TYPE_CHECKING:
    from proctor.store.sql.store import SqlStore

__all__ = ["TABLE", "RuleRow", "load_rules", "replace_rules"]

RuleRow = tuple[str, str, str, str, str]
"""id, bug, where, added, author."""

TABLE = "known_bug_rules"
_CREATE = f"""CREATE TABLE IF NOT EXISTS {TABLE} (
    id TEXT PRIMARY KEY,
    bug TEXT NOT NULL,
    expression TEXT NOT NULL,
    added TEXT NOT NULL,
    author TEXT NOT NULL,
    synced_ns BIGINT NOT NULL)"""

_MEMORY: weakref.WeakKeyDictionary[Store, list[RuleRow]] = weakref.WeakKeyDictionary()


def _sql(store: Store) -> SqlStore | None:
    from proctor.store.sql.store import SqlStore

    if isinstance(store, SqlStore):
        return store
    return None


def load_rules(store: Store) -> list[RuleRow]:
    """The rules the repository holds, sorted by id (none if it never held any)."""
    sql = _sql(store)
    if sql is None:
        return sorted(_MEMORY.get(store, []))
    try:
        with sql.snapshot() as cur:
            if not sql.dialect.table_exists(cur, TABLE):
                return []
            cur.execute(f"SELECT id, bug, expression, added, author FROM {TABLE} ORDER BY id")
            return [tuple(str(value) for value in row) for row in cur.fetchall()]  # type: ignore[misc]
    except StoreError:
        raise
    except Exception as error:
        raise _translated(sql, error) from None


def replace_rules(store: Store, rows: Sequence[RuleRow]) -> None:
    """Make the repository's rules exactly ``rows``, in one transaction."""
    sql = _sql(store)
    if sql is None:
        _MEMORY[store] = sorted(rows)
        return
    now = time.time_ns()
    insert = sql.dialect.q(
        f"INSERT INTO {TABLE} (id, bug, expression, added, author, synced_ns) "
        "VALUES (?, ?, ?, ?, ?, ?)"
    )

    def replace(cur: Any) -> None:
        cur.execute(_CREATE)
        cur.execute(f"DELETE FROM {TABLE}")
        for row in rows:
            cur.execute(insert, (*row, now))

    try:
        sql.write(replace)
    except StoreError:
        raise
    except Exception as error:
        raise _translated(sql, error) from None


def _translated(sql: SqlStore, error: Exception) -> Exception:
    translated = sql.dialect.translate(error)
    if isinstance(translated, StoreError):
        return translated
    detail = str(error).strip() or type(error).__name__
    return StoreUnavailable(f"cannot read or write the rules in {sql.location}: {detail}")
