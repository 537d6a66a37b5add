"""``proctor load``: store result streams from files or stdin as a run.

Streams from anywhere (python-subunit, stestr, another CI job's JUnit XML, our
own ``--subunit`` output) are decoded as they are read and stored record by
record through the run writer, so a huge stream never sits in memory and an
interrupted load keeps what it read, as an interrupted run.

The run is begun when the first test result arrives, not before: input that
holds no result stores nothing (no empty run, no run id used up, the failing
set untouched), and the run's start time is the stream's first timestamp
rather than the moment of loading. ``proctor import`` stores each stestr run
through the same path (:class:`RunTarget`, :func:`pump_file`).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, BinaryIO

import click

from proctor.cli._show import run_outcome
from proctor.cli.render import plural
from proctor.cli.repository import RepositoryError, open_repository, repository_option, resolve_run
from proctor.events.source import FORMATS
from proctor.exitcode import ExitCode

if TYPE_CHECKING:
    from proctor.store.contract import RunWriter, Store
    from proctor.store.model import RunInfo, RunMetadata
    from proctor.wire.event import Event
    from proctor.wire.junit import TestIds
    from proctor.wire.record import TestRecord

__all__ = ["InputError", "RunTarget", "load", "pump_file"]


class InputError(click.ClickException):
    """Input that cannot be read: names the file and the problem; exit status 2."""

    exit_code = ExitCode.ERROR


class RunTarget:
    """Where decoded records go: a run begun (or resumed) at the first record.

    ``metadata`` describes a new run; its start time becomes the first
    timestamp the input carries (:meth:`note`), when it carries any. With
    ``resume``, records are appended to that existing run instead.
    """

    def __init__(
        self, store: Store, metadata: RunMetadata | None = None, *, resume: int | None = None
    ) -> None:
        self.store = store
        self.metadata = metadata
        self.resume = resume
        self.writer: RunWriter | None = None
        self.first_ns: int | None = None
        """The first timestamp of the input, once seen."""

    def note(self, events: list[Event]) -> None:
        """Look for the input's first timestamp (until one is found)."""
        if self.first_ns is None:
            for event in events:
                if event.timestamp is not None:
                    self.first_ns = event.timestamp
                    return

    def begin(self) -> RunWriter:
        """The writer, beginning (or resuming) the run if that is not done yet."""
        writer = self.writer
        if writer is None:
            if self.resume is not None:
                writer = self.store.resume_run(self.resume)
            else:
                metadata = self.metadata
                if metadata is None:
                    from proctor.store.model import RunMetadata

                    metadata = RunMetadata()
                if self.first_ns is not None:
                    metadata = metadata._replace(started_ns=self.first_ns)
                writer = self.store.begin_run(metadata)
            self.writer = writer
        return writer

    def add(self, record: TestRecord) -> None:
        writer = self.writer
        if writer is None:
            writer = self.begin()
        writer.add(record)

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def finish(self) -> RunInfo | None:
        """Finish the run; None when no record arrived (no run was begun)."""
        return None if self.writer is None else self.writer.finish()

    def interrupt(self) -> RunInfo | None:
        """Finish the run as interrupted after an error (never raises)."""
        return None if self.writer is None else self.writer.interrupt()


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
@click.option("--commit", help="Record this git commit for the run (default: this checkout's).")
@click.option("--branch", help="Record this git branch for the run (default: this checkout's).")
@click.option(
    "--no-git",
    is_flag=True,
    help="Record no git commit, branch or dirty flag (the input came from elsewhere).",
)
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when the loaded run failed.")
@repository_option
def load(
    files: tuple[str, ...],
    input_format: str,
    run_spec: str | None,
    complete: bool,
    commit: str | None,
    branch: str | None,
    no_git: bool,
    exit_zero: bool,
    repository: str | None,
) -> int:
    """Store test results from FILES (or stdin) as one run.

    Reads subunit v2 and v1, JSON lines and JUnit XML. The run starts at the
    input's first timestamp. Its git commit and branch, and its CI job, host
    and Python, are those of the process that loads it unless given with
    --commit and --branch (or left out with --no-git). Exits 1 when the stored
    run failed (as stestr's load does) unless --exit-zero.
    """
    if run_spec is not None and (complete or commit or branch or no_git):
        raise click.UsageError(
            "--complete, --commit, --branch and --no-git describe a new run; "
            "they cannot be used with --id"
        )
    names = files or ("-",)
    for name in names:  # every file, before anything is stored
        if name != "-":
            try:
                open(name, "rb").close()  # only checking that it opens
            except OSError as error:
                raise InputError(
                    f"cannot open {name}: {error.strerror or error}. Nothing was stored."
                ) from None
    from proctor.store.errors import StoreError

    with open_repository(repository, create=True) as store:
        if run_spec is not None:
            target = RunTarget(store, resume=resolve_run(store, run_spec).id)
        else:
            target = RunTarget(store, _metadata(complete, commit, branch, no_git))
        junit_ids = _junit_ids() if input_format in ("auto", "junit") else None
        try:
            for name in names:
                pump_file(name, input_format, target, junit_ids)
        except InputError as error:
            info = target.interrupt()
            raise InputError(f"{error.message} {_kept(info, target)}") from None
        except StoreError as error:
            raise RepositoryError(f"{str(error).rstrip('.')}. {_failed_write(target)}") from None
        except BaseException:
            target.interrupt()
            raise
        done = target.finish()
        if done is None:
            unchanged = f"; run {target.resume} is unchanged" if target.resume else ""
            raise InputError(
                f"no test results found in {', '.join(map(_display, names))}, so nothing was "
                f"stored{unchanged}; if the input holds results, name its format with --format"
            )
        info = done
        from proctor.cli.run_triage import sign_older_failures

        sign_older_failures(sys.stderr, store)  # older failures, a chunk at a time
    source = f" from {len(names)} files" if len(names) > 1 else ""
    sys.stdout.write(f"Stored run {info.id}{source}: {_tally(info)}.\n{run_outcome(info)}\n")
    return ExitCode.OK if info.succeeded or exit_zero else ExitCode.FAILED


def _tally(info: RunInfo) -> str:
    """``5 tests, 2 passed, 1 failed, 1 skipped, 1 xfailed``: every result counted
    once, in the words of the run's summary line."""
    from proctor.events.summary import outcome_line
    from proctor.wire.event import Status

    counts = info.counts
    by_status = dict.fromkeys(Status, 0)
    by_status.update(
        {
            Status.SUCCESS: counts.passed,
            Status.FAIL: counts.failed,
            Status.SKIP: counts.skipped,
            Status.XFAIL: counts.xfail,
            Status.UXSUCCESS: counts.uxsuccess,
        }
    )
    tally = f"{plural(counts.ran, 'test')}, {outcome_line(by_status, counts.incomplete)}"
    if counts.exists:
        tally += f" ({plural(counts.exists, 'listing')} of tests not run)"
    return tally


def _metadata(complete: bool, commit: str | None, branch: str | None, no_git: bool) -> RunMetadata:
    from proctor.store.metadata import capture_metadata

    metadata = capture_metadata(source="load", partial=not complete, git=not no_git)
    if no_git:  # not even the CI job's idea of the revision
        metadata = metadata._replace(git_commit=None, git_branch=None, git_dirty=None)
    if commit is not None:
        metadata = metadata._replace(git_commit=commit, git_dirty=None)
    if branch is not None:
        metadata = metadata._replace(git_branch=branch)
    return metadata


def _kept(info: RunInfo | None, target: RunTarget) -> str:
    """What an unreadable input left behind, for the error message."""
    if info is None:
        if target.resume is not None:
            return f"Nothing was added to run {target.resume}."
        return "Nothing was stored."
    if target.resume is not None:
        return (
            f"The results read before it were added to run {info.id}, which is marked interrupted."
        )
    return f"The results read before it were stored as run {info.id}, marked interrupted."


def _failed_write(target: RunTarget) -> str:
    """After a write failed: finish the run interrupted, and remove a new run
    that holds nothing (it would only mislead); say what is left."""
    from proctor.store.errors import StoreError

    writer = target.writer
    info = target.interrupt()
    if writer is None:
        return "Nothing was stored."
    if info is None:
        return (
            f"Run {writer.run_id} could not be marked interrupted either (it was removed, "
            "or the repository cannot be reached)."
        )
    if target.resume is not None:
        return f"Run {writer.run_id} keeps what was stored before; it is marked interrupted."
    if writer.written:
        return (
            f"The results written before it were stored as run {writer.run_id}, marked interrupted."
        )
    try:
        target.store.remove_runs([writer.run_id])
    except StoreError:
        return (
            f"Nothing was stored, but the empty run {writer.run_id} is left (interrupted); "
            f"remove it with `proctor runs remove {writer.run_id}`."
        )
    return "Nothing was stored."


def _junit_ids() -> TestIds | None:
    """JUnit test cases named as ``proctor run`` names the tests here: pytest
    node ids when the project at the working directory runs under pytest (its
    files tell ``tests/test_x.py::TestC`` from classname ``tests.test_x.TestC``),
    else None (``classname.name``, the dotted unittest id)."""
    from proctor.config import ConfigError, find_root, load_config
    from proctor.runner.worker.framework import detect_framework
    from proctor.wire.junit import PytestNodeIds

    root = find_root()
    try:
        config = load_config(root=root)
        framework, test_path = config.framework, config.test_path
    except ConfigError:
        framework, test_path = "auto", None
    if detect_framework(framework, root, test_path) != "pytest":
        return None

    def listing(folder: str) -> tuple[set[str], set[str]]:
        dirs: set[str] = set()
        files: set[str] = set()
        try:
            with os.scandir(os.path.join(root, folder)) as entries:
                for entry in entries:
                    (dirs if _is_dir(entry) else files).add(entry.name)
        except OSError:
            pass
        return dirs, files

    return PytestNodeIds(listing)


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def pump_file(
    name: str, input_format: str, target: RunTarget, junit_ids: TestIds | None = None
) -> None:
    """Decode one input (a path, or - for stdin) into the run, test by test.

    Tests the input started and never finished are stored as unfinished when
    it ends, or when it turns out to be unreadable part of the way through.
    """
    from proctor.events.collector import RecordCollector
    from proctor.events.source import read_events

    collector = RecordCollector(target.add)
    send = collector.send
    try:
        handle = _open(name)
    except OSError as error:
        raise InputError(f"cannot open {name}: {error.strerror or error}.") from None
    try:
        for batch in read_events(handle, input_format, junit_ids=junit_ids):
            if target.first_ns is None:
                target.note(batch)
            for event in batch:
                send(event)
            target.flush()
    except ValueError as error:
        collector.close()
        raise InputError(f"{_display(name)} cannot be read: {error}.") from None
    except OSError as error:
        collector.close()
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
