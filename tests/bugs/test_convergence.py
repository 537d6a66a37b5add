"""Copies converge: random offline edits, random full, filtered and bundle syncs in random
orders, and after a final full sync every copy holds the same state. Merge is a set union:
commutative, associative, idempotent."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
)

from proctor.bugs import (
    BugFilter,
    Replica,
    decode_summary,
    encode_bundle,
    encode_summary,
    fold,
    import_bundle,
    parse_filter,
)
from proctor.bugs.event import RemoveLink, RemoveTag

from .helpers import snapshot

TAGS = ("t1", "t2", "component:store")
TESTS = ("tests.a.test_x", "tests.b.test_y[1 2]")
FILTERS = ("tag=t1", "status=open", "component=store", "!status=closed", "test~tests.a.*")
AUTHORS = ("ann", "bob")  # two names for three copies: ties on (lamport, author) happen
OPS = (
    "title",
    "description",
    "status",
    "severity",
    "assignee",
    "tag",
    "untag",
    "comment",
    "link",
    "unlink",
)


def _merged(*sources: Replica) -> Replica:
    copy = Replica()
    for source in sources:
        copy.merge(source.events())
    return copy


class Copies(RuleBasedStateMachine):
    """Three copies: ``a`` and ``b`` whole, ``c`` partial (made with a filter)."""

    replicas = Bundle("replicas")

    def __init__(self) -> None:
        super().__init__()
        self.now = 0
        self.all: list[Replica] = []
        self.authors: dict[int, str] = {}
        self.posted: list[tuple[Replica, bytes]] = []

    def _clock(self) -> int:
        return self.now

    @initialize(target=replicas, expression=st.sampled_from(FILTERS))
    def make_copies(self, expression: str) -> object:
        whole_a = Replica(clock=self._clock)
        whole_b = Replica(clock=self._clock)
        part = Replica([parse_filter(expression)], clock=self._clock)
        self.all = [whole_a, whole_b, part]
        for index, replica in enumerate(self.all):
            self.authors[id(replica)] = AUTHORS[index % 2]
        whole_a.create(AUTHORS[0], "shared from the start")
        whole_b.pull(whole_a)
        part.pull(whole_a, filters=())
        return multiple(*self.all)

    @rule(
        replica=replicas, title=st.sampled_from(("crash", "hang", "flaky")), now=st.integers(0, 99)
    )
    def create(self, replica: Replica, title: str, now: int) -> None:
        self.now = now
        replica.create(self.authors[id(replica)], title)

    @rule(
        replica=replicas,
        edits=st.lists(
            st.tuples(
                st.integers(0, 50), st.sampled_from(OPS), st.integers(0, 9), st.integers(0, 99)
            ),
            min_size=1,
            max_size=12,
        ),
    )
    def edit(self, replica: Replica, edits: list[tuple[int, str, int, int]]) -> None:
        for pick, op, choice, now in edits:
            self.now = now  # wall clocks jump about: they must never decide anything
            self._edit(replica, pick, op, choice)

    @rule(replicas=st.permutations(range(3)), pick=st.integers(0, 50), tag=st.sampled_from(TAGS))
    def concurrent_tag_add_and_remove(self, replicas: list[int], pick: int, tag: str) -> None:
        # One copy removes a tag while another adds it again, neither having seen the other.
        remover, adder = self.all[replicas[0]], self.all[replicas[1]]
        ids = remover.bug_ids()
        bug = ids[pick % len(ids)]
        if tag not in remover.state(bug).tags:
            remover.add_tag(bug, self.authors[id(remover)], tag)
        if bug in adder:
            remover.remove_tag(bug, self.authors[id(remover)], tag)
            adder.add_tag(bug, self.authors[id(adder)], tag)

    def _edit(self, replica: Replica, pick: int, op: str, choice: int) -> None:
        ids = replica.bug_ids()
        bug = ids[pick % len(ids)]
        author = self.authors[id(replica)]
        state = replica.state(bug)
        if op in ("title", "description", "assignee"):
            replica.set_field(bug, author, op, f"{op}-{choice}")  # type: ignore[arg-type]
        elif op == "status":
            replica.set_field(bug, author, "status", ("open", "fixed", "closed")[choice % 3])
        elif op == "severity":
            replica.set_field(bug, author, "severity", ("low", "high")[choice % 2])
        elif op == "tag":
            replica.add_tag(bug, author, TAGS[choice % len(TAGS)])
        elif op == "untag":
            if state.tags:
                replica.remove_tag(bug, author, sorted(state.tags)[choice % len(state.tags)])
        elif op == "comment":
            replica.comment(bug, author, f"comment {choice}")
        elif op == "link":
            replica.link(bug, author, "test", TESTS[choice % 2])
        elif state.links:
            link = sorted(state.links)[choice % len(state.links)]
            replica.unlink(bug, author, link.kind, link.target)

    @rule(target_copy=replicas, source=replicas)
    def pull(self, target_copy: Replica, source: Replica) -> None:
        target_copy.pull(source)

    @rule(target_copy=replicas, source=replicas, expression=st.sampled_from(FILTERS))
    def partial_pull(self, target_copy: Replica, source: Replica, expression: str) -> None:
        target_copy.pull(source, [parse_filter(expression)])

    @rule(target_copy=replicas, source=replicas)
    def pull_by_files(self, target_copy: Replica, source: Replica) -> None:
        summary = decode_summary(encode_summary(target_copy.summary()))
        data = encode_bundle(source.events_for(summary), summary.filters)
        import_bundle(target_copy, data)

    @rule(target_copy=replicas)
    def write_summary(self, target_copy: Replica) -> None:
        self.posted.append((target_copy, encode_summary(target_copy.summary())))

    @rule(source=replicas, pick=st.integers(0, 20))
    def answer_a_stale_summary(self, source: Replica, pick: int) -> None:
        # By mail: the copy that wrote the summary may have changed since; the answer
        # must still merge (a copy only grows, so it holds at least what it summarised).
        if not self.posted:
            return
        target_copy, summary_file = self.posted[pick % len(self.posted)]
        summary = decode_summary(summary_file)
        import_bundle(target_copy, encode_bundle(source.events_for(summary), summary.filters))

    @rule(first=replicas, second=replicas, third=replicas)
    def merge_is_a_union(self, first: Replica, second: Replica, third: Replica) -> None:
        one_two, two_one = _merged(first, second), _merged(second, first)
        assert snapshot(one_two) == snapshot(two_one)  # commutative
        left = _merged(_merged(first, second), third)
        right = _merged(first, _merged(second, third))
        assert snapshot(left) == snapshot(right)  # associative
        again = _merged(first)
        before = snapshot(again)
        result = again.merge(first.events())
        assert result.added == 0
        assert snapshot(again) == before  # idempotent

    @invariant()
    def copies_hold_whole_causal_bugs(self) -> None:
        for replica in self.all:
            held = replica.event_ids()
            for event in replica.events():
                assert set(event.seen) <= held
                if isinstance(event.change, RemoveTag | RemoveLink):
                    assert set(event.change.adds) <= held

    @invariant()
    def state_does_not_depend_on_order(self) -> None:
        shuffle = random.Random(len(self.all[0].event_ids()))
        for replica in self.all:
            for bug in replica.bug_ids():
                events = replica.events(bug)
                shuffle.shuffle(events)
                assert fold(events) == replica.state(bug)

    def teardown(self) -> None:
        if not self.all:
            return
        a, b, c = self.all
        for _ in range(2):
            a.pull(b)
            a.pull(c)
            b.pull(a)
            c.pull(a)
        assert snapshot(a) == snapshot(b)
        assert [a.short_id(bug) for bug in a.bug_ids()] == [b.short_id(bug) for bug in b.bug_ids()]
        for bug in c.bug_ids():
            assert c.state(bug) == a.state(bug)
        filters: tuple[BugFilter, ...] = c.filters
        for bug, state in a.states().items():
            if any(f.matches(state) for f in filters):
                assert bug in c, "a bug matching the partial copy's filter did not arrive"
        c.pull(a, filters=())
        assert snapshot(c) == snapshot(a)


Copies.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.mark.slow
class TestCopiesConverge(Copies.TestCase):  # type: ignore[misc,valid-type]
    pass
