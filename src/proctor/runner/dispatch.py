"""Handing out work: batches from the queue to the workers that can take them.

Every free worker gets a batch; a worker whose batch is nearly done (less than
``lookahead`` seconds expected) gets its next batch early, so that fast tests
never wait on a round trip. Once the queue is empty, idle workers are sent
``quit`` (their teardown overlaps the others' last tests), and the run stops
when no worker is busy.
"""

from __future__ import annotations

from collections.abc import Callable

from proctor.runner.debugging import DebugDesk
from proctor.runner.options import RunOptions
from proctor.runner.protocol import RunTests
from proctor.runner.run_state import RunState
from proctor.runner.slot import Slot, SlotState, StopReason
from proctor.runner.worker_pool import WorkerPool

__all__ = ["Dispatcher"]


class Dispatcher:
    """Hands the queue's batches to the pool's workers (see the module docstring).

    ``observed_seconds(n)`` is how long ``n`` tests take at this run's pace so
    far (None: too few finished), used when the history knows no durations;
    ``reruns_on`` says whether ``--rerun-failures`` may bring work back.
    """

    def __init__(
        self,
        state: RunState,
        options: RunOptions,
        pool: WorkerPool,
        desk: DebugDesk,
        *,
        observed_seconds: Callable[[int], float | None],
        reruns_on: bool,
    ) -> None:
        self._state = state
        self._options = options
        self._pool = pool
        self._desk = desk
        self._observed_seconds = observed_seconds
        self._reruns_on = reruns_on

    def dispatch(self, now: float) -> None:
        state = self._state
        queue = state.queue
        if queue is None:
            return
        pool = self._pool
        if queue and not state.interrupts and state.halted is None:
            serving = [
                slot
                for slot in pool.slots.values()
                if slot.state is SlotState.READY and not slot.listing and slot.own_ids is None
            ]
            serving.sort(key=lambda s: (s.pending_expected, s.worker))
            # Size batches for the whole pool: workers still starting join soon.
            workers = max(len(serving), pool.wanted)
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
            # A worker is started only when no free one can take what is queued.
            pool.top_up()
        if queue:
            return
        if not any(slot.busy for slot in pool.slots.values()):
            pool.stop_all(StopReason.QUIT)
        else:
            # Nothing left to hand out: idle workers tear down now, while the others
            # finish (if one of those dies, a new worker takes its tests). When no input
            # can come for a test that reads stdin (a quit waiting in a worker's pipe is
            # end of input for it), busy workers are sent quit too: they obey it after
            # their batches, so their teardown overlaps the handling of their results;
            # not with --rerun-failures: a failure brings work back, for them (a new
            # worker beside a quitting one would run more at once than asked).
            early = self._desk.input_over and not self._reruns_on
            for slot in pool.slots.values():
                if slot.state is SlotState.READY and not slot.listing and (early or not slot.busy):
                    pool.stop(slot, StopReason.QUIT)

    def _left(self, slot: Slot) -> float:
        """Seconds of work ``slot`` still holds: from the history's estimates, or,
        without history, from how long this run's tests have taken so far."""
        if self._state.progress.has_history:
            return slot.pending_expected
        observed = self._observed_seconds(len(slot.pending))
        return slot.pending_expected if observed is None else observed
