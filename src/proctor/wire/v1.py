"""Subunit v1: an incremental reader to v2 events, and a writer from test records.

subunit v1 is the line protocol python-subunit spoke before 2013, and what the C,
shell, C++ and Perl bindings still write::

    time: 2024-01-02 03:04:05.000000Z
    tags: global-tag
    test: pkg.mod.Class.test_a
    failure: pkg.mod.Class.test_a [
    Traceback (most recent call last):
    ...
    ]

Reading (:class:`V1Decoder`) gives exactly the events ``subunit-1to2`` writes
for the same input, where python-subunit does not crash or lose data:

* ``test:`` gives ``inprogress`` (no tags); the outcome gives its file events
  and then the final status, carrying the effective tags (the global ones from
  ``tags:`` lines outside tests, changed by the test's own ``tags:`` lines).
  ``failure`` and ``error`` both become ``fail``: v2 has no error status.
* A ``[`` block becomes one file: ``traceback`` (``text/x-traceback;
  charset="utf8"``) for failure, error, xfail and uxsuccess, ``reason`` for skip
  and ``message`` for success (both ``text/plain``). A line starting ``" ]"`` is
  a quoted ``"]"``. A ``[ multipart`` block gives one file per part, with the
  part's MIME type verbatim and its HTTP-chunked content decoded.
* ``time:`` sets the timestamp of every later event. Before the first one,
  events carry no timestamp (subunit-1to2 reads the clock instead; the wire
  layer has no clock: add one downstream with a timestamp-filling sink).
* ``progress:`` lines are dropped, as subunit-1to2 drops them: v2 cannot say
  "N tests to go", and an invented encoding would reach python-subunit's tools
  as junk.
* Any other line, and an outcome line whose label is not the running test's,
  is passed through as a ``stdout`` file event without a test id, as v2's
  decoder does for non-subunit bytes. Consecutive lines become one event.
* A stream that ends inside a test reports it the way python-subunit does: a
  ``traceback`` file ``lost connection during test 'X'`` and ``fail``.

Where python-subunit crashes, loses data or misreads, this reader does better
(and documents it): an undecodable label or tag is read with U+FFFD for the bad
bytes (and for NUL, which v2 forbids) so every event can be written as v2; an
unparseable ``time:`` or ``progress:`` line is passed through as text rather
than aborting the conversion; a malformed multipart block is read on as a
``[`` block instead of swallowing the rest of the stream (and a chunk header
may end in a bare LF, which python-subunit rejects); only ``skip`` spells
skip (python-subunit also accepts any substring, such as ``s:`` or ``ki:``); the
last line needs no newline (python-subunit cuts its last character); parts
with the same name are all kept (python-subunit keeps the last); details
already read when a stream breaks off are kept; fractions of a second keep
nanoseconds; and memory stays bounded however long a line or detail is.

Writing (:class:`V1Encoder`) produces what ``subunit-2to1`` writes for the
same records: ``time:`` (start), ``tags:``, ``test:``, ``time:`` (stop), the
outcome word (``successful``, ``failure``, ``skip``, ``xfail``, ``uxsuccess``;
unfinished tests are ``failure``) with a ``[ multipart`` block holding every
attachment sorted by name, and a ``tags:`` line cancelling the test's tags.
``exists`` records, route codes and ``runnable`` cannot be said in v1 and are
dropped, as subunit-2to1 drops them.
"""

from __future__ import annotations

import re

from proctor.wire._isotime import V2_MAX_NS, parse_ns
from proctor.wire._v1_write import V1Encoder, encode_records
from proctor.wire.event import SIMPLE_TRACEBACK_MIME_TYPE, TRACEBACK_MIME_TYPE, Event, Status

__all__ = [
    "FLUSH_AT",
    "LOST_CONNECTION_PREFIX",
    "MAX_DIRECTIVE_LINE",
    "SIMPLE_TEXT_MIME_TYPE",
    "SIMPLE_TRACEBACK_MIME_TYPE",
    "V1Decoder",
    "V1Encoder",
    "decode",
    "encode_records",
]

LOST_CONNECTION_PREFIX = "testtools.testresult.real._StringException: "
"""How python-subunit's lost-connection traceback starts. Kept byte for byte so
that tools matching on subunit-1to2's output see the same text from us."""

SIMPLE_TEXT_MIME_TYPE = "text/plain"
"""The MIME type of a ``[`` block's skip reason or success message."""

MAX_DIRECTIVE_LINE = 1 << 20
"""A line this long without a newline is not held waiting for one: outside a
detail block it is passed through as text (no directive is that long)."""
FLUSH_AT = 1 << 20
"""Detail content is passed on in chunks of about this size (non-EOF file
events), so a huge detail never sits whole in the decoder."""
_MAX_CHUNK_HEADER = 64

_WHITESPACE = b" \t\n\r\x0b\x0c"  # what bytes.split() splits on
_OUTCOMES: dict[bytes, tuple[Status, str, str, str]] = {
    # word -> (status, name in lost-connection messages, [ block file, its MIME type)
    b"success": (Status.SUCCESS, "success", "message", SIMPLE_TEXT_MIME_TYPE),
    b"successful": (Status.SUCCESS, "success", "message", SIMPLE_TEXT_MIME_TYPE),
    b"failure": (Status.FAIL, "failure", "traceback", SIMPLE_TRACEBACK_MIME_TYPE),
    b"error": (Status.FAIL, "error", "traceback", SIMPLE_TRACEBACK_MIME_TYPE),
    b"skip": (Status.SKIP, "skip", "reason", SIMPLE_TEXT_MIME_TYPE),
    b"xfail": (Status.XFAIL, "xfail", "traceback", SIMPLE_TRACEBACK_MIME_TYPE),
    b"uxsuccess": (Status.UXSUCCESS, "uxsuccess", "traceback", SIMPLE_TRACEBACK_MIME_TYPE),
}
_WORDS = frozenset((*_OUTCOMES, b"test", b"testing", b"tags", b"time", b"progress"))
_WHITESPACE_RE = re.compile(rb"[ \t\n\r\x0b\x0c]")
_PROGRESS = re.compile(rb"\s*(?:[+-]?[0-9]+|push|pop)\s*")
_CHUNK_HEADER = re.compile(rb"([0-9A-Fa-f]{1,16})\r?\n")

# Decoder states.
_OUTSIDE = 0  # between tests
_IN_TEST = 1  # after test:, before the outcome
_SIMPLE = 2  # inside a [ ... ] block
_PART_HEAD = 3  # multipart: expecting "Content-Type: ..." or "]"
_PART_NAME = 4  # multipart: expecting the part's name
_CHUNK_HEAD = 5  # multipart: expecting a chunk length
_CHUNK_BODY = 6  # multipart: inside a chunk


def _text(raw: bytes) -> str:
    """Bytes from the stream as text v2 can carry: bad UTF-8 and NUL become U+FFFD."""
    text = raw.decode("utf-8", "replace")
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def _strip_newline(line: bytes) -> bytes:
    return line[:-1] if line.endswith(b"\n") else line


class V1Decoder:
    """An incremental subunit v1 reader: feed bytes in any chunking, get v2 events.

    :meth:`feed` returns the events its bytes completed; :meth:`close` flushes
    the end of the stream (reporting a test left open). Any bytes are valid
    input (what is not protocol is passthrough text), so the decoder never
    raises on input; it raises ``ValueError`` only for :meth:`feed` after
    :meth:`close`.
    """

    def __init__(self, non_subunit_name: str = "stdout") -> None:
        self._non_subunit_name = non_subunit_name
        self._buf = bytearray()
        self._events: list[Event] = []
        self._passthrough = bytearray()
        self._closed = False
        self._state = _OUTSIDE
        self._continued = False  # part of the current line was already consumed
        self._now: int | None = None
        self._global_tags: set[str] = set()
        self._tags: set[str] = set()
        self._label = b""  # the running test's label as written
        self._test_id = ""
        self._outcome: tuple[Status, str, str, str] = _OUTCOMES[b"success"]
        self._file_name = ""
        self._file_mime = ""
        self._content = bytearray()
        self._content_flushed = False  # part of the current file went out already
        self._body_left = 0

    # -- public API ---------------------------------------------------------

    def feed(self, data: bytes) -> list[Event]:
        """Read ``data``; return the events it completed."""
        if self._closed:
            raise ValueError("feed() called after close()")
        self._buf += data
        self._run(final=False)
        return self._take()

    def close(self) -> list[Event]:
        """End the stream: flush held text and report a test left open."""
        if self._closed:
            return []
        self._closed = True
        self._run(final=True)
        if self._state != _OUTSIDE:
            self._lost_connection()
        return self._take()

    # -- plumbing -----------------------------------------------------------

    def _take(self) -> list[Event]:
        self._flush_passthrough()
        events, self._events = self._events, []
        return events

    def _emit(self, event: Event) -> None:
        if self._passthrough:
            self._flush_passthrough()
        self._events.append(event)

    def _flush_passthrough(self) -> None:
        if self._passthrough:
            self._events.append(
                Event(file_name=self._non_subunit_name, file_bytes=bytes(self._passthrough))
            )
            self._passthrough.clear()

    def _run(self, final: bool) -> None:
        buf = self._buf
        pos = 0
        size = len(buf)
        while pos < size:
            if self._state == _CHUNK_BODY:
                take = min(self._body_left, size - pos)
                self._add_content(buf[pos : pos + take])
                pos += take
                self._body_left -= take
                if self._body_left == 0:
                    self._state = _CHUNK_HEAD
                continue
            if self._state == _SIMPLE and not self._continued:
                after = self._simple_lines(buf, pos, size)
                if after != pos:
                    pos = after
                    continue
            newline = buf.find(b"\n", pos)
            if newline >= 0:
                end = newline + 1
            elif final:
                end = size
            else:
                pos = self._partial(buf, pos, size)
                break
            line = bytes(buf[pos:end])
            pos = end
            self._line(line)
        del buf[:pos]

    def _simple_lines(self, buf: bytearray, pos: int, size: int) -> int:
        """Take the complete lines of a [ block at ``pos`` at once (the common, long case).

        Returns the position after what was taken (``pos`` if no line is complete).
        """
        if buf.startswith(b"]\n", pos):
            end = pos
        else:
            end = buf.find(b"\n]\n", pos)
            if end >= 0:
                end += 1
            else:
                last = buf.rfind(b"\n", pos, size)
                if last < 0:
                    return pos
                self._add_content(_unquote(buf[pos : last + 1]))
                return last + 1
        if end > pos:
            self._add_content(_unquote(buf[pos:end]))
        self._finish_file()
        self._finish_test()
        return end + 2

    def _partial(self, buf: bytearray, pos: int, size: int) -> int:
        """Decide what to do with a line whose newline has not arrived yet.

        Returns the new read position: unchanged to wait for more bytes, or
        ``size`` when the bytes were consumed already.
        """
        state = self._state
        length = size - pos
        if state in (_OUTSIDE, _IN_TEST):
            if self._continued or length > MAX_DIRECTIVE_LINE or not _may_be_directive(buf, pos):
                self._passthrough += buf[pos:size]
                self._continued = True
                return size
        elif state == _SIMPLE:
            # Two bytes without a newline can no longer be the "]\n" end marker.
            if self._continued or length >= 4096:
                start = pos + 1 if not self._continued and buf[pos : pos + 2] == b" ]" else pos
                self._add_content(buf[start:size])
                self._continued = True
                return size
        elif state in (_PART_HEAD, _PART_NAME):
            if length > MAX_DIRECTIVE_LINE:
                self._fall_back_to_simple()
                return self._partial(buf, pos, size)
        elif state == _CHUNK_HEAD and length > _MAX_CHUNK_HEADER:
            self._finish_file()
            self._fall_back_to_simple()
            return self._partial(buf, pos, size)
        return pos

    # -- lines --------------------------------------------------------------

    def _line(self, line: bytes) -> None:
        state = self._state
        if state in (_OUTSIDE, _IN_TEST):
            if self._continued:
                self._continued = False
                self._passthrough += line
            elif not self._directive(line):
                self._passthrough += line
        elif state == _SIMPLE:
            if self._continued:
                self._continued = False
                self._add_content(line)
            elif line == b"]\n":
                self._finish_file()
                self._finish_test()
            elif line.startswith(b" ]"):
                self._add_content(line[1:])
            else:
                self._add_content(line)
        elif state == _PART_HEAD:
            if line == b"]\n":
                self._finish_test()
                return
            space = line.find(b" ")
            value = _strip_newline(line[space + 1 :])
            if space < 0 or b"/" not in value:
                self._fall_back_to_simple()
                self._line(line)
                return
            self._file_mime = _text(value)
            self._state = _PART_NAME
        elif state == _PART_NAME:
            self._file_name = _text(_strip_newline(line))
            self._content.clear()
            self._state = _CHUNK_HEAD
        else:  # _CHUNK_HEAD
            match = _CHUNK_HEADER.fullmatch(line)
            if match is None:
                self._finish_file()
                self._fall_back_to_simple()
                self._line(line)
                return
            length = int(match[1], 16)
            if length:
                self._body_left = length
                self._state = _CHUNK_BODY
            else:
                self._finish_file()
                self._state = _PART_HEAD

    def _directive(self, line: bytes) -> bool:
        """Act on a protocol line outside a detail block; False if it is text."""
        if not line or line[0] in _WHITESPACE:
            return False
        split = _first_whitespace(line)
        if split < 0 or not line[split:].strip(_WHITESPACE):
            return False  # python-subunit needs a word and an argument
        word = line[:split].rstrip(b":")
        if word not in _WORDS:
            return False
        value = _strip_newline(line[split + 1 :])
        if word == b"time":
            return self._time(value)
        if word == b"tags":
            self._change_tags(value)
            return True
        if word == b"progress":
            return _PROGRESS.fullmatch(value) is not None
        if self._state == _OUTSIDE:
            if word in (b"test", b"testing"):
                self._start_test(value)
                return True
            return False
        outcome = _OUTCOMES.get(word)
        if outcome is None:
            return False  # "test:" inside a test is text, as in python-subunit
        label = self._label
        if value == label:
            self._outcome = outcome
            self._finish_test()
        elif value == label + b" [":
            self._begin_details(outcome, _SIMPLE)
        elif value == label + b" [ multipart":
            self._begin_details(outcome, _PART_HEAD)
        else:
            return False
        return True

    def _time(self, value: bytes) -> bool:
        moment = parse_ns(value.decode("ascii", "replace"))
        if moment is None or not 0 <= moment <= V2_MAX_NS:
            return False  # not a time v2 can carry: keep the line as text
        self._now = moment
        return True

    def _change_tags(self, value: bytes) -> None:
        tags = self._tags if self._state == _IN_TEST else self._global_tags
        gone = []
        for tag in _text(value).split():
            if tag.startswith("-"):
                gone.append(tag[1:])
            else:
                tags.add(tag)
        tags.difference_update(gone)

    # -- tests and details --------------------------------------------------

    def _start_test(self, label: bytes) -> None:
        self._state = _IN_TEST
        self._label = label
        self._test_id = _text(label)
        self._tags = set(self._global_tags)
        self._emit(Event(test_id=self._test_id, status=Status.INPROGRESS, timestamp=self._now))

    def _begin_details(self, outcome: tuple[Status, str, str, str], state: int) -> None:
        self._outcome = outcome
        self._state = state
        self._content.clear()
        if state == _SIMPLE:
            self._file_name = outcome[2]
            self._file_mime = outcome[3]

    def _fall_back_to_simple(self) -> None:
        """Read the rest of a malformed multipart block as a [ block."""
        self._state = _SIMPLE
        self._continued = False
        self._file_name = self._outcome[2]
        self._file_mime = self._outcome[3]
        self._content.clear()

    def _add_content(self, data: bytes | bytearray) -> None:
        self._content += data
        if len(self._content) >= FLUSH_AT:
            self._emit_file(eof=False)

    def _emit_file(self, eof: bool) -> None:
        self._content_flushed = not eof
        self._emit(
            Event(
                test_id=self._test_id,
                file_name=self._file_name,
                file_bytes=bytes(self._content),
                eof=eof,
                mime_type=self._file_mime,
                timestamp=self._now,
            )
        )
        self._content.clear()

    def _finish_file(self) -> None:
        self._emit_file(eof=True)

    def _finish_test(self, status: Status | None = None) -> None:
        self._emit(
            Event(
                test_id=self._test_id,
                status=self._outcome[0] if status is None else status,
                tags=frozenset(self._tags),
                timestamp=self._now,
            )
        )
        self._state = _OUTSIDE
        self._continued = False

    def _lost_connection(self) -> None:
        state = self._state
        where = "" if state == _IN_TEST else f"{self._outcome[1]} report of "
        if state in (_SIMPLE, _CHUNK_HEAD, _CHUNK_BODY) and (
            self._content or self._content_flushed
        ):
            self._finish_file()  # keep what arrived of the detail
        message = f"{LOST_CONNECTION_PREFIX}lost connection during {where}test '{self._test_id}'\n"
        self._emit(
            Event(
                test_id=self._test_id,
                file_name="traceback",
                file_bytes=message.encode("utf-8"),
                eof=True,
                mime_type=TRACEBACK_MIME_TYPE,
                timestamp=self._now,
            )
        )
        self._finish_test(Status.FAIL)


def _unquote(lines: bytearray) -> bytearray:
    """Complete lines of a [ block with the space of each quoted ``" ]"`` removed."""
    lines = lines.replace(b"\n ]", b"\n]")
    return lines[1:] if lines.startswith(b" ]") else lines


def _first_whitespace(line: bytes) -> int:
    match = _WHITESPACE_RE.search(line)
    return -1 if match is None else match.start()


def _may_be_directive(buf: bytearray, pos: int) -> bool:
    """Whether the start of a line (no newline yet) could still become a directive."""
    head = bytes(buf[pos : pos + 32])
    if not head or head[0] in _WHITESPACE:
        return False
    split = _first_whitespace(head)
    if split >= 0:
        return head[:split].rstrip(b":") in _WORDS
    if len(head) >= 32:
        return False  # no directive word (with colons) is that long
    word = head.rstrip(b":")
    if word != head:
        return word in _WORDS
    return any(known.startswith(word) for known in _WORDS)


def decode(data: bytes, non_subunit_name: str = "stdout") -> list[Event]:
    """Read a whole v1 stream held in memory."""
    decoder = V1Decoder(non_subunit_name)
    return decoder.feed(data) + decoder.close()
