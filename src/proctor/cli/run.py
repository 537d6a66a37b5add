"""``proctor run``: run the suite on every core, show it live, keep every result.

The command is thin: it turns the options and the project configuration into
one :class:`RunArgs` and one :class:`~proctor.runner.controller.RunOptions`,
opens the repository (for durations, the failing set, and to store the run),
chooses a view, and hands over to the controller. ``--isolate`` lives in
:mod:`proctor.cli.run_isolate`.

Exit status: 0 nothing failed; 1 a test failed (``fail``, an unexpected
success, a crash, a timeout); 2 bad usage or configuration, or a repository
that cannot be opened or written (unless ``--no-store``: see
:mod:`proctor.cli.run_storing`); 3 the run could not be completed (workers
would not start); 5 no tests ran; 130 interrupted (Ctrl-C), 128 + the signal
for SIGTERM and SIGHUP.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, BinaryIO, TextIO

import click

from proctor.cli._repo import close_store
from proctor.cli.run_cluster import cluster_backend, cluster_option, cluster_slots
from proctor.cli.run_shard import (
    check_shard,
    commit_time_ns,
    empty_shard,
    pinned_history,
    shard_option,
    shard_properties,
)
from proctor.config import PARALLEL_CLASS_REGEX, Config, ConfigError, check_regex, load_config
from proctor.exitcode import ExitCode
from proctor.runner.pytest_options import PytestOptions
from proctor.runner.report import RunReporter, RunResult
from proctor.runner.selection import Selection, SelectionError, select

if TYPE_CHECKING:
    from proctor.cli.run_storing import RunStorage
    from proctor.events.sink import Sink
    from proctor.runner.backend import WorkerBackend
    from proctor.runner.history import History
    from proctor.runner.options import RunOptions
    from proctor.runner.shard import Shard
    from proctor.store.contract import Store

__all__ = ["RunArgs", "UsageProblem", "run", "run_tests"]


class UsageProblem(click.ClickException):
    """Options or configuration that cannot work together; exit status 2."""

    exit_code = ExitCode.ERROR


@dataclass(frozen=True, slots=True)
class RunArgs:
    """The command line of ``proctor run``, parsed (see :func:`run` for each option)."""

    filters: tuple[str, ...] = ()
    concurrency: int | None = None
    serial: bool = False
    timeout: float | None = None
    random_order: bool = False
    seed: int | None = None
    failing: bool = False
    until_failure: bool = False
    exclude_regex: tuple[str, ...] = ()
    load_list: Path | None = None
    include_list: Path | None = None
    exclude_list: Path | None = None
    isolate: str | None = None
    list_tests: bool = False
    subunit: bool = False
    junit: Path | None = None
    group_regex: str | None = None
    parallel_class: bool = False
    test_path: str | None = None
    top_dir: str | None = None
    framework: str | None = None
    max_worker_restarts: int | None = None
    capture: bool = True
    store: bool = True
    repository: str | None = None
    color: bool | None = None
    # stestr's run options (see proctor.cli.run_stestr)
    max_runs: int | None = None
    combine: bool = False
    abbreviate: bool = False
    isolated: bool = False
    no_discover: str | None = None
    # pytest's options (see proctor.runner.pytest_options): -k, -m, -v/-q, --pdb, after --
    pytest: PytestOptions = field(default_factory=PytestOptions)
    maxfail: int | None = None  # -x / --maxfail N: stop after N failures across workers
    post_mortem: bool = False  # --pdb: the debugger at each failure (pytest and unittest)
    failed_first: bool = False  # --ff
    pdb_test_id: str | None = None  # --pdb ID: run that one test under the debugger (stestr)
    shard: Shard | None = None  # --shard K/N (proctor.cli.run_shard)
    cluster: str | None = None  # --cluster ADDRESS|FILE (proctor.cli.run_cluster)
    rerun_failures: int = 0  # --rerun-failures N (proctor.runner.rerun)

    @property
    def selection(self) -> Selection:
        return Selection(
            filters=self.filters,
            exclude_regex=self.exclude_regex,
            include_list=self.include_list,
            exclude_list=self.exclude_list,
            load_list=self.load_list,
            failing=self.failing,
        )


def cores() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


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


def draw_seed() -> int:
    """A seed for ``--random``."""
    return random.SystemRandom().randrange(1, 1_000_000)


def run_options(args: RunArgs, config: Config, history: History | None = None) -> RunOptions:
    """The controller's options for this command line and configuration.

    Concurrency: ``--serial`` is one worker; ``--concurrency`` or the configured
    ``concurrency`` is that many (0: one per core); otherwise one per core, or
    fewer when the history says the suite takes less time than starting them
    would cost (:func:`~proctor.runner.schedule.workers_worth`).
    """
    from proctor.runner.options import RunOptions
    from proctor.runner.schedule import workers_worth

    if args.serial:
        concurrency = 1
    elif config.concurrency is not None:
        concurrency = config.concurrency or cores()
    else:
        expected = history.expected_total() if history is not None else None
        concurrency = workers_worth(expected, cores())
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


def make_backend(args: RunArgs, config: Config) -> WorkerBackend:
    from proctor.runner.subprocess_backend import SubprocessBackend, WorkerSpec

    spec = WorkerSpec(
        root=config.root,
        framework=None if config.framework == "auto" else config.framework,
        test_path=config.test_path,
        top_dir=config.top_dir,
        pytest_args=args.pytest.worker_args(config.pytest_args, config.test_path),
        capture=args.capture,
        extra_args=("--pdb",) if args.post_mortem else (),
        # A worker started before the command line was parsed (proctor.cli.run_early)
        # read these from the configuration: it is the same one unless overridden.
        from_configuration=args.test_path is None
        and args.top_dir is None
        and args.framework is None
        and not args.pytest.given,
    )
    return cluster_backend(spec, args.cluster) if args.cluster else SubprocessBackend(spec)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""Signals that become messages to the controller while it runs: Ctrl-C, and the
ways a CI job or a closing terminal stops a process (these stop the workers at once)."""


@contextlib.contextmanager
def signals_post_to(backend: WorkerBackend) -> Iterator[None]:
    """While running, Ctrl-C, SIGTERM and SIGHUP become messages to the controller
    (it decides what they mean: see :class:`~proctor.runner.backend.Interrupted`)."""
    from proctor.runner.backend import Interrupted

    def handler(signum: int, frame: FrameType | None) -> None:
        backend.post(Interrupted(signum))

    previous = {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, action in previous.items():
            signal.signal(signum, action)


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
        from proctor.cli._repo import sign_failures

        sign_failures(store)
    return store, history


def _repository_problem(args: RunArgs, error: Exception) -> str:
    if args.failing or args.isolate is not None or not args.store:
        return f"cannot read the run history: {error}"
    return f"cannot store this run: {error}. (--no-store runs the tests without keeping them.)"


def choose_view(args: RunArgs, out: TextIO) -> RunReporter:
    from proctor.cli.run_view import LineView, LiveView, NoticeView

    if args.subunit:
        return NoticeView(sys.stderr)
    terminal = out.isatty() and os.environ.get("TERM") != "dumb"
    color = args.color if args.color is not None else terminal
    if args.abbreviate:
        from proctor.cli.run_stestr import AbbreviatedView

        return AbbreviatedView(out, color=color)
    return LiveView(out, color=color) if terminal else LineView(out, color=color)


def check_outputs(args: RunArgs) -> None:
    """Fail with a usage error (exit 2) before anything starts when an output file
    cannot be written, rather than after the run (or with an empty run stored)."""
    if args.junit is not None:
        try:
            with open(args.junit, "wb"):
                pass
        except OSError as error:
            raise UsageProblem(
                f"cannot write the JUnit file {args.junit}: {error.strerror or error}"
            ) from None


def run_tests(args: RunArgs) -> int:
    """``proctor run`` without click: returns the exit status."""
    from proctor.cli.output import continue_on_failure

    continue_on_failure()  # output that cannot be written must not stop the run
    config = resolve_config(args)
    _check_pytest_options(args, config)
    try:
        select([], args.selection)  # bad regexes and unreadable files fail before any worker starts
    except SelectionError as error:
        raise UsageProblem(str(error)) from None
    check_outputs(args)
    from proctor.cli.run_stestr import check_stestr_options, narrow_to_one_test, run_pdb

    check_stestr_options(args)
    check_shard(args)
    if args.pdb_test_id is not None:
        return run_pdb(args, config)
    only: tuple[str, ...] = ()
    if args.no_discover is not None:
        args, config, only = narrow_to_one_test(args, config)
    backend = None
    if args.isolate is None:
        # The first worker imports the suite while this process imports the rest of
        # itself and reads the history; the others start once it says how many.
        backend = make_backend(args, config)
        backend.prestart(1)
    try:
        store, history = open_history(args, config)
        options = run_options(args, config, history)
        if args.shard is not None:  # the same split on every job (proctor.cli.run_shard)
            history = pinned_history(history, store, commit_time_ns(config.root))
        slots = cluster_slots(backend) if backend is not None else None
        if slots and not args.serial and config.concurrency is None:
            options = dataclasses.replace(options, concurrency=slots)  # one per Dask thread
        if args.no_discover is not None:
            options = dataclasses.replace(options, only=only, ordered=True, concurrency=1)
        if backend is not None and not args.list_tests and not args.isolated:
            backend.prestart(options.concurrency)
        try:
            if args.failing and not args.list_tests:
                failing = history.failing_ids()  # once: --until-failure reruns the same set
                if not failing:
                    click.echo("No failing tests recorded: nothing to run.", err=args.subunit)
                    return ExitCode.OK
                options = dataclasses.replace(options, failing=tuple(failing))
            if args.isolate is not None:
                from proctor.cli.run_isolate import isolate

                return isolate(args, config, options, history)
            assert backend is not None
            if args.list_tests:
                return _list(backend, options, history)
            if args.isolated:
                from proctor.cli.run_stestr import run_isolated

                return run_isolated(args, config, options, history, store, backend)
            return _run_until(args, config, options, history, store, backend)
        except Exception as error:
            from proctor.store.errors import StoreError

            if isinstance(error, StoreError):  # a history read that failed on the way
                raise UsageProblem(f"the repository failed: {error}") from None
            raise
        finally:
            if store is not None:
                close_store(store)
    finally:
        if backend is not None:
            backend.close()


def _list(backend: WorkerBackend, options: RunOptions, history: History) -> int:
    from proctor.runner.controller import Controller

    with signals_post_to(backend):
        listing = dataclasses.replace(options, concurrency=1)
        result = Controller(backend, listing, history=history).run()
    if result.error:
        raise click.ClickException(result.error)
    from proctor.cli.printable import ids_for

    out = sys.stdout
    shown = ids_for(out)
    for test_id in result.selected:
        out.write(shown(test_id) + "\n")
    out.flush()
    return ExitCode.OK if result.selected else ExitCode.NO_TESTS


def _run_until(
    args: RunArgs,
    config: Config,
    options: RunOptions,
    history: History,
    store: Store | None,
    backend: WorkerBackend,
) -> int:
    iteration = 0
    while True:
        iteration += 1
        if iteration > 1:
            click.echo(f"\n== run {iteration} (--until-failure) ==", err=args.subunit)
            backend.close()
            backend = make_backend(args, config)
            backend.prestart(options.concurrency)
            if args.random_order and args.seed is None:
                options = dataclasses.replace(options, seed=draw_seed())  # a new order each time
        result, stored = _run_once(args, config, options, history, store, backend)
        if not args.until_failure or result.exit_code != ExitCode.OK or not stored:
            break
        if args.max_runs is not None and iteration >= args.max_runs:
            click.echo(
                f"\nStopped after {iteration} runs (--max-runs): none failed.", err=args.subunit
            )
            break
    backend.close()
    if empty_shard(result, options):
        return ExitCode.OK
    _explain_nothing_ran(result, args)
    if not stored and not result.interrupted:
        return ExitCode.ERROR  # the tests ran; their results could not be stored
    return result.exit_code


def _run_once(
    args: RunArgs,
    config: Config,
    options: RunOptions,
    history: History,
    store: Store | None,
    backend: WorkerBackend,
) -> tuple[RunResult, bool]:
    """One run; and whether it was stored as it should have been."""
    from proctor.runner.controller import Controller
    from proctor.runner.terminal import ThreadedStdin

    storing = _storing(store, args, config)
    view, stdout = held_outputs(args, storing)
    sinks, finish_sinks = _event_sinks(args, stdout)
    try:
        controller = Controller(
            backend,
            options,
            history=history,
            sink=sinks,
            reporter=view,
            stdin=ThreadedStdin(backend, sys.stdin.buffer),
            record_sinks=[storing.add] if storing is not None else [],
            on_idle=storing.idle if storing is not None else None,
        )
        with signals_post_to(backend):
            result = controller.run()
    except BaseException:
        if storing is not None:
            storing.interrupt()
        raise
    finish_sinks()
    if storing is None:
        return result, True
    # stopped early (--maxfail, pytest.exit()): not a complete run
    info = storing.finish(interrupted=result.interrupted or not result.ran or bool(result.not_run))
    if info is not None and store is not None and not args.subunit:
        from proctor.cli.run_triage import show_run_clusters

        show_run_clusters(sys.stdout, store, info)  # the clusters of its failures
    return result, storing.error is None


def held_outputs(args: RunArgs, storing: RunStorage | None) -> tuple[RunReporter, BinaryIO]:
    """The run's view and its byte stdout (``--subunit``), both held back until the
    results they show are stored when the run is being stored."""
    if storing is None:
        return choose_view(args, sys.stdout), sys.stdout.buffer
    from proctor.cli.run_storing import ReleasingView

    view = choose_view(args, storing.hold(sys.stdout))
    storing.set_notice(view.notice)
    return ReleasingView(view, storing), storing.hold_bytes(sys.stdout.buffer)


def _storing(store: Store | None, args: RunArgs, config: Config) -> RunStorage | None:
    """Where the run's results go: begun in ``store`` at the first result."""
    if store is None or not args.store:
        return None
    import time

    from proctor.cli.run_storing import RunStorage
    from proctor.store.metadata import capture_metadata

    resume = None
    if args.combine:
        latest = store.latest_run()
        if latest is not None:
            resume = latest.id
        else:
            click.echo("proctor: --combine: no run stored yet; this run starts one.", err=True)
    partial = args.selection.narrows or args.pytest.selects or args.shard is not None
    metadata = capture_metadata(
        root=config.root, partial=partial, properties=shard_properties(args)
    )
    return RunStorage(store, metadata._replace(started_ns=time.time_ns()), resume=resume)


def _event_sinks(args: RunArgs, stdout: BinaryIO) -> tuple[Sink, Callable[[], None]]:
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

    return sink, finish


def _explain_nothing_ran(result: RunResult, args: RunArgs) -> None:
    if result.ran or result.interrupted or result.error:
        return
    from proctor.cli.render import plural

    if not result.discovered:
        message = (
            "No tests ran: none were found. Check test_path / framework in [tool.proctor] "
            "(or run `proctor init`)."
        )
    elif not result.selected:
        found = plural(len(result.discovered), "test")
        message = f"No tests ran: the selection matched none of the {found} found."
    else:
        message = "No tests ran."
    click.echo(message, err=True)


def _path(value: str | None) -> Path | None:
    return Path(value) if value is not None else None


def _check_pytest_options(args: RunArgs, config: Config) -> None:
    """pytest-only options on a suite that certainly runs under unittest: exit 2."""
    from proctor.runner.worker.framework import detect_framework

    given = args.pytest.only_pytest
    if not given or (config.framework == "auto" and config.test_path is None):
        return  # auto without a test_path may still turn out to be pytest (the worker decides)
    if detect_framework(config.framework, config.root, config.test_path) == "unittest":
        raise UsageProblem(
            f"{', '.join(given)}: pytest's options, but this project's tests run under "
            "unittest (framework / test_path in [tool.proctor] or .stestr.conf); "
            "use FILTER regexes, or --framework pytest"
        )


class _RunCommand(click.Command):
    """``proctor run``: everything after ``--`` is pytest's, untouched (not FILTERs)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            cut = args.index("--")
            ctx.meta["proctor.run.pytest_extra"] = tuple(args[cut + 1 :])
            args = args[:cut]
        return super().parse_args(ctx, args)


def _pytest_params(params: dict[str, object], extra: tuple[str, ...]) -> None:
    """Fold the pytest options of :func:`run` into ``RunArgs`` fields, in place."""
    keyword, markexpr, pdb = params.pop("keyword"), params.pop("markexpr"), params.pop("pdb")
    verbose, quiet = params.pop("verbose"), params.pop("quiet")
    exitfirst, maxfail = params.pop("exitfirst"), params.pop("maxfail")
    assert isinstance(verbose, int)
    assert isinstance(quiet, int)
    params["pytest"] = PytestOptions(
        keyword=keyword if isinstance(keyword, str) else None,
        markexpr=markexpr if isinstance(markexpr, str) else None,
        verbosity=verbose - quiet,
        extra=extra,
    )
    params["post_mortem"] = pdb == ""
    limits = [1] if exitfirst else []
    limits += [maxfail] if isinstance(maxfail, int) else []
    params["maxfail"] = min(limits) if limits else None
    params["pdb_test_id"] = pdb if isinstance(pdb, str) and pdb else None


@click.command(cls=_RunCommand, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("filters", nargs=-1, metavar="[FILTER]...")
@click.option(
    "-j",
    "--concurrency",
    type=click.IntRange(min=0),
    help="Workers (0: one per core; default: one per core, fewer for a suite the history "
    "shows to be quick).",
)
@click.option("--serial", is_flag=True, help="One worker (with --load-list: in the list's order).")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Fail a test that runs longer, with the stack of every thread, and go on.",
)
@click.option(
    "--random", "random_order", is_flag=True, help="Shuffle the order; the seed is printed."
)
@click.option(
    "--seed", "--random-seed", type=int, help="Shuffle the order with this seed (replays --random)."
)
@click.option("--failing", is_flag=True, help="Run only the tests that are failing now.")
@click.option("--until-failure", is_flag=True, help="Run again and again until a run fails.")
@click.option(
    "--max-runs", type=click.IntRange(min=1), metavar="N", help="--until-failure: at most N runs."
)
@click.option("--combine", is_flag=True, help="Add the results to the last stored run.")
@click.option("--abbreviate", is_flag=True, help="One character per test (. F S E), then failures.")
@click.option("--isolated", is_flag=True, help="Run each test in a worker process of its own.")
@click.option(
    "--no-discover", metavar="ID", help="Run this one test (id, or path.py::Class::test) unlisted."
)
@click.option(
    "-E",
    "--exclude-regex",
    multiple=True,
    metavar="REGEX",
    help="Leave out tests whose id matches.",
)
@click.option("--load-list", type=click.Path(dir_okay=False), help="Run only the ids in this file.")
@click.option(
    "-i",
    "--include-list",
    type=click.Path(dir_okay=False),
    help="File of regexes/ids: run only matching tests.",
)
@click.option(
    "-e",
    "--exclude-list",
    type=click.Path(dir_okay=False),
    help="File of regexes/ids: leave matching tests out.",
)
@click.option(
    "--isolate", metavar="ID", help="Find the tests that make ID fail when it passes alone."
)
@click.option("--list", "list_tests", is_flag=True, help="List the selected tests; run nothing.")
@click.option(
    "--subunit", is_flag=True, help="Write a subunit v2 stream to stdout instead of the view."
)
@click.option(
    "--junit", type=click.Path(dir_okay=False), metavar="PATH", help="Also write JUnit XML to PATH."
)
@click.option(
    "-g",
    "--group-regex",
    metavar="REGEX",
    help="Tests whose ids match the same prefix run on one worker, in order.",
)
@click.option("--parallel-class", is_flag=True, help="Keep each class's tests on one worker.")
@click.option("-t", "--test-path", help="unittest discovery start directory.")
@click.option("--top-dir", help="unittest top-level directory.")
@click.option(
    "--framework", type=click.Choice(["auto", "unittest", "pytest"]), help="Test framework."
)
@click.option(
    "--max-worker-restarts",
    type=click.IntRange(min=0),
    help="Worker deaths not caused by a test tolerated (default: 4 per worker).",
)
@click.option(
    "-s",
    "--no-capture",
    "capture",
    flag_value=False,
    default=True,
    help="Let tests' output through live.",
)
@click.option(
    "--no-store",
    "store",
    flag_value=False,
    default=True,
    help="Do not keep this run in the repository.",
)
@click.option(
    "--repository",
    metavar="URL",
    envvar="PROCTOR_REPOSITORY",
    help="Repository (default: .proctor/ at the project root).",
)
@click.option(
    "--color/--no-color", default=None, help="Colour (default: when the output is a terminal)."
)
# pytest's options (proctor.runner.pytest_options); everything after -- goes to pytest too
@click.option("-k", "keyword", metavar="EXPR", help="pytest: only tests matching EXPR (-k).")
@click.option("-m", "markexpr", metavar="EXPR", help="pytest: only tests whose marks match EXPR.")
@click.option("-x", "--exitfirst", is_flag=True, help="Stop at the first failure (--maxfail 1).")
@click.option(
    "--maxfail",
    type=click.IntRange(min=1),
    metavar="N",
    help="Stop after N failures across all workers; tests not started are not run.",
)
@click.option(
    "--rerun-failures",
    type=click.IntRange(min=0),
    default=0,
    metavar="N",
    help="Run a failing test again up to N times; one that then passes is reported flaky.",
)
@click.option("-v", "--verbose", count=True, help="pytest: more verbose (fuller diffs).")
@click.option("-q", "--quiet", count=True, help="pytest: less verbose.")
@click.option(
    "--ff", "--failed-first", "failed_first", is_flag=True, help="Run failing tests first."
)
@click.option(
    "--pdb",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[ID]",
    help="Debugger at each failure (post-mortem); --pdb ID: run test ID under the debugger.",
)
@shard_option
@cluster_option
def run(**params: object) -> int:
    """Run the tests, in parallel on persistent workers.

    FILTERs are regular expressions; tests whose id matches any of them run
    (as with stestr). Everything after -- goes to pytest in every worker
    (proctor run -- -p no:randomly --tb=short). Configuration comes from
    [tool.proctor] in pyproject.toml or .stestr.conf; options here override it.

    Exit status: 0 all passed, 1 a test failed, 2 usage, or a repository that
    cannot be opened or written (see --no-store), 3 the run could not complete,
    5 no tests ran, 130 interrupted.
    """
    for name in ("load_list", "include_list", "exclude_list", "junit"):
        value = params[name]
        params[name] = _path(value if isinstance(value, str) else None)
    _pytest_params(params, click.get_current_context().meta.get("proctor.run.pytest_extra", ()))
    args = RunArgs(**params)  # type: ignore[arg-type]
    return run_tests(args)
