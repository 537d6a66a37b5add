"""The ``proctor`` command group and its lazily loaded subcommands (click).

:mod:`proctor.cli.main` is the entry point; it imports this module only once
it has done what must happen before click is imported.

Each subcommand lives in its own module and is imported only when it is run
(or when ``--help`` lists it), so ``proctor --help`` and the short history
commands start fast.
"""

from __future__ import annotations

import importlib

import click

from proctor import __version__
from proctor.exitcode import ExitCode

__all__ = ["COMMANDS", "LazyGroup", "cli", "main"]

# name -> (module, attribute, one-line help). The help is here so that listing
# the commands does not import every module.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "stream": (
        "proctor.cli.stream",
        "stream",
        "Read, convert, filter and summarise test result streams.",
    ),
    "last": ("proctor.cli.last", "last", "Show the latest run's results (exit 1 if it failed)."),
    "failing": ("proctor.cli.last", "failing", "Show the tests failing now (exit 1 if any)."),
    "slowest": ("proctor.cli.slowest", "slowest", "Show the slowest tests, with their history."),
    "stats": ("proctor.cli.stats", "stats", "Show what the repository holds."),
    "history": ("proctor.cli.history", "history", "Show one test's outcomes and durations."),
    "runs": ("proctor.cli.runs", "runs", "List, show or remove stored runs."),
    "load": ("proctor.cli.load", "load", "Store result streams (v2, v1, JUnit XML) as a run."),
    "import": ("proctor.cli.importing", "import_", "Import a .stestr or .testrepository history."),
    "export": ("proctor.cli.export", "export", "Write a stored run as a subunit v2 stream."),
    "gc": ("proctor.cli.gc", "gc", "Remove old runs by count or age."),
    "run": ("proctor.cli.run", "run", "Run the tests in parallel on persistent workers."),
    "watch": (
        "proctor.cli.watch",
        "watch",
        "Run the tests, then re-run those each saved change affects.",
    ),
    "triage": ("proctor.cli.triage", "triage", "Show failure clusters, most common first."),
    "flaky": ("proctor.cli.flaky", "flaky", "Show flaky and broken tests, most impact first."),
    "init": ("proctor.cli.init", "init", "Write a starting [tool.proctor] configuration."),
    "rules": ("proctor.cli.rules", "rules", "Known-bug rules: add, list, preview, sync."),
    "ui": ("proctor.cli.ui", "ui", "Serve the dashboard (runs, comparisons, tests) locally."),
    "report": ("proctor.cli.report", "report", "Write a run as one self-contained HTML file."),
    "bug": ("proctor.cli.bug", "bug", "Bug records: new, show, list, edit, sync, bundles."),
}


class LazyGroup(click.Group):
    """A group whose commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            module_name, attribute, _ = COMMANDS[cmd_name]
            command = getattr(importlib.import_module(module_name), attribute)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in sorted(COMMANDS)]
        rows += [
            (name, cmd.get_short_help_str())
            for name, cmd in sorted(self.commands.items())
            if name not in COMMANDS and not cmd.hidden
        ]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="proctor")
def cli() -> None:
    """Proctor runs a Python project's tests fast, keeps every result, and turns
    failures into evidence."""


def main(argv: list[str] | None = None, *, obj: object = None) -> int:
    """Run the command line; return the exit code. ``obj`` is click's context
    object (:class:`proctor.cli.deps.CliDeps`: what tests give the commands).

    Standard output is guarded (:mod:`proctor.cli.output`): a closed pipe or a
    full disk ends a command with a one-line message and an exit status, never
    a traceback.
    """
    from proctor.cli.output import OutputClosed, exit_status, guarded_stdout

    with guarded_stdout() as stdout:
        try:
            status = _main(argv, obj)
            stdout.flush()  # what is still buffered fails here, not at shutdown
        except OutputClosed:
            status = 0
        return exit_status(stdout, status)


def _main(argv: list[str] | None, obj: object) -> int:
    try:
        result = cli.main(args=argv, prog_name="proctor", standalone_mode=False, obj=obj)
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except click.Abort:
        click.echo("Aborted.", err=True)
        return ExitCode.INTERRUPTED
    return result if isinstance(result, int) else ExitCode.OK
