"""What the history knows of one run's failures: `proctor last` and `proctor run`
name each failure's cluster, how often it failed before, and mark new ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from proctor.store.contract import Store
from proctor.store.failures import FailureRow
from proctor.store.model import RunInfo
from proctor.triage.algorithm import ALGORITHM

__all__ = ["RUNS_COUNTED", "ClusterNote", "notes_for_run"]

RUNS_COUNTED = 100
"""Other runs counted at most ("also failed in 100+ other runs")."""


class ClusterNote(NamedTuple):
    cluster: str
    kind: str
    key: str
    tests: tuple[str, ...]
    """This run's tests that failed with it, in stored order."""
    other_runs: int
    """Other runs it failed in (before or after this one), RUNS_COUNTED + 1 at
    most: more than RUNS_COUNTED."""
    first_ns: int
    """When it first failed."""
    new: bool
    """This run is the first it failed in."""
    rule: str | None = None
    bug: str | None = None


def notes_for_run(
    store: Store,
    info: RunInfo,
    *,
    algorithm: str = ALGORITHM,
    explain: Callable[[FailureRow], tuple[str | None, str | None]] | None = None,
) -> list[ClusterNote]:
    """The clusters of the run's signed failures, most failures first;
    ``explain`` gives the (rule, bug) that explain a cluster (from one of its
    failures; :meth:`proctor.triage.explain.Explainer.pair`)."""
    rows = store.failures([info.id], algorithm=algorithm)
    if not rows:
        return []
    tests: dict[str, list[str]] = {}
    first_row: dict[str, FailureRow] = {}
    for row in rows:
        tests.setdefault(row.cluster, []).append(row.test_id)
        first_row.setdefault(row.cluster, row)
    started = info.metadata.started_ns or 0
    seen = store.sightings(
        {row.digest for row in first_row.values()},
        algorithm=algorithm,
        before_ns=started,
        count_runs=RUNS_COUNTED + 2,
    )
    notes = []
    for cluster, row in first_row.items():
        sighting = seen.get(row.digest)
        runs = sighting.runs if sighting else 1
        first = sighting.first_ns if sighting else started
        new = sighting is None or (sighting.last_before_ns is None and first >= started)
        rule, bug = explain(row) if explain is not None else (None, None)
        notes.append(
            ClusterNote(
                cluster,
                row.kind,
                row.key,
                tuple(tests[cluster]),
                min(max(runs - 1, 0), RUNS_COUNTED + 1),
                first,
                new,
                rule,
                bug,
            )
        )
    notes.sort(key=lambda note: (-len(note.tests), note.cluster))
    return notes
