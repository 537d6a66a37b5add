"""A run that is one job of a CI build sharing one queue (``proctor run --queue BUILD``).

Each job lists and plans its tests as any run does; the first job to arrive
fills the build's queue in the repository with its plan (longest first, from
the shared history), and every job's workers then take their batches from it
(:class:`~proctor.store.build_queue.BuildQueue`: claims that never overlap,
leases that run out when a job dies). A late job just takes less.

:class:`FleetQueue` is the run's :class:`~proctor.runner.schedule.WorkSource`:

* ``take`` claims a batch sized for this job's workers and the jobs at work;
  tests a worker of this job could not run (it died) come back to this job
  first, still leased by it;
* while nothing is claimable but other jobs hold tests, the run waits (its
  workers idle) and asks again every ``poll_s``: a job that dies gives its
  tests back when its leases run out, and a job still running takes them;
* a test whose jobs kept dying on it is reported failed as the culprit,
  never run again;
* each finished test is marked done (in batches, off the results' path), and a
  thread renews this job's leases while its workers run long tests;
* a stopped run (Ctrl-C, ``--maxfail``) gives its leased tests back at once.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from proctor.runner.schedule import Batch, Plan
from proctor.store.build_queue import BuildQueue
from proctor.store.model import RETRIED_TAG
from proctor.wire.event import TEXT_MIME_TYPE, Status
from proctor.wire.record import Attachment, TestRecord

__all__ = ["FleetQueue", "LeaseKeeper", "planned_order"]

POLL_SECONDS = 0.25
"""How often a job with nothing to claim asks again while other jobs hold tests."""


def planned_order(plan: Plan) -> list[tuple[str, float]]:
    """The plan's tests in the order it runs them, each with its expected seconds."""
    return [
        (test_id, cost)
        for unit in plan.units
        for test_id, cost in zip(unit.ids, unit.costs, strict=True)
    ]


class LeaseKeeper:
    """A thread that renews this job's leases and marks finished tests done,
    on a connection of its own, every third of a lease; and once more at
    :meth:`close`. Records reach it through :meth:`finished` (any thread)."""

    def __init__(self, queue: BuildQueue, interval: float | None = None) -> None:
        self._queue = queue
        self._interval = interval if interval is not None else max(queue.lease_s / 3, 0.05)
        self._lock = threading.Lock()
        self._io = threading.Lock()  # one connection: one query at a time
        self._done: list[str] = []
        self._stop = threading.Event()
        self.error: Exception | None = None
        self._thread = threading.Thread(target=self._loop, name="proctor-leases", daemon=True)
        self._thread.start()

    def finished(self, record: TestRecord) -> None:
        """A record of this run: its test is done, unless it is an attempt that
        runs again (``--rerun-failures``): the last attempt says so."""
        if record.status is not Status.INPROGRESS and RETRIED_TAG not in record.tags:
            with self._lock:
                self._done.append(record.test_id)

    def flush(self) -> None:
        """Mark the tests finished so far done (any thread: before a job waits on
        the others, say, so that they do not wait on it)."""
        with self._io:
            with self._lock:
                done, self._done = self._done, []
            if done:
                self._queue.done(done)

    def _loop(self) -> None:
        try:
            while not self._stop.wait(self._interval):
                self.flush()
                with self._io:
                    self._queue.renew()
        except Exception as error:  # the leases run out; close() raises it
            self.error = error

    def close(self) -> None:
        """Stop renewing, mark the last finished tests done. Raises the error that
        stopped the renewals, if one did (the build's queue could not be reached)."""
        self._stop.set()
        self._thread.join()
        try:
            if self.error is None:
                self.flush()
        finally:
            self._queue.close()
        if self.error is not None:
            raise self.error


class FleetQueue:
    """This job's share of a build's queue, as the run's work source (module docstring)."""

    def __init__(
        self,
        queue: BuildQueue,
        plan: Plan,
        report: Callable[[TestRecord], None],
        *,
        poll_s: float = POLL_SECONDS,
        settle: Callable[[], None] = lambda: None,
    ) -> None:
        self._queue = queue
        self._settle = settle
        self._report = report
        self._poll_s = poll_s
        self._estimates = plan.estimates
        self._unknown = plan.unknown_estimate
        self._local: deque[str] = deque()
        self._waiting = False
        self._fleet_empty = False
        state = queue.state()
        self.expected = plan.expected
        self.count = state.queued

    def __bool__(self) -> bool:
        return bool(self._local) or not self._fleet_empty

    def estimate(self, test_id: str) -> float:
        return self._estimates.get(test_id, self._unknown)

    def take(self, workers: int) -> Batch | None:
        if self._local:
            ids = tuple(self._local)
            self._local.clear()
            return self._batch(ids)
        if self._fleet_empty:
            return None
        claim = self._queue.claim(workers)
        for test_id in claim.abandoned:
            self._report(_abandoned(test_id, self._queue.max_attempts))
        if claim.ids:
            self._waiting = False
            return self._batch(claim.ids, claim.expected)
        # Nothing to claim: this job's finished tests are marked done before it
        # looks at what the others hold (or they would wait on it as it waits on them).
        self._settle()
        state = self._queue.state()
        self.count = state.queued
        self._fleet_empty = state.queued == 0 and state.others == 0
        self._waiting = not self._fleet_empty
        return None

    def _batch(self, ids: tuple[str, ...], costs: tuple[float, ...] | None = None) -> Batch:
        if costs is None:
            costs = tuple(self.estimate(test_id) for test_id in ids)
        self.expected = max(self.expected - sum(costs), 0.0)
        self.count = max(self.count - len(ids), 0)
        return Batch(ids, costs)

    def put_back(self, ids: Iterable[str]) -> None:
        """Tests this job's worker did not run: still leased by this job, they
        go to its next free worker."""
        self._local.extendleft(reversed(list(ids)))

    def clear(self) -> list[str]:
        """A stopped run: what it held goes back to the build for other jobs."""
        dropped = list(self._local)
        self._local.clear()
        self._fleet_empty = True
        self._queue.give_back()
        return dropped

    def wake_at(self, now: float) -> float | None:
        return now + self._poll_s if self._waiting and not self._local else None


def _abandoned(test_id: str, attempts: int) -> TestRecord:
    now = time.time_ns()
    text = (
        f"proctor: {test_id} was not run again: {attempts} jobs of this build stopped while "
        "running it (their leases ran out). It is likely what kills them: run it alone "
        "(proctor run --isolated, or with its neighbours: proctor run --isolate)\n"
    )
    return TestRecord(
        test_id,
        Status.FAIL,
        None,
        now,
        now,
        frozenset({"proctor:abandoned"}),
        (Attachment("traceback", text.encode(), TEXT_MIME_TYPE),),
    )
