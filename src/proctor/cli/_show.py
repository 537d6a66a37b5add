"""Showing a stored run: one line per test, failures in full, then stestr-style totals.

The per-test lines are :class:`~proctor.cli.render.TraceView`'s, the same as
``proctor stream trace`` prints, so a run looks the same live and replayed.
The totals come from the counts the store maintains, and keep the headings of
stestr's subunit-trace ("Totals", "Ran: N tests in X sec.", "Worker Balance")
so that scripts and eyes used to stestr find what they look for.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TextIO

from proctor.cli.render import TraceView, format_duration
from proctor.store.model import RunInfo
from proctor.wire.event import NS_PER_SECOND, Status
from proctor.wire.record import TestRecord

__all__ = ["run_outcome", "show_records", "show_totals", "wants_color"]


def wants_color(color: bool | None, out: TextIO | None = None) -> bool:
    """``--color/--no-color`` if given, else whether the output is a terminal."""
    if color is not None:
        return color
    stream = out or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


def show_records(
    out: TextIO, records: Iterable[TestRecord], *, color: bool, failures_only: bool = False
) -> None:
    """One line per test (failures with their attachments), as they were stored."""
    view = TraceView(out, color=color)
    for record in records:
        if failures_only and (record.status.is_final and not record.status.is_failure):
            continue
        view.record(record)


def _clock(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{rest:09.6f}"


def show_totals(out: TextIO, info: RunInfo, records: Iterable[TestRecord] | None = None) -> None:
    """The totals of a run, and the balance of its workers when records are given."""
    counts = info.counts
    write = out.write
    write("\n======\nTotals\n======\n")
    wall = info.wall_seconds
    took = f" in {wall:.4f} sec" if wall is not None else ""
    write(f"Ran: {counts.ran} tests{took}.\n")
    write(f" - Passed: {counts.passed}\n")
    write(f" - Skipped: {counts.skipped}\n")
    write(f" - Expected Fail: {counts.xfail}\n")
    write(f" - Unexpected Success: {counts.uxsuccess}\n")
    write(f" - Failed: {counts.failed}\n")
    if counts.incomplete:
        write(f" - Unfinished (crashed or hung): {counts.incomplete}\n")
    if counts.exists:
        write(f" - Listed only: {counts.exists}\n")
    write(f"Sum of execute time for each test: {counts.test_ns / NS_PER_SECOND:.4f} sec.\n")
    if records is None:
        return
    workers: dict[str, list[int]] = {}
    for record in records:
        if record.status is Status.EXISTS:
            continue
        worker = record.worker
        if worker is None:
            continue
        entry = workers.get(worker)
        start = record.start if record.start is not None else 0
        stop = record.stop if record.stop is not None else start
        if entry is None:
            workers[worker] = [1, start, stop]
        else:
            entry[0] += 1
            entry[1] = min(entry[1], start)
            entry[2] = max(entry[2], stop)
    if workers:
        write("\n==============\nWorker Balance\n==============\n")
        for worker in sorted(workers, key=lambda w: (len(w), w)):
            tests, first, last = workers[worker]
            write(
                f" - Worker {worker} ({tests} tests) => {_clock((last - first) / NS_PER_SECOND)}\n"
            )


def run_outcome(info: RunInfo) -> str:
    """One line: whether the run passed, and why not."""
    counts = info.counts
    if not info.finished:
        state = "was interrupted: it never finished (its writer stopped or is still running)"
    elif info.interrupted:
        state = "was interrupted"
    elif counts.ran == 0:
        state = "ran no tests"
    elif counts.failures:
        state = "FAILED"
    else:
        state = "passed"
    detail = []
    if counts.failed:
        detail.append(f"{counts.failed} failed")
    if counts.uxsuccess:
        detail.append(f"{counts.uxsuccess} unexpected successes")
    if counts.incomplete:
        detail.append(f"{counts.incomplete} unfinished")
    took = info.wall_seconds
    line = f"Run {info.id} {state}"
    if detail:
        line += f" ({', '.join(detail)})"
    if took is not None:
        line += f" in {format_duration(took)}"
    return line
