"""Reading event streams from files and pipes: the I/O the wire layer leaves out.

:func:`read_events` reads a binary file object in blocks (``read1`` where the
object has it, so a live pipe delivers events as they arrive rather than when a
block fills) and feeds a decoder for the stream's format, yielding events in
batches. :func:`detect_format` tells the formats apart from their first bytes;
on a pipe those may arrive a few bytes at a time, so :func:`read_events` reads
on until the bytes seen decide the format (:func:`format_decided`) before it
picks a decoder. A format other than v2 picked so is confirmed only by its
first test event; a valid v2 packet before that makes the stream v2.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO, Protocol

from proctor.events.sink import Sink
from proctor.wire.event import Event

if TYPE_CHECKING:
    from proctor.wire.junit import TestIds

__all__ = [
    "FORMATS",
    "StreamDecoder",
    "UnknownFormatError",
    "detect_format",
    "format_decided",
    "make_decoder",
    "pump",
    "read_events",
]

BLOCK = 256 * 1024
DETECT_BYTES = 4096
"""Format detection decides from at most about this many bytes."""
DETECT_LINES = 8
"""... or from this many lines (subunit v1 may follow lines of other output)."""
_BLANKS = b"\xef\xbb\xbf \t\r\n"  # a UTF-8 byte order mark, white space

# format name -> (module, decoder class). Imported on first use.
FORMATS: dict[str, tuple[str, str]] = {
    "v2": ("proctor.wire.v2", "Decoder"),
    "v1": ("proctor.wire.v1", "V1Decoder"),
    "json": ("proctor.wire.jsonl", "JsonlDecoder"),
    "junit": ("proctor.wire.junit", "JUnitDecoder"),
}

_V1_LINE = re.compile(
    rb"^(test|testing|success|successful|failure|error|skip|xfail|uxsuccess|tags|time|progress)"
    rb"[: ]"
)


class UnknownFormatError(ValueError):
    """A format name Proctor does not know."""


class StreamDecoder(Protocol):
    """What every incremental decoder of the wire layer offers."""

    def feed(self, data: bytes) -> list[Event]: ...

    def close(self) -> list[Event]: ...


def make_decoder(name: str, *, junit_ids: TestIds | None = None) -> StreamDecoder:
    """A fresh decoder for a format name (``v2``, ``v1``, ``json``, ``junit``).

    ``junit_ids`` names JUnit test cases (see :class:`proctor.wire.junit.TestIds`).
    """
    try:
        module_name, class_name = FORMATS[name]
    except KeyError:
        known = ", ".join(sorted(FORMATS))
        raise UnknownFormatError(
            f"unknown stream format {name!r}; expected one of {known}"
        ) from None
    factory = getattr(importlib.import_module(module_name), class_name)
    decoder: StreamDecoder = factory(junit_ids) if name == "junit" else factory()
    return decoder


def detect_format(head: bytes) -> str:
    """The format of a stream from its first bytes.

    A subunit v2 stream starts with 0xB3, or holds a valid v2 packet after
    whatever text a test printed first (v2 carries that text as passthrough,
    even when it looks like JSON, XML or a v1 directive); JSON lines start
    with ``{``; JUnit XML with ``<``; a subunit v1 stream with a v1 directive
    line. Anything else is read as v2, whose decoder turns unknown bytes into
    ``stdout`` passthrough and loses nothing.
    """
    stripped = head.lstrip(_BLANKS)
    if not stripped or b"\xb3" in head[:1] or _holds_v2_packet(head):
        return "v2"
    if stripped[:1] == b"{":
        return "json"
    if stripped[:1] == b"<":
        return "junit"
    for line in stripped.split(b"\n", DETECT_LINES)[:DETECT_LINES]:
        if b"\xb3" in line:
            return "v2"
        if _V1_LINE.match(line):
            return "v1"
    return "v2"


def _holds_v2_packet(head: bytes) -> bool:
    """Whether ``head`` contains a whole, valid subunit v2 packet."""
    if b"\xb3" not in head:
        return False
    from proctor.wire.v2 import Decoder

    return _any_packet(Decoder().feed(head))


def format_decided(head: bytes) -> bool:
    """Whether :func:`detect_format` says of ``head`` what it would say of any
    longer stream starting with it (or ``head`` is as much as it looks at).

    Decided: a first byte 0xB3 (a live v2 stream is never held back), a first
    ``{`` or ``<``, a line among the first few holding 0xB3 or a v1 directive
    (the lines before it complete and holding neither), that many lines
    complete, or :data:`DETECT_BYTES` read. Not decided: nothing but blanks
    yet, or the start of a line that may still become a v1 directive.
    """
    if head[:1] == b"\xb3" or len(head) >= DETECT_BYTES:
        return True
    stripped = head.lstrip(_BLANKS)
    if not stripped:
        return False
    if stripped[:1] in (b"{", b"<"):
        return True
    lines = stripped.split(b"\n", DETECT_LINES)
    for line in lines[:DETECT_LINES]:
        if b"\xb3" in line or _V1_LINE.match(line):
            return True
    return len(lines) > DETECT_LINES


def _read_block(stream: BinaryIO) -> bytes:
    read1 = getattr(stream, "read1", None)
    if read1 is not None:
        data: bytes = read1(BLOCK)
        return data
    return stream.read(BLOCK)


def read_events(
    stream: BinaryIO, format: str = "auto", *, junit_ids: TestIds | None = None
) -> Iterator[list[Event]]:
    """Yield batches of events decoded from a binary stream until its end.

    ``format`` is a name from :data:`FORMATS` or ``auto`` (see :func:`detect_format`;
    on a pipe, reads go on until :func:`format_decided`). A format other than v2
    found that way is a guess until its decoder yields an event with a test id:
    until then its events are held back, and if a valid v2 packet turns up
    first (a suite printed ``{...}``, ``<...>`` or ``time: ...`` at import, before
    its first packet) the whole stream is read as v2 instead, on any read sizes.
    Input the decoder rejects raises its ``ValueError``; for JSON lines, the
    events of the lines before the bad one are yielded first.
    """
    data = _read_block(stream)
    eof = not data
    if format == "auto":
        while not eof and not format_decided(data):
            more = _read_block(stream)
            if more:
                data += more
            else:
                eof = True
        format = detect_format(data)
        if format != "v2":
            guess = make_decoder(format, junit_ids=junit_ids)
            yield from _read_guessed(stream, guess, format, data, eof)
            return
    yield from _decode(stream, make_decoder(format, junit_ids=junit_ids), format, data, eof)


def _decode(
    stream: BinaryIO,
    decoder: StreamDecoder,
    format: str,
    data: bytes,
    eof: bool,
    lines: _LineCount | None = None,
) -> Iterator[list[Event]]:
    """Feed ``data`` and the rest of the stream to ``decoder``; then close it."""
    if lines is None and format == "json":
        lines = _LineCount()
    while data:
        try:
            events = decoder.feed(data)
        except ValueError as error:
            if lines is not None:
                yield from lines.before(getattr(error, "line", None), data)
            raise
        if events:
            yield events
        if lines is not None:
            lines.fed(data)
        if eof:
            break
        data = _read_block(stream)
    events = decoder.close()
    if events:
        yield events


class _V2Watch:
    """A v2 decoder run beside a guessed format: it notices a real v2 packet
    and, if one comes, already holds the stream decoded as v2."""

    def __init__(self) -> None:
        from proctor.wire.v2 import Decoder

        self.decoder: StreamDecoder = Decoder()
        self.events: list[Event] = []
        self.found = False
        self.closed = False

    def feed(self, data: bytes) -> None:
        """Feed a block; an empty one ends the stream."""
        if data:
            self._see(self.decoder.feed(data))
        elif not self.closed:
            self.closed = True
            self._see(self.decoder.close())

    def seen(self) -> bool:
        """Whether a valid v2 packet has been read."""
        return self.found

    def take_over(self, stream: BinaryIO, eof: bool) -> Iterator[list[Event]]:
        """Yield the stream as v2: what was read so far, then the rest."""
        if self.events:
            yield self.events
            self.events = []
        if not self.closed:
            yield from _decode(stream, self.decoder, "v2", b"" if eof else _read_block(stream), eof)

    def _see(self, events: list[Event]) -> None:
        if events:
            self.events += events
            if not self.found:
                self.found = _any_packet(events)


def _any_packet(events: list[Event]) -> bool:
    """Whether v2-decoded events hold one that only a valid packet makes."""
    from proctor.wire.v2 import NON_SUBUNIT_NAME, PARSER_TEST_ID

    for event in events:
        if event.test_id is None:
            if event.file_name != NON_SUBUNIT_NAME:
                return True
        elif event.test_id != PARSER_TEST_ID:
            return True
    return False


def _read_guessed(
    stream: BinaryIO, decoder: StreamDecoder, format: str, data: bytes, eof: bool
) -> Iterator[list[Event]]:
    """Read a stream whose first bytes look like ``format`` (not v2).

    The guess holds once the decoder yields an event with a test id: a
    printed line is never that. Until then the events are held back and a v2
    decoder reads the same bytes; if it finds a valid packet first, the stream
    is v2 (python-subunit reads it so) and its v2 events are yielded instead.
    """
    watch = _V2Watch()
    held: list[Event] = []
    lines = _LineCount() if format == "json" else None
    while True:
        watch.feed(data)
        if watch.seen():
            yield from watch.take_over(stream, eof)
            return
        try:
            events = decoder.feed(data) if data else decoder.close()
        except ValueError as error:
            # Bad input for the guess: if a v2 packet comes later, it was v2.
            bad = data
            while data and not eof and not watch.seen():
                data = _read_block(stream)
                watch.feed(data)
            if not watch.seen():
                watch.feed(b"")  # the end of the stream: held candidates resolve
            if watch.seen():
                yield from watch.take_over(stream, eof or not data)
                return
            if held:
                yield held
            if lines is not None and bad:
                yield from lines.before(getattr(error, "line", None), bad)
            raise
        held += events
        if not data:
            if held:
                yield held
            return
        if lines is not None:
            lines.fed(data)
        if any(event.test_id is not None for event in events):
            if held:
                yield held
            rest = b"" if eof else _read_block(stream)
            yield from _decode(stream, decoder, format, rest, eof or not rest, lines)
            return
        data = b"" if eof else _read_block(stream)


class _LineCount:
    """Where a JSON-lines stream is, so that the good lines of a block whose
    decoding failed can be read again: the decoder gives up the whole block."""

    def __init__(self) -> None:
        self.complete = 0  # lines fed and ended
        self.tail = b""  # the start of the line being fed

    def fed(self, data: bytes) -> None:
        ends = data.count(b"\n")
        if ends:
            self.complete += ends
            self.tail = data[data.rfind(b"\n") + 1 :]
        else:
            self.tail += data

    def before(self, bad_line: int | None, data: bytes) -> Iterator[list[Event]]:
        """The events of this block's lines before line ``bad_line`` (1-based)."""
        good = -1 if bad_line is None else bad_line - 1 - self.complete
        if good <= 0:
            return
        text = b"\n".join((self.tail + data).split(b"\n", good)[:good]) + b"\n"
        events = make_decoder("json").feed(text)
        if events:
            yield events


def pump(stream: BinaryIO, sink: Sink, format: str = "auto") -> None:
    """Decode a whole stream into a sink (without closing the sink)."""
    send = sink.send
    for batch in read_events(stream, format):
        for event in batch:
            send(event)
