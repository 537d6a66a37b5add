"""The work queue: which tests go next, in what order, in what batch sizes.

The controller hands work out as workers become free; this module decides what.

**Units.** Tests are bundled into units that travel together:

* a *hard* unit is a ``group_regex`` group (``re.match(...).group(0)``, as in
  stestr): its tests must share a worker and keep their discovery order, so it
  is never split and never shuffled inside;
* a *soft* unit is the tests of one class (unittest) or one module/class
  (pytest) that are not in a hard group. Running them together keeps
  ``setUpClass`` and class/module fixtures to one set-up per batch, as a
  serial run has them; a soft unit may be split across batches when balance
  needs it;
* a *heavy* test (expected to take at least 1% of a worker's share of the run,
  and at least 0.1 s) is a unit of its own, so that it can be started early
  wherever its class-mates run.

**Order.** Units are sorted by the longest piece of work they hold that
cannot be split (a hard unit's whole time, a soft unit's longest test), longest
first: the LPT rule, since long indivisible work started last is what makes a
parallel run finish late. A class of twenty 50 ms tests is one second of work
but can be spread over workers 50 ms at a time, so it goes after a single
800 ms test. Ties go to the larger total, then to discovery order.

A test with no recorded duration is expected to take the mean of the
known durations of the selected tests, or a nominal 10 ms when nothing is
known, so that with no history the largest classes go first and everything
else keeps discovery order.

With a random seed the order is a uniform shuffle (``random.Random(seed)``)
at every level that does not cost correctness (the order of units, and of
tests inside soft units), except that, with more than one worker, units whose
unsplittable work is big enough to unbalance the tail (at least one initial
batch, and at least :data:`HEAVY_FLOOR` seconds) still go first, in shuffled
order among themselves. Without that floor a small fast suite had "big" units
made of noise (a first test that paid an import, 20 ms against 1 ms), and the
same test started first under nearly every seed.

**Batches.** Each batch aims at ``remaining expected time / (3 x workers)``, so
batches start large (few round trips) and shrink as the queue drains, and all
workers run out of work at about the same time. A unit is added whole while it
fits; the first unit of a batch is split to fit if it is soft; a hard unit is
never split, even if that overshoots.
"""

from __future__ import annotations

import math
import random
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from proctor.wire.record import TestRecord

__all__ = [
    "MIN_BATCH",
    "NOMINAL_DURATION",
    "WORKER_WORTH",
    "Batch",
    "Plan",
    "Unit",
    "WorkFactory",
    "WorkQueue",
    "WorkSource",
    "locality_key",
    "own_queue",
    "plan_units",
    "workers_worth",
]

NOMINAL_DURATION = 0.01
"""Seconds assumed for a test when no test of the run has a recorded duration."""

BATCHES_PER_WORKER = 3
"""A batch aims at 1/(this x workers) of the expected work still queued."""

MIN_BATCH = 0.02
"""Seconds of expected work below which a batch is not made smaller.

Each batch costs a round trip (the worker's ``done``, the controller's next
``run``: a few milliseconds, more when the controller is busy storing results),
so shrinking batches below this only adds waiting. Measured on 5,000 trivial
tests: without the floor, the last fifth of the run went in seventeen batches of
about 2 ms each, most of it spent on round trips. Workers still finish within
about this much of each other."""

WORKER_WORTH = 0.25
"""Seconds of expected test time that make one more worker worth starting.

Starting a worker costs an interpreter, the suite's imports and discovery
(about 0.1 s of CPU for a small suite, more for a big one), and on a machine
with few cores it competes with the workers already running. Measured on 2
cores: 5,000 tests of 14 us each (0.07 s in all) finish sooner on one worker
than on two.
"""

HEAVY_SHARE = 0.01
HEAVY_FLOOR = 0.1

_PARAMS = re.compile(r"(\[.*\]|\(.*\))$")


def workers_worth(expected_total: float | None, cores: int) -> int:
    """How many workers a run expected to take ``expected_total`` seconds of test
    time should start on ``cores`` cores (all of them when nothing is known)."""
    if expected_total is None:
        return max(cores, 1)
    return max(1, min(cores, int(expected_total / WORKER_WORTH) + 1))


_PARAMETERS_END = (")", "]")


def locality_key(test_id: str) -> str:
    """The class or module a test belongs to: what its fixtures are shared with.

    ``pkg.mod.Class.test_x(scenario)`` -> ``pkg.mod.Class``;
    ``tests/test_a.py::TestC::test_x[1]`` -> ``tests/test_a.py::TestC``;
    ``tests/test_a.py::test_y`` -> ``tests/test_a.py``.
    """
    base = (_PARAMS.sub("", test_id) or test_id) if test_id[-1:] in _PARAMETERS_END else test_id
    if "::" in base:
        return base.rsplit("::", 1)[0]
    return base.rsplit(".", 1)[0]


@dataclass(slots=True)
class Unit:
    """Tests that travel together (see the module docstring)."""

    ids: list[str]
    costs: list[float]
    hard: bool = False
    position: int = 0  # discovery position of the first test, for stable ties

    @property
    def expected(self) -> float:
        return sum(self.costs)

    @property
    def granularity(self) -> float:
        """The longest piece of it that cannot be split: what it can add to the tail
        of a run if it starts late (a hard unit's whole time, a soft unit's longest test)."""
        return self.expected if self.hard else max(self.costs, default=0.0)


@dataclass(frozen=True, slots=True)
class Batch:
    """Tests to send to one worker in one ``RunTests`` command."""

    ids: tuple[str, ...]
    costs: tuple[float, ...]

    @property
    def expected(self) -> float:
        return sum(self.costs)


@dataclass(slots=True)
class Plan:
    """The ordered units of a run and the estimates they were built from."""

    units: list[Unit]
    estimates: dict[str, float] = field(default_factory=dict)
    unknown_estimate: float = NOMINAL_DURATION
    group_regex: str | None = None
    from_history: bool = False
    """Whether any estimate is a recorded duration (not a guess)."""

    @property
    def expected(self) -> float:
        return sum(unit.expected for unit in self.units)


def _estimates(
    ids: Sequence[str], durations: Mapping[str, float]
) -> tuple[dict[str, float], float]:
    known = [durations[test_id] for test_id in ids if test_id in durations]
    unknown = sum(known) / len(known) if known else NOMINAL_DURATION
    unknown = max(unknown, 1e-6)
    return {test_id: max(durations.get(test_id, unknown), 1e-6) for test_id in ids}, unknown


def plan_units(
    ids: Sequence[str],
    durations: Mapping[str, float],
    *,
    workers: int,
    group_regex: str | None = None,
    seed: int | None = None,
    ordered: bool = False,
) -> Plan:
    """Bundle and order ``ids`` (discovery order) for a run on ``workers`` workers.

    ``ordered`` keeps ``ids`` exactly as given, as one hard unit (replaying a
    worker's sequence, isolation probes).
    """
    estimates, unknown = _estimates(ids, durations)
    if ordered:
        unit = Unit(list(ids), [estimates[i] for i in ids], hard=True)
        return Plan([unit] if ids else [], estimates, unknown, group_regex, bool(durations))
    total = sum(estimates.values())
    heavy = max(HEAVY_FLOOR, HEAVY_SHARE * total / max(workers, 1))
    grouper = re.compile(group_regex) if group_regex else None
    units: dict[tuple[bool, str], Unit] = {}
    singles: list[Unit] = []
    for position, test_id in enumerate(ids):  # (once per test: kept lean)
        cost = estimates[test_id]
        group = _group_of(grouper, test_id) if grouper is not None else None
        if group is not None:
            key = (True, group)
        elif cost >= heavy:
            singles.append(Unit([test_id], [cost], position=position))
            continue
        elif test_id[-1:] in _PARAMETERS_END or "::" in test_id:
            key = (False, locality_key(test_id))
        else:  # a plain unittest id: its class is what comes before the last dot
            key = (False, test_id.rsplit(".", 1)[0])  # = locality_key(test_id)
        found = units.get(key)
        if found is None:
            found = units[key] = Unit([], [], hard=key[0], position=position)
        found.ids.append(test_id)
        found.costs.append(cost)
    all_units = [*units.values(), *singles]
    if seed is None:
        all_units.sort(key=lambda u: (-u.granularity, -u.expected, u.position))
    else:
        big = max(total / (BATCHES_PER_WORKER * workers), HEAVY_FLOOR) if workers > 1 else math.inf
        all_units = _shuffled(all_units, seed, big)
    known = any(test_id in durations for test_id in ids)
    return Plan(all_units, estimates, unknown, group_regex, known)


def _group_of(grouper: re.Pattern[str] | None, test_id: str) -> str | None:
    match = grouper.match(test_id) if grouper is not None else None
    return match.group(0) if match is not None and match.group(0) else None


def _shuffled(units: list[Unit], seed: int, big: float) -> list[Unit]:
    rng = random.Random(seed)
    units.sort(key=lambda u: u.position)  # independent of dict order and history
    for unit in units:
        if not unit.hard and len(unit.ids) > 1:
            pairs = list(zip(unit.ids, unit.costs, strict=True))
            rng.shuffle(pairs)
            unit.ids = [test_id for test_id, _ in pairs]
            unit.costs = [cost for _, cost in pairs]
    rng.shuffle(units)
    first = [unit for unit in units if unit.granularity >= big]
    rest = [unit for unit in units if unit.granularity < big]
    return first + rest


class WorkSource(Protocol):
    """Where a run's workers get their tests: this run's own :class:`WorkQueue`,
    or a build's queue shared by several CI jobs (:mod:`proctor.runner.fleet`)."""

    expected: float
    """Expected seconds of the work not handed out yet (what progress shows)."""
    count: int
    """Tests not handed out yet (that this run knows of)."""

    def __bool__(self) -> bool:
        """Whether work may still come: queued here, or elsewhere and not done."""

    def estimate(self, test_id: str) -> float:
        """The expected seconds of a test of this run."""

    def take(self, workers: int) -> Batch | None:
        """The next batch for a free worker; None when nothing can be had now."""

    def put_back(self, ids: Iterable[str]) -> None:
        """Tests a worker did not run (it died): first in line again."""

    def clear(self) -> list[str]:
        """Drop the rest (a stopped run); the ids dropped, which are not run."""

    def wake_at(self, now: float) -> float | None:
        """When to ask again after :meth:`take` gave nothing though the source
        is not empty (work held elsewhere may come back); None: no need."""

    def share(self) -> tuple[int, int] | None:
        """(tests taken so far, the build's tests) when the run takes a share of a
        build's queue; None when the work is the run's own."""


WorkFactory = Callable[[Plan, Callable[[TestRecord], None], Callable[[], None]], WorkSource]
"""Makes a run's work source from its plan. The first callable given with it
reports a test as finished without running it (a culprit another job gave up
on); the second makes the controller ask the source again at once (from any
thread: work held elsewhere came back, or the build is finished)."""


class WorkQueue:
    """The units not yet handed out, with batch sizing (see the module docstring)."""

    def __init__(self, plan: Plan) -> None:
        self._units: deque[Unit] = deque(plan.units)
        self._estimates = plan.estimates
        self._from_history = plan.from_history
        self._unknown = plan.unknown_estimate
        self._grouper = re.compile(plan.group_regex) if plan.group_regex else None
        self.expected = plan.expected
        self.count = sum(len(unit.ids) for unit in plan.units)

    def __bool__(self) -> bool:
        return bool(self._units)

    def estimate(self, test_id: str) -> float:
        """The expected seconds of a test of this run."""
        return self._estimates.get(test_id, self._unknown)

    def share(self) -> None:
        """The run's own work: not a share of a build's."""
        return None

    def take(self, workers: int) -> Batch | None:
        """The next batch for a free worker, or None when nothing is queued."""
        if not self._units:
            return None
        if workers <= 1:
            target = math.inf  # nobody to balance against: everything, in one round trip
        else:
            target = self.expected / (BATCHES_PER_WORKER * workers)
            if self._from_history:
                # Only real durations justify the floor; nominal estimates of unknown
                # tests would put a whole small suite on the first worker.
                target = max(target, MIN_BATCH)
        ids: list[str] = []
        costs: list[float] = []
        total = 0.0
        units = self._units
        while units:
            unit = units[0]
            size = unit.expected
            if total + size <= target or (not ids and unit.hard):
                units.popleft()
                ids.extend(unit.ids)
                costs.extend(unit.costs)
                total += size
                continue
            if ids:
                break
            # The first unit is soft and bigger than the target: take a prefix.
            taken = 0
            while taken < len(unit.ids) and (taken == 0 or total + unit.costs[taken] <= target):
                total += unit.costs[taken]
                taken += 1
            ids.extend(unit.ids[:taken])
            costs.extend(unit.costs[:taken])
            del unit.ids[:taken]
            del unit.costs[:taken]
            if not unit.ids:
                units.popleft()
            break
        self.expected = max(self.expected - total, 0.0) if units else 0.0
        self.count -= len(ids)
        return Batch(tuple(ids), tuple(costs))

    def put_back(self, ids: Iterable[str]) -> None:
        """Return tests a worker did not run (it died) to the front of the queue, in order.

        Consecutive tests of one ``group_regex`` group come back as a hard unit,
        the others as soft units, so the group rule still holds for the rest.
        """
        units: list[Unit] = []
        keys: list[str | None] = []
        for test_id in ids:
            key = _group_of(self._grouper, test_id)
            if not units or keys[-1] != key:
                units.append(Unit([], [], hard=key is not None))
                keys.append(key)
            cost = self.estimate(test_id)
            units[-1].ids.append(test_id)
            units[-1].costs.append(cost)
            self.expected += cost
            self.count += 1
        self._units.extendleft(reversed(units))

    def clear(self) -> list[str]:
        """Drop everything still queued (a stopped run); the dropped ids, in queue order."""
        dropped = [test_id for unit in self._units for test_id in unit.ids]
        self._units.clear()
        self.expected = 0.0
        self.count = 0
        return dropped

    def wake_at(self, now: float) -> float | None:
        """Never: everything this queue will hand out is in it."""
        return None


def own_queue(
    plan: Plan, report: Callable[[TestRecord], None], wake: Callable[[], None]
) -> WorkSource:
    """The default work source: the run's own :class:`WorkQueue`."""
    return WorkQueue(plan)
