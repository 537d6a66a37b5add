"""A copy: local edits, ids, merges that refuse bad input whole, summaries and filtered sync."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from proctor.bugs import (
    AmbiguousBugId,
    BugError,
    BugEventError,
    Replica,
    Summary,
    UnknownBug,
    make_event,
    parse_filter,
)
from proctor.bugs.event import AddTag, Create, RemoveTag, SetField

from .helpers import ANN, BOB, snapshot, ticking


def test_local_edits_follow_the_heads_with_the_next_clock() -> None:
    copy = ticking()
    create = copy.create(ANN, "Crash")
    assert (create.lamport, create.seen) == (1, ())
    tag = copy.add_tag(create.id, ANN, "x")
    assert (tag.lamport, tag.seen, tag.bug) == (2, (create.id,), create.id)
    assert copy.heads(create.id) == {tag.id}
    other = Replica.clone(copy)
    left = copy.comment(create.id, ANN, "left")
    right = other.comment(create.id, BOB, "right")
    copy.pull(other)
    assert copy.heads(create.id) == {left.id, right.id}
    joined = copy.set_field(create.id, ANN, "status", "fixed")
    assert joined.seen == tuple(sorted({left.id, right.id}))
    assert joined.lamport == 4
    assert copy.heads(create.id) == {joined.id}


def test_short_ids_are_unique_prefixes_and_resolve_back() -> None:
    copy = ticking()
    bugs = [copy.create(ANN, f"bug {n}").id for n in range(300)]
    shorts = {copy.short_id(bug) for bug in bugs}
    assert len(shorts) == 300
    assert all(len(short) >= 7 for short in shorts)
    for bug in bugs:
        short = copy.short_id(bug)
        assert copy.resolve(short) == bug
        assert copy.resolve(short.upper()) == bug
        assert not any(o.startswith(short) for o in bugs if o != bug)
    # The same bug has the same full id in every copy (content ids), so prefixes agree.
    assert Replica.clone(copy).short_id(bugs[0]) == copy.short_id(bugs[0])


def test_resolving_an_unknown_ambiguous_or_bad_prefix_says_why() -> None:
    copy = ticking()
    bugs = sorted(copy.create(ANN, f"bug {n}").id for n in range(2000))
    # Deterministic ids (a ticking clock); 2000 ids share 4-digit prefixes many times over.
    shared = next(a[:4] for a, b in itertools.pairwise(bugs) if a[:4] == b[:4])
    with pytest.raises(AmbiguousBugId, match=f"'{shared}' matches [0-9]+ bugs .*give more"):
        copy.resolve(shared)
    with pytest.raises(UnknownBug, match="at least 4 of its hex digits"):
        copy.resolve("abc")
    with pytest.raises(UnknownBug, match="not a bug id"):
        copy.resolve("zzzzzzz")
    missing = next(p for p in ("0000000", "fffffff") if not any(b.startswith(p) for b in bugs))
    with pytest.raises(UnknownBug, match="no bug"):
        copy.resolve(missing)
    partial = Replica.clone(copy, [parse_filter("tag=none")])
    with pytest.raises(UnknownBug, match="this copy is partial, made with --filter tag=none"):
        partial.resolve(bugs[0][:10])


def test_removing_a_tag_or_link_that_is_not_there_is_refused() -> None:
    copy = ticking()
    bug = copy.create(ANN, "Crash").id
    with pytest.raises(BugError, match="has no tag 'x'"):
        copy.remove_tag(bug, ANN, "x")
    with pytest.raises(BugError, match="has no test link"):
        copy.unlink(bug, ANN, "test", "t.a")


def _source() -> tuple[Replica, str]:
    copy = ticking()
    bug = copy.create(ANN, "Crash").id
    copy.add_tag(bug, ANN, "flaky")
    copy.comment(bug, BOB, "again")
    return copy, bug


def test_merging_is_idempotent_and_counts_what_it_had() -> None:
    source, bug = _source()
    copy = Replica()
    first = copy.merge(source.events())
    assert (first.added, first.held, first.bugs) == (3, 0, (bug,))
    again = copy.merge(source.events())
    assert (again.added, again.held, again.bugs) == (0, 3, ())
    assert snapshot(copy) == snapshot(source)


def _refused(copy: Replica, events: list[object], message: str) -> None:
    before = snapshot(copy)
    with pytest.raises(BugEventError, match=message):
        copy.merge(events)  # type: ignore[arg-type]
    assert snapshot(copy) == before


def test_the_same_event_twice_in_one_sync_is_refused_and_nothing_changes() -> None:
    source, _ = _source()
    copy = Replica()
    events = source.events()
    _refused(copy, [*events, events[1]], "event 4 of the sync: the same event as event 2")
    assert len(copy) == 0


def test_a_forged_event_is_refused_even_after_good_ones() -> None:
    source, bug = _source()
    copy = Replica()
    good = source.events()
    forged = dataclasses.replace(good[1], change=AddTag("not-flaky"))
    _refused(copy, [*good[:1], forged, *good[2:]], "event 2 of the sync.*does not match")
    copy.merge(good)
    # Same id as a held event, other content: refused, the held event kept.
    _refused(copy, [forged], "does not match its content")
    assert copy.state(bug).tags == {"flaky"}


def test_an_event_whose_parents_or_bug_are_missing_is_refused() -> None:
    source, _ = _source()
    events = source.events()
    _refused(Replica(), [events[0], events[2]], "neither this copy nor the sync holds")
    _refused(Replica(), events[1:], "its bug .* is not in this copy or the sync")


def test_clocks_must_rise_along_the_log_and_removals_must_cite_real_adds() -> None:
    source, bug = _source()
    _, add, comment = source.events()
    stalled = make_event(
        SetField("status", "fixed"), bug=bug, author=ANN, lamport=3, wall=0, seen=(comment.id,)
    )
    _refused(Replica.clone(source), [stalled], "clock 3 is not above its parent's")
    wrong_tag = make_event(
        RemoveTag("other", (add.id,)), bug=bug, author=ANN, lamport=4, wall=0, seen=(comment.id,)
    )
    _refused(Replica.clone(source), [wrong_tag], "not an add it removes")
    not_an_add = make_event(
        RemoveTag("flaky", (comment.id,)),
        bug=bug,
        author=ANN,
        lamport=4,
        wall=0,
        seen=(comment.id,),
    )
    _refused(Replica.clone(source), [not_an_add], "not an add it removes")
    elsewhere = Replica.clone(source)
    other = elsewhere.create(ANN, "Hang")
    cross = make_event(
        SetField("status", "fixed"), bug=bug, author=ANN, lamport=4, wall=0, seen=(other.id,)
    )
    _refused(elsewhere, [cross], "of another bug")


def test_a_hand_built_create_that_is_not_its_own_bug_is_refused() -> None:
    create = make_event(Create("Crash"), bug=None, author=ANN, lamport=1, wall=0)
    odd = dataclasses.replace(create, bug="e" * 64)
    _refused(Replica(), [odd], "must be its own bug")


def test_only_what_the_other_side_lacks_travels() -> None:
    source, bug = _source()
    copy = Replica.clone(source)
    assert source.events_for(copy.summary()) == []
    new = source.set_field(bug, ANN, "status", "fixed")
    assert source.events_for(copy.summary()) == [new]
    mine = copy.comment(bug, BOB, "mine")
    # Heads the sender does not know: it still sends only what lies above the common ones.
    assert source.events_for(copy.summary()) == [new]
    assert copy.events_for(source.summary()) == [mine]
    summary = copy.summary()
    assert set(summary.heads) == {bug}
    assert summary.heads[bug] == {mine.id}


def test_a_filtered_copy_records_its_filters_and_takes_whole_matching_bugs() -> None:
    source = ticking()
    store = source.create(ANN, "Store crash").id
    source.add_tag(store, ANN, "component:store")
    source.link(store, ANN, "test", "tests.store.test_x")
    runner = source.create(ANN, "Runner hang").id
    copy = Replica.clone(source, [parse_filter("component=store")])
    assert copy.partial
    assert [f.text for f in copy.filters] == ["component=store"]
    assert copy.bug_ids() == [store]
    assert copy.events(store) == source.events(store)  # the whole log, never part of one
    assert not Replica.clone(source).partial
    by_test = Replica.clone(source, [parse_filter("test~tests.store.*")])
    assert by_test.bug_ids() == [store]
    either = Replica.clone(
        source, [parse_filter("status=closed"), parse_filter("id=" + runner[:8])]
    )
    assert either.bug_ids() == [runner]


def test_a_bug_that_comes_to_match_arrives_and_one_that_stops_matching_stays_current() -> None:
    source = ticking()
    first = source.create(ANN, "First").id
    source.set_field(first, ANN, "assignee", ANN)
    second = source.create(ANN, "Second").id
    copy = Replica.clone(source, [parse_filter(f"assignee={ANN!r}")])
    assert copy.bug_ids() == [first]
    source.set_field(second, ANN, "assignee", ANN)  # comes to match
    source.set_field(first, ANN, "assignee", BOB)  # stops matching
    result = copy.pull(source)
    assert set(result.bugs) == {first, second}
    assert copy.bug_ids() == sorted([first, second])
    assert copy.state(first) == source.state(first)  # kept, and up to date
    assert copy.state(second) == source.state(second)


def test_a_one_off_filtered_pull_does_not_change_the_recorded_filters() -> None:
    source, bug = _source()
    copy = Replica()
    copy.pull(source, [parse_filter("status=closed")])
    assert len(copy) == 0
    assert not copy.partial
    copy.pull(source)
    assert copy.bug_ids() == [bug]


def test_a_summary_from_nothing_asks_for_everything() -> None:
    source, _ = _source()
    assert source.events_for(Summary({})) == source.events()


def test_after_offline_edits_on_both_sides_few_events_travel_twice() -> None:
    source, bug = _source()
    for n in range(20):
        source.comment(bug, ANN, f"old {n}")
    copy = Replica.clone(source)
    mine = [copy.comment(bug, BOB, f"mine {n}").id for n in range(5)]
    theirs = [source.comment(bug, ANN, f"theirs {n}").id for n in range(3)]
    sent = source.events_for(copy.summary())
    assert {e.id for e in sent} >= set(theirs)
    twice = [e.id for e in sent if e.id in copy.event_ids()]
    assert len(twice) <= len(mine), "the summary should spare most of the shared log"
    copy.merge(sent)
    assert set(theirs) <= copy.event_ids()
    assert set(mine) <= copy.event_ids()


def test_a_removal_of_an_add_its_author_had_not_seen_is_refused() -> None:
    source, bug = _source()
    other = Replica.clone(source)
    concurrent_add = source.add_tag(bug, ANN, "flaky")
    elsewhere = other.comment(bug, BOB, "meanwhile")
    both = Replica.clone(source)
    both.pull(other)
    claims_too_much = make_event(
        RemoveTag(
            "flaky", tuple(sorted({concurrent_add.id, *both.state(bug).tag_add_ids("flaky")}))
        ),
        bug=bug,
        author=BOB,
        lamport=elsewhere.lamport + 1,
        wall=0,
        seen=(elsewhere.id,),
    )
    assert concurrent_add.lamport < claims_too_much.lamport  # the clocks alone allow it
    _refused(both, [claims_too_much], "which its author had not seen")
    honest = other.remove_tag(bug, BOB, "flaky")
    both.merge([honest])
    assert both.state(bug).tags == {"flaky"}  # the concurrent add survives
