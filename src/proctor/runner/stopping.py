"""Stopping workers: deadlines, Ctrl-C and signals, quitting and killing.

Every worker is under a deadline while the controller waits on it:

* **starting**: ``start_wait`` seconds to report ``ready`` (an import that
  blocks would otherwise hang the run before the first test);
* **running a test**: ``--timeout``, its clock stopped while the test waits
  for a line a person is typing (see :mod:`proctor.runner.debugging`);
* **quitting**: ``quit_wait`` seconds to exit after ``quit`` (a hung teardown,
  a non-daemon thread a test left running).

Past a deadline the worker is *condemned*: asked for a dump of every thread's
stack, then killed once the dump has stopped arriving (``kill_at``). The dump
goes into the failure or notice that says what happened (see
:mod:`proctor.runner.exits`).

A test over ``--timeout`` may still finish during that wait: the worker's
results are held from the moment it is condemned, and if the final status of
the test arrives before the kill, the timeout is cancelled and the held results
are reported as usual (``_reprieve``); otherwise the test that was running at
the kill is the one failed, and nothing it sent after being condemned is
reported twice.

Ctrl-C (:class:`~proctor.runner.backend.Interrupted` with SIGINT): the first
drops the queue (reported "not run") and stops each worker as soon as its
running test finishes; what a worker sends after that test (the next test of
its batch, already started) is discarded, and the worker is killed. The second
Ctrl-C, or SIGTERM or SIGHUP, kills every worker at once.
"""

from __future__ import annotations

import signal

from proctor.runner.backend import Interrupted
from proctor.runner.core import EPSILON, ControllerCore, Phase
from proctor.runner.protocol import Quit
from proctor.runner.slot import Slot, SlotState, StopReason

__all__ = ["Stopping"]


class Stopping(ControllerCore):
    """Deadlines, interrupts, quitting and killing (see the module docstring)."""

    # -- Ctrl-C and signals ---------------------------------------------------------------

    def _on_interrupt(self, message: Interrupted) -> None:
        self._interrupts += 1
        result = self._result
        result.interrupted = True
        if message.at_once and result.signal is None:
            result.signal = message.signal
        if self._queue is not None:
            result.not_run.extend(self._queue.clear())
        busy = [slot for slot in self._slots.values() if slot.alive and slot.busy]
        if self._interrupts == 1 and not message.at_once and busy and self._phase is Phase.RUNNING:
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
        if message.at_once:
            name = signal.Signals(message.signal).name
            self._reporter.notice(f"Received {name}: stopping the workers now.")
        elif self._interrupts > 1:
            self._reporter.notice("Interrupted again: stopping the workers now.")
        for slot in self._slots.values():
            if slot.alive:
                self._stop(slot, StopReason.INTERRUPT)
        self._phase = Phase.STOPPING

    def _halt(self, reason: str) -> None:
        """Stop the run early, as pytest's session stops (``--maxfail``, ``pytest.exit()``).

        Like the first Ctrl-C without the interrupt: the queue is dropped (reported
        "not run"), idle workers are sent ``quit``, busy ones are stopped as soon
        as their running test finishes (the rest of their batches is not run), and
        no test is put back or rescheduled from then on. The run is not marked
        interrupted: its exit status is its tests' (a failure made it stop).
        """
        if self._halted is not None or self._interrupts:
            return
        self._halted = reason
        if self._queue is not None:
            self._result.not_run.extend(self._queue.clear())
        self._reporter.notice(f"{reason}: the run stops; tests not started are reported as not run")
        for slot in self._slots.values():
            if not slot.alive:
                continue
            if slot.busy:
                slot.stop_after_current = True
            else:
                self._stop(slot, StopReason.QUIT)

    def _stop_after_test(self, slot: Slot) -> None:
        """After the first Ctrl-C, ``slot``'s running test finished: stop the worker.

        Its other tests are not run. What it sends from now on (the next test of
        its batch, which it has already started) is not a result of this run.
        """
        self._result.not_run.extend(slot.take_pending())
        slot.discarding = True
        self._stop(slot, StopReason.INTERRUPT)

    # -- stopping -------------------------------------------------------------------------

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
                slot.quit_at = self._backend.now()
                slot.quit_mark = len(slot.output)
            else:
                self._kill(slot)
        else:
            if not slot.condemned:
                slot.stop_reason = reason
            self._kill(slot)
        slot.state = SlotState.STOPPING

    def _kill(self, slot: Slot) -> None:
        slot.killed = True
        slot.kill_at = None
        slot.handle.kill()

    def _stop_all(self, reason: StopReason) -> None:
        self._phase = Phase.STOPPING
        for slot in self._slots.values():
            self._stop(slot, reason)

    # -- deadlines ------------------------------------------------------------------------

    def _deadline_of(self, slot: Slot) -> float | None:
        """When the controller must act on ``slot`` next (None: nothing to wait for)."""
        if not slot.alive or slot.killed:
            return None
        if slot.kill_at is not None:
            return slot.kill_time()
        options = self._options
        if slot.state is SlotState.STARTING:
            return slot.started_at + options.start_wait
        deadline = self._quit_deadline(slot)
        timeout = options.timeout
        if timeout is not None and slot.busy and not slot.waiting_input:
            ends = slot.since + timeout
            deadline = ends if deadline is None else min(deadline, ends)
        return deadline

    def _quit_deadline(self, slot: Slot) -> float | None:
        """When a worker sent ``quit`` must have exited: ``quit_wait`` after it was
        sent, or after its last test ended if it was busy then."""
        if slot.quit_at is None or slot.busy:
            return None
        return max(slot.quit_at, slot.since) + self._options.quit_wait

    def _next_deadline(self) -> float | None:
        deadlines = [
            deadline
            for deadline in map(self._deadline_of, self._slots.values())
            if deadline is not None
        ]
        interval = self._reporter.tick_interval
        if interval is not None:
            deadlines.append(self._last_tick + interval)
        return min(deadlines) if deadlines else None

    def _check_deadlines(self, now: float) -> None:
        for slot in list(self._slots.values()):
            deadline = self._deadline_of(slot)
            if deadline is None or now + EPSILON < deadline:
                continue
            if slot.kill_at is not None:
                self._kill(slot)
            elif slot.state is SlotState.STARTING:
                self._condemn(slot, StopReason.STUCK_STARTING, now)
            elif (quit_by := self._quit_deadline(slot)) is not None and now + EPSILON >= quit_by:
                self._condemn(slot, StopReason.STUCK_QUITTING, now)
            else:
                slot.timed_out = slot.culprit()
                self._condemn(slot, StopReason.TIMEOUT, now)

    def _condemn(self, slot: Slot, reason: StopReason, now: float) -> None:
        """Ask for a stack dump; the worker is killed once it is in (see the module docstring)."""
        slot.reprieve = (slot.state, slot.stop_reason)
        slot.condemned = True
        slot.stop_reason = reason
        slot.state = SlotState.STOPPING
        slot.dump_mark = len(slot.output)
        slot.kill_at = now + self._options.dump_wait
        slot.handle.dump_stacks()

    def _reprieve(self, slot: Slot) -> None:
        """The condemned worker turned out not to be stuck (its test finished, or it
        became ready) before the kill: it goes on as before."""
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
        self._on_events(slot, held)
