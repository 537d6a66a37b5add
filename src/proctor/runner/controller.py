"""The controller: one run of a suite on N persistent workers.

A run goes through three phases:

1. **Listing.** N workers are started at once; each imports the suite. The first
   to report ``ready`` is asked to list the tests (no extra process lists them).
   The selection options choose from that list, and the scheduler
   (:mod:`proctor.runner.schedule`) plans the order with durations from
   :class:`~proctor.runner.history.History`.
2. **Running.** Every free worker gets a batch; a worker whose batch is nearly
   done (less than ``lookahead`` seconds expected) gets its next batch early, so
   that fast tests never wait on a round trip. Every event a worker sends is
   routed: its route code is prefixed with the worker number and its status
   events carry stestr's ``worker-N`` tag, then it goes to the event sink and
   the record collector, whose records go to the reporter.
3. **Stopping.** Workers are sent ``Quit`` (and killed if they do not exit in
   ``quit_wait`` seconds).

The :class:`Controller` is composed of parts, one concern each, every one
given what it needs when it is made (details in docs/runner.md):

* :class:`~proctor.runner.run_state.RunState`: what the parts share (phase,
  result, progress, queue, whether the run is stopping early);
* :class:`~proctor.runner.worker_pool.WorkerPool`: the workers' slots,
  starting and replacing them, deadlines (``--timeout``, a worker stuck
  starting or quitting), quitting and killing;
* :class:`~proctor.runner.early_stop.EarlyStop`: Ctrl-C and signals,
  ``--maxfail`` and ``pytest.exit()``, a suite that cannot load;
* :class:`~proctor.runner.exit_judge.ExitJudge`: what a worker's exit means for
  its tests (a crash fails the test it was running, a timeout fails it with
  every thread's stack, a teardown crash fails the run);
* :class:`~proctor.runner.listing.Listing`: workers becoming ready, the
  listing, planning the run;
* :class:`~proctor.runner.dispatch.Dispatcher`: handing out batches;
* :class:`~proctor.runner.tally.Tally`: what the records add up to, and
  ``--rerun-failures``;
* :class:`~proctor.runner.debugging.DebugDesk`: a test that reads stdin gets
  the terminal (or the controller's input, when that is not a terminal);
* :class:`~proctor.runner.outlet.Outlet`: where events and worker output go.

This module holds the loop and the dispatch of what the workers send: each
message from the backend goes to the part it concerns.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from proctor.events.collector import RecordCollector
from proctor.events.sink import NullSink, Sink
from proctor.runner.backend import (
    Exited,
    Interrupted,
    Message,
    Output,
    Results,
    StdinLine,
    StdinSource,
    Wake,
    WorkerBackend,
)
from proctor.runner.debugging import DebugDesk
from proctor.runner.dispatch import Dispatcher
from proctor.runner.early_stop import EarlyStop
from proctor.runner.exit_judge import ExitJudge
from proctor.runner.history import EMPTY_HISTORY, History
from proctor.runner.listing import Listing
from proctor.runner.options import RunOptions
from proctor.runner.outlet import Outlet
from proctor.runner.protocol import CONTROL_FILE, Control, ProtocolError, parse_control
from proctor.runner.report import NullReporter, RunReporter, RunResult
from proctor.runner.rerun import Reruns
from proctor.runner.run_state import Phase, RunState
from proctor.runner.schedule import WorkFactory, own_queue
from proctor.runner.slot import Slot, SlotState, StopReason
from proctor.runner.tally import Tally
from proctor.runner.worker_pool import EPSILON, WorkerPool
from proctor.wire.event import Event, Status, new_event
from proctor.wire.record import TestRecord

__all__ = ["Controller", "RunOptions"]

_new_event = new_event
_NONE = Status.NONE
_EXISTS = Status.EXISTS
_INPROGRESS = Status.INPROGRESS


class Controller:
    """Runs one test run (see the module docstring); use :meth:`run` once.

    Events (routed) go to ``sink``; the records assembled from them go to each
    of ``record_sinks`` (the run writer of the store, say) and to ``reporter``.
    ``on_idle`` is called when the controller has caught up with its workers
    (nothing to read) after records were passed on: the moment for a record
    sink to write what it holds (the store), off the path of the results.
    """

    def __init__(
        self,
        backend: WorkerBackend,
        options: RunOptions,
        *,
        history: History = EMPTY_HISTORY,
        sink: Sink | None = None,
        reporter: RunReporter | None = None,
        stdin: StdinSource | None = None,
        record_sinks: Sequence[Callable[[TestRecord], None]] = (),
        on_idle: Callable[[], None] | None = None,
        work: WorkFactory = own_queue,
    ) -> None:
        self._backend = backend
        self._options = options
        self._on_idle = on_idle
        self._last_tick = 0.0
        self._running = False
        self._wakeable = threading.Lock()  # see _wake
        wanted = 1 if options.ordered else max(options.concurrency, 1)
        self._state = state = RunState.new(options.seed, wanted)
        self._desk = desk = DebugDesk(reporter if reporter is not None else NullReporter(), stdin)
        # Every part reports through the desk's reporter: it holds other workers'
        # reports while a test has the terminal.
        self._reporter = reporter = desk.reporter
        self._pool = pool = WorkerPool(backend, options, state, reporter, wanted=wanted)
        self._stop = stop = EarlyStop(state, pool, reporter)
        reruns = Reruns(options.rerun_failures)
        self._reruns = reruns
        self._tally = tally = Tally(
            state,
            reruns,
            reporter,
            maxfail=options.maxfail,
            record_sinks=record_sinks,
            halt=stop.halt,
        )
        self._sink = sink = sink if sink is not None else NullSink()
        self._collector = RecordCollector(tally.record)
        self._outlet = outlet = Outlet(sink, self._collector, reporter, backend.time_ns)
        self._listing = Listing(
            state,
            options,
            history,
            pool,
            outlet,
            reporter,
            halt=stop.halt,
            work=work,
            report=tally.record,
            wake=self._wake,
        )
        self._exits = ExitJudge(
            state,
            options,
            pool,
            outlet,
            reporter,
            deliver=self._on_events,
            now=backend.now,
            time_ns=backend.time_ns,
        )
        self._dispatcher = Dispatcher(
            state,
            options,
            pool,
            desk,
            observed_seconds=tally.observed_seconds,
            reruns_on=bool(reruns.limit),
        )

    # -- the run --------------------------------------------------------------------------

    def run(self) -> RunResult:
        self._running = True
        try:
            return self._run()
        finally:
            with self._wakeable:
                self._running = False

    def _wake(self) -> None:
        """Look at the work source again now (any thread); nothing once the run is
        over (its backend may be closed by then)."""
        with self._wakeable:
            if self._running:
                self._backend.post(Wake())

    def _run(self) -> RunResult:
        backend = self._backend
        state = self._state
        pool = self._pool
        reporter = self._reporter
        tally = self._tally
        started = backend.now()
        state.progress.started_at = started
        self._last_tick = started
        if self._options.only is not None:
            pool.wanted = min(pool.wanted, max(len(self._options.only), 1))
        for _ in range(pool.wanted):
            pool.start()
        while pool.alive() or state.phase is not Phase.STOPPING:
            messages: list[Message] = []
            if tally.records_due and self._on_idle is not None:
                messages = backend.wait(0.0)
                if not messages:  # caught up: the store writes while the workers run
                    tally.records_due = False
                    self._on_idle()
            if not messages:
                now = backend.now()
                deadline = self._next_deadline()
                messages = backend.wait(None if deadline is None else max(deadline - now, 0.0))
            for message in messages:
                self._handle(message)
            now = backend.now()
            pool.check_deadlines(now)
            if state.phase is Phase.RUNNING:
                self._dispatcher.dispatch(now)
            interval = reporter.tick_interval
            if interval is not None and now + EPSILON >= self._last_tick + interval:
                self._last_tick = now
                self._refresh_progress()
                reporter.tick()
        self._collector.close()
        tally.settle_retries()
        result = state.result
        result.wall_time = backend.now() - started
        self._refresh_progress()
        reporter.finished(result)
        return result

    def _next_deadline(self) -> float | None:
        """The nearest of the workers' deadlines, the next redraw of the progress,
        and when a shared queue may have work again."""
        deadline = self._pool.next_deadline()
        queue = self._state.queue
        if queue is not None and self._state.phase is Phase.RUNNING:
            wake = queue.wake_at(self._backend.now())
            if wake is not None:
                deadline = wake if deadline is None else min(deadline, wake)
        interval = self._reporter.tick_interval
        if interval is not None:
            tick = self._last_tick + interval
            deadline = tick if deadline is None else min(deadline, tick)
        return deadline

    def _refresh_progress(self) -> None:
        state = self._state
        queue = state.queue
        queued = queue.expected if queue is not None else 0.0
        state.progress.refresh(queued, self._pool.slots.values())
        share = queue.share() if queue is not None else None
        if share is not None:  # what this job took from the build so far, and its retries
            state.progress.total = share[0] + len(state.result.retried)

    def _handle(self, message: Message) -> None:
        slots = self._pool.slots
        if isinstance(message, Results):
            slot = slots.get(message.worker)
            if slot is not None and slot.alive:
                self._on_results(slot, slot.decoder.feed(message.data))
        elif isinstance(message, Output):
            slot = slots.get(message.worker)
            if slot is not None:
                self._on_output(slot, message.data)
        elif isinstance(message, Exited):
            slot = slots.get(message.worker)
            if slot is not None and slot.alive:
                self._on_results(slot, slot.decoder.close())
                self._on_exit(slot, message.returncode)
        elif isinstance(message, Interrupted):
            self._stop.interrupt(message)
        elif isinstance(message, StdinLine):
            self._desk.line(message.data, self._backend.now())
        # Wake: nothing to do but what the loop does after every message (dispatch).

    def _on_output(self, slot: Slot, data: bytes) -> None:
        """What a worker process wrote itself (not a test's captured output)."""
        now = self._backend.now()
        if self._desk.output(slot, data):
            slot.add_output(data, now)
            slot.shown = len(slot.output)
        elif slot.ever_ready and not slot.condemned and (slot.live or not slot.busy):
            self._outlet.flush_output(slot, more=data)  # passed on whole, as it comes
            slot.add_output(data, now)  # (only a tail is kept)
            slot.shown = len(slot.output)
        else:  # held: a starting worker's (until ready), a stack dump, a test's
            slot.add_output(data, now)

    def _on_exit(self, slot: Slot, returncode: int) -> None:
        reason = slot.stop_reason
        self._exits.judge(slot, returncode)
        self._desk.finished(slot, None, self._backend.now())
        slot.listing = False
        state = self._state
        if state.phase is Phase.STOPPING or state.interrupts:
            return
        self._pool.exited(slot, reason)
        if state.phase is Phase.LISTING:
            self._listing.lister_gone()
            self._pool.top_up()
        # While running, the dispatcher tops the pool up after handing out work, so
        # a worker is only started when no free one can take what is queued.

    # -- events from a worker -------------------------------------------------------------

    def _on_results(self, slot: Slot, events: Sequence[Event]) -> None:
        if not events or slot.discarding:
            return
        if slot.timed_out is not None:
            # Condemned for a timeout: hold everything until it is known whether the
            # test finished before the kill (see proctor.runner.worker_pool).
            slot.held.extend(events)
            timed_out = slot.timed_out
            if not slot.killed and any(
                event.test_id == timed_out and event.status > Status.INPROGRESS for event in events
            ):
                self._on_events(slot, self._pool.reprieve(slot))
            return
        self._on_events(slot, events)

    def _on_events(self, slot: Slot, events: Sequence[Event]) -> None:
        """Route a worker's events and follow its tests (the hot path: two events per
        test, so the common cases are written out here rather than in helpers)."""
        if not events:
            return
        now = self._backend.now()
        route = slot.route
        tagged = frozenset((slot.tag,))
        collect = self._collector.send
        sink = self._sink
        forward = None if type(sink) is NullSink else sink.send
        pending = slot.pending
        attempts = self._reruns.attempts  # (empty unless a test is being run again)
        new = _new_event
        for event in events:
            test_id, status, tags, runnable, name, content, eof, mime, route_code, stamp = event
            if test_id is None:
                if name == CONTROL_FILE:
                    try:
                        control = parse_control(event)
                    except ProtocolError as error:
                        self._reporter.notice(f"worker {slot.worker}: {error}")
                        continue
                    if control is not None:
                        self._on_control(slot, control, now)
                    continue
                routed = new(Event, (*event[:8], _prefix(route, route_code), stamp))
                self._outlet.send(routed)
                if content:
                    self._reporter.output(slot.worker, content)
                continue
            if status is _EXISTS and (slot.listing or slot.own_ids is not None):
                (self._listing.listed if slot.listing else slot.own_ids).append(test_id)  # type: ignore[union-attr]
                continue
            route_code = route if route_code is None else f"{route}/{route_code}"
            if status is not _NONE:
                tags = tags | tagged if tags else tagged
                if attempts and test_id in attempts:
                    tags = tags | {f"attempt-{attempts[test_id]}"}
            fields = (test_id, status, tags, runnable, name, content, eof, mime, route_code, stamp)
            routed = new(Event, fields)
            collect(routed)
            if forward is not None:
                forward(routed)
            if status is _INPROGRESS:
                if slot.current != test_id:
                    slot.current = test_id
                    slot.current_route = route_code
                    slot.begin_test(now)
            elif status is not _NONE and test_id in pending:
                self._finished_test(slot, test_id, now)
                if slot.discarding:
                    return  # stopped after Ctrl-C: the rest is not this run's

    def _finished_test(self, slot: Slot, test_id: str, now: float) -> None:
        slot.finish(test_id, now)
        self._state.progress.done += 1
        if len(slot.output) > slot.shown:
            self._outlet.flush_output(slot)
        if slot.at_desk:
            self._desk.finished(slot, test_id, now)
        if slot.stop_after_current:
            self._stop.after_test(slot)

    def _on_control(self, slot: Slot, control: Control, now: float) -> None:
        kind = control.kind
        if kind == "ready":
            if slot.killed:
                return
            if slot.condemned and slot.stop_reason is StopReason.STUCK_STARTING:
                # ready during the wait for its stacks: not stuck after all
                self._on_events(slot, self._pool.reprieve(slot))
            self._listing.ready_event(slot, control)
        elif kind == "done":
            if control.fields.get("op") != "list" or not self._listing.list_done(slot):
                self._tally.unreported(slot.batch_done())
        elif kind == "stdin":
            test_id = control.fields.get("test_id")
            self._desk.wants_input(slot, test_id if isinstance(test_id, str) else None)
        elif kind == "error":
            message = str(control.fields.get("message", "(no message)"))
            if not slot.ever_ready:
                if slot.state is SlotState.STARTING:
                    self._stop.load_failed(slot, message, self._backend.now())
                return  # a worker being stopped before it was ready: nothing to obey
            stops = control.fields.get("exit")
            if isinstance(stops, int) and not slot.listing:
                self._stop.worker_stops(slot, stops, message, now)
                return
            self._reporter.notice(f"worker {slot.worker} could not obey a command: {message}")
            if slot.listing:
                slot.listing = False
                self._listing.list_failed(message)
            else:
                self._tally.unreported(slot.batch_done())


def _prefix(route: str, route_code: str | None) -> str:
    return route if route_code is None else f"{route}/{route_code}"
