"""The subunit v2 incremental decoder (see :mod:`proctor.wire.v2`)."""

from __future__ import annotations

import codecs
import zlib
from collections.abc import Callable
from typing import NamedTuple

from proctor.wire._v2_format import (
    FLAG_EOF,
    FLAG_FILE_CONTENT,
    FLAG_MIME_TYPE,
    FLAG_RESERVED,
    FLAG_ROUTE_CODE,
    FLAG_RUNNABLE,
    FLAG_TAGS,
    FLAG_TEST_ID,
    FLAG_TIMESTAMP,
    NON_SUBUNIT_NAME,
    PARSER_TEST_ID,
    STATUSES,
    VERSION_2,
    c_scan,
)
from proctor.wire.event import DEFAULT_MIME_TYPE, NS_PER_SECOND, Event, Status, new_event

__all__ = ["Decoder", "decode"]

_crc32 = zlib.crc32


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
    """A packet whose fields do not parse: ``args`` are the message and the
    offset parsing had reached (what the attempt cost, for the work budget)."""


class _Bad(NamedTuple):
    """Why a candidate packet was rejected, and how many bytes the attempt read."""

    message: str
    cost: int


PACKET_DATA_LIMIT = 256
"""Bytes of a bad packet kept in its ``Packet data`` diagnostic (the message
gives the length the packet claimed). python-subunit keeps every claimed byte;
with a rescan after each bad candidate that would copy the same region again
for every stray 0xB3 in it."""

_SHORT = -1  # _packet: the packet runs past the end of the stream


def _header(buf: bytes, j: int, size: int) -> tuple[int, int, int] | str | None:
    """(flags, length, fields offset) of the packet at ``j``, an error message,
    or None when the header itself has not all arrived."""
    if size - j < 4:
        return None
    flags = (buf[j + 1] << 8) | buf[j + 2]
    if flags & 0xF000 != VERSION_2:
        return f"Unsupported subunit version 0x{flags >> 12:x} in flags 0x{flags:04x}"
    if flags & FLAG_RESERVED:
        return f"Reserved flag bit 0x0008 is set in flags 0x{flags:04x}"
    first = buf[j + 3]
    kind = first & 0xC0
    if kind == 0x00:
        length, pos = first, j + 4
    elif kind == 0x40:
        if size - j < 5:
            return None
        length, pos = ((first & 0x3F) << 8) | buf[j + 4], j + 5
    elif kind == 0x80:
        if size - j < 6:
            return None
        length, pos = ((first & 0x3F) << 16) | (buf[j + 4] << 8) | buf[j + 5], j + 6
    else:
        return "3 byte maximum given but 4 byte value found."
    if length < 8 or length < pos - j + 4:
        return f"Packet length {length} is too short to hold a packet"
    return flags, length, pos


class _Unknown(Exception):
    """The candidate's bytes so far end before this field does."""


def _plausible(buf: bytes, j: int, size: int) -> bool:
    """Whether the bytes so far of an incomplete candidate at ``j`` may still
    begin a valid packet: False only when the whole packet, once arrived, would
    certainly be rejected (the checks of :func:`_header` and :func:`_fields`,
    on a prefix)."""
    header = _header(buf, j, size)
    if header is None:  # the checks of _header, on the bytes there are
        have = size - j
        return not (
            (have > 1 and buf[j + 1] & 0xF0 != VERSION_2 >> 8)
            or (have > 2 and buf[j + 2] & FLAG_RESERVED)
            or (have > 3 and buf[j + 3] & 0xC0 == 0xC0)
        )
    if isinstance(header, str):
        return False
    flags, length, pos = header
    end = j + length - 4  # where the CRC starts
    avail = min(size, end)
    try:
        if flags & FLAG_TIMESTAMP:
            pos = _prefix_varint(buf, _prefix_take(pos, 4, end, avail), end, avail)[1]
        if flags & FLAG_TEST_ID:
            pos = _prefix_string(buf, pos, end, avail)
        if flags & FLAG_TAGS:
            count, pos = _prefix_varint(buf, pos, end, avail)
            for _ in range(count):
                pos = _prefix_string(buf, pos, end, avail)
        if flags & FLAG_MIME_TYPE:
            pos = _prefix_string(buf, pos, end, avail)
        if flags & FLAG_FILE_CONTENT:
            pos = _prefix_string(buf, pos, end, avail)
            n, pos = _prefix_varint(buf, pos, end, avail)
            if pos + n > end:
                return False
            pos += n  # the content itself: any bytes
        if flags & FLAG_ROUTE_CODE:
            pos = _prefix_string(buf, pos, end, avail)
    except _Unknown:
        return True
    except _BadPacket:
        return False
    return pos == end


def _prefix_take(pos: int, n: int, end: int, avail: int) -> int:
    if pos + n > end:
        raise _BadPacket("overrun", pos)
    if pos + n > avail:
        raise _Unknown
    return pos + n


def _prefix_varint(buf: bytes, pos: int, end: int, avail: int) -> tuple[int, int]:
    first = buf[_prefix_take(pos, 1, end, avail) - 1]
    n = (1, 2, 3, 4)[first >> 6]
    stop = _prefix_take(pos, n, end, avail)
    return int.from_bytes(buf[pos:stop], "big") & ((1 << (8 * n - 2)) - 1), stop


def _prefix_string(buf: bytes, pos: int, end: int, avail: int) -> int:
    n, start = _prefix_varint(buf, pos, end, avail)
    if start + n > end:
        raise _BadPacket("overrun", start)
    whole = start + n <= avail
    try:
        text = _utf8_prefix()(buf[start : min(start + n, avail)], whole)
    except UnicodeDecodeError:
        raise _BadPacket("not UTF-8", start) from None
    if "\x00" in text:
        raise _BadPacket("NUL", start)
    if not whole:
        raise _Unknown
    return start + n


def _utf8_prefix() -> Callable[[bytes, bool], str]:
    """A fresh incremental UTF-8 decoder's ``decode`` (a prefix may end mid-character)."""
    return codecs.getincrementaldecoder("utf-8")().decode


class Decoder:
    """An incremental subunit v2 decoder.

    Feed it bytes in any chunking with :meth:`feed`; each call returns the
    events completed so far, and the events are those of the whole buffer
    decoded at once (only passthrough text may be split differently). Call
    :meth:`close` at the end of the stream to flush what is left (a packet
    cut short at the end is reported as a parser error and its bytes
    rescanned). The decoder never raises on bad input, and
    its work is linear in its input: rescanning after bad candidates is paid
    from a budget proportional to the stream offset, and once an input crafted to
    exhaust it has done so, a bad candidate's claimed bytes are skipped as
    python-subunit skips them.
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
        "_spent",
    )

    def __init__(
        self, non_subunit_name: str = NON_SUBUNIT_NAME, *, accelerate: bool = True
    ) -> None:
        self._non_subunit_name = non_subunit_name
        self._c_scan = c_scan if accelerate else None
        self._held: list[bytes] = []  # unconsumed input: a packet still arriving
        self._held_size = 0
        self._need = 0  # bytes needed in _held before parsing can progress
        self._owed = 0  # UTF-8 continuation bytes owed by text already emitted
        self._offset = 0  # stream offset of the first held byte
        self._spent = 0  # bytes bad candidates have cost (see _BUDGET_BASE)
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
        hold_mid = False
        reported_short = False
        while True:
            j = find(b"\xb3", pos)
            if j < 0:
                break
            mid = _pending_continuations(buf, text_start, j, owed) if j > text_start or owed else 0
            if mid:
                # 0xB3 inside a UTF-8 character is text (python-subunit's rule),
                # unless a whole valid packet starts there: then the byte before
                # it was stray and the packet is kept. Nothing here is reported.
                # A candidate still arriving is waited for while the bytes so
                # far could begin a valid packet (so the result never depends
                # on where reads end); text such as "ó " is rejected at once.
                found: list[Event] = []
                if c_scan is not None:
                    stop = c_scan(buf, j, found)  # negative: still arriving
                    waiting = stop < 0 and not final
                else:
                    result = packet(buf, j, size, final, found)
                    waiting = type(result) is int and result == 0
                    stop = result if type(result) is int and result > 0 else j
                if waiting and _plausible(buf, j, size):
                    if j > text_start:
                        self._text(events, buf[text_start:j])
                    hold, hold_owed, hold_mid = j, mid, True
                    break
                if stop <= j:
                    pos = j + 1
                    continue
                if j > text_start:
                    self._text(events, buf[text_start:j])
                events.extend(found)
                pos = text_start = stop
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
                if stop < 0 and not final:  # still arriving: wait for it
                    hold = j
                    break
            result = packet(buf, j, size, final, events)
            if type(result) is int:
                if result > 0:
                    pos = text_start = result
                    continue
                if result == 0:  # incomplete: hold it and wait for more input
                    hold = j
                    break
                # Cut off by the end of the stream: report the first such
                # candidate; those after it are inside its claimed bytes.
                if not reported_short:
                    reported_short = True
                    claimed = self._claimed(buf, j, size)
                    message = f"Short read - got {size - j} bytes, wanted {claimed} bytes"
                    self._diagnose(events, buf, j, message)
                pos = j + 1
                continue
            assert type(result) is _Bad
            self._diagnose(events, buf, j, result.message)
            self._spent += result.cost
            # The budget grows with the stream offset, not with the bytes fed so
            # far, so that the same bytes decode alike in any chunking.
            if self._spent < _BUDGET_BASE + _BUDGET_PER_BYTE * (self._offset + j):
                pos = j + 1  # rescan; the rejected signature stays as text
            else:
                pos = max(j + 1, min(j + self._claimed(buf, j, size), size))
        if hold >= 0:
            self._owed = hold_owed
            self._offset += hold
            rest = buf[hold:]
            self._held = [rest]
            self._held_size = len(rest)
            need = self._need_for(rest)
            if hold_mid:
                # Look again as the candidate grows: it is usually text.
                need = min(need, 2 * len(rest) + 1)
            self._need = need
            return
        if size > text_start:
            self._text(events, buf[text_start:size])
            owed = _pending_continuations(buf, text_start, size, owed)
        self._owed = owed
        self._offset += size
        self._need = 0

    @staticmethod
    def _claimed(buf: bytes, j: int, size: int) -> int:
        """How many bytes a bad packet at j claims: its length, else its header's."""
        header = _header(buf, j, size)
        if isinstance(header, tuple):
            return header[1]
        return min(3, size - j)

    @staticmethod
    def _need_for(held: bytes) -> int:
        header = _header(held, 0, len(held))
        if header is None:
            return 6
        return header[1] if isinstance(header, tuple) else 0

    def _diagnose(self, events: list[Event], buf: bytes, j: int, message: str) -> None:
        header = _header(buf, j, len(buf))
        where = f"packet at stream offset {self._offset + j}"
        if isinstance(header, tuple):
            claimed = header[1]
            where += f", claiming {claimed} bytes"
        else:
            claimed = min(3, len(buf) - j)  # the header is wrong: its length means nothing
        text = f"{message} ({where})"
        events.append(
            Event(
                test_id=PARSER_TEST_ID,
                file_name="Packet data",
                file_bytes=buf[j : j + min(claimed, PACKET_DATA_LIMIT)],
                eof=True,
                mime_type=DEFAULT_MIME_TYPE,
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
    def _packet(buf: bytes, j: int, size: int, final: bool, events: list[Event]) -> int | _Bad:
        """Parse the packet at j into ``events``.

        Returns the offset just past it; 0 when more input is needed; ``_SHORT``
        when the stream ended before the packet did; or why it is bad. The
        fields are checked before the CRC: a stray 0xB3 almost never starts a
        structure that fills its claimed length exactly, so garbage is rejected
        without checksumming the bytes it claims.
        """
        header = _header(buf, j, size)
        if header is None:
            return _SHORT if final else 0
        if isinstance(header, str):
            return _Bad(header, 6)
        flags, length, pos = header
        end = j + length
        if end > size:
            return _SHORT if final else 0
        crc_at = end - 4
        try:
            event = _fields(buf, pos, crc_at, flags, j)
        except _BadPacket as error:
            message, reached = error.args
            return _Bad(message, reached - j)
        stored = int.from_bytes(buf[crc_at:end], "big")
        calculated = _crc32(memoryview(buf)[j:crc_at])
        if stored != calculated:
            message = f"Bad checksum - calculated (0x{calculated:x}), stored (0x{stored:x})"
            return _Bad(message, length)
        events.append(event)
        return end


_BUDGET_BASE = 1 << 22
"""Bytes rejected candidates may make the decoder read at the start of the stream."""
_BUDGET_PER_BYTE = 16
"""... and more for each byte of stream offset (not of input fed: the same
bytes must decode alike in any chunking). Ordinary damage (a stray 0xB3, a corrupt packet,
random bytes) costs far less than this; only input built to make every
candidate read megabytes runs out, after which bad candidates' claimed bytes
are skipped and the total work stays linear."""


def _fields(buf: bytes, pos: int, end: int, flags: int, base: int) -> Event:
    """The event of the packet starting at ``base`` whose fields run from ``pos`` to ``end``."""
    timestamp = test_id = mime_type = file_name = route_code = None
    tags: frozenset[str] = frozenset()
    file_bytes = b""
    if flags & FLAG_TIMESTAMP:
        seconds = int.from_bytes(buf[pos : pos + 4], "big")
        nanos, pos = _read_varint(buf, pos + 4, end)
        timestamp = seconds * NS_PER_SECOND + nanos
    if flags & FLAG_TEST_ID:
        test_id, pos = _read_string(buf, pos, end, base)
    if flags & FLAG_TAGS:
        count, pos = _read_varint(buf, pos, end)
        found = []
        for _ in range(count):
            tag, pos = _read_string(buf, pos, end, base)
            found.append(tag)
        tags = frozenset(found)
    if flags & FLAG_MIME_TYPE:
        mime_type, pos = _read_string(buf, pos, end, base)
    if flags & FLAG_FILE_CONTENT:
        file_name, pos = _read_string(buf, pos, end, base)
        length, pos = _read_varint(buf, pos, end)
        if pos + length > end:
            raise _BadPacket(
                "File content extends past end of packet: "
                f"claimed {length} bytes, {max(0, end - pos)} available",
                pos,
            )
        file_bytes = buf[pos : pos + length]
        pos += length
    if flags & FLAG_ROUTE_CODE:
        route_code, pos = _read_string(buf, pos, end, base)
    if pos != end:
        if pos > end:
            raise _BadPacket("Packet fields overrun the packet length", end)
        # python-subunit ignores such bytes; no writer produces them, and
        # refusing them rejects garbage before its CRC is computed.
        raise _BadPacket(f"{end - pos} bytes between the last field and the CRC", pos)
    return new_event(
        Event,
        (
            test_id,
            STATUSES[flags & 0x0007],
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
        raise _BadPacket("Packet fields overrun the packet length", end)
    first = buf[pos]
    kind = first & 0xC0
    if kind == 0x00:
        return first, pos + 1
    if kind == 0x40:
        if pos + 2 > end:
            raise _BadPacket("Packet fields overrun the packet length", end)
        return ((first & 0x3F) << 8) | buf[pos + 1], pos + 2
    if kind == 0x80:
        if pos + 3 > end:
            raise _BadPacket("Packet fields overrun the packet length", end)
        return ((first & 0x3F) << 16) | (buf[pos + 1] << 8) | buf[pos + 2], pos + 3
    if pos + 4 > end:
        raise _BadPacket("Packet fields overrun the packet length", end)
    return int.from_bytes(buf[pos : pos + 4], "big") & 0x3FFFFFFF, pos + 4


def _read_string(buf: bytes, pos: int, end: int, base: int) -> tuple[str, int]:
    where = pos - base  # the offset in the packet: the same whatever the reads
    length, start = _read_varint(buf, pos, end)
    stop = start + length
    if stop > end:
        raise _BadPacket(f"UTF8 string at offset {where} extends past end of packet", end)
    try:
        # Decoded in place (no copy): on garbage this fails at the first bad byte.
        text = str(memoryview(buf)[start:stop], "utf-8")
    except UnicodeDecodeError as error:
        raise _BadPacket(f"UTF8 string at offset {where} is not UTF8", start + error.end) from None
    if "\x00" in text:
        raise _BadPacket(f"UTF8 string at offset {where} contains NUL byte", stop)
    return text, stop


def decode(
    data: bytes, non_subunit_name: str = NON_SUBUNIT_NAME, *, accelerate: bool = True
) -> list[Event]:
    """Decode a whole stream held in memory."""
    decoder = Decoder(non_subunit_name, accelerate=accelerate)
    return decoder.feed(data) + decoder.close()
