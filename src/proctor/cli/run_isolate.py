"""``proctor run --isolate ID``: which earlier tests make ID fail?

Takes the tests that ran before ID on its worker in the last stored run,
checks that ID passes alone and fails after all of them, then bisects (see
:mod:`proctor.runner.isolate`; the probes are run by
:meth:`proctor.runner.session.RunSession.isolate`). Every probe starts a fresh
worker running the chosen tests in their original order, then ID. Probes are
not stored. This module says what the search does and what it found.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from proctor.cli.printable import printable_id
from proctor.cli.render import plural
from proctor.cli.run_args import UsageProblem
from proctor.exitcode import ExitCode
from proctor.runner.isolate import IsolationError, ProbeInterrupted, last_outcome, suspects_of
from proctor.wire.event import Status

if TYPE_CHECKING:
    from proctor.runner.history import History
    from proctor.runner.session import RunSession

__all__ = ["isolate", "last_outcome"]

_OUTCOME_WORDS = {
    Status.SUCCESS: "passed",
    Status.SKIP: "was skipped",
    Status.XFAIL: "failed as expected (xfail)",
}


def isolate(target: str, history: History, session: RunSession) -> int:
    """Run the isolation search and print what it found; return the exit status."""
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

    def progress(count: int, size: int, failed: bool) -> None:
        word = click.style("fails", fg="red") if failed else click.style("passes", fg="green")
        what = "alone" if size == 0 else f"after {size} test{'s' if size != 1 else ''}"
        click.echo(f"  probe {count}: {what}: {word}")

    try:
        report = session.isolate(target, worker, suspects, on_probe=progress)
    except ProbeInterrupted as stop:
        raise click.exceptions.Exit(stop.exit_code) from None
    found = report.found
    if report.problems:
        click.echo(f"proctor: a probe could not run: {report.problems[-1]}", err=True)
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
    for test_id in found.culprits:
        click.echo(f"  {printable_id(test_id)}")
    click.echo(
        f"({plural(found.probes, 'probe')}.) To reproduce, put these ids and then {target} in a"
    )
    click.echo("file and run: proctor run --serial --load-list FILE")
    return ExitCode.FAILED
