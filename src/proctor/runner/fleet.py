"""A run that is one job of a CI build sharing one queue (``proctor run --queue BUILD``).

Each job lists and plans its tests as any run does; the first job to arrive
fills the build's queue in the repository with its plan (longest first, from
the shared history), and every job's workers then take their batches from it
(:class:`~proctor.store.build_queue.BuildQueue`: claims that never overlap,
leases that run out when a job dies). A late job just takes less.

:class:`FleetQueue` is the run's :class:`~proctor.runner.schedule.WorkSource`:

* ``take`` claims a batch sized for the build's workers, longest first (the
  controller asks for a worker's next batch before it runs dry); tests a worker
  of this job could not run (it died) come back to this job first, still
  leased by it;
* while nothing is claimable but other jobs hold tests, the run waits (its
  workers idle) and asks again as soon as another job says its tests are done
  or given back (:class:`LeaseKeeper` listens), when the first of their leases
  runs out (a job that dies gives its tests back that way, and a job still
  running takes them), and at the latest every ``poll_s``;
* a test whose jobs kept dying on it is reported failed as the culprit,
  never run again;
* each finished test is marked done (in batches, off the results' path; one
  by one once the job has nothing more to claim, so that the jobs waiting on
  it stop at once), and a thread renews this job's leases while its workers
  run long tests;
* a stopped run (Ctrl-C, ``--maxfail``) gives its leased tests back at once.
"""

from __future__ import annotations

import contextlib
import os
import selectors
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
"""How often, at the latest, a job with nothing to claim asks again while other jobs
hold tests (they wake it when they finish or give tests back: this is for a
connection that cannot listen, such as a pooler's in transaction mode)."""


EXPIRY_MARGIN_S = 0.01
"""Asked again this long after another job's lease is due to run out (the server's
clock decides; too early and the job just asks again)."""


def planned_order(plan: Plan) -> list[tuple[str, float]]:
    """The plan's tests in the order it runs them, each with its expected seconds."""
    return [
        (test_id, cost)
        for unit in plan.units
        for test_id, cost in zip(unit.ids, unit.costs, strict=True)
    ]


class LeaseKeeper:
    """A thread that renews this job's leases every third of a lease and marks
    finished tests done, on a connection of its own; and once more at
    :meth:`close`. Records reach it through :meth:`finished` (any thread).

    Marking done is batched (every renewal) while the job has work to claim;
    once it has none (:meth:`promptly`), each finished test is marked done as
    it finishes, and the last of the build wakes the jobs that wait on it. The
    thread listens on the build's channel too: when another job wakes it (the
    build is finished, or tests were given back), ``on_notice`` is called (the
    controller looks at the queue again).
    """

    def __init__(
        self,
        queue: BuildQueue,
        interval: float | None = None,
        on_notice: Callable[[], None] = lambda: None,
    ) -> None:
        self._queue = queue
        self._interval = interval if interval is not None else max(queue.lease_s / 3, 0.05)
        self._on_notice = on_notice
        self._lock = threading.Lock()
        self._io = threading.Lock()  # one connection: one query at a time
        self._done: list[str] = []
        self._prompt = False
        self._stop = threading.Event()
        self.error: Exception | None = None
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        queue.listen()
        self._thread = threading.Thread(target=self._loop, name="proctor-leases", daemon=True)
        self._thread.start()

    def finished(self, record: TestRecord) -> None:
        """A record of this run: its test is done, unless it is an attempt that
        runs again (``--rerun-failures``): the last attempt says so."""
        if record.status is not Status.INPROGRESS and RETRIED_TAG not in record.tags:
            with self._lock:
                self._done.append(record.test_id)
            if self._prompt:
                self._poke()

    def promptly(self) -> None:
        """This job has nothing more to claim: mark the tests finished so far done
        now (before it looks at what the others hold, or they would wait on it as it
        waits on them), and each further one as it finishes."""
        self._prompt = True
        self.flush()
        self._poke()  # (a notification this query read is the thread's to see)

    def flush(self) -> None:
        """Mark the tests finished so far done (any thread)."""
        with self._io:
            with self._lock:
                done, self._done = self._done, []
            if done:
                self._queue.done(done, notify=self._prompt)

    def _poke(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):  # full: it wakes anyway
            os.write(self._wake_write, b"\0")

    def _loop(self) -> None:
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self._wake_read, selectors.EVENT_READ)
                selector.register(self._queue.fileno(), selectors.EVENT_READ)
                renew_at = time.monotonic() + self._interval
                while not self._stop.is_set():
                    selector.select(max(renew_at - time.monotonic(), 0.0))
                    if self._stop.is_set():
                        break
                    with contextlib.suppress(BlockingIOError):
                        while os.read(self._wake_read, 4096):
                            pass
                    self.flush()
                    with self._io:
                        if time.monotonic() >= renew_at:
                            self._queue.renew()
                            renew_at = time.monotonic() + self._interval
                        noticed = self._queue.notified()
                    if noticed:
                        self._on_notice()
        except Exception as error:  # the leases run out; close() raises it
            self.error = error

    def close(self) -> None:
        """Stop renewing, mark the last finished tests done. Raises the error that
        stopped the renewals, if one did (the build's queue could not be reached)."""
        self._stop.set()
        self._poke()
        self._thread.join()
        try:
            if self.error is None:
                self.flush()
        finally:
            self._queue.close()
            for fd in (self._wake_read, self._wake_write):
                with contextlib.suppress(OSError):
                    os.close(fd)
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
        self._expiry_s: float | None = None  # until another job's first lease runs out
        self._fleet_empty = False
        state = queue.state()
        self._build_total = state.total
        self._taken = 0
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
        self._taken += len(claim.ids) + len(claim.abandoned)
        for test_id in claim.abandoned:
            self._report(_abandoned(test_id, self._queue.max_attempts))
        if claim.ids:
            self._waiting = False
            batch = self._batch(claim.ids, claim.expected)
            if claim.registered_workers:
                # This job's part of what the build has left (what its progress
                # shows): the claimable time, shared by the workers of the jobs
                # that have claimed so far (a job alone has it all).
                left = max(claim.left - sum(claim.expected), 0.0)
                self.expected = left * min(workers / claim.registered_workers, 1.0)
            return batch
        # Nothing to claim: this job's finished tests are marked done before it
        # looks at what the others hold (or they would wait on it as it waits on them).
        self._settle()
        state = self._queue.state()
        self.count = state.queued
        if state.queued == 0:
            self.expected = 0.0
        self._fleet_empty = state.queued == 0 and state.others == 0
        self._waiting = not self._fleet_empty
        self._expiry_s = state.next_expiry_s
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

    def share(self) -> tuple[int, int]:
        return self._taken, self._build_total

    def wake_at(self, now: float) -> float | None:
        if not self._waiting or self._local:
            return None
        wait = self._poll_s
        if self._expiry_s is not None:
            wait = min(wait, self._expiry_s + EXPIRY_MARGIN_S)
        return now + wait


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
