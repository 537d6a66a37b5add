"""``proctor watch``: run the selection, then re-run the affected tests on every save.

Thin: the import graph, the plans and the loop are
:mod:`proctor.runner.watch`; a cycle is :class:`proctor.cli.watch_cycle.CycleRunner`
(a fresh ``proctor run`` of the cycle's tests, its workers forked from the
session's warm parents, :mod:`proctor.runner.watch.zygotes`). See docs/watch.md.
"""

from __future__ import annotations

import gc
import queue
import signal
import sys
from pathlib import Path

import click

from proctor.cli.deps import current_deps
from proctor.cli.run_args import RunArgs, UsageProblem
from proctor.cli.run_setup import (
    BackendFactory,
    default_backend_factory,
    open_history,
    resolve_config,
)
from proctor.exitcode import ExitCode, signal_exit
from proctor.runner.signals import STOP_SIGNALS

__all__ = ["watch"]


def _top_dirs(root: Path, test_path: str | None, top_dir: str | None) -> list[Path]:
    dirs = [root / "src"]
    dirs.extend((root / value).resolve() for value in (test_path, top_dir) if value)
    return dirs


def watch_tests(
    args: RunArgs,
    *,
    interactive: bool | None = None,
    backends: BackendFactory = default_backend_factory,
    fork_server: bool = True,
) -> int:
    """``proctor watch`` without click: returns the exit status. ``backends``
    makes each cycle's workers; with the default ones and ``fork_server``, they
    are forked from warm parents (one per worker slot) kept for the session."""
    from proctor.cli.output import continue_on_failure
    from proctor.cli.watch_cycle import CycleRunner, forking_backends
    from proctor.runner.selection import SelectionError, select
    from proctor.runner.watch.graph import ImportGraph
    from proctor.runner.watch.loop import HELP, CycleResult, InboxItem, Quit, WatchLoop
    from proctor.runner.watch.plan import CyclePlan, WatchFilters

    continue_on_failure()
    try:
        import watchfiles  # noqa: F401
    except ImportError:
        raise UsageProblem("proctor watch needs watchfiles: pip install 'proctor[watch]'") from None
    config = resolve_config(args)
    try:
        select([], args.selection)
    except SelectionError as error:
        raise UsageProblem(str(error)) from None
    store, _ = open_history(args, config)
    from proctor.runner.watch.sources import FileWatcher, KeyReader

    root = config.root.resolve()
    inbox: queue.Queue[InboxItem] = queue.Queue()
    watcher = FileWatcher(root, inbox)
    graph = ImportGraph(root)
    pool = None
    if fork_server and backends is default_backend_factory:
        from proctor.runner.watch.zygotes import ZygotePool, fork_server_available

        if fork_server_available():
            pool = ZygotePool(str(root), notify=lambda line: click.echo(line, err=True))
            backends = forking_backends(pool)
    runner = CycleRunner(args, config, store, backends)
    failing = set(runner.history().failing_ids()) if store is not None else set()
    if interactive is None:
        interactive = sys.stdin.isatty() and sys.stdout.isatty()
    keys = KeyReader(inbox) if interactive else None
    out = sys.stdout

    def prompt(text: str) -> str | None:
        return keys.read_line(text, out) if keys is not None else None

    def run_cycle(plan: CyclePlan) -> CycleResult:
        if keys is not None:
            keys.disarm()
        try:
            return runner(plan)
        finally:
            if keys is not None:
                keys.arm()

    def idle() -> None:
        # Between cycles, after the summary line: the console script raised gc's
        # thresholds for short commands (proctor.cli.main), so a full collection
        # rarely comes by itself; each cycle's controller leaves cycles behind.
        gc.collect()
        if pool is not None:
            pool.idle()  # warm sessions are started (again) between cycles
        if keys is not None:
            keys.arm()

    loop = WatchLoop(
        graph,
        run_cycle,
        out,
        failing=failing,
        filters=WatchFilters(base=args.filters),
        top_dirs=_top_dirs(root, config.test_path, config.top_dir),
        prompt=prompt if keys is not None else None,
        after_item=idle,
        while_idle=pool.idle if pool is not None else None,
    )

    def on_signal(signum: int, frame: object) -> None:
        # Between cycles; during one, proctor run's own handlers are in place.
        loop.stop_code = signal_exit(signum)

    previous = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS}
    watcher.start()
    if keys is not None:
        keys.start()
        loop.say(HELP)
    try:
        loop.run_all("start")
        if keys is not None:
            keys.arm()
        if loop.interrupted:
            return ExitCode.INTERRUPTED
        if loop.stop_code is not None:
            return loop.stop_code
        return loop.serve(inbox)
    except KeyboardInterrupt:
        inbox.put(Quit(ExitCode.INTERRUPTED))
        return ExitCode.INTERRUPTED
    finally:
        for signum, action in previous.items():
            signal.signal(signum, action)
        if keys is not None:
            keys.stop()
        watcher.stop()
        if pool is not None:
            pool.close()
        if store is not None:
            from proctor.cli.repository import close_store

            close_store(store)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("filters", nargs=-1, metavar="[FILTER]...")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Fail a test that runs longer, with the stack of every thread, and go on.",
)
@click.option("-j", "--concurrency", type=click.IntRange(min=0), help="Workers per cycle.")
@click.option("--serial", is_flag=True, help="One worker per cycle.")
@click.option("--no-store", "no_store", is_flag=True, help="Do not store the cycles.")
@click.option("-s", "--no-capture", "no_capture", is_flag=True, help="Show tests' output live.")
@click.option("--color/--no-color", default=None, help="Colour (default: on a terminal).")
@click.option(
    "--fresh-workers",
    "fresh_workers",
    is_flag=True,
    help="Spawn new worker processes each cycle, not forked from warm parents.",
)
def watch(
    filters: tuple[str, ...],
    timeout: float | None,
    concurrency: int | None,
    serial: bool,
    no_store: bool,
    no_capture: bool,
    color: bool | None,
    fresh_workers: bool,
) -> None:
    """Run the tests, then re-run the tests each saved change affects.

    FILTERs (regexes searched in test ids, any may match) narrow every cycle.
    On a terminal: a all, f failing only, p file regex, t test-id regex, Enter
    rerun, c clear, q quit. Without one: plain lines, no keys.
    """
    args = RunArgs(
        filters=filters,
        concurrency=concurrency,
        serial=serial,
        store=not no_store,
        capture=not no_capture,
        color=color,
        timeout=timeout,
    )
    sys.exit(
        watch_tests(args, backends=current_deps().backend_factory, fork_server=not fresh_workers)
    )
