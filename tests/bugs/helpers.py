"""Shared helpers for the bug-record tests."""

from __future__ import annotations

import itertools

from proctor.bugs import BugState, Replica

ANN = "Ann <ann@example.org>"
BOB = "Bob <bob@example.org>"


def snapshot(replica: Replica) -> tuple[frozenset[str], dict[str, BugState]]:
    """Everything a copy holds, for before/after and copy/copy comparisons."""
    return replica.event_ids(), replica.states()


def ticking(start: int = 1_000) -> Replica:
    """A whole copy whose wall clock ticks by one per event (deterministic ids)."""
    counter = itertools.count(start)
    return Replica(clock=lambda: next(counter))
