"""What a worker's exit means, and what becomes of its tests.

:meth:`ExitJudge.judge` matches every exit with what the controller knew of
the worker:

* **killed for a timeout**: the test that was running at the kill fails with
  the stacks of every thread; if the results it sent before dying show the
  test had finished after all, nobody is blamed and the test it had started
  since runs again elsewhere;
* **stopped after Ctrl-C**: its unstarted tests are "not run" (the one it was
  running, if killed by a second Ctrl-C, is reported unfinished, once);
* **stuck starting** or **stuck quitting** (killed past ``start_wait`` or
  ``quit_wait``): a notice with its stacks; a worker that never got ready when
  none ever did stops the run;
* **could not load the suite** (an ``error`` instead of ``ready``): the run
  stops at once with its output, once;
* **stopped on its own** (an ``error`` with ``exit``: ``pytest.exit()`` in a
  test): the exit status it announced is no news; the tests it held were
  not run, and the run stops (:meth:`~proctor.runner.early_stop.EarlyStop.halt`);
* **died while busy** (segfault, ``os._exit``, OOM kill): the test it was
  running fails with the exit code or signal and its last output;
* **exited non-zero after quit**: a teardown crashed (``tearDownModule``,
  ``tearDownClass``, a session fixture): a failing ``worker-N teardown``
  entry (``runnable=False``) fails the run;
* **died while starting or idle**: a notice; such deaths are limited by
  ``max_worker_restarts`` (:meth:`~proctor.runner.worker_pool.WorkerPool.top_up`).

A test the worker could not finish is failed with events the controller makes
(:mod:`proctor.runner.casualty`). The tests a dead worker still held go back
to the front of the queue while the run runs normally, else they are "not run".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from proctor.runner.casualty import (
    crash_text,
    describe_exit,
    failure_events,
    salvage_capture,
    stuck_text,
    teardown_text,
    timeout_text,
)
from proctor.runner.options import RunOptions
from proctor.runner.outlet import Outlet
from proctor.runner.report import RunReporter
from proctor.runner.run_state import RunState
from proctor.runner.slot import OUTPUT_KEEP, Slot, SlotState, StopReason
from proctor.runner.worker_pool import WorkerPool
from proctor.wire.event import Event, Status
from proctor.wire.record import Attachment

__all__ = ["ExitJudge"]


class ExitJudge:
    """Worker exits (see the module docstring).

    ``deliver`` reports a worker's results as the controller does any it reads
    (the results a worker killed for a timeout sent before it died); ``now`` and
    ``time_ns`` are the run's clocks (the backend's).
    """

    def __init__(
        self,
        state: RunState,
        options: RunOptions,
        pool: WorkerPool,
        outlet: Outlet,
        reporter: RunReporter,
        *,
        deliver: Callable[[Slot, Sequence[Event]], None],
        now: Callable[[], float],
        time_ns: Callable[[], int],
    ) -> None:
        self._state = state
        self._options = options
        self._pool = pool
        self._outlet = outlet
        self._reporter = reporter
        self._deliver = deliver
        self._now = now
        self._time_ns = time_ns
        self._last_death_output = b""

    def judge(self, slot: Slot, returncode: int) -> None:
        """``slot``'s worker exited with ``returncode``: say what happened, fail
        the test it could not finish, and put its other tests back (or not run)."""
        was = slot.state
        reason = slot.stop_reason
        slot.state = SlotState.DEAD
        salvaged = salvage_capture(slot.capture)
        if slot.timed_out is not None:
            self._after_timeout(slot, returncode, salvaged)
        elif reason is StopReason.INTERRUPT:
            running = slot.current  # reported unfinished (its inprogress went out): not "not run"
            self._state.result.not_run.extend(t for t in slot.take_pending() if t != running)
        elif reason is StopReason.STUCK_STARTING or reason is StopReason.STUCK_QUITTING:
            self._stuck(slot, reason)
        elif slot.load_error is not None:
            self._unloadable(slot, slot.load_error)
        elif slot.exit_expected is not None:  # it said it would stop (pytest.exit())
            if returncode not in (0, slot.exit_expected) and not slot.killed:
                self._in_teardown(slot, returncode)
        elif slot.busy:
            self._while_busy(slot, returncode, salvaged)
        elif not slot.killed and returncode != 0 and reason is StopReason.QUIT and slot.ever_ready:
            self._in_teardown(slot, returncode)
        elif not slot.killed and (reason is None or returncode != 0):
            self._unexpected(slot, was, returncode)

    # -- the kinds of exit ----------------------------------------------------------------

    def _after_timeout(self, slot: Slot, returncode: int, salvaged: list[Attachment]) -> None:
        test_id = slot.timed_out
        assert test_id is not None
        held, slot.held = slot.held, []
        finished = {e.test_id for e in held if e.status > Status.INPROGRESS}
        if test_id in finished:
            # Its result was in the pipe when the worker died: it finished after all.
            slot.timed_out = None
            if not slot.killed:  # it died on its own during the wait: an ordinary death
                self._deliver(slot, held)
                if slot.busy:
                    self._while_busy(slot, returncode, salvaged)
                else:
                    self._unexpected(slot, SlotState.READY, returncode)
                return
            # The test it had started since was killed through no fault of its own: its
            # events are dropped (nothing of it was reported) and it runs again.
            started = {e.test_id for e in held if e.status is Status.INPROGRESS} - finished
            self._deliver(slot, [e for e in held if e.test_id not in started])
            again = slot.culprit()
            self._reporter.notice(
                f"worker {slot.worker} was killed because {test_id} ran over --timeout, but "
                "the test had just finished"
                + (
                    f"; {again} will run again"
                    if again is not None and self._state.rescheduling
                    else ""
                )
            )
            self._put_back(slot)
            return
        self._deliver(slot, held)  # what it sent of the test itself (never a final status)
        text, before = timeout_text(slot, self._options.timeout)
        self._fail(slot, test_id, text, before, salvaged)
        timeout = self._options.timeout
        self._reporter.notice(
            f"{test_id} timed out after {timeout:g}s; worker {slot.worker} killed"
            if timeout is not None
            else f"{test_id} timed out; worker {slot.worker} killed"
        )
        self._put_back(slot)

    def _stuck(self, slot: Slot, reason: StopReason) -> None:
        options = self._options
        starting = reason is StopReason.STUCK_STARTING
        wait = options.start_wait if starting else options.quit_wait
        if not starting:
            self._outlet.flush_output(slot, slot.dump_mark)
        text = stuck_text(slot, starting=starting, wait=wait)
        slot.shown = len(slot.output)
        if starting:
            self._put_back(slot)
            self._pool.unproductive_death(text)
            result = self._state.result
            if not any(s.ever_ready for s in self._pool.slots.values()) and result.error is None:
                result.error = text  # no worker ever got ready: it will not go better
                self._pool.stop_all(StopReason.QUIT)
                return
        self._reporter.notice(text)

    def _unloadable(self, slot: Slot, message: str) -> None:
        result = self._state.result
        if result.error is not None:
            return
        output = slot.output_since(0, OUTPUT_KEEP).decode("utf-8", "replace").rstrip()
        slot.shown = len(slot.output)
        result.error = f"the suite could not be loaded (worker {slot.worker}: {message})" + (
            f"; its output:\n{output}" if output else ""
        )

    def _while_busy(self, slot: Slot, returncode: int, salvaged: list[Attachment]) -> None:
        culprit = slot.culprit()
        assert culprit is not None
        self._fail(slot, culprit, crash_text(slot, culprit, returncode), b"", salvaged)
        self._reporter.notice(
            f"worker {slot.worker} {describe_exit(returncode)} while running {culprit}"
        )
        self._put_back(slot)

    def _in_teardown(self, slot: Slot, returncode: int) -> None:
        """A non-zero exit after ``quit``: a teardown crashed; that fails the run."""
        self._outlet.flush_output(slot)
        test_id = f"worker-{slot.worker} teardown"
        slot.since = slot.quit_at if slot.quit_at is not None else slot.since
        self._fail(slot, test_id, teardown_text(slot, returncode), b"", [], runnable=False)
        self._reporter.notice(
            f"worker {slot.worker} {describe_exit(returncode)} while tearing down after quit"
        )

    def _unexpected(self, slot: Slot, was: SlotState, returncode: int) -> None:
        """A death while starting or idle: no test to blame; such deaths are limited."""
        if was is SlotState.STARTING:
            what = f"worker {slot.worker} failed to start: it {describe_exit(returncode)}"
        else:
            what = f"worker {slot.worker} {describe_exit(returncode)} while idle"
        output = bytes(slot.output[slot.shown :])
        slot.shown = len(slot.output)
        tail = output[-4096:].decode("utf-8", "replace").rstrip()
        if tail and output == self._last_death_output:
            shown = f"{what} (the same output as the last)"
        else:
            shown = what + (f"; its last output:\n{tail}" if tail else "")
        if output:
            self._last_death_output = output
        self._reporter.notice(shown)
        if slot.stop_reason is None:
            self._pool.unproductive_death(what + (f"\n{tail}" if tail else ""))

    # -- the tests of a dead worker -------------------------------------------------------

    def _fail(
        self,
        slot: Slot,
        test_id: str,
        text: str,
        output: bytes,
        salvaged: list[Attachment],
        *,
        runnable: bool = True,
    ) -> None:
        """Fail a test the worker could not finish (see :mod:`proctor.runner.casualty`)."""
        now = self._now()
        events = failure_events(
            slot,
            test_id,
            text,
            output=output,
            salvaged=salvaged,
            now=now,
            now_ns=self._time_ns(),
            runnable=runnable,
        )
        for event in events:
            self._outlet.send(event)
        if slot.finish(test_id, now):
            self._state.progress.done += 1
        slot.shown = len(slot.output)

    def _put_back(self, slot: Slot) -> None:
        rest = slot.take_pending()
        if not rest:
            return
        state = self._state
        if state.rescheduling:
            assert state.queue is not None
            state.queue.put_back(rest)
        else:
            state.result.not_run.extend(rest)
