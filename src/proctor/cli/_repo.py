"""What the history commands share: ``--repository``, opening it, naming runs, dates.

Errors a user can fix (no repository yet, an unknown run, a server that is
down) become :class:`RepositoryError`: the message says what is wrong, where,
and what to do, and the exit status is 2, apart from the 1 that ``last`` and
``failing`` use to say "the tests failed".
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

import click

from proctor.exitcode import ExitCode

if TYPE_CHECKING:
    from proctor.store.contract import Store
    from proctor.store.model import RunInfo
    from proctor.wire.record import TestRecord

__all__ = [
    "RepositoryError",
    "close_store",
    "format_size",
    "format_time",
    "open_repository",
    "parse_when",
    "repository_option",
    "resolve_run",
    "run_label",
    "sign_failures",
    "write_output",
]

F = TypeVar("F", bound=Callable[..., object])


class RepositoryError(click.ClickException):
    """A problem with the repository the user can act on; exit status 2."""

    exit_code = ExitCode.ERROR


def write_output(path: str, data: bytes) -> None:
    """Write a report or stream to ``path``; a failure exits 2 naming the file
    (1 is what ``last`` and ``failing`` say when tests failed)."""
    try:
        with open(path, "wb") as handle:
            handle.write(data)
    except OSError as error:
        raise RepositoryError(f"cannot write {path}: {error.strerror or error}") from None


def repository_option(function: F) -> F:
    """The ``--repository URL`` option every history command takes."""
    return click.option(
        "--repository",
        metavar="URL",
        envvar="PROCTOR_REPOSITORY",
        help="Repository to use: a directory, an SQLite file or a postgresql:// URL "
        "(default: [tool.proctor] repository, else .proctor/ at the project root).",
    )(function)


def _url(repository: str | None) -> str:
    if repository is not None:
        return repository
    from proctor.config import ConfigError, load_config

    try:
        return load_config().repository_url
    except ConfigError as error:
        raise RepositoryError(str(error)) from None


@contextmanager
def open_repository(repository: str | None, *, create: bool = False) -> Iterator[Store]:
    """The store at ``--repository`` (or the configured one), closed afterwards.

    Commands that only read pass ``create=False``, so asking about a project
    with no history yet explains how to make some instead of creating an
    empty repository. Store errors raised inside become :class:`RepositoryError`.
    """
    from proctor.store.errors import StoreError
    from proctor.store.opening import open_store

    try:
        store = open_store(_url(repository), create=create)
    except StoreError as error:
        raise RepositoryError(str(error)) from None
    if create:  # the commands that store runs sign their failures
        sign_failures(store)
    try:
        yield store
    except StoreError as error:
        raise RepositoryError(str(error)) from None
    finally:
        close_store(store)


def sign_failures(store: Store) -> Store:
    """Give ``store`` the triage signer: every failing result it stores gets a
    signature (docs/triage.md). Paths are keyed without project roots, so a
    run here and a stream loaded from CI sign one fault alike."""
    from proctor.triage.signer import RecordSigner

    store.signer = RecordSigner()
    return store


def close_store(store: Store) -> None:
    """Close ``store``; in the console script, the quick way (:meth:`Store.close_at_exit`)."""
    from proctor.runner.fastexit import installed

    if installed():
        store.close_at_exit()
    else:
        store.close()


def resolve_run(store: Store, spec: str | None) -> RunInfo:
    """The run a user named: its id, ``last`` (default) or ``-N`` (the Nth latest)."""
    from proctor.store.errors import UnknownRun

    if spec is None or spec in ("last", "latest", "-1"):
        info = store.latest_run()
        if info is None:
            raise RepositoryError(
                f"there are no runs in {store.location} yet. Run your tests with "
                "`proctor run`, or store results with `proctor load FILE` or "
                "`proctor import .stestr`."
            )
        return info
    if re.fullmatch(r"-[0-9]+", spec):
        back = int(spec[1:])
        found = store.runs(limit=back)
        if back == 0 or len(found) < back:
            raise RepositoryError(
                f"run {spec} does not exist: {store.location} holds "
                f"{len(store.runs())} run{'' if len(store.runs()) == 1 else 's'}"
            )
        return found[-1]
    if not spec.isdigit():
        raise click.BadParameter(
            f"{spec!r} is not a run: give a run id (see `proctor runs`), `last`, or -N "
            "for the Nth latest run",
            param_hint="RUN",
        )
    try:
        return store.run(int(spec))
    except UnknownRun:
        raise RepositoryError(
            f"there is no run {spec} in {store.location}; `proctor runs` lists the runs kept"
        ) from None


def format_size(count: int) -> str:
    """Bytes in the largest binary unit that keeps the number above 1."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover


def format_time(ns: int | None) -> str:
    """Local date and time, to the second."""
    if ns is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ns // 1_000_000_000))


def run_label(info: RunInfo) -> str:
    """``run 12 (main @ 0123abcd, 2024-05-01 12:00:00)``."""
    meta = info.metadata
    where = []
    if meta.git_branch or meta.git_commit:
        revision = (meta.git_branch or "") + (
            f" @ {meta.git_commit[:10]}" if meta.git_commit else ""
        )
        if meta.git_dirty:
            revision += " (dirty)"
        where.append(revision.strip())
    where.append(format_time(info.started_ns))
    return f"run {info.id} ({', '.join(where)})"


_RELATIVE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_FORMATS = (
    "%Y-%m-%d",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
)


def parse_when(text: str, *, now: float | None = None) -> int:
    """A moment as ns since the epoch: a local date/time (``2024-05-01``,
    ``2024-05-01 12:30``) or an age (``90m``, ``12h``, ``3d``, ``2w`` ago)."""
    text = text.strip()
    relative = _RELATIVE.fullmatch(text)
    if relative:
        seconds = float(relative.group(1)) * _UNITS[relative.group(2)]
        return int(((time.time() if now is None else now) - seconds) * 1_000_000_000)
    for layout in _FORMATS:
        try:
            moment = time.mktime(time.strptime(text, layout))
        except ValueError:
            continue
        return int(moment * 1_000_000_000)
    raise click.BadParameter(
        f"{text!r} is neither a date (2024-05-01, 2024-05-01 12:30) nor an age (12h, 3d, 2w)"
    )


def resolve_build(store: Store, build: str) -> tuple[RunInfo, list[TestRecord], list[RunInfo]]:
    """The CI build ``build`` as one run (:func:`proctor.store.builds.build_view`);
    :class:`RepositoryError` when no stored run belongs to it."""
    from proctor.cli.printable import printable_id
    from proctor.store.builds import SCAN_RUNS, build_view

    found = build_view(store, build)
    if found is None:
        raise RepositoryError(
            f"no run of build {printable_id(build)} among the newest {SCAN_RUNS} runs: the "
            "jobs of a build store their runs with proctor run --queue BUILD"
        )
    return found


def any_writer_alive(writers: dict[int, bool | None], runs: list[RunInfo]) -> bool | None:
    """Whether a writer of any of ``runs`` is alive (None: it cannot be told)."""
    states = [writers.get(info.id) for info in runs]
    if any(states):
        return True
    return None if None in states else False
