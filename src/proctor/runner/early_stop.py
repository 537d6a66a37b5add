"""Stopping a run before its tests are done: Ctrl-C and signals, halts, a suite that cannot load.

Ctrl-C (:class:`~proctor.runner.backend.Interrupted` with SIGINT): the first
drops the queue (reported "not run") and stops each worker as soon as its
running test finishes; what a worker sends after that test (the next test of
its batch, already started) is discarded, and the worker is killed. The second
Ctrl-C, or SIGTERM or SIGHUP, kills every worker at once.

A *halt* (``--maxfail``, ``pytest.exit()`` in a test, workers that collected
different tests) stops the run as pytest's session stops: like the first
Ctrl-C without the interrupt. The run is not marked interrupted: its exit
status is its tests' (a failure made it stop).

A worker that cannot load the suite (``error`` instead of ``ready``) stops the
run at once: nothing will go better with another worker.
"""

from __future__ import annotations

import signal

from proctor.runner.backend import Interrupted
from proctor.runner.report import RunReporter
from proctor.runner.run_state import Phase, RunState
from proctor.runner.slot import Slot, SlotState, StopReason
from proctor.runner.worker_pool import WorkerPool

__all__ = ["EarlyStop"]


class EarlyStop:
    """The ways a run stops early (see the module docstring)."""

    def __init__(self, state: RunState, pool: WorkerPool, reporter: RunReporter) -> None:
        self._state = state
        self._pool = pool
        self._reporter = reporter

    def interrupt(self, message: Interrupted) -> None:
        """Ctrl-C, or a signal that stops the run."""
        state = self._state
        state.interrupts += 1
        result = state.result
        result.interrupted = True
        if message.at_once and result.signal is None:
            result.signal = message.signal
        state.drop_queue()
        slots = self._pool.slots.values()
        busy = [slot for slot in slots if slot.alive and slot.busy]
        if state.interrupts == 1 and not message.at_once and busy and state.phase is Phase.RUNNING:
            self._reporter.notice(
                f"Interrupted: no new tests will start; waiting for {len(busy)} running "
                f"test{'s' if len(busy) > 1 else ''} to finish. Ctrl-C again stops them now."
            )
            self._pool.wind_down()
            return
        if message.at_once:
            name = signal.Signals(message.signal).name
            self._reporter.notice(f"Received {name}: stopping the workers now.")
        elif state.interrupts > 1:
            self._reporter.notice("Interrupted again: stopping the workers now.")
        for slot in slots:
            if slot.alive:
                self._pool.stop(slot, StopReason.INTERRUPT)
        state.phase = Phase.STOPPING

    def halt(self, reason: str) -> None:
        """Stop the run early, as pytest's session stops (``--maxfail``, ``pytest.exit()``).

        Like the first Ctrl-C without the interrupt: the queue is dropped (reported
        "not run"), idle workers are sent ``quit``, busy ones are stopped as soon
        as their running test finishes (the rest of their batches is not run), and
        no test is put back or rescheduled from then on.
        """
        state = self._state
        if state.halted is not None or state.interrupts:
            return
        state.halted = reason
        state.drop_queue()
        self._reporter.notice(f"{reason}: the run stops; tests not started are reported as not run")
        self._pool.wind_down()

    def after_test(self, slot: Slot) -> None:
        """``slot``'s running test finished after the first Ctrl-C (or a halt): stop
        the worker. Its other tests are not run. What it sends from now on (the next
        test of its batch, which it has already started) is not a result of this run."""
        self._state.result.not_run.extend(slot.take_pending())
        slot.discarding = True
        self._pool.stop(slot, StopReason.INTERRUPT)

    def worker_stops(self, slot: Slot, status: int, message: str, now: float) -> None:
        """The worker stops on its own (``pytest.exit()`` in a test): the tests it
        still held were not run, it exits with ``status`` after its teardown, and
        the run stops as pytest's session would (pytest-xdist stops every worker)."""
        self._state.result.not_run.extend(slot.take_pending())
        slot.exit_expected = status
        slot.stop_reason = StopReason.QUIT
        slot.state = SlotState.STOPPING
        slot.quit_at = now  # its teardown is under quit_wait, like any quitting worker's
        slot.quit_mark = len(slot.output)
        self.halt(message.removesuffix("; the worker stops"))

    def load_failed(self, slot: Slot, message: str, now: float) -> None:
        """A worker could not load the suite (it sent ``error`` instead of ``ready``):
        nothing will go better with another worker, so the run stops at once."""
        slot.load_error = message
        slot.stop_reason = StopReason.QUIT
        slot.state = SlotState.STOPPING  # it exits on its own; its output is still coming
        slot.quit_at = now
        self._state.drop_queue()
        self._pool.stop_all(StopReason.QUIT)
