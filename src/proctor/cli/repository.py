"""The repository as the commands reach it: ``--repository``, opening it (the
stores that take runs sign their failures), closing it, and naming a run in it.

Errors a user can fix (no repository yet, an unknown run, a server that is
down) become :class:`RepositoryError`: the message says what is wrong, where,
and what to do, and the exit status is 2, apart from the 1 that ``last`` and
``failing`` use to say "the tests failed". How times, sizes and runs are written
is in :mod:`proctor.cli.formats`.
"""

from __future__ import annotations

import re
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
    "open_repository",
    "repository_option",
    "repository_url",
    "resolve_run",
    "sign_failures",
]

F = TypeVar("F", bound=Callable[..., object])


class RepositoryError(click.ClickException):
    """A problem with the repository the user can act on; exit status 2."""

    exit_code = ExitCode.ERROR


def repository_option(function: F) -> F:
    """The ``--repository URL`` option every history command takes."""
    return click.option(
        "--repository",
        metavar="URL",
        envvar="PROCTOR_REPOSITORY",
        help="Repository to use: a directory, an SQLite file or a postgresql:// URL "
        "(default: [tool.proctor] repository, else .proctor/ at the project root).",
    )(function)


def repository_url(repository: str | None) -> str:
    """The URL of ``--repository`` (or of the configured repository)."""
    if repository is not None:
        return repository
    from proctor.config import ConfigError, load_config

    try:
        return load_config().repository_url
    except ConfigError as error:
        raise RepositoryError(str(error)) from None


@contextmanager
def open_repository(
    repository: str | None, *, create: bool = False, read_only: bool = False
) -> Iterator[Store]:
    """The store at ``--repository`` (or the configured one), closed afterwards.

    Commands that only read pass ``create=False``, so asking about a project
    with no history yet explains how to make some instead of creating an
    empty repository; ``read_only`` opens it read-only at the database (the
    dashboard, the report). Store errors raised inside become :class:`RepositoryError`.
    """
    from proctor.store.errors import StoreError
    from proctor.store.opening import open_store

    try:
        store = open_store(repository_url(repository), create=create, read_only=read_only)
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
