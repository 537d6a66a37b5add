"""What a run of each test on a worker of its own (``--isolated``) is made of:
the reporter each one-test run shows through, and the sum of their results.

The loop itself is :meth:`proctor.runner.session.RunSession.run`.
"""

from __future__ import annotations

from proctor.runner.report import Progress, RunReporter, RunResult
from proctor.wire.event import Status
from proctor.wire.record import TestRecord

__all__ = ["OneOfMany", "merge_result"]


class OneOfMany:
    """A reporter for the controller of one test of an ``--isolated`` run: it
    passes records and notices to the run's view, not the plan or the end."""

    def __init__(self, view: RunReporter, progress: Progress) -> None:
        self._view = view
        self._progress = progress
        self.tick_interval: float | None = view.tick_interval

    def planned(self, progress: Progress) -> None:
        pass

    def record(self, record: TestRecord) -> None:
        self._progress.done += 1
        if record.status.is_failure or record.status <= Status.INPROGRESS:
            self._progress.failed += 1
        self._view.record(record)

    def output(self, worker: int | None, data: bytes) -> None:
        self._view.output(worker, data)

    def notice(self, text: str) -> None:
        self._view.notice(text)

    def tick(self) -> None:
        self._view.tick()

    def debug_start(self, test_id: str, worker: int, so_far: bytes) -> None:
        self._view.debug_start(test_id, worker, so_far)

    def debug_output(self, data: bytes) -> None:
        self._view.debug_output(data)

    def debug_end(self, test_id: str) -> None:
        self._view.debug_end(test_id)

    def finished(self, result: RunResult) -> None:
        pass


def merge_result(total: RunResult, one: RunResult) -> None:
    """Add the result of one test's run to ``total``."""
    for status, count in one.counts.items():
        total.counts[status] += count
    total.failures.extend(one.failures)
    total.unfinished.extend(one.unfinished)
    total.not_run.extend(one.not_run)
    total.unreported.extend(one.unreported)
    total.missing.extend(test_id for test_id in one.missing if test_id not in total.missing)
    total.worker_restarts += one.worker_restarts
    if one.interrupted:
        total.interrupted, total.signal = True, one.signal
    if one.error and not total.error:
        total.error = one.error
