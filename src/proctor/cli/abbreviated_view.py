"""``--abbreviate``: one character per test, as subunit-trace's ``--abbreviate``:
``.`` passed (or failed as expected), ``F`` failed (or passed unexpectedly,
crashed, timed out), ``S`` skipped, ``E`` never finished (the run was
interrupted); failures follow in full at the end."""

from __future__ import annotations

from typing import TextIO

import click

from proctor.cli.run_view import LineView
from proctor.runner.report import Progress, RunResult
from proctor.wire.event import Status
from proctor.wire.record import TestRecord

__all__ = ["AbbreviatedView"]


_CHARACTERS = {
    Status.SUCCESS: (".", "green"),
    Status.XFAIL: (".", "green"),
    Status.FAIL: ("F", "red"),
    Status.UXSUCCESS: ("F", "red"),
    Status.SKIP: ("S", "blue"),
}


class AbbreviatedView:
    """``--abbreviate``: a character per test, then the failures in full and the
    summary (the plain line view prints those)."""

    tick_interval: float | None = None

    def __init__(self, out: TextIO, *, color: bool = False) -> None:
        self._out = out
        self._color = color
        self._lines = LineView(out, color=color)
        self._failed: list[TestRecord] = []
        self._column = 0

    def planned(self, progress: Progress) -> None:
        self._lines.planned(progress)

    def record(self, record: TestRecord) -> None:
        if record.status is Status.EXISTS:
            return
        char, fg = _CHARACTERS.get(record.status, ("E", "red"))
        if char in "FE":
            self._failed.append(record)
        self._out.write(click.style(char, fg=fg) if self._color else char)
        self._column += 1
        self._out.flush()

    def _break(self) -> None:
        if self._column:
            self._out.write("\n")
            self._column = 0

    def output(self, worker: int | None, data: bytes) -> None:
        self._break()
        self._lines.output(worker, data)

    def notice(self, text: str) -> None:
        self._break()
        self._lines.notice(text)

    def tick(self) -> None:
        pass

    def debug_start(self, test_id: str, worker: int, so_far: bytes) -> None:
        self._break()
        self._lines.debug_start(test_id, worker, so_far)

    def debug_output(self, data: bytes) -> None:
        self._lines.debug_output(data)

    def debug_end(self, test_id: str) -> None:
        self._lines.debug_end(test_id)

    def finished(self, result: RunResult) -> None:
        self._break()
        if self._failed:
            self._out.write("\n")
        for record in self._failed:
            self._lines.record(record)
        self._lines.finished(result)
