"""One run against another: new failures, fixed, still failing, added and
removed tests, duration changes.

Tests are matched by id; a test run more than once in a run (a retry, two
route codes) counts by its worst result there, so a retried failure is not
hidden by its pass. ``exists`` listings are not executions and are left out.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from proctor.web.queries import failing
from proctor.wire.event import Status
from proctor.wire.record import TestRecord

__all__ = ["CATEGORIES", "Change", "Comparison", "compare_runs"]

CATEGORIES = ("new_failures", "fixed", "still_failing", "added", "removed", "slower", "faster")
"""The comparison's lists, in the order pages show them."""
MIN_CHANGE_SECONDS = 0.05
MIN_CHANGE_RATIO = 0.25
DURATION_ROWS = 50


class Change(NamedTuple):
    """One test in a comparison: its status and duration in each run (None: absent)."""

    test_id: str
    base: Status | None
    head: Status | None
    base_seconds: float | None
    head_seconds: float | None

    @property
    def delta(self) -> float | None:
        if self.base_seconds is None or self.head_seconds is None:
            return None
        return self.head_seconds - self.base_seconds


class Comparison(NamedTuple):
    new_failures: list[Change]
    fixed: list[Change]
    still_failing: list[Change]
    added: list[Change]
    removed: list[Change]
    slower: list[Change]
    faster: list[Change]
    common: int
    """Tests executed in both runs."""

    def lists(self) -> list[tuple[str, list[Change]]]:
        return [(name, getattr(self, name)) for name in CATEGORIES]


def _by_test(records: Iterable[TestRecord]) -> dict[str, TestRecord]:
    found: dict[str, TestRecord] = {}
    for record in records:
        if record.status is Status.EXISTS:
            continue
        seen = found.get(record.test_id)
        if seen is None or (failing(record.status) and not failing(seen.status)):
            found[record.test_id] = record
    return found


def compare_runs(base: Iterable[TestRecord], head: Iterable[TestRecord]) -> Comparison:
    """What changed from the ``base`` run's results to the ``head`` run's."""
    before = _by_test(base)
    after = _by_test(head)
    lists: dict[str, list[Change]] = {name: [] for name in CATEGORIES}
    common = 0
    for test_id in sorted(before.keys() | after.keys()):
        old = before.get(test_id)
        new = after.get(test_id)
        change = Change(
            test_id,
            None if old is None else old.status,
            None if new is None else new.status,
            None if old is None else old.duration,
            None if new is None else new.duration,
        )
        if old is None:
            lists["added"].append(change)
        elif new is None:
            lists["removed"].append(change)
        else:
            common += 1
        was = old is not None and failing(old.status)
        now = new is not None and failing(new.status)
        if now and not was:
            lists["new_failures"].append(change)
        elif was and now:
            lists["still_failing"].append(change)
        elif was and new is not None:
            lists["fixed"].append(change)
        delta = change.delta
        if (
            delta is not None
            and abs(delta) >= MIN_CHANGE_SECONDS
            and abs(delta) >= MIN_CHANGE_RATIO * (change.base_seconds or 0.0)
        ):
            lists["slower" if delta > 0 else "faster"].append(change)
    lists["slower"] = sorted(lists["slower"], key=lambda c: -(c.delta or 0.0))[:DURATION_ROWS]
    lists["faster"] = sorted(lists["faster"], key=lambda c: c.delta or 0.0)[:DURATION_ROWS]
    return Comparison(**lists, common=common)
