"""A bug's state: a pure fold of its events, the same whatever order they arrive in.

* Scalar fields (title, description, status, severity, assignee) are last-writer-wins
  registers ordered by ``(lamport, author, event id)``: a total order every copy
  agrees on, and never the wall clock, so a skewed clock cannot win (Fossil orders
  ticket changes by timestamp; git-bug by Lamport clock then id).
* Tags and links are observed-remove sets: every add is its own event, and a removal
  cancels only the adds it names (the ones its author had seen), so an add made
  concurrently with a removal survives. Adds and removals commute, which git-bug's
  label changes do not do on their own (there only the replay order makes copies agree).
* Comments only grow; they are listed in ``(lamport, author, id)`` order, which puts
  every comment after the ones its author had seen.

Because the result depends only on the *set* of events, merging copies is a union
of sets: commutative, associative and idempotent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from proctor.bugs.event import (
    AddComment,
    AddLink,
    AddTag,
    BugEvent,
    Create,
    LinkKind,
    RemoveLink,
    RemoveTag,
    SetField,
)

__all__ = ["BugComment", "BugLink", "BugState", "fold"]


@dataclass(frozen=True, slots=True, order=True)
class BugLink:
    kind: LinkKind
    target: str


@dataclass(frozen=True, slots=True)
class BugComment:
    event: str
    author: str
    lamport: int
    wall: int
    text: str


@dataclass(frozen=True, slots=True)
class BugState:
    """What a bug is now. ``tag_adds`` / ``link_adds`` hold the live adds (element, add id)."""

    id: str
    title: str
    description: str
    status: str
    severity: str
    assignee: str
    tag_adds: frozenset[tuple[str, str]]
    link_adds: frozenset[tuple[BugLink, str]]
    comments: tuple[BugComment, ...]
    author: str  # who opened it
    created: int  # wall time of the create event
    updated: int  # latest wall time among its events (display only)
    events: int

    @property
    def tags(self) -> frozenset[str]:
        return frozenset(tag for tag, _ in self.tag_adds)

    @property
    def links(self) -> frozenset[BugLink]:
        return frozenset(link for link, _ in self.link_adds)

    def tag_add_ids(self, tag: str) -> tuple[str, ...]:
        """The live adds of ``tag``: what a removal made now must name."""
        return tuple(sorted(add for name, add in self.tag_adds if name == tag))

    def link_add_ids(self, link: BugLink) -> tuple[str, ...]:
        return tuple(sorted(add for item, add in self.link_adds if item == link))


_Key = tuple[int, str, str]


def fold(events: Iterable[BugEvent]) -> BugState:
    """The state of one bug from all its events, in any order (duplicates are harmless).

    Raises ValueError when there is no create event or the events belong to
    different bugs: a copy only ever holds whole, causally complete bugs.
    """
    create: BugEvent | None = None
    registers: dict[str, tuple[_Key, str]] = {}
    tag_adds: dict[str, str] = {}  # add id -> tag
    link_adds: dict[str, BugLink] = {}
    removed_tags: set[tuple[str, str]] = set()  # (tag, add id)
    removed_links: set[tuple[BugLink, str]] = set()
    comments: list[tuple[_Key, BugComment]] = []
    bug: str | None = None
    updated = 0
    seen_ids: set[str] = set()
    for event in events:
        if event.id in seen_ids:
            continue
        seen_ids.add(event.id)
        if bug is None:
            bug = event.bug
        elif event.bug != bug:
            raise ValueError(f"events of two bugs folded together: {bug} and {event.bug}")
        if event.wall > updated:
            updated = event.wall
        change = event.change
        if isinstance(change, SetField):
            _write(registers, change.field, (event.lamport, event.author, event.id), change.value)
        elif isinstance(change, AddTag):
            tag_adds[event.id] = change.tag
        elif isinstance(change, RemoveTag):
            removed_tags.update((change.tag, add) for add in change.adds)
        elif isinstance(change, RemoveLink):
            link = BugLink(change.kind, change.target)
            removed_links.update((link, add) for add in change.adds)
        elif isinstance(change, AddComment):
            comment = BugComment(event.id, event.author, event.lamport, event.wall, change.text)
            comments.append(((event.lamport, event.author, event.id), comment))
        elif isinstance(change, AddLink):
            link_adds[event.id] = BugLink(change.kind, change.target)
        elif isinstance(change, Create):
            create = event
            key = (event.lamport, event.author, event.id)
            _write(registers, "title", key, change.title)
            _write(registers, "description", key, change.description)
    if create is None:
        raise ValueError(f"bug {bug} has no create event")
    comments.sort()
    live_tags = ((tag, add) for add, tag in tag_adds.items())
    live_links = ((link, add) for add, link in link_adds.items())
    return BugState(
        id=create.id,
        title=registers["title"][1],
        description=registers["description"][1],
        status=_read(registers, "status", "open"),
        severity=_read(registers, "severity", "normal"),
        assignee=_read(registers, "assignee", ""),
        tag_adds=frozenset(pair for pair in live_tags if pair not in removed_tags),
        link_adds=frozenset(pair for pair in live_links if pair not in removed_links),
        comments=tuple(comment for _, comment in comments),
        author=create.author,
        created=create.wall,
        updated=updated,
        events=len(seen_ids),
    )


def _write(registers: dict[str, tuple[_Key, str]], name: str, key: _Key, value: str) -> None:
    held = registers.get(name)
    if held is None or key > held[0]:
        registers[name] = (key, value)


def _read(registers: dict[str, tuple[_Key, str]], name: str, default: str) -> str:
    held = registers.get(name)
    return default if held is None else held[1]
