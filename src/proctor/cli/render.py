"""Human output for test records: one line per test, failures in full, a summary.

Readable on a terminal (colour when the output is one) and in a CI log (plain
text, nothing that redraws). Everything a test gave (ids, output, tracebacks,
reasons) is shown through :func:`~proctor.cli.printable.printable`: no test can
send the terminal a control sequence. Used by ``proctor stream trace`` and by the
history commands that show a run.
"""

from __future__ import annotations

import codecs
from typing import TextIO

import click

from proctor.cli.printable import printable, printable_id
from proctor.events.summary import Summary
from proctor.wire.event import Event, Status
from proctor.wire.record import Attachment, TestRecord

__all__ = ["TraceView", "format_duration", "is_text", "plural"]

_WORDS: dict[Status, tuple[str, str | None]] = {
    Status.SUCCESS: ("ok", "green"),
    Status.FAIL: ("FAILED", "red"),
    Status.UXSUCCESS: ("UNEXPECTED SUCCESS", "red"),
    Status.SKIP: ("SKIPPED", "yellow"),
    Status.XFAIL: ("xfail", "yellow"),
    Status.EXISTS: ("exists", None),
    Status.INPROGRESS: ("UNFINISHED (the test never reported an outcome)", "red"),
    Status.NONE: ("UNFINISHED (the test never reported an outcome)", "red"),
}
_RULE = "-" * 70


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 test``, ``2 tests``, ``0 tests`` (``nouns`` when adding "s" will not do)."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def format_duration(seconds: float | None) -> str:
    """``0.012s``, ``1.50s``, ``2m03s``; ``?`` when unknown."""
    if seconds is None:
        return "?"
    if seconds < 1:
        return f"{seconds:.3f}s"
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:04.1f}s"


def is_text(attachment: Attachment) -> bool:
    """Whether an attachment should be shown as text."""
    mime = attachment.mime_type.lower()
    if mime.startswith("text/") or "charset" in mime or mime.endswith(("json", "xml")):
        return True
    if mime != "application/octet-stream":
        return False
    try:  # untyped content: show it if it is text
        attachment.content.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class TraceView:
    """Writes records as they complete, then a summary."""

    def __init__(self, out: TextIO, *, color: bool = False, show_passthrough: bool = True) -> None:
        self._out = out
        self._color = color
        self._show_passthrough = show_passthrough
        self._passthrough = codecs.getincrementaldecoder("utf-8")("replace")
        self._failed: list[tuple[str, str | None]] = []  # ids only: memory stays flat

    def _style(self, text: str, fg: str | None, bold: bool = False) -> str:
        if not self._color or fg is None:
            return text
        return click.style(text, fg=fg, bold=bold)

    def record(self, record: TestRecord) -> None:
        if record.status is Status.EXISTS:
            return
        word, fg = _WORDS[record.status]
        worker = record.worker
        prefix = f"{{{printable_id(worker)}}} " if worker is not None else ""
        line = f"{prefix}{printable_id(record.test_id)} [{format_duration(record.duration)}] ... "
        line += self._style(word, fg, bold=record.status.is_failure)
        if record.status is Status.SKIP:
            reason = record.attachment("reason")
            if reason is not None and reason.content:
                line += f": {printable(reason.text().strip())}"
        self._out.write(line + "\n")
        if record.status.is_failure or not record.finished:
            self._failed.append((record.test_id, record.route_code))
            self._details(record)

    def _details(self, record: TestRecord) -> None:
        write = self._out.write
        for attachment in record.attachments:
            if not attachment.content and attachment.name != "traceback":
                continue
            name = printable_id(attachment.name)
            write(self._style(f"---- {name} ", "cyan") + _RULE[len(name) + 6 :])
            write("\n")
            if is_text(attachment):
                text = printable(attachment.text())
                write(text if text.endswith("\n") else text + "\n")
            else:
                mime = printable_id(attachment.mime_type)
                write(f"<{len(attachment.content)} bytes of {mime}>\n")
        if record.attachments:
            write(_RULE + "\n")

    def other(self, event: Event) -> None:
        """Output outside any test (what a suite printed while importing, say)."""
        if self._show_passthrough and event.file_name is not None and event.file_bytes:
            # Incremental: a character split between two reads is shown whole.
            self._out.write(printable(self._passthrough.decode(event.file_bytes)))

    def finish(self, summary: Summary) -> None:
        write = self._out.write
        write(printable(self._passthrough.decode(b"", final=True)))
        if self._failed:
            write("\n" + self._style("Failed tests:", "red", bold=True) + "\n")
            for test_id, route_code in self._failed:
                route = f" [route {printable_id(route_code)}]" if route_code else ""
                write(f"  {printable_id(test_id)}{route}\n")
        line = summary.outcome_line()
        wall = summary.wall_time
        if wall is not None:
            line += f" in {format_duration(wall)}"
            test_time = summary.test_time_ns / 1e9
            if test_time:
                line += f" (test time {format_duration(test_time)})"
        fg = "green" if summary.successful else "red"
        if summary.tests_run == 0:
            line = "no tests ran"
            fg = "yellow"
        write("\n" + self._style(line, fg, bold=True) + "\n")
