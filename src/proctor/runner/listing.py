"""Workers becoming ready, listing the tests, and planning the run.

The first worker to report ``ready`` is asked to list the tests (no extra
process lists them); once its listing is ``done``, the selection options choose
from it and the scheduler plans the order (:func:`~proctor.runner.planning.plan_run`),
which puts the run in its running phase with a queue.

The workers' ``ready`` events carry a digest of the ids each collected. A
worker whose digest differs from the lister's is asked to list too, and gets
no work meanwhile; if the two collections hold different ids, the run stops
at once with an error naming them (as pytest-xdist's "Different tests were
collected"). Workers without a digest (the fakes) are compared by count, with
a notice.
"""

from __future__ import annotations

from collections.abc import Callable

from proctor.runner.history import History
from proctor.runner.options import RunOptions
from proctor.runner.outlet import Outlet
from proctor.runner.planning import plan_run
from proctor.runner.protocol import Control, ListTests
from proctor.runner.report import RunReporter
from proctor.runner.run_state import Phase, RunState
from proctor.runner.schedule import WorkFactory, own_queue
from proctor.runner.slot import Slot, SlotState, StopReason
from proctor.runner.worker_pool import WorkerPool
from proctor.wire.record import TestRecord

__all__ = ["Listing", "different_ids"]


class Listing:
    """Readiness, listing and planning (see the module docstring).

    ``listed`` collects the ids the listing worker reports (the controller
    appends them as they arrive); ``halt`` stops the run early.
    """

    def __init__(
        self,
        state: RunState,
        options: RunOptions,
        history: History,
        pool: WorkerPool,
        outlet: Outlet,
        reporter: RunReporter,
        *,
        halt: Callable[[str], None],
        work: WorkFactory = own_queue,
        report: Callable[[TestRecord], None] | None = None,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self._state = state
        self._options = options
        self._history = history
        self._pool = pool
        self._outlet = outlet
        self._reporter = reporter
        self._halt = halt
        self._work = work
        self._report = report if report is not None else (lambda record: None)
        self._wake = wake
        self.listed: list[str] = []
        self._digest: tuple[int, str] | None = None  # the lister's worker and ids digest
        self._ready_counts: dict[int, int] = {}  # worker -> tests its `ready` announced
        self._counts_differ = False  # (warned once)

    # -- ready ----------------------------------------------------------------------------

    def ready_event(self, slot: Slot, control: Control) -> None:
        """``slot``'s worker sent ``ready`` (it has loaded the suite)."""
        fields = control.fields
        if slot.state is SlotState.STARTING:
            slot.state = SlotState.READY
        slot.ever_ready = True
        pid = fields.get("pid")
        if isinstance(pid, int):
            slot.pid = pid
        slot.route = getattr(slot.handle, "route", slot.route)  # a remote one's: HOST:N
        capture = fields.get("capture")
        if isinstance(capture, dict):
            slot.capture = {str(k): str(v) for k, v in capture.items() if isinstance(v, str)}
        slot.live = "capture" in fields and capture is None  # --no-capture
        count = fields.get("count")
        digest = fields.get("digest")
        if isinstance(digest, str) and self._options.only is None:
            if self._digest is None:
                self._digest = (slot.worker, digest)  # the first ready worker lists
            elif digest != self._digest[1]:
                self._outlet.flush_output(slot)
                slot.own_ids = []  # what it collected, to compare (it gets no work meanwhile)
                slot.handle.send(ListTests())
                return
        elif isinstance(count, int):
            self._compare_counts(slot, count)
        self._outlet.flush_output(slot)
        self.ready(slot)

    def ready(self, slot: Slot) -> None:
        """``slot`` is ready for work: while listing, it lists if nobody does yet;
        when the run is stopping, it quits."""
        state = self._state
        if state.phase is Phase.STOPPING or state.interrupts:
            self._pool.stop(slot, StopReason.QUIT)
        elif state.phase is Phase.LISTING and not any(s.listing for s in self._pool.slots.values()):
            if self._options.only is not None:
                self._listing_done(slot)
            else:
                slot.listing = True
                slot.handle.send(ListTests())

    def lister_gone(self) -> None:
        """A worker died while the tests are being listed: if it was the lister,
        a ready worker lists instead."""
        slots = self._pool.slots.values()
        ready = [s for s in slots if s.state is SlotState.READY]
        if ready and not any(s.listing for s in slots):
            self.ready(ready[0])

    # -- listings -------------------------------------------------------------------------

    def list_done(self, slot: Slot) -> bool:
        """``slot`` sent ``done`` for a ``list``; False if it was listing nothing."""
        state = self._state
        if slot.listing:
            slot.listing = False
            if state.phase is Phase.LISTING and not state.interrupts:
                self._listing_done(slot)
            return True
        if slot.own_ids is not None:
            slot.own_ids_done = True
            if state.phase is not Phase.LISTING:  # else _listing_done compares
                self._compare_ids(slot)
            return True
        return False

    def list_failed(self, message: str) -> None:
        """The lister could not list the tests: the run stops with an error."""
        self._state.result.error = f"listing the tests failed: {message}"
        self._pool.stop_all(StopReason.QUIT)

    def _compare_ids(self, slot: Slot) -> None:
        """A worker whose ids' digest differed from the lister's has listed its own:
        if the two collections hold different ids, the run fails at once, naming
        them (as pytest-xdist does): ids that depend on the process (a time or a pid
        in a parametrize id) would otherwise fail as "not found" here and there."""
        if not slot.own_ids_done or slot.own_ids is None:
            return
        theirs, slot.own_ids, slot.own_ids_done = slot.own_ids, None, False
        listed = set(self.listed)
        mine = set(theirs)
        if mine == listed:  # the same tests in another order: harmless here
            self.ready(slot)
            return
        lister = self._digest[0] if self._digest is not None else "?"
        self._state.result.error = different_ids(
            (lister, sorted(listed - mine)), (slot.worker, sorted(mine - listed))
        )
        self._halt(f"worker {slot.worker} collected different tests than worker {lister}")
        self._pool.stop(slot, StopReason.QUIT)

    def _compare_counts(self, slot: Slot, count: int) -> None:
        """Warn (once) when workers report different numbers of tests: their
        discovery differs, so a test one of them lacks fails as not found there."""
        counts = self._ready_counts
        first = next(iter(counts.items()), None)
        counts[slot.worker] = count
        if first is not None and first[1] != count and not self._counts_differ:
            self._counts_differ = True
            self._reporter.notice(
                f"the workers collected different suites: worker {first[0]} found {first[1]} "
                f"tests, worker {slot.worker} found {count} (discovery that depends on time, "
                "randomness or the order of imports?); a test a worker lacks fails there as "
                "not found"
            )

    # -- planning -------------------------------------------------------------------------

    def _listing_done(self, slot: Slot) -> None:
        state = self._state
        pool = self._pool
        workers = max(pool.wanted, self._options.plan_workers or 0)
        chosen = plan_run(self.listed, self._options, self._history, workers)
        result = state.result
        result.discovered = chosen.discovered
        result.selected = ids = chosen.selected
        result.missing = chosen.missing
        for other in list(pool.slots.values()):
            self._compare_ids(other)  # workers that listed their own, differing, ids
        if self._options.list_only or not ids or state.halted is not None:
            pool.stop_all(StopReason.QUIT)
            return
        plan = chosen.plan
        state.queue = self._work(plan, self._report, self._wake)
        pool.wanted = min(pool.wanted, len(ids))
        progress = state.progress
        share = state.queue.share()
        progress.total = len(ids) if share is None else share[0]
        progress.build_total = None if share is None else share[1]
        progress.has_history = chosen.has_history
        progress.expected_left = plan.expected
        progress.workers = pool.wanted
        state.phase = Phase.RUNNING
        for extra in sorted(pool.slots.values(), key=lambda s: s.worker)[len(ids) :]:
            if extra.alive and not extra.busy:
                pool.stop(extra, StopReason.QUIT)
        self._reporter.planned(progress)


def different_ids(first: tuple[object, list[str]], second: tuple[object, list[str]]) -> str:
    """The error of a run whose workers collected different ids (at most 10 of each)."""
    parts = []
    for worker, only in (first, second):
        if only:
            shown = "\n".join(f"  {test_id!r}" for test_id in only[:10])
            more = f"\n  ... and {len(only) - 10} more" if len(only) > 10 else ""
            parts.append(f"only worker {worker} collected {len(only)}:\n{shown}{more}")
    return (
        f"the workers collected different tests (worker {first[0]} and worker {second[0]}), "
        "so the run stopped: test ids must not depend on the process (a time, a pid or a "
        "random value in a parametrize id, an import that differs between processes).\n"
        + "\n".join(parts)
    )
