"""A repository's bug records as rows: what the bug tables hold, and a session on them.

The row types and the two protocols every bug table implementation follows:
in memory (:mod:`proctor.store.bug_tables`) and in SQL
(:mod:`proctor.store.sql.bugs`). :mod:`proctor.store.bug_tables` explains the
tables and is the module to import.
"""

from __future__ import annotations

import abc
from collections.abc import Collection, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["BugSession", "BugTables", "EventRow", "ListQuery", "SnapshotRow"]


class EventRow(NamedTuple):
    """One stored event: its content id, bug, a few columns for queries, its canonical bytes.

    A tuple in the table's column order (``id, bug, kind, lamport, author, wall, data``),
    so a driver takes it as it is: a sync moves a row per event, and a row made and
    unpacked again per event is a tenth of a full sync's time.
    """

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
    def insert_events(self, rows: Iterable[EventRow]) -> None:
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
