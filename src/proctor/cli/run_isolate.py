"""``proctor run --isolate ID``: which earlier tests make ID fail?

Takes the tests that ran before ID on its worker in the last stored run,
checks that ID passes alone and fails after all of them, then bisects (see
:mod:`proctor.runner.isolate`). Every probe starts a fresh worker running the
chosen tests in their original order, then ID. Probes are not stored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from proctor.cli.render import plural
from proctor.exitcode import ExitCode
from proctor.runner.isolate import IsolationError, find_culprits, suspects_of
from proctor.wire.event import Status
from proctor.wire.record import TestRecord

if TYPE_CHECKING:
    from proctor.cli.run import RunArgs
    from proctor.config import Config
    from proctor.runner.history import History
    from proctor.runner.options import RunOptions

__all__ = ["isolate", "last_outcome"]

_OUTCOME_WORDS = {
    Status.SUCCESS: "passed",
    Status.SKIP: "was skipped",
    Status.XFAIL: "failed as expected (xfail)",
}


def last_outcome(target: str, last_run: Sequence[TestRecord]) -> Status | None:
    """The final status ``target`` had in ``last_run`` (None if it did not finish)."""
    found = None
    for record in last_run:
        if record.test_id == target and record.status > Status.INPROGRESS:
            found = record.status
    return found


def isolate(args: RunArgs, config: Config, options: RunOptions, history: History) -> int:
    """Run the isolation search and print what it found; return the exit status."""
    from proctor.cli.run import UsageProblem, make_backend, signals_post_to
    from proctor.runner.controller import Controller

    target = args.isolate
    assert target is not None
    last_run = history.last_run()
    try:
        worker, suspects = suspects_of(target, last_run)
    except IsolationError as error:
        raise UsageProblem(str(error)) from None
    outcome = last_outcome(target, last_run)
    if outcome is not None and not outcome.is_failure:
        click.echo(
            f"{target} {_OUTCOME_WORDS.get(outcome, 'did not fail')} in the last run: there is "
            "no failure to isolate. (--isolate looks for the earlier tests that make a test "
            "fail; run the suite until it fails, then isolate.)"
        )
        return ExitCode.OK
    click.echo(
        f"Isolating {target}: {plural(len(suspects), 'test')} ran before it on worker {worker} "
        "in the last run."
    )
    problems: list[str] = []

    def probe(ids: list[str]) -> bool:
        backend = make_backend(args, config)
        probe_options = dataclasses.replace(
            options, only=tuple(ids), ordered=True, concurrency=1, seed=None
        )
        try:
            with signals_post_to(backend):
                result = Controller(backend, probe_options).run()
        finally:
            backend.close()
        if result.interrupted:
            raise click.exceptions.Exit(result.exit_code)
        if result.error:
            problems.append(result.error)
        outcome = [r for r in result.failures + result.unfinished if r.test_id == target]
        passed = result.counts[Status.SUCCESS] + result.counts[Status.SKIP]
        return bool(outcome) or (passed == 0 and bool(result.error))

    def progress(count: int, size: int, failed: bool) -> None:
        word = click.style("fails", fg="red") if failed else click.style("passes", fg="green")
        what = "alone" if size == 0 else f"after {size} test{'s' if size != 1 else ''}"
        click.echo(f"  probe {count}: {what}: {word}")

    found = find_culprits(target, worker, suspects, probe, on_probe=progress)
    if problems:
        click.echo(f"proctor: a probe could not run: {problems[-1]}", err=True)
        return ExitCode.RUN_ERROR
    if found.fails_alone:
        click.echo(f"{target} fails on its own: it does not depend on the tests before it.")
        return ExitCode.FAILED
    if not found.fails_after_all:
        click.echo(
            f"{target} passes after the {plural(len(suspects), 'test')} that ran before it, too: "
            "the failure did not reproduce (flaky, or caused by another process)."
        )
        return ExitCode.OK
    if found.inconsistent:
        click.echo("The probes disagreed with each other: the failure is not deterministic.")
    click.echo(f"\n{target} fails when run after:")
    from proctor.cli.printable import printable_id

    for test_id in found.culprits:
        click.echo(f"  {printable_id(test_id)}")
    click.echo(
        f"({plural(found.probes, 'probe')}.) To reproduce, put these ids and then {target} in a"
    )
    click.echo("file and run: proctor run --serial --load-list FILE")
    return ExitCode.FAILED
