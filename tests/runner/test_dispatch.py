"""Handing out work, alone: batches to free workers, early batches, quitting at the end."""

from __future__ import annotations

import pytest

from proctor.runner.debugging import DebugDesk
from proctor.runner.dispatch import Dispatcher
from proctor.runner.protocol import Quit, RunTests
from proctor.runner.run_state import Phase
from proctor.testing import FakeStdin
from tests.runner.parts_support import Parts, parts

IDS = [f"m.C{i}.t" for i in range(8)]


def _dispatcher(
    p: Parts,
    *,
    observed: float | None = None,
    reruns_on: bool = False,
    stdin: bool = False,
) -> Dispatcher:
    desk = DebugDesk(p.reporter, FakeStdin(p.backend, []) if stdin else None)
    return Dispatcher(
        p.state,
        p.options,
        p.pool,
        desk,
        observed_seconds=lambda tests: None if observed is None else tests * observed,
        reruns_on=reruns_on,
    )


def _sent(p: Parts, worker: int) -> list[tuple[str, ...]]:
    return [c.ids for c in p.backend.workers[worker].commands if isinstance(c, RunTests)]


def test_every_free_worker_gets_a_batch_and_the_queue_is_shared_out() -> None:
    p = parts()
    dispatcher = _dispatcher(p)
    p.running(*IDS)
    first, second = p.ready_slot(), p.ready_slot()
    dispatcher.dispatch(0.0)
    batches = _sent(p, 0) + _sent(p, 1)
    assert len(_sent(p, 0)) == 1
    assert len(_sent(p, 1)) == 1
    assert first.busy
    assert second.busy
    assert sorted(test_id for batch in batches for test_id in batch) <= sorted(IDS)
    assert p.state.queue is not None
    assert p.state.queue.count == len(IDS) - sum(len(batch) for batch in batches)


def test_a_listing_worker_or_one_comparing_its_ids_gets_no_work() -> None:
    p = parts()
    dispatcher = _dispatcher(p)
    p.running(*IDS)
    listing, comparing = p.ready_slot(), p.ready_slot()
    listing.listing = True
    comparing.own_ids = []
    dispatcher.dispatch(0.0)
    assert _sent(p, 0) == []
    assert _sent(p, 1) == []


def test_a_worker_nearly_done_gets_its_next_batch_early() -> None:
    p = parts(wanted=1)
    dispatcher = _dispatcher(p, observed=0.001)  # this run's tests take 1 ms each
    p.running(*IDS)
    slot = p.ready_slot()
    slot.add_batch(["m.X.t"], [5.0], 0.0)  # its history estimate is long; its pace is not
    p.state.progress.has_history = False
    dispatcher.dispatch(0.0)
    assert _sent(p, 0) == [tuple(IDS)]  # one worker: everything in one round trip


def test_a_busy_worker_with_work_left_waits() -> None:
    p = parts(wanted=1)
    dispatcher = _dispatcher(p)
    p.running(*IDS)
    slot = p.ready_slot()
    slot.add_batch(["m.X.t"], [5.0], 0.0)
    dispatcher.dispatch(0.0)
    assert _sent(p, 0) == []


def test_when_nothing_is_queued_or_running_the_run_stops() -> None:
    p = parts()
    dispatcher = _dispatcher(p)
    p.running()
    slot = p.ready_slot()
    dispatcher.dispatch(0.0)
    assert p.state.phase is Phase.STOPPING
    assert p.worker(slot).commands == [Quit()]


def test_with_no_input_to_come_busy_workers_are_sent_quit_with_the_idle_ones() -> None:
    p = parts()
    dispatcher = _dispatcher(p)
    p.running()
    idle, busy = p.ready_slot(), p.ready_slot()
    busy.add_batch(["m.X.t"], [1.0], 0.0)
    dispatcher.dispatch(0.0)
    assert p.state.phase is Phase.RUNNING
    assert p.worker(idle).commands == [Quit()]
    assert p.worker(busy).commands == [Quit()]


@pytest.mark.parametrize(("stdin", "reruns_on"), [(True, False), (False, True)])
def test_busy_workers_keep_going_when_input_may_come_or_a_rerun_may_bring_work(
    stdin: bool, reruns_on: bool
) -> None:
    p = parts()
    dispatcher = _dispatcher(p, stdin=stdin, reruns_on=reruns_on)
    p.running()
    idle, busy = p.ready_slot(), p.ready_slot()
    busy.add_batch(["m.X.t"], [1.0], 0.0)
    dispatcher.dispatch(0.0)
    assert p.worker(idle).commands == [Quit()]
    assert p.worker(busy).commands == []


def test_the_pool_is_topped_up_for_queued_work() -> None:
    p = parts(wanted=2)
    dispatcher = _dispatcher(p)
    p.running(*IDS)
    p.ready_slot()
    dispatcher.dispatch(0.0)
    assert sorted(p.pool.slots) == [0, 1]


def test_no_work_is_handed_out_once_halted() -> None:
    p = parts()
    dispatcher = _dispatcher(p)
    p.running(*IDS)
    p.state.halted = "stopping after 1 failure (--maxfail 1)"
    p.ready_slot()
    dispatcher.dispatch(0.0)
    assert _sent(p, 0) == []
