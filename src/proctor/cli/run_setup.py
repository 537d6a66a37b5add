"""``proctor run``'s command line mapped onto a run session: the configuration,
the repository and its history, the session's options, the backend factory,
the view, the event sinks and the storage of each run.

The session itself, which runs the tests, is :mod:`proctor.runner.session`.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, BinaryIO, TextIO

import click

from proctor.cli.repository import close_store, sign_failures
from proctor.cli.run_args import RunArgs, UsageProblem
from proctor.cli.run_cluster import cluster_backend
from proctor.cli.run_queue import queue_properties
from proctor.cli.run_shard import shard_properties
from proctor.config import PARALLEL_CLASS_REGEX, Config, ConfigError, check_regex, load_config
from proctor.runner.concurrency import choose_concurrency
from proctor.runner.options import RunOptions
from proctor.runner.session import EventSinks, SessionOptions, draw_seed

if TYPE_CHECKING:
    from proctor.events.sink import Sink
    from proctor.runner.backend import WorkerBackend
    from proctor.runner.history import History
    from proctor.runner.report import RunReporter
    from proctor.runner.storing import RunStorage
    from proctor.runner.subprocess_backend import WorkerSpec
    from proctor.store.contract import Store

__all__ = [
    "BackendFactory",
    "choose_view",
    "default_backend_factory",
    "event_sinks",
    "open_history",
    "resolve_config",
    "run_options",
    "run_storage",
    "session_options",
    "worker_spec",
]

BackendFactory = Callable[[RunArgs, Config], "WorkerBackend"]
"""Makes the workers of one run for this command line and configuration (tests
give ``proctor run`` fake ones: :class:`proctor.cli.deps.CliDeps`)."""


def resolve_config(args: RunArgs) -> Config:
    """The project configuration with the command line applied on top."""
    try:
        config = load_config()
        if args.group_regex is not None:
            check_regex(args.group_regex, "--group-regex")
    except ConfigError as error:
        raise UsageProblem(str(error)) from None
    group_regex = PARALLEL_CLASS_REGEX if args.parallel_class else args.group_regex
    return config.override(
        test_path=args.test_path,
        top_dir=args.top_dir,
        framework=args.framework,
        group_regex=group_regex,
        concurrency=args.concurrency,
        timeout=args.timeout,
        repository=args.repository,
    )


def run_options(args: RunArgs, config: Config, history: History | None = None) -> RunOptions:
    """The controller's options for this command line and configuration.

    Concurrency: ``--serial`` is one worker; ``--concurrency`` or the configured
    ``concurrency`` is that many (0: one per core); otherwise one per core, or
    fewer when the history says the suite takes less time than starting them
    would cost (:func:`~proctor.runner.concurrency.choose_concurrency`).
    """
    concurrency = choose_concurrency(
        serial=args.serial, configured=config.concurrency, history=history
    )
    seed = args.seed
    if seed is None and args.random_order:
        seed = draw_seed()
    return RunOptions(
        concurrency=concurrency,
        timeout=config.timeout,
        group_regex=config.group_regex,
        seed=seed,
        selection=args.selection,
        ordered=args.serial and args.load_list is not None and seed is None,
        list_only=args.list_tests,
        max_worker_restarts=args.max_worker_restarts,
        maxfail=args.maxfail,
        failed_first=args.failed_first,
        shard=args.shard,
        rerun_failures=args.rerun_failures,
    )


def session_options(args: RunArgs, options: RunOptions) -> SessionOptions:
    """The session's options: each run's, and how runs follow one another."""
    return SessionOptions(
        run=options,
        until_failure=args.until_failure,
        max_runs=args.max_runs,
        reseed=args.random_order and args.seed is None,  # --random: a new order each run
        isolated=args.isolated,
    )


def worker_spec(args: RunArgs, config: Config, *, early: bool = True) -> WorkerSpec:
    """How to start this command line's workers (``proctor run``, watch cycles);
    ``early``: the first may be the worker started before the command line was
    parsed (``proctor run`` only)."""
    from proctor.runner.subprocess_backend import WorkerSpec

    return WorkerSpec(
        root=config.root,
        framework=None if config.framework == "auto" else config.framework,
        test_path=config.test_path,
        top_dir=config.top_dir,
        pytest_args=args.pytest.worker_args(config.pytest_args, config.test_path),
        capture=args.capture,
        extra_args=(("--pdb",) if args.post_mortem else ())
        + tuple(f"--only={path}" for path in args.only_files),
        # A worker started before the command line was parsed (proctor.cli.run_early)
        # read these from the configuration: it is the same one unless overridden.
        from_configuration=early
        and args.test_path is None
        and args.top_dir is None
        and args.framework is None
        and not args.pytest.given,
    )


def default_backend_factory(args: RunArgs, config: Config) -> WorkerBackend:
    """Worker processes on this machine, or on a Dask cluster with ``--cluster``."""
    from proctor.runner.subprocess_backend import SubprocessBackend

    spec = worker_spec(args, config)
    return cluster_backend(spec, args.cluster) if args.cluster else SubprocessBackend(spec)


def open_history(args: RunArgs, config: Config) -> tuple[Store | None, History]:
    """The repository (None when not storing and not needed) and the history it gives.

    A repository that cannot be opened, read or written is a usage error (exit
    2) before any test runs: a run that says nothing and stores nothing would
    let the history stop unnoticed (in CI, say). ``--no-store`` runs without it.
    """
    from proctor.runner.history import EMPTY_HISTORY, StoreHistory

    wants_history = args.store or args.failing or args.isolate is not None or bool(args.shard)
    if not wants_history:
        return None, EMPTY_HISTORY
    from proctor.store.errors import StoreError
    from proctor.store.opening import open_store

    try:
        store = open_store(config.repository_url, create=args.store)
    except StoreError as error:
        if not (args.store or args.failing or args.isolate is not None):  # only for --shard
            click.echo(f"proctor: --shard without a history ({error}): split by ids", err=True)
            return None, EMPTY_HISTORY
        raise UsageProblem(_repository_problem(args, error)) from None
    history = StoreHistory(store)
    try:
        if args.store and args.isolate is None and not args.list_tests:  # it will write
            store.check_writable()
        history.expected_total()  # reads every duration now, not in the middle of the run
    except StoreError as error:
        close_store(store)
        raise UsageProblem(_repository_problem(args, error)) from None
    if args.store:  # every failure it stores gets a signature (docs/triage.md)
        sign_failures(store)
    return store, history


def _repository_problem(args: RunArgs, error: Exception) -> str:
    if args.failing or args.isolate is not None or not args.store:
        return f"cannot read the run history: {error}"
    return f"cannot store this run: {error}. (--no-store runs the tests without keeping them.)"


def choose_view(args: RunArgs, out: TextIO) -> RunReporter:
    """The view of a run writing to ``out``: live on a terminal, lines otherwise."""
    from proctor.cli.run_view import LineView, LiveView, NoticeView

    if args.subunit:
        return NoticeView(sys.stderr)
    terminal = out.isatty() and os.environ.get("TERM") != "dumb"
    color = args.color if args.color is not None else terminal
    if args.abbreviate:
        from proctor.cli.abbreviated_view import AbbreviatedView

        return AbbreviatedView(out, color=color)
    return LiveView(out, color=color) if terminal else LineView(out, color=color)


def run_storage(store: Store, args: RunArgs, config: Config, job: str | None = None) -> RunStorage:
    """Where a run's results go: begun in ``store`` at the first result; ``job``:
    this job's name in the build ``--queue`` names."""
    from proctor.runner.storing import RunStorage
    from proctor.store.metadata import capture_metadata

    resume = None
    if args.combine:
        latest = store.latest_run()
        if latest is not None:
            resume = latest.id
        else:
            click.echo("proctor: --combine: no run stored yet; this run starts one.", err=True)
    partial = (
        args.selection.narrows
        or args.pytest.selects
        or args.shard is not None
        or args.queue is not None
    )
    properties = {**shard_properties(args), **queue_properties(args, job)}
    metadata = capture_metadata(root=config.root, partial=partial, properties=properties)
    return RunStorage(store, metadata._replace(started_ns=time.time_ns()), resume=resume)


def event_sinks(args: RunArgs, stdout: BinaryIO) -> EventSinks:
    """Where the run's events go besides the view: ``--subunit``, ``--junit``."""
    from proctor.events.sink import NullSink, Tee

    sinks: list[Sink] = []
    closers: list[Callable[[], None]] = []
    if args.subunit:
        from proctor.events.writers import V2Writer

        v2 = V2Writer(stdout)
        sinks.append(v2)
        closers.append(v2.close)
    if args.junit is not None:
        from proctor.events.writers import JUnitWriter

        try:
            handle = open(args.junit, "wb")  # noqa: SIM115 - closed by the closer below
        except OSError as error:
            raise click.FileError(str(args.junit), error.strerror or str(error)) from None
        junit = JUnitWriter(handle, name="proctor run")

        def close_junit() -> None:
            junit.close()
            handle.close()

        sinks.append(junit)
        closers.append(close_junit)
    sink: Sink = NullSink() if not sinks else sinks[0] if len(sinks) == 1 else Tee(*sinks)

    def finish() -> None:
        for close in closers:
            close()

    return EventSinks(sink, finish)
