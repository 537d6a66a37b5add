"""``proctor report``: a run as one self-contained HTML file (see :mod:`proctor.web.report`)."""

from __future__ import annotations

import sys

import click

from proctor.cli.formats import format_size, run_label
from proctor.cli.output import write_output
from proctor.cli.repository import open_repository, repository_option, resolve_run
from proctor.exitcode import ExitCode

__all__ = ["report"]


# ignore_unknown_options: so that RUN may be -2 (the second latest).
@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("run_spec", metavar="[RUN]", default="last")
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    default="report.html",
    show_default=True,
    help="Where to write the report.",
)
@click.option(
    "--trend",
    type=click.IntRange(min=1, max=1000),
    default=30,
    show_default=True,
    help="Runs of the branch drawn in the trend.",
)
@repository_option
def report(run_spec: str, output: str, trend: int, repository: str | None) -> int:
    """Write one run (RUN: id, last or -N) as a self-contained HTML file: its
    failures with their clusters and known bugs, the comparison with the
    previous run of its branch, the trend, the slowest tests. It opens from
    disk with no network."""
    from proctor.cli.ui import dashboard_triage, missing_extra

    problem = missing_extra("report")
    if problem is not None:
        raise problem
    from proctor.web.report import build_report
    from proctor.web.repository import ReadOnlyRepository

    triage = dashboard_triage()
    with open_repository(repository, read_only=True) as store:
        info = resolve_run(store, run_spec)
        html = build_report(ReadOnlyRepository(store), info, trend=trend, triage=triage)
    data = html.encode("utf-8")
    write_output(output, data)
    sys.stdout.write(f"Wrote {output} ({format_size(len(data))}): {run_label(info)}\n")
    return ExitCode.OK
