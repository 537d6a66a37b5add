"""``proctor slowest``: the slowest tests of a run, beside their history.

Answered from the run's results (ranked in the database, only the top rows
read) and the per-test statistics the store maintains as results arrive, so it
costs the same after a thousand runs as after one.
"""

from __future__ import annotations

import sys

import click

from proctor.cli._repo import open_repository, repository_option, resolve_run
from proctor.cli.render import format_duration

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
@repository_option
def slowest(
    top: int, show_all: bool, run_spec: str | None, average: bool, repository: str | None
) -> int:
    """Show the slowest tests of the latest run, with their average over history."""
    limit = None if show_all else top
    with open_repository(repository) as store:
        if average:
            rows = store.slowest(limit=limit, by_mean=True)
            heading = "slowest tests by mean duration over history"
        else:
            info = resolve_run(store, run_spec)
            rows = store.slowest(limit=limit, run_id=info.id)
            heading = f"slowest tests of run {info.id}"
    if not rows:
        sys.stdout.write("No timed tests.\n")
        return 0
    width = max(len(row.test_id) for row in rows)
    width = max(min(width, 100), len("Test id"))
    lines = [
        f"{heading}\n",
        f"{'Test id':<{width}}  {'Runtime':>9}  {'Mean':>9}  {'Min':>9}  {'Max':>9}  {'Runs':>5}\n",
        f"{'-' * width}  {'-' * 9}  {'-' * 9}  {'-' * 9}  {'-' * 9}  {'-' * 5}\n",
    ]
    for row in rows:
        stats = row.stats
        low = None if stats.min_ns is None else stats.min_ns / 1e9
        high = None if stats.max_ns is None else stats.max_ns / 1e9
        lines.append(
            f"{row.test_id:<{width}}  {format_duration(row.duration):>9}  "
            f"{format_duration(stats.mean):>9}  {format_duration(low):>9}  "
            f"{format_duration(high):>9}  {stats.timed:>5}\n"
        )
    sys.stdout.write("".join(lines))
    return 0
