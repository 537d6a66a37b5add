"""The workers of a run: starting and replacing them, their deadlines, quitting and killing.

A :class:`WorkerPool` owns the run's :class:`~proctor.runner.slot.Slot` per
worker. Every worker is under a deadline while the controller waits on it:

* **starting**: ``start_wait`` seconds to report ``ready`` (an import that
  blocks would otherwise hang the run before the first test);
* **running a test**: ``--timeout``, its clock stopped while the test waits
  for a line a person is typing (see :mod:`proctor.runner.debugging`);
* **quitting**: ``quit_wait`` seconds to exit after ``quit`` (a hung teardown,
  a non-daemon thread a test left running), counted from the end of its last
  test when it was sent ``quit`` while busy.

Past a deadline the worker is *condemned*: asked for a dump of every thread's
stack, then killed once the dump has stopped arriving (``kill_at``). The dump
goes into the failure or notice that says what happened (see
:mod:`proctor.runner.exit_judge`).

A test over ``--timeout`` may still finish during that wait: the controller
holds the worker's results from the moment it is condemned, and if the final
status of the test arrives before the kill, :meth:`WorkerPool.reprieve` cancels
the timeout and hands the held results back to be reported as usual; otherwise
the test that was running at the kill is the one failed, and nothing it sent
after being condemned is reported twice.

A dead worker is replaced (:meth:`WorkerPool.top_up`) while there is work for
it; deaths not caused by a test (a worker that cannot start) are limited by
``max_worker_restarts``, past which the run stops with an error.
"""

from __future__ import annotations

from proctor.runner.backend import WorkerBackend
from proctor.runner.options import RunOptions
from proctor.runner.protocol import Quit
from proctor.runner.report import RunReporter
from proctor.runner.run_state import Phase, RunState
from proctor.runner.slot import Slot, SlotState, StopReason
from proctor.wire.event import Event

__all__ = ["EPSILON", "WorkerPool"]

EPSILON = 1e-6
"""A deadline this close counts as reached (float sums never quite meet)."""


class WorkerPool:
    """The run's workers (see the module docstring).

    ``wanted`` is how many workers the run keeps serving: ``--concurrency`` at
    first, at most one per selected test once the tests are planned.
    """

    def __init__(
        self,
        backend: WorkerBackend,
        options: RunOptions,
        state: RunState,
        reporter: RunReporter,
        *,
        wanted: int,
    ) -> None:
        self._backend = backend
        self._options = options
        self._state = state
        self._reporter = reporter
        self.slots: dict[int, Slot] = {}
        self.wanted = wanted
        self._next_worker = 0
        self._deaths = 0  # deaths not caused by a test
        self._last_death = ""
        self._replacing: list[Slot] = []  # dead workers not replaced yet, for notices

    # -- starting -------------------------------------------------------------------------

    def start(self) -> Slot:
        """Start the next worker."""
        worker = self._next_worker
        self._next_worker += 1
        slot = Slot(self._backend.start(worker), self._backend.now())
        self.slots[worker] = slot
        return slot

    def alive(self) -> list[Slot]:
        return [slot for slot in self.slots.values() if slot.alive]

    def unproductive_death(self, what: str) -> None:
        """A worker died, or was killed, without a test to blame (it could not start)."""
        self._deaths += 1
        self._last_death = what

    def exited(self, slot: Slot, reason: StopReason | None) -> None:
        """``slot``'s worker is gone while the run goes on: the worker started in
        its place is named as its replacement, unless it was stopped on purpose."""
        if reason is None or reason is StopReason.TIMEOUT or reason is StopReason.STUCK_STARTING:
            self._replacing.append(slot)

    def top_up(self) -> None:
        """Start workers while fewer than wanted are serving and there is work for them,
        unless deaths not caused by a test ran over the limit (then stop with an error)."""
        state = self._state
        if state.winding_down:
            return
        active = sum(
            1 for s in self.slots.values() if s.alive and s.state is not SlotState.STOPPING
        )
        missing = self.wanted - active
        if state.phase is Phase.RUNNING:
            queued = state.queue.count if state.queue is not None else 0
            missing = min(missing, queued)
        if missing <= 0:
            return
        limit = self._options.restart_limit
        if self._deaths > limit:
            detail = self._last_death
            state.result.error = (
                f"stopped after {self._deaths} worker deaths not caused by a test "
                f"(limit {limit}, --max-worker-restarts)"
                + (f"; the last: {detail}" if detail else "")
            )
            state.drop_queue()
            self.stop_all(StopReason.QUIT)
            return
        for _ in range(missing):
            new = self.start()
            state.result.worker_restarts += 1
            if self._replacing:
                dead = self._replacing.pop(0)
                self._reporter.notice(
                    f"worker {new.worker} started in place of worker {dead.worker}"
                )

    # -- stopping -------------------------------------------------------------------------

    def stop(self, slot: Slot, reason: StopReason) -> None:
        """Quit (politely, when it is serving) or kill a worker; its exit is then expected."""
        if not slot.alive:
            return
        if reason is StopReason.QUIT:
            if slot.state is SlotState.STOPPING:
                return
            slot.stop_reason = slot.stop_reason or reason
            if slot.state is SlotState.READY:
                slot.handle.send(Quit())
                slot.quit_at = self._backend.now()
                slot.quit_mark = len(slot.output)
            else:
                self.kill(slot)
        else:
            if not slot.condemned:
                slot.stop_reason = reason
            self.kill(slot)
        slot.state = SlotState.STOPPING

    def kill(self, slot: Slot) -> None:
        slot.killed = True
        slot.kill_at = None
        slot.handle.kill()

    def stop_all(self, reason: StopReason) -> None:
        """The run is stopping: every worker is stopped for ``reason``."""
        self._state.phase = Phase.STOPPING
        for slot in self.slots.values():
            self.stop(slot, reason)

    def wind_down(self) -> None:
        """No test starts from now on: idle workers quit, busy ones stop once
        their running test has finished (see :mod:`proctor.runner.early_stop`)."""
        for slot in self.slots.values():
            if not slot.alive:
                continue
            if slot.busy:
                slot.stop_after_current = True
            else:
                self.stop(slot, StopReason.QUIT)

    # -- deadlines ------------------------------------------------------------------------

    def deadline_of(self, slot: Slot) -> float | None:
        """When the controller must act on ``slot`` next (None: nothing to wait for)."""
        if not slot.alive or slot.killed:
            return None
        if slot.kill_at is not None:
            return slot.kill_time()
        options = self._options
        if slot.state is SlotState.STARTING:
            return slot.started_at + options.start_wait
        deadline = self.quit_deadline(slot)
        timeout = options.timeout
        if timeout is not None and slot.busy and not slot.waiting_input:
            ends = slot.since + timeout
            deadline = ends if deadline is None else min(deadline, ends)
        return deadline

    def quit_deadline(self, slot: Slot) -> float | None:
        """When a worker sent ``quit`` must have exited: ``quit_wait`` after it was
        sent, or after its last test ended if it was busy then."""
        if slot.quit_at is None or slot.busy:
            return None
        return max(slot.quit_at, slot.since) + self._options.quit_wait

    def next_deadline(self) -> float | None:
        """The nearest deadline of any worker (None: none is under one)."""
        deadlines = [
            deadline
            for deadline in map(self.deadline_of, self.slots.values())
            if deadline is not None
        ]
        return min(deadlines) if deadlines else None

    def check_deadlines(self, now: float) -> None:
        """Act on every deadline reached by ``now``: condemn or kill."""
        for slot in list(self.slots.values()):
            deadline = self.deadline_of(slot)
            if deadline is None or now + EPSILON < deadline:
                continue
            if slot.kill_at is not None:
                self.kill(slot)
            elif slot.state is SlotState.STARTING:
                self.condemn(slot, StopReason.STUCK_STARTING, now)
            elif (quit_by := self.quit_deadline(slot)) is not None and now + EPSILON >= quit_by:
                self.condemn(slot, StopReason.STUCK_QUITTING, now)
            else:
                slot.timed_out = slot.culprit()
                self.condemn(slot, StopReason.TIMEOUT, now)

    def condemn(self, slot: Slot, reason: StopReason, now: float) -> None:
        """Ask for a stack dump; the worker is killed once it is in (see the module docstring)."""
        slot.reprieve = (slot.state, slot.stop_reason)
        slot.condemned = True
        slot.stop_reason = reason
        slot.state = SlotState.STOPPING
        slot.dump_mark = len(slot.output)
        slot.kill_at = now + self._options.dump_wait
        slot.handle.dump_stacks()

    def reprieve(self, slot: Slot) -> list[Event]:
        """The condemned worker turned out not to be stuck (its test finished, or it
        became ready) before the kill: it goes on as before. Returns the results
        held meanwhile, to be reported now."""
        slot.state, slot.stop_reason = slot.reprieve
        slot.condemned = False
        slot.kill_at = None
        slot.dump_mark = None
        test_id, slot.timed_out = slot.timed_out, None
        held, slot.held = slot.held, []
        if test_id is not None:
            timeout = self._options.timeout
            self._reporter.notice(
                f"{test_id} finished just after its --timeout ({timeout:g}s), before worker "
                f"{slot.worker} was killed: the worker goes on (the stacks it was asked for "
                "may follow in its output)"
            )
        return held
