"""From the listed tests to the plan of a run: choose, then order.

The controller calls :func:`plan_run` once the listing is in: the selection
options choose tests (in discovery order, or in the load list's order for a
run that keeps an order), and :func:`~proctor.runner.schedule.plan_units`
orders them with the history's durations. Pure: no workers, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from proctor.runner.history import History
from proctor.runner.options import RunOptions
from proctor.runner.schedule import Plan, Unit, plan_units
from proctor.runner.selection import select
from proctor.runner.shard import shard_of

__all__ = ["RunPlan", "failed_first", "plan_run"]


@dataclass(frozen=True, slots=True)
class RunPlan:
    """What a run will do."""

    discovered: list[str]
    selected: list[str]
    missing: list[str]
    plan: Plan
    has_history: bool


def plan_run(listed: Sequence[str], options: RunOptions, history: History, workers: int) -> RunPlan:
    """Choose and order the tests of a run from the ids a worker listed."""
    missing: list[str] = []
    if options.only is not None:
        discovered = list(options.only)
        ids = list(dict.fromkeys(options.only))
    else:
        discovered = list(dict.fromkeys(listed))
        failing: Sequence[str] = ()
        if options.selection.failing:
            failing = options.failing if options.failing is not None else history.failing_ids()
        chosen = select(discovered, options.selection, failing)
        ids = chosen.ids
        missing = chosen.missing
        if options.ordered and options.selection.load_list is not None:
            kept = set(ids)
            ids = [test_id for test_id in dict.fromkeys(chosen.named) if test_id in kept]
    wants = ids and (not options.list_only or options.shard is not None)
    durations = history.durations(ids) if wants else {}
    if options.shard is not None and options.only is None:
        ids = shard_of(ids, durations, options.shard, group_regex=options.group_regex)
        durations = {test_id: durations[test_id] for test_id in ids if test_id in durations}
    plan = plan_units(
        ids,
        durations,
        workers=workers,
        group_regex=options.group_regex,
        seed=options.seed,
        ordered=options.ordered,
    )
    if options.failed_first and not options.list_only:
        failing = options.failing if options.failing is not None else history.failing_ids()
        failed_first(plan, failing)
    return RunPlan(discovered, ids, missing, plan, bool(durations))


def failed_first(plan: Plan, failing: Iterable[str]) -> None:
    """``--ff``: the units holding failing tests first, the failing tests first in
    them (a hard unit keeps its order), everything else in the planned order."""
    known = set(failing)
    if not known:
        return
    first: list[Unit] = []
    rest: list[Unit] = []
    for unit in plan.units:
        if not any(test_id in known for test_id in unit.ids):
            rest.append(unit)
            continue
        if not unit.hard:
            pairs = sorted(zip(unit.ids, unit.costs, strict=True), key=lambda p: p[0] not in known)
            unit.ids = [test_id for test_id, _ in pairs]
            unit.costs = [cost for _, cost in pairs]
        first.append(unit)
    plan.units[:] = first + rest
