"""What a worker's exit means, and what becomes of its tests.

Every exit is matched with what the controller knew of the worker:

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
  not run, and the run stops (``Stopping._halt``);
* **died while busy** (segfault, ``os._exit``, OOM kill): the test it was
  running fails with the exit code or signal and its last output;
* **exited non-zero after quit**: a teardown crashed (``tearDownModule``,
  ``tearDownClass``, a session fixture): a failing ``worker-N teardown``
  entry (``runnable=False``) fails the run;
* **died while starting or idle**: a notice; such deaths are limited by
  ``max_worker_restarts``.

The tests a dead worker still held go back to the front of the queue, and
:meth:`Exits._top_up` starts a worker in its place when there is work for it.
"""

from __future__ import annotations

from proctor.runner.casualty import (
    crash_text,
    describe_exit,
    failure_events,
    salvage_capture,
    stuck_text,
    teardown_text,
    timeout_text,
)
from proctor.runner.core import Phase
from proctor.runner.slot import OUTPUT_KEEP, Slot, SlotState, StopReason
from proctor.runner.stopping import Stopping
from proctor.wire.event import Status
from proctor.wire.record import Attachment

__all__ = ["Exits"]


class Exits(Stopping):
    """Worker exits (see the module docstring)."""

    def _on_exit(self, slot: Slot, returncode: int) -> None:
        was = slot.state
        reason = slot.stop_reason
        slot.state = SlotState.DEAD
        salvaged = salvage_capture(slot.capture)
        if slot.timed_out is not None:
            self._exit_after_timeout(slot, returncode, salvaged)
        elif reason is StopReason.INTERRUPT:
            running = slot.current  # reported unfinished (its inprogress went out): not "not run"
            self._result.not_run.extend(t for t in slot.take_pending() if t != running)
        elif reason is StopReason.STUCK_STARTING or reason is StopReason.STUCK_QUITTING:
            self._exit_stuck(slot, reason)
        elif slot.load_error is not None:
            self._exit_unloadable(slot, slot.load_error)
        elif slot.exit_expected is not None:  # it said it would stop (pytest.exit())
            if returncode not in (0, slot.exit_expected) and not slot.killed:
                self._exit_in_teardown(slot, returncode)
        elif slot.busy:
            self._exit_while_busy(slot, returncode, salvaged)
        elif not slot.killed and returncode != 0 and reason is StopReason.QUIT and slot.ever_ready:
            self._exit_in_teardown(slot, returncode)
        elif not slot.killed and (reason is None or returncode != 0):
            self._exit_unexpected(slot, was, returncode)
        self._desk.finished(slot, None, self._backend.now())
        slot.listing = False
        if self._phase is Phase.STOPPING or self._interrupts:
            return
        if reason is None or reason is StopReason.TIMEOUT or reason is StopReason.STUCK_STARTING:
            self._replacing.append(slot)  # named when a worker starts in its place
        if self._phase is Phase.LISTING:
            ready = [s for s in self._slots.values() if s.state is SlotState.READY]
            if ready and not any(s.listing for s in self._slots.values()):
                self._on_ready(ready[0])
            self._top_up()
        # While running, _dispatch tops the pool up after handing out work, so a
        # worker is only started when no free one can take what is queued.

    def _exit_after_timeout(self, slot: Slot, returncode: int, salvaged: list[Attachment]) -> None:
        test_id = slot.timed_out
        assert test_id is not None
        held, slot.held = slot.held, []
        finished = {e.test_id for e in held if e.status > Status.INPROGRESS}
        if test_id in finished:
            # Its result was in the pipe when the worker died: it finished after all.
            slot.timed_out = None
            if not slot.killed:  # it died on its own during the wait: an ordinary death
                self._on_events(slot, held)
                if slot.busy:
                    self._exit_while_busy(slot, returncode, salvaged)
                else:
                    self._exit_unexpected(slot, SlotState.READY, returncode)
                return
            # The test it had started since was killed through no fault of its own: its
            # events are dropped (nothing of it was reported) and it runs again.
            started = {e.test_id for e in held if e.status is Status.INPROGRESS} - finished
            self._on_events(slot, [e for e in held if e.test_id not in started])
            again = slot.culprit()
            self._reporter.notice(
                f"worker {slot.worker} was killed because {test_id} ran over --timeout, but "
                "the test had just finished"
                + (f"; {again} will run again" if again is not None and self._will_rerun() else "")
            )
            self._put_back(slot)
            return
        self._on_events(slot, held)  # what it sent of the test itself (never a final status)
        text, before = timeout_text(slot, self._options.timeout)
        self._fail(slot, test_id, text, before, salvaged)
        timeout = self._options.timeout
        self._reporter.notice(
            f"{test_id} timed out after {timeout:g}s; worker {slot.worker} killed"
            if timeout is not None
            else f"{test_id} timed out; worker {slot.worker} killed"
        )
        self._put_back(slot)

    def _will_rerun(self) -> bool:
        return (
            self._queue is not None
            and not self._interrupts
            and self._halted is None
            and self._phase is Phase.RUNNING
        )

    def _exit_stuck(self, slot: Slot, reason: StopReason) -> None:
        options = self._options
        starting = reason is StopReason.STUCK_STARTING
        wait = options.start_wait if starting else options.quit_wait
        if not starting:
            self._flush_output(slot, slot.dump_mark)
        text = stuck_text(slot, starting=starting, wait=wait)
        slot.shown = len(slot.output)
        if starting:
            self._put_back(slot)
            self._unproductive_deaths += 1
            self._last_death = text
            if not any(s.ever_ready for s in self._slots.values()) and self._result.error is None:
                self._result.error = text  # no worker ever got ready: it will not go better
                self._stop_all(StopReason.QUIT)
                return
        self._reporter.notice(text)

    def _exit_unloadable(self, slot: Slot, message: str) -> None:
        if self._result.error is not None:
            return
        output = slot.output_since(0, OUTPUT_KEEP).decode("utf-8", "replace").rstrip()
        slot.shown = len(slot.output)
        self._result.error = f"the suite could not be loaded (worker {slot.worker}: {message})" + (
            f"; its output:\n{output}" if output else ""
        )

    def _exit_while_busy(self, slot: Slot, returncode: int, salvaged: list[Attachment]) -> None:
        culprit = slot.culprit()
        assert culprit is not None
        self._fail(slot, culprit, crash_text(slot, culprit, returncode), b"", salvaged)
        self._reporter.notice(
            f"worker {slot.worker} {describe_exit(returncode)} while running {culprit}"
        )
        self._put_back(slot)

    def _exit_in_teardown(self, slot: Slot, returncode: int) -> None:
        """A non-zero exit after ``quit``: a teardown crashed; that fails the run."""
        self._flush_output(slot)
        test_id = f"worker-{slot.worker} teardown"
        slot.since = slot.quit_at if slot.quit_at is not None else slot.since
        self._fail(slot, test_id, teardown_text(slot, returncode), b"", [], runnable=False)
        self._reporter.notice(
            f"worker {slot.worker} {describe_exit(returncode)} while tearing down after quit"
        )

    def _exit_unexpected(self, slot: Slot, was: SlotState, returncode: int) -> None:
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
            self._unproductive_deaths += 1
            self._last_death = what + (f"\n{tail}" if tail else "")

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
        now = self._backend.now()
        events = failure_events(
            slot,
            test_id,
            text,
            output=output,
            salvaged=salvaged,
            now=now,
            now_ns=self._backend.time_ns(),
            runnable=runnable,
        )
        for event in events:
            self._send(event)
        if slot.finish(test_id, now):
            self._progress.done += 1
        slot.shown = len(slot.output)

    def _put_back(self, slot: Slot) -> None:
        rest = slot.take_pending()
        if not rest:
            return
        if self._will_rerun():
            assert self._queue is not None
            self._queue.put_back(rest)
        else:
            self._result.not_run.extend(rest)

    def _top_up(self) -> None:
        """Start workers while fewer than wanted are serving and there is work for them,
        unless deaths not caused by a test ran over the limit (then stop with an error)."""
        if self._phase is Phase.STOPPING or self._interrupts or self._halted is not None:
            return
        active = sum(
            1 for s in self._slots.values() if s.alive and s.state is not SlotState.STOPPING
        )
        missing = self._workers_wanted - active
        if self._phase is Phase.RUNNING:
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
