"""``proctor run --shard K/N``: the option, its checks, what the stored run says.

The split itself is :mod:`proctor.runner.shard`; the controller applies it
after selection (:func:`proctor.runner.planning.plan_run`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import click

from proctor.runner.selection import select
from proctor.runner.shard import Shard, ShardError, parse_shard

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from pathlib import Path

    from proctor.cli.run_args import RunArgs
    from proctor.runner.history import History
    from proctor.runner.options import RunOptions
    from proctor.runner.report import RunResult
    from proctor.store.contract import Store
    from proctor.wire.record import TestRecord

__all__ = [
    "PINNED_RUNS",
    "check_shard",
    "commit_time_ns",
    "empty_shard",
    "pinned_history",
    "shard_option",
    "shard_properties",
]

PINNED_RUNS = 5
"""Runs (the latest finished before the commit) whose durations time a split."""

_F = TypeVar("_F", bound=Callable[..., object])


def _parse(ctx: click.Context, param: click.Parameter, value: str | None) -> Shard | None:
    if value is None:
        return None
    try:
        return parse_shard(value)
    except ShardError as error:
        raise click.BadParameter(str(error), ctx=ctx, param=param) from None


def shard_option(function: _F) -> _F:
    """The ``--shard K/N`` click option (also ``PROCTOR_SHARD``)."""
    option = click.option(
        "--shard",
        metavar="K/N",
        envvar="PROCTOR_SHARD",
        callback=_parse,
        help="Run only part K of N of the selection, split by the history's timings.",
    )
    return option(function)


def check_shard(args: RunArgs) -> None:
    """Options that name the tests to run exactly cannot be sharded: exit 2."""
    if args.shard is None:
        return
    from proctor.cli.run_args import UsageProblem

    for name, given in (
        ("--pdb ID", args.pdb_test_id is not None),
        ("--no-discover", args.no_discover is not None),
        ("--isolate", args.isolate is not None),
    ):
        if given:
            raise UsageProblem(f"--shard splits the suite; {name} names the test to run: give one")


def shard_properties(args: RunArgs) -> dict[str, str]:
    """What a stored run says about its shard (``{"shard": "2/5"}``), or nothing."""
    return {"shard": str(args.shard)} if args.shard is not None else {}


def empty_shard(result: RunResult, options: RunOptions) -> bool:
    """Whether nothing ran only because this shard got no tests (fewer tests or
    groups than shards): then the job has done its part, and says so (exit 0, not
    5: an empty part must not fail a CI job, pytest-split's #26)."""
    if options.shard is None or result.ran or result.interrupted or result.error:
        return False
    if result.selected or not result.discovered:
        return False
    chosen = select(result.discovered, options.selection, options.failing or ())
    if not chosen.ids:
        return False
    click.echo(
        f"Shard {options.shard}: no tests in this part "
        f"({len(chosen.ids)} selected for {options.shard.total} parts).",
        err=True,
    )
    return True


def commit_time_ns(root: Path) -> int | None:
    """The committer time of the checkout's ``HEAD`` (ns), or None outside git."""
    import subprocess

    try:
        done = subprocess.run(
            ["git", "--no-optional-locks", "-C", str(root), "show", "-s", "--format=%ct", "HEAD"],
            capture_output=True,
            timeout=10,
            check=False,
        )
        return int(done.stdout.strip()) * 1_000_000_000 if done.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


class _Pinned:
    """A history whose durations are those of fixed runs; the rest is the live one's."""

    def __init__(self, live: History, durations: dict[str, float]) -> None:
        self._live = live
        self._durations = durations

    def durations(self, ids: Iterable[str]) -> dict[str, float]:
        known = self._durations
        return {test_id: known[test_id] for test_id in ids if test_id in known}

    def failing_ids(self) -> list[str]:
        return self._live.failing_ids()

    def last_run(self) -> Sequence[TestRecord]:
        return self._live.last_run()

    def expected_total(self) -> float | None:
        return self._live.expected_total()


def pinned_history(live: History, store: Store | None, before_ns: int | None) -> History:
    """The history a shard is split by: durations from the :data:`PINNED_RUNS`
    latest runs that *finished* before ``before_ns`` (the commit's time).

    Every job of a CI build sees the same such runs, whatever its siblings store
    meanwhile (they all finish after the commit), so every job computes the same
    split. Without a store or a commit time, the live history (see
    docs/runner.md, "Sharding").
    """
    if store is None or before_ns is None:
        return live
    from proctor.runner.history import RecordsHistory

    runs = [
        run
        for run in store.runs(until_ns=before_ns, limit=500)
        if run.finished_ns is not None and run.finished_ns < before_ns
    ][:PINNED_RUNS]
    records = [store.records(run.id, attachments=False) for run in reversed(runs)]
    ids = {record.test_id for run_records in records for record in run_records}
    return _Pinned(live, RecordsHistory(records).durations(ids))
