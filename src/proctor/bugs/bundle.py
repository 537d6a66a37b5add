"""Bundle and summary files: bug events that travel by mail or as a CI artifact.

Both are JSON lines, self-describing and versioned. The first line is a header::

    {"proctor":"bug-bundle","version":1,"filters":["status=open"],"events":2}
    {"author":"...","bug":null,"data":{...},"id":"...","kind":"create",...}
    ...

``filters`` are the filters the bundle was made for (a copy made from it records
them); ``events`` is the count that follows, so a truncated file is refused. A
summary file (``"proctor":"bug-summary"``) lists ``{"bug": id, "heads": [...],
"older": [...]}`` per bug: the receiver sends it first, the sender answers with a bundle of only the
events the receiver lacks.

Reading checks the whole file before anything is merged: a bad line, a newer
version, a forged or duplicated event is refused with a message naming the file
and line, and the copy is left as it was.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from proctor.bugs.errors import BundleError, FilterError, shown
from proctor.bugs.event import BugEvent, encode_event, parse_event
from proctor.bugs.filters import BugFilter, parse_filter
from proctor.bugs.replica import MergeResult, Replica, Summary

__all__ = [
    "BUNDLE_VERSION",
    "Bundle",
    "decode_bundle",
    "decode_summary",
    "encode_bundle",
    "encode_summary",
    "import_bundle",
    "read_file",
    "write_file",
]

#: The bundle and summary format this Proctor writes and the newest it reads.
BUNDLE_VERSION = 1
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Bundle:
    events: tuple[BugEvent, ...]
    filters: tuple[BugFilter, ...]  # the filters it was made for
    lines: tuple[int, ...]  # the line number of each event, for messages


def _line(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def encode_bundle(events: Iterable[BugEvent], filters: Sequence[BugFilter] = ()) -> bytes:
    lines = [encode_event(event) for event in events]
    header = {
        "proctor": "bug-bundle",
        "version": BUNDLE_VERSION,
        "filters": [f.text for f in filters],
        "events": len(lines),
    }
    return b"\n".join([_line(header), *lines]) + b"\n"


def encode_summary(summary: Summary) -> bytes:
    header = {
        "proctor": "bug-summary",
        "version": BUNDLE_VERSION,
        "filters": [f.text for f in summary.filters],
        "bugs": len(summary.heads),
    }
    body = [
        _line({"bug": bug, "heads": sorted(heads), "older": list(summary.older.get(bug, ()))})
        for bug, heads in sorted(summary.heads.items())
    ]
    return b"\n".join([_line(header), *body]) + b"\n"


def _lines(data: bytes) -> list[tuple[int, bytes]]:
    """Non-blank lines with their 1-based numbers (mail may add blank lines or CRs)."""
    return [
        (number, line.rstrip(b"\r"))
        for number, line in enumerate(data.split(b"\n"), 1)
        if line.strip()
    ]


def _header(
    lines: list[tuple[int, bytes]], name: str, kind: str, count: str
) -> tuple[dict[str, object], tuple[BugFilter, ...]]:
    what = f"a Proctor {kind.replace('-', ' ')} file"
    if not lines:
        raise BundleError(f"{name} is empty, not {what}")
    try:
        header = json.loads(lines[0][1])
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("proctor") != kind:
        raise BundleError(f"{name} is not {what} (its first line is not a {kind} header)")
    version = header.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise BundleError(f"{name} line {lines[0][0]}: bad version {shown(version)}")
    if version > BUNDLE_VERSION:
        raise BundleError(
            f"{name} was written by a newer Proctor (format {version}; this one reads up to "
            f"{BUNDLE_VERSION}): upgrade Proctor to read it"
        )
    texts = header.get("filters")
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise BundleError(f"{name} line {lines[0][0]}: 'filters' must be a list of strings")
    try:
        filters = tuple(parse_filter(text) for text in texts)
    except FilterError as error:
        raise BundleError(f"{name} line {lines[0][0]}: {error}") from None
    expected = header.get(count)
    if isinstance(expected, bool) or not isinstance(expected, int) or expected < 0:
        raise BundleError(f"{name} line {lines[0][0]}: bad {count!r} count {shown(expected)}")
    if expected != len(lines) - 1:
        raise BundleError(
            f"{name} is truncated or padded: its header promises {expected} {count}, "
            f"it holds {len(lines) - 1}; ask for the file again"
        )
    return header, filters


def decode_bundle(data: bytes, name: str = "bundle") -> Bundle:
    """The events of a bundle, each parsed and verified, or an error naming the line."""
    lines = _lines(data)
    _, filters = _header(lines, name, "bug-bundle", "events")
    events = tuple(parse_event(line, f"{name} line {number}") for number, line in lines[1:])
    return Bundle(events, filters, tuple(number for number, _ in lines[1:]))


def decode_summary(data: bytes, name: str = "summary") -> Summary:
    lines = _lines(data)
    _, filters = _header(lines, name, "bug-summary", "bugs")
    heads: dict[str, frozenset[str]] = {}
    older: dict[str, tuple[str, ...]] = {}
    for number, line in lines[1:]:
        where = f"{name} line {number}"
        try:
            entry = json.loads(line)
        except ValueError as error:
            raise BundleError(f"{where}: not JSON ({error})") from None
        if not isinstance(entry, dict) or set(entry) != {"bug", "heads", "older"}:
            raise BundleError(f'{where}: expected {{"bug": ID, "heads": [IDs], "older": [IDs]}}')
        bug, bug_heads, bug_older = entry["bug"], entry["heads"], entry["older"]
        if not (isinstance(bug_heads, list) and isinstance(bug_older, list)):
            raise BundleError(f"{where}: heads and older must be lists of event ids")
        if not all(
            isinstance(i, str) and _HEX64.fullmatch(i) for i in [bug, *bug_heads, *bug_older]
        ):
            raise BundleError(f"{where}: bug, heads and older must be event ids")
        if bug in heads:
            raise BundleError(f"{where}: bug {bug[:12]} is listed twice")
        heads[bug] = frozenset(bug_heads)
        older[bug] = tuple(bug_older)
    return Summary(heads, filters, older)


def import_bundle(replica: Replica, data: bytes, name: str = "bundle") -> MergeResult:
    """Merge a bundle into ``replica``: all of it, or (with an error) none of it."""
    bundle = decode_bundle(data, name)
    return replica.merge(
        bundle.events, where=lambda i: f"{name} line {bundle.lines[i]}", ids_verified=True
    )


def read_file(path: Path | str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise BundleError(f"cannot read {path}: {error.strerror or error}") from None


def write_file(path: Path | str, data: bytes) -> None:
    """Write atomically: a reader never sees half a bundle, a failure leaves no file."""
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, target)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise BundleError(f"cannot write {path}: {error.strerror or error}") from None
