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

What goes wrong, and what the controller does (details in docs/runner.md):

* a worker dies: the test it was running fails with the cause (exit code or
  signal name) and the worker's last output (faulthandler's traceback for a
  native crash); its other tests go back to the front of the queue; a new worker
  takes its place. Deaths that cannot be blamed on a test (at start-up, or
  while idle) are limited by ``max_worker_restarts``; when the limit is passed
  the run stops with an error instead of looping.
* a test runs over ``timeout``: the worker is asked to dump every thread's stack
  (``dump_stacks``), then killed; the test fails with that dump and the run goes
  on with a new worker. The clock stops while a test waits for debugger input.
* Ctrl-C (an :class:`~proctor.runner.backend.Interrupted` message): no new test
  starts; each worker is stopped as soon as its running test finishes; a second
  Ctrl-C kills the workers at once. Every finished result has been passed on
  already; the rest is reported as not run.
* a test asks for input (``stdin`` control event): the reporter hands it the
  terminal; lines from the ``StdinSource`` go to that worker until the test ends.
"""

from __future__ import annotations

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
    WorkerBackend,
)
from proctor.runner.casualty import (
    crash_text,
    describe_exit,
    failure_events,
    salvage_capture,
    timeout_text,
)
from proctor.runner.debugging import DebugDesk
from proctor.runner.history import EMPTY_HISTORY, History
from proctor.runner.options import RunOptions
from proctor.runner.planning import plan_run
from proctor.runner.protocol import (
    CONTROL_FILE,
    Control,
    ListTests,
    ProtocolError,
    Quit,
    RunTests,
    parse_control,
)
from proctor.runner.report import NullReporter, Progress, RunReporter, RunResult
from proctor.runner.schedule import WorkQueue
from proctor.runner.slot import Slot, SlotState, StopReason
from proctor.wire.event import NS_PER_SECOND, Event, Status
from proctor.wire.record import Attachment, TestRecord

__all__ = ["Controller", "RunOptions"]

_TEXT = "text/plain; charset=utf8"
_EPSILON = 1e-6  # a deadline this close counts as reached (float sums never quite meet)
_new_event = tuple.__new__


class _Phase:
    LISTING = "listing"
    RUNNING = "running"
    STOPPING = "stopping"


class Controller:
    """Runs one test run (see the module docstring); use :meth:`run` once.

    Events (routed) go to ``sink``; the records assembled from them go to each
    of ``record_sinks`` (the run writer of the store, say) and to ``reporter``.
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
    ) -> None:
        self._backend = backend
        self._options = options
        self._history = history
        self._sink = sink if sink is not None else NullSink()
        self._reporter = reporter if reporter is not None else NullReporter()
        self._record_sinks = tuple(record_sinks)
        self._slots: dict[int, Slot] = {}
        self._next_worker = 0
        self._workers_wanted = 1 if options.ordered else max(options.concurrency, 1)
        self._queue: WorkQueue | None = None
        self._phase = _Phase.LISTING
        self._listed: list[str] = []
        self._result = RunResult(seed=options.seed)
        self._progress = Progress(workers=self._workers_wanted, seed=options.seed)
        self._collector = RecordCollector(self._on_record)
        self._interrupts = 0
        self._unproductive_deaths = 0
        self._stop_deadline: float | None = None
        self._last_tick = 0.0
        self._desk = DebugDesk(self._reporter, stdin)
        self._last_death = ""
        self._observed_time = 0.0  # seconds of test time finished so far
        self._observed_count = 0
        self._replacing: list[Slot] = []  # dead workers not replaced yet, for notices

    # -- the run --------------------------------------------------------------------------

    def run(self) -> RunResult:
        backend = self._backend
        started = backend.now()
        self._progress.started_at = started
        self._last_tick = started
        if self._options.only is not None:
            self._workers_wanted = min(self._workers_wanted, max(len(self._options.only), 1))
        for _ in range(self._workers_wanted):
            self._start_worker()
        while self._slots_alive() or self._phase is not _Phase.STOPPING:
            now = backend.now()
            deadline = self._next_deadline(now)
            messages = backend.wait(None if deadline is None else max(deadline - now, 0.0))
            for message in messages:
                self._handle(message)
            now = backend.now()
            self._check_deadlines(now)
            if self._phase is _Phase.RUNNING:
                self._dispatch(now)
            interval = self._reporter.tick_interval
            if interval is not None and now + _EPSILON >= self._last_tick + interval:
                self._last_tick = now
                self._refresh_progress(now)
                self._reporter.tick()
        self._collector.close()
        result = self._result
        result.wall_time = backend.now() - started
        self._refresh_progress(backend.now())
        self._reporter.finished(result)
        return result

    def _slots_alive(self) -> list[Slot]:
        return [slot for slot in self._slots.values() if slot.alive]

    def _start_worker(self) -> Slot:
        worker = self._next_worker
        self._next_worker += 1
        slot = Slot(self._backend.start(worker), self._backend.now())
        self._slots[worker] = slot
        return slot

    def _handle(self, message: Message) -> None:
        if isinstance(message, Results):
            slot = self._slots.get(message.worker)
            if slot is not None and slot.alive:
                self._on_events(slot, slot.decoder.feed(message.data))
        elif isinstance(message, Output):
            slot = self._slots.get(message.worker)
            if slot is not None:
                slot.add_output(message.data, self._backend.now())
                if self._desk.output(slot, message.data):
                    slot.shown = len(slot.output)
                elif not slot.busy:
                    self._flush_output(slot)
        elif isinstance(message, Exited):
            slot = self._slots.get(message.worker)
            if slot is not None and slot.alive:
                self._on_events(slot, slot.decoder.close())
                self._on_exit(slot, message.returncode)
        elif isinstance(message, Interrupted):
            self._on_interrupt()
        elif isinstance(message, StdinLine):
            self._desk.line(message.data)

    # -- events from a worker -------------------------------------------------------------

    def _on_events(self, slot: Slot, events: Sequence[Event]) -> None:
        if not events:
            return
        now = self._backend.now()
        route = slot.route
        tagged = frozenset((slot.tag,))
        send = self._send
        for event in events:
            test_id = event.test_id
            if test_id is None:
                if event.file_name == CONTROL_FILE:
                    try:
                        control = parse_control(event)
                    except ProtocolError as error:
                        self._reporter.notice(f"worker {slot.worker}: {error}")
                        continue
                    if control is not None:
                        self._on_control(slot, control, now)
                    continue
                routed = _new_event(Event, (*event[:8], _prefix(route, event.route_code), event[9]))
                send(routed)
                if routed.file_bytes:
                    self._reporter.output(slot.worker, routed.file_bytes)
                continue
            status = event.status
            if status is Status.EXISTS and slot.listing:
                self._listed.append(test_id)
                continue
            route_code = route if event.route_code is None else f"{route}/{event.route_code}"
            if status is Status.NONE:
                routed = _new_event(Event, (*event[:8], route_code, event[9]))
                send(routed)
                continue
            tags = event.tags | tagged if event.tags else tagged
            routed = _new_event(Event, (test_id, status, tags, *event[3:8], route_code, event[9]))
            send(routed)
            if status is Status.INPROGRESS:
                if slot.current != test_id:
                    slot.current = test_id
                    slot.current_route = route_code
                    slot.begin_test(now)
            elif test_id in slot.pending:
                self._finished_test(slot, test_id, now)

    def _send(self, event: Event) -> None:
        self._collector.send(event)
        self._sink.send(event)

    def _finished_test(self, slot: Slot, test_id: str, now: float) -> None:
        slot.finish(test_id, now)
        self._progress.done += 1
        if len(slot.output) > slot.shown:
            self._flush_output(slot)
        if slot.debugging:
            self._desk.finished(slot, test_id, now)
        if slot.stop_after_current:
            self._result.not_run.extend(slot.take_pending())
            self._stop(slot, StopReason.INTERRUPT)

    def _on_control(self, slot: Slot, control: Control, now: float) -> None:
        kind = control.kind
        if kind == "ready":
            slot.state = SlotState.READY if slot.state is SlotState.STARTING else slot.state
            pid = control.fields.get("pid")
            if isinstance(pid, int):
                slot.pid = pid
            capture = control.fields.get("capture")
            if isinstance(capture, dict):
                slot.capture = {str(k): str(v) for k, v in capture.items() if isinstance(v, str)}
            self._flush_output(slot)
            self._on_ready(slot)
        elif kind == "done":
            if control.fields.get("op") == "list" and slot.listing:
                slot.listing = False
                self._listing_done(slot)
            else:
                unreported = slot.batch_done()
                if unreported:
                    self._result.unreported.extend(unreported)
                    self._progress.done += len(unreported)
        elif kind == "stdin":
            test_id = control.fields.get("test_id")
            self._desk.wants_input(slot, test_id if isinstance(test_id, str) else None)
        elif kind == "error":
            message = control.fields.get("message", "(no message)")
            self._reporter.notice(f"worker {slot.worker} could not obey a command: {message}")
            if slot.listing:
                slot.listing = False
                self._result.error = f"listing the tests failed: {message}"
                self._stop_all(StopReason.QUIT)
            else:
                unreported = slot.batch_done()
                self._result.unreported.extend(unreported)
                self._progress.done += len(unreported)

    def _on_ready(self, slot: Slot) -> None:
        if self._phase is _Phase.STOPPING or self._interrupts:
            self._stop(slot, StopReason.QUIT)
        elif self._phase is _Phase.LISTING and not any(s.listing for s in self._slots.values()):
            if self._options.only is not None:
                self._listing_done(slot)
            else:
                slot.listing = True
                slot.handle.send(ListTests())

    # -- selection and planning -----------------------------------------------------------

    def _listing_done(self, slot: Slot) -> None:
        chosen = plan_run(self._listed, self._options, self._history, self._workers_wanted)
        result = self._result
        result.discovered = chosen.discovered
        result.selected = ids = chosen.selected
        result.missing = chosen.missing
        if self._options.list_only or not ids:
            self._stop_all(StopReason.QUIT)
            return
        plan = chosen.plan
        self._queue = WorkQueue(plan)
        progress = self._progress
        progress.total = len(ids)
        progress.has_history = chosen.has_history
        progress.expected_left = plan.expected
        progress.workers = self._workers_wanted
        self._phase = _Phase.RUNNING
        for extra in sorted(self._slots.values(), key=lambda s: s.worker)[len(ids) :]:
            if extra.alive and not extra.busy:
                self._stop(extra, StopReason.QUIT)
        self._reporter.planned(progress)

    # -- handing out work -----------------------------------------------------------------

    def _dispatch(self, now: float) -> None:
        queue = self._queue
        if queue is None:
            return
        if queue and not self._interrupts:
            serving = [
                slot
                for slot in self._slots.values()
                if slot.state is SlotState.READY and not slot.listing
            ]
            serving.sort(key=lambda s: (s.pending_expected, s.worker))
            # Size batches for the whole pool: workers still starting join soon.
            workers = max(len(serving), self._workers_wanted)
            for slot in serving:
                if not queue:
                    break
                if not slot.pending or (
                    len(slot.batches) == 1 and self._left(slot) <= self._options.lookahead
                ):
                    batch = queue.take(workers)
                    if batch is None:
                        break
                    slot.add_batch(list(batch.ids), list(batch.costs), now)
                    slot.handle.send(RunTests(batch.ids))
            self._top_up()
        if queue:
            return
        if not any(slot.busy for slot in self._slots.values()):
            self._stop_all(StopReason.QUIT)
        else:
            # Nothing left to hand out: an idle worker may tear down now, while the
            # others finish (if one of those dies, a new worker takes its tests).
            for slot in self._slots.values():
                if slot.state is SlotState.READY and not slot.busy and not slot.listing:
                    self._stop(slot, StopReason.QUIT)

    def _left(self, slot: Slot) -> float:
        """Seconds of work ``slot`` still holds: from the history's estimates, or,
        without history, from how long this run's tests have taken so far."""
        if self._progress.has_history or self._observed_count < 10:
            return slot.pending_expected
        return len(slot.pending) * self._observed_time / self._observed_count

    def _starting(self) -> bool:
        return any(slot.state is SlotState.STARTING for slot in self._slots.values())

    # -- deaths, timeouts, stopping -------------------------------------------------------

    def _on_exit(self, slot: Slot, returncode: int) -> None:
        was = slot.state
        slot.state = SlotState.DEAD
        salvaged = salvage_capture(slot.capture)
        reason = slot.stop_reason
        self._desk.finished(slot, None, self._backend.now())
        if reason is StopReason.TIMEOUT and slot.timed_out is not None:
            text, before = timeout_text(slot, self._options.timeout)
            self._fail(slot, slot.timed_out, text, before, salvaged)
            self._reporter.notice(
                f"{slot.timed_out} timed out after {self._options.timeout:g}s; "
                f"worker {slot.worker} killed"
            )
            self._put_back(slot)
        elif reason is StopReason.INTERRUPT:
            self._result.not_run.extend(test_id for test_id in slot.take_pending())
        elif slot.busy:
            culprit = slot.culprit()
            assert culprit is not None
            self._fail(slot, culprit, crash_text(slot, culprit, returncode), b"", salvaged)
            self._reporter.notice(
                f"worker {slot.worker} {describe_exit(returncode)} while running {culprit}"
            )
            self._put_back(slot)
        elif not slot.killed and (reason is None or returncode != 0):
            self._flush_output(slot)
            if was is SlotState.STARTING:
                what = f"worker {slot.worker} failed to start: it {describe_exit(returncode)}"
            else:
                what = f"worker {slot.worker} {describe_exit(returncode)} while idle"
            tail = slot.output_since(0, 4096).decode("utf-8", "replace").rstrip()
            self._reporter.notice(what + (f"; its last output:\n{tail}" if tail else ""))
            if reason is None:
                self._unproductive_deaths += 1
                self._last_death = what + (f"\n{tail}" if tail else "")
        if slot.listing:
            slot.listing = False
        if self._phase is _Phase.STOPPING or self._interrupts:
            return
        if reason is None or reason is StopReason.TIMEOUT:
            self._replacing.append(slot)  # named when a worker starts in its place
        if self._phase is _Phase.LISTING:
            ready = [s for s in self._slots.values() if s.state is SlotState.READY]
            if ready and not any(s.listing for s in self._slots.values()):
                self._on_ready(ready[0])
            self._top_up()
        # While running, _dispatch tops the pool up after handing out work, so a
        # worker is only started when no free one can take what is queued.

    def _top_up(self) -> None:
        """Start workers while fewer than wanted are serving and there is work for them,
        unless deaths not caused by a test ran over the limit (then stop with an error)."""
        if self._phase is _Phase.STOPPING or self._interrupts:
            return
        active = sum(
            1 for s in self._slots.values() if s.alive and s.state is not SlotState.STOPPING
        )
        missing = self._workers_wanted - active
        if self._phase is _Phase.RUNNING:
            queued = self._queue.count if self._queue is not None else 0
            missing = min(missing, queued)
        if missing <= 0:
            return
        if self._unproductive_deaths > self._options.restart_limit:
            detail = self._last_death
            self._result.error = (
                f"stopped after {self._unproductive_deaths} worker deaths not caused by a test "
                f"(limit {self._options.restart_limit}, --max-worker-restarts)"
                + (f"; the last: {detail}" if detail else "")
            )
            if self._queue is not None:
                self._result.not_run.extend(self._queue.clear())
            self._stop_all(StopReason.QUIT)
            return
        for _ in range(missing):
            new = self._start_worker()
            self._result.worker_restarts += 1
            if self._replacing:
                dead = self._replacing.pop(0)
                self._reporter.notice(
                    f"worker {new.worker} started in place of worker {dead.worker}"
                )

    def _put_back(self, slot: Slot) -> None:
        rest = slot.take_pending()
        if not rest:
            return
        if self._queue is not None and not self._interrupts and self._phase is _Phase.RUNNING:
            self._queue.put_back(rest)
        else:
            self._result.not_run.extend(rest)

    def _on_interrupt(self) -> None:
        self._interrupts += 1
        result = self._result
        result.interrupted = True
        if self._queue is not None:
            result.not_run.extend(self._queue.clear())
        busy = [slot for slot in self._slots.values() if slot.alive and slot.busy]
        if self._interrupts == 1 and busy and self._phase is _Phase.RUNNING:
            self._reporter.notice(
                f"Interrupted: no new tests will start; waiting for {len(busy)} running "
                f"test{'s' if len(busy) > 1 else ''} to finish. Ctrl-C again stops them now."
            )
            for slot in self._slots.values():
                if not slot.alive:
                    continue
                if slot.busy:
                    slot.stop_after_current = True
                else:
                    self._stop(slot, StopReason.QUIT)
            return
        if self._interrupts > 1:
            self._reporter.notice("Interrupted again: stopping the workers now.")
        for slot in self._slots.values():
            if slot.alive:
                self._stop(slot, StopReason.INTERRUPT)
        self._phase = _Phase.STOPPING

    def _stop(self, slot: Slot, reason: StopReason) -> None:
        """Quit (politely, when it is serving) or kill a worker; its exit is then expected."""
        if not slot.alive:
            return
        if reason is StopReason.QUIT:
            if slot.state is SlotState.STOPPING:
                return
            slot.stop_reason = slot.stop_reason or reason
            if slot.state is SlotState.READY:
                slot.handle.send(Quit())
            else:
                self._kill(slot)
        else:
            if slot.stop_reason is not StopReason.TIMEOUT:
                slot.stop_reason = reason
            self._kill(slot)
        slot.state = SlotState.STOPPING

    def _kill(self, slot: Slot) -> None:
        slot.killed = True
        slot.handle.kill()

    def _stop_all(self, reason: StopReason) -> None:
        self._phase = _Phase.STOPPING
        if self._stop_deadline is None:
            self._stop_deadline = self._backend.now() + self._options.quit_wait
        for slot in self._slots.values():
            self._stop(slot, reason)

    def _next_deadline(self, now: float) -> float | None:
        deadlines: list[float] = []
        timeout = self._options.timeout
        for slot in self._slots.values():
            if not slot.alive:
                continue
            if slot.kill_at is not None:
                deadlines.append(slot.kill_time())
            elif timeout is not None and slot.busy and not slot.debugging:
                deadlines.append(slot.since + timeout)
        if self._phase is _Phase.STOPPING and self._stop_deadline is not None:
            deadlines.append(self._stop_deadline)
        interval = self._reporter.tick_interval
        if interval is not None:
            deadlines.append(self._last_tick + interval)
        return min(deadlines) if deadlines else None

    def _check_deadlines(self, now: float) -> None:
        timeout = self._options.timeout
        for slot in list(self._slots.values()):
            if not slot.alive:
                continue
            if slot.kill_at is not None:
                if now + _EPSILON >= slot.kill_time():
                    slot.kill_at = None
                    self._kill(slot)
            elif (
                timeout is not None
                and slot.busy
                and not slot.debugging
                and slot.timed_out is None
                and now + _EPSILON >= slot.since + timeout
            ):
                slot.timed_out = slot.culprit()
                slot.stop_reason = StopReason.TIMEOUT
                slot.state = SlotState.STOPPING
                slot.dump_mark = len(slot.output)
                slot.kill_at = now + self._options.dump_wait
                slot.handle.dump_stacks()
        if (
            self._phase is _Phase.STOPPING
            and self._stop_deadline is not None
            and now + _EPSILON >= self._stop_deadline
        ):
            self._stop_deadline = None
            for slot in self._slots.values():
                if slot.alive:
                    self._kill(slot)

    # -- debugger sessions ----------------------------------------------------------------

    def _fail(
        self, slot: Slot, test_id: str, text: str, output: bytes, salvaged: list[Attachment]
    ) -> None:
        """Fail a test the worker could not finish (see :mod:`proctor.runner.casualty`)."""
        now = self._backend.now()
        events = failure_events(
            slot,
            test_id,
            text,
            output=output,
            salvaged=salvaged,
            now=now,
            now_ns=self._backend.time_ns(),
        )
        for event in events:
            self._send(event)
        slot.finish(test_id, now)
        slot.shown = len(slot.output)
        self._progress.done += 1

    # -- results and output ---------------------------------------------------------------

    def _on_record(self, record: TestRecord) -> None:
        result = self._result
        status = record.status
        if record.start is not None and record.stop is not None:
            self._observed_time += (record.stop - record.start) / NS_PER_SECOND
            self._observed_count += 1
        if status is Status.SUCCESS:  # nearly every record: the short way
            result.counts[status] += 1
        elif status > Status.INPROGRESS:
            result.counts[status] += 1
            if status is Status.FAIL or status is Status.UXSUCCESS:
                result.failures.append(record)
                self._progress.failed += 1
        else:
            result.unfinished.append(record)
        for sink in self._record_sinks:
            sink(record)
        self._reporter.record(record)

    def _flush_output(self, slot: Slot) -> None:
        if len(slot.output) <= slot.shown:
            return
        data = bytes(slot.output[slot.shown :])
        slot.shown = len(slot.output)
        self._sink.send(
            Event(
                file_name="stderr",
                file_bytes=data,
                mime_type=_TEXT,
                route_code=slot.route,
                timestamp=self._backend.time_ns(),
            )
        )
        self._reporter.output(slot.worker, data)

    def _refresh_progress(self, now: float) -> None:
        queued = self._queue.expected if self._queue is not None else 0.0
        self._progress.refresh(queued, self._slots.values())


def _prefix(route: str, route_code: str | None) -> str:
    return route if route_code is None else f"{route}/{route_code}"
