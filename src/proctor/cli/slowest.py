"""``proctor slowest``: the slowest tests of a run, beside their history.

Answered from the run's results (ranked in the database, only the top rows
read) and the per-test statistics the store maintains as results arrive, so it
costs the same after a thousand runs as after one.
"""

from __future__ import annotations

import sys

import click

from proctor.cli._show import json_option
from proctor.cli.printable import printable_id
from proctor.cli.render import format_duration
from proctor.cli.repository import open_repository, repository_option, resolve_run
from proctor.exitcode import ExitCode

__all__ = ["slowest"]


@click.command()
@click.option(
    "-n",
    "--top",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="How many tests to show.",
)
@click.option("--all", "show_all", is_flag=True, help="Show every timed test.")
@click.option("--run", "run_spec", metavar="RUN", help="Rank this run instead of the latest.")
@click.option(
    "--average",
    is_flag=True,
    help="Rank every test by its mean duration over the whole history instead.",
)
@json_option
@repository_option
def slowest(
    top: int,
    show_all: bool,
    run_spec: str | None,
    average: bool,
    as_json: bool,
    repository: str | None,
) -> int:
    """Show the slowest tests of the latest run, with their average over history."""
    limit = None if show_all else top
    run_id = None
    with open_repository(repository) as store:
        if average:
            rows = store.slowest(limit=limit, by_mean=True)
            heading = "slowest tests by mean duration over history"
        else:
            run_id = resolve_run(store, run_spec).id
            rows = store.slowest(limit=limit, run_id=run_id)
            heading = f"slowest tests of run {run_id}"
    if as_json:
        from proctor.cli.json_shapes import dump, slow_json

        ranking = "mean" if average else "run"
        dump({"ranking": ranking, "run": run_id, "tests": slow_json(rows)}, sys.stdout)
        return ExitCode.OK
    if not rows:
        sys.stdout.write("No timed tests.\n")
        return ExitCode.OK
    names = [printable_id(row.test_id) for row in rows]
    width = max(len(name) for name in names)
    width = max(min(width, 100), len("Test id"))
    lines = [
        f"{heading}\n",
        f"{'Test id':<{width}}  {'Runtime':>9}  {'Mean':>9}  {'Min':>9}  {'Max':>9}  {'Runs':>5}\n",
        f"{'-' * width}  {'-' * 9}  {'-' * 9}  {'-' * 9}  {'-' * 9}  {'-' * 5}\n",
    ]
    for name, row in zip(names, rows, strict=True):
        stats = row.stats
        low = None if stats.min_ns is None else stats.min_ns / 1e9
        high = None if stats.max_ns is None else stats.max_ns / 1e9
        lines.append(
            f"{name:<{width}}  {format_duration(row.duration):>9}  "
            f"{format_duration(stats.mean):>9}  {format_duration(low):>9}  "
            f"{format_duration(high):>9}  {stats.timed:>5}\n"
        )
    sys.stdout.write("".join(lines))
    return ExitCode.OK
