"""``proctor stream``: read, convert, filter and summarise result streams.

Every subcommand reads the files named (or stdin when none, or ``-``), in any
format Proctor reads (subunit v2, subunit v1, JSON lines, JUnit XML; detected
from the first bytes unless ``--format`` says), and exits non-zero when the
stream it read (for ``filter``, the stream it wrote) holds a failure: a
``fail``, an unexpected success, or a test that never finished.

Exit codes: 0 nothing failed; 1 the stream holds failures; 2 bad usage or
unreadable input.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Callable, Iterator
from typing import BinaryIO

import click

from proctor.cli.printable import ids_for, printable_id
from proctor.events.collector import RecordCollector
from proctor.events.sink import Sink, Tee
from proctor.events.source import FORMATS, read_events
from proctor.events.summary import Summary
from proctor.events.transform import Selection, Tagger, TestFilter
from proctor.events.writers import JsonlWriter, JUnitWriter, V1Writer, V2Writer
from proctor.exitcode import ExitCode
from proctor.wire.event import NS_PER_SECOND, Status
from proctor.wire.record import TestRecord
from proctor.wire.v2 import EncodeError

__all__ = ["stream"]


class InputError(click.ClickException):
    """Input Proctor cannot read: names the file and the problem; exit status 2."""

    exit_code = ExitCode.ERROR


class OutputError(click.ClickException):
    """Output Proctor cannot write: says what and why; exit status 2."""

    exit_code = ExitCode.ERROR


_files = click.argument("files", nargs=-1, type=click.Path(allow_dash=True, dir_okay=False))
_format = click.option(
    "--format",
    "input_format",
    type=click.Choice(["auto", *FORMATS]),
    default="auto",
    show_default=True,
    help="Format of the input.",
)


@click.group()
def stream() -> None:
    """Read, convert, filter and summarise test result streams.

    Input is subunit v2 (what python-subunit, stestr and `proctor run --subunit`
    write), subunit v1, JSON lines or JUnit XML, from FILES or stdin.
    """


@contextlib.contextmanager
def _open_inputs(files: tuple[str, ...]) -> Iterator[list[tuple[str, BinaryIO]]]:
    names = files or ("-",)
    opened: list[tuple[str, BinaryIO]] = []
    try:
        for name in names:
            if name == "-":
                opened.append(("<stdin>", sys.stdin.buffer))
                continue
            try:
                opened.append((name, open(name, "rb")))  # noqa: SIM115 - closed below
            except OSError as error:
                raise InputError(f"cannot open {name}: {error.strerror or error}") from None
        yield opened
    finally:
        for name, handle in opened:
            if name != "<stdin>":
                handle.close()


def _pump(
    files: tuple[str, ...], input_format: str, sink: Sink, flush: Callable[[], None] | None = None
) -> None:
    """Decode every input into ``sink`` (flushing after each batch), then close it."""
    with _open_inputs(files) as inputs:
        for name, handle in inputs:
            try:
                send = sink.send
                for batch in read_events(handle, input_format):
                    for event in batch:
                        send(event)
                    if flush is not None:
                        flush()
            except EncodeError as error:  # noqa: PERF203 - once per input file
                raise OutputError(
                    f"an event read from {name} cannot be written as subunit v2: {error}"
                ) from None
            except UnicodeEncodeError as error:
                encoding = getattr(sys.stdout, "encoding", "?")
                raise OutputError(
                    f"cannot write {error.object[error.start : error.end]!r} to standard output"
                    f" in its encoding ({encoding}); set PYTHONIOENCODING=utf-8"
                ) from None
            except ValueError as error:
                raise InputError(f"{name}: {error}") from None
            except BrokenPipeError:
                raise  # our reader went away: main() handles it
            except OSError as error:
                raise InputError(f"cannot read {name}: {error}") from None
    sink.close()


def _exit_code(summary: Summary) -> int:
    return ExitCode.OK if summary.successful else ExitCode.FAILED


def _stdout() -> BinaryIO:
    return sys.stdout.buffer


# ---------------------------------------------------------------- stats


@stream.command()
@_files
@_format
def stats(files: tuple[str, ...], input_format: str) -> int:
    """Count the tests in a stream by outcome (like subunit-stats)."""
    summary = Summary(keep_failures=False)  # counts only: flat memory on any stream
    _pump(files, input_format, summary)
    counts = summary.counts
    rows = [
        ("Total tests", str(summary.tests_run)),
        ("Passed tests", str(counts[Status.SUCCESS])),
        ("Failed tests", str(counts[Status.FAIL])),
        ("Skipped tests", str(counts[Status.SKIP])),
        ("Expected failures", str(counts[Status.XFAIL])),
        ("Unexpected successes", str(counts[Status.UXSUCCESS])),
        ("Unfinished tests", str(len(summary.unfinished))),
    ]
    if counts[Status.EXISTS]:
        rows.append(("Listed (exists)", str(counts[Status.EXISTS])))
    if summary.wall_time is not None:
        rows.append(("Wall time", f"{summary.wall_time:.3f}s"))
        rows.append(("Test time", f"{summary.test_time_ns / NS_PER_SECOND:.3f}s"))
    width = max(len(value) for _, value in rows)
    lines = [f"{label + ':':<22}{value:>{width}}" for label, value in rows]
    tags = ", ".join(printable_id(tag) for tag in sorted(summary.tags))
    lines.append(f"{'Seen tags:':<22}{tags}")
    click.echo("\n".join(lines))
    return _exit_code(summary)


# ---------------------------------------------------------------- ls


@stream.command("ls")
@_files
@_format
@click.option("--times/--no-times", default=True, show_default=True, help="Show durations.")
@click.option("--exists", is_flag=True, help="Also list tests that were only enumerated.")
@click.option("--status", "show_status", is_flag=True, help="Show each test's outcome.")
def ls(
    files: tuple[str, ...], input_format: str, times: bool, exists: bool, show_status: bool
) -> int:
    """List the tests in a stream, with their durations."""
    summary = Summary()
    out = sys.stdout
    shown = ids_for(out)

    def line(record: TestRecord) -> None:
        if record.status is Status.EXISTS and not exists:
            return
        parts = [shown(record.test_id)]
        if show_status:
            parts.append(record.status.wire_name or "unfinished")
        if times:
            duration = record.duration
            parts.append("-" if duration is None else f"{duration:.6f}")
        out.write(" ".join(parts) + "\n")

    # Only ids and times are shown: attachments are not kept at all.
    _pump(files, input_format, Tee(summary, RecordCollector(line, content_limit=0)))
    return _exit_code(summary)


# ---------------------------------------------------------------- filter

_STATUS_NAMES = [s.wire_name for s in Status if s.wire_name]


@stream.command("filter")
@_files
@_format
@click.option("--success/--no-success", " /-s", default=False, help="Keep successes [dropped].")
@click.option("--xfail/--no-xfail", default=False, help="Keep expected failures [dropped].")
@click.option("--skip/--no-skip", default=True, help="Keep skips [kept].")
@click.option("--failure/--no-failure", " /-f", default=True, help="Keep failures [kept].")
@click.option("--exists/--no-exists", default=True, help="Keep enumeration events [kept].")
@click.option("--only-failures", "-F", is_flag=True, help="Keep only fail and uxsuccess.")
@click.option("--all", "keep_all", is_flag=True, help="Keep every outcome (then narrow by id/tag).")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(_STATUS_NAMES),
    help="Keep exactly these outcomes (repeatable); overrides the outcome flags.",
)
@click.option("--with", "with_re", metavar="REGEX", help="Keep tests whose id matches.")
@click.option("--without", "without_re", metavar="REGEX", help="Drop tests whose id matches.")
@click.option("--with-tag", multiple=True, metavar="TAG", help="Keep tests carrying TAG.")
@click.option("--without-tag", multiple=True, metavar="TAG", help="Drop tests carrying TAG.")
@click.option("--no-passthrough", is_flag=True, help="Drop output that belongs to no test.")
def filter_(
    files: tuple[str, ...],
    input_format: str,
    success: bool,
    xfail: bool,
    skip: bool,
    failure: bool,
    exists: bool,
    only_failures: bool,
    keep_all: bool,
    statuses: tuple[str, ...],
    with_re: str | None,
    without_re: str | None,
    with_tag: tuple[str, ...],
    without_tag: tuple[str, ...],
    no_passthrough: bool,
) -> int:
    """Keep the tests that match, as a subunit v2 stream (like subunit-filter).

    The outcome defaults are subunit-filter's: successes and expected failures
    are dropped unless asked for. Unlike subunit-filter, kept tests come out
    exactly as they came in: start timestamps, route codes, MIME types and
    `exists` events survive. Exit status reflects the stream written.
    """
    if statuses:
        keep = {Status.from_wire_name(name) for name in statuses}
    elif only_failures:
        keep = {Status.FAIL, Status.UXSUCCESS}
    elif keep_all:
        keep = set(Status)
    else:
        keep = {Status.UXSUCCESS, Status.INPROGRESS, Status.NONE}
        for flag, status in (
            (success, Status.SUCCESS),
            (xfail, Status.XFAIL),
            (skip, Status.SKIP),
            (failure, Status.FAIL),
            (exists, Status.EXISTS),
        ):
            if flag:
                keep.add(status)
    selection = Selection(
        statuses=frozenset(keep),
        with_tags=frozenset(with_tag),
        without_tags=frozenset(without_tag),
        include=_regex(with_re, "--with"),
        exclude=_regex(without_re, "--without"),
    )
    writer = V2Writer(_stdout())
    summary = Summary()
    _pump(
        files,
        input_format,
        TestFilter(Tee(writer, summary), selection, keep_other=not no_passthrough),
        writer.flush,
    )
    return _exit_code(summary)


def _regex(pattern: str | None, option: str) -> re.Pattern[str] | None:
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as error:
        raise click.BadParameter(
            f"{pattern!r} is not a valid regular expression: {error}", param_hint=option
        ) from None


# ---------------------------------------------------------------- tag


@stream.command()
@_files
@_format
@click.option("--add", "-a", "add", multiple=True, metavar="TAG", help="Tag to add (repeatable).")
@click.option("--remove", "-r", "remove", multiple=True, metavar="TAG", help="Tag to remove.")
def tag(
    files: tuple[str, ...], input_format: str, add: tuple[str, ...], remove: tuple[str, ...]
) -> int:
    """Add and remove tags on every test event (like subunit-tags)."""
    if not add and not remove:
        raise click.UsageError("give at least one --add TAG or --remove TAG")
    writer = V2Writer(_stdout())
    summary = Summary()
    _pump(files, input_format, Tagger(Tee(writer, summary), add, remove), writer.flush)
    return _exit_code(summary)


# ---------------------------------------------------------------- trace


@stream.command()
@_files
@_format
@click.option("--color/--no-color", default=None, help="Colour the output [when a terminal].")
@click.option("--no-passthrough", is_flag=True, help="Hide output that belongs to no test.")
def trace(
    files: tuple[str, ...], input_format: str, color: bool | None, no_passthrough: bool
) -> int:
    """Show a stream for people: a line per test, failures in full, a summary."""
    from proctor.cli.render import TraceView

    out = sys.stdout
    view = TraceView(
        out,
        color=out.isatty() if color is None else color,
        show_passthrough=not no_passthrough,
    )
    summary = Summary()
    _pump(
        files,
        input_format,
        # Attachments are shown for failures, a MiB of each at most (head and tail).
        Tee(summary, RecordCollector(view.record, on_other=view.other, content_limit=1 << 20)),
        out.flush,
    )
    view.finish(summary)
    return _exit_code(summary)


# ---------------------------------------------------------------- conversions


def _convert(
    files: tuple[str, ...], input_format: str, writer: V2Writer | JsonlWriter | V1Writer
) -> int:
    summary = Summary()
    _pump(files, input_format, Tee(writer, summary), writer.flush)
    return _exit_code(summary)


@stream.command("from-json")
@_files
def from_json(files: tuple[str, ...]) -> int:
    """Convert JSON lines (from `to-json`) to subunit v2."""
    return _convert(files, "json", V2Writer(_stdout()))


@stream.command("from-v1")
@_files
def from_v1(files: tuple[str, ...]) -> int:
    """Convert subunit v1 to subunit v2 (like subunit-1to2)."""
    return _convert(files, "v1", V2Writer(_stdout()))


@stream.command("from-junit")
@_files
def from_junit(files: tuple[str, ...]) -> int:
    """Convert JUnit XML reports to subunit v2."""
    return _convert(files, "junit", V2Writer(_stdout()))


@stream.command("to-json")
@_files
@_format
def to_json(files: tuple[str, ...], input_format: str) -> int:
    """Convert a stream to JSON lines: one event per line, nothing lost."""
    return _convert(files, input_format, JsonlWriter(_stdout()))


@stream.command("to-v1")
@_files
@_format
def to_v1(files: tuple[str, ...], input_format: str) -> int:
    """Convert a stream to subunit v1 (like subunit-2to1)."""
    return _convert(files, input_format, V1Writer(_stdout()))


@stream.command("to-junit")
@_files
@_format
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True, allow_dash=True),
    default="-",
    help="Where to write the report [stdout].",
)
@click.option("--suite-name", default="proctor", show_default=True, help="The test suite's name.")
def to_junit(files: tuple[str, ...], input_format: str, output: str, suite_name: str) -> int:
    """Convert a stream to JUnit XML (for Jenkins, GitLab and GitHub reporters).

    Memory stays flat on any size of stream: test cases are spooled to a
    temporary file until the counts for the report's header are known.
    """
    # The writer's own totals decide the exit status: no second pass over the events.
    if output == "-":
        writer = JUnitWriter(_stdout(), name=suite_name)
        _pump(files, input_format, writer)
        return ExitCode.OK if writer.successful else ExitCode.FAILED
    partial = f"{output}.partial"
    try:
        with open(partial, "wb") as handle:
            writer = JUnitWriter(handle, name=suite_name)
            _pump(files, input_format, writer)
        os.replace(partial, output)
    except OSError as error:
        raise InputError(f"cannot write {output}: {error.strerror or error}") from None
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return ExitCode.OK if writer.successful else ExitCode.FAILED
