"""``proctor runs``: list the stored runs, show one, remove some.

Listing reads only the ``runs`` table (counts are kept there as results
arrive), so it takes milliseconds however many results the runs hold; stestr's
``history list`` re-parses every stored run.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

import click

from proctor.cli._show import (
    json_option,
    run_outcome,
    run_state,
    show_records,
    show_totals,
    wants_color,
)
from proctor.cli.formats import format_time, parse_when, run_label
from proctor.cli.printable import printable_id
from proctor.cli.render import format_duration
from proctor.cli.repository import (
    RepositoryError,
    any_writer_alive,
    open_repository,
    repository_option,
    resolve_build,
    resolve_run,
)
from proctor.exitcode import ExitCode
from proctor.store.model import RunInfo

if TYPE_CHECKING:
    from proctor.store.contract import Store

__all__ = ["runs"]


def _filters(function: click.decorators.FC) -> click.decorators.FC:
    for option in reversed(
        [
            click.option("--branch", help="Only runs of this git branch."),
            click.option("--commit", help="Only runs of commits starting with this."),
            click.option("--since", metavar="WHEN", help="Only runs begun since (2024-05-01, 3d)."),
            click.option("--until", metavar="WHEN", help="Only runs begun before (date or age)."),
            click.option(
                "-n",
                "--limit",
                type=click.IntRange(min=1),
                help="At most this many, newest first.",
            ),
            json_option,
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
    as_json: bool,
    repository: str | None,
) -> int:
    """List the stored runs, newest first (or show or remove some: see below)."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = repository
        return ExitCode.OK
    return _list(branch, commit, since, until, limit, as_json, repository)


def _list(
    branch: str | None,
    commit: str | None,
    since: str | None,
    until: str | None,
    limit: int | None,
    as_json: bool,
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
        alive = store.writers_alive(found)
    if as_json:
        from proctor.cli.json_shapes import dump, run_json

        dump({"runs": [run_json(info, run_state(info, alive)) for info in found]}, sys.stdout)
        return ExitCode.OK
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
            f"{info.id:>6}  {format_time(info.started_ns):<19}  {run_state(info, alive):<11}  "
            f"{counts.ran:>6}  {counts.failures:>6}  {counts.skipped:>7}  "
            f"{format_duration(took) if took is not None else '-':>8}  "
            f"{printable_id(meta.source):<6}  {printable_id(revision) or '-'}\n"
        )
    if not found:
        lines = ["No runs match.\n"]
    sys.stdout.write("".join(lines))
    return ExitCode.OK


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
    as_json: bool,
    repository: str | None,
) -> int:
    """List the stored runs, newest first."""
    return _list(branch, commit, since, until, limit, as_json, repository or parent_repository)


# ignore_unknown_options: so that RUN may be -2 (the second latest).
@runs.command(context_settings={"ignore_unknown_options": True})
@click.argument("run_spec", metavar="RUN", default="last")
@click.option("-q", "--quiet", is_flag=True, help="Show only tests that did not pass.")
@click.option(
    "--build",
    metavar="BUILD",
    help="Show the CI build BUILD as one run: every job's run of it (proctor run --queue).",
)
@click.option("--color/--no-color", default=None, help="Colour the output.")
@json_option
@repository_option
@click.pass_obj
def show(
    parent_repository: str | None,
    run_spec: str,
    quiet: bool,
    build: str | None,
    color: bool | None,
    as_json: bool,
    repository: str | None,
) -> int:
    """Show one run: its metadata, its tests and its totals (RUN: id, last or -N)."""
    with open_repository(repository or parent_repository) as store:
        if build is not None:
            if run_spec != "last":
                raise click.UsageError("RUN and --build each name what to show: give one")
            info, records, parts = resolve_build(store, build)
            writers = store.writers_alive(parts)
            alive = {info.id: any_writer_alive(writers, parts)}
        else:
            info = resolve_run(store, run_spec)
            records = store.records(info.id)
            alive = store.writers_alive([info])
            parts = [info]
    if as_json:  # the shape of `proctor last --json`
        from proctor.cli.json_shapes import dump, run_document

        dump(run_document(info, run_state(info, alive), records, quiet=quiet), sys.stdout)
        return ExitCode.OK if info.succeeded else ExitCode.FAILED
    meta = info.metadata
    out = sys.stdout
    rows = [
        ("Run", run_label(info)),
        ("State", run_state(info, alive)),
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
    if build is not None:
        rows.append(("Jobs", ", ".join(f"run {part.id}" for part in parts)))
    width = max(len(name) for name, _ in rows)
    out.write(
        "".join(
            f"{printable_id(name) + ':':<{width + 1}} {printable_id(value)}\n"
            for name, value in rows
        )
    )
    out.write("\n")
    workers = show_records(out, records, color=wants_color(color), failures_only=quiet)
    show_totals(out, info, workers)
    out.write("\n" + run_outcome(info) + "\n")
    return ExitCode.OK if info.succeeded else ExitCode.FAILED


@runs.command(context_settings={"ignore_unknown_options": True})
@click.argument("run_specs", metavar="RUN...", nargs=-1, required=True)
@click.option(
    "--force",
    is_flag=True,
    help="Remove unfinished runs even when their writer may still be writing them.",
)
@repository_option
@click.pass_obj
def remove(
    parent_repository: str | None, run_specs: tuple[str, ...], force: bool, repository: str | None
) -> int:
    """Delete runs and their results (RUN: id, last or -N).

    A run still being written is kept (its writer would fail), unless --force.
    """
    with open_repository(repository or parent_repository) as store:
        infos = {info.id: info for info in (resolve_run(store, spec) for spec in run_specs)}
        kept = [] if force else _being_written(store, infos.values())
        skipped = {run_id for run_id, _ in kept}
        removed = store.remove_runs(run_id for run_id in infos if run_id not in skipped)
        if removed:
            store.collect_garbage()
    if removed:
        plural = "s" if len(removed) > 1 else ""
        sys.stdout.write(f"Removed run{plural} {', '.join(map(str, removed))}.\n")
    if kept:
        raise RepositoryError("; ".join(reason for _, reason in kept))
    if not removed:
        raise RepositoryError("no run was removed")
    return ExitCode.OK


def _being_written(store: Store, infos: Iterable[RunInfo]) -> list[tuple[int, str]]:
    """The runs among ``infos`` that may still be being written, each with why
    it was not removed."""
    kept = []
    infos = list(infos)
    writers = {info.id: info.writer or "?" for info in infos}
    for run_id, alive in sorted(store.writers_alive(infos).items()):
        if alive:
            kept.append(
                (
                    run_id,
                    f"run {run_id} was not removed: it is still being written by "
                    f"{writers[run_id]}; wait for that process or stop it first",
                )
            )
        elif alive is None:
            kept.append(
                (
                    run_id,
                    f"run {run_id} was not removed: it is unfinished, and its writer "
                    f"{writers[run_id]} ran on another host, which cannot be checked from "
                    "here; if that process is gone, remove the run with --force",
                )
            )
    return kept
