"""Failure signatures: one short, stable key per fault.

``signature_of(text)`` turns a failure's text into a :class:`Signature`; two
occurrences of one fault get the same signature, two faults different ones,
as far as the text can tell. The algorithm (``frames-v1``), reasoned in
docs/triage.md and measured by ``bench/triage.py``:

* The text is parsed into an exception chain (:mod:`proctor.triage.traceback`).
* Each exception of the chain contributes its type (the last dotted part:
  ``json.decoder.JSONDecodeError`` and pytest's ``JSONDecodeError`` agree) and
  its **site**: the innermost *in-project* frame, keyed by its path relative to
  the project and its function, plus the source line it was executing
  (whitespace collapsed, a trailing comment dropped). Never a line number, an
  address or an absolute path. Frames from site-packages, the standard library
  and ``<frozen ...>`` are used only when the exception has no project frame
  (then its innermost two). The innermost project frame, not all of them: the
  same fault reached through different call paths (two tests calling one
  broken function) is one fault, and a fault inside a library called from two
  different project functions is two.
* An exception with no frames contributes its normalised message instead
  (:func:`~proctor.triage.normalise.normalise_message`; of an assertion's
  comparison, just its form).
* A chain contributes its root cause and its last three exceptions, root first.
* Text that is not an exception: a **timeout** (Proctor's ``--timeout`` text or
  any "timed out") keyed by where the test's thread was stuck; a **crash** (a
  worker killed by a signal or exiting, a fatal Python error) keyed by the
  signal or exit code and where faulthandler saw it; anything else by its first
  error-looking line, normalised.

The signature carries its algorithm's name, so stored signatures of an older
algorithm are recognised as such and recomputed, never compared.
"""

from __future__ import annotations

import hashlib
import re
import signal
from dataclasses import dataclass
from typing import Literal

from proctor.triage.algorithm import ALGORITHM as _ALGORITHM
from proctor.triage.algorithm import algorithm_name
from proctor.triage.normalise import normalise_message
from proctor.triage.traceback import ExceptionReport, Format, Frame, ParsedFailure, parse_failure
from proctor.wire.event import Status
from proctor.wire.record import TestRecord

__all__ = [
    "ALGORITHM",
    "Kind",
    "Project",
    "Signature",
    "exception_of",
    "signature_of",
    "signature_of_record",
]

ALGORITHM = _ALGORITHM

Kind = Literal[
    "traceback", "message", "timeout", "crash", "text", "unexpected-success", "unfinished", "empty"
]
_WEAK = frozenset({"unexpected-success", "unfinished", "empty"})
_DIGEST_HEX = 16


@dataclass(frozen=True, slots=True)
class Signature:
    """A failure's signature: the algorithm that made it, what kind of failure it
    is, the key (readable text: what the signature is made of) and a short hash
    of algorithm and key (what clusters are keyed on)."""

    algorithm: str
    kind: Kind
    key: str
    digest: str

    @property
    def weak(self) -> bool:
        """Whether it says nothing about the fault (no text at all), so it should
        not gather failures of different tests into one cluster."""
        return self.kind in _WEAK

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.digest}"


@dataclass(frozen=True, slots=True)
class Project:
    """Where the project's code is, to tell its frames from the rest and key them
    by relative path.

    ``roots``: absolute directories the project was run from (the checkout);
    ``markers``: names of its top directories (``src``, ``tests``, the package),
    found in any path: a path is cut at the last one, so checkouts at different
    places agree. A path under neither is keyed by its last two parts
    (``package/module.py``), which stay the same from checkout to checkout.
    """

    roots: tuple[str, ...] = ()
    markers: tuple[str, ...] = ()

    def relative(self, path: str) -> str:
        for root in self.roots:
            root = root.replace("\\", "/").rstrip("/") + "/"
            if path.startswith(root):
                return path[len(root) :]
        for marker in self.markers:
            at = ("/" + path).rfind("/" + marker + "/")
            if at >= 0:
                return path[at:]
        if not (path.startswith("/") or _DRIVE.match(path)):
            return path.removeprefix("./")
        return "/".join(path.rsplit("/", 2)[-2:])


NO_PROJECT = Project()

_DRIVE = re.compile(r"^[A-Za-z]:/")
# Installed packages first (a virtualenv's site-packages sits under lib/pythonX.Y
# too), cut at the last one; then the standard library.
_PACKAGES = re.compile(r".*/(?:site|dist)-packages/|.*/node_modules/")
_STDLIB = re.compile(r".*?/lib/(?:pypy|python)\d+(?:\.\d+)?t?/|^[A-Za-z]:/Python\d+/Lib/")
_JAVA_SYSTEM = (
    "java.",
    "javax.",
    "jdk.",
    "sun.",
    "com.sun.",
    "kotlin.",
    "kotlinx.",
    "scala.",
    "org.junit.",
    "junit.",
    "org.opentest4j.",
    "org.testng.",
    "org.apache.maven.",
    "org.gradle.",
    "worker.org.gradle.",
    "org.mockito.",
    "org.assertj.",
    "org.hamcrest.",
)
_GENERATED = re.compile(r"(?<=\$)\d+|(?<=__)\d+$")
_COMMENT = re.compile(r"\s+#[^'\"]*$")
_SPACE = re.compile(r"\s+")
# Two lookaround patterns with a literal replacement (a group reference in the
# replacement is expanded in Python, once per match).
_PUNCTUATION_SPACE = re.compile(r"\s+(?=[^\w\s])|(?<=[^\w\s])\s+")
_COMPARISON = re.compile(r" [!=]= | differ\b|^assert |^Expected|^expected")
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_CASUALTY = re.compile(r"(?:Timed out|Timeout|[Ww]orker \d+|Fatal Python error)\b")
_TIMEOUT = re.compile(r"^Timed out\b|\btimed out\b|^Timeout\b|\+{3,} Timeout \+{3,}", re.I | re.M)
_CRASH = re.compile(
    r"\bkilled by signal\b|\bexited with (?:code|status|signal)\b|^Fatal Python error\b"
    r"|\bSegmentation fault\b|\bexit (?:code|status) -?\d+",
    re.M,
)
_SIGNAL_NAME = re.compile(r"\b(SIG[A-Z]{2,}[0-9]*)\b")
_SIGNAL_NUMBER = re.compile(r"\bsignal (\d{1,3})\b")
_EXIT = re.compile(r"\b(?:exit(?:ed with)? (?:code|status)) (-?\d{1,10})\b")
_FATAL = re.compile(r"^Fatal Python error: (.*)$", re.M)
_ERRORISH = re.compile(
    r"error|exception|fail|fatal|panic|assert|timeout|timed out|killed|abort|refused|denied"
    r"|not found|invalid|cannot|unable",
    re.I,
)
_CHAIN_HEAD = 1
_CHAIN_TAIL = 3
_MESSAGE_LINES = 2
_KEY_TEXT = 200
_SOURCE_TEXT = 120


def signature_of(
    text: str,
    *,
    project: Project = NO_PROJECT,
    depth: int | None = 1,
    source: bool = True,
    parsed: ParsedFailure | None = None,
) -> Signature:
    """The signature of a failure's ``text`` (a traceback, pytest's report, a
    crash or timeout note, another language's stack trace; see the module
    docstring).

    ``depth`` (project frames per site: 1, or None for all) and ``source`` (key a
    site by its source line too) exist to measure the alternatives; anything
    but the defaults is named in the signature's algorithm. ``parsed`` is
    ``parse_failure(text)`` when the caller has it already.
    """
    algorithm = algorithm_name(depth=depth, source=source)
    if not text.strip():
        return _make(algorithm, "empty", "no detail")
    if parsed is None:
        parsed = parse_failure(text)
    head = "\n".join(text.lstrip().split("\n", 3)[:3])
    # A casualty note starts the text (Proctor's, faulthandler's) or is all there is;
    # "timed out" in the source lines heading a pytest report is not one.
    if parsed.format in ("text", "faulthandler") or _CASUALTY.match(head):
        if _TIMEOUT.search(head):
            key = _casualty_key("timeout", parsed, project, depth)
            return _make(algorithm, "timeout", key)
        if _CRASH.search(head) or _CRASH.search(_head_message(parsed)):
            key = _casualty_key(_crash_reason(text), parsed, project, depth)
            return _make(algorithm, "crash", key)
    if parsed.format == "faulthandler" or (parsed.format == "text" and not parsed.chain[-1].type):
        return _make(algorithm, "text", _text_key(parsed))
    parts = []
    chain = parsed.chain
    if len(chain) > _CHAIN_HEAD + _CHAIN_TAIL:
        chain = chain[:_CHAIN_HEAD] + chain[-_CHAIN_TAIL:]
    framed = False
    for report in chain:
        kind = _short_type(report.type)
        site = _site(report.frames, parsed.format, project, depth, source)
        if site:
            framed = True
            parts.append(f"{kind} @ {site}")
        else:
            parts.append(f"{kind}: {_message_key(report.message)}")
    return _make(algorithm, "traceback" if framed else "message", " -> ".join(parts))


def exception_of(parsed: ParsedFailure) -> tuple[str, str]:
    """The exception a failure ends with, as known-bug rules see it: its type
    (the last dotted part; '' when none) and its message's first two lines,
    normalised."""
    last = parsed.chain[-1]
    lines = [line.strip() for line in last.message.split("\n") if line.strip()][:2]
    return last.type.rsplit(".", 1)[-1], normalise_message(" / ".join(lines)[:4096])


def signature_of_record(
    record: TestRecord, *, project: Project = NO_PROJECT, depth: int | None = 1, source: bool = True
) -> Signature | None:
    """The signature of a failed test (``fail``, ``uxsuccess``, never finished),
    from its ``traceback`` attachments (else its ``reason``); None for a test
    that did not fail."""
    status = record.status
    if status not in (Status.FAIL, Status.UXSUCCESS) and status.is_final:
        return None
    tracebacks = [a for a in record.attachments if a.name.split(" ", 1)[0].startswith("traceback")]
    texts = tracebacks or [a for a in record.attachments if a.name == "reason"]
    text = "\n".join(a.text() for a in texts)
    if text.strip():
        return signature_of(text, project=project, depth=depth, source=source)
    algorithm = signature_of("", depth=depth, source=source).algorithm
    if status is Status.UXSUCCESS:
        return _make(algorithm, "unexpected-success", "unexpected success")
    if status is Status.FAIL:
        return _make(algorithm, "empty", "no detail")
    return _make(algorithm, "unfinished", "never finished")


def _make(algorithm: str, kind: Kind, key: str) -> Signature:
    digest = hashlib.sha256(f"{algorithm}\0{kind}\0{key}".encode()).hexdigest()[:_DIGEST_HEX]
    return Signature(algorithm, kind, key, digest)


def _short_type(kind: str) -> str:
    return kind.rsplit(".", 1)[-1] if "[" not in kind else kind


def _frame_key(frame: Frame, format: Format, project: Project) -> tuple[str, bool]:
    """(path or class, whether in the project) of a frame."""
    path = frame.path
    if format == "java":
        return path.rsplit("/", 1)[-1], not path.startswith(_JAVA_SYSTEM)
    if path.startswith("<"):
        return normalise_message(path), not path.startswith("<frozen ")
    if path.startswith(("node:", "internal/")):
        return path, False
    library = _PACKAGES.match(path) or _STDLIB.match(path)
    if library:
        return path[library.end() :], False
    return project.relative(path), True


def _site(
    frames: tuple[Frame, ...], format: Format, project: Project, depth: int | None, source: bool
) -> str:
    # From the innermost frame out, stopping once ``depth`` project frames are found.
    chosen: list[tuple[str, bool, Frame]] = []
    system: list[tuple[str, bool, Frame]] = []
    for frame in reversed(frames):
        key, in_project = _frame_key(frame, format, project)
        if in_project:
            chosen.append((key, True, frame))
            if depth is not None and len(chosen) >= depth:
                break
        elif len(system) < 2:
            system.append((key, False, frame))
    if not chosen:
        chosen = system
    if not chosen:
        return ""
    chosen.reverse()
    names = [f"{key}:{_GENERATED.sub('<n>', frame.function)}" for key, _, frame in chosen]
    site = " > ".join(_collapse(names))
    statement = _statement(chosen[-1][2].source) if source and chosen[-1][1] else ""
    return f"{site} | {statement}" if statement else site


def _collapse(names: list[str]) -> list[str]:
    """Consecutive repeats (recursion) as one."""
    return [name for index, name in enumerate(names) if index == 0 or names[index - 1] != name]


def _statement(source: str) -> str:
    """A source line as a key: no trailing comment, no space beside punctuation and
    one kind of quote (what a formatter changes does not change it), other
    whitespace collapsed."""
    statement = _COMMENT.sub("", source).strip().replace("'", '"')
    statement = _PUNCTUATION_SPACE.sub("", statement)
    return _SPACE.sub(" ", statement)[:_SOURCE_TEXT]


def _message_key(message: str) -> str:
    lines = [line.strip() for line in message.split("\n") if line.strip()][:_MESSAGE_LINES]
    if lines and _COMPARISON.search(lines[0]):
        # An assertion's comparison: its form, not its values.
        lines = [_QUOTED.sub("<str>", line) for line in lines[:1]]
    return normalise_message(" / ".join(lines)[: _KEY_TEXT * 4])[:_KEY_TEXT]


def _head_message(parsed: ParsedFailure) -> str:
    return parsed.chain[0].message if parsed.format == "faulthandler" and parsed.chain else ""


def _crash_reason(text: str) -> str:
    parts = ["crash"]
    name = _SIGNAL_NAME.search(text)
    number = _SIGNAL_NUMBER.search(text)
    if name:
        parts.append(name[1])
    elif number:
        try:
            parts.append(signal.Signals(int(number[1])).name)
        except ValueError:
            parts.append(f"signal {number[1]}")
    else:
        code = _EXIT.search(text)
        if code:
            parts.append(f"exit {code[1]}")
    fatal = _FATAL.search(text)
    if fatal:
        parts.append(normalise_message(fatal[1][: _KEY_TEXT * 4].strip())[:_KEY_TEXT])
    return ": ".join(parts)


def _casualty_key(what: str, parsed: ParsedFailure, project: Project, depth: int | None) -> str:
    frames = parsed.chain[-1].frames if parsed.chain else ()
    site = _site(frames, parsed.format, project, depth, source=False)
    return f"{what} @ {site}" if site else what


def _text_key(parsed: ParsedFailure) -> str:
    report: ExceptionReport = parsed.chain[-1]
    lines = [line.strip() for line in report.message.split("\n") if line.strip()]
    line = next((line for line in lines if _ERRORISH.search(line)), lines[0] if lines else "")
    return normalise_message(line[: _KEY_TEXT * 4])[:_KEY_TEXT]
