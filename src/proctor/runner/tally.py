"""What the records of a run add up to, and the reruns of ``--rerun-failures``.

The record collector hands every record the controller routed to
:meth:`Tally.record`: it is counted into the run's result (a failure, an
unfinished test), passed to the record sinks (the store's run writer) and the
reporter, and ``--maxfail`` is checked. A failure with attempts left under
``--rerun-failures`` (:class:`~proctor.runner.rerun.Reruns` decides) is not
counted: its id goes back to the front of the queue, and the record goes to the
sinks and the view as a retried attempt.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from proctor.runner.report import RunReporter
from proctor.runner.rerun import Reruns
from proctor.runner.run_state import RunState
from proctor.store.model import RETRIED_TAG
from proctor.wire.event import NS_PER_SECOND, Status
from proctor.wire.record import TestRecord

__all__ = ["Tally"]

OBSERVED_ENOUGH = 10
"""Tests finished before this run's own durations are a usable pace."""


class Tally:
    """The run's records, counted (see the module docstring).

    ``halt`` stops the run early (``--maxfail``). ``records_due`` is True once
    records were passed on since the controller last called its ``on_idle``.
    """

    def __init__(
        self,
        state: RunState,
        reruns: Reruns,
        reporter: RunReporter,
        *,
        maxfail: int | None,
        record_sinks: Sequence[Callable[[TestRecord], None]],
        halt: Callable[[str], None],
    ) -> None:
        self._state = state
        self._reruns = reruns
        self._reporter = reporter
        self._maxfail = maxfail
        self._record_sinks = tuple(record_sinks)
        self._halt = halt
        self.records_due = False
        self._observed_time = 0.0  # seconds of test time finished so far
        self._observed_count = 0

    def record(self, record: TestRecord) -> None:
        """A test's record is complete (the record collector's callback)."""
        state = self._state
        result = state.result
        status = record.status
        reruns = self._reruns
        if (reruns.limit and status is not Status.SUCCESS) or reruns.attempts:
            record = reruns.tagged(record)
            if reruns.passed_again(record):
                result.flaky.append(record.test_id)
            elif state.rescheduling and (attempt := reruns.retry(record)) is not None:
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
                state.progress.failed += 1
        else:
            result.unfinished.append(record)
        for sink in self._record_sinks:
            sink(record)
        self.records_due = True
        self._reporter.record(record)
        maxfail = self._maxfail
        if maxfail is not None and state.progress.failed >= maxfail and state.halted is None:
            failures = f"{maxfail} failure{'s' if maxfail > 1 else ''}"
            self._halt(f"stopping after {failures} (--maxfail {maxfail})")

    def unreported(self, test_ids: list[str]) -> None:
        """A worker ended a batch without reporting these tests (counted apart)."""
        if test_ids:
            self._state.result.unreported.extend(test_ids)
            self._state.progress.done += len(test_ids)

    def observed_seconds(self, tests: int) -> float | None:
        """How long ``tests`` tests take at the pace of this run's tests so far
        (None: too few have finished to tell)."""
        if self._observed_count < OBSERVED_ENOUGH:
            return None
        return tests * self._observed_time / self._observed_count

    def _retry(self, record: TestRecord, attempt: int) -> None:
        """Run a failed test again (--rerun-failures): its record goes to the sinks
        and the view, not into the outcome; the next attempt goes first in the queue."""
        state = self._state
        assert state.queue is not None
        record = record._replace(tags=record.tags | {RETRIED_TAG})
        state.result.retried.append(record)
        state.queue.put_back([record.test_id])
        state.progress.total += 1
        for sink in self._record_sinks:
            sink(record)
        self.records_due = True
        self._reporter.record(record)
        limit = self._reruns.limit + 1
        self._reporter.notice(f"{record.test_id} failed; running it again ({attempt} of {limit})")

    def settle_retries(self) -> None:
        """Retried tests whose next attempt never ran (the run stopped first): the
        failed attempt is their outcome, and they are not "not run"."""
        waiting = self._reruns.waiting
        if not waiting:
            return
        result = self._state.result
        result.not_run = [test_id for test_id in result.not_run if test_id not in waiting]
        for record in waiting.values():
            result.counts[record.status] += 1
            result.failures.append(record)
        waiting.clear()
