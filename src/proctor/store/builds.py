"""A CI build as one run: the runs its jobs stored with ``--queue BUILD``.

Each job of a build stores its own run, marked with the build's id (the
``build`` property) and partial. :func:`build_view` puts them back together
for ``proctor runs show --build`` and ``proctor last --build``: one result per
test (when a job lost its lease on a test and another ran it again, the later
result), the counts of those results, the span of all the runs, interrupted if
any job's run was. Route codes name the job (``job2/0``: worker 0 of the
build's second run).
"""

from __future__ import annotations

from collections.abc import Sequence

from proctor.store.contract import Store
from proctor.store.model import RunCounts, RunInfo
from proctor.wire.record import TestRecord

__all__ = [
    "BUILD_PROPERTY",
    "JOB_PROPERTY",
    "PARTIAL_PROPERTY",
    "SCAN_RUNS",
    "build_runs",
    "build_view",
    "collapse_builds",
]

BUILD_PROPERTY = "build"
JOB_PROPERTY = "build.job"
PARTIAL_PROPERTY = "build.partial"
"""``"0"`` when the jobs ran the whole suite between them (each job's own run is
partial: it holds its share only)."""
SCAN_RUNS = 2000
"""How many of the newest runs are searched for a build's (a build is recent)."""


def build_runs(store: Store, build: str, *, scan: int = SCAN_RUNS) -> list[RunInfo]:
    """The runs of ``build`` among the newest ``scan`` runs, oldest first."""
    found = [
        info
        for info in store.runs(limit=scan)
        if info.metadata.properties.get(BUILD_PROPERTY) == build
    ]
    return found[::-1]


def build_view(store: Store, build: str) -> tuple[RunInfo, list[TestRecord], list[RunInfo]] | None:
    """The build as one run (its first run's id and metadata, the sums of all),
    its results, and the runs it is made of; None when no run has that build."""
    runs = build_runs(store, build)
    if not runs:
        return None
    chosen: dict[str, TestRecord] = {}
    for job, info in enumerate(runs, 1):
        for stored in store.records(info.id):
            # Every job numbers its workers from 0: the job tells them apart.
            record = stored._replace(route_code=f"job{job}/{stored.route_code or '?'}")
            held = chosen.get(record.test_id)
            if held is None or (record.stop or 0) >= (held.stop or 0):
                chosen[record.test_id] = record
    records = sorted(chosen.values(), key=lambda r: (r.start or 0, r.test_id))
    first = runs[0]
    starts = [info.first_ns for info in runs if info.first_ns is not None]
    ends = [info.last_ns for info in runs if info.last_ns is not None]
    finished = [info.finished_ns for info in runs]
    whole = first._replace(
        metadata=first.metadata._replace(
            partial=any(info.metadata.properties.get(PARTIAL_PROPERTY) != "0" for info in runs),
            properties={
                key: value
                for key, value in first.metadata.properties.items()
                if key != JOB_PROPERTY
            },
        ),
        counts=RunCounts.of(records),
        finished_ns=None if None in finished else max(f for f in finished if f is not None),
        interrupted=any(info.interrupted for info in runs),
        first_ns=min(starts) if starts else None,
        last_ns=max(ends) if ends else None,
    )
    return whole, records, runs


def collapse_builds(runs: Sequence[RunInfo]) -> tuple[list[RunInfo], dict[int, int]]:
    """``runs`` with each CI build's runs (its jobs', ``proctor run --queue``) as
    one: the build's first run stands for it, where that run stands. Returns the
    runs left, in the same order, and for every run given the id of the run that
    stands for it (itself, outside a build)."""
    first_of: dict[str, int] = {}
    standing: dict[int, int] = {}
    kept: list[RunInfo] = []
    for info in runs:
        build = info.metadata.properties.get(BUILD_PROPERTY)
        if build is None:
            standing[info.id] = info.id
            kept.append(info)
        elif build in first_of:
            standing[info.id] = first_of[build]
        else:
            first_of[build] = standing[info.id] = info.id
            kept.append(info)
    return kept, standing
