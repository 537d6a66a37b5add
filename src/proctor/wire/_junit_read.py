"""The JUnit XML reader: XML bytes in any chunking, v2 events out, test case by test case.

Re-exported by :mod:`proctor.wire.junit`; this module holds only the reading side.

It reads the dialects in the wild: pytest's (``<testsuites>`` around one
``<testsuite>``), Maven Surefire's and Gradle's (one ``<testsuite>`` per file,
``time`` with thousands commas, ``rerunFailure`` / ``flakyFailure``), GitLab's
and Jenkins' (nested ``<testsuite>`` elements), with or without an XML namespace.
``xml.etree.ElementTree.XMLPullParser`` is fed the bytes as they come, and every
element is dropped as soon as its test case or suite-level output has been
turned into events, so a large report never sits whole in memory.

Each ``<testcase>`` becomes:

* ``inprogress`` at its start, then one file per detail, then the final status
  at its end: ``<failure>`` or ``<error>`` (v2 has no error status) give
  ``fail`` and a ``traceback`` file (the ``type: message`` line, unless the
  text already holds it, then the text); ``<skipped>`` gives ``skip`` and a
  ``reason`` file (message, then text); neither gives ``success``. Two marks
  give back what JUnit cannot say directly: ``<skipped type="xfail">`` (what
  Proctor writes) or ``type="pytest.xfail"`` (what pytest writes) gives
  ``xfail``, and ``<failure type="uxsuccess">`` (Proctor's) gives ``uxsuccess``.
  ``<system-out>`` / ``<system-err>`` become ``stdout`` / ``stderr`` files;
  Surefire's rerun and flaky elements become files named after the element.
* Its id is ``classname.name`` (just ``name`` when there is no classname).
  python-subunit's ``junitxml2subunit`` writes ``classname::name`` instead; the
  dot is chosen because a JUnit classname is a dotted class path, so the dot
  rebuilds the id Python runners themselves give the same test (pytest's JUnit
  output for ``pkg.mod.Class.test_x`` says classname ``pkg.mod.Class``, name
  ``test_x``): results from a JUnit file and from ``python -m subunit.run`` or
  Proctor's own runner then collate as one test in history and triage, and
  :func:`proctor.wire.junit.split_test_id` reverses it. ``::`` would give ids no
  Python runner uses. pytest's node ids (``tests/test_x.py::TestC::test_y``)
  need the project's files to be rebuilt: ``JUnitDecoder(ids=PytestNodeIds(root))``
  does that (``proctor load`` in a project that runs under pytest).
* Timestamps are synthetic but keep durations: a clock starts at the suite's
  ``timestamp`` attribute when it has one (zone-less times are UTC), else at
  2000-01-01T00:00:00Z as junitxml2subunit does; each test case runs from the
  clock for its ``time`` and moves the clock on. A test case's own
  ``timestamp`` attribute, where a producer writes one, sets its start.

Suite-level ``<system-out>`` / ``<system-err>`` become test-less ``stdout`` /
``stderr`` file events (junitxml2subunit drops them). Bad XML raises
:class:`JUnitError` saying what is wrong and where (line, 1-based column), and
so does a document whose root is not ``<testsuites>`` or ``<testsuite>``.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator

from proctor.wire._isotime import V2_MAX_NS, parse_ns
from proctor.wire._junit_ids import dotted_id
from proctor.wire.event import (
    NS_PER_SECOND,
    SIMPLE_TRACEBACK_MIME_TYPE,
    TEXT_MIME_TYPE,
    Event,
    Status,
    worse_outcome,
)

__all__ = ["EPOCH_2000_NS", "JUnitDecoder", "JUnitError", "TestIds", "decode"]

TestIds = Callable[[str, str, "str | None"], str]
"""Names a test case from its ``classname``, ``name`` and ``file`` attributes
(``classname.name`` by default; :class:`~proctor.wire._junit_ids.PytestNodeIds`
gives pytest node ids)."""

EPOCH_2000_NS = 946_684_800 * NS_PER_SECOND
"""2000-01-01T00:00:00Z: where the synthetic clock starts when a suite gives no time."""

_SUITES = ("testsuites", "testsuite")
_DETAILS = {
    "failure": "traceback",
    "error": "traceback",
    "rerunFailure": "rerunFailure",
    "rerunError": "rerunError",
    "flakyFailure": "flakyFailure",
    "flakyError": "flakyError",
}
_XFAIL_TYPES = ("xfail", "pytest.xfail")
_POSITION_SUFFIX = re.compile(r":\s*line \d+, column \d+$")


class JUnitError(ValueError):
    """Input that is not a readable JUnit XML document.

    ``line`` and ``column`` (1-based) say where, when the XML parser knows.
    """

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        where = f" at line {line}, column {column}" if line is not None else ""
        super().__init__(f"invalid JUnit XML{where}: {message}")
        self.line = line
        self.column = column


def _local(tag: object) -> str:
    """An element's name without its namespace (comments and PIs give '')."""
    if not isinstance(tag, str):
        return ""
    return tag.rpartition("}")[2]


class JUnitDecoder:
    """An incremental JUnit XML reader: feed bytes, get the events of completed test cases.

    Raises :class:`JUnitError` from :meth:`feed` or :meth:`close` for input
    that is not JUnit XML; after that the decoder is spent and raises the same
    error again.
    """

    def __init__(self, ids: TestIds | None = None) -> None:
        self._ids: TestIds = dotted_id if ids is None else ids
        self._parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start", "end"))
        self._stack: list[ET.Element] = []
        self._in_testcase = 0
        self._clock: int | None = None
        self._error: JUnitError | None = None
        self._closed = False

    def feed(self, data: bytes) -> list[Event]:
        """Read ``data``; return the events of the test cases it completed."""
        if self._error is not None:
            raise self._error
        if self._closed:
            raise ValueError("feed() called after close()")
        try:
            self._parser.feed(data)
        except ET.ParseError as error:  # pragma: no cover - queued by the parser instead
            raise self._fail(error) from None
        return self._drain()

    def close(self) -> list[Event]:
        """End the document: raises :class:`JUnitError` if it is incomplete."""
        if self._error is not None:
            raise self._error
        if self._closed:
            return []
        self._closed = True
        events = self._drain()
        try:
            self._parser.close()
        except ET.ParseError as error:
            raise self._fail(error) from None
        events += self._drain()
        return events

    # -- parsing ------------------------------------------------------------

    def _fail(self, error: ET.ParseError) -> JUnitError:
        line, column = getattr(error, "position", (None, None))
        message = _POSITION_SUFFIX.sub("", str(error))
        self._error = JUnitError(message, line, None if column is None else column + 1)
        return self._error

    def _read(self) -> Iterator[tuple[str, ET.Element]]:
        items = self._parser.read_events()
        while True:
            try:
                item = next(items)
            except StopIteration:
                return
            except ET.ParseError as error:
                raise self._fail(error) from None
            # Only "start" and "end" were asked for: (kind, element) pairs.
            if len(item) == 2 and isinstance(item[1], ET.Element):
                yield str(item[0]), item[1]

    def _drain(self) -> list[Event]:
        events: list[Event] = []
        stack = self._stack
        for kind, element in self._read():
            tag = _local(element.tag)
            if kind == "start":
                if not stack and tag not in _SUITES:
                    self._error = JUnitError(
                        f"the root element is <{tag}>, expected <testsuites> or <testsuite>"
                    )
                    raise self._error
                stack.append(element)
                if tag == "testsuite":
                    self._anchor(element.get("timestamp"))
                elif tag == "testcase":
                    self._in_testcase += 1
                continue
            stack.pop()
            parent = stack[-1] if stack else None
            if tag == "testcase":
                self._in_testcase -= 1
                self._testcase(element, events)
            elif (
                tag in ("system-out", "system-err")
                and parent is not None
                and _local(parent.tag) in _SUITES
            ):
                text = "".join(element.itertext())
                if text.strip():
                    name = "stdout" if tag == "system-out" else "stderr"
                    events.append(Event(file_name=name, file_bytes=_utf8(text)))
            if parent is not None and not self._in_testcase:
                parent.remove(element)  # done with it: keep memory flat
            elif parent is None:
                element.clear()
        return events

    def _anchor(self, timestamp: str | None) -> None:
        moment = _moment(timestamp)
        if moment is not None:
            self._clock = moment
        elif self._clock is None:
            self._clock = EPOCH_2000_NS

    def _testcase(self, case: ET.Element, events: list[Event]) -> None:
        name = case.get("name") or ""
        classname = case.get("classname") or ""
        test_id = self._ids(classname, name, case.get("file"))
        start = _moment(case.get("timestamp"))
        if start is None:
            start = EPOCH_2000_NS if self._clock is None else self._clock
        stop = min(start + _duration(case.get("time")), V2_MAX_NS)
        self._clock = stop
        status = Status.SUCCESS
        files: list[tuple[str, str, str]] = []
        for child in case:
            tag = _local(child.tag)
            kind = child.get("type")
            if tag == "failure" and kind == "uxsuccess":
                # Proctor's own mark for an unexpected success (see junit.py).
                status = worse_outcome(status, Status.UXSUCCESS)
                body = "".join(child.itertext()).strip()
                if body:
                    files.append(("traceback", SIMPLE_TRACEBACK_MIME_TYPE, body + "\n"))
            elif tag in _DETAILS:
                if tag in ("failure", "error"):
                    status = Status.FAIL
                detail = _detail(child)
                if detail:
                    files.append((_DETAILS[tag], SIMPLE_TRACEBACK_MIME_TYPE, detail))
            elif tag == "skipped" and kind in _XFAIL_TYPES:
                status = worse_outcome(status, Status.XFAIL)
                body = "".join(child.itertext()).strip()
                if body:
                    files.append(("traceback", SIMPLE_TRACEBACK_MIME_TYPE, body + "\n"))
                elif child.get("message"):
                    files.append(("reason", TEXT_MIME_TYPE, child.get("message", "")))
            elif tag == "skipped":
                status = worse_outcome(status, Status.SKIP)
                reason = _reason(child)
                if reason:
                    files.append(("reason", TEXT_MIME_TYPE, reason))
            elif tag in ("system-out", "system-err"):
                text = "".join(child.itertext())
                if text.strip():
                    name_ = "stdout" if tag == "system-out" else "stderr"
                    files.append((name_, TEXT_MIME_TYPE, text))
        events.append(Event(test_id=test_id, status=Status.INPROGRESS, timestamp=start))
        events.extend(
            Event(
                test_id=test_id,
                file_name=file_name,
                file_bytes=_utf8(text),
                eof=True,
                mime_type=mime_type,
                timestamp=stop,
            )
            for file_name, mime_type, text in files
        )
        events.append(Event(test_id=test_id, status=status, timestamp=stop))


def _utf8(text: str) -> bytes:
    # Character references can name lone surrogates' neighbours but never
    # surrogates themselves, so this cannot fail; "replace" is belt and braces.
    return text.encode("utf-8", "replace")


def _moment(value: str | None) -> int | None:
    """A timestamp attribute as ns, if it is an ISO 8601 time subunit v2 can carry."""
    if not value:
        return None
    moment = parse_ns(value)
    if moment is None or not 0 <= moment <= V2_MAX_NS:
        return None
    return moment


def _duration(value: str | None) -> int:
    """A ``time`` attribute as ns; missing, unreadable, negative or infinite is 0.

    Surefire writes thousands with commas (``1,234.5``), which are dropped.
    """
    if not value:
        return 0
    try:
        seconds = float(value.replace(",", "").strip())
    except ValueError:
        return 0
    if not math.isfinite(seconds) or seconds <= 0:
        return 0
    if seconds >= V2_MAX_NS / NS_PER_SECOND:
        return V2_MAX_NS
    return round(seconds * NS_PER_SECOND)


def _detail(element: ET.Element) -> str:
    kind = element.get("type") or ""
    message = element.get("message") or ""
    if kind and message and not message.startswith(kind):
        header = f"{kind}: {message}"
    else:
        header = message or kind
    body = "".join(element.itertext()).strip()
    parts = [part for part in (header, body) if part]
    if header and body and header in body:
        parts = [body]
    return "\n".join(parts) + "\n" if parts else ""


def _reason(element: ET.Element) -> str:
    message = (element.get("message") or "").strip()
    body = "".join(element.itertext()).strip()
    if body == message or not body:
        return message
    if not message:
        return body
    return f"{message}\n{body}"


def decode(data: bytes, ids: TestIds | None = None) -> list[Event]:
    """Read a whole JUnit XML document held in memory."""
    decoder = JUnitDecoder(ids)
    return decoder.feed(data) + decoder.close()
