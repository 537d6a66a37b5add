"""The subunit v2 encoder (see :mod:`proctor.wire.v2`)."""

from __future__ import annotations

import zlib
from collections.abc import Iterable

from proctor.wire._v2_format import (
    FLAG_EOF,
    FLAG_FILE_CONTENT,
    FLAG_MIME_TYPE,
    FLAG_ROUTE_CODE,
    FLAG_RUNNABLE,
    FLAG_TAGS,
    FLAG_TEST_ID,
    FLAG_TIMESTAMP,
    MAX_PACKET,
    SIGNATURE,
    VERSION_2,
    c_encode,
)
from proctor.wire.event import NS_PER_SECOND, Event

__all__ = ["EncodeError", "encode", "encode_many"]

_crc32 = zlib.crc32
_SMALL_VARINTS = tuple(bytes((i,)) for i in range(64))


class EncodeError(ValueError):
    """An event that cannot be written as subunit v2 (the message says which field and why)."""


def _varint(value: int) -> bytes:
    if value < 64:
        return _SMALL_VARINTS[value]
    if value < 0x4000:
        return (value | 0x4000).to_bytes(2, "big")
    if value < 0x400000:
        return (value | 0x800000).to_bytes(3, "big")
    if value < 0x40000000:
        return (value | 0xC0000000).to_bytes(4, "big")
    raise EncodeError(f"value {value} is too large for a subunit varint (limit 2**30 - 1)")


def _string(value: str, what: str) -> bytes:
    try:
        raw = value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise EncodeError(f"{what} {value!r} is not valid UTF-8 text: {error.reason}") from None
    if b"\x00" in raw:
        raise EncodeError(f"{what} {value!r} contains a NUL character, which subunit forbids")
    n = len(raw)
    return (_SMALL_VARINTS[n] if n < 64 else _varint(n)) + raw


# Test ids, tags, MIME types and route codes repeat constantly in a stream (a
# test's inprogress and final status share its id); caching their encodings
# keeps validation off the hot path. Bounded so a stream of unique ids cannot
# grow it without limit.
_string_cache: dict[str, bytes] = {}
_CACHE_LIMIT = 4096


def _cached_string(value: str, what: str) -> bytes:
    raw = _string_cache.get(value)
    if raw is None:
        raw = _string(value, what)
        if len(_string_cache) >= _CACHE_LIMIT:
            _string_cache.clear()
        _string_cache[value] = raw
    return raw


def _fields_before_file(event: Event) -> tuple[int, list[bytes]]:
    """Flags (without the file bit) and encoded fields up to and including MIME."""
    test_id, status, tags, runnable, _fn, _fb, eof, mime_type, _rc, timestamp = event
    if not (isinstance(status, int) and 0 <= status <= 7):
        raise EncodeError(f"status {status!r} is not one of subunit's eight (0 to 7)")
    flags = VERSION_2 | status
    parts: list[bytes] = []
    if timestamp is not None:
        if not isinstance(timestamp, int) or isinstance(timestamp, bool):
            raise EncodeError(f"timestamp {timestamp!r} is not integer nanoseconds")
        flags |= FLAG_TIMESTAMP
        seconds, nanos = divmod(timestamp, NS_PER_SECOND)
        if not 0 <= seconds < 0x100000000:
            raise EncodeError(
                f"timestamp {timestamp} ns is outside subunit's range (1970 to 2106-02-07)"
            )
        parts.append(seconds.to_bytes(4, "big"))
        parts.append(_varint(nanos))
    if test_id is not None:
        flags |= FLAG_TEST_ID
        parts.append(_cached_string(test_id, "test id"))
    if tags:
        flags |= FLAG_TAGS
        parts.append(_varint(len(tags)))
        parts.extend(_cached_string(tag, "tag") for tag in tags)
    if runnable:
        flags |= FLAG_RUNNABLE
    if mime_type:
        flags |= FLAG_MIME_TYPE
        parts.append(_cached_string(mime_type, "MIME type"))
    if eof:
        flags |= FLAG_EOF
    return flags, parts


def _frame(flags: int, body: bytes) -> bytes:
    base = len(body) + 7  # signature, two flag bytes, four CRC bytes
    if base <= 62:
        head = bytes((SIGNATURE, flags >> 8, flags & 0xFF, base + 1))
    elif base <= 16381:
        length = (base + 2) | 0x4000
        head = bytes((SIGNATURE, flags >> 8, flags & 0xFF, length >> 8, length & 0xFF))
    elif base <= 4194300:
        length = (base + 3) | 0x800000
        head = bytes(
            (SIGNATURE, flags >> 8, flags & 0xFF, length >> 16, (length >> 8) & 0xFF, length & 0xFF)
        )
    else:
        raise EncodeError(
            f"packet of {base + 3} bytes exceeds subunit's {MAX_PACKET}-byte limit even without "
            "file content; shorten the test id, tags, MIME type or route code"
        )
    content = head + body
    return content + _crc32(content).to_bytes(4, "big")


def encode(event: Event, *, accelerate: bool = True) -> bytes:
    """The subunit v2 bytes for one event.

    File content too large for one packet is split into several packets that
    share every field; only the last carries the status and the EOF flag.
    Raises :class:`EncodeError` for an event subunit cannot express.
    """
    if accelerate and c_encode is not None:
        return c_encode((event,), _encode_python)
    return _encode_python(event)


def _encode_python(event: Event) -> bytes:
    flags, parts = _fields_before_file(event)
    file_name = event.file_name
    route_code = event.route_code
    route = b"" if route_code is None else _cached_string(route_code, "route code")
    if route_code is not None:
        flags |= FLAG_ROUTE_CODE
    if file_name is None:
        return _frame(flags, b"".join(parts) + route)
    flags |= FLAG_FILE_CONTENT
    name = _cached_string(file_name, "file name")
    content = event.file_bytes
    size = len(content)
    head = b"".join(parts)
    # Fixed part: signature, flags, 3-byte length, fields, name, route, CRC.
    room = MAX_PACKET - (3 + 3 + len(head) + len(name) + len(route) + 4)
    if size + len(_varint(size)) <= room:
        return _frame(flags, b"".join((head, name, _varint(size), content, route)))
    return _encode_chunked(event, flags, head, name, route, room)


def _encode_chunked(
    event: Event, flags: int, head: bytes, name: bytes, route: bytes, room: int
) -> bytes:
    chunk = room - 3  # every chunk over 16 KiB has a 3-byte length varint
    if chunk < 1:
        raise EncodeError("test id, tags and names leave no room for file content in a packet")
    content = memoryview(event.file_bytes)
    last_flags = flags
    middle_flags = flags & ~(FLAG_EOF | 0x0007)
    out: list[bytes] = []
    total = len(content)
    for start in range(0, total, chunk):
        piece = content[start : start + chunk]
        piece_flags = last_flags if start + chunk >= total else middle_flags
        out.append(_frame(piece_flags, b"".join((head, name, _varint(len(piece)), piece, route))))
    return b"".join(out)


def encode_many(events: Iterable[Event], *, accelerate: bool = True) -> bytes:
    """The concatenated encoding of several events."""
    if accelerate and c_encode is not None:
        return c_encode(events, _encode_python)
    return b"".join([_encode_python(event) for event in events])
