"""Live evidence for a bug: what the repository's runs say about what it links to.

A bug's links name tests, commits, triage rules and failure clusters. The events
never copy evidence in (it would go stale and bloat every copy); ``bug show`` reads
it from the run history each time:

* a **test** link: failures per day over the last days, when it last failed (run,
  commit) and was last seen at all, and the runs and commits it failed in;
* a **commit** link: the runs of commits starting with it and their failure counts;
* a **cluster** link: its stored failures (:mod:`proctor.triage.detail`) per day,
  when it last failed (run, commit) and the runs and commits it failed in;
* a **rule** link: the failures the repository's copy of the rule explains among
  the newest runs' (:func:`proctor.triage.rules.preview`).
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
    per_day = _per_day((h.run_started_ns for h in failed), days, now_ns)
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
        elif link.kind == "cluster":
            out.append(_cluster(store, link, days, now))
        else:
            out.append(_rule(store, link))
    return out


def _per_day(failed_ns: Iterable[int], days: int, now_ns: int) -> tuple[tuple[str, int], ...]:
    since = now_ns - days * DAY_NS
    counts = Counter(_day(ns) for ns in failed_ns if ns >= since)
    return tuple(
        (_day(since + n * DAY_NS), counts.get(_day(since + n * DAY_NS), 0))
        for n in range(1, days + 1)
    )


def _cluster(store: Store, link: BugLink, days: int, now_ns: int) -> LinkEvidence:
    from proctor.triage.algorithm import ALGORITHM
    from proctor.triage.detail import cluster_detail

    detail = cluster_detail(store, link.target, algorithm=ALGORITHM)
    if detail is None:
        return LinkEvidence(
            link, "unknown", note=f"no stored failure is in this cluster (under {ALGORITHM})"
        )
    runs = detail.run_ids
    commits = [
        commit
        for run in runs
        if run in detail.runs and (commit := detail.runs[run].metadata.git_commit)
    ]
    newest = detail.newest
    last_commit = detail.runs[newest.run].metadata.git_commit if newest.run in detail.runs else None
    return LinkEvidence(
        link,
        "found",
        executions=len(runs),
        failures=len(detail.rows),
        per_day=_per_day((row.run_ns for row in detail.rows), days, now_ns),
        last_failed_ns=newest.run_ns,
        last_failed_run=newest.run,
        last_failed_commit=last_commit,
        last_seen_ns=newest.run_ns,
        runs=tuple(runs[:10]),
        commits=tuple(dict.fromkeys(commits))[:10],
        extra={"tests": len(detail.tests)},
    )


RULE_RUNS = 200
"""A rule's evidence: the failures of the newest runs, as `proctor rules test` reads them."""


def _rule(store: Store, link: BugLink) -> LinkEvidence:
    from proctor.triage.failures import load_failures
    from proctor.triage.rules import RuleSet, StoreRuleBook

    rule = next((r for r in StoreRuleBook(store).load() if r.id == link.target), None)
    if rule is None:
        return LinkEvidence(
            link,
            "unknown",
            note="the repository has no such rule (`proctor rules sync` copies the file's)",
        )
    failures = load_failures(store, runs=RULE_RUNS)
    hits = [failures[index] for index in RuleSet([rule]).matches(failures)[0]]
    runs = sorted({facts.run for facts in hits}, reverse=True)
    return LinkEvidence(
        link,
        "found",
        executions=len(failures),
        failures=len(hits),
        last_failed_run=runs[0] if runs else None,
        runs=tuple(runs[:10]),
        note=f"among the {len(failures)} failures of the newest {RULE_RUNS} runs",
        extra={"tests": len({facts.test for facts in hits})},
    )
