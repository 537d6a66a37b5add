"""Readiness, listing and planning, alone."""

from __future__ import annotations

from proctor.runner.early_stop import EarlyStop
from proctor.runner.history import EMPTY_HISTORY
from proctor.runner.listing import Listing
from proctor.runner.options import RunOptions
from proctor.runner.protocol import ListTests, Quit
from proctor.runner.run_state import Phase
from proctor.runner.slot import Slot, SlotState, StopReason
from tests.runner.parts_support import Parts, control, parts

IDS = ["m.A.t1", "m.A.t2", "m.B.t1"]


def _listing(p: Parts) -> Listing:
    stop = EarlyStop(p.state, p.pool, p.reporter)
    return Listing(p.state, p.options, EMPTY_HISTORY, p.pool, p.outlet, p.reporter, halt=stop.halt)


def _lists(listing: Listing, slot: Slot, ids: list[str]) -> None:
    listing.listed.extend(ids)  # (the controller appends them as they arrive)
    assert listing.list_done(slot)


def test_the_first_ready_worker_lists_and_the_others_wait() -> None:
    p = parts()
    listing = _listing(p)
    first, second = p.pool.start(), p.pool.start()
    listing.ready_event(first, control("ready", pid=42, count=3, capture={}))
    listing.ready_event(second, control("ready", pid=43, count=3, capture={}))
    assert first.state is SlotState.READY
    assert first.ever_ready
    assert first.pid == 42
    assert first.listing
    assert p.worker(first).commands == [ListTests()]
    assert not second.listing
    assert p.worker(second).commands == []


def test_a_listing_done_plans_the_run_and_stops_workers_beyond_the_tests() -> None:
    p = parts(RunOptions(concurrency=4), wanted=4)
    listing = _listing(p)
    slots = [p.pool.start() for _ in range(4)]
    for slot in slots:
        listing.ready_event(slot, control("ready", count=3))
    _lists(listing, slots[0], IDS)
    state = p.state
    assert state.phase is Phase.RUNNING
    assert state.result.selected == IDS
    assert state.result.discovered == IDS
    assert state.queue is not None
    assert state.queue.count == 3
    assert p.pool.wanted == 3
    assert (state.progress.total, state.progress.workers) == (3, 3)
    assert p.reporter.of("planned") == [3]
    assert p.worker(slots[3]).commands == [Quit()]  # one worker more than tests


def test_list_only_stops_the_run_once_listed() -> None:
    p = parts(RunOptions(list_only=True))
    listing = _listing(p)
    slot = p.pool.start()
    listing.ready_event(slot, control("ready", count=3))
    _lists(listing, slot, IDS)
    assert p.state.phase is Phase.STOPPING
    assert p.state.result.selected == IDS


def test_only_given_ids_skip_the_listing() -> None:
    p = parts(RunOptions(only=("m.A.t1",)))
    listing = _listing(p)
    slot = p.pool.start()
    listing.ready_event(slot, control("ready", count=3))
    assert p.worker(slot).commands == []
    assert p.state.phase is Phase.RUNNING
    assert p.state.result.selected == ["m.A.t1"]


def test_a_done_for_no_listing_is_not_the_listings() -> None:
    p = parts()
    listing = _listing(p)
    slot = p.ready_slot()
    assert not listing.list_done(slot)


def test_a_worker_collecting_the_same_ids_in_another_order_is_harmless() -> None:
    p = parts()
    listing = _listing(p)
    lister, other = p.pool.start(), p.pool.start()
    listing.ready_event(lister, control("ready", digest="aaa"))
    listing.ready_event(other, control("ready", digest="bbb"))
    assert other.own_ids == []
    assert p.worker(other).commands == [ListTests()]
    _lists(listing, lister, IDS)
    assert other.own_ids is not None
    other.own_ids.extend(reversed(IDS))
    assert listing.list_done(other)
    assert other.own_ids is None
    assert p.state.result.error is None
    assert p.state.halted is None


def test_workers_collecting_different_ids_stop_the_run_naming_them() -> None:
    p = parts()
    listing = _listing(p)
    lister, other = p.pool.start(), p.pool.start()
    listing.ready_event(lister, control("ready", digest="aaa"))
    listing.ready_event(other, control("ready", digest="bbb"))
    assert other.own_ids is not None
    other.own_ids.extend(["m.A.t1", "m.A.t2", "m.B.t1[1700000000]"])
    assert listing.list_done(other)  # before the lister is done: compared then
    _lists(listing, lister, IDS)
    error = p.state.result.error
    assert error is not None
    assert error.startswith("the workers collected different tests (worker 0 and worker 1)")
    assert "only worker 0 collected 1:\n  'm.B.t1'" in error
    assert "only worker 1 collected 1:\n  'm.B.t1[1700000000]'" in error
    assert p.state.halted == "worker 1 collected different tests than worker 0"
    assert other.stop_reason is StopReason.QUIT


def test_different_counts_are_a_notice_once() -> None:
    p = parts(RunOptions(concurrency=3), wanted=3)
    listing = _listing(p)
    for count in (3, 2, 1):
        listing.ready_event(p.pool.start(), control("ready", count=count))
    [notice] = p.reporter.of("notice")
    assert "worker 0 found 3 tests, worker 1 found 2" in str(notice)


def test_when_the_lister_dies_a_ready_worker_lists_instead() -> None:
    p = parts()
    listing = _listing(p)
    lister, other = p.pool.start(), p.pool.start()
    listing.ready_event(lister, control("ready", count=3))
    listing.ready_event(other, control("ready", count=3))
    lister.state = SlotState.DEAD
    lister.listing = False
    listing.lister_gone()
    assert other.listing
    assert p.worker(other).commands == [ListTests()]


def test_a_failed_listing_stops_the_run_with_an_error() -> None:
    p = parts()
    listing = _listing(p)
    listing.list_failed("no such directory: tests")
    assert p.state.result.error == "listing the tests failed: no such directory: tests"
    assert p.state.phase is Phase.STOPPING


def test_a_worker_ready_while_the_run_stops_is_sent_quit() -> None:
    p = parts()
    listing = _listing(p)
    p.state.phase = Phase.STOPPING
    slot = p.pool.start()
    listing.ready_event(slot, control("ready", count=3))
    assert p.worker(slot).commands == [Quit()]
