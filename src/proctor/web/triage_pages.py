"""The triage and bug pages, and the triage parts of the others.

What the triage layer found (clusters, flaky and broken tests, which known-bug
rule explains what) and what the bug records say, as pages: the overview's
triage section, the cluster list and a cluster, the bug list and a bug, and the
cluster and known bugs of each failure on the run page and in the report. The
work is the triage and bugs layers' own (called through
:class:`~proctor.web.repository.ReadOnlyRepository`); this module chooses the
runs, joins the bugs in (:class:`~proctor.web.known.BugIndex`) and shapes each
page as a :class:`~proctor.web.views.Page`. JSON documents reuse the shapes of
``proctor triage --json``, ``flaky --json`` and ``bug show --json`` (docs/json.md).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from proctor.bugs.event import (
    AddComment,
    AddLink,
    AddTag,
    BugEvent,
    Create,
    RemoveLink,
    RemoveTag,
    SetField,
)
from proctor.bugs.state import BugLink
from proctor.cli.bug_show import evidence_json
from proctor.cli.json_shapes import SCHEMA
from proctor.cli.triage_view import cluster_json, verdict_json
from proctor.store.model import RunInfo
from proctor.triage.clusters import DAY_NS, Cluster, Explanation
from proctor.triage.settings import TriageSettings
from proctor.triage.text import failure_text
from proctor.web.known import BugIndex, BugRef, external_url
from proctor.web.page import Page
from proctor.web.pages import Links
from proctor.web.queries import WINDOWS, QueryError, RunFilter, choices, matching_runs
from proctor.web.repository import ReadOnlyRepository
from proctor.web.svg import Bar, counts_chart, sparkline

if TYPE_CHECKING:
    from proctor.triage.rules import Rule

__all__ = [
    "FailureNote",
    "TriageSource",
    "UnknownCluster",
    "bug_page",
    "bugs_page",
    "cluster_page",
    "clusters_page",
    "failure_notes",
    "note_json",
    "overview_triage",
    "run_clusters",
    "test_clusters",
]

TRIAGE_RUNS = 200
"""Runs the overview and the cluster list triage at most: the newest that match."""
VERDICT_RUNS = 100
"""Runs the overview judges flaky and broken tests over at most: the newest of
its runs (judging reads every outcome of every test that failed in them)."""
TOP_CLUSTERS = 10
TOP_VERDICTS = 20
TOP_UNEXPLAINED = 10
CLUSTER_CHART_RUNS = 200
"""Runs drawn in a cluster's failures-per-run chart (the newest since its first failure)."""
CLUSTER_CHART_DAYS = 90
LIST_ROWS = 500
"""Rows of a list page at most (the CSV has them all)."""
EVIDENCE_DAYS = 14
_CLUSTER_ID = re.compile(r"[0-9A-Za-z_:-]{1,128}")


class UnknownCluster(LookupError):
    """No stored failure is in that cluster; the message says so."""


@dataclass(frozen=True)
class TriageSource:
    """Where the dashboard's triage comes from: the thresholds, and the
    known-bug rules (None: the repository's copy, ``proctor rules sync``)."""

    settings: TriageSettings = field(default_factory=TriageSettings)
    rules: Sequence[Rule] | None = None

    def rules_for(self, repo: ReadOnlyRepository) -> Sequence[Rule]:
        return self.rules if self.rules is not None else repo.stored_rules()


def _bug_index(repo: ReadOnlyRepository) -> BugIndex:
    rows, shorts = repo.bug_snapshots()
    return BugIndex(rows, shorts)


class ClusterRow(NamedTuple):
    """A cluster as the lists show it."""

    cluster: Cluster
    spark: object
    bugs: list[BugRef]
    rule_url: str | None
    """The explaining rule's bug reference when it is a web address."""


def _cluster_rows(clusters: Sequence[Cluster], bugs: BugIndex) -> list[ClusterRow]:
    return [
        ClusterRow(
            cluster,
            sparkline(cluster.trend, f"trend of {cluster.id}: {sum(cluster.trend)} failures"),
            bugs.known("cluster", cluster.id, cluster.explanation.bug),
            external_url(cluster.explanation.bug),
        )
        for cluster in clusters
    ]


def _cluster_json(row: ClusterRow) -> dict[str, object]:
    document = cluster_json(row.cluster, None)
    document["bugs"] = [bug.as_json() for bug in row.bugs]
    return document


def _triage_runs(repo: ReadOnlyRepository, flt: RunFilter, now_ns: int) -> list[RunInfo]:
    return matching_runs(repo, flt, now_ns, limit=TRIAGE_RUNS)[::-1]


def overview_triage(
    repo: ReadOnlyRepository,
    runs: Sequence[RunInfo],
    flt: RunFilter,
    source: TriageSource,
) -> tuple[dict[str, object], dict[str, object]]:
    """The overview's triage section over ``runs`` (oldest first, the filter's):
    the top clusters with their trend, the flaky and broken tests, the failures
    no rule explains and the classification rate. (context, JSON)."""
    rules = source.rules_for(repo)
    clusters, total = repo.clusters(
        runs, rules, branch=flt.branch, gone_after_runs=source.settings.gone_after_runs
    )
    verdicts = repo.verdicts(runs[-VERDICT_RUNS:], source.settings)
    bugs = _bug_index(repo)
    rows = _cluster_rows(clusters[:TOP_CLUSTERS], bugs)
    unexplained = [c for c in clusters if c.explanation.rule is None]
    lonely = _cluster_rows(unexplained[:TOP_UNEXPLAINED], bugs)
    explained = total - sum(c.failures for c in unexplained)
    classification = {
        "failures": total,
        "explained": explained,
        "unexplained": total - explained,
        "rate": explained / total if total else None,
        "clusters": len(clusters),
        "unexplained_clusters": len(unexplained),
        "rules": len(rules),
    }
    flaky = [v for v in verdicts if v.verdict == "flaky"]
    broken = [v for v in verdicts if v.verdict == "broken"]
    context: dict[str, object] = {
        "clusters": rows,
        "cluster_count": len(clusters),
        "failure_total": total,
        "flaky": flaky[:TOP_VERDICTS],
        "broken": broken[:TOP_VERDICTS],
        "flaky_count": len(flaky),
        "broken_count": len(broken),
        "unexplained": lonely,
        "classification": classification,
        "triage_runs": len(runs),
        "verdict_runs": min(len(runs), VERDICT_RUNS),
    }
    document: dict[str, object] = {
        "triage_runs": [info.id for info in runs],
        "verdict_runs": [info.id for info in runs[-VERDICT_RUNS:]],
        "clusters": [_cluster_json(row) for row in rows],
        "flaky": [verdict_json(v) for v in flaky[:TOP_VERDICTS]],
        "broken": [verdict_json(v) for v in broken[:TOP_VERDICTS]],
        "classification": classification,
        "unexplained": [_cluster_json(row) for row in lonely],
    }
    return context, document


_CLUSTER_HEADER = [
    "id", "state", "failures", "share", "tests", "runs", "first_seen_ns", "last_seen_ns",
    "kind", "key", "rule", "bug", "bugs",
]  # fmt: skip


def clusters_page(
    repo: ReadOnlyRepository,
    query: Mapping[str, str],
    now_ns: int,
    source: TriageSource,
    links: Links,
) -> Page:
    """Every cluster of the filter's newest :data:`TRIAGE_RUNS` runs, most failures first."""
    flt = RunFilter.parse(query)
    runs = _triage_runs(repo, flt, now_ns)
    rules = source.rules_for(repo)
    clusters, total = repo.clusters(
        runs, rules, branch=flt.branch, gone_after_runs=source.settings.gone_after_runs
    )
    bugs = _bug_index(repo)
    rows = _cluster_rows(clusters, bugs)
    context: dict[str, object] = {
        "filter": flt,
        "choices": choices(repo),
        "windows": list(WINDOWS),
        "rows": rows[:LIST_ROWS],
        "more": max(len(rows) - LIST_ROWS, 0),
        "total": total,
        "runs": runs,
        "csv": links.page("/clusters.csv", flt.params(page=None)),
        "json": links.page("/clusters.json", flt.params(page=None)),
    }
    document: dict[str, object] = {
        "schema": SCHEMA,
        "filter": flt.as_json(),
        "runs": [info.id for info in runs],
        "failures": total,
        "clusters": [_cluster_json(row) for row in rows],
    }
    table: list[list[object]] = [
        [
            row.cluster.id,
            row.cluster.state,
            row.cluster.failures,
            round(row.cluster.share, 6),
            len(row.cluster.tests),
            len(row.cluster.runs),
            row.cluster.first_ns,
            row.cluster.last_ns,
            row.cluster.kind,
            row.cluster.key,
            row.cluster.explanation.rule,
            row.cluster.explanation.bug,
            " ".join(bug.id for bug in row.bugs),
        ]
        for row in rows
    ]
    return Page(
        "clusters.html", context, document, (_CLUSTER_HEADER, table), title="Failure clusters"
    )


def _rule_json(rule: Rule | None) -> dict[str, object] | None:
    if rule is None:
        return None
    return {"id": rule.id, "bug": rule.bug, "where": rule.where, "added": rule.added}


def cluster_page(
    repo: ReadOnlyRepository, cluster_id: str, source: TriageSource, links: Links
) -> Page:
    """One cluster whole: its impact per run and per day, a representative
    traceback, the tests and runs it touched, the rule and bugs that know it.
    ``cluster_id`` may be a unique prefix of the id (at least 4 characters)."""
    if not _CLUSTER_ID.fullmatch(cluster_id):
        raise QueryError(f"{cluster_id[:80]!r} is not a cluster id (see the cluster list)")
    from proctor.triage.detail import ClusterNotFound

    try:  # an id, or a unique prefix of one (as `proctor triage show` takes)
        cluster_id = repo.cluster_id(cluster_id)
    except ClusterNotFound as error:
        if not error.candidates:
            raise UnknownCluster(
                f"there is no failure cluster {cluster_id!r} in this repository"
            ) from None
        more = ", ..." if error.more else ""
        raise QueryError(
            f"{error.message} (candidates: {', '.join(error.candidates)}{more})"
        ) from None
    detail = repo.cluster_detail(cluster_id)
    if detail is None:
        raise UnknownCluster(f"there is no failure cluster {cluster_id!r} in this repository")
    rules = source.rules_for(repo)
    known = repo.explain([detail.newest], rules)[0]
    rule = next((r for r in rules if r.id == known.rule), None)
    bugs = _bug_index(repo)
    per_run = Counter(row.run for row in detail.rows)
    tests = Counter(row.test_id for row in detail.rows)
    since_first = sorted(detail.runs.values(), key=lambda info: info.id)[-CLUSTER_CHART_RUNS:]
    by_run = counts_chart(
        [
            Bar(f"run {info.id}: {per_run.get(info.id, 0)} failures", per_run.get(info.id, 0),
                links.run(info.id))
            for info in since_first
        ],
        f"failures per run over the {len(since_first)} runs since it first failed",
    )  # fmt: skip
    daily = detail.daily[-CLUSTER_CHART_DAYS:]
    first_day = detail.first_day_ns + (len(detail.daily) - len(daily)) * DAY_NS
    by_day = counts_chart(
        [
            Bar(f"{_day(first_day + n * DAY_NS)}: {count} failures", count)
            for n, count in enumerate(daily)
        ],
        f"failures per day over {len(daily)} days",
    )
    run_rows = [(detail.runs.get(run_id), run_id, per_run[run_id]) for run_id in detail.run_ids]
    examples = [(record, failure_text(record)) for record in detail.examples]
    newest = detail.newest
    linked = bugs.known("cluster", cluster_id, known.bug)
    test_counts = sorted(tests.items(), key=lambda item: (-item[1], item[0]))
    context: dict[str, object] = {
        "cluster": cluster_id,
        "newest": newest,
        "first": detail.rows[-1],
        "failures": len(detail.rows),
        "tests": test_counts,
        "runs": run_rows[:LIST_ROWS],
        "run_count": len(run_rows),
        "by_run": by_run,
        "by_day": by_day,
        "examples": examples,
        "explanation": known,
        "rule": rule,
        "rule_url": external_url(known.bug),
        "bugs": linked,
        "csv": links.page(f"/clusters/{cluster_id}.csv"),
    }
    document: dict[str, object] = {
        "schema": SCHEMA,
        "cluster": cluster_id,
        "algorithm": newest.algorithm,
        "signature": newest.digest,
        "kind": newest.kind,
        "key": newest.key,
        "failures": len(detail.rows),
        "tests": [{"id": test, "failures": count} for test, count in test_counts],
        "runs": [{"id": run_id, "failures": count} for _, run_id, count in run_rows],
        "per_day": {"first_day_ns": detail.first_day_ns, "counts": detail.daily},
        "examples": [{"test": record.test_id, "traceback": text} for record, text in examples],
        "rule": known.rule,
        "bug": known.bug,
        "rule_detail": _rule_json(rule),
        "bugs": [bug.as_json() for bug in linked],
    }
    table: list[list[object]] = [
        [row.run, row.seq, row.test_id, row.status.wire_name, row.run_ns] for row in detail.rows
    ]
    return Page(
        "cluster.html",
        context,
        document,
        (["run", "seq", "test", "status", "run_started_ns"], table),
        title=f"Cluster {cluster_id}",
    )


def _day(ns: int) -> str:
    import time

    return time.strftime("%Y-%m-%d", time.gmtime(ns // 1_000_000_000))


_BUG_HEADER = [
    "id", "short_id", "status", "severity", "title", "assignee", "tags", "links",
    "created_ns", "updated_ns", "events",
]  # fmt: skip
STATUS_CHOICES = ("open", "in-progress", "fixed", "wontfix", "closed")


def bugs_page(repo: ReadOnlyRepository, query: Mapping[str, str], links: Links) -> Page:
    """The bugs, most recently updated first, filtered by status, tag and text."""
    status = query.get("status") or ""
    if status and status not in (*STATUS_CHOICES, "active"):
        raise QueryError(
            f"status={status[:40]!r} is not a bug status: use one of "
            f"active, {', '.join(STATUS_CHOICES)}"
        )
    text = (query.get("q") or "").strip()
    tag = query.get("tag") or ""
    index = _bug_index(repo)
    rows = index.rows
    if status == "active":
        rows = [row for row in rows if row.status in ("open", "in-progress")]
    elif status:
        rows = [row for row in rows if row.status == status]
    if tag:
        rows = [row for row in rows if tag in row.tags]
    if text:
        rows = [row for row in rows if text.lower() in row.search]
    params = {key: value for key, value in (("status", status), ("q", text), ("tag", tag)) if value}
    context: dict[str, object] = {
        "rows": rows[:LIST_ROWS],
        "more": max(len(rows) - LIST_ROWS, 0),
        "refs": index.refs,
        "status": status,
        "statuses": ("active", *STATUS_CHOICES),
        "q": text,
        "tag": tag,
        "every": len(index.rows),
        "csv": links.page("/bugs.csv", params),
        "json": links.page("/bugs.json", params),
    }
    document: dict[str, object] = {
        "schema": SCHEMA,
        "filter": {"status": status or None, "q": text or None, "tag": tag or None},
        "bugs": [
            {
                **index.refs[row.id].as_json(),
                "assignee": row.assignee or None,
                "author": row.author,
                "tags": list(row.tags),
                "links": [{"kind": kind, "target": target} for kind, target in row.links],
                "created_ns": row.created,
                "updated_ns": row.updated,
                "events": row.events,
            }
            for row in rows
        ],
    }
    table: list[list[object]] = [
        [
            row.id,
            index.refs[row.id].short,
            row.status,
            row.severity,
            row.title,
            row.assignee,
            " ".join(row.tags),
            " ".join(f"{kind}:{target}" for kind, target in row.links),
            row.created,
            row.updated,
            row.events,
        ]
        for row in rows
    ]
    return Page("bugs.html", context, document, (_BUG_HEADER, table), title="Bugs")


class TimelineItem(NamedTuple):
    """One event of a bug as its timeline shows it."""

    id: str
    wall: int
    author: str
    kind: str
    summary: str
    """One line: what changed."""
    text: str | None
    """A description or comment, shown as a block."""
    link: BugLink | None


def _timeline_item(event: BugEvent) -> TimelineItem:
    change = event.change
    summary, text, link = event.kind, None, None
    if isinstance(change, Create):
        summary, text = f"opened: {change.title}", change.description or None
    elif isinstance(change, SetField):
        value = change.value or "nobody" if change.field == "assignee" else change.value
        summary = f"{'retitled' if change.field == 'title' else change.field}: {value}"
        if change.field == "description":
            summary, text = "description changed", change.value
    elif isinstance(change, AddTag):
        summary = f"tagged {change.tag}"
    elif isinstance(change, RemoveTag):
        summary = f"untagged {change.tag}"
    elif isinstance(change, AddComment):
        summary, text = "commented", change.text
    elif isinstance(change, AddLink):
        summary, link = "linked", BugLink(change.kind, change.target)
    elif isinstance(change, RemoveLink):
        summary, link = "unlinked", BugLink(change.kind, change.target)
    return TimelineItem(event.id, event.wall, event.author, event.kind, summary, text, link)


def bug_page(
    repo: ReadOnlyRepository, bug_id: str, now_ns: int, source: TriageSource, links: Links
) -> Page:
    """One bug: its status and fields, its timeline of events, what it links
    (clusters, tests, rules, commits) with their live evidence from the runs."""
    state, events = repo.bug(bug_id)
    index = _bug_index(repo)
    short = index.refs[state.id].short if state.id in index.refs else state.id[:7]
    ordered = sorted(state.links)
    # A rule's evidence reads every failure of the newest 200 runs: too slow for a
    # page; the rule itself is shown instead (``bug show`` computes it).
    live = repo.bug_evidence(
        [link for link in ordered if link.kind != "rule"], days=EVIDENCE_DAYS, now_ns=now_ns
    )
    rules = source.rules_for(repo)
    rule_links = {link.target for link in ordered if link.kind == "rule"}
    naming = [rule for rule in rules if rule.id in rule_links or _names(index, rule, state.id)]
    timeline = [_timeline_item(event) for event in events]
    context: dict[str, object] = {
        "state": state,
        "short": short,
        "links_of": ordered,
        "evidence": {(item.link.kind, item.link.target): item for item in live},
        "rules": naming,
        "timeline": timeline,
        "csv": links.page(f"/bugs/{state.id}.csv"),
    }
    document: dict[str, object] = {
        "schema": SCHEMA,
        "bug": {
            "id": state.id,
            "short_id": short,
            "title": state.title,
            "description": state.description,
            "status": state.status,
            "severity": state.severity,
            "assignee": state.assignee or None,
            "author": state.author,
            "tags": sorted(state.tags),
            "links": [{"kind": link.kind, "target": link.target} for link in ordered],
            "comments": [
                {"id": c.event, "author": c.author, "wall_ns": c.wall, "text": c.text}
                for c in state.comments
            ],
            "created_ns": state.created,
            "updated_ns": state.updated,
            "events": state.events,
        },
        "evidence": evidence_json(live),
        "rules": [_rule_json(rule) for rule in naming],
        "timeline": [
            {
                "id": item.id,
                "wall_ns": item.wall,
                "author": item.author,
                "kind": item.kind,
                "summary": item.summary,
                "text": item.text,
                "link": None
                if item.link is None
                else {"kind": item.link.kind, "target": item.link.target},
            }
            for item in timeline
        ],
    }
    table: list[list[object]] = [
        [item.id, item.wall, item.author, item.kind, item.summary, item.text] for item in timeline
    ]
    return Page(
        "bug.html",
        context,
        document,
        (["event", "wall_ns", "author", "kind", "summary", "text"], table),
        title=f"Bug {short}: {state.title}",
    )


def _names(index: BugIndex, rule: Rule, bug: str) -> bool:
    named = index.named(rule.bug)
    return named is not None and named.id == bug


class FailureNote(NamedTuple):
    """A failure's cluster and what is known of it (run page, report)."""

    cluster: str
    kind: str
    key: str
    explanation: Explanation
    bugs: list[BugRef]
    rule_url: str | None


def failure_notes(
    repo: ReadOnlyRepository, info: RunInfo, source: TriageSource
) -> dict[int, FailureNote]:
    """Each signed failure of the run (by its position in the run) with its
    cluster, the rule that explains it and the bugs that know it."""
    rows = repo.failures([info.id])
    if not rows:
        return {}
    rules = source.rules_for(repo)
    firsts: dict[str, int] = {}
    for position, row in enumerate(rows):
        firsts.setdefault(row.cluster, position)
    chosen = [rows[position] for position in firsts.values()]
    known = dict(zip(firsts, repo.explain(chosen, rules), strict=True))
    bugs = _bug_index(repo)
    notes: dict[int, FailureNote] = {}
    for row in rows:
        explanation = known[row.cluster]
        found = bugs.known("cluster", row.cluster, explanation.bug)
        for bug in bugs.linking("test", row.test_id):
            if bug not in found:
                found.append(bug)
        notes[row.seq] = FailureNote(
            row.cluster, row.kind, row.key, explanation, found, external_url(explanation.bug)
        )
    return notes


def run_clusters(notes: Mapping[int, FailureNote]) -> list[tuple[FailureNote, int]]:
    """A run's clusters (from :func:`failure_notes`) with their failures in it,
    most failures first."""
    counts: dict[str, int] = {}
    first: dict[str, FailureNote] = {}
    for note in notes.values():
        counts[note.cluster] = counts.get(note.cluster, 0) + 1
        first.setdefault(note.cluster, note)
    return sorted(
        ((first[c], n) for c, n in counts.items()), key=lambda item: (-item[1], item[0].cluster)
    )


def note_json(note: FailureNote | None) -> dict[str, object] | None:
    if note is None:
        return None
    return {
        "cluster": note.cluster,
        "kind": note.kind,
        "key": note.key,
        "rule": note.explanation.rule,
        "bug": note.explanation.bug,
        "bugs": [bug.as_json() for bug in note.bugs],
    }


def test_clusters(
    repo: ReadOnlyRepository, test_id: str, run_ids: Sequence[int], source: TriageSource
) -> tuple[list[tuple[str, str, int, int]], list[BugRef]]:
    """A test's failures among ``run_ids`` grouped by cluster: (cluster, key,
    failures, newest run), most failures first; and the bugs linking the test."""
    rows = [row for row in repo.failures(run_ids) if row.test_id == test_id]
    groups: dict[str, list[int]] = {}
    keys: dict[str, str] = {}
    for row in rows:
        groups.setdefault(row.cluster, []).append(row.run)
        keys.setdefault(row.cluster, row.key)
    found = [(cluster, keys[cluster], len(runs), max(runs)) for cluster, runs in groups.items()]
    found.sort(key=lambda item: (-item[2], item[0]))
    return found, _bug_index(repo).linking("test", test_id)
