"""Scheduling at scale, on the fake backend's virtual clock (issue 14).

A 15,000-test suite with OpenStack-like durations (most tests tens of
milliseconds, a long tail, a few tests of minutes) on 10, 50 and 200 workers
that start after different delays, 1% of which die mid-run (at least one).
Proctor's real controller and scheduler (``Controller``, ``plan_units``,
``WorkQueue``) drive fake workers (``proctor.testing.fake_backend``): the clock is
virtual, so a run of an hour of test time takes seconds of CPU and is
deterministic for a seed.

The history the scheduler plans from is an estimate: each test's real duration
is its recorded one times a log-normal noise factor (``--noise``, sigma 0.3).

Printed per size: the bound ``max(longest test, total / workers)`` (real
durations, start-up excluded; "bound+up": ``max(first start-up + longest,
(total + every worker's start-up) / workers)``, which no scheduler can beat
either), proctor's makespan (virtual time from the start
of the run to the end of the last test) and its ratio to the bound, and the
same for a static timing split on the same data: the LPT split of
``--shard`` (``proctor.runner.shard.split``), one part per worker, each worker
running its part from the end of its own start-up; a worker that dies loses
the test it was running and, after a restart (another start-up), runs the rest
of its part. Target: proctor within 10% of the bound at every size.

Usage::

    python bench/scale.py                        # 15,000 tests; 10, 50, 200 workers
    python bench/scale.py --tests 3000 --workers 10 50 --seed 2
    python bench/scale.py --minute-tests 0      # no test longer than total / workers
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from proctor.runner.controller import Controller
from proctor.runner.options import RunOptions
from proctor.runner.shard import split
from proctor.testing import EPOCH_NS, FakeBackend, FakeSuite, FakeTest
from proctor.wire.event import NS_PER_SECOND
from proctor.wire.record import TestRecord


@dataclass(frozen=True)
class Scenario:
    ids: list[str]
    recorded: dict[str, float]  # what the history says
    actual: dict[str, float]  # what the tests take in this run
    startups: list[float]  # per worker
    deaths: dict[int, float]  # worker -> virtual time it is killed


def make_suite(
    count: int, rng: random.Random, minutes: int = 5
) -> tuple[list[str], dict[str, float]]:
    """Ids in discovery order and their recorded durations (OpenStack-like)."""
    ids: list[str] = []
    recorded: dict[str, float] = {}
    per_class = 25
    for n in range(count):
        module, klass = divmod(n // per_class, 8)
        test_id = f"project.tests.unit.test_m{module:03d}.Test{klass}.test_{n:05d}"
        ids.append(test_id)
        roll = rng.random()
        if roll < 0.005:
            seconds = rng.uniform(2.0, 20.0)  # functional-ish tests
        else:
            seconds = rng.lognormvariate(math.log(0.03), 1.1)  # median 30 ms, mean ~55 ms
        recorded[test_id] = seconds
    for test_id in rng.sample(ids, minutes):  # a few tests of minutes
        recorded[test_id] = rng.uniform(60.0, 240.0)
    return ids, recorded


def make_scenario(
    ids: list[str], recorded: dict[str, float], workers: int, noise: float, seed: int
) -> Scenario:
    rng = random.Random(seed * 1000 + workers)
    actual = {i: d * rng.lognormvariate(0.0, noise) for i, d in recorded.items()}
    startups = [rng.uniform(2.0, 10.0) for _ in range(workers)]
    total = sum(actual.values())
    horizon = max(total / workers, max(actual.values()))
    dying = rng.sample(range(workers), max(1, math.ceil(workers / 100)))
    deaths = {w: rng.uniform(startups[w], startups[w] + 0.8 * horizon) for w in dying}
    return Scenario(ids, recorded, actual, startups, deaths)


class _History:
    def __init__(self, durations: dict[str, float]) -> None:
        self._durations = durations

    def durations(self, ids: Iterable[str]) -> dict[str, float]:
        known = self._durations
        return {i: known[i] for i in ids if i in known}

    def failing_ids(self) -> list[str]:
        return []

    def last_run(self) -> Sequence[TestRecord]:
        return ()

    def expected_total(self) -> float | None:
        return sum(self._durations.values())


@dataclass
class Outcome:
    makespan: float
    tests_done: int
    failed: int


def run_dynamic(scenario: Scenario, workers: int, lag: float) -> Outcome:
    tests = [FakeTest(i, duration=scenario.actual[i]) for i in scenario.ids]
    suite = FakeSuite(
        tests,
        startup=sum(scenario.startups) / workers,  # replacements
        startup_for=dict(enumerate(scenario.startups)),
        results_lag=lag,
    )
    backend = FakeBackend(suite)
    for worker, when in scenario.deaths.items():

        def kill(worker: int = worker) -> None:
            handle = backend.workers.get(worker)
            if handle is not None:
                handle.kill()

        backend.schedule(when, kill)
    last = 0
    done = 0

    def seen(record: TestRecord) -> None:
        nonlocal last, done
        done += 1
        if record.stop is not None:
            last = max(last, record.stop)

    options = RunOptions(concurrency=workers, start_wait=1e9, quit_wait=1e9)
    controller = Controller(
        backend, options, history=_History(scenario.recorded), record_sinks=[seen]
    )
    result = controller.run()
    return Outcome((last - EPOCH_NS) / NS_PER_SECOND, done, result.failed)


def run_static(scenario: Scenario, workers: int) -> Outcome:
    parts = split(scenario.ids, scenario.recorded, workers)
    ends: list[float] = []
    failed = 0
    for worker, part in enumerate(parts):
        now = scenario.startups[worker]
        death = scenario.deaths.get(worker)
        for test_id in part:
            took = scenario.actual[test_id]
            if death is not None and now + took > death:
                failed += 1  # it was running: lost with its worker
                now = death + scenario.startups[worker]  # restarted, goes on with its part
                death = None
                continue
            now += took
        ends.append(now)
    return Outcome(max(ends), len(scenario.ids), failed)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tests", type=int, default=15_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[10, 50, 200])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--noise", type=float, default=0.3, help="sigma of real/recorded")
    parser.add_argument("--minute-tests", type=int, default=5, help="tests of 1-4 minutes")
    parser.add_argument("--lag", type=float, default=0.002, help="seconds results take to arrive")
    args = parser.parse_args(argv)
    ids, recorded = make_suite(args.tests, random.Random(args.seed), args.minute_tests)
    print(
        f"{args.tests} tests, recorded total {sum(recorded.values()):.0f} s, "
        f"longest {max(recorded.values()):.0f} s; start-up 2-10 s; 1% of workers die"
    )
    print(
        f"{'workers':>7} {'bound s':>9} {'proctor s':>10} {'ratio':>6} "
        f"{'static s':>9} {'ratio':>6} {'bound+up':>8} {'ratio':>6} {'static':>6} "
        f"{'deaths':>6} {'failed':>6} {'cpu s':>6}"
    )
    worst = worst_ready = 0.0
    for workers in args.workers:
        scenario = make_scenario(ids, recorded, workers, args.noise, args.seed)
        total = sum(scenario.actual.values())
        bound = max(max(scenario.actual.values()), total / workers)
        # No worker works before its start-up ends: a bound that counts it.
        ready = max(
            min(scenario.startups) + max(scenario.actual.values()),
            (total + sum(scenario.startups)) / workers,
        )
        started = time.process_time()
        dynamic = run_dynamic(scenario, workers, args.lag)
        cpu = time.process_time() - started
        static = run_static(scenario, workers)
        assert dynamic.tests_done == len(ids), (dynamic.tests_done, len(ids))
        ratio = dynamic.makespan / bound
        worst = max(worst, ratio)
        worst_ready = max(worst_ready, dynamic.makespan / ready)
        print(
            f"{workers:>7} {bound:>9.1f} {dynamic.makespan:>10.1f} {ratio:>6.3f} "
            f"{static.makespan:>9.1f} {static.makespan / bound:>6.3f} "
            f"{ready:>8.1f} {dynamic.makespan / ready:>6.3f} {static.makespan / ready:>6.3f} "
            f"{len(scenario.deaths):>6} {dynamic.failed:>6} {cpu:>6.1f}"
        )
    print(
        f"worst proctor ratio: {worst:.3f} to the bound, {worst_ready:.3f} to bound+up "
        f"({'within' if worst <= 1.1 else 'over'} 10% of the bound)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
