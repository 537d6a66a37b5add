"""The subunit v1 writer: test records (and passthrough bytes) to v1 text.

Re-exported by :mod:`proctor.wire.v1`, whose docstring describes the format;
this module holds only the writing side.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from proctor.wire._isotime import format_ns
from proctor.wire.event import DEFAULT_MIME_TYPE, Status
from proctor.wire.record import TestRecord

__all__ = ["V1Encoder", "encode_records"]

_OUTCOME_WORDS = {
    Status.SUCCESS: b"successful",
    Status.FAIL: b"failure",
    Status.SKIP: b"skip",
    Status.XFAIL: b"xfail",
    Status.UXSUCCESS: b"uxsuccess",
    Status.INPROGRESS: b"failure",
    Status.NONE: b"failure",
}
_MIME_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class V1Encoder:
    """Writes test records (and passthrough bytes) as subunit v1, like subunit-2to1.

    It remembers whether the last passthrough bytes ended a line: if not, the
    next record starts with a newline, so a directive never ends up glued to
    the end of a test's output (subunit-2to1 glues it, and the directive is
    then read back as text).

    What v1 cannot say is mended rather than refused, so one odd record never
    stops a conversion: a newline in a test id or attachment name becomes
    U+2424 (the newline symbol), an id that is empty or all whitespace is
    written as its ``repr``, whitespace inside a tag becomes ``_`` and so does
    a leading ``-`` (which would mean "remove"), and empty tags are dropped.
    A MIME type is written in v1's ``type/subtype;key=value,key=value`` form;
    parameters that form cannot hold are left out, and a type that is not
    ``type/subtype`` is written as ``application/octet-stream``.
    """

    def __init__(self) -> None:
        self._at_line_start = True

    def passthrough(self, data: bytes) -> bytes:
        """The bytes to write for non-test output: the bytes themselves."""
        if data:
            self._at_line_start = data.endswith(b"\n")
        return bytes(data)

    def record(self, record: TestRecord) -> bytes:
        """The v1 text for one test; empty for an ``exists`` record."""
        word = _OUTCOME_WORDS.get(record.status)
        if word is None:
            return b""
        out: list[bytes] = []
        if not self._at_line_start:
            out.append(b"\n")
            self._at_line_start = True
        label = _label(record.test_id)
        tags = sorted({tag for tag in map(_tag, record.tags) if tag})
        if record.start is not None:
            out.append(_time_line(record.start))
        if tags:
            out.append(("tags: " + " ".join(tags) + "\n").encode("utf-8"))
        out.append(b"test: " + label + b"\n")
        if record.finished and record.stop is not None:
            out.append(_time_line(record.stop))
        out.append(word + b": " + label + b" [ multipart\n")
        for name, mime_type, content in _merged_attachments(record):
            out.append(b"Content-Type: " + _v1_content_type(mime_type).encode("ascii") + b"\n")
            out.append(name.replace("\n", "\u2424").encode("utf-8", "replace") + b"\n")
            if content:
                out.append(b"%X\r\n" % len(content))
                out.append(content)
            out.append(b"0\r\n")
        out.append(b"]\n")
        if tags:
            out.append(("tags: " + " ".join("-" + tag for tag in tags) + "\n").encode("utf-8"))
        return b"".join(out)


def encode_records(records: Iterable[TestRecord]) -> bytes:
    """The v1 text for several records (no passthrough)."""
    encoder = V1Encoder()
    return b"".join(encoder.record(record) for record in records)


def _time_line(ns: int) -> bytes:
    # Microseconds, as python-subunit writes them, unless that would lose digits.
    text = format_ns(ns, sep=" ", digits=6 if ns % 1000 == 0 else 9)
    return b"" if text is None else b"time: " + text.encode("ascii") + b"\n"


def _label(test_id: str) -> bytes:
    label = test_id.replace("\n", "\u2424")
    if not label.strip(" \t\r\x0b\x0c"):
        label = repr(test_id)
    return label.encode("utf-8", "replace")


def _tag(tag: str) -> str:
    mended = "".join("_" if char.isspace() else char for char in tag)
    return "_" + mended[1:] if mended.startswith("-") else mended


def _merged_attachments(record: TestRecord) -> list[tuple[str, str, bytes]]:
    """Attachments sorted by name, same-named ones joined (the first MIME type wins).

    v1 details are a mapping from name to content, so two attachments of one
    name (a file re-opened after EOF) are written as one, as subunit-2to1 does.
    """
    merged: dict[str, tuple[str, list[bytes]]] = {}
    for attachment in record.attachments:
        entry = merged.get(attachment.name)
        if entry is None:
            merged[attachment.name] = (attachment.mime_type, [attachment.content])
        else:
            entry[1].append(attachment.content)
    return [
        (name, mime_type, b"".join(parts)) for name, (mime_type, parts) in sorted(merged.items())
    ]


def _v1_content_type(mime_type: str) -> str:
    """A MIME type in v1's ``type/subtype;key=value,key=value`` form (keys sorted)."""
    main, _, rest = mime_type.partition(";")
    kind, slash, subtype = main.strip().partition("/")
    kind, subtype = kind.strip().lower(), subtype.strip().lower()
    if not slash or not _MIME_TOKEN.fullmatch(kind) or not _MIME_TOKEN.fullmatch(subtype):
        return DEFAULT_MIME_TYPE
    params: dict[str, str] = {}
    for piece in re.split(r"[;,]", rest):
        key, equals, value = piece.partition("=")
        key, value = key.strip().lower(), value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        if equals and _MIME_TOKEN.fullmatch(key) and _MIME_TOKEN.fullmatch(value):
            params.setdefault(key, value)
    if not params:
        return f"{kind}/{subtype}"
    return f"{kind}/{subtype};" + ",".join(f"{key}={params[key]}" for key in sorted(params))
