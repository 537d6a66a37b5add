"""The scheduler: units, order, batch sizes, and how well a run is balanced."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterable

import pytest

from proctor.runner.controller import Controller
from proctor.runner.history import RecordsHistory
from proctor.runner.options import RunOptions
from proctor.runner.protocol import RunTests
from proctor.runner.schedule import (
    NOMINAL_DURATION,
    Batch,
    Plan,
    WorkQueue,
    WorkSource,
    locality_key,
    plan_units,
)
from proctor.testing import FakeBackend, FakeTest
from proctor.wire.record import TestRecord
from tests.runner.controller_support import passing, run_fake


@pytest.mark.parametrize(
    ("test_id", "key"),
    [
        ("pkg.mod.Class.test_x", "pkg.mod.Class"),
        ("pkg.mod.Class.test_x(scenario one)", "pkg.mod.Class"),
        ("tests/test_a.py::TestC::test_x[1-2]", "tests/test_a.py::TestC"),
        ("tests/test_a.py::test_y", "tests/test_a.py"),
        ("tests/test_a.py::test_y[a.b]", "tests/test_a.py"),
        ("solo", "solo"),
    ],
)
def test_locality_key_is_the_class_or_module(test_id: str, key: str) -> None:
    assert locality_key(test_id) == key


def test_units_are_classes_longest_first() -> None:
    ids = ["m.A.t1", "m.A.t2", "m.B.t1", "m.C.t1", "m.C.t2", "m.C.t3"]
    plan = plan_units(ids, {}, workers=2)
    assert [unit.ids for unit in plan.units] == [
        ["m.C.t1", "m.C.t2", "m.C.t3"],
        ["m.A.t1", "m.A.t2"],
        ["m.B.t1"],
    ]
    assert plan.unknown_estimate == NOMINAL_DURATION


def test_known_durations_order_units_and_unknown_tests_get_the_mean() -> None:
    ids = ["m.A.t1", "m.B.t1", "m.C.t1"]
    plan = plan_units(ids, {"m.A.t1": 0.01, "m.B.t1": 0.05}, workers=2)
    assert plan.unknown_estimate == pytest.approx(0.03)
    assert [unit.ids[0] for unit in plan.units] == ["m.B.t1", "m.C.t1", "m.A.t1"]


def test_a_long_test_goes_before_a_class_of_short_ones_that_sums_to_more() -> None:
    ids = [f"m.Short.t{i}" for i in range(20)] + ["m.Long.t"]
    durations = dict.fromkeys(ids, 0.05) | {"m.Long.t": 0.8}
    plan = plan_units(ids, durations, workers=2)
    assert plan.units[0].ids == ["m.Long.t"]
    assert plan.units[1].expected == pytest.approx(1.0)


def test_ties_keep_discovery_order() -> None:
    ids = [f"m.C{i}.t" for i in range(5)]
    plan = plan_units(ids, dict.fromkeys(ids, 0.5), workers=1)
    assert [unit.ids[0] for unit in plan.units] == ids


def test_a_heavy_test_leaves_its_class_to_start_early() -> None:
    ids = ["m.A.fast1", "m.A.slow", "m.A.fast2", "m.B.t"]
    durations = {"m.A.fast1": 0.01, "m.A.slow": 5.0, "m.A.fast2": 0.01, "m.B.t": 0.5}
    plan = plan_units(ids, durations, workers=2)
    assert [unit.ids for unit in plan.units] == [
        ["m.A.slow"],
        ["m.B.t"],
        ["m.A.fast1", "m.A.fast2"],
    ]


def test_group_regex_groups_are_hard_units_in_discovery_order() -> None:
    ids = ["a.X.t2", "a.X.t1", "b.Y.t1", "a.X.t3"]
    plan = plan_units(ids, {}, workers=2, group_regex=r"a\.", seed=7)
    hard = [unit for unit in plan.units if unit.hard]
    assert [unit.ids for unit in hard] == [["a.X.t2", "a.X.t1", "a.X.t3"]]


def test_a_hard_unit_is_never_split() -> None:
    ids = [f"g.G.t{i}" for i in range(30)] + [f"m.M{i}.t" for i in range(30)]
    queue = WorkQueue(plan_units(ids, {}, workers=4, group_regex=r"g\."))
    batches = []
    while (batch := queue.take(4)) is not None:
        batches.append(batch.ids)
    with_group = [b for b in batches if any(i.startswith("g.") for i in b)]
    assert len(with_group) == 1
    assert [i for i in with_group[0] if i.startswith("g.")] == [f"g.G.t{i}" for i in range(30)]


def test_the_same_seed_gives_the_same_order_and_another_seed_another() -> None:
    ids = [f"m.M{i % 10}.t{i}" for i in range(100)]

    def order(seed: int | None) -> list[str]:
        return [i for unit in plan_units(ids, {}, workers=2, seed=seed).units for i in unit.ids]

    assert order(1) == order(1)
    assert order(1) != order(2)
    assert order(1) != order(None)
    assert sorted(order(1)) == sorted(ids)


def test_random_order_still_starts_the_long_tests_first() -> None:
    ids = [f"m.M{i}.t" for i in range(50)] + ["m.Long.a", "m.Long.b"]
    durations = dict.fromkeys(ids, 0.01) | {"m.Long.a": 10.0, "m.Long.b": 9.0}
    for seed in range(5):
        units = plan_units(ids, durations, workers=2, seed=seed).units
        assert {units[0].ids[0], units[1].ids[0]} == {"m.Long.a", "m.Long.b"}


def test_batches_shrink_as_the_queue_drains_and_cover_every_test_once() -> None:
    ids = [f"m.M{i % 50}.t{i}" for i in range(5000)]
    queue = WorkQueue(plan_units(ids, {}, workers=2))
    sizes = []
    taken: list[str] = []
    while (batch := queue.take(2)) is not None:
        sizes.append(len(batch.ids))
        taken.extend(batch.ids)
    assert sorted(taken) == sorted(ids)
    assert sizes[0] >= 500
    assert sizes[-1] == 1
    assert len(sizes) < 120
    assert all(later <= earlier + 100 for earlier, later in itertools.pairwise(sizes))


def test_put_back_returns_tests_to_the_front_keeping_groups_hard() -> None:
    queue = WorkQueue(plan_units(["z.Z.t"], {}, workers=1, group_regex=r"g\."))
    queue.put_back(["g.A.t1", "g.A.t2", "m.B.t"])
    first = queue.take(100)
    assert first is not None
    assert first.ids[:2] == ("g.A.t1", "g.A.t2")
    assert queue.count + len(first.ids) == 4


def _skewed_suite() -> list[FakeTest]:
    """60 s of test time: three long tests, the rest short, long ones discovered last."""
    tests = [FakeTest(f"pkg.m{i % 12}.C.t{i:03d}", duration=0.2) for i in range(210)]
    tests += [FakeTest(f"pkg.slow.C.t{i}", duration=6.0) for i in range(3)]
    return tests


def test_with_history_a_skewed_suite_finishes_within_5_percent_of_the_bound() -> None:
    suite = _skewed_suite()
    total = sum(t.duration for t in suite)
    history = RecordsHistory()
    first = run_fake(suite, RunOptions(concurrency=2))
    history.add_run(first.records)
    second = run_fake(suite, RunOptions(concurrency=2), history=history)
    bound = max(total / 2, 6.0)
    assert second.result.exit_code == 0
    startup = 0.1  # the fake workers' start-up and listing
    assert second.result.wall_time <= (bound + startup) * 1.05
    assert second.result.wall_time <= first.result.wall_time


def test_fast_tests_get_their_next_batch_before_they_finish_the_current_one() -> None:
    outcome = run_fake(passing(2000), RunOptions(concurrency=2))
    assert outcome.result.counts.get
    for worker in outcome.backend.workers.values():
        runs = [c for c in worker.commands if isinstance(c, RunTests)]
        assert len(runs) >= 3
    # every test ran exactly once, across both workers
    ran = [i for w in outcome.backend.workers.values() for i in w.ran]
    assert sorted(ran) == sorted(t.test_id for t in passing(2000))
    # the pipeline never left a worker idle: virtual time is the work divided by two
    assert outcome.result.wall_time <= 2000 * 0.001 / 2 + 0.1


def test_random_seed_really_changes_what_each_worker_runs() -> None:
    suite = passing(200, modules=10)
    one = run_fake(suite, RunOptions(concurrency=1, seed=1))
    two = run_fake(suite, RunOptions(concurrency=1, seed=2))
    again = run_fake(suite, RunOptions(concurrency=1, seed=1))
    assert one.backend.workers[0].ran != two.backend.workers[0].ran
    assert one.backend.workers[0].ran == again.backend.workers[0].ran
    assert one.result.seed == 1


def test_parallel_class_groups_pytest_ids_by_class_and_keeps_dotted_parameters_in() -> None:
    from proctor.config import PARALLEL_CLASS_REGEX

    ids = [
        "tests/test_a.py::TestC::test_x[1.5]",
        "tests/test_a.py::TestD::test_z",
        "tests/test_a.py::TestC::test_y",
        "tests/test_a.py::test_f[a::b.c]",
        "tests/test_a.py::test_g",
        "pkg.mod.Class.test_x(a.b)",
        "pkg.mod.Class.test_y",
        "pkg.mod.Other.test_z",
    ]
    plan = plan_units(ids, {}, workers=2, group_regex=PARALLEL_CLASS_REGEX)
    groups = sorted(sorted(unit.ids) for unit in plan.units)
    assert all(unit.hard for unit in plan.units)
    assert groups == sorted(
        [
            ["tests/test_a.py::TestC::test_x[1.5]", "tests/test_a.py::TestC::test_y"],
            ["tests/test_a.py::TestD::test_z"],
            ["tests/test_a.py::test_f[a::b.c]", "tests/test_a.py::test_g"],
            ["pkg.mod.Class.test_x(a.b)", "pkg.mod.Class.test_y"],
            ["pkg.mod.Other.test_z"],
        ]
    )


def test_store_history_asks_the_store_for_durations_once_per_run() -> None:
    from typing import cast

    from proctor.runner.history import StoreHistory
    from proctor.store.contract import Store

    class CountingStore:
        def __init__(self) -> None:
            self.calls: list[object] = []

        def durations(self, test_ids: object = None) -> dict[str, float]:
            self.calls.append(test_ids)
            return {"a": 1.0, "b": 2.0, "c": 0.5}

    store = CountingStore()
    history = StoreHistory(cast(Store, store))
    assert history.expected_total() == 3.5
    assert history.durations(["a", "c", "z"]) == {"a": 1.0, "c": 0.5}
    assert store.calls == [None]  # the planning reused what expected_total fetched
    fresh = StoreHistory(cast(Store, store))
    assert fresh.durations(["b"]) == {"a": 1.0, "b": 2.0, "c": 0.5}  # (the stub's answer)
    assert store.calls == [None, ["b"]]


@pytest.mark.parametrize("workers", [1, 2])
def test_random_order_really_shuffles_a_small_suite_with_a_noisy_history(workers: int) -> None:
    # 20 fast tests, one class each; the history says two of them were slower
    # (one paid an import: 20 ms, one 8 ms). Neither can unbalance anything, so
    # neither may start first under every seed.
    ids = [f"pkg.test_m{i:02d}.T.test_x" for i in range(20)]
    durations = dict.fromkeys(ids, 0.001) | {ids[3]: 0.02, ids[11]: 0.008}
    firsts = [
        plan_units(ids, durations, workers=workers, seed=seed).units[0].ids[0] for seed in range(30)
    ]
    counts = Counter(firsts)
    assert len(counts) >= 10  # a uniform shuffle gives about 15 distinct firsts in 30
    assert max(counts.values()) <= 6  # and each test about 1.5 times


def test_random_order_of_one_class_varies_its_first_test() -> None:
    ids = [f"pkg.test_a.T.test_{i:02d}" for i in range(20)]
    firsts = {plan_units(ids, {}, workers=2, seed=seed).units[0].ids[0] for seed in range(30)}
    assert len(firsts) >= 10


def test_run_options_refuse_a_group_regex_that_does_not_compile() -> None:
    from proctor.config import ConfigError

    with pytest.raises(ConfigError, match=r"group_regex: '\(a' is not a valid regular expression"):
        RunOptions(group_regex="(a")


class _HeldElsewhere:
    """A work source whose tests are held elsewhere (another job of a build, say)
    until :meth:`arrive`, which wakes the controller; it never asks to be polled."""

    def __init__(self, plan: Plan, wake: Callable[[], None]) -> None:
        self._queue = WorkQueue(plan)
        self._wake = wake
        self._here = False
        self.expected = self._queue.expected
        self.count = self._queue.count

    def __bool__(self) -> bool:
        return bool(self._queue)

    def estimate(self, test_id: str) -> float:
        return self._queue.estimate(test_id)

    def take(self, workers: int) -> Batch | None:
        return self._queue.take(workers) if self._here else None

    def put_back(self, ids: Iterable[str]) -> None:
        self._queue.put_back(ids)

    def clear(self) -> list[str]:
        return self._queue.clear()

    def wake_at(self, now: float) -> float | None:
        return None

    def share(self) -> None:
        return None

    def arrive(self) -> None:
        self._here = True
        self._wake()


def test_a_work_source_wakes_the_controller_when_work_arrives_from_elsewhere() -> None:
    backend = FakeBackend(passing(6))
    sources: list[_HeldElsewhere] = []

    def work(
        plan: Plan, report: Callable[[TestRecord], None], wake: Callable[[], None]
    ) -> WorkSource:
        sources.append(_HeldElsewhere(plan, wake))
        return sources[0]

    backend.schedule(5.0, lambda: sources[0].arrive())  # (the fake's clock: no waiting)
    # Without the wake-up the fake backend would find the controller waiting for
    # nothing, forever, and say so.
    result = Controller(backend, RunOptions(concurrency=2), work=work).run()
    assert result.ran == 6
    assert backend.now() >= 5.0


def test_a_plan_for_more_workers_than_the_runs_own_orders_short_tests_longest_first() -> None:
    # A queue job (`--queue`) plans for every job's workers: for one worker alone,
    # short tests stay with their class (locality costs nothing there), and a build
    # that shares the plan would end on whatever a class ends with.
    # Each test under 1% of one worker's time, over 1% of each of four workers'.
    suite = [
        FakeTest(f"pkg.m{i % 4}.C.t{i:03d}", duration=1.0 + 0.05 * (i % 7)) for i in range(200)
    ]
    history = RecordsHistory()
    history.add_run(run_fake(suite, RunOptions(concurrency=1)).records)
    plans: list[Plan] = []

    def work(
        plan: Plan, report: Callable[[TestRecord], None], wake: Callable[[], None]
    ) -> WorkSource:
        plans.append(plan)
        return WorkQueue(plan)

    for options in (RunOptions(concurrency=1), RunOptions(concurrency=1, plan_workers=4)):
        Controller(FakeBackend(suite), options, history=history, work=work).run()
    alone, shared = ([c for unit in p.units for c in unit.costs] for p in plans)
    assert len(plans[0].units) == 4  # one per class
    assert len(plans[1].units) == 200  # each test its own unit
    assert alone != sorted(alone, reverse=True)
    assert shared == sorted(shared, reverse=True)  # the last tests are the shortest
