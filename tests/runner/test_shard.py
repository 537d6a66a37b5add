"""``--shard K/N``: the split (proctor.runner.shard) and the controller applying it."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proctor.runner.history import RecordsHistory
from proctor.runner.options import RunOptions
from proctor.runner.shard import Shard, ShardError, parse_shard, shard_of, split
from proctor.wire.event import Status
from proctor.wire.record import TestRecord
from tests.runner.controller_support import passing, run_fake

GROUP = r"^pkg\.g\d+\."

_ids = st.lists(
    st.builds(
        "pkg.{}{}.T.test_{}".format,
        st.sampled_from(["g", "m"]),
        st.integers(0, 6),
        st.text("abcdefgh[]()_. #", min_size=1, max_size=8),
    ),
    max_size=60,
    unique=True,
)


@st.composite
def _suites(draw: st.DrawFn) -> tuple[list[str], dict[str, float], int, str | None]:
    ids = draw(_ids)
    known = draw(st.lists(st.sampled_from(ids), unique=True)) if ids else []
    seconds = st.one_of(st.floats(0.0, 0.01), st.floats(0.0, 300.0))  # a long tail
    durations = {test_id: draw(seconds) for test_id in known}
    return ids, durations, draw(st.integers(1, 9)), draw(st.sampled_from([None, GROUP]))


def _cost(ids: list[str], durations: dict[str, float]) -> dict[str, float]:
    known = [durations[i] for i in ids if i in durations]
    unknown = sum(known) / len(known) if known else 0.01
    return {i: durations.get(i, unknown) for i in ids}


@settings(max_examples=200, deadline=None)
@given(_suites())
def test_the_parts_are_a_disjoint_cover_balanced_within_the_lpt_bound(
    suite: tuple[list[str], dict[str, float], int, str | None],
) -> None:
    ids, durations, total, group_regex = suite
    parts = [
        shard_of(ids, durations, Shard(k, total), group_regex=group_regex)
        for k in range(1, total + 1)
    ]
    flat = [test_id for part in parts for test_id in part]
    assert sorted(flat) == sorted(ids)  # every test once, in exactly one part
    position = {test_id: n for n, test_id in enumerate(ids)}
    for part in parts:
        assert [position[i] for i in part] == sorted(position[i] for i in part)
    # A group_regex group never straddles two parts.
    if group_regex is not None:
        owner: dict[str, int] = {}
        for k, part in enumerate(parts):
            for test_id in part:
                match = re.match(group_regex, test_id)
                if match:
                    assert owner.setdefault(match.group(0), k) == k
    # List scheduling's bound: no part exceeds total / N by more than the longest unit.
    cost = _cost(ids, durations)
    units: dict[str, float] = {}
    for test_id in ids:
        match = re.match(group_regex, test_id) if group_regex else None
        key = match.group(0) if match and match.group(0) else test_id
        units[key] = units.get(key, 0.0) + cost[test_id]
    longest = max(units.values(), default=0.0)
    loads = [sum(cost[i] for i in part) for part in parts]
    assert max(loads, default=0.0) <= sum(cost.values()) / total + longest + 1e-6


@settings(max_examples=50, deadline=None)
@given(_suites(), st.randoms(use_true_random=False))
def test_the_split_does_not_depend_on_the_order_of_the_durations_mapping(
    suite: tuple[list[str], dict[str, float], int, str | None], rnd: object
) -> None:
    ids, durations, total, group_regex = suite
    items = list(durations.items())
    rnd.shuffle(items)  # type: ignore[attr-defined]
    assert split(ids, dict(items), total, group_regex=group_regex) == split(
        ids, durations, total, group_regex=group_regex
    )


def test_tests_unknown_to_the_history_are_spread_over_the_parts() -> None:
    ids = [f"pkg.m.T.test_{i:03d}" for i in range(100)]
    parts = split(ids, {}, 4)
    assert sorted(len(part) for part in parts) == [25, 25, 25, 25]
    assert parts[0] != ids[:25]  # by hash, not in runs of discovery order


def test_long_tests_go_to_different_parts_and_short_ones_fill_around_them() -> None:
    ids = [f"pkg.m.T.test_{i:03d}" for i in range(40)]
    durations = dict.fromkeys(ids, 0.1)
    durations["pkg.m.T.test_007"] = durations["pkg.m.T.test_023"] = 2.0
    parts = split(ids, durations, 2)
    assert ["pkg.m.T.test_007" in part for part in parts].count(True) == 1
    assert ["pkg.m.T.test_023" in part for part in parts].count(True) == 1
    loads = [sum(durations[i] for i in part) for part in parts]
    assert abs(loads[0] - loads[1]) < 0.11


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("0/3", "K must be from 1 to 3"),
        ("4/3", "K must be from 1 to 3"),
        ("1/0", "at least 1"),
        ("2", "is not K/N"),
        ("a/b", "is not K/N"),
        ("-1/2", "is not K/N"),
    ],
)
def test_a_bad_shard_says_what_is_wrong(text: str, words: str) -> None:
    with pytest.raises(ShardError, match=words):
        parse_shard(text)


def test_a_good_shard_parses() -> None:
    assert parse_shard(" 2 / 5 ") == Shard(2, 5)
    assert str(Shard(2, 5)) == "2/5"


def _history(durations: dict[str, float]) -> RecordsHistory:
    records = [
        TestRecord(test_id=test_id, status=Status.SUCCESS, start=0, stop=round(seconds * 1e9))
        for test_id, seconds in durations.items()
    ]
    return RecordsHistory([records])


def test_the_controller_runs_only_its_shard_and_the_shards_cover_the_suite() -> None:
    suite = passing(60, modules=5)
    durations = {t.test_id: 0.001 * (n % 7 + 1) for n, t in enumerate(suite) if n % 3}
    history = _history(durations)
    ran: list[set[str]] = []
    for k in (1, 2, 3):
        outcome = run_fake(suite, RunOptions(concurrency=2, shard=Shard(k, 3)), history=history)
        assert outcome.result.exit_code == 0
        ids = {r.test_id for r in outcome.records}
        assert set(outcome.result.selected) == ids
        ran.append(ids)
    assert sum(len(part) for part in ran) == len(suite)
    assert ran[0] | ran[1] | ran[2] == {t.test_id for t in suite}
