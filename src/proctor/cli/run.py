"""``proctor run``: run the suite on every core, show it live, keep every result.

The command is thin: it turns the options and the project configuration into
one :class:`RunArgs`, maps it onto a run session's options, opens the
repository (for durations, the failing set, and to store the run), chooses a
view, and hands over to :class:`~proctor.runner.session.RunSession`
(:mod:`proctor.cli.run_setup` holds the mapping). ``--isolate`` prints from
:mod:`proctor.cli.run_isolate`, stestr's modes are in
:mod:`proctor.cli.run_stestr`.

The workers come from a backend factory given by parameter
(:func:`run_tests`) or through click's context object
(:class:`proctor.cli.deps.CliDeps`), never looked up here.

Exit status: 0 nothing failed; 1 a test failed (``fail``, an unexpected
success, a crash, a timeout); 2 bad usage or configuration, or a repository
that cannot be opened or written (unless ``--no-store``: see
:mod:`proctor.runner.storing`); 3 the run could not be completed (workers
would not start); 5 no tests ran; 130 interrupted (Ctrl-C), 128 + the signal
for SIGTERM and SIGHUP.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from proctor.cli.deps import current_deps
from proctor.cli.repository import close_store
from proctor.cli.run_args import RunArgs, UsageProblem
from proctor.cli.run_cluster import cluster_option, cluster_slots
from proctor.cli.run_isolate import isolate
from proctor.cli.run_queue import BuildJob, check_queue, join_build, queue_option
from proctor.cli.run_setup import (
    BackendFactory,
    choose_view,
    default_backend_factory,
    event_sinks,
    open_history,
    resolve_config,
    run_options,
    run_storage,
    session_options,
)
from proctor.cli.run_shard import (
    check_shard,
    commit_time_ns,
    empty_shard,
    pinned_history,
    shard_option,
)
from proctor.cli.run_stestr import check_stestr_options, narrow_to_one_test, run_pdb
from proctor.config import Config
from proctor.exitcode import ExitCode
from proctor.runner.pytest_options import PytestOptions
from proctor.runner.report import RunResult
from proctor.runner.schedule import own_queue
from proctor.runner.selection import SelectionError, select
from proctor.runner.session import RunSession, SessionResult

if TYPE_CHECKING:
    from proctor.runner.backend import WorkerBackend
    from proctor.runner.history import History
    from proctor.runner.options import RunOptions
    from proctor.runner.storing import RunStorage
    from proctor.store.contract import Store
    from proctor.store.model import RunInfo

__all__ = ["RunArgs", "UsageProblem", "run", "run_tests"]


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


def run_tests(args: RunArgs, backends: BackendFactory = default_backend_factory) -> int:
    """``proctor run`` without click: returns the exit status. ``backends`` makes
    the workers of each run (fake ones in tests)."""
    from proctor.cli.output import continue_on_failure

    continue_on_failure()  # output that cannot be written must not stop the run
    config = resolve_config(args)
    _check_pytest_options(args, config)
    try:
        select([], args.selection)  # bad regexes and unreadable files fail before any worker starts
    except SelectionError as error:
        raise UsageProblem(str(error)) from None
    check_outputs(args)
    check_stestr_options(args)
    check_shard(args)
    check_queue(args)
    if args.pdb_test_id is not None:
        return run_pdb(args, config)
    only: tuple[str, ...] = ()
    if args.no_discover is not None:
        args, config, only = narrow_to_one_test(args, config)
    backend = None
    if args.isolate is None:
        # The first worker imports the suite while this process imports the rest of
        # itself and reads the history; the others start once it says how many.
        backend = backends(args, config)
        backend.prestart(1)
    job: BuildJob | None = None
    try:
        store, history = open_history(args, config)
        job = join_build(args, config)
        options = run_options(args, config, history)
        if job is not None:  # the build's queue is filled with this plan, for all its jobs
            options = dataclasses.replace(
                options, plan_workers=job.planned_workers(options.concurrency)
            )
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
            session = _session(args, config, options, history, store, backends, backend, job)
            if args.isolate is not None:
                return isolate(args.isolate, history, session)
            if args.list_tests:
                return _list(session)
            return _finish(args, session.run(), job)
        except Exception as error:
            from proctor.store.errors import StoreError

            if isinstance(error, StoreError):  # a history read that failed on the way
                raise UsageProblem(f"the repository failed: {error}") from None
            raise
        finally:
            if store is not None:
                close_store(store)
    finally:
        if job is not None:
            job.close()
        if backend is not None:
            backend.close()


def _session(
    args: RunArgs,
    config: Config,
    options: RunOptions,
    history: History,
    store: Store | None,
    backends: BackendFactory,
    first: WorkerBackend | None,
    job: BuildJob | None = None,
) -> RunSession:
    """The run session for this command line (:mod:`proctor.cli.run_setup`)."""

    def before_rerun(iteration: int) -> None:
        click.echo(f"\n== run {iteration} (--until-failure) ==", err=args.subunit)

    def stored(info: RunInfo) -> None:
        if store is not None and not args.subunit:
            from proctor.cli.run_triage import show_run_clusters

            show_run_clusters(sys.stdout, store, info)  # the clusters of its failures
        if store is not None:
            from proctor.cli.run_triage import sign_older_failures

            sign_older_failures(sys.stderr, store)  # older failures, a chunk at a time

    return RunSession(
        session_options(args, options),
        lambda: backends(args, config),
        history=history,
        view=lambda out: choose_view(args, out),
        sinks=lambda out: event_sinks(args, out),
        storage=_storage(store, args, config, job),
        first_backend=first,
        before_rerun=before_rerun,
        stored=stored,
        work=own_queue if job is None else job.work,
        record_sinks=() if job is None else (job.finished,),
    )


def _storage(
    store: Store | None, args: RunArgs, config: Config, job: BuildJob | None
) -> Callable[[], RunStorage] | None:
    """A new storage for each run of the session (None: not storing)."""
    if store is None or not args.store:
        return None
    kept = store
    return lambda: run_storage(kept, args, config, None if job is None else job.job)


def _list(session: RunSession) -> int:
    result = session.list_tests()
    if result.error:
        raise click.ClickException(result.error)
    from proctor.cli.printable import ids_for

    out = sys.stdout
    shown = ids_for(out)
    for test_id in result.selected:
        out.write(shown(test_id) + "\n")
    out.flush()
    return ExitCode.OK if result.selected else ExitCode.NO_TESTS


def _finish(args: RunArgs, done: SessionResult, job: BuildJob | None = None) -> int:
    """What the session did, said; the exit status."""
    result = done.result
    if job is not None and not result.ran and not result.interrupted and not result.error:
        click.echo(
            f"proctor: build {job.build}: the other jobs took every test; none left for this one.",
            err=args.subunit,
        )
        return ExitCode.OK
    if done.max_runs_reached:
        click.echo(f"\nStopped after {done.runs} runs (--max-runs): none failed.", err=args.subunit)
    if not args.isolated and empty_shard(result, done.options):
        return ExitCode.OK
    _explain_nothing_ran(result, args)
    if not done.stored and not result.interrupted:
        return ExitCode.ERROR  # the tests ran; their results could not be stored
    return result.exit_code


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
    given = args.pytest.only_pytest
    if not given or (config.framework == "auto" and config.test_path is None):
        return  # auto without a test_path may still turn out to be pytest (the worker decides)
    from proctor.runner.worker.framework import detect_framework

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
@queue_option
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
    return run_tests(args, current_deps().backend_factory)
