"""``proctor triage``: failure clusters over a window of runs (proctor.triage.clusters).

``triage`` lists the clusters, most failures first; ``triage show CLUSTER``
shows one whole; ``triage failures --json`` prints every stored failure of
the window as one JSON object per line; ``triage recluster`` signs stored
failures under the current algorithm.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from proctor.cli._show import json_option
from proctor.cli.formats import parse_when
from proctor.cli.json_shapes import dump
from proctor.cli.repository import RepositoryError, open_repository, repository_option
from proctor.exitcode import ExitCode

if TYPE_CHECKING:
    from proctor.triage.clusters import Window
    from proctor.triage.settings import TriageSettings

__all__ = ["settings_or_fail", "triage", "window_for", "window_options"]


def window_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """``--since --until --branch --runs``: which runs to look at."""
    for option in reversed(
        [
            click.option(
                "--since",
                metavar="WHEN",
                help="Runs begun since (2024-05-01, 3d); default: the configured window.",
            ),
            click.option("--until", metavar="WHEN", help="Runs begun before (date or age)."),
            click.option("--branch", help="Only runs of this git branch."),
            click.option(
                "--runs",
                "last_runs",
                type=click.IntRange(min=1),
                help="Only the newest N runs (no time limit unless --since is given).",
            ),
        ]
    ):
        function = option(function)
    return function


def window_for(
    since: str | None, until: str | None, branch: str | None, last_runs: int | None, days: int
) -> Window:
    from proctor.triage.clusters import DAY_NS, Window

    """The runs to look at: the given bounds; with neither --since nor --runs,
    the ``days`` before --until (or before now)."""
    since_ns = parse_when(since) if since is not None else None
    until_ns = parse_when(until) if until is not None else None
    if since_ns is None and last_runs is None:
        since_ns = (until_ns if until_ns is not None else time.time_ns()) - days * DAY_NS
    return Window(since_ns, until_ns, branch, last_runs)


def settings_or_fail() -> TriageSettings:
    from proctor.config import ConfigError, load_config
    from proctor.triage.settings import TriageSettings

    try:
        config = load_config()
        return TriageSettings.from_table(config.triage, config.triage_where)
    except ConfigError as error:
        raise RepositoryError(str(error)) from None


@click.group(invoke_without_command=True)
@window_options
@click.option(
    "-n",
    "--limit",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="How many clusters to show.",
)
@click.option("--all", "show_all", is_flag=True, help="Show every cluster.")
@json_option
@repository_option
@click.pass_context
def triage(
    ctx: click.Context,
    since: str | None,
    until: str | None,
    branch: str | None,
    last_runs: int | None,
    limit: int,
    show_all: bool,
    as_json: bool,
    repository: str | None,
) -> int:
    """Show the failure clusters of recent runs, most common first.

    A cluster is one failure signature (docs/triage.md): its failures, tests,
    runs, when it was seen, a trend, a state (new, ongoing, regressed, gone),
    its share of all failures and an example traceback.
    """
    if ctx.invoked_subcommand is not None:
        ctx.obj = repository
        return ExitCode.OK
    from proctor.cli._explain import closed_bugs, project_explainer
    from proctor.store.builds import collapse_builds
    from proctor.triage.clusters import summarise, window_runs

    settings = settings_or_fail()
    window = window_for(since, until, branch, last_runs, settings.window_days)
    with open_repository(repository) as store:
        runs = window_runs(store, window)
        explainer = project_explainer(store)
        clusters, total = summarise(
            store,
            runs,
            gone_after_runs=settings.gone_after_runs,
            branch=branch,
            explain=None if explainer is None else explainer.cluster,
        )
        runs, _ = collapse_builds(runs)  # a CI build's jobs count as one run, as above
        shown = clusters if show_all or as_json else clusters[:limit]
        closings = closed_bugs(store, (cluster.explanation.bug for cluster in shown))
        examples = {
            cluster.id: store.result(cluster.example.run, cluster.example.seq)
            for cluster in shown
            if cluster.example is not None
        }
    from proctor.cli import triage_view as view

    reopened = view.mark_bug_regressions(shown, closings)
    if as_json:
        dump(
            {
                "window": view.window_json(runs, window.since_ns, window.until_ns, branch),
                "failures": total,
                "clusters": [
                    view.cluster_json(c, examples.get(c.id), closings.get(c.explanation.bug or ""))
                    for c in shown
                ],
            },
            sys.stdout,
        )
        return ExitCode.OK
    view.show_clusters(
        sys.stdout, clusters, total, runs, examples, None if show_all else limit, reopened
    )
    return ExitCode.OK


@triage.command()
@click.argument("cluster")
@json_option
@repository_option
@click.pass_obj
def show(parent_repository: str | None, cluster: str, as_json: bool, repository: str | None) -> int:
    """Show one cluster whole: every test and run it touched, examples, history.

    CLUSTER is its id or a unique prefix of it (at least 4 characters)."""
    from proctor.cli._clusters import cluster_id
    from proctor.cli._explain import closed_bugs, project_explainer
    from proctor.triage.clusters import Explanation
    from proctor.triage.detail import cluster_detail
    from proctor.triage.signature import ALGORITHM

    with open_repository(repository or parent_repository) as store:
        cluster = cluster_id(store, cluster)
        detail = cluster_detail(store, cluster, algorithm=ALGORITHM)
        if detail is None:
            raise RepositoryError(
                f"there is no cluster {cluster!r} under {ALGORITHM}; `proctor triage` lists them"
            )
        explainer = project_explainer(store)
        known = explainer.failure(detail.newest) if explainer is not None else Explanation()
        closed_ns = closed_bugs(store, [known.bug]).get(known.bug or "")
    rows, runs, examples, daily = detail.rows, detail.runs, detail.examples, detail.daily
    from proctor.cli import triage_view as view
    from proctor.triage.text import failure_text

    if as_json:
        dump(
            {
                "cluster": cluster,
                "algorithm": rows[0].algorithm,
                "signature": rows[0].digest,
                "kind": rows[0].kind,
                "key": rows[0].key,
                "failures": [view.failure_json(row) for row in rows],
                "per_day": {"first_day_ns": detail.first_day_ns, "counts": daily},
                "examples": [
                    {"test": record.test_id, "traceback": failure_text(record)}
                    for record in examples
                ],
                "rule": known.rule,
                "bug": known.bug,
                **view.bug_closing_json(closed_ns, detail.newest.run_ns),
            },
            sys.stdout,
        )
        return ExitCode.OK
    view.show_cluster(sys.stdout, cluster, rows, runs, examples, daily[-60:])
    view.show_known(sys.stdout, known, closed_ns, detail.newest.run_ns)
    return ExitCode.OK


@triage.command()
@window_options
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON object per failure, one per line (docs/json.md).",
)
@repository_option
@click.pass_obj
def failures(
    parent_repository: str | None,
    since: str | None,
    until: str | None,
    branch: str | None,
    last_runs: int | None,
    as_json: bool,
    repository: str | None,
) -> int:
    """Every stored failure of the window with its cluster and signature.

    With --json: one JSON object per line (run, test, cluster, signature,
    rule, bug), for any script to join on.
    """
    from proctor.cli._explain import project_explainer
    from proctor.triage.clusters import Explanation, window_runs
    from proctor.triage.signature import ALGORITHM

    settings = settings_or_fail()
    window = window_for(since, until, branch, last_runs, settings.window_days)
    with open_repository(repository or parent_repository) as store:
        runs = window_runs(store, window)
        rows = store.failures([info.id for info in runs], algorithm=ALGORITHM)
        explainer = project_explainer(store) if as_json else None
        known = [explainer.failure(row) if explainer else Explanation() for row in rows]
    from proctor.cli import triage_view as view
    from proctor.cli.printable import printable_id

    out = sys.stdout
    for row, explanation in zip(rows, known, strict=True):
        if as_json:
            out.write(json.dumps(view.failure_json(row, explanation), ensure_ascii=True) + "\n")
        else:
            out.write(f"{row.run:>6} {row.cluster}  {printable_id(row.test_id)}\n")
    return ExitCode.OK


@triage.command()
@click.option(
    "--previous",
    metavar="ALGORITHM",
    help="Keep the cluster ids of this older algorithm where the grouping is unchanged.",
)
@json_option
@repository_option
@click.pass_obj
def recluster(
    parent_repository: str | None, previous: str | None, as_json: bool, repository: str | None
) -> int:
    """Sign every stored failure under the current algorithm, in resumable chunks.

    Failures stored before signatures existed, or under an older algorithm,
    get one; stopping it (Ctrl-C) loses at most the chunk being written, and
    running it again carries on.
    """
    from proctor.triage.recluster import recluster as run_recluster

    with open_repository(repository or parent_repository) as store:
        report = run_recluster(store, previous=previous)
    if as_json:
        dump(
            {
                "algorithm": report.algorithm,
                "signed": report.signed,
                "chunks": report.chunks,
                "kept_ids": report.kept_ids,
            },
            sys.stdout,
        )
        return ExitCode.OK
    kept = f"; {report.kept_ids} kept their cluster id" if previous else ""
    click.echo(
        f"Signed {report.signed} failure{'s' if report.signed != 1 else ''} under "
        f"{report.algorithm} in {report.chunks} chunk{'s' if report.chunks != 1 else ''}{kept}."
    )
    return ExitCode.OK


def _add_rules_commands() -> None:
    """``triage unexplained``: the failures no known-bug rule explains (cli/rules.py)."""
    from proctor.cli.rules import unexplained

    triage.add_command(unexplained)


_add_rules_commands()
