"""JSON lines: one event per line, lossless, for jq, log shippers and people.

Each line is a JSON object holding the event's fields that differ from their
defaults, in a fixed order, so equal events give equal lines (the second line
is folded here)::

    {"test_id":"pkg.T.test_a","status":"inprogress","timestamp":"2024-01-02T03:04:05.678901000Z"}
    {"test_id":"pkg.T.test_a","file_name":"traceback","file_text":"Traceback ...\\n","eof":true,
     "mime_type":"text/x-traceback; charset=\\"utf8\\"; language=\\"python\\""}
    {"test_id":"pkg.T.test_a","status":"fail","tags":["slow"],"route_code":"0","timestamp":"2024-01-02T03:04:06.000000000Z"}

Fields and their defaults when absent: ``test_id`` (null), ``status`` (null: no
status; else a StreamResult name such as ``"success"``), ``tags`` ([]; a sorted
list of strings), ``runnable`` (true), ``file_name`` (null), ``eof`` (false),
``mime_type`` (null), ``route_code`` (null), ``timestamp`` (null).

File content is present exactly when ``file_name`` is, under one of two keys,
and the key says how to read it: ``file_text`` holds content that was valid
UTF-8, as a JSON string; ``file_base64`` holds any other content, base64
encoded. A reader that ignored the discriminator could not mistake base64
for text, because the key names differ.

Timestamps are ISO 8601 UTC with nine fractional digits. An integer of
nanoseconds would be shorter, but JavaScript and jq read JSON numbers as doubles
and would round it (nanoseconds since 1970 need 61 bits); the text form survives
every JSON tool. A timestamp outside the years 1 to 9999 (no v2 stream can hold
one) is written as integer nanoseconds, and the reader accepts both forms.

The reader (:class:`JsonlDecoder`) is incremental and strict: anything that is
not one of these objects raises :class:`JsonlError` naming the line and the
field, so a typo is never silently read as a default. Blank lines are skipped.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from typing import Any

from proctor.wire._isotime import format_ns, parse_ns
from proctor.wire.event import Event, Status

__all__ = ["JsonlDecoder", "JsonlError", "decode", "encode", "encode_event"]

_STATUS_NAMES = {status: status.wire_name for status in Status}
_FIELDS = frozenset(
    (
        "test_id",
        "status",
        "tags",
        "runnable",
        "file_name",
        "file_text",
        "file_base64",
        "eof",
        "mime_type",
        "route_code",
        "timestamp",
    )
)
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class JsonlError(ValueError):
    """A line that is not a JSON-lines event; the message names the line and the field.

    ``line`` is the 1-based line number and ``field`` the offending key (None
    when the line as a whole is wrong).
    """

    def __init__(self, line: int, message: str, field: str | None = None) -> None:
        where = f"line {line}" + (f", field {field!r}" if field is not None else "")
        super().__init__(f"{where}: {message}")
        self.line = line
        self.field = field


def encode_event(event: Event) -> bytes:
    """One event as a line of JSON, newline included."""
    record: dict[str, Any] = {}
    if event.test_id is not None:
        record["test_id"] = event.test_id
    status = _STATUS_NAMES[event.status]
    if status is not None:
        record["status"] = status
    if event.tags:
        record["tags"] = sorted(event.tags)
    if not event.runnable:
        record["runnable"] = False
    if event.file_name is not None:
        record["file_name"] = event.file_name
        content = event.file_bytes
        try:
            record["file_text"] = content.decode("utf-8")
        except UnicodeDecodeError:
            record["file_base64"] = base64.b64encode(content).decode("ascii")
    if event.eof:
        record["eof"] = True
    if event.mime_type is not None:
        record["mime_type"] = event.mime_type
    if event.route_code is not None:
        record["route_code"] = event.route_code
    if event.timestamp is not None:
        text = format_ns(event.timestamp)
        record["timestamp"] = event.timestamp if text is None else text
    # Strings from Python code may hold lone surrogates, which UTF-8 cannot
    # carry; escape them as JSON does rather than fail.
    line = _dumps(record)
    try:
        return line.encode("utf-8") + b"\n"
    except UnicodeEncodeError:
        return json.dumps(record, separators=(",", ":")).encode("ascii") + b"\n"


def encode(events: Iterable[Event]) -> bytes:
    """Several events as JSON lines."""
    return b"".join(encode_event(event) for event in events)


class JsonlDecoder:
    """An incremental JSON-lines reader: feed bytes in any chunking, get events.

    :meth:`feed` returns the events of the lines its bytes completed;
    :meth:`close` reads a last line that has no newline. Bad input raises
    :class:`JsonlError`; the decoder is then spent, and any later call raises
    the same error again.
    """

    def __init__(self) -> None:
        self._held = bytearray()
        self._line = 0  # number of the last line read
        self._error: JsonlError | None = None
        self._closed = False

    def feed(self, data: bytes) -> list[Event]:
        """Read ``data``; return the events of the lines it completed."""
        if self._closed:
            raise ValueError("feed() called after close()")
        if self._error is not None:
            raise self._error
        held = self._held
        start = len(held)
        held += data
        if held.find(b"\n", start) < 0:
            return []
        events: list[Event] = []
        pos = 0
        while True:
            newline = held.find(b"\n", pos)
            if newline < 0:
                break
            self._read_line(held[pos:newline], events)
            pos = newline + 1
        del held[:pos]
        return events

    def close(self) -> list[Event]:
        """End the stream: read a last line without a newline."""
        if self._error is not None:
            raise self._error
        if self._closed:
            return []
        self._closed = True
        events: list[Event] = []
        if self._held:
            self._read_line(self._held, events)
            self._held.clear()
        return events

    def _read_line(self, raw: bytes | bytearray, events: list[Event]) -> None:
        self._line += 1
        try:
            if raw.strip():
                events.append(_event(bytes(raw), self._line))
        except JsonlError as error:
            self._error = error
            raise


def decode(data: bytes) -> list[Event]:
    """Read JSON lines held in memory."""
    decoder = JsonlDecoder()
    return decoder.feed(data) + decoder.close()


# ---------------------------------------------------------------------------
# One line


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for key, value in pairs:
        if key in record:
            raise ValueError(f"key {key!r} appears twice")
        record[key] = value
    return record


_loads = json.JSONDecoder(object_pairs_hook=_unique_keys, parse_constant=_no_constants).decode


def _event(raw: bytes, line: int) -> Event:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise JsonlError(line, f"not UTF-8 (byte {error.start + 1} of the line)") from None
    try:
        record = _loads(text)
    except RecursionError:
        raise JsonlError(line, "not valid JSON: nested too deeply") from None
    except ValueError as error:  # JSONDecodeError and the errors raised by the hooks
        raise JsonlError(line, f"not valid JSON: {error}") from None
    if not isinstance(record, dict):
        raise JsonlError(line, f"expected a JSON object, found {_kind(record)}")
    unknown = sorted(set(record) - _FIELDS)
    if unknown:
        known = ", ".join(sorted(_FIELDS))
        raise JsonlError(line, f"unknown field (expected one of {known})", unknown[0])

    def string(key: str) -> str | None:
        value = record.get(key)
        if value is not None and not isinstance(value, str):
            raise JsonlError(line, f"expected a string or null, found {_kind(value)}", key)
        return value

    def flag(key: str, default: bool) -> bool:
        value = record.get(key, default)
        if not isinstance(value, bool):
            raise JsonlError(line, f"expected true or false, found {_kind(value)}", key)
        return value

    test_id = string("test_id")
    file_name = string("file_name")
    mime_type = string("mime_type")
    route_code = string("route_code")
    status_name = string("status")
    try:
        status = Status.from_wire_name(status_name)
    except ValueError as error:
        raise JsonlError(line, str(error), "status") from None
    tags = record.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise JsonlError(line, f"expected a list of strings, found {_kind(tags)}", "tags")
    content = _content(record, file_name, line)
    return Event(
        test_id=test_id,
        status=status,
        tags=frozenset(tags),
        runnable=flag("runnable", True),
        file_name=file_name,
        file_bytes=content,
        eof=flag("eof", False),
        mime_type=mime_type,
        route_code=route_code,
        timestamp=_timestamp(record.get("timestamp"), line),
    )


def _content(record: dict[str, Any], file_name: str | None, line: int) -> bytes:
    has_text = "file_text" in record
    has_base64 = "file_base64" in record
    if has_text and has_base64:
        raise JsonlError(line, "give file_text or file_base64, not both", "file_base64")
    key = "file_text" if has_text else "file_base64" if has_base64 else None
    if key is None:
        return b""
    if file_name is None:
        raise JsonlError(line, "file content needs a file_name", key)
    value = record[key]
    if not isinstance(value, str):
        raise JsonlError(line, f"expected a string, found {_kind(value)}", key)
    if has_text:
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError:
            raise JsonlError(line, "text holds a lone surrogate", key) from None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise JsonlError(line, "not valid base64", key) from None


def _timestamp(value: object, line: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        moment = parse_ns(value)
        if moment is not None:
            return moment
        raise JsonlError(
            line, f"{value!r} is not an ISO 8601 time such as 2024-01-02T03:04:05Z", "timestamp"
        )
    raise JsonlError(
        line,
        f"expected an ISO 8601 string or integer nanoseconds, found {_kind(value)}",
        "timestamp",
    )


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"
