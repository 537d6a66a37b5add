"""``proctor history TEST``: how one test behaved, run by run.

The summary comes from the test's maintained statistics (constant time); the
runs listed come from the ``results(test, run)`` index, newest first, so the
cost is the number of rows shown, not the size of the history.
"""

from __future__ import annotations

import sys

import click

from proctor.cli._show import json_option
from proctor.cli.formats import format_time
from proctor.cli.printable import printable_id
from proctor.cli.render import format_duration
from proctor.cli.repository import RepositoryError, open_repository, repository_option
from proctor.exitcode import ExitCode
from proctor.wire.event import Status
from proctor.wire.record import worker_of

__all__ = ["history"]

_WORDS = {
    Status.SUCCESS: "ok",
    Status.FAIL: "FAILED",
    Status.UXSUCCESS: "UNEXPECTED SUCCESS",
    Status.SKIP: "skipped",
    Status.XFAIL: "xfail",
    Status.INPROGRESS: "UNFINISHED",
    Status.NONE: "UNFINISHED",
    Status.EXISTS: "listed",
}


@click.command()
@click.argument("test_id", metavar="TEST")
@click.option(
    "-n",
    "--limit",
    type=click.IntRange(min=1),
    default=30,
    show_default=True,
    help="How many of the latest executions to list.",
)
@click.option("--all", "show_all", is_flag=True, help="List every execution of the test.")
@json_option
@repository_option
def history(test_id: str, limit: int, show_all: bool, as_json: bool, repository: str | None) -> int:
    """Show the outcomes and durations of TEST over the stored runs, newest first.

    One line per execution: a run that ran the test on two workers lists it
    twice, each with the worker that ran it (as `proctor last` shows it).
    """
    from proctor.store.errors import UnknownTest

    with open_repository(repository) as store:
        try:
            entries = store.test_history(test_id, limit=None if show_all else limit)
        except UnknownTest:
            similar = store.find_tests(test_id)
            hint = (
                "; did you mean one of:\n  " + "\n  ".join(map(printable_id, similar))
                if similar
                else "; `proctor last` lists the ids of the latest run"
            )
            # repr() escapes every control and bidirectional character.
            raise RepositoryError(f"no test {test_id!r} in {store.location}{hint}") from None
        stats = store.test_stats([test_id]).get(test_id)
    if as_json:
        from proctor.cli.json_shapes import dump, history_json, test_stats_json

        total = stats.results if stats is not None else len(entries)
        document = {
            "test": test_id,
            "history": test_stats_json(stats),
            "executions": history_json(entries),
            "not_shown": max(total - len(entries), 0),
        }
        dump(document, sys.stdout)
        return ExitCode.OK
    shown_id = printable_id(test_id)
    out = []
    if stats is not None and stats.results:
        rate = 100.0 * stats.passed / stats.results
        out.append(
            f"{shown_id}: {stats.results} execution{'s' if stats.results != 1 else ''}, "
            f"{stats.passed} passed ({rate:.0f}%), {stats.failed} failed, "
            f"{stats.skipped} skipped\n"
        )
        if stats.timed:
            low = None if stats.min_ns is None else stats.min_ns / 1e9
            high = None if stats.max_ns is None else stats.max_ns / 1e9
            out.append(
                f"duration: mean {format_duration(stats.mean)}, min {format_duration(low)}, "
                f"max {format_duration(high)}, expected next {format_duration(stats.expected)}\n"
            )
    else:
        out.append(f"{shown_id}: no recorded executions\n")
    if entries:
        workers = [printable_id(worker_of(e.route_code, frozenset()) or "-") for e in entries]
        width = max(6, *(len(worker) for worker in workers))
        out.append(
            f"\n{'Run':>6}  {'Started':<19}  {'Worker':<{width}}  {'Outcome':<10}  "
            f"{'Duration':>9}  Revision\n"
        )
        for entry, worker in zip(entries, workers, strict=True):
            revision = entry.git_branch or ""
            if entry.git_commit:
                revision = f"{revision} @ {entry.git_commit[:10]}".strip()
            out.append(
                f"{entry.run_id:>6}  {format_time(entry.run_started_ns):<19}  "
                f"{worker:<{width}}  {_WORDS[entry.status]:<10}  "
                f"{format_duration(entry.duration):>9}  {printable_id(revision)}\n"
            )
        if not show_all and stats is not None and stats.results > len(entries):
            hidden = stats.results - len(entries)
            out.append(
                f"({hidden} older execution{'s' if hidden > 1 else ''} not shown; use --all)\n"
            )
    sys.stdout.write("".join(out))
    return ExitCode.OK
