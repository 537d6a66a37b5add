"""The build queue (proctor.store.build_queue) on a real PostgreSQL: claims that
never overlap, leases that run out and give work back, conditional completion,
abandoned culprits, and the checks a joining job must pass."""

from __future__ import annotations

import selectors
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from proctor.store.build_queue import BuildMismatch, BuildQueue, selection_digest
from proctor.store.errors import StoreError

pytestmark = pytest.mark.postgres

PLAN = [(f"tests.test_m.T.test_{n:03}", 1.0) for n in range(100)]


@pytest.fixture
def jobs(postgres_url: str) -> Iterator[Callable[..., BuildQueue]]:
    opened: list[BuildQueue] = []

    def job(name: str, build: str = "build-1", **options: float) -> BuildQueue:
        queue = BuildQueue(postgres_url, build, name, **options)  # type: ignore[arg-type]
        opened.append(queue)
        return queue

    yield job
    for queue in opened:
        queue.close()


def join(queue: BuildQueue, plan: list[tuple[str, float]] = PLAN) -> bool:
    return queue.join(plan, revision="abc123", environment="py3.11:deadbeef")


def test_the_first_job_fills_the_queue_and_the_others_join_it(
    jobs: Callable[..., BuildQueue],
) -> None:
    first, second = jobs("job-1"), jobs("job-2")
    assert join(first) is True
    assert join(second) is False
    state = second.state()
    assert (state.total, state.queued, state.done) == (100, 100, 0)
    assert not state.finished


def test_a_job_that_differs_is_refused_with_what_differs(jobs: Callable[..., BuildQueue]) -> None:
    join(jobs("job-1"))
    late = jobs("job-2")
    with pytest.raises(BuildMismatch, match=r"revision abc123.*this job has 0ther"):
        late.join(PLAN, revision="0ther", environment="py3.11:deadbeef")
    with pytest.raises(BuildMismatch, match="another environment"):
        late.join(PLAN, revision="abc123", environment="py3.12:cafe")
    with pytest.raises(
        BuildMismatch, match="another selection of tests \\(100 tests; this job selects 99\\)"
    ):
        late.join(PLAN[:-1], revision="abc123", environment="py3.11:deadbeef")
    # The same tests in another order are the same selection.
    assert late.join(PLAN[::-1], revision="abc123", environment="py3.11:deadbeef") is False
    assert selection_digest(["b", "a"]) == selection_digest(["a", "b"])


def test_sqlite_is_refused_with_what_to_do_instead(tmp_path: object) -> None:
    with pytest.raises(StoreError, match=r"needs a PostgreSQL repository.*--shard K/N"):
        BuildQueue(str(tmp_path), "b", "job")


def test_batches_shrink_and_late_jobs_just_take_less(jobs: Callable[..., BuildQueue]) -> None:
    queue = jobs("job-1")
    join(queue)
    sizes = []
    while claim := queue.claim(workers=2):
        sizes.append(len(claim.ids))
        assert queue.done(claim.ids) == set(claim.ids)
    assert sum(sizes) == 100
    assert sizes[0] == 3  # 100 s left / (4 batches x 2 workers x 4 jobs at least) = 3.1 s
    assert sizes == sorted(sizes, reverse=True)
    assert sizes[-1] == 1
    assert queue.state().finished


def test_batches_shrink_with_the_time_still_claimable_not_with_what_is_marked_done(
    jobs: Callable[..., BuildQueue],
) -> None:
    # A job marks its tests done late (in batches, off the results' path): what it
    # holds must not keep the batches big, or every job holds a big one at the end.
    queue = jobs("job-1")
    join(queue)
    sizes = []
    while claim := queue.claim(workers=1):
        sizes.append(len(claim.ids))
    assert sum(sizes) == 100
    assert sizes[0] == 6  # 100 s claimable / (4 batches x 4 workers at least) = 6.25 s
    assert sizes == sorted(sizes, reverse=True)
    assert sizes[-1] == 1


def test_batches_are_sized_for_the_workers_every_job_registers(
    jobs: Callable[..., BuildQueue],
) -> None:
    plan = [(f"tests.test_m.T.test_{n:03}", 0.25) for n in range(400)]
    queues = [jobs(f"job-{n}") for n in range(6)]
    for queue in queues:
        join(queue, plan)
    taken = sum(len(queue.claim(workers=4).ids) for queue in queues)  # 24 workers in all
    first = queues[0]
    # (400 - taken) x 0.25 s / (4 batches x 24 workers), in tests of 0.25 s
    assert len(first.claim(workers=4).ids) == (400 - taken) // 96
    for queue in queues[1:]:
        queue.give_back()  # stopped: their workers no longer count
    # 4 workers registered now, counted as at least 4 x 4 (more jobs may yet come)
    assert len(first.claim(workers=4).ids) == first.state().queued // 64


def test_the_job_that_finishes_the_build_or_gives_tests_back_wakes_the_waiting_ones(
    jobs: Callable[..., BuildQueue],
) -> None:
    waiting, working = jobs("waiting"), jobs("working")
    join(waiting)
    join(working)
    waiting.listen()
    held: list[str] = []
    while claim := working.claim(workers=100):
        held += claim.ids
    assert not waiting.claim(workers=1)
    assert working.give_back(held[:1]) == 1
    assert _woken(waiting)
    assert waiting.claim(workers=1).ids == (held[0],)
    assert waiting.done(held[:1], notify=True) == set(held[:1])
    assert working.done(held[1:-1], notify=True) == set(held[1:-1])
    assert not _woken(waiting, wait=0.2)  # tests are still held: nothing to ask again
    assert working.done(held[-1:], notify=True) == set(held[-1:])
    assert _woken(waiting)  # the last result: the build is finished
    assert waiting.state().finished


def _woken(queue: BuildQueue, wait: float = 10.0) -> bool:
    """Whether a notification reaches ``queue`` within ``wait`` seconds."""
    if queue.notified():
        return True
    with selectors.DefaultSelector() as selector:
        selector.register(queue.fileno(), selectors.EVENT_READ)
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            selector.select(left)
            if queue.notified():
                return True
    return False


def test_concurrent_claims_never_hand_out_a_test_twice(jobs: Callable[..., BuildQueue]) -> None:
    queues = [jobs(f"job-{n}") for n in range(4)]
    for queue in queues:
        join(queue)
    taken: dict[str, list[str]] = {queue.job: [] for queue in queues}
    barrier = threading.Barrier(len(queues))

    def work(queue: BuildQueue) -> None:
        barrier.wait()
        # All four at once: a hundred tests are enough for each. A claim that met
        # only rows others were taking comes back empty; the job asks again, as a
        # run does.
        while not (first := queue.claim(workers=1)) and not queue.state().finished:
            pass
        taken[queue.job].extend(first.ids)
        barrier.wait()
        queue.done(first.ids)
        while not queue.state().finished:
            claim = queue.claim(workers=1)
            taken[queue.job].extend(claim.ids)
            queue.done(claim.ids)

    threads = [threading.Thread(target=work, args=(queue,)) for queue in queues]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    every = [test_id for ids in taken.values() for test_id in ids]
    assert sorted(every) == sorted(test_id for test_id, _ in PLAN)  # each exactly once
    assert all(taken.values())  # every job got work


def test_a_job_that_stops_renewing_gives_its_work_back_when_the_lease_runs_out(
    jobs: Callable[..., BuildQueue],
) -> None:
    dead, alive = jobs("dead", lease_s=1.5), jobs("alive", lease_s=30.0)
    join(dead)
    join(alive)
    lost = dead.claim(workers=1)
    assert lost.ids
    state = alive.state()
    assert state.others == len(lost.ids)
    assert state.next_expiry_s is not None
    assert state.next_expiry_s <= 1.5
    # Not yet: the lease is live.
    meanwhile = alive.claim(workers=100)
    assert set(meanwhile.ids).isdisjoint(lost.ids)
    assert alive.done(meanwhile.ids) == set(meanwhile.ids)
    time.sleep(1.7)
    retaken = set()
    while claim := alive.claim(workers=1):
        retaken |= set(claim.ids)
        alive.done(claim.ids)
    assert set(lost.ids) <= retaken
    # The slow job's late result came second: it does not count twice.
    assert dead.done(lost.ids) == set()
    assert dead.renew() == 0
    assert alive.state().finished


def test_renewing_keeps_the_work(jobs: Callable[..., BuildQueue]) -> None:
    slow, other = jobs("slow", lease_s=2.0), jobs("other")
    join(slow)
    join(other)
    mine = slow.claim(workers=1)
    for _ in range(4):
        time.sleep(0.2)
        assert slow.renew() == len(mine.ids)
    assert set(other.claim(workers=1000).ids).isdisjoint(mine.ids)
    assert slow.done(mine.ids) == set(mine.ids)


def test_a_test_whose_jobs_keep_dying_is_abandoned_as_a_culprit(
    jobs: Callable[..., BuildQueue],
) -> None:
    plan = [("tests.test_crash.test_kills_the_job", 50.0), ("tests.test_ok.test_ok", 1.0)]
    killer = "tests.test_crash.test_kills_the_job"
    for attempt in range(2):
        queue = jobs(f"doomed-{attempt}", lease_s=0.2, max_attempts=2)
        join(queue, plan)
        assert queue.claim(workers=1).ids == (killer,)
        time.sleep(0.3)  # the job dies holding it
    survivor = jobs("survivor", max_attempts=2)
    claim = survivor.claim(workers=1)
    assert claim.abandoned == (killer,)
    assert killer not in claim.ids
    state = survivor.state()
    assert state.abandoned == 1


def test_give_back_returns_work_at_once(jobs: Callable[..., BuildQueue]) -> None:
    stopping, other = jobs("stopping"), jobs("other")
    join(stopping)
    join(other)
    held = stopping.claim(workers=1)
    assert stopping.give_back() == len(held.ids)
    assert set(held.ids) <= set(other.claim(workers=1).ids) | set(other.claim(workers=1).ids)


def test_bad_build_ids_are_refused(postgres_url: str) -> None:
    with pytest.raises(StoreError, match="bad build id"):
        BuildQueue(postgres_url, "", "job")
    with pytest.raises(StoreError, match="bad build id"):
        BuildQueue(postgres_url, "a\x1b[2Jb", "job")
    # C1 controls (an 8-bit CSI), DEL, and bytes that were not UTF-8 (surrogates).
    for hostile in ("a\x9b2Jb", "a\x7f", "a\udc9bb"):
        with pytest.raises(StoreError, match="bad build id"):
            BuildQueue(postgres_url, hostile, "job")
        with pytest.raises(StoreError, match="bad job name"):
            BuildQueue(postgres_url, "build", hostile)


def test_two_builds_share_the_tables_not_the_work(jobs: Callable[..., BuildQueue]) -> None:
    one, two = jobs("job", build="one"), jobs("job", build="two")
    join(one)
    join(two)
    while claim := one.claim(workers=1):
        one.done(claim.ids)
    assert one.state().finished
    assert two.state().queued == 100
