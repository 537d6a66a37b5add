"""Failure text parsed: the exception chain, each with its type, message and frames.

:func:`parse_failure` reads the forms a failure's text takes in a test stream
and returns a :class:`ParsedFailure` (never raises; text it cannot read is
``format="text"`` with the text as the message):

* **CPython tracebacks** (``traceback.format_exception``: unittest, testtools,
  ``pytest --tb=native``, Proctor's own fallbacks), with chained exceptions,
  3.11+ caret lines, ``[Previous line repeated N more times]`` and exception
  groups (the group's own traceback, its type suffixed with its members' types);
* **pytest's** ``--tb=long``, ``--tb=short`` and the default ``auto`` (long for
  the first and last entries, short between), chained the same way: a frame is
  a location line (``path:12: in func`` for short entries; ``path:12:`` or
  ``path:12: TypeName`` closing a long entry, whose function comes from its
  ``def`` line), its source line (the ``>`` line of a long entry) and the
  ``E   `` lines give the exception (a rewritten ``assert`` is an
  ``AssertionError``);
* **faulthandler** dumps (a native crash, Proctor's ``--timeout`` stack dump):
  the current thread's stack, most recent call first;
* **Java/JVM** stack traces (``at com.x.Y.method(Y.java:12)``, ``Caused by:``)
  and **JavaScript** ones (``at fn (path:12:5)``), as JUnit XML from other
  languages carries them.

The chain is ordered root cause first, the exception that ended the test last,
whatever order the format prints it in (Java prints causes after).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ANONYMOUS",
    "MAX_LINE",
    "MAX_TEXT",
    "ExceptionReport",
    "Format",
    "Frame",
    "ParsedFailure",
    "parse_failure",
]

MAX_TEXT = 1 << 20
"""Characters of a failure's text read (the first eighth and the rest from the end)."""
MAX_LINE = 4096
"""Characters of a line read: no frame line is longer; a message keeps its start."""

ANONYMOUS = "<anonymous>"
"""The function of a frame running a lambda or a comprehension (pytest's long
entries show no name for it; CPython's ``<lambda>``, ``<genexpr>``... read as this)."""
_ANONYMOUS = frozenset({"<lambda>", "<genexpr>", "<listcomp>", "<dictcomp>", "<setcomp>"})

Format = Literal["cpython", "pytest", "faulthandler", "java", "javascript", "text"]


@dataclass(frozen=True, slots=True)
class Frame:
    """One stack frame as printed: path (``/`` separators), function ("" when the
    format does not say), line (None when absent) and its source line ("" when
    not shown)."""

    path: str
    function: str
    line: int | None = None
    source: str = ""


@dataclass(frozen=True, slots=True)
class ExceptionReport:
    """One exception of a chain: type as printed (perhaps qualified), message
    (perhaps several lines), frames outermost first."""

    type: str
    message: str
    frames: tuple[Frame, ...] = ()


@dataclass(frozen=True, slots=True)
class ParsedFailure:
    """A failure's text read: its format and its exception chain, root cause first."""

    format: Format
    chain: tuple[ExceptionReport, ...]
    text: str


_CAUSE = "The above exception was the direct cause of the following exception:"
_CONTEXT = "During handling of the above exception, another exception occurred:"
_HEADER = "Traceback (most recent call last):"
_CPYTHON_FRAME = re.compile(
    r'^\s*File "(?P<path>[^"]*)", line (?P<line>\d+)(?:, in (?P<func>.*))?$'
)
_FAULT_FRAME = re.compile(r'^\s*File "(?P<path>[^"]*)", line (?P<line>\d+) in (?P<func>.*)$')
_FAULT_STACK = re.compile(
    r"^(?:(?P<current>Current thread)|Thread) 0x[0-9a-fA-F]+ .*\(most recent call first\):\s*$"
    r"|^(?P<stack>Stack) \(most recent call first\):\s*$"
)
_CARETS = re.compile(r"^\s*[\^~]+\s*$")
_REPEATED = re.compile(r"^\s*\[Previous line repeated \d+ more times?\]\s*$")
_EXCEPTION_LINE = re.compile(r"^(?P<type>[A-Za-z_][\w.]*)(?::(?: (?P<message>.*))?)?$")
_PYTEST_SHORT = re.compile(r"^(?P<path>[^\s>].*?):(?P<line>\d+): in (?P<func>\S+)\s*$")
_PYTEST_LONG = re.compile(r"^(?P<path>[^\s>].*?):(?P<line>\d+):(?: (?P<type>[\w.]*))?\s*$")
_PYTEST_SEPARATOR = re.compile(r"^_(?: _)+\s*$")
_PYTEST_E = re.compile(r"^E(?: +(?P<text>.*))?$")
_DEF = re.compile(r"^\s*(?:async\s+)?def\s+(?P<name>\w+)")
_JAVA_FRAME = re.compile(
    r"^\s+at (?:[\w.$-]+(?:@[^/]*)?/)*(?P<cls>[\w$.]+)\.(?P<method>[\w$<>-]+)"
    r"\((?P<file>[^:)]*)(?::(?P<line>\d+))?\)\s*$"
)
_JAVA_HEADER = re.compile(
    r"^(?:Caused by: )?(?P<type>[a-zA-Z_$][\w$]*(?:\.[\w$]+)+)(?:: (?P<message>.*))?$"
)
_JS_FRAME = re.compile(
    r"^\s+at (?:(?P<func>[^()]+?) \((?P<path>[^()]+?):(?P<line>\d+):\d+\)"
    r"|(?P<path2>[^()\s]+?):(?P<line2>\d+):\d+)\s*$"
)
_EXCEPTION_TYPE = re.compile(r"[A-Z]\w*(?:Error|Exception|Failure|Fault|Exit|Interrupt|Warning)$")
_GROUP_MEMBER = re.compile(r"^[\s|+-]*\| (?P<type>[A-Za-z_][\w.]*)(?::|$)")


def parse_failure(text: str) -> ParsedFailure:
    """``text`` read as a failure (see the module docstring)."""
    if len(text) > MAX_TEXT:
        # Untrusted and perhaps huge: the head and, mostly, the tail (where the
        # exception is) are read.
        text = text[: MAX_TEXT // 8] + "\n" + text[-(MAX_TEXT - MAX_TEXT // 8) :]
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if max(map(len, lines)) > MAX_LINE:
        lines = [line[:MAX_LINE] for line in lines]
    chain: tuple[ExceptionReport, ...] = ()
    if "Exception Group Traceback" in text:
        chain = _cpython_group(lines)
        if chain:
            return ParsedFailure("cpython", chain, text)
    header = _first(lines, lambda line: line.strip() == _HEADER)
    pytest_at = _first(lines if header is None else lines[:header], _is_pytest_location)
    if pytest_at is not None and (header is None or pytest_at < header):
        chain = _pytest(lines)
        if chain:
            return ParsedFailure("pytest", chain, text)
    if header is not None:
        chain = _cpython(lines)
        if chain:
            return ParsedFailure("cpython", chain, text)
    if any(_FAULT_STACK.match(line) for line in lines):
        return ParsedFailure("faulthandler", _faulthandler(lines), text)
    if any(_JAVA_FRAME.match(line) for line in lines):
        chain = _java(lines)
        if chain:
            return ParsedFailure("java", chain, text)
    if any(_JS_FRAME.match(line) for line in lines):
        chain = _javascript(lines)
        if chain:
            return ParsedFailure("javascript", chain, text)
    return ParsedFailure("text", (_bare_exception(text.strip()),), text)


def _bare_exception(text: str) -> ExceptionReport:
    """Text whose first line is an exception line (a ``reason``, pytest's
    ``--tb=line``) as that exception; other text as a message with no type."""
    first, _, rest = text.partition("\n")
    match = _EXCEPTION_LINE.match(first.strip())
    if match and _EXCEPTION_TYPE.match(match["type"].rsplit(".", 1)[-1]):
        message = "\n".join(filter(None, (match["message"] or "", rest.strip())))
        return ExceptionReport(match["type"], message)
    return ExceptionReport("", text)


def _first(lines: list[str], test: Callable[[str], bool]) -> int | None:
    for index, line in enumerate(lines):
        if test(line):
            return index
    return None


def _is_pytest_location(line: str) -> bool:
    if not line or line[0] in " \t>" or (line[0] == "E" and _PYTEST_E.match(line)):
        return False
    return bool(_PYTEST_SHORT.match(line) or _PYTEST_LONG.match(line))


def _sections(lines: list[str]) -> list[list[str]]:
    """Lines split at the chained-exception separators."""
    sections: list[list[str]] = [[]]
    for line in lines:
        if line.endswith((":", ": ")) and line.strip() in (_CAUSE, _CONTEXT):
            sections.append([])
        else:
            sections[-1].append(line)
    return sections


# -- CPython


def _cpython(lines: list[str]) -> tuple[ExceptionReport, ...]:
    chain = []
    for section in _sections(lines):
        report = _cpython_section(section)
        if report is not None:
            chain.append(report)
    return tuple(chain)


def _cpython_section(section: list[str]) -> ExceptionReport | None:
    """One exception of a chain. Its traceback is the *last* one in the section:
    text before it (a testtools detail, a worker's output) may hold others."""
    frames: list[Frame] = []
    end = len(section)
    header = None
    for at in range(end - 1, -1, -1):
        if section[at].strip() == _HEADER:
            header = at
            break
    if header is None:
        # An exception printed with no traceback (never raised: "raise X from Y"
        # prints Y bare; or its traceback cut): the last paragraph.
        filled = [i for i, line in enumerate(section) if line.strip()]
        if not filled:
            return None
        index = filled[-1]
        while index > 0 and section[index - 1].strip():
            index -= 1
        return _exception_at(section, index, filled[-1] + 1, ())
    index = header + 1
    indent = None
    while index < end:
        line = section[index]
        match = _CPYTHON_FRAME.match(line)
        if match:
            if indent is None:
                indent = len(line) - len(line.lstrip())
            source = ""
            following = index + 1
            if following < end and _deeper(section[following], indent):
                candidate = section[following].strip()
                if not _CARETS.match(section[following]) and not _CPYTHON_FRAME.match(
                    section[following]
                ):
                    source = candidate
                    following += 1
            while following < end and (
                _CARETS.match(section[following]) or _REPEATED.match(section[following])
            ):
                following += 1
            function = (match["func"] or "").strip()
            frames.append(
                Frame(
                    match["path"].replace("\\", "/"),
                    ANONYMOUS if function in _ANONYMOUS else function,
                    int(match["line"]),
                    source,
                )
            )
            index = following
            continue
        skip = indent is not None and _deeper(line, indent)
        if skip or _REPEATED.match(line) or not line.strip():
            index += 1
            continue
        break
    if index >= end:
        return ExceptionReport("", "", tuple(frames)) if frames else None
    return _exception_at(section, index, end, tuple(frames))


def _deeper(line: str, indent: int) -> bool:
    return bool(line.strip()) and len(line) - len(line.lstrip()) > indent


def _exception_at(
    section: list[str], index: int, end: int, frames: tuple[Frame, ...]
) -> ExceptionReport:
    first = section[index].strip()
    rest = "\n".join(section[index + 1 : end]).strip()
    match = _EXCEPTION_LINE.match(first)
    if match is None:
        return ExceptionReport("", "\n".join(filter(None, (first, rest))), frames)
    message = "\n".join(filter(None, (match["message"] or "", rest)))
    return ExceptionReport(match["type"], message, frames)


def _cpython_group(lines: list[str]) -> tuple[ExceptionReport, ...]:
    """An exception group: its own traceback (the outermost ``|`` level) and its
    members' types."""
    start = _first(lines, lambda line: "Exception Group Traceback" in line)
    if start is None:
        return ()
    prefix_at = lines[start].index("+")
    own = [*lines[:start], " " * prefix_at + _HEADER]
    bar = " " * prefix_at + "| "
    members = set()
    for line in lines[start + 1 :]:
        if line.startswith(bar) and not line.startswith(bar.rstrip() + "-"):
            own.append(" " * prefix_at + line[len(bar) :])
            continue
        match = _GROUP_MEMBER.match(line)
        if match and match["type"] != "Traceback":
            members.add(match["type"].rsplit(".", 1)[-1])
    chain = list(_cpython(own))
    if not chain:
        return ()
    last = chain[-1]
    if members:
        kinds = ",".join(sorted(members))
        chain[-1] = ExceptionReport(f"{last.type}[{kinds}]", last.message, last.frames)
    return tuple(chain)


# -- pytest


def _pytest(lines: list[str]) -> tuple[ExceptionReport, ...]:
    chain = []
    for section in _sections(lines):
        report = _pytest_section(section)
        if report is not None:
            chain.append(report)
    return tuple(chain)


def _pytest_section(section: list[str]) -> ExceptionReport | None:
    frames: list[Frame] = []
    errors: list[str] = []
    block_def = ""
    block_source = ""
    closing_type = ""
    index = 0
    while index < len(section):
        line = section[index]
        index += 1
        if _PYTEST_SEPARATOR.match(line):
            block_def = block_source = ""
            continue
        if line.startswith("E") and (match := _PYTEST_E.match(line)):
            errors.append(match["text"] or "")
            continue
        if line.startswith(">"):
            block_source = line[1:].strip()
            continue
        if line[:1] not in ("", " ", "\t"):
            short = _PYTEST_SHORT.match(line)
            if short:
                source = ""
                if index < len(section) and section[index].startswith("    "):
                    source = section[index].strip()
                    index += 1
                path = short["path"].replace("\\", "/")
                function = short["func"]
                function = ANONYMOUS if function in _ANONYMOUS else function
                frames.append(Frame(path, function, int(short["line"]), source))
                continue
            long = _PYTEST_LONG.match(line)
            if long:
                path = long["path"].replace("\\", "/")
                function = block_def or ANONYMOUS  # a lambda's or comprehension's code has no def
                frames.append(Frame(path, function, int(long["line"]), block_source))
                closing_type = long["type"] or closing_type
                block_def = block_source = ""
                continue
        if not block_def and (definition := _DEF.match(line)):
            block_def = definition["name"]
    if not frames and not errors:
        return None
    return _pytest_exception(errors, closing_type, tuple(frames))


def _pytest_exception(
    errors: list[str], closing_type: str, frames: tuple[Frame, ...]
) -> ExceptionReport:
    first = errors[0].strip() if errors else ""
    rest = "\n".join(errors[1:]).strip()
    match = _EXCEPTION_LINE.match(first)
    if (
        match
        and match["type"] != "assert"
        and (closing_type == "" or match["type"].rsplit(".", 1)[-1] == closing_type)
    ):
        message = "\n".join(filter(None, (match["message"] or "", rest)))
        return ExceptionReport(match["type"], message, frames)
    # A rewritten assertion ("assert 1 == 2"), or a message pytest shows alone.
    kind = closing_type or ("AssertionError" if first.startswith("assert") else "")
    return ExceptionReport(kind, "\n".join(filter(None, (first, rest))), frames)


# -- faulthandler


def _faulthandler(lines: list[str]) -> tuple[ExceptionReport, ...]:
    """The stack of the thread that was current (else the first one listed),
    with the text before the first stack as the message."""
    stacks: list[tuple[bool, list[Frame]]] = []
    first_stack = None
    for index, line in enumerate(lines):
        header = _FAULT_STACK.match(line)
        if header:
            if first_stack is None:
                first_stack = index
            stacks.append((bool(header["current"] or header["stack"]), []))
            continue
        frame = _FAULT_FRAME.match(line)
        if frame and stacks:
            path = frame["path"].replace("\\", "/")
            function = frame["func"].strip()
            function = ANONYMOUS if function in _ANONYMOUS else function
            stacks[-1][1].append(Frame(path, function, int(frame["line"])))
    current = next((s for c, s in stacks if c), stacks[0][1] if stacks else [])
    message = "\n".join(lines[:first_stack]).strip() if first_stack is not None else ""
    return (ExceptionReport("", message, tuple(reversed(current))),)


# -- Java and JavaScript


def _java(lines: list[str]) -> tuple[ExceptionReport, ...]:
    reports: list[tuple[str, str, list[Frame]]] = []
    for line in lines:
        frame = _JAVA_FRAME.match(line)
        if frame:
            if not reports:
                reports.append(("", "", []))
            reports[-1][2].append(Frame(frame["cls"], frame["method"], _int(frame["line"])))
            continue
        stripped = line.strip()
        if stripped.startswith("Suppressed:"):
            break  # suppressed exceptions are not the failure
        header = _JAVA_HEADER.match(stripped)
        if header and (not reports or reports[-1][2] or stripped.startswith("Caused by:")):
            reports.append((header["type"], header["message"] or "", []))
    # Printed outermost first, causes after: the chain is root cause first. Frames
    # are printed innermost first.
    return tuple(
        ExceptionReport(kind, message, tuple(reversed(frames)))
        for kind, message, frames in reversed(reports)
    )


def _javascript(lines: list[str]) -> tuple[ExceptionReport, ...]:
    frames: list[Frame] = []
    message_lines: list[str] = []
    for line in lines:
        frame = _JS_FRAME.match(line)
        if frame:
            path = (frame["path"] or frame["path2"] or "").replace("\\", "/")
            line_number = _int(frame["line"] or frame["line2"])
            frames.append(Frame(path, (frame["func"] or "").strip(), line_number))
        elif not frames and line.strip():
            message_lines.append(line.strip())
    first = message_lines[0] if message_lines else ""
    kind, _, message = first.partition(": ")
    if not re.fullmatch(r"[\w.$]+(?: \[\w+\])?", kind):
        kind, message = "", first
    kind = kind.split(" ", 1)[0]
    message = "\n".join([message, *message_lines[1:]]).strip()
    return (ExceptionReport(kind, message, tuple(reversed(frames))),)


def _int(text: str | None) -> int | None:
    return int(text) if text else None
