"""A run session: the one API that runs tests, whoever asks.

``proctor run`` (with ``--until-failure``, ``--isolated``, ``--isolate``,
``--list``, ``--cluster``) and each ``proctor watch`` cycle build one
:class:`RunSession` and call one of its methods. In: the options
(:class:`SessionOptions`), a backend factory (each run gets fresh workers from
it), the history, how to show the run (a view factory, given the stream to
write to), where else its events go (sinks) and where its results are kept (a
:class:`~proctor.runner.storing.RunStorage` per run). Out: a
:class:`SessionResult`.

The session owns what happens around a controller: Ctrl-C, SIGTERM and SIGHUP
become messages to it (:mod:`proctor.runner.signals`); the output is held
until the results it shows are stored (:mod:`proctor.runner.storing`); every
backend it uses is closed; a run stored as interrupted when anything escapes.
Printing (headers between runs, what was found) is the caller's, through the
callbacks.
"""

from __future__ import annotations

import dataclasses
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, TextIO

from proctor.events.sink import NullSink, Sink
from proctor.exitcode import ExitCode
from proctor.runner.backend import StdinSource, WorkerBackend
from proctor.runner.controller import Controller
from proctor.runner.history import EMPTY_HISTORY, History
from proctor.runner.isolate import Isolation, find_culprits, probe_failed
from proctor.runner.isolated import OneOfMany, merge_result
from proctor.runner.options import RunOptions
from proctor.runner.report import NullReporter, Progress, RunReporter, RunResult
from proctor.runner.schedule import WorkFactory, own_queue
from proctor.runner.signals import signals_post_to
from proctor.runner.storing import ReleasingView, RunStorage
from proctor.runner.threaded_stdin import ThreadedStdin
from proctor.wire.record import TestRecord

if TYPE_CHECKING:
    from proctor.store.model import RunInfo

__all__ = [
    "BackendFactory",
    "EventSinks",
    "IsolationReport",
    "RunSession",
    "SessionOptions",
    "SessionResult",
    "draw_seed",
    "no_sinks",
]

BackendFactory = Callable[[], WorkerBackend]
"""Makes the workers of one run (a fresh set for each run of a session)."""

RecordSink = Callable[[TestRecord], None]


@dataclass(frozen=True, slots=True)
class EventSinks:
    """Where a run's events go besides the view (``--subunit``, ``--junit``), and
    how to finish writing them once the run is over."""

    sink: Sink
    close: Callable[[], None]


def no_sinks(out: BinaryIO) -> EventSinks:
    """The run's events go nowhere but the view."""
    return EventSinks(NullSink(), lambda: None)


def draw_seed() -> int:
    """A seed for ``--random``."""
    return random.SystemRandom().randrange(1, 1_000_000)


@dataclass(frozen=True, slots=True)
class SessionOptions:
    """Everything that shapes a session: each run's options, and how runs follow."""

    run: RunOptions
    """The options of each run (the first one's seed: see :attr:`reseed`)."""
    until_failure: bool = False
    """Run again, on fresh workers, until a run fails (or is not stored)."""
    max_runs: int | None = None
    """With :attr:`until_failure`: at most this many runs."""
    reseed: bool = False
    """Draw a new seed for each run after the first (``--random`` without ``--seed``)."""
    isolated: bool = False
    """List once, then run each selected test on a worker of its own, into one run."""


@dataclass(slots=True)
class SessionResult:
    """What a session did."""

    result: RunResult
    """The last run's result (the sum of them all for ``isolated``)."""
    options: RunOptions
    """The last run's options (its seed)."""
    stored: bool = True
    """Stored as it should have been (True when there was no storing)."""
    runs: int = 1
    """Runs made (more than one with ``until_failure``)."""
    max_runs_reached: bool = False
    """``until_failure`` stopped at ``max_runs`` without a failure."""


@dataclass(slots=True)
class IsolationReport:
    """What :meth:`RunSession.isolate` found, and the errors of probes that could not run."""

    found: Isolation
    problems: list[str]


class RunSession:
    """Runs tests on fresh workers from ``backends``, as ``options`` say (module docstring).

    ``view(out)`` makes the reporter of a run, writing to ``out`` (which holds
    back what it is given until the results are stored, when storing);
    ``sinks(out)`` the run's other event destinations, writing bytes to ``out``;
    ``storage()`` a :class:`RunStorage` for each run (None: nothing stored);
    ``record_sinks`` get every record as well. ``first_backend``, when given, is
    the first run's (already started: ``proctor run`` starts it while it reads the
    history). ``before_rerun(n)`` is told before run ``n`` > 1 of
    ``until_failure``; ``stored(info)`` of each run stored. ``work`` makes each run's
    work source from its plan (its own queue; a build's shared one with ``--queue``:
    :mod:`proctor.runner.fleet`).
    """

    def __init__(
        self,
        options: SessionOptions,
        backends: BackendFactory,
        *,
        history: History = EMPTY_HISTORY,
        view: Callable[[TextIO], RunReporter] | None = None,
        sinks: Callable[[BinaryIO], EventSinks] = no_sinks,
        storage: Callable[[], RunStorage] | None = None,
        record_sinks: Sequence[RecordSink] = (),
        stdout: TextIO | None = None,
        stdin: BinaryIO | None = None,
        first_backend: WorkerBackend | None = None,
        before_rerun: Callable[[int], None] | None = None,
        stored: Callable[[RunInfo], None] | None = None,
        work: WorkFactory = own_queue,
    ) -> None:
        self.options = options
        self._backends = backends
        self._history = history
        self._view = view if view is not None else _null_view
        self._sinks = sinks
        self._storage = storage
        self._record_sinks = tuple(record_sinks)
        self._stdout = stdout
        self._stdin = stdin
        self._first = first_backend
        self._before_rerun = before_rerun
        self._stored = stored
        self._work = work

    # -- the ways to run

    def run(self) -> SessionResult:
        """Run the tests (again and again with ``until_failure``; each alone with
        ``isolated``)."""
        if self.options.isolated:
            return self._run_isolated()
        return self._run_until()

    def list_tests(self) -> RunResult:
        """List and select the tests, running none (``result.selected``: the ids)."""
        backend = self._take_first()
        listing = dataclasses.replace(self.options.run, concurrency=1)
        try:
            return self._controller_run(backend, listing, history=self._history)
        finally:
            backend.close()

    def isolate(
        self,
        target: str,
        worker: str,
        suspects: Sequence[str],
        *,
        on_probe: Callable[[int, int, bool], None] | None = None,
    ) -> IsolationReport:
        """Find the tests among ``suspects`` that make ``target`` fail
        (:func:`~proctor.runner.isolate.find_culprits`): each probe runs the ids it
        is given, in that order, on fresh workers, unstored. An interrupted probe
        raises :class:`~proctor.runner.isolate.ProbeInterrupted`."""
        problems: list[str] = []

        def probe(ids: list[str]) -> bool:
            backend = self._backends()
            probe_options = dataclasses.replace(
                self.options.run, only=tuple(ids), ordered=True, concurrency=1, seed=None
            )
            try:
                result = self._controller_run(backend, probe_options)
            finally:
                backend.close()
            return probe_failed(target, result, problems)

        found = find_culprits(target, worker, suspects, probe, on_probe=on_probe)
        return IsolationReport(found, problems)

    # -- the parts

    def _run_until(self) -> SessionResult:
        options = self.options.run
        until_failure, max_runs = self.options.until_failure, self.options.max_runs
        backend = self._first if self._first is not None else self._new_backend(options)
        self._first = None
        iteration = 0
        reached = False
        try:
            while True:
                iteration += 1
                if iteration > 1:
                    if self._before_rerun is not None:
                        self._before_rerun(iteration)
                    backend.close()
                    backend = self._new_backend(options)
                    if self.options.reseed:
                        options = dataclasses.replace(options, seed=draw_seed())  # a new order
                result, stored = self._run_once(options, backend)
                if not until_failure or result.exit_code != ExitCode.OK or not stored:
                    break
                if max_runs is not None and iteration >= max_runs:
                    reached = True
                    break
        finally:
            backend.close()
        return SessionResult(result, options, stored, iteration, reached)

    def _run_once(self, options: RunOptions, backend: WorkerBackend) -> tuple[RunResult, bool]:
        """One run; and whether it was stored as it should have been."""
        storing = self._storage() if self._storage is not None else None
        view, stdout = self._outputs(storing)
        sinks = self._sinks(stdout)
        try:
            result = self._controller_run(
                backend,
                options,
                history=self._history,
                sink=sinks.sink,
                reporter=view,
                stdin=ThreadedStdin(backend, self._stdin_stream()),
                record_sinks=self._sinks_with(storing),
                on_idle=storing.idle if storing is not None else None,
            )
        except BaseException:
            if storing is not None:
                storing.interrupt()
            raise
        sinks.close()
        if storing is None:
            return result, True
        # stopped early (--maxfail, pytest.exit()): not a complete run
        incomplete = result.interrupted or not result.ran or bool(result.not_run)
        info = storing.finish(interrupted=incomplete)
        if info is not None and self._stored is not None:
            self._stored(info)
        return result, storing.error is None

    def _run_isolated(self) -> SessionResult:
        """List once, then each test on a fresh worker, into one run."""
        options = self.options.run
        started = time.monotonic()
        backend = self._take_first()
        try:
            listing = self._controller_run(
                backend,
                dataclasses.replace(options, list_only=True, concurrency=1),
                history=self._history,
            )
        finally:
            backend.close()
        total = RunResult(seed=options.seed, discovered=listing.discovered, missing=listing.missing)
        total.interrupted, total.signal, total.error = (
            listing.interrupted,
            listing.signal,
            listing.error,
        )
        ids = list(listing.selected)
        if options.seed is not None:
            random.Random(options.seed).shuffle(ids)
        total.selected = ids
        wanted = ids and not total.error and self._storage is not None
        storing = self._storage() if wanted and self._storage is not None else None
        view, stdout = self._outputs(storing)
        progress = Progress(total=len(ids), workers=1, seed=options.seed)
        progress.started_at = started
        sinks = self._sinks(stdout)
        one = OneOfMany(view, progress)
        if ids and not total.error and not total.interrupted:
            view.planned(progress)
        try:
            for test_id in ids:
                if total.interrupted or total.error:
                    total.not_run.append(test_id)
                    continue
                backend = self._backends()
                only = dataclasses.replace(options, only=(test_id,), ordered=True, concurrency=1)
                try:
                    result = self._controller_run(
                        backend,
                        only,
                        history=self._history,
                        sink=sinks.sink,
                        reporter=one,
                        stdin=ThreadedStdin(backend, self._stdin_stream()),
                        record_sinks=self._sinks_with(storing),
                        on_idle=storing.idle if storing is not None else None,
                    )
                finally:
                    backend.close()
                merge_result(total, result)
        except BaseException:
            if storing is not None:
                storing.interrupt()
            raise
        sinks.close()
        if storing is not None:
            storing.finish(interrupted=total.interrupted or not total.ran)
        total.wall_time = time.monotonic() - started
        view.finished(total)
        stored = storing is None or storing.error is None
        return SessionResult(total, options, stored)

    def _controller_run(
        self,
        backend: WorkerBackend,
        options: RunOptions,
        *,
        history: History = EMPTY_HISTORY,
        sink: Sink | None = None,
        reporter: RunReporter | None = None,
        stdin: StdinSource | None = None,
        record_sinks: Sequence[RecordSink] = (),
        on_idle: Callable[[], None] | None = None,
    ) -> RunResult:
        """One controller's run on ``backend``, stopped by Ctrl-C, SIGTERM, SIGHUP."""
        controller = Controller(
            backend,
            options,
            history=history,
            sink=sink,
            reporter=reporter,
            stdin=stdin,
            record_sinks=record_sinks,
            on_idle=on_idle,
            work=self._work,
        )
        with signals_post_to(backend):
            return controller.run()

    def _outputs(self, storing: RunStorage | None) -> tuple[RunReporter, BinaryIO]:
        """The run's view and its byte stdout (``--subunit``), both held back until
        the results they show are stored when the run is being stored."""
        stdout = self._stdout if self._stdout is not None else sys.stdout
        if storing is None:
            return self._view(stdout), stdout.buffer
        view = self._view(storing.hold(stdout))
        storing.set_notice(view.notice)
        return ReleasingView(view, storing), storing.hold_bytes(stdout.buffer)

    def _sinks_with(self, storing: RunStorage | None) -> list[RecordSink]:
        return [*self._record_sinks, *([storing.add] if storing is not None else [])]

    def _stdin_stream(self) -> BinaryIO:
        return self._stdin if self._stdin is not None else sys.stdin.buffer

    def _new_backend(self, options: RunOptions) -> WorkerBackend:
        backend = self._backends()
        backend.prestart(options.concurrency)
        return backend

    def _take_first(self) -> WorkerBackend:
        backend = self._first if self._first is not None else self._backends()
        self._first = None
        return backend


def _null_view(out: TextIO) -> RunReporter:
    return NullReporter()
