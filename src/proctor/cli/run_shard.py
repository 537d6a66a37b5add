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
    from proctor.cli.run import RunArgs
    from proctor.runner.options import RunOptions
    from proctor.runner.report import RunResult

__all__ = ["check_shard", "empty_shard", "shard_option", "shard_properties"]

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
    from proctor.cli.run import UsageProblem

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
