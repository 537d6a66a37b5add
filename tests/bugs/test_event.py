"""Bug events: canonical bytes, content ids, and refusing untrusted events clearly."""

from __future__ import annotations

import hashlib
import json

import pytest

from proctor.bugs import BugEventError, make_event, parse_event
from proctor.bugs.event import (
    AddComment,
    AddLink,
    AddTag,
    BugEvent,
    Change,
    Create,
    RemoveLink,
    RemoveTag,
    SetField,
    canonical_bytes,
    encode_event,
    verify_event,
)

from .helpers import ANN

CREATE = make_event(Create("Crash", "in the store"), bug=None, author=ANN, lamport=1, wall=5)
BUG = CREATE.id
ADD = make_event(AddTag("flaky"), bug=BUG, author=ANN, lamport=2, wall=6, seen=(BUG,))
LINK = make_event(AddLink("test", "t.a"), bug=BUG, author=ANN, lamport=2, wall=6, seen=(BUG,))

EVERY_KIND: list[Change] = [
    SetField("title", "Crash on start"),
    SetField("description", "line one\nline two\twith a tab"),
    SetField("status", "fixed"),
    SetField("severity", "critical"),
    SetField("assignee", "Bob <bob@example.org>"),
    SetField("assignee", ""),
    AddTag("component:store"),
    RemoveTag("flaky", (ADD.id,)),
    AddComment("Seen again on CI.\nTraceback follows."),
    AddLink("rule", "rule-7"),
    AddLink("cluster", "sig:abc"),
    AddLink("test", "tests.a.test_x[1 2]"),
    AddLink("commit", "2d748d4"),
    RemoveLink("test", "t.a", (LINK.id,)),
]


def _edit(change: Change, **fields: object) -> BugEvent:
    values: dict[str, object] = {
        "bug": BUG,
        "author": ANN,
        "lamport": 3,
        "wall": 7,
        "seen": (ADD.id, LINK.id),
    }
    values.update(fields)
    return make_event(change, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize("change", [Create("Crash", "x"), *EVERY_KIND], ids=repr)
def test_every_kind_round_trips_through_its_canonical_line(change: Change) -> None:
    if isinstance(change, Create):
        event = make_event(change, bug=None, author=ANN, lamport=1, wall=1)
    else:
        event = _edit(change)
    line = encode_event(event)
    assert parse_event(line) == event
    assert parse_event(line.decode()) == event
    assert event.id == hashlib.sha256(canonical_bytes(event)).hexdigest()
    obj = json.loads(line)
    assert obj["v"] == 1
    assert obj["kind"] == event.kind


def test_canonical_bytes_are_sorted_compact_utf8() -> None:
    event = make_event(Create("Ünïcode ✓", ""), bug=None, author="Zoë", lamport=1, wall=0)
    data = canonical_bytes(event)
    assert b" " not in data.replace(b"\xc3\x9cn\xc3\xafcode \xe2\x9c\x93", b"")
    obj = json.loads(data)
    assert list(obj) == sorted(obj)
    assert "id" not in obj
    assert "Ünïcode ✓".encode() in data


def test_the_id_depends_on_every_field_and_the_create_is_its_own_bug() -> None:
    assert CREATE.bug == CREATE.id
    ids = {
        _edit(AddTag("x")).id,
        _edit(AddTag("y")).id,
        _edit(AddTag("x"), author="Bob").id,
        _edit(AddTag("x"), lamport=4).id,
        _edit(AddTag("x"), wall=8).id,
        _edit(AddTag("x"), seen=(ADD.id,)).id,
    }
    assert len(ids) == 6
    assert _edit(AddTag("x")).id == _edit(AddTag("x")).id


def test_seen_is_stored_sorted_without_repeats() -> None:
    event = _edit(AddTag("x"), seen=(LINK.id, ADD.id, LINK.id))
    assert event.seen == tuple(sorted({ADD.id, LINK.id}))


def _line(event: BugEvent, **changes: object) -> dict[str, object]:
    obj: dict[str, object] = json.loads(encode_event(event))
    obj.update(changes)
    return obj


def _rehash(obj: dict[str, object]) -> bytes:
    """The line with a correct id: the content is bad, not the id."""
    content = {k: v for k, v in obj.items() if k != "id"}
    data = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    obj["id"] = hashlib.sha256(data.encode("utf-8", "surrogatepass")).hexdigest()
    return json.dumps(obj).encode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", "not a JSON event"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"v": "\xff"}', "not a JSON event .*utf-8"),
        (b'{"v": 1, "v": 1}', "appears twice"),
        (b'{"v": NaN}', "not a JSON number"),
        (b'{"kind": "create"}', "format version"),
        (b'{"v": true}', "format version"),
        (b'{"v": 2, "kind": "whatever"}', "newer Proctor"),
    ],
)
def test_malformed_json_is_refused_with_where_and_what(data: bytes, message: str) -> None:
    with pytest.raises(BugEventError, match=message) as caught:
        parse_event(data, "bugs.bundle line 3")
    assert caught.value.where.startswith("bugs.bundle line 3")
    assert str(caught.value).startswith("bugs.bundle line 3")


def test_a_forged_id_is_refused() -> None:
    obj = _line(ADD)
    obj["data"] = {"tag": "not-flaky"}  # content changed, id kept
    with pytest.raises(BugEventError, match="does not match its content"):
        parse_event(json.dumps(obj))
    obj = _line(ADD, id="f" * 64)
    with pytest.raises(BugEventError, match="does not match its content"):
        parse_event(json.dumps(obj))
    obj = _line(ADD, id="ABC")
    with pytest.raises(BugEventError, match="not a 64-digit"):
        parse_event(json.dumps(obj))


def test_verify_event_refuses_a_hand_built_event_with_a_wrong_id() -> None:
    forged = BugEvent("0" * 64, BUG, ANN, 2, 6, (BUG,), AddTag("flaky"))
    with pytest.raises(BugEventError, match="forged"):
        verify_event(forged)
    verify_event(ADD)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"kind": "retitle"}, "unknown kind 'retitle'"),
        ({"extra": 1}, "unknown \\['extra'\\]"),
        ({"lamport": 0}, "lamport must be an integer"),
        ({"lamport": True}, "lamport must be an integer"),
        ({"lamport": 2.0}, "lamport must be an integer"),
        ({"wall": -1}, "wall must be an integer"),
        ({"author": ""}, "author must be non-empty"),
        ({"author": "Ann\x1b[31m"}, "control character"),
        ({"author": "\ud800"}, "lone surrogate"),
        ({"bug": None}, "bug must be the id"),
        ({"seen": []}, "must list the events its author had seen"),
        ({"seen": ["x"]}, "not an event id"),
        ({"data": {"tag": "flaky", "more": 1}}, "data must have exactly"),
        ({"data": {"tag": "two words"}}, "single words"),
        ({"data": {"tag": 5}}, "tag must be a string"),
    ],
)
def test_bad_fields_are_refused_even_with_a_matching_id(
    changes: dict[str, object], message: str
) -> None:
    obj = _line(ADD, **changes)
    with pytest.raises(BugEventError, match=message):
        parse_event(_rehash(obj))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (SetField("status", "done"), "status 'done' is not one of"),
        (SetField("severity", "meh"), "severity 'meh' is not one of"),
        (SetField("title", "two\nlines"), "control character"),
        (SetField("title", " padded"), "without surrounding spaces"),
        (AddComment("   "), "must not be empty"),
        (AddComment("x" * 70000), "the limit is 65536"),
        (AddLink("commit", "not-hex"), "not a lowercase hex commit id"),
        (AddLink("bug", "x"), "link kind 'bug'"),  # type: ignore[arg-type]
        (RemoveTag("flaky", ()), "must name the adds"),
    ],
)
def test_bad_values_are_refused_when_made_and_when_parsed(change: Change, message: str) -> None:
    with pytest.raises(BugEventError, match=message):
        _edit(change)


def test_create_and_edit_envelopes_are_told_apart() -> None:
    with pytest.raises(BugEventError, match="create event has seen nothing"):
        make_event(Create("x"), bug=None, author=ANN, lamport=1, wall=0, seen=(BUG,))
    with pytest.raises(BugEventError, match="names no bug"):
        make_event(Create("x"), bug=BUG, author=ANN, lamport=1, wall=0)
    obj = _line(CREATE, bug=BUG)
    with pytest.raises(BugEventError, match="names no bug"):
        parse_event(_rehash(obj))


def test_an_unsorted_seen_list_is_refused_when_parsed() -> None:
    obj = _line(ADD, seen=sorted([ADD.id, LINK.id], reverse=True))
    with pytest.raises(BugEventError, match="sorted and without repeats"):
        parse_event(_rehash(obj))


def test_the_control_character_rule_is_unicode_category_cc_and_cs() -> None:
    import unicodedata

    for code in [*range(0x250), *range(0x2000, 0x2070), *range(0xD7F0, 0xE010), 0xFEFF]:
        char = chr(code)
        bad = unicodedata.category(char) in ("Cc", "Cs")
        line = f"a{char}b"
        for lines in (False, True):
            refused = bad and not (lines and char in "\n\t")
            if refused:
                with pytest.raises(BugEventError):
                    _edit(AddComment(line) if lines else AddTag(line))
            elif not char.isspace() and char != ",":
                _edit(AddComment(line) if lines else AddTag(line))
