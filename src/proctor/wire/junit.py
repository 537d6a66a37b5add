"""JUnit XML: a streaming writer from test records and an incremental reader to events.

The writer produces the dialect Jenkins, GitLab and the GitHub test-report
actions read (and that validates against the Surefire-derived ``junit-10.xsd``
pytest tests itself with)::

    <?xml version="1.0" encoding="UTF-8"?>
    <testsuites name="proctor" tests="3" failures="1" errors="0" time="1.250">
    <testsuite name="proctor" tests="3" failures="1" errors="0" skipped="1" time="1.250" ...>
      <testcase classname="pkg.mod.Class" name="test_a" time="0.250">
        <failure message="ValueError: boom" type="ValueError">Traceback ...</failure>
        <system-out>what the test printed</system-out>
      </testcase>
      ...
    </testsuite>
    </testsuites>

JUnit wants the totals in the ``<testsuite>`` start tag, before the test cases,
but a stream is read once and may be far larger than memory. So the writer is
three pieces a caller assembles: :func:`testcase_xml` for each record as it
completes (spooled by the caller, e.g. to a temporary file), a
:class:`JUnitTotals` fed the same records, and :func:`document_head` /
:func:`document_tail` around the spool. :func:`encode_records` does it all in
memory for small inputs. See :mod:`proctor.wire._junit_read` for the reader,
re-exported here.

Mapping from records:

* ids: :func:`split_test_id` (``pkg.mod.Class.test_x`` gives classname
  ``pkg.mod.Class`` and name ``test_x``; parameters after ``(`` or ``[`` stay
  whole; pytest node ids ``path/to/test_x.py::Class::test`` give
  ``path.to.test_x.Class`` and ``test``, as pytest's own JUnit writer does).
* ``fail`` is a ``<failure>`` whose text is the traceback attachment(s) and
  whose ``message`` and ``type`` come from the exception line; ``uxsuccess``
  is a ``<failure>`` too (a run with one did not go as declared); a test that
  never finished (``inprogress``, or no status) is an ``<error>``; ``skip`` is
  ``<skipped>`` with the reason as its message; ``xfail`` is ``<skipped
  type="xfail">`` with the traceback, as pytest writes it; ``exists`` records
  (enumerated, not run) are left out.
* The ``stdout`` and ``stderr`` attachments become ``<system-out>`` and
  ``<system-err>``; other attachments not used above are appended to
  ``<system-out>`` under a ``----- name (MIME type) -----`` line. Binary
  attachments (not UTF-8, or an image/audio/video/font type) are not put in the
  XML: a line says their name, type and size instead.
* Text is escaped, ``\\r`` is kept as ``&#13;`` (XML would turn it into
  ``\\n``), and characters XML 1.0 forbids (most control characters, lone
  surrogates, U+FFFE/U+FFFF) are written as visible ``\\x1b``-style escapes.
* Times are seconds with three decimals (the schema's limit); a test with no
  timestamps gets no ``time`` attribute rather than a made-up zero.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from proctor.wire._isotime import format_ns
from proctor.wire._junit_ids import PytestNodeIds
from proctor.wire._junit_read import JUnitDecoder, JUnitError, TestIds, decode
from proctor.wire.event import NS_PER_SECOND, Status
from proctor.wire.record import Attachment, TestRecord

__all__ = [
    "MAX_MESSAGE",
    "JUnitDecoder",
    "JUnitError",
    "JUnitTotals",
    "PytestNodeIds",
    "TestIds",
    "decode",
    "document_head",
    "document_tail",
    "encode_records",
    "output_xml",
    "output_xml_parts",
    "split_test_id",
    "testcase_xml",
]

MAX_MESSAGE = 4096
"""The longest ``message`` attribute written, in characters (the full text is in the element)."""

# Characters XML 1.0 cannot hold: C0 controls but tab, newline and CR; lone
# surrogates; U+FFFE and U+FFFF. Written as the positive classes of what needs
# handling, not as negations of what passes: the same sets, but a negated class
# with the astral range takes about 5 ms to compile, paid at import by every
# command that writes JUnit (this module's whole import time, before).
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# Anything an attribute value or text needs changed: most ids and output need nothing.
_ATTR_SPECIAL = re.compile('[\x00-\x1f"&<>\ud800-\udfff\ufffe\uffff]')
_TEXT_SPECIAL = re.compile("[\x00-\x08\x0b-\x1f&<>\ud800-\udfff\ufffe\uffff]")
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
_ATTR_ESCAPES = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "\t": "&#9;",
        "\n": "&#10;",
        "\r": "&#13;",
    }
)
_BINARY_TYPES = ("image/", "audio/", "video/", "font/", "model/")
_FRAME = re.compile(r'\s+File "')
_EXCEPTION_TYPE = re.compile(r"[A-Za-z_][\w.]*")


def _escape_forbidden(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _clean(text: str) -> str:
    return _FORBIDDEN.sub(_escape_forbidden, text) if _FORBIDDEN.search(text) else text


def _xml_text(text: str) -> str:
    """``text`` escaped for element content."""
    if _TEXT_SPECIAL.search(text) is None:
        return text
    return _clean(text).translate(_TEXT_ESCAPES)


def _xml_attr(text: str) -> str:
    """``text`` escaped for a double-quoted attribute value."""
    if _ATTR_SPECIAL.search(text) is None:
        return text
    return _clean(text).translate(_ATTR_ESCAPES)


def split_test_id(test_id: str) -> tuple[str, str]:
    """The JUnit (classname, name) for a test id.

    * ``pkg.mod.Class.test_x`` -> (``pkg.mod.Class``, ``test_x``): the last dot
      before any parameters (``(`` or ``[``) splits, so
      ``pkg.T.test_x(a.b)`` keeps ``test_x(a.b)`` whole.
    * ``tests/test_x.py::Class::test_y[1]`` -> (``tests.test_x.Class``,
      ``test_y[1]``), as pytest's own JUnit writer names it.
    * An id with no dot (or only a leading or trailing one) -> (``""``, the id).

    Joining the two with a dot gives the id back for every id but pytest's,
    which is what the reader (:class:`JUnitDecoder`) does.
    """
    if "(" not in test_id and "[" not in test_id and ":" not in test_id:
        dot = test_id.rfind(".")  # the common case, first: a dotted unittest id
        if 0 < dot < len(test_id) - 1:
            return test_id[:dot], test_id[dot + 1 :]
    cut = len(test_id)
    for opener in "([":
        index = test_id.find(opener)
        if 0 <= index < cut:
            cut = index
    head, params = test_id[:cut], test_id[cut:]
    if "::" in head:
        parts = head.split("::")
        path = parts[0]
        if path.endswith(".py"):
            path = path[:-3]
        path = path.replace("/", ".").replace("\\", ".")
        classname = ".".join(part for part in (path, *parts[1:-1]) if part)
        if parts[-1] + params:
            return classname, parts[-1] + params
    dot = head.rfind(".")
    if dot <= 0 or dot == len(test_id) - 1:
        return "", test_id  # neither part may be empty, or the dot would be lost
    return head[:dot], test_id[dot + 1 :]


@dataclass(slots=True)
class JUnitTotals:
    """The counts JUnit's ``<testsuite>`` tag carries, accumulated record by record.

    Feed it every record given to :func:`testcase_xml`; it holds a few numbers
    however long the stream.
    """

    tests: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    start: int | None = None
    """Earliest start timestamp seen (ns since the epoch)."""
    stop: int | None = None
    """Latest stop timestamp seen (ns since the epoch)."""
    total_duration: float = 0.0
    """Sum of the test durations, for streams without timestamps spanning the run."""

    def add(self, record: TestRecord) -> None:
        """Count one record (``exists`` records are not test results and are ignored)."""
        status = record.status
        if status is Status.SUCCESS:  # the short way for nearly every record
            self.tests += 1
            start, stop = record.start, record.stop
            if start is not None:
                if self.start is None or start < self.start:
                    self.start = start
                if stop is not None:
                    if self.stop is None or stop > self.stop:
                        self.stop = stop
                    if stop > start:
                        self.total_duration += (stop - start) / NS_PER_SECOND
            elif stop is not None and (self.stop is None or stop > self.stop):
                self.stop = stop
            return
        if status is Status.EXISTS:
            return
        self.tests += 1
        if status is Status.FAIL or status is Status.UXSUCCESS:
            self.failures += 1
        elif status is Status.SKIP or status is Status.XFAIL:
            self.skipped += 1
        elif not status.is_final:
            self.errors += 1
        if record.start is not None and (self.start is None or record.start < self.start):
            self.start = record.start
        if record.stop is not None and (self.stop is None or record.stop > self.stop):
            self.stop = record.stop
        duration = record.duration
        if duration is not None and duration > 0:
            self.total_duration += duration

    @property
    def time(self) -> float:
        """Seconds from the first start to the last stop, else the sum of durations."""
        if self.start is not None and self.stop is not None:
            return max(0.0, (self.stop - self.start) / NS_PER_SECOND)
        return self.total_duration


def document_head(
    totals: JUnitTotals,
    *,
    name: str = "proctor",
    hostname: str | None = None,
    properties: Mapping[str, str] | None = None,
) -> bytes:
    """The XML declaration and the ``<testsuites>`` / ``<testsuite>`` start tags.

    ``properties`` become the suite's ``<properties>`` (e.g. the command line,
    a CI job id). ``hostname`` is taken as given: the wire layer does no I/O.
    """
    counts = f'tests="{totals.tests}" failures="{totals.failures}" errors="{totals.errors}"'
    time = f'time="{totals.time:.3f}"'
    suite = [f'name="{_xml_attr(name)}"', counts, f'skipped="{totals.skipped}"', time]
    if totals.start is not None:
        stamp = format_ns(totals.start, digits=6, zone="+00:00")
        if stamp is not None:
            suite.append(f'timestamp="{stamp}"')
    if hostname is not None:
        suite.append(f'hostname="{_xml_attr(hostname)}"')
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<testsuites name="{_xml_attr(name)}" {counts} {time}>',
        f"<testsuite {' '.join(suite)}>",
    ]
    if properties:
        lines.append("  <properties>")
        lines.extend(
            f'    <property name="{_xml_attr(key)}" value="{_xml_attr(value)}"/>'
            for key, value in properties.items()
        )
        lines.append("  </properties>")
    return ("\n".join(lines) + "\n").encode("utf-8")


def document_tail() -> bytes:
    """The end tags closing :func:`document_head`."""
    return b"</testsuite>\n</testsuites>\n"


def output_xml(kind: Literal["system-out", "system-err"], data: bytes) -> bytes:
    """A suite-level ``<system-out>`` or ``<system-err>`` for output outside any test.

    Write it between the test cases and :func:`document_tail`; the schema
    allows several. Bytes that are not UTF-8 are decoded with U+FFFD.
    """
    return b"".join(output_xml_parts(kind, (data,)))


def output_xml_parts(
    kind: Literal["system-out", "system-err"], chunks: Iterable[bytes]
) -> Iterator[bytes]:
    """:func:`output_xml` for output arriving in pieces, produced piece by piece.

    Memory stays bounded by the largest piece however much output there is,
    and a UTF-8 character split between two pieces is kept whole.
    """
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    started = False
    for chunk in chunks:
        text = decoder.decode(chunk)
        if not text:
            continue
        if not started:
            started = True
            yield f"  <{kind}>".encode()
        yield _xml_text(text).encode()
    text = decoder.decode(b"", final=True)
    if text:
        if not started:
            started = True
            yield f"  <{kind}>".encode()
        yield _xml_text(text).encode()
    if started:
        yield f"</{kind}>\n".encode()


def testcase_xml(record: TestRecord) -> bytes:
    """The ``<testcase>`` element for one record (empty for an ``exists`` record)."""
    status = record.status
    if status is Status.SUCCESS and not record.attachments:
        # Nearly every test of a run: the short way.
        test_id = record.test_id
        classname, name = split_test_id(test_id)
        if _ATTR_SPECIAL.search(test_id) is not None:  # one search for both parts
            classname, name = _xml_attr(classname), _xml_attr(name)
        start, stop = record.start, record.stop
        time = "" if start is None or stop is None else f' time="{max(0, stop - start) / 1e9:.3f}"'
        return f'  <testcase classname="{classname}" name="{name}"{time}/>\n'.encode()
    if status is Status.EXISTS:
        return b""
    classname, name = split_test_id(record.test_id)
    head = f'  <testcase classname="{_xml_attr(classname)}" name="{_xml_attr(name)}"'
    duration = record.duration
    if duration is not None:
        head += f' time="{max(0.0, duration):.3f}"'
    if status is Status.SUCCESS and not record.attachments:
        return (head + "/>\n").encode("utf-8")
    used: set[int] = set()  # indexes of attachments the outcome element shows
    children: list[str] = []
    tracebacks = [
        (index, item)
        for index, item in enumerate(record.attachments)
        if item.name == "traceback" or item.name.startswith("traceback ")
    ]
    if status is Status.FAIL or status is Status.XFAIL:
        used.update(index for index, _ in tracebacks)
        text = _joined(item for _, item in tracebacks)
        line = _exception_line(text)
        exception_type = _exception_type(line)
        if status is Status.FAIL:
            children.append(
                _element("failure", text, message=line or "test failed", type=exception_type)
            )
        else:
            message = "expected failure" + (f": {line}" if line else "")
            children.append(_element("skipped", text, message=message, type="xfail"))
    elif status is Status.UXSUCCESS:
        used.update(index for index, _ in tracebacks)
        text = _joined(item for _, item in tracebacks)
        message = "unexpected success: the test passed but was expected to fail"
        children.append(_element("failure", text, message=message, type="uxsuccess"))
    elif status is Status.SKIP:
        reasons = [
            (index, item) for index, item in enumerate(record.attachments) if item.name == "reason"
        ]
        used.update(index for index, _ in reasons)
        reason = _joined(item for _, item in reasons).strip()
        children.append(_element("skipped", "", message=reason or None))
    elif not status.is_final:
        used.update(index for index, _ in tracebacks)
        text = _joined(item for _, item in tracebacks)
        message = "test did not complete"
        children.append(_element("error", text, message=message, type="incomplete"))
    out, err = _outputs(record.attachments, used)
    if out:
        children.append(f"    <system-out>{_xml_text(out)}</system-out>")
    if err:
        children.append(f"    <system-err>{_xml_text(err)}</system-err>")
    if not children:
        return (head + "/>\n").encode("utf-8")
    return (head + ">\n" + "\n".join(children) + "\n  </testcase>\n").encode("utf-8")


def encode_records(
    records: Iterable[TestRecord], *, name: str = "proctor", passthrough: bytes = b""
) -> bytes:
    """A whole JUnit document for records held in memory (small inputs, tests)."""
    totals = JUnitTotals()
    cases: list[bytes] = []
    for record in records:
        totals.add(record)
        cases.append(testcase_xml(record))
    return b"".join(
        (
            document_head(totals, name=name),
            *cases,
            output_xml("system-out", passthrough),
            document_tail(),
        )
    )


def _element(tag: str, text: str, *, message: str | None = None, type: str | None = None) -> str:
    attrs = ""
    if message is not None:
        first = message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "\u2026"
        attrs += f' message="{_xml_attr(first)}"'
    if type is not None:
        attrs += f' type="{_xml_attr(type)}"'
    if not text:
        return f"    <{tag}{attrs}/>"
    return f"    <{tag}{attrs}>{_xml_text(text)}</{tag}>"


def _is_text(attachment: Attachment) -> bool:
    mime = attachment.mime_type.lower()
    if mime.startswith(_BINARY_TYPES):
        return False
    try:
        attachment.content.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _joined(attachments: Iterable[Attachment]) -> str:
    """The text of several attachments; each headed by its name when there are several."""
    items = list(attachments)
    if len(items) == 1 and items[0].name in ("traceback", "reason"):
        return _attachment_text(items[0])
    return "".join(_headed(item) for item in items)


def _headed(attachment: Attachment) -> str:
    text = _attachment_text(attachment)
    return f"----- {attachment.name} -----\n{text}" + ("" if text.endswith("\n") else "\n")


def _attachment_text(attachment: Attachment) -> str:
    if _is_text(attachment):
        return attachment.content.decode("utf-8")
    size = len(attachment.content)
    kind = attachment.mime_type
    return f"[binary attachment {attachment.name!r} ({kind}, {size} bytes) not included]\n"


def _outputs(attachments: tuple[Attachment, ...], used: set[int]) -> tuple[str, str]:
    out: list[str] = []
    err: list[str] = []
    extra: list[str] = []
    for index, item in enumerate(attachments):
        if index in used:
            continue
        if item.name == "stdout" and _is_text(item):
            out.append(item.content.decode("utf-8"))
        elif item.name == "stderr" and _is_text(item):
            err.append(item.content.decode("utf-8"))
        else:
            text = _attachment_text(item)
            extra.append(f"----- {item.name} ({item.mime_type}) -----\n{text}")
            if not text.endswith("\n"):
                extra.append("\n")
    stdout = "".join(out)
    if extra:
        if stdout and not stdout.endswith("\n"):
            stdout += "\n"
        stdout += "".join(extra)
    return stdout, "".join(err)


def _exception_line(traceback: str) -> str:
    """The exception line of a traceback (``ValueError: boom``), or its last line.

    In a Python traceback it is the first unindented line after the last
    ``File "..."`` frame; for anything else, the last non-blank line.
    """
    lines = traceback.splitlines()
    last_frame = -1
    for index, line in enumerate(lines):
        if _FRAME.match(line):
            last_frame = index
    if last_frame >= 0:
        for line in lines[last_frame + 1 :]:
            if line.strip() and not line[:1].isspace():
                return line.strip()
    for line in reversed(lines):
        if line.strip():
            return line.strip()
    return ""


def _exception_type(line: str) -> str | None:
    name, colon, _ = line.partition(":")
    if (colon or name == line) and _EXCEPTION_TYPE.fullmatch(name):
        return name
    return None
