"""Live evidence for a bug: what the repository's runs say about what it links to.

A bug's links name tests, commits, triage rules and failure clusters. The events
never copy evidence in (it would go stale and bloat every copy); ``bug show`` reads
it from the run history each time:

* a **test** link: failures per day over the last days, when it last failed (run,
  commit) and was last seen at all, and the runs and commits it failed in;
* a **commit** link: the runs of commits starting with it and their failure counts.

Rules and clusters need triage's clusters in the store; until they are there,
:func:`evidence` reports them as ``pending`` (the seam: a function taking the
store and the link, returning the same shape).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from proctor.bugs.state import BugLink
from proctor.store.contract import Store
from proctor.store.model import failing_change

__all__ = ["DAY_NS", "LinkEvidence", "evidence"]

DAY_NS = 86_400 * 1_000_000_000
_HISTORY_LIMIT = 2000


@dataclass(frozen=True, slots=True)
class LinkEvidence:
    link: BugLink
    state: str  # "found", "unknown" (no such test or commit here), "pending" (not yet computed)
    executions: int = 0
    failures: int = 0
    per_day: tuple[tuple[str, int], ...] = ()  # (YYYY-MM-DD UTC, failures), oldest first
    last_failed_ns: int | None = None
    last_failed_run: int | None = None
    last_failed_commit: str | None = None
    last_seen_ns: int | None = None
    runs: tuple[int, ...] = ()  # runs it failed in, newest first (at most 10)
    commits: tuple[str, ...] = ()  # commits of those runs, newest first (at most 10)
    note: str = ""
    extra: dict[str, object] = field(default_factory=dict)


def _day(ns: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ns // 1_000_000_000))


def _test(store: Store, link: BugLink, days: int, now_ns: int) -> LinkEvidence:
    from proctor.store.errors import UnknownTest

    try:
        history = store.test_history(link.target, limit=_HISTORY_LIMIT)
    except UnknownTest:
        return LinkEvidence(link, "unknown", note="no run in this repository ran this test")
    failed = [h for h in history if failing_change(h.status)]
    since = now_ns - days * DAY_NS
    counts = Counter(_day(h.run_started_ns) for h in failed if h.run_started_ns >= since)
    per_day = tuple(
        (_day(since + n * DAY_NS), counts.get(_day(since + n * DAY_NS), 0))
        for n in range(1, days + 1)
    )
    runs: list[int] = []
    commits: list[str] = []
    for entry in failed:
        if entry.run_id not in runs and len(runs) < 10:
            runs.append(entry.run_id)
        if entry.git_commit and entry.git_commit not in commits and len(commits) < 10:
            commits.append(entry.git_commit)
    last = failed[0] if failed else None
    return LinkEvidence(
        link,
        "found",
        executions=len(history),
        failures=len(failed),
        per_day=per_day,
        last_failed_ns=last.run_started_ns if last else None,
        last_failed_run=last.run_id if last else None,
        last_failed_commit=last.git_commit if last else None,
        last_seen_ns=history[0].run_started_ns if history else None,
        runs=tuple(runs),
        commits=tuple(commits),
        note="" if len(history) < _HISTORY_LIMIT else f"the newest {_HISTORY_LIMIT} executions",
    )


def _commit(store: Store, link: BugLink) -> LinkEvidence:
    found = store.runs(commit=link.target)
    if not found:
        return LinkEvidence(link, "unknown", note="no stored run was made at this commit")
    newest = sorted(found, key=lambda info: info.id, reverse=True)
    failures = sum(info.counts.failures for info in newest)
    return LinkEvidence(
        link,
        "found",
        executions=len(newest),
        failures=failures,
        last_seen_ns=newest[0].started_ns,
        runs=tuple(info.id for info in newest[:10]),
        commits=tuple(sorted({info.metadata.git_commit or "" for info in newest} - {""}))[:10],
    )


def evidence(
    store: Store, links: Iterable[BugLink], *, days: int = 14, now_ns: int | None = None
) -> list[LinkEvidence]:
    """Evidence for each link, read from ``store`` now (a store error propagates)."""
    now = time.time_ns() if now_ns is None else now_ns
    out = []
    for link in sorted(links):
        if link.kind == "test":
            out.append(_test(store, link, days, now))
        elif link.kind == "commit":
            out.append(_commit(store, link))
        else:
            out.append(
                LinkEvidence(
                    link,
                    "pending",
                    note="evidence for triage rules and clusters comes once clusters are stored",
                )
            )
    return out
