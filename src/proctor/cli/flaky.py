"""``proctor flaky``: flaky and broken tests over a window of runs (proctor.triage.flaky)."""

from __future__ import annotations

import sys

import click

from proctor.cli._show import json_option
from proctor.cli.json_shapes import dump
from proctor.cli.repository import open_repository, repository_option
from proctor.cli.triage import settings_or_fail, window_for, window_options
from proctor.exitcode import ExitCode

__all__ = ["flaky"]


@click.command()
@window_options
@json_option
@repository_option
def flaky(
    since: str | None,
    until: str | None,
    branch: str | None,
    last_runs: int | None,
    as_json: bool,
    repository: str | None,
) -> int:
    """Show the flaky and broken tests of recent runs, most impact first.

    Flaky: passed and failed on the same commit and variant (Python version,
    platform). Broken: failing at the edge of history. Each verdict says which
    runs and commits; impact is the runs that failed only because of it.
    Thresholds: [tool.proctor.triage] (docs/triage.md).
    """
    from proctor.triage.clusters import window_runs
    from proctor.triage.flaky import judge

    settings = settings_or_fail()
    window = window_for(since, until, branch, last_runs, settings.flaky_window_days)
    with open_repository(repository) as store:
        runs = window_runs(store, window)
        verdicts = judge(store, runs, settings)
    from proctor.cli import triage_view as view

    if as_json:
        dump(
            {
                "window": view.window_json(runs, window.since_ns, window.until_ns, branch),
                "tests": [view.verdict_json(verdict) for verdict in verdicts],
            },
            sys.stdout,
        )
        return ExitCode.OK
    view.show_verdicts(sys.stdout, verdicts, runs)
    return ExitCode.OK
