"""The run's side of a build's shared queue (proctor.runner.fleet), alone and
driving a controller on fake workers, over a real PostgreSQL queue."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from proctor.runner.controller import Controller
from proctor.runner.fleet import FleetQueue, LeaseKeeper, planned_order
from proctor.runner.options import RunOptions
from proctor.runner.report import NullReporter, Progress
from proctor.runner.schedule import Plan, Unit, WorkSource
from proctor.store.build_queue import ASSUMED_JOBS, BuildQueue
from proctor.testing import FakeBackend, FakeTest
from proctor.wire.event import Status
from proctor.wire.record import TestRecord
from tests.store.conftest import (  # noqa: F401 - the fixtures a PostgreSQL URL needs
    postgres_schemas,
    postgres_url,
)

pytestmark = pytest.mark.postgres

IDS = [f"tests.test_q.T.test_{n:02}" for n in range(12)]


def plan(ids: list[str] = IDS, cost: float = 1.0) -> Plan:
    return Plan([Unit([test_id], [cost]) for test_id in ids], dict.fromkeys(ids, cost))


@pytest.fixture
def queues(request: pytest.FixtureRequest) -> Iterator[Callable[..., BuildQueue]]:
    url = str(request.getfixturevalue("postgres_url"))
    opened: list[BuildQueue] = []

    def make(job: str, **options: float) -> BuildQueue:
        queue = BuildQueue(url, "build", job, **options)  # type: ignore[arg-type]
        opened.append(queue)
        return queue

    yield make
    for queue in opened:
        with contextlib.suppress(Exception):  # closed already by a LeaseKeeper
            queue.close()


def fleet(queue: BuildQueue, reported: list[TestRecord] | None = None, **kw: object) -> FleetQueue:
    queue.join(planned_order(plan()), revision="r", environment="e")
    sink = reported.append if reported is not None else (lambda record: None)
    return FleetQueue(queue, plan(), sink, **kw)  # type: ignore[arg-type]


def test_planned_order_keeps_the_plan_and_its_costs() -> None:
    assert planned_order(Plan([Unit(["a", "b"], [2.0, 1.0]), Unit(["c"], [0.5])])) == [
        ("a", 2.0),
        ("b", 1.0),
        ("c", 0.5),
    ]


def test_tests_a_worker_did_not_run_come_back_to_this_job_first(
    queues: Callable[..., BuildQueue],
) -> None:
    source = fleet(queues("mine"))
    first = source.take(workers=1)
    assert first is not None
    source.put_back(first.ids)
    again = source.take(workers=1)
    assert again is not None
    assert again.ids == first.ids  # not claimed anew: still this job's leases
    assert source._queue.done(first.ids) == set(first.ids)  # held by it all along


def test_a_share_counts_what_it_took_and_its_part_of_the_time_left(
    queues: Callable[..., BuildQueue],
) -> None:
    mine, other = fleet(queues("mine")), fleet(queues("other"))
    assert mine.share() == (0, len(IDS))
    first = mine.take(workers=1)
    assert first is not None
    assert mine.share() == (len(first.ids), len(IDS))
    # Only this job has claimed so far: what the build has left is its own
    # (though its batches are sized for ASSUMED_JOBS jobs like it).
    left = len(IDS) - len(first.ids)
    assert mine.expected == pytest.approx(left)
    assert len(first.ids) <= len(IDS) / ASSUMED_JOBS
    second = other.take(workers=3)  # a job of 3 workers joins: 4 workers in all
    assert second is not None
    third = mine.take(workers=1)
    assert third is not None
    taken = len(first.ids) + len(third.ids)
    assert mine.share() == (taken, len(IDS))
    left = len(IDS) - taken - len(second.ids)
    assert mine.expected == pytest.approx(left / 4)  # its worker's part of four
    while other.take(workers=3):
        pass
    assert mine.take(workers=1) is None
    assert mine.expected == 0.0  # nothing left to hand out anywhere


def test_a_stopped_run_gives_its_tests_back_to_the_build(
    queues: Callable[..., BuildQueue],
) -> None:
    mine, other = fleet(queues("mine")), fleet(queues("other"))
    held = mine.take(workers=1)
    assert held is not None
    mine.put_back(held.ids)
    assert mine.clear() == list(held.ids)  # not run here
    assert not mine
    taken: set[str] = set()
    while batch := other.take(workers=1):
        taken |= set(batch.ids)
    assert set(held.ids) <= taken


def test_a_job_waits_while_others_hold_tests_and_asks_again(
    queues: Callable[..., BuildQueue],
) -> None:
    settled: list[int] = []
    other = fleet(queues("other", lease_s=1.5))
    mine = fleet(queues("mine"), poll_s=0.5, settle=lambda: settled.append(1))
    while other.take(workers=1):  # the other job holds every test
        pass
    assert mine.take(workers=1) is None  # nothing claimable
    assert settled == [1]  # its own finished tests were marked done first
    assert mine  # but work may come back
    assert mine.wake_at(10.0) == 10.5
    time.sleep(1.6)  # the other job went silent: its leases run out
    back = mine.take(workers=1)
    assert back is not None
    assert back.ids


def test_a_waiting_job_asks_again_when_the_first_lease_of_another_runs_out(
    queues: Callable[..., BuildQueue],
) -> None:
    other = fleet(queues("other", lease_s=2.0))
    mine = fleet(queues("mine"), poll_s=30.0)
    while other.take(workers=1):
        pass
    assert mine.take(workers=1) is None
    wake = mine.wake_at(100.0)
    assert wake is not None
    assert wake <= 102.1  # not the 30 s poll: when the other job's leases run out


def test_a_job_with_nothing_to_claim_marks_each_test_done_and_the_last_wakes_the_others(
    queues: Callable[..., BuildQueue],
) -> None:
    woken = threading.Event()
    waiting_keeper = LeaseKeeper(queues("waiting"), interval=600, on_notice=woken.set)
    waiting = fleet(queues("waiting"), settle=waiting_keeper.promptly)
    working_keeper = LeaseKeeper(queues("working"), interval=600)
    working = fleet(queues("working"), settle=working_keeper.promptly)
    batches = []
    while batch := working.take(workers=1):
        batches.append(batch)
    assert not working  # nothing more to take: what it holds, its workers finish
    assert waiting.take(workers=1) is None  # the others hold every test: it waits
    assert waiting  # (not finished)
    for batch in batches:
        for test_id in batch.ids:
            working_keeper.finished(TestRecord(test_id, Status.SUCCESS, None, 0, 1))
    # Marked done as they finish (not at the next renewal, ten minutes away), and
    # the last one wakes the waiting job.
    assert woken.wait(30)
    assert waiting.take(workers=1) is None
    assert not waiting  # the build is finished
    working_keeper.close()
    waiting_keeper.close()


def test_an_abandoned_test_is_reported_failed_not_run(queues: Callable[..., BuildQueue]) -> None:
    for attempt in range(2):
        # A lease long enough to outlast the claiming (or the job would give up on
        # its own tests), then the job dies: it never renews.
        doomed = fleet(queues(f"doomed{attempt}", lease_s=0.5, max_attempts=2))
        while doomed.take(workers=100):
            pass
        time.sleep(0.6)
    reported: list[TestRecord] = []
    survivor = fleet(queues("survivor", max_attempts=2), reported)
    ran: list[str] = []
    while batch := survivor.take(workers=100):
        ran += batch.ids
    assert sorted(r.test_id for r in reported) == IDS
    assert all(r.status is Status.FAIL for r in reported)
    assert (
        "jobs of this build stopped while running it" in reported[0].attachments[0].content.decode()
    )
    assert ran == []


def test_a_controller_runs_its_share_and_marks_it_done(queues: Callable[..., BuildQueue]) -> None:
    done_queue = queues("job")
    keeper = LeaseKeeper(queues("job"))

    def work(p: Plan, report: Callable[[TestRecord], None], wake: Callable[[], None]) -> WorkSource:
        done_queue.join(planned_order(p), revision="r", environment="e")
        return FleetQueue(done_queue, p, report, settle=keeper.promptly)

    tests = [FakeTest(test_id, duration=0.5) for test_id in IDS]
    result = Controller(
        FakeBackend(tests),
        RunOptions(concurrency=2),
        record_sinks=[keeper.finished],
        work=work,
    ).run()
    keeper.close()
    assert result.ran == len(IDS)
    state = queues("observer").state()
    assert (state.done, state.queued, state.others) == (len(IDS), 0, 0)


class _Progressed(NullReporter):
    def __init__(self) -> None:
        self.progress: Progress | None = None

    def planned(self, progress: Progress) -> None:
        self.progress = progress


def test_a_jobs_progress_counts_its_share_not_the_whole_build(
    queues: Callable[..., BuildQueue],
) -> None:
    other = fleet(queues("other"))
    held = other.take(workers=1)  # another job ran some of the build already
    assert held is not None
    other._queue.done(held.ids)
    reporter = _Progressed()

    def work(p: Plan, report: Callable[[TestRecord], None], wake: Callable[[], None]) -> WorkSource:
        return FleetQueue(queues("mine"), p, report)

    tests = [FakeTest(test_id) for test_id in IDS]
    result = Controller(
        FakeBackend(tests), RunOptions(concurrency=2), reporter=reporter, work=work
    ).run()
    progress = reporter.progress
    assert progress is not None
    assert progress.build_total == len(IDS)
    assert result.ran == len(IDS) - len(held.ids)
    assert progress.done == progress.total == result.ran  # ended at its own total
