"""The bug records a repository holds: the persistent copy the ``proctor bug`` commands use.

:class:`BugRepository` keeps events in the store's bug tables
(:mod:`proctor.store.bug_tables`: SQLite, PostgreSQL, or in memory for tests)
and a snapshot per bug for fast filtered listing. It never trusts what it
reads: every stored event is parsed and its id re-checked against its content
before it is used, and a row that does not match is refused with
:class:`StoredEventError`. Every write goes through the :class:`Replica` logic:
the bugs a batch touches are loaded, the batch is checked whole against them, and
only then are the new events and the rebuilt snapshots written, in one
transaction. Bad input leaves the repository as it was.

Sync moves rows, not parsed events: the receiver's summary comes from its
snapshots (heads and a few older ids per bug), the sender answers with the
canonical bytes of what the receiver lacks, and the receiver parses and
verifies each one before merging.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter

from proctor.bugs.errors import AmbiguousBugId, BugEventError, UnknownBug, shown
from proctor.bugs.event import (
    BugEvent,
    FieldName,
    LinkKind,
    canonical_bytes,
    canonical_event,
    parse_content,
    with_id,
)
from proctor.bugs.filters import BugFilter, parse_filter, wanted
from proctor.bugs.replica import MIN_SHORT_ID, MergeResult, Replica, Summary
from proctor.bugs.shortid import short_ids
from proctor.bugs.state import BugLink, BugState
from proctor.store.bug_tables import (
    BugSession,
    BugTables,
    EventRow,
    ListQuery,
    MemoryBugTables,
    SnapshotRow,
)

__all__ = ["BugRepository", "StoredEventError", "event_row", "row_event"]


class StoredEventError(BugEventError):
    """A stored event does not match its id or its columns: the repository was altered."""


def event_row(event: BugEvent, data: bytes | None = None) -> EventRow:
    """The row for ``event``; ``data``, its canonical bytes if already verified as such."""
    if data is None:
        data = canonical_bytes(event)
    return EventRow(event.id, event.bug, event.kind, event.lamport, event.author, event.wall, data)


def row_line(row: EventRow) -> bytes:
    """The row as a bundle line: its canonical bytes with its claimed id added."""
    return with_id(row.data, row.id)


def _sent_event(row: EventRow, source: str) -> tuple[BugEvent, bytes]:
    """The verified event a row from elsewhere holds, and its canonical bytes to store."""
    event = canonical_event(row.data, row.id)
    if event is not None:
        return event, row.data
    # Not the canonical bytes of a valid event with that id: the strict parse says
    # what is wrong, or accepts another spelling of a valid event (stored canonical).
    event = parse_content(row.data, row.id, f"{source}: event {shown(row.id, 20)}")
    return event, canonical_bytes(event)


def row_event(row: EventRow, location: str) -> BugEvent:
    """The verified event a stored row holds, or :class:`StoredEventError`."""
    event = canonical_event(row.data, row.id)
    if event is None:
        where = f"{location}: stored bug event {shown(row.id, 20)}"
        try:
            event = parse_content(row.data, row.id, where)
        except BugEventError as error:
            raise StoredEventError(
                where,
                f"{error.problem}. The repository's bug records were altered or corrupted; "
                "restore it from a copy, or sync from another copy into a new repository",
            ) from None
    if (
        event.bug != row.bug
        or event.lamport != row.lamport
        or event.author != row.author
        or event.wall != row.wall
        or event.kind != row.kind
    ):
        raise StoredEventError(
            f"{location}: stored bug event {shown(row.id, 20)}",
            "its columns disagree with its content. The repository's bug records were "
            "altered; restore it from a copy",
        )
    return event


@dataclass(frozen=True, slots=True)
class Listed:
    """A bug as ``list`` shows it: its snapshot and its short id."""

    short: str
    row: SnapshotRow


def _snapshot(replica: Replica, bug: str) -> SnapshotRow:
    state = replica.state(bug)
    search = "\n".join([state.title, state.description, *(c.text for c in state.comments)])
    return SnapshotRow(
        id=bug,
        title=state.title,
        status=state.status,
        severity=state.severity,
        assignee=state.assignee,
        author=state.author,
        tags=tuple(sorted(state.tags)),
        links=tuple(sorted((link.kind, link.target) for link in state.links)),
        created=state.created,
        updated=state.updated,
        lamport=replica.lamport(bug),
        events=state.events,
        heads=tuple(sorted(replica.heads(bug))),
        older=replica.older(bug),
        search=search.lower(),
    )


def _light_state(row: SnapshotRow) -> BugState:
    """Enough of a bug's state to evaluate filters on (from its snapshot)."""
    links = []
    for kind, target in row.links:
        if kind in ("rule", "cluster", "test", "commit"):
            links.append((BugLink(kind, target), ""))  # type: ignore[arg-type]
    return BugState(
        id=row.id,
        title=row.title,
        description="",
        status=row.status,
        severity=row.severity,
        assignee=row.assignee,
        tag_adds=frozenset((tag, "") for tag in row.tags),
        link_adds=frozenset(links),
        comments=(),
        author=row.author,
        created=row.created,
        updated=row.updated,
        events=row.events,
    )


class BugRepository:
    """A repository's bug records. ``BugRepository.memory()`` gives one for tests."""

    def __init__(self, tables: BugTables, clock: Callable[[], int] = time.time_ns) -> None:
        self.tables = tables
        self._clock = clock

    @classmethod
    def memory(cls, clock: Callable[[], int] = time.time_ns) -> BugRepository:
        return cls(MemoryBugTables(), clock)

    @property
    def location(self) -> str:
        return self.tables.location

    # -- reading --------------------------------------------------------------------------

    def filters(self) -> tuple[BugFilter, ...]:
        with self.tables.reading() as session:
            return self._filters(session)

    def _filters(self, session: BugSession) -> tuple[BugFilter, ...]:
        return tuple(parse_filter(text) for text in session.filters())

    def resolve(self, prefix: str) -> str:
        """The full id of the one bug whose id starts with ``prefix`` (git-style)."""
        with self.tables.reading() as session:
            return self._resolve(session, prefix)

    def _resolve(self, session: BugSession, prefix: str) -> str:
        key = prefix.strip().lower()
        if len(key) < 4 or len(key) > 64 or any(c not in "0123456789abcdef" for c in key):
            raise UnknownBug(f"{shown(prefix)} is not a bug id: give at least 4 of its hex digits")
        found = session.bug_ids(key, limit=6)
        if not found:
            hint = ""
            filters = session.filters()
            if filters:
                hint = f" (this copy is partial, made with --filter {'; '.join(filters)})"
            raise UnknownBug(f"no bug {shown(prefix)} in {self.location}" + hint)
        if len(found) > 1:
            shown_ids = ", ".join(bug[: max(len(key) + 1, MIN_SHORT_ID)] for bug in found[:5])
            more = "" if len(found) <= 5 else ", ..."
            raise AmbiguousBugId(f"{shown(prefix)} matches several bugs ({shown_ids}{more})")
        return found[0]

    def short_ids(self, bugs: Iterable[str]) -> dict[str, str]:
        """The shortest prefix (at least 7 digits) of each bug that no other bug here shares."""
        with self.tables.reading() as session:
            return short_ids(session.bug_ids(), bugs)

    def listing(self, query: ListQuery | None = None) -> list[Listed]:
        with self.tables.reading() as session:
            rows = session.snapshots(query or ListQuery())
        shorts = self.short_ids(r.id for r in rows)
        return [Listed(shorts[r.id], r) for r in rows]

    def count(self) -> int:
        with self.tables.reading() as session:
            return len(session.bug_ids())

    def _load(self, session: BugSession, bugs: Iterable[str]) -> Replica:
        replica = Replica(clock=self._clock)
        events = [row_event(row, self.location) for row in session.events(list(bugs))]
        try:
            replica.merge(
                events, where=lambda i: f"{self.location}: stored bug event", ids_verified=True
            )
        except BugEventError as error:
            raise StoredEventError(
                error.where,
                f"{error.problem}. The repository's bug records are inconsistent; restore "
                "it from a copy",
            ) from None
        return replica

    def replica(self, bug: str) -> Replica:
        """A copy of one bug (every event verified), for showing it."""
        with self.tables.reading() as session:
            return self._load(session, [self._resolve(session, bug)])

    def state(self, bug: str) -> BugState:
        replica = self.replica(bug)
        return replica.state(replica.bug_ids()[0])

    def export_rows(self, filters: Sequence[BugFilter] = ()) -> list[EventRow]:
        """Every event of the bugs ``filters`` select (all bugs without filters)."""
        return self.events_for(Summary({}, tuple(filters)), {})

    # -- writing --------------------------------------------------------------------------

    def create(
        self,
        author: str,
        title: str,
        description: str = "",
        *,
        tags: Sequence[str] = (),
        fields: Sequence[tuple[FieldName, str]] = (),
        links: Sequence[tuple[LinkKind, str]] = (),
    ) -> BugEvent:
        """Open a bug, with its first tags, fields and links: all stored, or (on an
        error) none."""
        replica = Replica(clock=self._clock)
        event = replica.create(author, title, description)
        for tag in tags:
            replica.add_tag(event.id, author, tag)
        for name, value in fields:
            replica.set_field(event.id, author, name, value)
        for kind, target in links:
            replica.link(event.id, author, kind, target)
        self.merge(replica.events())
        return event

    def _edit(self, bug: str, make: Callable[[Replica, str], BugEvent]) -> BugEvent:
        with self.tables.writing() as session:
            full = self._resolve(session, bug)
            replica = self._load(session, [full])
            event = make(replica, full)
            self._write(session, replica, [event], [full])
        return event

    def set_field(self, bug: str, author: str, field: FieldName, value: str) -> BugEvent:
        return self._edit(bug, lambda r, b: r.set_field(b, author, field, value))

    def add_tag(self, bug: str, author: str, tag: str) -> BugEvent:
        return self._edit(bug, lambda r, b: r.add_tag(b, author, tag))

    def remove_tag(self, bug: str, author: str, tag: str) -> BugEvent:
        return self._edit(bug, lambda r, b: r.remove_tag(b, author, tag))

    def comment(self, bug: str, author: str, text: str) -> BugEvent:
        return self._edit(bug, lambda r, b: r.comment(b, author, text))

    def link(self, bug: str, author: str, kind: LinkKind, target: str) -> BugEvent:
        return self._edit(bug, lambda r, b: r.link(b, author, kind, target))

    def unlink(self, bug: str, author: str, kind: LinkKind, target: str) -> BugEvent:
        return self._edit(bug, lambda r, b: r.unlink(b, author, kind, target))

    def merge(
        self,
        events: Sequence[BugEvent],
        where: Callable[[int], str] | None = None,
        *,
        ids_verified: bool = False,
    ) -> MergeResult:
        """Add events from elsewhere: checked whole against this copy, then all stored, or none."""
        return self._merge(events, where, ids_verified, None)

    def merge_rows(self, rows: Sequence[EventRow], source: str) -> MergeResult:
        """Merge rows another repository sent: each parsed and verified first."""
        events: list[BugEvent] = []
        data: dict[str, bytes] = {}
        for row in rows:
            event, canonical = _sent_event(row, source)
            events.append(event)
            data[event.id] = canonical
        return self._merge(events, lambda i: f"{source}: event {events[i].id[:12]}", True, data)

    def _merge(
        self,
        events: Sequence[BugEvent],
        where: Callable[[int], str] | None,
        ids_verified: bool,
        data: Mapping[str, bytes] | None,
    ) -> MergeResult:
        """``data``: every event's canonical bytes, verified (stored as they are)."""
        with self.tables.writing() as session:
            bugs = sorted({e.bug for e in events})
            replica = self._load(session, bugs)
            before = replica.event_ids()
            result = replica.merge(events, where, ids_verified=ids_verified)
            if result.added:
                fresh = {e.id: e for e in events if e.id not in before}
                self._write(session, replica, list(fresh.values()), list(result.bugs), data)
            return result

    def _write(
        self,
        session: BugSession,
        replica: Replica,
        events: Sequence[BugEvent],
        bugs: Sequence[str],
        data: Mapping[str, bytes] | None = None,
    ) -> None:
        given = data or {}
        session.insert_events(event_row(e, given.get(e.id)) for e in events)
        session.put_snapshots([_snapshot(replica, bug) for bug in bugs])

    def record_filters(self, filters: Sequence[BugFilter]) -> None:
        with self.tables.writing() as session:
            session.set_filters([f.text for f in filters])

    # -- sync -----------------------------------------------------------------------------

    def head_texts(self) -> dict[str, str]:
        """Per bug, its heads as one string (the first, cheap round of a sync)."""
        with self.tables.reading() as session:
            return session.head_texts()

    def summary(
        self, filters: Sequence[BugFilter] | None = None, bugs: Iterable[str] | None = None
    ) -> Summary:
        """Heads and older ids per bug (of ``bugs``, or all), and this copy's filters."""
        with self.tables.reading() as session:
            found = session.heads(None if bugs is None else list(bugs))
            chosen = self._filters(session) if filters is None else tuple(filters)
        heads = {bug: frozenset(pair[0]) for bug, pair in found.items()}
        older = {bug: pair[1] for bug, pair in found.items()}
        return Summary(heads, chosen, older)

    def events_for(
        self,
        summary: Summary,
        theirs: dict[str, str] | None = None,
        mine: dict[str, str] | None = None,
    ) -> list[EventRow]:
        """The stored events a copy with this summary lacks, parents first, whole bugs only.

        With ``theirs`` (the other copy's :meth:`head_texts`), ``summary`` need only
        cover the bugs whose heads differ: the two-round exchange repositories use
        (``mine``: this copy's head texts, if already read). The rows are sent as
        stored; the receiver verifies every one.
        """
        with self.tables.reading() as session:
            if theirs is None:
                mine = {bug: " ".join(pair[0]) for bug, pair in session.heads().items()}
                theirs = {bug: " ".join(sorted(h)) for bug, h in summary.heads.items()}
            elif mine is None:
                mine = session.head_texts()
            lacking = [bug for bug in mine if bug not in theirs]
            differ = [bug for bug, text in mine.items() if bug in theirs and theirs[bug] != text]
            if summary.filters and lacking:
                rows = session.snapshots(ids=lacking)
                lacking = [r.id for r in rows if wanted(summary.filters, _light_state(r))]
            everything = len(lacking) == len(mine)
            out = session.events(None if everything else lacking) if lacking else []
            if differ:
                held = session.events(differ)
                seen = {row.id: _seen(row) for row in held}
                have: set[str] = set()
                for bug in differ:
                    _ancestors(
                        seen, [*summary.heads.get(bug, ()), *summary.older.get(bug, ())], have
                    )
                out.extend(row for row in held if row.id not in have)
                out.sort(key=_by_clock)  # two sorted runs (the session sorts each)
        return out


_by_clock = attrgetter("lamport", "id")


def _seen(row: EventRow) -> list[str]:
    """The ids an event row says its author had seen (only to choose what to send:
    the receiver checks every event, so a lie here makes an incomplete answer that
    is refused there, never a wrong copy)."""
    try:
        found = json.loads(row.data).get("seen", [])
    except (ValueError, AttributeError):
        return []
    return [i for i in found if isinstance(i, str)] if isinstance(found, list) else []


def _ancestors(seen: dict[str, list[str]], ids: Iterable[str], found: set[str]) -> None:
    """Add to ``found`` the ids among ``seen``'s keys reachable from ``ids``."""
    stack = [i for i in ids if i in seen]
    while stack:
        event_id = stack.pop()
        if event_id in found or event_id not in seen:
            continue
        found.add(event_id)
        stack.extend(seen[event_id])
