"""What each page shows, as plain values: filters, runs over time, a run, a test.

Everything here reads through :class:`~proctor.web.repository.ReadOnlyRepository`
and returns dictionaries and named tuples that the templates render and the
JSON answers carry. Nothing here knows HTTP; :class:`QueryError` says what in a
request was wrong, and the app turns it into a 400 page.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from proctor.store.model import HistoryEntry, RunInfo
from proctor.web.repository import ReadOnlyRepository
from proctor.wire.event import NS_PER_SECOND, Status
from proctor.wire.record import TestRecord

__all__ = [
    "PAGE_SIZE",
    "WINDOWS",
    "Changepoint",
    "QueryError",
    "RunFilter",
    "choices",
    "failing",
    "job_of",
    "matching_runs",
    "previous_run",
    "started_failing",
]

WINDOWS: dict[str, int | None] = {
    "1d": 86_400,
    "7d": 7 * 86_400,
    "30d": 30 * 86_400,
    "90d": 90 * 86_400,
    "365d": 365 * 86_400,
    "all": None,
}
"""The time windows the filters offer, in seconds back from now (``all``: no bound)."""
PAGE_SIZE = 50
CHART_RUNS = 200
"""Runs drawn in the runs-over-time chart at most (the newest)."""
CHOICE_RUNS = 1000
"""Runs read to offer the branch and job choices (the newest)."""


class QueryError(ValueError):
    """A request asked for something malformed; the message says what and how to fix it."""


def failing(status: Status) -> bool:
    """Whether a result fails its run: ``fail``, ``uxsuccess``, or never finished."""
    return status.is_failure or not status.is_final


def job_of(info: RunInfo) -> str | None:
    """The CI job name a run recorded (the ``ci.job`` property), or None."""
    return info.metadata.properties.get("ci.job") or None


@dataclass(frozen=True)
class RunFilter:
    """The filters of the overview and the runs list; all of them live in the URL."""

    branch: str | None = None
    job: str | None = None
    window: str = "all"
    page: int = 1

    @staticmethod
    def parse(query: Mapping[str, str]) -> RunFilter:
        window = query.get("window") or "all"
        if window not in WINDOWS:
            raise QueryError(
                f"window={window!r} is not a time window: use one of {', '.join(WINDOWS)}"
            )
        page_text = query.get("page") or "1"
        if not page_text.isdigit() or int(page_text) < 1 or len(page_text) > 9:
            raise QueryError(f"page={page_text!r} is not a page number (1, 2, ...)")
        return RunFilter(
            branch=query.get("branch") or None,
            job=query.get("job") or None,
            window=window,
            page=int(page_text),
        )

    def params(self, **changes: object) -> dict[str, str]:
        """The filter as query parameters (defaults left out), with ``changes``."""
        values: dict[str, object] = {
            "branch": self.branch,
            "job": self.job,
            "window": None if self.window == "all" else self.window,
            "page": None if self.page == 1 else self.page,
        }
        values.update(changes)
        if values["page"] == 1:
            values["page"] = None
        return {key: str(value) for key, value in values.items() if value not in (None, "")}

    def since_ns(self, now_ns: int) -> int | None:
        seconds = WINDOWS[self.window]
        return None if seconds is None else now_ns - seconds * NS_PER_SECOND

    def as_json(self) -> dict[str, object]:
        return {"branch": self.branch, "job": self.job, "window": self.window, "page": self.page}


def matching_runs(
    repo: ReadOnlyRepository, flt: RunFilter, now_ns: int, *, limit: int | None
) -> list[RunInfo]:
    """The runs the filter selects, newest first, at most ``limit``.

    The job is not a column the store filters on, so with a job filter every
    run of the branch and window is read and filtered here (a store query on
    run properties would push that down).
    """
    since = flt.since_ns(now_ns)
    if flt.job is None:
        return repo.runs(branch=flt.branch, since_ns=since, limit=limit)
    found = [
        info for info in repo.runs(branch=flt.branch, since_ns=since) if job_of(info) == flt.job
    ]
    return found if limit is None else found[:limit]


def choices(repo: ReadOnlyRepository) -> dict[str, list[str]]:
    """The branches and jobs of the newest runs, for the filter menus.

    Read from the newest :data:`CHOICE_RUNS` runs (the contract has no
    "distinct branches" query; one would make this independent of history).
    """
    branches: set[str] = set()
    jobs: set[str] = set()
    for info in repo.runs(limit=CHOICE_RUNS):
        if info.metadata.git_branch:
            branches.add(info.metadata.git_branch)
        job = job_of(info)
        if job:
            jobs.add(job)
    return {"branches": sorted(branches), "jobs": sorted(jobs)}


def previous_run(
    repo: ReadOnlyRepository, info: RunInfo, *, any_branch: bool = False
) -> RunInfo | None:
    """The run before ``info`` on the same branch (any run, when it has no
    branch); with ``any_branch``, the run before it on any branch when its own
    branch has none."""
    candidates = repo.runs(branch=info.metadata.git_branch, until_ns=info.started_ns + 1, limit=20)
    earlier = [other for other in candidates if other.id < info.id]
    if not earlier and any_branch and info.metadata.git_branch is not None:
        earlier = [o for o in repo.runs(until_ns=info.started_ns + 1, limit=20) if o.id < info.id]
    return earlier[0] if earlier else None


class Changepoint(NamedTuple):
    """Where a test that fails now started failing: the first run of its
    current streak of failures, and the last run before it that did not fail."""

    first_failure: HistoryEntry
    streak: int
    last_good: HistoryEntry | None


def started_failing(history: Iterable[HistoryEntry]) -> Changepoint | None:
    """The changepoint of a history given newest first, or None when the
    newest execution did not fail. A streak that reaches the end of the
    history shown has no last good run (it may have started earlier)."""
    entries = [entry for entry in history if entry.status is not Status.EXISTS]
    if not entries or not failing(entries[0].status):
        return None
    streak = 1
    while streak < len(entries) and failing(entries[streak].status):
        streak += 1
    last_good = entries[streak] if streak < len(entries) else None
    return Changepoint(entries[streak - 1], streak, last_good)


def slowest_of(records: Iterable[TestRecord], limit: int) -> list[TestRecord]:
    """The ``limit`` longest timed results, longest first."""
    timed = [record for record in records if record.duration is not None]
    timed.sort(key=lambda record: record.duration or 0.0, reverse=True)
    return timed[:limit]
