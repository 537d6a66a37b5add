"""Hostile and damaged input: only ``BugError``s come out, and a copy never changes on refusal."""

from __future__ import annotations

import json
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from proctor.bugs import BugError, Replica, decode_summary, encode_bundle, import_bundle

from .helpers import ANN, BOB, snapshot, ticking


def _history() -> Replica:
    copy = ticking()
    bug = copy.create(ANN, "Crash", "details").id
    copy.add_tag(bug, ANN, "flaky")
    copy.link(bug, BOB, "test", "tests.a.test_x")
    copy.comment(bug, BOB, "again")
    copy.remove_tag(bug, BOB, "flaky")
    copy.unlink(bug, ANN, "test", "tests.a.test_x")
    copy.set_field(bug, ANN, "status", "fixed")
    return copy


SOURCE = _history()
BUNDLE = encode_bundle(SOURCE.events())


def _refusal(action: Callable[[], object]) -> str | None:
    """The message of the BugError ``action`` raises, or None; anything else fails the test."""
    try:
        action()
    except BugError as error:
        return str(error)
    return None


def _import_or_refuse(data: bytes) -> None:
    copy = ticking(5000)
    copy.create(BOB, "Already here")
    before = snapshot(copy)
    message = _refusal(lambda: import_bundle(copy, data, "fuzz.bundle"))
    if message is not None:
        assert message.startswith("fuzz.bundle"), message
        assert snapshot(copy) == before
    else:
        # Accepted only when the damage changed nothing an event's id covers.
        assert copy.event_ids() - before[0] <= SOURCE.event_ids()


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_are_refused_cleanly(data: bytes) -> None:
    _import_or_refuse(data)
    message = _refusal(lambda: decode_summary(data, "fuzz.summary"))
    assert message is None or message.startswith("fuzz.summary"), message


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(BUNDLE) - 1), st.integers(0, 255))
def test_a_flipped_byte_is_refused_or_harmless(position: int, value: int) -> None:
    damaged = bytearray(BUNDLE)
    damaged[position] = value
    _import_or_refuse(bytes(damaged))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, len(SOURCE.events())),
    st.sampled_from(["v", "id", "kind", "bug", "author", "lamport", "wall", "seen", "data"]),
    json_values,
)
def test_a_replaced_field_is_refused_or_harmless(line: int, key: str, value: object) -> None:
    lines = BUNDLE.split(b"\n")
    obj = json.loads(lines[line])
    obj[key] = value
    lines[line] = json.dumps(obj).encode()
    _import_or_refuse(b"\n".join(lines))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, len(SOURCE.events()) - 1), max_size=10))
def test_any_subset_or_order_of_events_is_taken_whole_or_refused_whole(picks: list[int]) -> None:
    events = SOURCE.events()
    chosen = [events[i] for i in picks]
    ids = {e.id for e in chosen}
    whole = len(ids) == len(chosen) and all(
        {e.bug, *e.seen, *getattr(e.change, "adds", ())} <= ids | {e.id} for e in chosen
    )
    copy = Replica()
    try:
        copy.merge(chosen)
    except BugError:
        assert not whole
        assert copy.event_ids() == frozenset()
    else:
        assert whole
        assert copy.event_ids() == ids


def test_deeply_nested_json_is_refused_not_a_crash() -> None:
    header = json.dumps({"proctor": "bug-bundle", "version": 1, "filters": [], "events": 1})
    _import_or_refuse(header.encode() + b"\n" + b"[" * 100_000 + b"]" * 100_000)


def test_messages_quote_untrusted_values_short_and_escaped() -> None:
    lines = BUNDLE.split(b"\n")
    for key, value in (("id", "\x1b[2J" + "x" * 100_000), ("kind", "\x1b]0;pwned\x07" * 1000)):
        obj = json.loads(lines[1])
        obj[key] = value
        damaged = b"\n".join([lines[0], json.dumps(obj).encode(), *lines[2:]])
        message = _refusal(lambda data=damaged: import_bundle(Replica(), data, "fuzz.bundle"))
        assert message is not None
        assert len(message) < 300
        assert "\x1b" not in message
        assert "\\x1b" in message
