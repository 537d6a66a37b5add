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

import click

from proctor.cli.printable import printable_id
from proctor.cli.render import TraceView, format_duration, plural
from proctor.store.model import RunInfo
from proctor.wire.event import NS_PER_SECOND, Status
from proctor.wire.record import TestRecord, worker_of

__all__ = [
    "Balance",
    "json_option",
    "run_outcome",
    "run_state",
    "show_records",
    "show_totals",
    "wants_color",
]

json_option = click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Write the answer as one JSON document (its shape: docs/json.md).",
)

_UNFINISHED = {True: "running", None: "unfinished", False: "interrupted"}
"""An unfinished run's state by whether its writer is alive (None: cannot tell
from here, it ran on another host)."""


def run_state(info: RunInfo, alive: dict[int, bool | None] | None = None) -> str:
    """``passed``, ``failed``, ``empty``, ``interrupted``; for a run that never
    finished, ``running``, ``unfinished`` (its writer is on another host) or
    ``interrupted`` (its writer is gone)."""
    if not info.finished:
        return _UNFINISHED[(alive or {}).get(info.id, False)]
    if info.interrupted:
        return "interrupted"
    if info.counts.ran == 0:
        return "empty"
    return "failed" if info.counts.failures else "passed"


def wants_color(color: bool | None, out: TextIO | None = None) -> bool:
    """``--color/--no-color`` if given, else whether the output is a terminal."""
    if color is not None:
        return color
    stream = out or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


Balance = dict[str, list[int]]
"""worker -> [tests, first start ns, last stop ns]; the span is empty (first >
last) when none of the worker's tests had a timestamp."""

_NO_SPAN = (sys.maxsize, -sys.maxsize)


def show_records(
    out: TextIO, records: Iterable[TestRecord], *, color: bool, failures_only: bool = False
) -> Balance:
    """One line per test (failures with their attachments), as they were stored;
    returns the balance of the workers, counted on the way.

    Passing tests, nearly all of a run, are written here directly in the
    format of :class:`TraceView` (a run of 10,000 tests is 10,000 lines, and
    this loop is the bulk of ``proctor last``); every other outcome is written
    by the view itself.
    """
    view = TraceView(out, color=color)
    ok = click.style("ok", fg="green", bold=False) if color else "ok"
    success = Status.SUCCESS
    listed = Status.EXISTS
    workers: Balance = {}
    prefixes: dict[tuple[str | None, frozenset[str]], tuple[str | None, str]] = {}
    lines: list[str] = []
    for record in records:
        status = record.status
        if status is listed:
            continue
        key = (record.route_code, record.tags)
        known = prefixes.get(key)
        if known is None:
            worker = worker_of(*key)
            shown = f"{{{printable_id(worker)}}} " if worker is not None else ""
            known = prefixes[key] = (worker, shown)
        worker, prefix = known
        start, stop = record.start, record.stop
        if worker is not None:
            entry = workers.get(worker)
            if entry is None:
                entry = workers[worker] = [0, *_NO_SPAN]
            entry[0] += 1
            if start is not None:  # an untimed test takes no part in the span
                end = stop if stop is not None else start
                if start < entry[1]:
                    entry[1] = start
                if end > entry[2]:
                    entry[2] = end
        if status is success:
            if not failures_only:
                took = None if start is None or stop is None else (stop - start) / NS_PER_SECOND
                test_id = printable_id(record.test_id)
                lines.append(f"{prefix}{test_id} [{format_duration(took)}] ... {ok}\n")
            continue
        if failures_only and status.is_final and not status.is_failure:
            continue
        if lines:
            out.write("".join(lines))
            lines.clear()
        view.record(record)
    if lines:
        out.write("".join(lines))
    return workers


def _clock(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{rest:09.6f}"


def show_totals(out: TextIO, info: RunInfo, workers: Balance | None = None) -> None:
    """The totals of a run, and the balance of its workers when known."""
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
    if workers:
        write("\n==============\nWorker Balance\n==============\n")
        for worker in sorted(workers, key=lambda w: (len(w), w)):
            tests, first, last = workers[worker]
            span = _clock((last - first) / NS_PER_SECOND) if first <= last else "no timings"
            write(f" - Worker {printable_id(worker)} ({tests} tests) => {span}\n")


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
        detail.append(plural(counts.uxsuccess, "unexpected success", "unexpected successes"))
    if counts.incomplete:
        detail.append(f"{counts.incomplete} unfinished")
    took = info.wall_seconds
    line = f"Run {info.id} {state}"
    if detail:
        line += f" ({', '.join(detail)})"
    if took is not None:
        line += f" in {format_duration(took)}"
    return line
