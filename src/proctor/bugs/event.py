"""Bug events: immutable values, their canonical bytes, their content ids, and strict parsing.

A bug is a log of these events. Each one carries its author, a Lamport clock (one
more than the largest clock among the events its author had seen), a wall-clock
time (display only, never used to order), the ids of the events its author had
seen of this bug (``seen``: the heads of its log, so the events form a DAG) and one
:data:`Change`. Its id is the SHA-256 of its canonical bytes, so an id names one
content everywhere, a copy can check every id it is sent, and the same event made
twice is one event.

Canonical bytes are the event's JSON object without ``id``: keys sorted, no spaces,
UTF-8, with a format version ``v``. :func:`parse_event` takes untrusted JSON (a
line of a bundle) and either returns a verified :class:`BugEvent` or raises
:class:`~proctor.bugs.errors.BugEventError` saying what is wrong and where:
malformed JSON or fields, an unknown kind, a newer format version, an id that is
not the hash of the content (forged or corrupted). Whether an event fits the log
it joins (its parents known, its clock above theirs) is the replica's check.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias, TypeGuard

from proctor.bugs.errors import BugEventError, shown

__all__ = [
    "FORMAT_VERSION",
    "LINK_KINDS",
    "SEVERITIES",
    "STATUSES",
    "AddComment",
    "AddLink",
    "AddTag",
    "BugEvent",
    "Change",
    "Create",
    "RemoveLink",
    "RemoveTag",
    "SetField",
    "canonical_bytes",
    "canonical_event",
    "encode_event",
    "make_event",
    "parse_content",
    "parse_event",
    "verify_event",
    "with_id",
]

#: The event format this Proctor writes and the newest it reads.
FORMAT_VERSION = 1

FieldName: TypeAlias = Literal["title", "description", "status", "severity", "assignee"]
LinkKind: TypeAlias = Literal["rule", "cluster", "test", "commit"]

STATUSES = ("open", "in-progress", "fixed", "wontfix", "closed")
SEVERITIES = ("low", "normal", "high", "critical")
LINK_KINDS: tuple[LinkKind, ...] = ("rule", "cluster", "test", "commit")
FIELD_NAMES: tuple[FieldName, ...] = ("title", "description", "status", "severity", "assignee")

MAX_LINE = 200  # titles, tags, authors
MAX_TARGET = 2000  # link targets (test ids can be long)
MAX_TEXT = 65536  # descriptions, comments
MAX_REFS = 4096  # ids in seen / adds
MAX_INT = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Create:
    """Opens a bug; the bug's id is this event's id."""

    title: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class SetField:
    """Sets a scalar field (a last-writer-wins register); assignee ``""`` means nobody."""

    field: FieldName
    value: str


@dataclass(frozen=True, slots=True)
class AddTag:
    tag: str


@dataclass(frozen=True, slots=True)
class RemoveTag:
    """Removes the adds of ``tag`` that its author had seen (``adds``), and no others."""

    tag: str
    adds: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AddComment:
    text: str


@dataclass(frozen=True, slots=True)
class AddLink:
    """Links the bug to a triage rule, a failure cluster, a test id or a commit."""

    kind: LinkKind
    target: str


@dataclass(frozen=True, slots=True)
class RemoveLink:
    """Removes the adds of this link that its author had seen (``adds``)."""

    kind: LinkKind
    target: str
    adds: tuple[str, ...]


Change: TypeAlias = Create | SetField | AddTag | RemoveTag | AddComment | AddLink | RemoveLink


@dataclass(frozen=True, slots=True)
class BugEvent:
    """One immutable event of one bug. Build with :func:`make_event` or :func:`parse_event`."""

    id: str
    bug: str  # the id of the bug's create event (for the create event, its own id)
    author: str
    lamport: int
    wall: int  # nanoseconds since the epoch, UTC; display only
    seen: tuple[str, ...]  # sorted ids of the events of this bug its author had seen (heads)
    change: Change

    @property
    def kind(self) -> str:
        return _kind(self.change)


# -- canonical form -------------------------------------------------------------------------


def _kind(change: Change) -> str:
    if type(change) is SetField:
        return change.field
    return _KIND_OF_TYPE[type(change)]


_KIND_OF_TYPE: dict[type, str] = {
    Create: "create",
    AddTag: "tag",
    RemoveTag: "untag",
    AddComment: "comment",
    AddLink: "link",
    RemoveLink: "unlink",
}


def _data(change: Change) -> dict[str, object]:
    if isinstance(change, Create):
        return {"title": change.title, "description": change.description}
    if isinstance(change, SetField):
        return {"value": change.value}
    if isinstance(change, AddTag):
        return {"tag": change.tag}
    if isinstance(change, RemoveTag):
        return {"tag": change.tag, "adds": list(change.adds)}
    if isinstance(change, AddComment):
        return {"text": change.text}
    if isinstance(change, AddLink):
        return {"to": change.kind, "target": change.target}
    return {"to": change.kind, "target": change.target, "adds": list(change.adds)}


def _content(
    change: Change, bug: str | None, author: str, lamport: int, wall: int, seen: tuple[str, ...]
) -> dict[str, object]:
    return {
        "v": FORMAT_VERSION,
        "kind": _kind(change),
        "bug": bug,
        "author": author,
        "lamport": lamport,
        "wall": wall,
        "seen": list(seen),
        "data": _data(change),
    }


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _dumps(obj: object) -> bytes:
    return _ENCODER.encode(obj).encode()


def canonical_bytes(event: BugEvent) -> bytes:
    """The bytes the event's id is the SHA-256 of (its JSON without ``id``)."""
    bug = None if isinstance(event.change, Create) else event.bug
    return _dumps(_content(event.change, bug, event.author, event.lamport, event.wall, event.seen))


def encode_event(event: BugEvent) -> bytes:
    """One JSON line (no newline) for a bundle: the canonical content plus ``id``."""
    bug = None if isinstance(event.change, Create) else event.bug
    content = _content(event.change, bug, event.author, event.lamport, event.wall, event.seen)
    content["id"] = event.id
    return _dumps(content)


def verify_event(event: BugEvent, where: str | None = None) -> None:
    """Refuse an event whose id is not the hash of its content (forged or corrupted)."""
    actual = hashlib.sha256(canonical_bytes(event)).hexdigest()
    if actual != event.id:
        raise BugEventError(
            where or f"event {event.id[:12]}",
            f"its id does not match its content (the content hashes to {actual[:12]}): "
            "the event was altered or forged; ask the sender for a fresh bundle",
        )


# -- building and checking ------------------------------------------------------------------


def make_event(
    change: Change,
    *,
    bug: str | None,
    author: str,
    lamport: int,
    wall: int,
    seen: tuple[str, ...] = (),
) -> BugEvent:
    """A new event with its content id; ``bug`` is None for a :class:`Create`.

    The same checks as :func:`parse_event` apply, so a copy never makes an event
    another copy would refuse.
    """
    where = "new event"
    seen = tuple(sorted(set(seen)))
    _check_envelope(where, bug, author, lamport, wall, seen, isinstance(change, Create))
    _check_change(where, change)
    content = _content(change, bug, author, lamport, wall, seen)
    event_id = hashlib.sha256(_dumps(content)).hexdigest()
    return BugEvent(event_id, bug or event_id, author, lamport, wall, seen, change)


_ID = re.compile(r"[0-9a-f]{64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")  # Cc and lone surrogates
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")  # tab, newline ok
_HEX = re.compile(r"[0-9a-f]+")
_SPACE_OR_COMMA = re.compile(r"[\s,]")  # \s: what str.isspace() calls a space


def _is_id(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def _check_text(where: str, name: str, value: object, limit: int, *, lines: bool) -> str:
    if not isinstance(value, str):
        raise BugEventError(where, f"{name} must be a string, not {type(value).__name__}")
    if len(value) > limit:
        raise BugEventError(where, f"{name} is {len(value)} characters; the limit is {limit}")
    bad = (_CONTROL_BUT_LINES if lines else _CONTROL).search(value)
    if bad is not None:
        char = bad.group()
        if unicodedata.category(char) == "Cs":
            raise BugEventError(where, f"{name} holds a lone surrogate (not valid UTF-8)")
        raise BugEventError(
            where, f"{name} holds the control character {char!r}; remove it and retry"
        )
    return value


def _check_word(where: str, name: str, value: object, limit: int = MAX_LINE) -> str:
    text = _check_text(where, name, value, limit, lines=False)
    if not text or text != text.strip():
        raise BugEventError(where, f"{name} must be non-empty, without surrounding spaces")
    return text


def _check_int(where: str, name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_INT:
        raise BugEventError(
            where, f"{name} must be an integer from {low} to 2**63-1: {shown(value)}"
        )
    return value


def _check_ids(where: str, name: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)):
        raise BugEventError(where, f"{name} must be a list of event ids")
    if len(value) > MAX_REFS:
        raise BugEventError(where, f"{name} lists {len(value)} ids; the limit is {MAX_REFS}")
    for item in value:
        if not (isinstance(item, str) and _ID.fullmatch(item)):
            raise BugEventError(where, f"{name} holds {shown(item)}, which is not an event id")
    ids = tuple(value)
    if len(ids) > 1 and list(ids) != sorted(set(ids)):
        raise BugEventError(where, f"{name} must be sorted and without repeats")
    return ids


def _check_envelope(
    where: str,
    bug: object,
    author: object,
    lamport: object,
    wall: object,
    seen: tuple[str, ...],
    create: bool,
) -> tuple[str, int, int]:
    checked = (
        _check_word(where, "author", author),
        _check_int(where, "lamport", lamport, 1),
        _check_int(where, "wall", wall, 0),
    )
    if create:
        if bug is not None:
            raise BugEventError(where, "a create event names no bug (it is the bug)")
        if seen:
            raise BugEventError(where, "a create event has seen nothing before it")
    else:
        if not _is_id(bug):
            raise BugEventError(
                where, f"bug must be the id of the bug's create event: {shown(bug)}"
            )
        if not seen:
            raise BugEventError(where, "an edit must list the events its author had seen")
    return checked


def _check_change(where: str, change: Change) -> None:
    if isinstance(change, Create):
        _check_word(where, "title", change.title)
        _check_text(where, "description", change.description, MAX_TEXT, lines=True)
    elif isinstance(change, SetField):
        _check_value(where, change.field, change.value)
    elif isinstance(change, (AddTag, RemoveTag)):
        _check_tag(where, change.tag)
        if isinstance(change, RemoveTag):
            _check_adds(where, change.adds)
    elif isinstance(change, AddComment):
        if not _check_text(where, "comment", change.text, MAX_TEXT, lines=True).strip():
            raise BugEventError(where, "a comment must not be empty")
    else:
        _check_link(where, change.kind, change.target)
        if isinstance(change, RemoveLink):
            _check_adds(where, change.adds)


def _check_value(where: str, field: str, value: object) -> None:
    if field == "title":
        _check_word(where, "title", value)
    elif field == "description":
        _check_text(where, "description", value, MAX_TEXT, lines=True)
    elif field == "status":
        if value not in STATUSES:
            raise BugEventError(where, f"status {shown(value)} is not one of {', '.join(STATUSES)}")
    elif field == "severity":
        if value not in SEVERITIES:
            raise BugEventError(
                where, f"severity {shown(value)} is not one of {', '.join(SEVERITIES)}"
            )
    elif value != "":
        _check_word(where, "assignee", value)


def _check_tag(where: str, tag: object) -> None:
    text = _check_word(where, "tag", tag)
    if _SPACE_OR_COMMA.search(text) is not None:
        raise BugEventError(
            where, f"tag {shown(text)} holds a space or a comma; tags are single words"
        )


def _check_adds(where: str, adds: tuple[str, ...]) -> None:
    if not adds:
        raise BugEventError(where, "a removal must name the adds it removes")
    _check_ids(where, "adds", adds)


def _check_link(where: str, kind: object, target: object) -> None:
    if kind not in LINK_KINDS:
        raise BugEventError(where, f"link kind {shown(kind)} is not one of {', '.join(LINK_KINDS)}")
    text = _check_word(where, f"{kind} link", target, MAX_TARGET)
    if kind == "commit" and not (4 <= len(text) <= 64 and _HEX.fullmatch(text)):
        raise BugEventError(where, f"commit link {shown(text)} is not a lowercase hex commit id")


# -- parsing untrusted input ----------------------------------------------------------------

_ENVELOPE = frozenset({"v", "id", "kind", "bug", "author", "lamport", "wall", "seen", "data"})
_DATA_KEYS: dict[str, frozenset[str]] = {
    "create": frozenset({"title", "description"}),
    **{name: frozenset({"value"}) for name in FIELD_NAMES},
    "tag": frozenset({"tag"}),
    "untag": frozenset({"tag", "adds"}),
    "comment": frozenset({"text"}),
    "link": frozenset({"to", "target"}),
    "unlink": frozenset({"to", "target", "adds"}),
}
MAX_EVENT_BYTES = 1 << 20


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result = dict(pairs)
    if len(result) != len(pairs):
        twice = next(key for n, (key, _) in enumerate(pairs) if key in dict(pairs[:n]))
        raise ValueError(f"the key {shown(twice)} appears twice")
    return result


def _no_constants(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constants)


def _loads(data: bytes | str, where: str) -> object:
    if len(data) > MAX_EVENT_BYTES:
        raise BugEventError(where, f"the event is over {MAX_EVENT_BYTES} bytes")
    try:
        return _DECODER.decode(data if isinstance(data, str) else data.decode())
    except (ValueError, RecursionError) as error:
        raise BugEventError(where, f"not a JSON event ({error})") from None


def parse_event(data: bytes | str | dict[str, object], where: str = "event") -> BugEvent:
    """A verified event from untrusted JSON, or :class:`BugEventError` saying what is wrong."""
    obj = data if isinstance(data, dict) else _loads(data, where)
    event = _from_object(obj, where)
    verify_event(event, f"{where} (id {event.id[:12]})")
    return event


def with_id(data: bytes, event_id: str) -> bytes:
    """A bundle line from an event's canonical bytes and its (claimed) id: ``id`` goes in
    its sorted place, before ``kind`` (the same bytes as :func:`encode_event`)."""
    return data.replace(_KIND_KEY, b',"id":' + json.dumps(event_id).encode() + _KIND_KEY, 1)


_KIND_KEY = b',"kind":'


def parse_content(data: bytes | str, claimed: str, where: str = "event") -> BugEvent:
    """A verified event from untrusted content (an event's JSON without its id, in any
    spelling) and the id claimed for it, or :class:`BugEventError` saying what is wrong."""
    obj = _loads(data, where)
    if not isinstance(obj, dict):
        raise BugEventError(where, "an event must be a JSON object")
    if "id" in obj:
        raise BugEventError(where, "its content holds an id (an id is the content's hash)")
    obj["id"] = claimed
    return parse_event(obj, where)


_PLAIN_DECODER = json.JSONDecoder(parse_constant=_no_constants)


def canonical_event(data: bytes, claimed: str) -> BugEvent | None:
    """The event whose canonical bytes are ``data`` and whose id is ``claimed``, if that
    is exactly so and it passes every check of :func:`parse_event`; else None.

    The fast way to verify stored or synced rows, which come as canonical bytes and a
    claimed id: the id is checked by hashing ``data`` itself, and canonical form by
    encoding the decoded object again and comparing bytes (duplicate keys, spacing,
    escapes, key order: any difference fails), so nothing is hashed twice and no
    Python hook runs per JSON object. None means: let :func:`parse_content` decide,
    which says what is wrong (or accepts a valid event in another JSON spelling; store
    its :func:`canonical_bytes` then).
    """
    if len(data) > MAX_EVENT_BYTES or hashlib.sha256(data).hexdigest() != claimed:
        return None
    try:
        # raw_decode: no whitespace skipped around it (bytes that are not all one
        # canonical value fail the comparison below).
        obj = _PLAIN_DECODER.raw_decode(data.decode())[0]
        if (
            not isinstance(obj, dict)
            or "id" in obj
            or obj.get("v") != FORMAT_VERSION
            or _dumps(obj) != data
        ):
            return None
    except (ValueError, RecursionError):  # UnicodeError is a ValueError
        return None
    obj["id"] = claimed
    try:
        # The bytes are the canonical encoding of this object and hash to the id, so
        # an event built from it (every field checked) has these canonical bytes.
        return _from_object(obj, "event")
    except BugEventError:
        return None


def _from_object(obj: object, where: str) -> BugEvent:
    """The event an untrusted JSON value describes, every field checked; its id is not."""
    if not isinstance(obj, dict):
        raise BugEventError(where, "an event must be a JSON object")
    version = obj.get("v")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise BugEventError(where, f"missing or bad format version 'v': {shown(version)}")
    if version > FORMAT_VERSION:
        raise BugEventError(
            where,
            f"written by a newer Proctor (event format {version}; this one reads up to "
            f"{FORMAT_VERSION}): upgrade Proctor to read it",
        )
    if obj.keys() != _ENVELOPE:
        keys = set(obj)
        missing, extra = sorted(_ENVELOPE - keys), sorted(keys - _ENVELOPE)
        raise BugEventError(
            where, f"bad fields: missing {missing or 'none'}, unknown {extra or 'none'}"
        )
    claimed = obj["id"]
    if not _is_id(claimed):
        raise BugEventError(where, f"id {shown(claimed)} is not a 64-digit lowercase hex id")
    where = f"{where} (id {claimed[:12]})"
    kind = obj["kind"]
    if not isinstance(kind, str) or kind not in _DATA_KEYS:
        raise BugEventError(
            where, f"unknown kind {shown(kind)} (known: {', '.join(sorted(_DATA_KEYS))})"
        )
    payload = obj["data"]
    if not isinstance(payload, dict) or payload.keys() != _DATA_KEYS[kind]:
        raise BugEventError(
            where, f"a {kind} event's data must have exactly {sorted(_DATA_KEYS[kind])}"
        )
    seen = _check_ids(where, "seen", obj["seen"])
    bug = obj["bug"]
    author, lamport, wall = _check_envelope(
        where, bug, obj["author"], obj["lamport"], obj["wall"], seen, kind == "create"
    )
    change = _BUILDERS[kind](where, kind, payload)
    _check_change(where, change)
    return BugEvent(
        claimed, bug if isinstance(bug, str) else claimed, author, lamport, wall, seen, change
    )


def _str(where: str, name: str, value: object) -> str:
    if not isinstance(value, str):
        raise BugEventError(where, f"{name} must be a string, not {type(value).__name__}")
    return value


def _build_create(where: str, kind: str, data: Mapping[str, object]) -> Change:
    return Create(
        _str(where, "title", data["title"]), _str(where, "description", data["description"])
    )


_FIELD_OF_KIND: dict[str, FieldName] = {name: name for name in FIELD_NAMES}


def _build_set(where: str, kind: str, data: Mapping[str, object]) -> Change:
    return SetField(_FIELD_OF_KIND[kind], _str(where, kind, data["value"]))


def _build_tag(where: str, kind: str, data: Mapping[str, object]) -> Change:
    tag = _str(where, "tag", data["tag"])
    if kind == "tag":
        return AddTag(tag)
    return RemoveTag(tag, _check_ids(where, "adds", data["adds"]))


def _build_comment(where: str, kind: str, data: Mapping[str, object]) -> Change:
    return AddComment(_str(where, "comment", data["text"]))


def _link_kind(where: str, value: object) -> LinkKind:
    for known in LINK_KINDS:
        if value == known:
            return known
    raise BugEventError(where, f"link kind {shown(value)} is not one of {', '.join(LINK_KINDS)}")


def _build_link(where: str, kind: str, data: Mapping[str, object]) -> Change:
    to = _link_kind(where, data["to"])
    target = _str(where, "target", data["target"])
    if kind == "link":
        return AddLink(to, target)
    return RemoveLink(to, target, _check_ids(where, "adds", data["adds"]))


_Builder = Callable[[str, str, Mapping[str, object]], Change]
_BUILDERS: dict[str, _Builder] = {
    "create": _build_create,
    **dict.fromkeys(FIELD_NAMES, _build_set),
    "tag": _build_tag,
    "untag": _build_tag,
    "comment": _build_comment,
    "link": _build_link,
    "unlink": _build_link,
}
