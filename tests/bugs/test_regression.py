"""When a bug was closed (proctor.bugs.regression): the status register's winner decides."""

from __future__ import annotations

from proctor.bugs.regression import closed_at, closing_times
from proctor.bugs.repository import BugRepository

from .helpers import ANN, BOB, ticking


def test_a_bug_never_closed_has_no_closing_time() -> None:
    copy = ticking()
    bug = copy.create(ANN, "flaky login").bug
    assert closed_at(copy.events(bug)) is None
    copy.set_field(bug, ANN, "status", "in-progress")
    assert closed_at(copy.events(bug)) is None


def test_the_closing_is_the_event_that_set_the_status_in_force() -> None:
    copy = ticking(start=1_000)
    bug = copy.create(ANN, "flaky login").bug
    first = copy.set_field(bug, ANN, "status", "closed")
    assert closed_at(copy.events(bug)) == first.wall
    copy.set_field(bug, BOB, "status", "open")
    assert closed_at(copy.events(bug)) is None  # reopened
    again = copy.set_field(bug, ANN, "status", "closed")
    assert closed_at(copy.events(bug)) == again.wall > first.wall


def test_concurrent_close_and_reopen_agree_on_every_copy() -> None:
    ann, bob = ticking(start=1_000), ticking(start=5_000)
    bug = ann.create(ANN, "flaky login").bug
    bob.merge(ann.events())
    closing = ann.set_field(bug, ANN, "status", "closed")
    reopening = bob.set_field(bug, BOB, "status", "open")  # same Lamport clock, never saw it
    ann.merge(bob.events())
    bob.merge(ann.events())
    # Whatever the order the events arrived in, both copies agree: the register's
    # winner (Lamport clock, then author) decides, never the wall clock.
    assert closing.lamport == reopening.lamport
    expected = closing.wall if (ANN > BOB) else None
    assert closed_at(ann.events(bug)) == closed_at(bob.events(bug)) == expected
    assert closed_at(reversed(ann.events(bug))) == expected


def test_closing_times_keep_only_closed_records_of_this_repository() -> None:
    repository = BugRepository.memory(clock=iter(range(10_000, 20_000)).__next__)
    closed = repository.create(ANN, "timeouts").id
    still_open = repository.create(ANN, "key error").id
    repository.set_field(closed, ANN, "status", "closed")
    references = [
        closed[:8],
        still_open[:8],
        "LP#7",
        "https://bugs.example.org/7",
        "deadbeef",  # looks like an id, names no record here
    ]
    found = closing_times(repository, references)
    assert list(found) == [closed[:8]]
    assert found[closed[:8]] == closed_at(repository.replica(closed).events(closed))
