"""The fold: defaults, last-writer-wins registers, observed-remove tags and links, comments."""

from __future__ import annotations

import itertools

import pytest

from proctor.bugs import BugLink, Replica, fold, make_event
from proctor.bugs.event import AddTag, Create, SetField

from .helpers import ANN, BOB, ticking


def test_a_new_bug_has_the_defaults() -> None:
    copy = ticking()
    bug = copy.create(ANN, "Crash", "details").id
    state = copy.state(bug)
    assert (state.id, state.title, state.description) == (bug, "Crash", "details")
    assert (state.status, state.severity, state.assignee) == ("open", "normal", "")
    assert (state.tags, state.links, state.comments) == (frozenset(), frozenset(), ())
    assert (state.author, state.created, state.updated, state.events) == (ANN, 1000, 1000, 1)


def test_each_scalar_field_is_set_by_its_event() -> None:
    copy = ticking()
    bug = copy.create(ANN, "Crash").id
    copy.set_field(bug, ANN, "title", "Crash on start")
    copy.set_field(bug, ANN, "description", "more")
    copy.set_field(bug, ANN, "status", "in-progress")
    copy.set_field(bug, ANN, "severity", "high")
    copy.set_field(bug, ANN, "assignee", BOB)
    state = copy.state(bug)
    assert (state.title, state.description, state.status, state.severity, state.assignee) == (
        "Crash on start",
        "more",
        "in-progress",
        "high",
        BOB,
    )
    copy.set_field(bug, ANN, "assignee", "")
    assert copy.state(bug).assignee == ""
    assert copy.state(bug).updated == 1006


def _concurrent_pair() -> tuple[Replica, Replica, str]:
    ann = ticking(1000)
    bug = ann.create(ANN, "Crash").id
    bob = Replica.clone(ann, clock=itertools.count(5000).__next__)
    return ann, bob, bug


def _sync(*copies: Replica) -> None:
    for left, right in itertools.permutations(copies, 2):
        left.pull(right)


def test_concurrent_writes_are_ordered_by_lamport_then_author_then_id_never_wall_time() -> None:
    ann, bob, bug = _concurrent_pair()
    ann.set_field(bug, ANN, "status", "fixed")  # wall 1001, lamport 2
    bob.set_field(bug, BOB, "status", "wontfix")  # wall 5000, lamport 2
    _sync(ann, bob)
    # Equal clocks: the author decides ("Bob" > "Ann"), whatever the wall times.
    assert ann.state(bug).status == bob.state(bug).status == "wontfix"
    ann.set_field(bug, ANN, "status", "closed")  # lamport 3 beats lamport 2
    _sync(ann, bob)
    assert ann.state(bug).status == bob.state(bug).status == "closed"


def test_a_skewed_wall_clock_does_not_win() -> None:
    ann = Replica(clock=lambda: 10**18)  # far in the future
    bug = ann.create(ANN, "Crash").id
    ann.set_field(bug, ANN, "severity", "low")
    bob = Replica.clone(ann, clock=lambda: 1)
    bob.set_field(bug, BOB, "severity", "critical")  # later by causality, earlier by wall
    ann.pull(bob)
    assert ann.state(bug).severity == "critical"


def test_equal_clock_and_author_fall_back_to_the_event_id() -> None:
    create = make_event(Create("Crash"), bug=None, author=ANN, lamport=1, wall=0)
    one = make_event(
        SetField("title", "one"), bug=create.id, author=ANN, lamport=2, wall=0, seen=(create.id,)
    )
    two = make_event(
        SetField("title", "two"), bug=create.id, author=ANN, lamport=2, wall=0, seen=(create.id,)
    )
    winner = max((one, two), key=lambda e: e.id).change
    assert isinstance(winner, SetField)
    for order in itertools.permutations([create, one, two]):
        assert fold(order).title == winner.value


def test_a_removal_cancels_only_the_adds_its_author_had_seen() -> None:
    ann, bob, bug = _concurrent_pair()
    ann.add_tag(bug, ANN, "flaky")
    _sync(ann, bob)
    bob.remove_tag(bug, BOB, "flaky")  # saw ann's add
    ann.add_tag(bug, ANN, "flaky")  # concurrent: bob has not seen it
    _sync(ann, bob)
    assert ann.state(bug).tags == bob.state(bug).tags == {"flaky"}
    assert len(ann.state(bug).tag_add_ids("flaky")) == 1
    ann.remove_tag(bug, ANN, "flaky")  # now one removal that saw every add
    _sync(ann, bob)
    assert ann.state(bug).tags == bob.state(bug).tags == frozenset()


def test_a_removal_made_after_seeing_every_add_wins_and_other_tags_stay() -> None:
    copy = ticking()
    bug = copy.create(ANN, "Crash").id
    copy.add_tag(bug, ANN, "flaky")
    copy.add_tag(bug, BOB, "flaky")
    copy.add_tag(bug, ANN, "component:store")
    copy.remove_tag(bug, BOB, "flaky")
    assert copy.state(bug).tags == {"component:store"}


def test_links_are_an_observed_remove_set_of_kind_and_target() -> None:
    ann, bob, bug = _concurrent_pair()
    ann.link(bug, ANN, "test", "tests.a.test_x")
    ann.link(bug, ANN, "cluster", "sig:1")
    ann.link(bug, ANN, "commit", "2d748d4")
    ann.link(bug, ANN, "rule", "rule-1")
    _sync(ann, bob)
    bob.unlink(bug, BOB, "test", "tests.a.test_x")
    ann.link(bug, ANN, "test", "tests.a.test_x")  # concurrent re-link survives
    bob.unlink(bug, BOB, "rule", "rule-1")
    _sync(ann, bob)
    expected = {
        BugLink("test", "tests.a.test_x"),
        BugLink("cluster", "sig:1"),
        BugLink("commit", "2d748d4"),
    }
    assert ann.state(bug).links == bob.state(bug).links == expected


def test_comments_only_grow_and_list_after_what_their_author_had_seen() -> None:
    ann, bob, bug = _concurrent_pair()
    first = ann.comment(bug, ANN, "first")
    _sync(ann, bob)
    reply = bob.comment(bug, BOB, "reply")
    ann.comment(bug, ANN, "meanwhile")
    _sync(ann, bob)
    texts = [c.text for c in ann.state(bug).comments]
    assert texts[0] == "first"
    assert sorted(texts[1:]) == ["meanwhile", "reply"]
    assert ann.state(bug).comments == bob.state(bug).comments
    assert ann.state(bug).comments[0].event == first.id
    assert reply.id in {c.event for c in bob.state(bug).comments}


def test_the_fold_needs_a_create_and_one_bug() -> None:
    copy = ticking()
    bug = copy.create(ANN, "Crash").id
    tag = copy.add_tag(bug, ANN, "x")
    other = copy.create(ANN, "Hang")
    with pytest.raises(ValueError, match="no create event"):
        fold([tag])
    with pytest.raises(ValueError, match="two bugs"):
        fold([*copy.events(bug), other])


def test_duplicates_in_the_fold_count_once() -> None:
    copy = ticking()
    bug = copy.create(ANN, "Crash").id
    copy.add_tag(bug, ANN, "x")
    events = copy.events(bug)
    assert fold(events + events) == fold(events)
    assert fold(events + events).events == 2


def test_tag_events_carry_the_tag() -> None:
    copy = ticking()
    bug = copy.create(ANN, "Crash").id
    assert copy.add_tag(bug, ANN, "x").change == AddTag("x")
