"""Reading event streams from files and pipes: the I/O the wire layer leaves out.

:func:`read_events` reads a binary file object in blocks (``read1`` where the
object has it, so a live pipe delivers events as they arrive rather than when a
block fills) and feeds a decoder for the stream's format, yielding events in
batches. :func:`detect_format` tells the formats apart from their first bytes.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from typing import BinaryIO, Protocol

from proctor.events.sink import Sink
from proctor.wire.event import Event

__all__ = [
    "FORMATS",
    "StreamDecoder",
    "UnknownFormatError",
    "detect_format",
    "make_decoder",
    "pump",
    "read_events",
]

BLOCK = 256 * 1024

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


def make_decoder(name: str) -> StreamDecoder:
    """A fresh decoder for a format name (``v2``, ``v1``, ``json``, ``junit``)."""
    try:
        module_name, class_name = FORMATS[name]
    except KeyError:
        known = ", ".join(sorted(FORMATS))
        raise UnknownFormatError(
            f"unknown stream format {name!r}; expected one of {known}"
        ) from None
    decoder: StreamDecoder = getattr(importlib.import_module(module_name), class_name)()
    return decoder


def detect_format(head: bytes) -> str:
    """The format of a stream from its first bytes.

    A subunit v2 stream starts with 0xB3 (after any text a test printed, which
    v2 carries as passthrough); JSON lines with ``{``; JUnit XML with ``<``; a
    subunit v1 stream with a v1 directive line. Anything else is read as v2,
    whose decoder turns unknown bytes into ``stdout`` passthrough and loses
    nothing.
    """
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not stripped or b"\xb3" in head[:1]:
        return "v2"
    if stripped[:1] == b"{":
        return "json"
    if stripped[:1] == b"<":
        return "junit"
    for line in stripped.split(b"\n", 8)[:8]:
        if b"\xb3" in line:
            return "v2"
        if _V1_LINE.match(line):
            return "v1"
    return "v2"


def _read_block(stream: BinaryIO) -> bytes:
    read1 = getattr(stream, "read1", None)
    if read1 is not None:
        data: bytes = read1(BLOCK)
        return data
    return stream.read(BLOCK)


def read_events(stream: BinaryIO, format: str = "auto") -> Iterator[list[Event]]:
    """Yield batches of events decoded from a binary stream until its end.

    ``format`` is a name from :data:`FORMATS` or ``auto`` (see :func:`detect_format`).
    """
    first = _read_block(stream)
    if format == "auto":
        format = detect_format(first)
    decoder = make_decoder(format)
    data = first
    while data:
        events = decoder.feed(data)
        if events:
            yield events
        data = _read_block(stream)
    events = decoder.close()
    if events:
        yield events


def pump(stream: BinaryIO, sink: Sink, format: str = "auto") -> None:
    """Decode a whole stream into a sink (without closing the sink)."""
    send = sink.send
    for batch in read_events(stream, format):
        for event in batch:
            send(event)
