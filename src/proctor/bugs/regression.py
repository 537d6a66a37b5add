"""Closed bugs that fail again: when a bug was closed, for ``proctor triage``.

A known-bug rule names its bug by reference (a URL, a tracker id, or the id of
a ``proctor bug`` record in this repository). When the reference is a record
here and the record is *closed*, a failure the rule explains in a run begun
after the closing says the fix did not hold: ``proctor triage`` shows the
cluster as *regressed* against that bug.

The closing time is the wall time of the event whose status is in force: the
status register's winner, ordered like every register by ``(lamport, author,
event id)`` (:mod:`proctor.bugs.state`), so every copy agrees which event
closed the bug. Its wall clock is the closer's: a copy whose clock is skewed
moves the line, never the verdict on failures days apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from proctor.bugs.errors import AmbiguousBugId, UnknownBug
from proctor.bugs.event import BugEvent, SetField
from proctor.bugs.repository import BugRepository

__all__ = ["closed_at", "closing_times"]

_RECORD_ID = re.compile(r"[0-9a-f]{4,64}")
"""What a reference to a record of this repository looks like (a hex id prefix)."""


def closed_at(events: Iterable[BugEvent]) -> int | None:
    """The wall time (ns) at which a bug was closed, from its events; None when
    its status now is anything but ``closed`` (or was never set)."""
    winner: tuple[tuple[int, str, str], str, int] | None = None
    for event in events:
        change = event.change
        if isinstance(change, SetField) and change.field == "status":
            key = (event.lamport, event.author, event.id)
            if winner is None or key > winner[0]:
                winner = (key, change.value, event.wall)
    if winner is None or winner[1] != "closed":
        return None
    return winner[2]


def closing_times(repository: BugRepository, references: Iterable[str]) -> dict[str, int]:
    """Of ``references`` (as rules name their bugs), those that are records of
    ``repository`` now closed, each with the time it was closed. A reference
    that is a URL, another tracker's id, unknown here or ambiguous is left out."""
    found: dict[str, int] = {}
    for reference in sorted(set(references)):
        if not _RECORD_ID.fullmatch(reference.strip().lower()):
            continue
        try:
            replica = repository.replica(reference)
        except (UnknownBug, AmbiguousBugId):
            continue
        (bug,) = replica.bug_ids()
        when = closed_at(replica.events(bug))
        if when is not None:
            found[reference] = when
    return found
