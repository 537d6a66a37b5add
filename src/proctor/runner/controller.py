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

The controller is assembled from parts, one concern each (details in
docs/runner.md):

* :mod:`proctor.runner.stopping`: deadlines (``--timeout``, a worker stuck
  starting or quitting), Ctrl-C and signals, quitting and killing workers;
* :mod:`proctor.runner.exits`: what a worker's exit means for its tests (a
  crash fails the test it was running, a timeout fails it with every thread's
  stack, a teardown crash fails the run), and replacing dead workers;
* :mod:`proctor.runner.debugging`: a test that reads stdin gets the terminal
  (or the controller's input, when that is not a terminal);
* this module: the loop, events and control events from workers, listing,
  planning and handing out work, results and output.
"""

from __future__ import annotations

from collections.abc import Sequence

from proctor.events.sink import NullSink
from proctor.runner.backend import Exited, Interrupted, Message, Output, Results, StdinLine
from proctor.runner.core import EPSILON, Phase
from proctor.runner.exits import Exits
from proctor.runner.options import RunOptions
from proctor.runner.planning import plan_run
from proctor.runner.protocol import (
    CONTROL_FILE,
    Control,
    ListTests,
    ProtocolError,
    RunTests,
    parse_control,
)
from proctor.runner.report import RunResult
from proctor.runner.schedule import WorkQueue
from proctor.runner.slot import Slot, SlotState, StopReason
from proctor.store.model import RETRIED_TAG
from proctor.wire.event import NS_PER_SECOND, Event, Status, new_event
from proctor.wire.record import TestRecord

__all__ = ["Controller", "RunOptions"]

_new_event = new_event
_NONE = Status.NONE
_EXISTS = Status.EXISTS
_INPROGRESS = Status.INPROGRESS


class Controller(Exits):
    """Runs one test run (see the module docstring); use :meth:`run` once.

    Events (routed) go to ``sink``; the records assembled from them go to each
    of ``record_sinks`` (the run writer of the store, say) and to ``reporter``.
    ``on_idle`` is called when the controller has caught up with its workers
    (nothing to read) after records were passed on: the moment for a record
    sink to write what it holds (the store), off the path of the results.
    """

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
        while self._slots_alive() or self._phase is not Phase.STOPPING:
            messages: list[Message] = []
            if self._idle_due and self._on_idle is not None:
                messages = backend.wait(0.0)
                if not messages:  # caught up: the store writes while the workers run
                    self._idle_due = False
                    self._on_idle()
            if not messages:
                now = backend.now()
                deadline = self._next_deadline()
                messages = backend.wait(None if deadline is None else max(deadline - now, 0.0))
            for message in messages:
                self._handle(message)
            now = backend.now()
            self._check_deadlines(now)
            if self._phase is Phase.RUNNING:
                self._dispatch(now)
            interval = self._reporter.tick_interval
            if interval is not None and now + EPSILON >= self._last_tick + interval:
                self._last_tick = now
                self._refresh_progress()
                self._reporter.tick()
        self._collector.close()
        self._settle_retries()
        result = self._result
        result.wall_time = backend.now() - started
        self._refresh_progress()
        self._reporter.finished(result)
        return result

    def _slots_alive(self) -> list[Slot]:
        return [slot for slot in self._slots.values() if slot.alive]

    def _handle(self, message: Message) -> None:
        if isinstance(message, Results):
            slot = self._slots.get(message.worker)
            if slot is not None and slot.alive:
                self._on_results(slot, slot.decoder.feed(message.data))
        elif isinstance(message, Output):
            slot = self._slots.get(message.worker)
            if slot is not None:
                data = message.data
                if self._desk.output(slot, data):
                    slot.add_output(data, self._backend.now())
                    slot.shown = len(slot.output)
                elif slot.ever_ready and not slot.condemned and (slot.live or not slot.busy):
                    self._flush_output(slot, more=data)  # passed on whole, as it comes
                    slot.add_output(data, self._backend.now())  # (only a tail is kept)
                    slot.shown = len(slot.output)
                else:  # held: a starting worker's (until ready), a stack dump, a test's
                    slot.add_output(data, self._backend.now())
        elif isinstance(message, Exited):
            slot = self._slots.get(message.worker)
            if slot is not None and slot.alive:
                self._on_results(slot, slot.decoder.close())
                self._on_exit(slot, message.returncode)
        elif isinstance(message, Interrupted):
            self._on_interrupt(message)
        elif isinstance(message, StdinLine):
            self._desk.line(message.data, self._backend.now())

    # -- events from a worker -------------------------------------------------------------

    def _on_results(self, slot: Slot, events: Sequence[Event]) -> None:
        if not events or slot.discarding:
            return
        if slot.timed_out is not None:
            # Condemned for a timeout: hold everything until it is known whether the
            # test finished before the kill (see proctor.runner.stopping).
            slot.held.extend(events)
            timed_out = slot.timed_out
            if not slot.killed and any(
                event.test_id == timed_out and event.status > Status.INPROGRESS for event in events
            ):
                self._reprieve(slot)
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
                self._send(routed)
                if content:
                    self._reporter.output(slot.worker, content)
                continue
            if status is _EXISTS and (slot.listing or slot.own_ids is not None):
                (self._listed if slot.listing else slot.own_ids).append(test_id)  # type: ignore[union-attr]
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
        self._progress.done += 1
        if len(slot.output) > slot.shown:
            self._flush_output(slot)
        if slot.at_desk:
            self._desk.finished(slot, test_id, now)
        if slot.stop_after_current:
            self._stop_after_test(slot)

    def _on_control(self, slot: Slot, control: Control, now: float) -> None:
        kind = control.kind
        if kind == "ready":
            self._on_ready_event(slot, control)
        elif kind == "done":
            if control.fields.get("op") == "list" and slot.listing:
                slot.listing = False
                if self._phase is Phase.LISTING and not self._interrupts:
                    self._listing_done(slot)
            elif control.fields.get("op") == "list" and slot.own_ids is not None:
                slot.own_ids_done = True
                if self._phase is not Phase.LISTING:  # else _listing_done compares
                    self._compare_ids(slot)
            else:
                unreported = slot.batch_done()
                if unreported:
                    self._result.unreported.extend(unreported)
                    self._progress.done += len(unreported)
        elif kind == "stdin":
            test_id = control.fields.get("test_id")
            self._desk.wants_input(slot, test_id if isinstance(test_id, str) else None)
        elif kind == "error":
            message = str(control.fields.get("message", "(no message)"))
            if not slot.ever_ready:
                if slot.state is SlotState.STARTING:
                    self._load_failed(slot, message)
                return  # a worker being stopped before it was ready: nothing to obey
            stops = control.fields.get("exit")
            if isinstance(stops, int) and not slot.listing:
                self._worker_stops(slot, stops, message, now)
                return
            self._reporter.notice(f"worker {slot.worker} could not obey a command: {message}")
            if slot.listing:
                slot.listing = False
                self._result.error = f"listing the tests failed: {message}"
                self._stop_all(StopReason.QUIT)
            else:
                unreported = slot.batch_done()
                self._result.unreported.extend(unreported)
                self._progress.done += len(unreported)

    def _worker_stops(self, slot: Slot, status: int, message: str, now: float) -> None:
        """The worker stops on its own (``pytest.exit()`` in a test): the tests it
        still held were not run, it exits with ``status`` after its teardown, and
        the run stops as pytest's session would (pytest-xdist stops every worker)."""
        self._result.not_run.extend(slot.take_pending())
        slot.exit_expected = status
        slot.stop_reason = StopReason.QUIT
        slot.state = SlotState.STOPPING
        slot.quit_at = now  # its teardown is under quit_wait, like any quitting worker's
        slot.quit_mark = len(slot.output)
        self._halt(message.removesuffix("; the worker stops"))

    def _on_ready_event(self, slot: Slot, control: Control) -> None:
        if slot.killed:
            return
        if slot.condemned and slot.stop_reason is StopReason.STUCK_STARTING:
            self._reprieve(slot)  # ready during the wait for its stacks: not stuck after all
        fields = control.fields
        if slot.state is SlotState.STARTING:
            slot.state = SlotState.READY
        slot.ever_ready = True
        pid = fields.get("pid")
        if isinstance(pid, int):
            slot.pid = pid
        slot.route = getattr(slot.handle, "route", slot.route)  # a remote one's: HOST:N
        capture = fields.get("capture")
        if isinstance(capture, dict):
            slot.capture = {str(k): str(v) for k, v in capture.items() if isinstance(v, str)}
        slot.live = "capture" in fields and capture is None  # --no-capture
        count = fields.get("count")
        digest = fields.get("digest")
        if isinstance(digest, str) and self._options.only is None:
            if self._digest is None:
                self._digest = (slot.worker, digest)  # the first ready worker lists
            elif digest != self._digest[1]:
                self._flush_output(slot)
                slot.own_ids = []  # what it collected, to compare (it gets no work meanwhile)
                slot.handle.send(ListTests())
                return
        elif isinstance(count, int):
            self._compare_counts(slot, count)
        self._flush_output(slot)
        self._on_ready(slot)

    def _compare_ids(self, slot: Slot) -> None:
        """A worker whose ids' digest differed from the lister's has listed its own:
        if the two collections hold different ids, the run fails at once, naming
        them (as pytest-xdist does): ids that depend on the process (a time or a pid
        in a parametrize id) would otherwise fail as "not found" here and there."""
        if not slot.own_ids_done or slot.own_ids is None:
            return
        theirs, slot.own_ids, slot.own_ids_done = slot.own_ids, None, False
        listed = set(self._listed)
        mine = set(theirs)
        if mine == listed:  # the same tests in another order: harmless here
            self._on_ready(slot)
            return
        lister = self._digest[0] if self._digest is not None else "?"
        self._result.error = different_ids(
            (lister, sorted(listed - mine)), (slot.worker, sorted(mine - listed))
        )
        self._halt(f"worker {slot.worker} collected different tests than worker {lister}")
        self._stop(slot, StopReason.QUIT)

    def _compare_counts(self, slot: Slot, count: int) -> None:
        """Warn (once) when workers report different numbers of tests: their
        discovery differs, so a test one of them lacks fails as not found there."""
        counts = self._ready_counts
        first = next(iter(counts.items()), None)
        counts[slot.worker] = count
        if first is not None and first[1] != count and not self._counts_differ:
            self._counts_differ = True
            self._reporter.notice(
                f"the workers collected different suites: worker {first[0]} found {first[1]} "
                f"tests, worker {slot.worker} found {count} (discovery that depends on time, "
                "randomness or the order of imports?); a test a worker lacks fails there as "
                "not found"
            )

    def _load_failed(self, slot: Slot, message: str) -> None:
        """A worker could not load the suite (it sent ``error`` instead of ``ready``):
        nothing will go better with another worker, so the run stops at once."""
        slot.load_error = message
        slot.stop_reason = StopReason.QUIT
        slot.state = SlotState.STOPPING  # it exits on its own; its output is still coming
        slot.quit_at = self._backend.now()
        if self._queue is not None:
            self._result.not_run.extend(self._queue.clear())
        self._stop_all(StopReason.QUIT)

    def _on_ready(self, slot: Slot) -> None:
        if self._phase is Phase.STOPPING or self._interrupts:
            self._stop(slot, StopReason.QUIT)
        elif self._phase is Phase.LISTING and not any(s.listing for s in self._slots.values()):
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
        for other in list(self._slots.values()):
            self._compare_ids(other)  # workers that listed their own, differing, ids
        if self._options.list_only or not ids or self._halted is not None:
            self._stop_all(StopReason.QUIT)
            return
        plan = chosen.plan
        self._queue = WorkQueue(plan)
        self._workers_wanted = min(self._workers_wanted, len(ids))
        progress = self._progress
        progress.total = len(ids)
        progress.has_history = chosen.has_history
        progress.expected_left = plan.expected
        progress.workers = self._workers_wanted
        self._phase = Phase.RUNNING
        for extra in sorted(self._slots.values(), key=lambda s: s.worker)[len(ids) :]:
            if extra.alive and not extra.busy:
                self._stop(extra, StopReason.QUIT)
        self._reporter.planned(progress)

    # -- handing out work -----------------------------------------------------------------

    def _dispatch(self, now: float) -> None:
        queue = self._queue
        if queue is None:
            return
        if queue and not self._interrupts and self._halted is None:
            serving = [
                slot
                for slot in self._slots.values()
                if slot.state is SlotState.READY and not slot.listing and slot.own_ids is None
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
            # Nothing left to hand out: idle workers tear down now, while the others
            # finish (if one of those dies, a new worker takes its tests). When no input
            # can come for a test that reads stdin (a quit waiting in a worker's pipe is
            # end of input for it), busy workers are sent quit too: they obey it after
            # their batches, so their teardown overlaps the handling of their results;
            # not with --rerun-failures: a failure brings work back, for them (a new
            # worker beside a quitting one would run more at once than asked).
            early = self._desk.input_over and not self._reruns.limit
            for slot in self._slots.values():
                if slot.state is SlotState.READY and not slot.listing and (early or not slot.busy):
                    self._stop(slot, StopReason.QUIT)

    def _left(self, slot: Slot) -> float:
        """Seconds of work ``slot`` still holds: from the history's estimates, or,
        without history, from how long this run's tests have taken so far."""
        if self._progress.has_history or self._observed_count < 10:
            return slot.pending_expected
        return len(slot.pending) * self._observed_time / self._observed_count

    # -- results --------------------------------------------------------------------------

    def _on_record(self, record: TestRecord) -> None:
        result = self._result
        status = record.status
        reruns = self._reruns
        if (reruns.limit and status is not Status.SUCCESS) or reruns.attempts:
            record = reruns.tagged(record)
            if reruns.passed_again(record):
                result.flaky.append(record.test_id)
            elif self._will_rerun() and (attempt := reruns.retry(record)) is not None:
                self._retry(record, attempt)
                return
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
        self._idle_due = True
        self._reporter.record(record)
        maxfail = self._options.maxfail
        if maxfail is not None and self._progress.failed >= maxfail and self._halted is None:
            failures = f"{maxfail} failure{'s' if maxfail > 1 else ''}"
            self._halt(f"stopping after {failures} (--maxfail {maxfail})")

    def _retry(self, record: TestRecord, attempt: int) -> None:
        """Run a failed test again (--rerun-failures): its record goes to the sinks
        and the view, not into the outcome; the next attempt goes first in the queue."""
        assert self._queue is not None
        record = record._replace(tags=record.tags | {RETRIED_TAG})
        self._result.retried.append(record)
        self._queue.put_back([record.test_id])
        self._progress.total += 1
        for sink in self._record_sinks:
            sink(record)
        self._idle_due = True
        self._reporter.record(record)
        limit = self._reruns.limit + 1
        self._reporter.notice(f"{record.test_id} failed; running it again ({attempt} of {limit})")

    def _settle_retries(self) -> None:
        """Retried tests whose next attempt never ran (the run stopped first): the
        failed attempt is their outcome, and they are not "not run"."""
        waiting = self._reruns.waiting
        if not waiting:
            return
        result = self._result
        result.not_run = [test_id for test_id in result.not_run if test_id not in waiting]
        for record in waiting.values():
            result.counts[record.status] += 1
            result.failures.append(record)
        waiting.clear()

    def _refresh_progress(self) -> None:
        queued = self._queue.expected if self._queue is not None else 0.0
        self._progress.refresh(queued, self._slots.values())


def different_ids(first: tuple[object, list[str]], second: tuple[object, list[str]]) -> str:
    """The error of a run whose workers collected different ids (at most 10 of each)."""
    parts = []
    for worker, only in (first, second):
        if only:
            shown = "\n".join(f"  {test_id!r}" for test_id in only[:10])
            more = f"\n  ... and {len(only) - 10} more" if len(only) > 10 else ""
            parts.append(f"only worker {worker} collected {len(only)}:\n{shown}{more}")
    return (
        f"the workers collected different tests (worker {first[0]} and worker {second[0]}), "
        "so the run stopped: test ids must not depend on the process (a time, a pid or a "
        "random value in a parametrize id, an import that differs between processes).\n"
        + "\n".join(parts)
    )


def _prefix(route: str, route_code: str | None) -> str:
    return route if route_code is None else f"{route}/{route_code}"
