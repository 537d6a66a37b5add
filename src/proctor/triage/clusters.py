"""Failure clusters over a window of runs: what `proctor triage` shows.

A cluster is a signature under the current algorithm; its id is the
signature's digest (or, after a re-clustering, the id of the cluster it
continues: see :mod:`proctor.triage.recluster`). Over a window of runs each
cluster gets its failures, distinct tests, runs affected, first and last seen
(in the window), a trend, a state and its share of all failures:

* **new**: its first failure ever is inside the window;
* **regressed**: seen before, then absent for ``gone_after_runs`` runs or
  more, and back inside the window;
* **gone**: not seen in the window's newest ``gone_after_runs`` runs;
* **ongoing**: the rest.

``rule`` and ``bug`` (which known-bug rule explains it) come from the
``explain`` callable :func:`summarise` takes (:mod:`proctor.triage.explain`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from proctor.store.builds import collapse_builds
from proctor.store.contract import Store
from proctor.store.failures import FailureRow
from proctor.store.model import RunInfo
from proctor.triage.algorithm import ALGORITHM
from proctor.wire.event import NS_PER_SECOND

__all__ = [
    "Cluster",
    "Explanation",
    "State",
    "Window",
    "cluster_state",
    "summarise",
    "window_runs",
]

DAY_NS = 86_400 * NS_PER_SECOND
State = Literal["new", "ongoing", "regressed", "gone"]


class Explanation(NamedTuple):
    """What explains a cluster: a known-bug rule and its bug (None: unexplained)."""

    rule: str | None = None
    bug: str | None = None


@dataclass(frozen=True, slots=True)
class Window:
    """Which runs to look at: started in [since, until), on a branch, the newest ``runs``."""

    since_ns: int | None = None
    until_ns: int | None = None
    branch: str | None = None
    runs: int | None = None

    def describe(self) -> str:
        parts = []
        if self.runs is not None:
            parts.append(f"the last {self.runs} runs")
        if self.branch is not None:
            parts.append(f"on {self.branch}")
        return " ".join(parts) or "the window"


@dataclass(slots=True)
class Cluster:
    id: str
    algorithm: str
    digest: str
    kind: str
    key: str
    failures: int = 0
    tests: set[str] = field(default_factory=set)
    runs: set[int] = field(default_factory=set)
    first_ns: int = 0
    last_ns: int = 0
    first_run: int = 0
    last_run: int = 0
    trend: list[int] = field(default_factory=list)
    state: State = "ongoing"
    share: float = 0.0
    example: FailureRow | None = None
    """The newest failure of the cluster in the window."""
    first_ever_ns: int | None = None
    explanation: Explanation = field(default_factory=Explanation)


def window_runs(store: Store, window: Window) -> list[RunInfo]:
    """The window's runs, oldest first."""
    found = store.runs(
        branch=window.branch,
        since_ns=window.since_ns,
        until_ns=window.until_ns,
        limit=window.runs,
    )
    return found[::-1]


def summarise(
    store: Store,
    runs: Sequence[RunInfo],
    *,
    algorithm: str = ALGORITHM,
    gone_after_runs: int = 3,
    branch: str | None = None,
    trend_bins: int | None = None,
    explain: Callable[[Cluster], Explanation] | None = None,
) -> tuple[list[Cluster], int]:
    """The clusters of the failures in ``runs`` (oldest first; the window's
    runs, on ``branch`` if it has one), most failures first, and the number of
    failures. The trend: see :func:`_bins`."""
    if not runs:
        return [], 0
    every = [info.id for info in runs]
    # A CI build's jobs (proctor run --queue) are one run: its first stands for it.
    runs, standing = collapse_builds(runs)
    order = {info.id: position for position, info in enumerate(runs)}
    rows = store.failures(every, algorithm=algorithm)
    clusters: dict[str, Cluster] = {}
    for row in rows:
        run = standing[row.run]
        cluster = clusters.get(row.cluster)
        if cluster is None:
            cluster = clusters[row.cluster] = Cluster(
                row.cluster, row.algorithm, row.digest, row.kind, row.key
            )
            cluster.first_ns = cluster.last_ns = row.run_ns
            cluster.first_run = cluster.last_run = run
            cluster.example = row  # rows come newest run first
        cluster.failures += 1
        cluster.tests.add(row.test_id)
        cluster.runs.add(run)
        if order[run] < order[cluster.first_run]:
            cluster.first_run, cluster.first_ns = run, row.run_ns
        if order[run] > order[cluster.last_run]:
            cluster.last_run, cluster.last_ns = run, row.run_ns
    total = len(rows)
    bin_of, bins = _bins(runs, trend_bins)
    for cluster in clusters.values():
        cluster.trend = [0] * bins
    for row in rows:
        clusters[row.cluster].trend[bin_of[standing[row.run]]] += 1
    start = runs[0].metadata.started_ns or 0
    seen = store.sightings(
        {cluster.digest for cluster in clusters.values()}, algorithm=algorithm, before_ns=start
    )
    # The runs just before the window (as many as make a gap): a cluster last
    # seen before them was absent for a gap's worth of runs.
    before = [
        info.metadata.started_ns or 0
        for info in store.runs(branch=branch, until_ns=start, limit=gone_after_runs)
    ]
    for cluster in clusters.values():
        cluster.share = cluster.failures / total if total else 0.0
        sighting = seen.get(cluster.digest)
        cluster.first_ever_ns = sighting.first_ns if sighting else cluster.first_ns
        last_before = sighting.last_before_ns if sighting else None
        gap = None
        if last_before is not None:
            gap = sum(1 for started in before if started > last_before) + order[cluster.first_run]
        cluster.state = cluster_state(
            cluster,
            runs,
            order,
            first_ever_ns=cluster.first_ever_ns,
            gap=gap,
            gone_after_runs=gone_after_runs,
        )
        if explain is not None:
            cluster.explanation = explain(cluster)
    ranked = sorted(clusters.values(), key=lambda c: (-c.failures, -len(c.runs), -c.last_ns, c.id))
    return ranked, total


def cluster_state(
    cluster: Cluster,
    runs: Sequence[RunInfo],
    order: dict[int, int],
    *,
    first_ever_ns: int,
    gap: int | None,
    gone_after_runs: int,
) -> State:
    """new, regressed, gone or ongoing (see the module docstring); ``gap``:
    runs between its last failure before the window and its first in it."""
    runs_since = len(runs) - 1 - order[cluster.last_run]
    if runs_since >= gone_after_runs:
        return "gone"
    if first_ever_ns >= (runs[0].metadata.started_ns or 0) and gap is None:
        return "new"
    if gap is not None and gap >= gone_after_runs:
        return "regressed"
    return "ongoing"


def _bins(runs: Sequence[RunInfo], bins: int | None) -> tuple[dict[int, int], int]:
    """Each run's bin of the trend: per day from the first run's day to the
    last's when that is 2 days or more (at most 60), else per run (at most 60
    bins, runs spread evenly). ``bins`` forces per-run bins."""
    if bins is None:
        first = (runs[0].metadata.started_ns or 0) // DAY_NS
        last = (runs[-1].metadata.started_ns or 0) // DAY_NS
        days = last - first + 1
        if 2 <= days <= 60:
            return {
                info.id: (info.metadata.started_ns or 0) // DAY_NS - first for info in runs
            }, days
        bins = min(len(runs), 60)
    bins = max(1, min(bins, len(runs)))
    return {info.id: position * bins // len(runs) for position, info in enumerate(runs)}, bins
