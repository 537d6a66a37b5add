"""What ``proctor run`` shows while it runs: the two reporters of the controller.

:class:`LiveView` is for a terminal: one status line at the bottom, redrawn
in place (a bar, tests done/total, failures so far, the ETA when history gives
one, what is running), with everything else printed above it as it happens:
each failure in full, notices, what workers printed outside tests. When a test
waits for input (a debugger), the status line goes away and the test's output
goes straight to the terminal until the test ends.

:class:`LineView` is for logs (CI, a pipe): nothing is redrawn; one line per
test in subunit-trace's format (``{worker} id [duration] ... ok``), failures in
full, a summary.

Whatever a test gave (its id, output, failure) is shown through
:func:`~proctor.cli.printable.printable`, so no test can move the cursor, clear
the screen or retitle the terminal. The one exception is a debugger session: its
output goes to the terminal as it is (a debugger may draw with escape
sequences), as with any program the user runs by hand.

Both are written with plain ANSI sequences rather than rich: the view must
hand the terminal to a debugger mid-run and take it back, which is simpler
without a live-display framework in between, and it costs no import time.
"""

from __future__ import annotations

import shutil
import time
from typing import TextIO

import click

from proctor.cli.printable import printable, printable_id
from proctor.cli.render import TraceView, format_duration, plural
from proctor.runner.report import Progress, RunResult, TestSpan
from proctor.wire.event import Status
from proctor.wire.record import TestRecord, worker_of

__all__ = ["LineView", "LiveView", "NoticeView", "summary_line"]

_CLEAR = "\r\x1b[2K"


def summary_line(result: RunResult, *, color: bool, span: TestSpan | None = None) -> str:
    """``N passed, N failed, N skipped ... in 3.20s``, coloured by outcome.

    The time is the run's wall time as stored (``span``: first test start to
    last test end), the figure ``last`` and ``runs`` show; the controller's
    clock only when no test had a timestamp.
    """
    wall = span.seconds() if span is not None else None
    took = result.wall_time if wall is None else wall
    line = f"{result.outcome_line()} in {format_duration(took)}"
    if result.interrupted:
        line = f"Interrupted: {line}"
    fg = "green" if result.exit_code == 0 else "red"
    if result.ran == 0 and not result.interrupted:
        fg = "yellow"
    return click.style(line, fg=fg, bold=True) if color else line


def _heading(progress: Progress) -> str:
    workers = plural(progress.workers, "worker")
    if progress.build_total is not None:
        return f"Running a share of the build's {plural(progress.build_total, 'test')} on {workers}"
    return f"Running {plural(progress.total, 'test')} on {workers}"


def _closing(out: TextIO, result: RunResult, span: TestSpan, *, color: bool) -> None:
    """What both views print at the end: failures by id, problems, the summary line."""
    write = out.write
    failed = result.failures + result.unfinished
    if failed:
        title = "Failed tests:" if not result.interrupted else "Failed or unfinished tests:"
        write("\n" + (click.style(title, fg="red", bold=True) if color else title) + "\n")
        for record in failed:
            write(f"  {printable_id(record.test_id)}\n")
    if result.unreported:
        write(
            f"\n{plural(len(result.unreported), 'test')} "
            f"{'was' if len(result.unreported) == 1 else 'were'} sent to a worker but never "
            "reported (a failing class or module fixture skips them):\n"
        )
        for test_id in result.unreported[:20]:
            write(f"  {printable_id(test_id)}\n")
        if len(result.unreported) > 20:
            write(f"  ... and {len(result.unreported) - 20} more\n")
    if result.missing:
        missing = len(result.missing)
        were = "was" if missing == 1 else "were"
        write(f"\n{plural(missing, 'listed test')} {were} not found in the suite:\n")
        for test_id in result.missing[:20]:
            write(f"  {printable_id(test_id)}\n")
    if result.error:
        message = f"Run error: {printable(result.error)}"
        write("\n" + (click.style(message, fg="red", bold=True) if color else message) + "\n")
    if result.seed is not None:
        write(f"\nRandom order seed: {result.seed} (replay with --seed {result.seed})\n")
    write("\n" + summary_line(result, color=color, span=span) + "\n")
    out.flush()


class LineView:
    """Plain output for logs (see the module docstring)."""

    tick_interval: float | None = None

    def __init__(self, out: TextIO, *, color: bool = False) -> None:
        self._out = out
        self._color = color
        self._trace = TraceView(out, color=color)
        self._ok = click.style("ok", fg="green", bold=False) if color else "ok"
        self._prefixes: dict[str | None, str] = {}
        self._span = TestSpan()

    def planned(self, progress: Progress) -> None:
        if progress.seed is not None:
            self._out.write(f"Random order, seed {progress.seed}\n")
        self._out.write(_heading(progress) + "\n")

    def record(self, record: TestRecord) -> None:
        self._span.add(record)
        if record.status is not Status.SUCCESS or (not record.route_code and record.tags):
            self._trace.record(record)
            return
        # Passing tests are nearly all of a run: their line (TraceView's format) is
        # written here without the general path.
        route = record.route_code
        prefix = self._prefixes.get(route)
        if prefix is None:
            worker = worker_of(route, record.tags)
            shown = f"{{{printable_id(worker)}}} " if worker is not None else ""
            prefix = self._prefixes[route] = shown
        duration = format_duration(record.duration)
        self._out.write(f"{prefix}{printable_id(record.test_id)} [{duration}] ... {self._ok}\n")

    def output(self, worker: int | None, data: bytes) -> None:
        self._out.write(printable(data.decode("utf-8", "replace")))

    def notice(self, text: str) -> None:
        self._out.write(f"proctor: {printable(text)}\n")
        self._out.flush()

    def tick(self) -> None:
        pass

    def debug_start(self, test_id: str, worker: int, so_far: bytes) -> None:
        shown = printable_id(test_id)
        self._out.write(f"---- {shown} (worker {worker}) waits for input; yours goes to it\n")
        self._out.write(so_far.decode("utf-8", "replace"))
        self._out.flush()

    def debug_output(self, data: bytes) -> None:
        self._out.write(data.decode("utf-8", "replace"))
        self._out.flush()

    def debug_end(self, test_id: str) -> None:
        self._out.write(f"\n---- end of input for {printable_id(test_id)}\n")

    def finished(self, result: RunResult) -> None:
        _closing(self._out, result, self._span, color=self._color)


class LiveView:
    """The terminal view (see the module docstring)."""

    tick_interval: float | None = 0.1

    def __init__(self, out: TextIO, *, color: bool = True) -> None:
        self._out = out
        self._color = color
        self._trace = TraceView(out, color=color)
        self._progress: Progress | None = None
        self._status_shown = False
        self._debugging = False
        self._last_draw = 0.0
        self._started = time.monotonic()
        self._span = TestSpan()

    # -- the status line ------------------------------------------------------------------

    def _clear(self) -> None:
        if self._status_shown:
            self._out.write(_CLEAR)
            self._status_shown = False

    def _draw(self, force: bool = False) -> None:
        progress = self._progress
        if progress is None or self._debugging:
            return
        now = time.monotonic()
        if not force and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        self._out.write(_CLEAR + self.status_text(now))
        self._out.flush()
        self._status_shown = True

    def status_text(self, now: float) -> str:
        """The status line: bar, counts, failures, ETA, what runs longest."""
        progress = self._progress
        assert progress is not None
        width = shutil.get_terminal_size((80, 24)).columns
        total = max(progress.total, 1)
        bar_width = 24
        filled = min(bar_width, round(bar_width * progress.done / total))
        bar = "#" * filled + "-" * (bar_width - filled)
        parts = [f"[{bar}] {progress.done}/{progress.total}"]
        if progress.build_total is not None:
            parts[0] += f" taken of {progress.build_total}"
        if progress.failed:
            failed = f"{progress.failed} failed"
            parts.append(click.style(failed, fg="red", bold=True) if self._color else failed)
        elapsed = now - self._started
        parts.append(format_duration(elapsed))
        eta = progress.eta()
        if eta is not None:
            parts.append(f"ETA {format_duration(eta)}")
        if progress.running:
            test_id, since = min(progress.running.values(), key=lambda item: item[1])
            running_for = time.monotonic() - since
            if test_id and running_for >= 1.0:
                parts.append(f"{printable_id(test_id)} ({format_duration(running_for)})")
        text = "  ".join(parts)
        visible = click.unstyle(text)
        if len(visible) > width - 1:
            text = visible[: max(width - 2, 10)] + "…"
        return text

    def _above(self, text: str) -> None:
        """Print ``text`` above the status line."""
        self._clear()
        self._out.write(text)
        self._draw(force=True)

    # -- the reporter protocol ------------------------------------------------------------

    def planned(self, progress: Progress) -> None:
        self._progress = progress
        self._above(_heading(progress) + "\n")

    def record(self, record: TestRecord) -> None:
        self._span.add(record)
        if record.status.is_failure or not record.finished:
            self._clear()
            self._trace.record(record)
            self._draw(force=True)
        else:
            self._draw()

    def output(self, worker: int | None, data: bytes) -> None:
        text = printable(data.decode("utf-8", "replace"))
        self._above(text if text.endswith("\n") else text + "\n")

    def notice(self, text: str) -> None:
        text = printable(text)
        self._above(click.style(text, fg="yellow") + "\n" if self._color else text + "\n")

    def tick(self) -> None:
        self._draw()

    def debug_start(self, test_id: str, worker: int, so_far: bytes) -> None:
        self._clear()
        self._debugging = True
        shown = printable_id(test_id)
        header = f"── {shown} (worker {worker}) waits for input; what you type goes to it ──"
        self._out.write((click.style(header, fg="cyan") if self._color else header) + "\n")
        self._out.write(so_far.decode("utf-8", "replace"))
        self._out.flush()

    def debug_output(self, data: bytes) -> None:
        self._out.write(data.decode("utf-8", "replace"))
        self._out.flush()

    def debug_end(self, test_id: str) -> None:
        self._debugging = False
        footer = f"── end of input for {printable_id(test_id)} ──"
        self._out.write("\n" + (click.style(footer, fg="cyan") if self._color else footer) + "\n")
        self._draw(force=True)

    def finished(self, result: RunResult) -> None:
        self._clear()
        _closing(self._out, result, self._span, color=self._color)


class NoticeView:
    """For ``--subunit`` (stdout carries the stream): only notices, debugger
    sessions and the summary line, on stderr."""

    tick_interval: float | None = None

    def __init__(self, err: TextIO) -> None:
        self._err = err
        self._lines = LineView(err)
        self._span = TestSpan()

    def planned(self, progress: Progress) -> None:
        if progress.seed is not None:
            self._err.write(f"Random order, seed {progress.seed}\n")

    def record(self, record: TestRecord) -> None:
        self._span.add(record)

    def output(self, worker: int | None, data: bytes) -> None:
        pass

    def notice(self, text: str) -> None:
        self._lines.notice(text)

    def tick(self) -> None:
        pass

    def debug_start(self, test_id: str, worker: int, so_far: bytes) -> None:
        self._lines.debug_start(test_id, worker, so_far)

    def debug_output(self, data: bytes) -> None:
        self._lines.debug_output(data)

    def debug_end(self, test_id: str) -> None:
        self._lines.debug_end(test_id)

    def finished(self, result: RunResult) -> None:
        if result.error:
            self._err.write(f"proctor: run error: {printable(result.error)}\n")
        self._err.write(summary_line(result, color=False, span=self._span) + "\n")
        self._err.flush()
