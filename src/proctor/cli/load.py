"""``proctor load``: store result streams from files or stdin as a run.

Streams from anywhere (python-subunit, stestr, another CI job's JUnit XML, our
own ``--subunit`` output) are decoded as they are read and stored record by
record through the run writer, so a huge stream never sits in memory and an
interrupted load keeps what it read, as an interrupted run.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, BinaryIO

import click

from proctor.cli._repo import open_repository, repository_option, resolve_run
from proctor.cli._show import run_outcome
from proctor.events.source import FORMATS

if TYPE_CHECKING:
    from proctor.store.contract import RunWriter

__all__ = ["InputError", "load"]


class InputError(click.ClickException):
    """Input that cannot be read: names the file and the problem; exit status 2."""

    exit_code = 2


@click.command()
@click.argument("files", nargs=-1, type=click.Path(allow_dash=True, dir_okay=False))
@click.option(
    "--format",
    "input_format",
    type=click.Choice(["auto", *FORMATS]),
    default="auto",
    show_default=True,
    help="Format of the input (auto: told apart by the first bytes).",
)
@click.option(
    "--id",
    "run_spec",
    metavar="RUN",
    help="Add the results to this existing run instead of a new one.",
)
@click.option(
    "--complete",
    is_flag=True,
    help="The input is the whole suite: tests it does not hold leave the failing set.",
)
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when the loaded run failed.")
@repository_option
def load(
    files: tuple[str, ...],
    input_format: str,
    run_spec: str | None,
    complete: bool,
    exit_zero: bool,
    repository: str | None,
) -> int:
    """Store test results from FILES (or stdin) as one run.

    Reads subunit v2 and v1, JSON lines and JUnit XML. Exits 1 when the stored
    run failed (as stestr's load does) unless --exit-zero.
    """
    from proctor.store.metadata import capture_metadata

    names = files or ("-",)
    with open_repository(repository, create=True) as store:
        if run_spec is not None:
            writer = store.resume_run(resolve_run(store, run_spec).id)
        else:
            writer = store.begin_run(capture_metadata(source="load", partial=not complete))
        try:
            with writer:  # an error finishes the run as interrupted
                for name in names:
                    _pump(name, input_format, writer)
        except InputError as error:
            info = writer.finish()
            if info.counts.total == 0 and run_spec is None:
                store.remove_runs([info.id])
                raise InputError(f"{error.message} Nothing was stored.") from None
            raise InputError(
                f"{error.message} The results read before it were stored as run {info.id}, "
                "marked interrupted."
            ) from None
        info = writer.finish()
        if info.counts.total == 0 and run_spec is None:
            store.remove_runs([info.id])
            raise InputError(
                f"no test results found in {', '.join(map(_display, names))}, so nothing was "
                "stored; if the input holds results, name its format with --format"
            )
    source = f" from {len(names)} files" if len(names) > 1 else ""
    counts = info.counts
    sys.stdout.write(
        f"Stored run {info.id}{source}: {counts.ran} tests, {counts.passed} passed, "
        f"{counts.failures} failed, {counts.skipped} skipped.\n{run_outcome(info)}\n"
    )
    return 0 if info.succeeded or exit_zero else 1


def _pump(name: str, input_format: str, writer: RunWriter) -> None:
    """Decode one input into the run, test by test."""
    from proctor.events.collector import RecordCollector
    from proctor.events.source import read_events

    collector = RecordCollector(writer.add)
    try:
        handle = _open(name)
    except OSError as error:
        raise InputError(f"cannot open {name}: {error.strerror or error}.") from None
    try:
        for batch in read_events(handle, input_format):
            for event in batch:
                collector.send(event)
            writer.flush()
    except ValueError as error:
        raise InputError(f"{_display(name)} cannot be read: {error}.") from None
    except OSError as error:
        raise InputError(f"cannot read {_display(name)}: {error.strerror or error}.") from None
    finally:
        if handle is not sys.stdin.buffer:
            handle.close()
    collector.close()


def _open(name: str) -> BinaryIO:
    if name == "-":
        return sys.stdin.buffer
    return open(name, "rb")


def _display(name: str) -> str:
    return "<stdin>" if name == "-" else name
