"""``proctor runs``: list the stored runs, show one, remove some.

Listing reads only the ``runs`` table (counts are kept there as results
arrive), so it takes milliseconds however many results the runs hold; stestr's
``history list`` re-parses every stored run.
"""

from __future__ import annotations

import os
import sys

import click

from proctor.cli._repo import (
    RepositoryError,
    format_time,
    open_repository,
    parse_when,
    repository_option,
    resolve_run,
    run_label,
)
from proctor.cli._show import run_outcome, show_records, show_totals, wants_color
from proctor.cli.render import format_duration
from proctor.store.model import RunInfo

__all__ = ["runs"]


def _state(info: RunInfo) -> str:
    if not info.finished:
        return _unfinished_state(info.writer)
    if info.interrupted:
        return "interrupted"
    if info.counts.ran == 0:
        return "empty"
    return "failed" if info.counts.failures else "passed"


def _unfinished_state(writer: str | None) -> str:
    """``running`` while the writer (``host:pid``) is alive here, ``interrupted``
    once it is gone; ``unfinished`` when it ran on another host (a shared
    PostgreSQL repository), where this process cannot tell."""
    import socket

    if not writer or ":" not in writer:
        return "interrupted"
    host, _, pid = writer.rpartition(":")
    if host != socket.gethostname():
        return "unfinished"
    if not pid.isdigit():
        return "interrupted"
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return "interrupted"
    except PermissionError:
        return "running"
    return "running"


def _filters(function: click.decorators.FC) -> click.decorators.FC:
    for option in reversed(
        [
            click.option("--branch", help="Only runs of this git branch."),
            click.option("--commit", help="Only runs of commits starting with this."),
            click.option("--since", metavar="WHEN", help="Only runs begun since (2024-05-01, 3d)."),
            click.option("--until", metavar="WHEN", help="Only runs begun before (date or age)."),
            click.option("-n", "--limit", type=int, help="At most this many, newest first."),
        ]
    ):
        function = option(function)
    return function


@click.group(invoke_without_command=True)
@_filters
@repository_option
@click.pass_context
def runs(
    ctx: click.Context,
    branch: str | None,
    commit: str | None,
    since: str | None,
    until: str | None,
    limit: int | None,
    repository: str | None,
) -> int:
    """List the stored runs, newest first (or show or remove some: see below)."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = repository
        return 0
    return _list(branch, commit, since, until, limit, repository)


def _list(
    branch: str | None,
    commit: str | None,
    since: str | None,
    until: str | None,
    limit: int | None,
    repository: str | None,
) -> int:
    since_ns = None if since is None else parse_when(since)
    until_ns = None if until is None else parse_when(until)
    with open_repository(repository) as store:
        found = store.runs(
            branch=branch, commit=commit, since_ns=since_ns, until_ns=until_ns, limit=limit
        )
        if not found and store.latest_run() is None:
            resolve_run(store, None)  # explains that nothing has been stored yet
    lines = [
        f"{'Run':>6}  {'Started':<19}  {'State':<11}  {'Tests':>6}  {'Failed':>6}  "
        f"{'Skipped':>7}  {'Time':>8}  {'Source':<6}  Revision\n"
    ]
    for info in found:
        counts = info.counts
        meta = info.metadata
        revision = meta.git_branch or ""
        if meta.git_commit:
            revision = f"{revision} @ {meta.git_commit[:10]}".strip()
        if meta.git_dirty:
            revision += " (dirty)"
        took = info.wall_seconds
        lines.append(
            f"{info.id:>6}  {format_time(info.started_ns):<19}  {_state(info):<11}  "
            f"{counts.ran:>6}  {counts.failures:>6}  {counts.skipped:>7}  "
            f"{format_duration(took) if took is not None else '-':>8}  {meta.source:<6}  "
            f"{revision}\n"
        )
    if not found:
        lines = ["No runs match.\n"]
    sys.stdout.write("".join(lines))
    return 0


@runs.command(name="list")
@_filters
@repository_option
@click.pass_obj
def list_(
    parent_repository: str | None,
    branch: str | None,
    commit: str | None,
    since: str | None,
    until: str | None,
    limit: int | None,
    repository: str | None,
) -> int:
    """List the stored runs, newest first."""
    return _list(branch, commit, since, until, limit, repository or parent_repository)


# ignore_unknown_options: so that RUN may be -2 (the second latest).
@runs.command(context_settings={"ignore_unknown_options": True})
@click.argument("run_spec", metavar="RUN", default="last")
@click.option("-q", "--quiet", is_flag=True, help="Show only tests that did not pass.")
@click.option("--color/--no-color", default=None, help="Colour the output.")
@repository_option
@click.pass_obj
def show(
    parent_repository: str | None,
    run_spec: str,
    quiet: bool,
    color: bool | None,
    repository: str | None,
) -> int:
    """Show one run: its metadata, its tests and its totals (RUN: id, last or -N)."""
    with open_repository(repository or parent_repository) as store:
        info = resolve_run(store, run_spec)
        records = store.records(info.id)
    meta = info.metadata
    out = sys.stdout
    rows = [
        ("Run", run_label(info)),
        ("State", _state(info)),
        ("Finished", format_time(info.finished_ns)),
        ("Source", meta.source + (" (subset of the suite)" if meta.partial else " (whole suite)")),
        ("Command", meta.command or "-"),
        ("Python", meta.python or "-"),
        ("Platform", meta.platform or "-"),
        ("Host", meta.hostname or "-"),
    ]
    if meta.ci_provider:
        rows.append(("CI", f"{meta.ci_provider} job {meta.ci_job_id or '?'} {meta.ci_url or ''}"))
    rows += [(key, value) for key, value in sorted(meta.properties.items())]
    width = max(len(name) for name, _ in rows)
    out.write("".join(f"{name + ':':<{width + 1}} {value}\n" for name, value in rows))
    out.write("\n")
    workers = show_records(out, records, color=wants_color(color), failures_only=quiet)
    show_totals(out, info, workers)
    out.write("\n" + run_outcome(info) + "\n")
    return 0 if info.succeeded else 1


@runs.command(context_settings={"ignore_unknown_options": True})
@click.argument("run_specs", metavar="RUN...", nargs=-1, required=True)
@repository_option
@click.pass_obj
def remove(
    parent_repository: str | None, run_specs: tuple[str, ...], repository: str | None
) -> int:
    """Delete runs and their results (RUN: id, last or -N)."""
    with open_repository(repository or parent_repository) as store:
        ids = [resolve_run(store, spec).id for spec in run_specs]
        removed = store.remove_runs(ids)
        if not removed:
            raise RepositoryError("no run was removed")
        store.collect_garbage()
    plural = "s" if len(removed) > 1 else ""
    sys.stdout.write(f"Removed run{plural} {', '.join(map(str, removed))}.\n")
    return 0
