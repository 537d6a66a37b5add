"""Events verified from their canonical bytes and claimed id (stored rows, rows a sync sends).

``canonical_event`` is the fast way in; it must never accept what the strict parse
(``parse_content``) refuses, nor give a different event, and it must accept every
genuine row (or the fast way is never taken).
"""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proctor.bugs import BugError, BugEventError
from proctor.bugs.event import (
    BugEvent,
    canonical_bytes,
    canonical_event,
    encode_event,
    parse_content,
    with_id,
)
from proctor.bugs.repository import BugRepository
from proctor.store.bug_tables import EventRow

from .test_hostile_input import SOURCE, json_values

EVENTS = SOURCE.events()


def _strict(data: bytes, claimed: str) -> BugEvent | None:
    try:
        return parse_content(data, claimed, "row")
    except BugError:
        return None


def _agrees(data: bytes, claimed: str) -> None:
    fast = canonical_event(data, claimed)
    strict = _strict(data, claimed)
    if fast is not None:
        assert fast == strict
        assert canonical_bytes(fast) == data
        assert hashlib.sha256(data).hexdigest() == claimed == fast.id
    elif strict is not None:
        # Refused by the fast way, accepted by the strict one: only a valid event
        # whose bytes are not its canonical encoding.
        assert canonical_bytes(strict) != data


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.kind)
def test_every_genuine_row_is_taken_the_fast_way(event: BugEvent) -> None:
    data = canonical_bytes(event)
    assert canonical_event(data, event.id) == event
    assert with_id(data, event.id) == encode_event(event)


def _rehashed(obj: dict[str, object], **dumps: object) -> tuple[bytes, str]:
    data = json.dumps(obj, **dumps).encode()  # type: ignore[arg-type]
    return data, hashlib.sha256(data).hexdigest()


def _content(event: BugEvent) -> dict[str, object]:
    obj: dict[str, object] = json.loads(canonical_bytes(event))
    return obj


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        # Not the canonical bytes, though the claimed id is their hash: the id is not
        # the content id, so the event is refused (another copy would name it otherwise).
        (lambda o: _rehashed(o), "does not match its content"),
        (lambda o: _rehashed(o, sort_keys=True, ensure_ascii=True), "does not match"),
        (lambda o: (b'{"v":1,' + _rehashed(o, separators=(",", ":"))[0][1:], ""), "twice"),
        (
            lambda o: _rehashed({**o, "id": "0" * 64}, sort_keys=True, separators=(",", ":")),
            "holds an id",
        ),
        (lambda o: _rehashed({**o, "v": 2}, sort_keys=True, separators=(",", ":")), "newer"),
        (
            lambda o: _rehashed({**o, "lamport": 1.5}, sort_keys=True, separators=(",", ":")),
            "integer",
        ),
    ],
    ids=["spaced", "spaced-sorted", "duplicate-key", "id-in-content", "newer", "float-clock"],
)
def test_rows_that_are_not_canonical_are_refused_with_the_strict_message(
    damage: object, message: str
) -> None:
    data, claimed = damage(_content(EVENTS[2]))  # type: ignore[operator]
    if not claimed:
        claimed = hashlib.sha256(data).hexdigest()
    assert canonical_event(data, claimed) is None
    with pytest.raises(BugEventError, match=message):
        parse_content(data, claimed, "row")


def test_a_valid_event_in_other_json_spelling_is_taken_and_stored_canonical() -> None:
    event = EVENTS[3]
    spaced = json.dumps(_content(event)).encode()  # spaces, keys in another order
    repo = BugRepository.memory()
    rows = [
        EventRow(e.id, e.bug, e.kind, e.lamport, e.author, e.wall, canonical_bytes(e))
        for e in EVENTS
    ]
    rows[3] = rows[3]._replace(data=spaced)
    assert canonical_event(spaced, event.id) is None
    repo.merge_rows(rows, "peer")
    stored = {row.id: row.data for row in repo.export_rows()}
    assert stored[event.id] == canonical_bytes(event)
    assert repo.state(event.bug) == SOURCE.state(event.bug)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(EVENTS) - 1), st.integers(0, 10_000), st.integers(0, 255))
def test_a_flipped_byte_agrees_with_the_strict_parse(pick: int, where: int, value: int) -> None:
    event = EVENTS[pick]
    data = bytearray(canonical_bytes(event))
    data[where % len(data)] = value
    _agrees(bytes(data), event.id)
    _agrees(bytes(data), hashlib.sha256(bytes(data)).hexdigest())


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, len(EVENTS) - 1),
    st.sampled_from(["v", "id", "kind", "bug", "author", "lamport", "wall", "seen", "data"]),
    json_values,
)
def test_a_replaced_field_agrees_with_the_strict_parse(pick: int, key: str, value: object) -> None:
    obj = _content(EVENTS[pick])
    obj[key] = value
    for data in (
        json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(),
        json.dumps(obj).encode(),
    ):
        _agrees(data, hashlib.sha256(data).hexdigest())
        _agrees(data, EVENTS[pick].id)


def test_a_row_named_by_the_hash_of_other_bytes_is_refused_and_nothing_stored() -> None:
    repo = BugRepository.memory()
    create = EVENTS[0]
    spaced = json.dumps(_content(create)).encode()
    forged = EventRow(
        hashlib.sha256(spaced).hexdigest(), "", "create", 1, create.author, create.wall, spaced
    )
    with pytest.raises(BugEventError, match=r"peer: event .*does not match its content"):
        repo.merge_rows([forged], "peer")
    assert repo.count() == 0
    assert repo.export_rows() == []
