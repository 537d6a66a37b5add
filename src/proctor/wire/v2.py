"""Subunit v2: an encoder and an incremental decoder, bytes in and events out, no I/O.

The packet layout, flag bits and python-subunit's behaviour are described in
docs/architecture.md ("The wire layer"). In short::

    0xB3 | flags (u16 BE) | length (varint, whole packet) | timestamp? | test id?
         | tags? | MIME type? | file (name, length, bytes)? | route code? | CRC-32 (u32 BE)

The encoder produces exactly python-subunit's bytes for every event that
python-subunit can encode, validates strings (UTF-8, no NUL) before writing, and
splits file content too large for one packet into several packets.

The decoder accepts any chunking of its input. Bytes that are not packets become
``stdout`` file events, one per contiguous run (never one per byte). A bad packet
(bad CRC, length under 8, fields overrunning the packet, invalid UTF-8 or NUL in
a string, a version other than 2, bit 3 set, a truncated packet at the end of the
stream) becomes the two ``subunit.parser`` diagnostic events python-subunit emits,
and the decoder rescans from the byte after the bad signature, so a stray 0xB3 in
text never swallows the good packet that follows it.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Iterable
from types import ModuleType

from proctor.wire.event import NS_PER_SECOND, Event, Status

__all__ = [
    "ACCELERATED",
    "MAX_PACKET",
    "NON_SUBUNIT_NAME",
    "PARSER_TEST_ID",
    "Decoder",
    "EncodeError",
    "decode",
    "encode",
    "encode_many",
]

SIGNATURE = 0xB3
MAX_PACKET = 4_194_303
"""The largest packet, in bytes, signature and CRC included (2**22 - 1)."""
NON_SUBUNIT_NAME = "stdout"
PARSER_TEST_ID = "subunit.parser"

FLAG_TEST_ID = 0x0800
FLAG_ROUTE_CODE = 0x0400
FLAG_TIMESTAMP = 0x0200
FLAG_RUNNABLE = 0x0100
FLAG_TAGS = 0x0080
FLAG_FILE_CONTENT = 0x0040
FLAG_MIME_TYPE = 0x0020
FLAG_EOF = 0x0010
FLAG_RESERVED = 0x0008
VERSION_2 = 0x2000

_crc32 = zlib.crc32
_STATUSES = tuple(Status)
_SMALL_VARINTS = tuple(bytes((i,)) for i in range(64))
_new_event = tuple.__new__


def _load_speedups() -> ModuleType | None:
    """The optional C fast paths (see _speedups.c), unless PROCTOR_PURE_PYTHON is set."""
    if os.environ.get("PROCTOR_PURE_PYTHON"):
        return None
    try:
        from proctor.wire import _speedups  # type: ignore[attr-defined]
    except ImportError:
        return None
    _speedups.configure(Event, _STATUSES)
    return _speedups  # type: ignore[no-any-return]


_speedups = _load_speedups()
ACCELERATED = _speedups is not None
"""True when the C fast paths are in use (same results, several times faster)."""
_c_scan: Callable[[bytes, int, list[Event]], int] | None = (
    _speedups.scan if _speedups is not None else None
)
_c_encode: Callable[[Iterable[Event], Callable[[Event], bytes]], bytes] | None = (
    _speedups.encode if _speedups is not None else None
)


class EncodeError(ValueError):
    """An event that cannot be written as subunit v2 (the message says which field and why)."""


# ---------------------------------------------------------------------------
# Encoding


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
    flags = VERSION_2 | status
    parts: list[bytes] = []
    if timestamp is not None:
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
    if accelerate and _c_encode is not None:
        return _c_encode((event,), _encode_python)
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
    if accelerate and _c_encode is not None:
        return _c_encode(events, _encode_python)
    return b"".join([_encode_python(event) for event in events])


# ---------------------------------------------------------------------------
# Decoding

_CONTINUATION_LOW = 0x80
_CONTINUATION_HIGH = 0xBF


def _utf8_expected(byte: int) -> int:
    """How many continuation bytes a UTF-8 lead byte promises (0 for others)."""
    if 0xC2 <= byte <= 0xDF:
        return 1
    if 0xE0 <= byte <= 0xEF:
        return 2
    if 0xF0 <= byte <= 0xF4:
        return 3
    return 0


def _pending_continuations(buf: bytes, start: int, end: int, before: int) -> int:
    """Continuation bytes still owed at ``end`` for text ``buf[start:end]``.

    ``before`` is what was owed at ``start``. Only the last non-continuation
    byte and the continuation bytes after it matter, so this looks back at
    most four bytes.
    """
    seen = 0
    k = end - 1
    while k >= start and seen < 4:
        byte = buf[k]
        if _CONTINUATION_LOW <= byte <= _CONTINUATION_HIGH:
            seen += 1
            k -= 1
            continue
        owed = _utf8_expected(byte) - seen
        return owed if owed > 0 else 0
    if k < start:
        owed = before - seen
        return owed if owed > 0 else 0
    return 0


class _BadPacket(Exception):
    pass


class Decoder:
    """An incremental subunit v2 decoder.

    Feed it bytes in any chunking with :meth:`feed`; each call returns the
    events completed so far. Call :meth:`close` at the end of the stream to
    flush what is left (a packet cut short at the end is reported as a parser
    error and its bytes rescanned). The decoder never raises on bad input.
    """

    __slots__ = (
        "_c_scan",
        "_closed",
        "_held",
        "_held_size",
        "_need",
        "_non_subunit_name",
        "_offset",
        "_owed",
    )

    def __init__(
        self, non_subunit_name: str = NON_SUBUNIT_NAME, *, accelerate: bool = True
    ) -> None:
        self._non_subunit_name = non_subunit_name
        self._c_scan = _c_scan if accelerate else None
        self._held: list[bytes] = []  # unconsumed input: a packet still arriving
        self._held_size = 0
        self._need = 0  # bytes needed in _held before parsing can progress
        self._owed = 0  # UTF-8 continuation bytes owed by text already emitted
        self._offset = 0  # stream offset of the first held byte
        self._closed = False

    def feed(self, data: bytes) -> list[Event]:
        """Decode ``data``; return the events it completed."""
        if self._closed:
            raise ValueError("feed() called after close()")
        if not data:
            return []
        if self._held:
            self._held.append(bytes(data))
            self._held_size += len(data)
            if self._held_size < self._need:
                return []
            buf = b"".join(self._held)
            self._held.clear()
            self._held_size = 0
        else:
            buf = bytes(data)
        events: list[Event] = []
        self._scan(buf, events, final=False)
        return events

    def close(self) -> list[Event]:
        """Flush the end of the stream; return the events that completes."""
        if self._closed:
            return []
        self._closed = True
        events: list[Event] = []
        if self._held:
            buf = b"".join(self._held)
            self._held.clear()
            self._held_size = 0
            self._scan(buf, events, final=True)
        return events

    def _text(self, events: list[Event], chunk: bytes) -> None:
        events.append(Event(file_name=self._non_subunit_name, file_bytes=chunk))

    def _scan(self, buf: bytes, events: list[Event], final: bool) -> None:
        size = len(buf)
        pos = text_start = 0
        owed = self._owed  # UTF-8 continuation bytes owed at text_start
        find = buf.find
        packet = self._packet
        c_scan = self._c_scan
        hold = -1
        hold_owed = 0
        while True:
            j = find(b"\xb3", pos)
            if j < 0:
                break
            mid = _pending_continuations(buf, text_start, j, owed) if j > text_start or owed else 0
            if mid:
                # 0xB3 inside a UTF-8 character is text (python-subunit's rule),
                # unless a whole valid packet starts there: then the byte before
                # it was stray and the packet is kept. Failures here are silent.
                found: list[Event] = []
                result = packet(buf, j, size, final, found)
                if type(result) is str or (result == 0 and final):
                    pos = j + 1
                    continue
                if j > text_start:
                    self._text(events, buf[text_start:j])
                if result == 0:
                    hold, hold_owed = j, mid
                    break
                assert isinstance(result, int)
                events.extend(found)
                pos = text_start = result
                owed = 0
                continue
            if j > text_start:
                self._text(events, buf[text_start:j])
            text_start = j
            owed = 0
            if c_scan is not None:
                stop = c_scan(buf, j, events)
                if stop > j:
                    pos = text_start = stop
                    continue
            result = packet(buf, j, size, final, events)
            if type(result) is int:
                if result == 0:  # incomplete: hold it and wait for more input
                    hold = j
                    break
                pos = text_start = result
                continue
            assert isinstance(result, str)
            self._diagnose(events, buf[j : j + self._claimed(buf, j, size)], result, j)
            pos = j + 1  # rescan; the rejected signature stays as text
        if hold >= 0:
            self._owed = hold_owed
            self._offset += hold
            rest = buf[hold:]
            self._held = [rest]
            self._held_size = len(rest)
            self._need = self._need_for(rest)
            return
        if size > text_start:
            self._text(events, buf[text_start:size])
            owed = _pending_continuations(buf, text_start, size, owed)
        self._owed = owed
        self._offset += size
        self._need = 0

    @staticmethod
    def _claimed(buf: bytes, j: int, size: int) -> int:
        """How many bytes a bad packet at j claims (for the diagnostic), at least 1."""
        if size - j >= 3 and (buf[j + 1] & 0xF8) != 0x20:
            return 3  # bad version or reserved bit: the length means nothing
        if size - j >= 4:
            first = buf[j + 3]
            kind = first & 0xC0
            if kind == 0x00:
                length = first
            elif kind == 0x40 and size - j >= 5:
                length = ((first & 0x3F) << 8) | buf[j + 4]
            elif kind == 0x80 and size - j >= 6:
                length = ((first & 0x3F) << 16) | (buf[j + 4] << 8) | buf[j + 5]
            else:
                length = 4
            return max(1, min(length, size - j))
        return size - j

    @staticmethod
    def _need_for(held: bytes) -> int:
        if len(held) < 4:
            return 4
        first = held[3]
        kind = first & 0xC0
        if kind == 0x00:
            return first
        if kind == 0x40:
            return ((first & 0x3F) << 8) | held[4] if len(held) >= 5 else 5
        if kind == 0x80:
            return ((first & 0x3F) << 16) | (held[4] << 8) | held[5] if len(held) >= 6 else 6
        return 0

    def _diagnose(self, events: list[Event], packet: bytes, message: str, at: int) -> None:
        text = f"{message} (packet at stream offset {self._offset + at})"
        events.append(
            Event(
                test_id=PARSER_TEST_ID,
                file_name="Packet data",
                file_bytes=packet,
                eof=True,
                mime_type="application/octet-stream",
            )
        )
        events.append(
            Event(
                test_id=PARSER_TEST_ID,
                status=Status.FAIL,
                file_name="Parser Error",
                file_bytes=text.encode("utf-8"),
                eof=True,
                mime_type="text/plain;charset=utf8",
            )
        )

    @staticmethod
    def _packet(buf: bytes, j: int, size: int, final: bool, events: list[Event]) -> int | str:
        """Parse the packet at j into ``events``.

        Returns the offset just past it, 0 when more input is needed, or an
        error message for a bad packet.
        """
        if size - j < 4:
            return 0 if not final else "Short read - packet header cut off at end of stream"
        flags = (buf[j + 1] << 8) | buf[j + 2]
        if flags & 0xF000 != VERSION_2:
            return f"Unsupported subunit version 0x{flags >> 12:x} in flags 0x{flags:04x}"
        if flags & FLAG_RESERVED:
            return f"Reserved flag bit 0x0008 is set in flags 0x{flags:04x}"
        first = buf[j + 3]
        kind = first & 0xC0
        if kind == 0x00:
            length = first
            pos = j + 4
        elif kind == 0x40:
            if size - j < 5:
                return 0 if not final else "Short read - packet length cut off at end of stream"
            length = ((first & 0x3F) << 8) | buf[j + 4]
            pos = j + 5
        elif kind == 0x80:
            if size - j < 6:
                return 0 if not final else "Short read - packet length cut off at end of stream"
            length = ((first & 0x3F) << 16) | (buf[j + 4] << 8) | buf[j + 5]
            pos = j + 6
        else:
            return "3 byte maximum given but 4 byte value found."
        if length < 8 or length < pos - j + 4:
            return f"Packet length {length} is too short to hold a packet"
        end = j + length
        if end > size:
            if final:
                return f"Short read - got {size - j} bytes, wanted {length} bytes"
            return 0
        crc_at = end - 4
        stored = int.from_bytes(buf[crc_at:end], "big")
        calculated = _crc32(memoryview(buf)[j:crc_at])
        if stored != calculated:
            return f"Bad checksum - calculated (0x{calculated:x}), stored (0x{stored:x})"
        try:
            events.append(_fields(buf, pos, crc_at, flags))
        except _BadPacket as error:
            return str(error)
        return end


def _fields(buf: bytes, pos: int, end: int, flags: int) -> Event:
    timestamp = test_id = mime_type = file_name = route_code = None
    tags: frozenset[str] = frozenset()
    file_bytes = b""
    if flags & FLAG_TIMESTAMP:
        seconds = int.from_bytes(buf[pos : pos + 4], "big")
        nanos, pos = _read_varint(buf, pos + 4, end)
        timestamp = seconds * NS_PER_SECOND + nanos
    if flags & FLAG_TEST_ID:
        test_id, pos = _read_string(buf, pos, end)
    if flags & FLAG_TAGS:
        count, pos = _read_varint(buf, pos, end)
        found = []
        for _ in range(count):
            tag, pos = _read_string(buf, pos, end)
            found.append(tag)
        tags = frozenset(found)
    if flags & FLAG_MIME_TYPE:
        mime_type, pos = _read_string(buf, pos, end)
    if flags & FLAG_FILE_CONTENT:
        file_name, pos = _read_string(buf, pos, end)
        length, pos = _read_varint(buf, pos, end)
        if pos + length > end:
            raise _BadPacket(
                "File content extends past end of packet: "
                f"claimed {length} bytes, {max(0, end - pos)} available"
            )
        file_bytes = buf[pos : pos + length]
        pos += length
    if flags & FLAG_ROUTE_CODE:
        route_code, pos = _read_string(buf, pos, end)
    if pos > end:
        raise _BadPacket("Packet fields overrun the packet length")
    return _new_event(
        Event,
        (
            test_id,
            _STATUSES[flags & 0x0007],
            tags,
            bool(flags & FLAG_RUNNABLE),
            file_name,
            file_bytes,
            bool(flags & FLAG_EOF),
            mime_type,
            route_code,
            timestamp,
        ),
    )


def _read_varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    if pos >= end:
        raise _BadPacket("Packet fields overrun the packet length")
    first = buf[pos]
    kind = first & 0xC0
    if kind == 0x00:
        return first, pos + 1
    if kind == 0x40:
        if pos + 2 > end:
            raise _BadPacket("Packet fields overrun the packet length")
        return ((first & 0x3F) << 8) | buf[pos + 1], pos + 2
    if kind == 0x80:
        if pos + 3 > end:
            raise _BadPacket("Packet fields overrun the packet length")
        return ((first & 0x3F) << 16) | (buf[pos + 1] << 8) | buf[pos + 2], pos + 3
    if pos + 4 > end:
        raise _BadPacket("Packet fields overrun the packet length")
    return int.from_bytes(buf[pos : pos + 4], "big") & 0x3FFFFFFF, pos + 4


def _read_string(buf: bytes, pos: int, end: int) -> tuple[str, int]:
    length, start = _read_varint(buf, pos, end)
    stop = start + length
    if stop > end:
        raise _BadPacket(f"UTF8 string at offset {pos} extends past end of packet")
    raw = buf[start:stop]
    if b"\x00" in raw:
        raise _BadPacket(f"UTF8 string at offset {pos} contains NUL byte")
    try:
        return raw.decode("utf-8"), stop
    except UnicodeDecodeError:
        raise _BadPacket(f"UTF8 string at offset {pos} is not UTF8") from None


def decode(
    data: bytes, non_subunit_name: str = NON_SUBUNIT_NAME, *, accelerate: bool = True
) -> list[Event]:
    """Decode a whole stream held in memory."""
    decoder = Decoder(non_subunit_name, accelerate=accelerate)
    return decoder.feed(data) + decoder.close()
