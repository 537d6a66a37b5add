"""One copy of the bug records, in memory: local edits, merging, summaries for sync.

A :class:`Replica` holds whole bugs, each causally complete (every event's parents
are held too). Local edits become events whose ``seen`` is the bug's current heads
and whose Lamport clock is one more than theirs. :meth:`Replica.merge` takes events
from another copy: it checks the whole batch first (ids, bugs, parents, clocks,
removals) and applies nothing unless all of it is good, so bad input never changes
a copy. Merging is a union of event sets, hence commutative, associative and
idempotent.

Sync sends only what the other side lacks: the receiver's :class:`Summary` gives, for
each bug it holds, its heads and a sample of older events at distances 1, 2, 4, 8...
back from the newest (a few ids per bug, not its log; git's fetch negotiation walks
back the same way), and the filters it was made with. :meth:`Replica.events_for`
answers with the events that are not ancestors of any id it recognises, plus whole
bugs the filters select. The ids it recognises are events the receiver holds, and a
copy holds the ancestors of what it holds, so nothing it lacks is ever left out; when
both sides edited a bug, some events the receiver has may travel again (typically
fewer than it made since they last met; they are skipped on arrival). A bug the
receiver holds keeps receiving its new events even when it no longer matches the
filters: it stays, and stays current (no silent loss, no stale copy passed off as
current).
"""

from __future__ import annotations

import dataclasses
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter

from proctor.bugs.errors import AmbiguousBugId, BugError, BugEventError, UnknownBug, shown
from proctor.bugs.event import (
    AddComment,
    AddLink,
    AddTag,
    BugEvent,
    Change,
    Create,
    FieldName,
    LinkKind,
    RemoveLink,
    RemoveTag,
    SetField,
    make_event,
    verify_event,
)
from proctor.bugs.filters import BugFilter, wanted
from proctor.bugs.state import BugLink, BugState, fold

__all__ = ["MIN_SHORT_ID", "MergeResult", "Replica", "Summary"]

#: Short bug ids are at least this long, and longer where needed to stay unique.
MIN_SHORT_ID = 7


@dataclass(frozen=True, slots=True)
class Summary:
    """What a copy holds, for a sync: per bug its heads and older ids; its filters."""

    heads: Mapping[str, frozenset[str]]
    filters: tuple[BugFilter, ...] = ()
    older: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MergeResult:
    added: int  # events new to this copy
    held: int  # events it already had (skipped: merging is idempotent)
    bugs: tuple[str, ...]  # bugs that changed, sorted


def _unseen(
    event: BugEvent, targets: Iterable[str], known: Callable[[str], BugEvent | None]
) -> str | None:
    """One of ``targets`` that is not an ancestor of ``event`` (None if all are)."""
    wanted_ids = set(targets)
    found = [known(t) for t in wanted_ids]
    floor = min((e.lamport for e in found if e is not None), default=0)
    stack = list(event.seen)
    visited: set[str] = set()
    while stack and wanted_ids:
        event_id = stack.pop()
        if event_id in visited:
            continue
        visited.add(event_id)
        wanted_ids.discard(event_id)
        parent = known(event_id)
        if parent is not None and parent.lamport > floor:
            stack.extend(parent.seen)
    return min(wanted_ids) if wanted_ids else None


def _misfit(
    event: BugEvent, held: Mapping[str, BugEvent], batch: Mapping[str, BugEvent]
) -> str | None:
    """What is wrong with ``event`` joining a copy holding ``held`` plus ``batch``, or None."""
    change = event.change
    if isinstance(change, Create):
        if event.bug != event.id or event.seen:
            return "a create event must be its own bug and see nothing"
        return None
    bug = event.bug
    creator = held.get(bug) or batch.get(bug)
    if creator is None or not isinstance(creator.change, Create):
        return (
            f"its bug {bug[:12]} is not in this copy or the sync "
            "(the sync is incomplete: ask for the whole bug)"
        )
    for parent_id in event.seen:
        parent = held.get(parent_id) or batch.get(parent_id)
        if parent is None:
            return (
                f"it follows event {parent_id[:12]}, which neither this copy nor the "
                "sync holds (the sync is incomplete: ask for the whole bug)"
            )
        if parent.bug != bug:
            return f"it follows event {parent_id[:12]} of another bug"
        if parent.lamport >= event.lamport:
            return (
                f"its clock {event.lamport} is not above its parent's "
                f"({parent.lamport}): the event is corrupt"
            )
    if isinstance(change, RemoveTag | RemoveLink):

        def known(event_id: str) -> BugEvent | None:
            return held.get(event_id) or batch.get(event_id)

        for add_id in change.adds:
            add = known(add_id)
            matches = add is not None and (
                add.change == AddTag(change.tag)
                if isinstance(change, RemoveTag)
                else add.change == AddLink(change.kind, change.target)
            )
            if add is None or not matches or add.bug != bug:
                return f"it removes {add_id[:12]}, which is not an add it removes"
        unseen = _unseen(event, change.adds, known)
        if unseen:
            return (
                f"it removes {unseen[:12]}, which its author had not seen "
                "(a removal cancels only adds it follows)"
            )
    return None


_order = attrgetter("lamport", "id")
"""Parents have smaller clocks than their children, so this is a causal order."""


class Replica:
    """An in-memory copy of some or all bugs. ``filters`` records how a partial copy was made."""

    def __init__(
        self, filters: Sequence[BugFilter] = (), clock: Callable[[], int] = time.time_ns
    ) -> None:
        self._filters = tuple(filters)
        self._clock = clock
        self._events: dict[str, BugEvent] = {}
        self._by_bug: dict[str, list[BugEvent]] = {}
        self._heads: dict[str, frozenset[str]] = {}
        self._lamport: dict[str, int] = {}
        self._states: dict[str, BugState] = {}
        self._sorted_ids: list[str] | None = None

    # -- reading --------------------------------------------------------------------------

    @property
    def filters(self) -> tuple[BugFilter, ...]:
        return self._filters

    @property
    def partial(self) -> bool:
        """True for a copy made with filters: bugs it lacks may exist elsewhere."""
        return bool(self._filters)

    def __len__(self) -> int:
        return len(self._by_bug)

    def __contains__(self, bug: object) -> bool:
        return bug in self._by_bug

    def bug_ids(self) -> list[str]:
        if self._sorted_ids is None:
            self._sorted_ids = sorted(self._by_bug)
        return self._sorted_ids

    def events(self, bug: str | None = None) -> list[BugEvent]:
        """One bug's events (or every event), parents before children."""
        chosen = self._events.values() if bug is None else self._by_bug[self.resolve(bug)]
        return sorted(chosen, key=_order)

    def event_ids(self) -> frozenset[str]:
        return frozenset(self._events)

    def heads(self, bug: str) -> frozenset[str]:
        return self._heads[self.resolve(bug)]

    def lamport(self, bug: str) -> int:
        """The largest Lamport clock among the bug's events."""
        return self._lamport[self.resolve(bug)]

    def state(self, bug: str) -> BugState:
        bug = self.resolve(bug)
        held = self._states.get(bug)
        if held is None:
            held = self._states[bug] = fold(self._by_bug[bug])
        return held

    def states(self) -> dict[str, BugState]:
        return {bug: self.state(bug) for bug in self.bug_ids()}

    def resolve(self, prefix: str) -> str:
        """The full id of the one bug whose id starts with ``prefix`` (git-style)."""
        if prefix in self._by_bug:
            return prefix
        key = prefix.strip().lower()
        if len(key) < 4 or any(c not in "0123456789abcdef" for c in key):
            raise UnknownBug(f"{shown(prefix)} is not a bug id: give at least 4 of its hex digits")
        ids = self.bug_ids()
        start = bisect_left(ids, key)
        found = []
        for bug in ids[start:]:
            if not bug.startswith(key):
                break
            found.append(bug)
        if not found:
            raise UnknownBug(f"no bug {shown(prefix)} in this copy" + self._partial_hint())
        if len(found) > 1:
            listed = ", ".join(self.short_id(bug) for bug in found[:5])
            raise AmbiguousBugId(f"{shown(prefix)} matches {len(found)} bugs ({listed}); give more")
        return found[0]

    def short_id(self, bug: str) -> str:
        """The shortest prefix (at least :data:`MIN_SHORT_ID`) no other bug here shares."""
        ids = self.bug_ids()
        index = bisect_left(ids, bug)
        length = MIN_SHORT_ID
        for other in ids[max(0, index - 1) : index + 2]:
            if other != bug:
                common = next(
                    (i for i, (a, b) in enumerate(zip(bug, other, strict=True)) if a != b), 64
                )
                length = max(length, common + 1)
        return bug[:length]

    def _partial_hint(self) -> str:
        if not self._filters:
            return ""
        texts = "; ".join(f.text for f in self._filters)
        return f" (this copy is partial, made with --filter {texts})"

    # -- local edits ----------------------------------------------------------------------

    def create(self, author: str, title: str, description: str = "") -> BugEvent:
        """Open a bug; its id is the returned event's id."""
        event = make_event(
            Create(title, description), bug=None, author=author, lamport=1, wall=self._clock()
        )
        if event.id not in self._events:
            self._apply(event)
        return event

    def set_field(self, bug: str, author: str, field: FieldName, value: str) -> BugEvent:
        return self._append(bug, author, SetField(field, value))

    def add_tag(self, bug: str, author: str, tag: str) -> BugEvent:
        return self._append(bug, author, AddTag(tag))

    def remove_tag(self, bug: str, author: str, tag: str) -> BugEvent:
        """Remove ``tag`` as this copy sees it; an add made elsewhere meanwhile survives."""
        adds = self.state(bug).tag_add_ids(tag)
        if not adds:
            raise BugError(f"bug {self.short_id(self.resolve(bug))} has no tag {shown(tag)}")
        return self._append(bug, author, RemoveTag(tag, adds))

    def comment(self, bug: str, author: str, text: str) -> BugEvent:
        return self._append(bug, author, AddComment(text))

    def link(self, bug: str, author: str, kind: LinkKind, target: str) -> BugEvent:
        return self._append(bug, author, AddLink(kind, target))

    def unlink(self, bug: str, author: str, kind: LinkKind, target: str) -> BugEvent:
        adds = self.state(bug).link_add_ids(BugLink(kind, target))
        if not adds:
            raise BugError(
                f"bug {self.short_id(self.resolve(bug))} has no {kind} link {shown(target)}"
            )
        return self._append(bug, author, RemoveLink(kind, target, adds))

    def _append(self, bug: str, author: str, change: Change) -> BugEvent:
        bug = self.resolve(bug)
        event = make_event(
            change,
            bug=bug,
            author=author,
            lamport=self._lamport[bug] + 1,
            wall=self._clock(),
            seen=tuple(self._heads[bug]),
        )
        self._apply(event)
        return event

    def _apply(self, event: BugEvent) -> None:
        bug = event.bug
        self._events[event.id] = event
        if bug not in self._by_bug:
            self._by_bug[bug] = []
            self._heads[bug] = frozenset()
            self._lamport[bug] = 0
            self._sorted_ids = None
        self._by_bug[bug].append(event)
        self._heads[bug] = self._heads[bug].difference(event.seen) | {event.id}
        self._lamport[bug] = max(self._lamport[bug], event.lamport)
        self._states.pop(bug, None)

    # -- merging --------------------------------------------------------------------------

    def merge(
        self,
        events: Iterable[BugEvent],
        where: Callable[[int], str] | None = None,
        *,
        ids_verified: bool = False,
    ) -> MergeResult:
        """Add another copy's events: all of them after checking all of them, or none.

        ``where(i)`` names the i-th event in messages (a bundle passes its line
        numbers). An event held already is skipped; the same event twice in one
        batch, a forged id, or an event that does not fit its bug is refused with
        :class:`BugEventError` and the copy is left as it was. ``ids_verified``
        skips re-hashing events that :func:`~proctor.bugs.event.parse_event` has
        just verified (a bundle's); every other check still runs.
        """
        label = where or (lambda i: f"event {i + 1} of the sync")
        given = events if isinstance(events, list | tuple) else list(events)
        held_events = self._events
        batch: dict[str, BugEvent] = {}
        held = 0
        for index, event in enumerate(given):
            event_id = event.id
            if event_id in batch:
                first = next(i for i, e in enumerate(given) if e.id == event_id)
                raise BugEventError(label(index), f"the same event as {label(first)}: refused")
            batch[event_id] = event
            mine = held_events.get(event_id)
            if mine is not None and mine == event:
                held += 1
                continue
            if not ids_verified:
                verify_event(event, label(index))
        new = sorted((e for e in batch.values() if e.id not in held_events), key=_order)
        for event in new:
            problem = _misfit(event, held_events, batch)
            if problem is not None:
                index = next(i for i, e in enumerate(given) if e is event)
                raise BugEventError(label(index), problem)
        self._apply_all(new)
        return MergeResult(len(new), held, tuple(sorted({e.bug for e in new})))

    def _apply_all(self, events: Sequence[BugEvent]) -> None:
        """Apply checked events in causal order, bug by bug (:meth:`_apply`'s result)."""
        by_bug: dict[str, list[BugEvent]] = {}
        for event in events:
            self._events[event.id] = event
            added = by_bug.get(event.bug)
            if added is None:
                by_bug[event.bug] = [event]
            else:
                added.append(event)
        for bug, added in by_bug.items():
            held = self._by_bug.get(bug)
            if held is None:
                held = self._by_bug[bug] = []
                heads: frozenset[str] = frozenset()
                lamport = 0
                self._sorted_ids = None
            else:
                heads = self._heads[bug]
                lamport = self._lamport[bug]
                self._states.pop(bug, None)
            held.extend(added)
            # Parents come before children (causal order), so a head is any event here
            # or before that no event here follows; the last one has the largest clock.
            seen: set[str] = set()
            for event in added:
                seen.update(event.seen)
            self._heads[bug] = heads.union(e.id for e in added).difference(seen)
            self._lamport[bug] = max(lamport, added[-1].lamport)

    # -- sync -----------------------------------------------------------------------------

    def summary(self, filters: Sequence[BugFilter] | None = None) -> Summary:
        """What to send the other side first: heads per bug, and this copy's filters."""
        chosen = self._filters if filters is None else tuple(filters)
        return Summary(dict(self._heads), chosen, {bug: self.older(bug) for bug in self._by_bug})

    def older(self, bug: str) -> tuple[str, ...]:
        """The summary's sample of the bug's older events: ids at distances 1, 2, 4, 8...
        from the newest event, heads left out."""
        bug = self.resolve(bug)
        events = self._by_bug[bug]
        if len(events) <= len(self._heads[bug]):
            return ()
        newest_first = sorted(events, key=_order, reverse=True)
        picked: list[str] = []
        distance = 1
        while distance < len(newest_first):
            event_id = newest_first[distance].id
            if event_id not in self._heads[bug]:
                picked.append(event_id)
            distance *= 2
        return tuple(picked)

    def events_for(self, summary: Summary) -> list[BugEvent]:
        """The events a copy with this summary lacks, parents first, whole bugs only."""
        out: list[BugEvent] = []
        for bug in self.bug_ids():
            theirs = summary.heads.get(bug)
            if theirs is None:
                if wanted(summary.filters, self.state(bug)):
                    out.extend(sorted(self._by_bug[bug], key=_order))
            elif theirs != self._heads[bug]:
                have = self._ancestors([*theirs, *summary.older.get(bug, ())])
                out.extend(sorted((e for e in self._by_bug[bug] if e.id not in have), key=_order))
        return out

    def _ancestors(self, heads: Iterable[str]) -> set[str]:
        found: set[str] = set()
        stack = [h for h in heads if h in self._events]
        while stack:
            event_id = stack.pop()
            if event_id not in found:
                found.add(event_id)
                stack.extend(self._events[event_id].seen)
        return found

    def pull(self, source: Replica, filters: Sequence[BugFilter] | None = None) -> MergeResult:
        """Take from ``source`` what this copy lacks (under its own filters unless given)."""
        return self.merge(source.events_for(self.summary(filters)))

    @classmethod
    def clone(
        cls,
        source: Replica,
        filters: Sequence[BugFilter] = (),
        clock: Callable[[], int] = time.time_ns,
    ) -> Replica:
        """A new copy of ``source``, partial if ``filters`` are given (and recording them)."""
        copy = cls(filters, clock)
        copy.pull(source)
        return copy
