"""Each page as a value: its template and context, its JSON document, and
its table for CSV.

One builder per page, shared by every way of asking for it (HTML, ``.json``,
``Accept: application/json``, ``.csv``). The JSON documents reuse the shapes of
the command line's ``--json`` (docs/json.md): a run is ``runs --json``'s run, a
result ``last --json``'s result, an execution ``history --json``'s.
"""

from __future__ import annotations

from collections.abc import Mapping

from proctor.cli._show import run_state
from proctor.cli.json_shapes import (
    SCHEMA,
    history_json,
    record_json,
    run_json,
    status_name,
    test_stats_json,
)
from proctor.store.model import RunInfo
from proctor.web.compare import CATEGORIES, Change, compare_runs
from proctor.web.page import Page
from proctor.web.pages import Links
from proctor.web.queries import (
    CHART_RUNS,
    PAGE_SIZE,
    WINDOWS,
    QueryError,
    RunFilter,
    choices,
    failing,
    job_of,
    matching_runs,
    previous_run,
    slowest_of,
    started_failing,
)
from proctor.web.repository import ReadOnlyRepository
from proctor.web.svg import duration_chart, outcome_strip, rate_chart, runs_chart, wall_chart
from proctor.web.triage_pages import (
    TriageSource,
    failure_notes,
    note_json,
    overview_triage,
    run_clusters,
    test_clusters,
)

__all__ = ["Page", "compare_page", "overview", "run_page", "runs_page", "search", "test_page"]


SLOWEST = 20
HISTORY_DEFAULT = 200
HISTORY_MAX = 1000


def _run_row(info: RunInfo) -> list[object]:
    meta = info.metadata
    counts = info.counts
    return [
        info.id,
        info.started_ns,
        run_state(info),
        meta.git_branch,
        meta.git_commit,
        job_of(info),
        meta.source,
        counts.ran,
        counts.passed,
        counts.failures,
        counts.skipped,
        info.wall_seconds,
    ]


_RUN_HEADER = [
    "id",
    "started_ns",
    "state",
    "branch",
    "commit",
    "job",
    "source",
    "ran",
    "passed",
    "failures",
    "skipped",
    "wall_seconds",
]


def overview(
    repo: ReadOnlyRepository,
    query: Mapping[str, str],
    now_ns: int,
    links: Links,
    source: TriageSource,
) -> Page:
    flt = RunFilter.parse(query)
    runs = matching_runs(repo, flt, now_ns, limit=CHART_RUNS)
    oldest_first = list(reversed(runs))
    triage, triage_document = overview_triage(repo, oldest_first, flt, source)
    ran = sum(info.counts.ran for info in runs)
    failures = sum(info.counts.failures for info in runs)
    failed_runs = sum(1 for info in runs if info.counts.failures)
    walls = [info.wall_seconds for info in runs if info.wall_seconds is not None]
    summary = {
        "runs": len(runs),
        "failed_runs": failed_runs,
        "results": ran,
        "failures": failures,
        "failure_rate": failures / ran if ran else None,
        "mean_wall_seconds": sum(walls) / len(walls) if walls else None,
    }
    context: dict[str, object] = {
        "filter": flt,
        "choices": choices(repo),
        "windows": list(WINDOWS),
        "summary": summary,
        "runs": runs[:10],
        "chart": runs_chart(oldest_first, links.run),
        "rate": rate_chart(oldest_first, links.run),
        "wall": wall_chart(oldest_first, links.run),
        "triage": triage,
    }
    document: dict[str, object] = {
        "schema": SCHEMA,
        "filter": flt.as_json(),
        "summary": summary,
        "triage": triage_document,
        "runs": [
            {
                "id": info.id,
                "started_ns": info.started_ns,
                "branch": info.metadata.git_branch,
                "commit": info.metadata.git_commit,
                "job": job_of(info),
                "passed": info.counts.passed,
                "failed": info.counts.failures,
                "skipped": info.counts.skipped,
                "ran": info.counts.ran,
                "failure_rate": info.counts.failures / info.counts.ran if info.counts.ran else None,
                "wall_seconds": info.wall_seconds,
            }
            for info in oldest_first
        ],
    }
    return Page("overview.html", context, document, (_RUN_HEADER, [_run_row(r) for r in runs]))


def runs_page(
    repo: ReadOnlyRepository, query: Mapping[str, str], now_ns: int, links: Links, *, every: bool
) -> Page:
    """The runs list, newest first, a page at a time (``every``: the whole list, for CSV)."""
    flt = RunFilter.parse(query)
    if every:
        found = matching_runs(repo, flt, now_ns, limit=None)
        shown, more = found, False
    else:
        skip = (flt.page - 1) * PAGE_SIZE
        found = matching_runs(repo, flt, now_ns, limit=skip + PAGE_SIZE + 1)
        shown = found[skip : skip + PAGE_SIZE]
        more = len(found) > skip + PAGE_SIZE
    alive = repo.writers_alive(shown)
    context: dict[str, object] = {
        "filter": flt,
        "choices": choices(repo),
        "windows": list(WINDOWS),
        "runs": shown,
        "alive": alive,
        "more": more,
        "csv": links.page("/runs.csv", flt.params(page=None)),
        "next": links.page("/runs", flt.params(page=flt.page + 1)) if more else None,
        "prev": links.page("/runs", flt.params(page=flt.page - 1)) if flt.page > 1 else None,
    }
    document: dict[str, object] = {
        "schema": SCHEMA,
        "filter": flt.as_json(),
        "page_size": None if every else PAGE_SIZE,
        "more": more,
        "runs": [run_json(info, run_state(info, alive)) for info in shown],
    }
    return Page("runs.html", context, document, (_RUN_HEADER, [_run_row(r) for r in shown]))


def _run_id(query: Mapping[str, str], key: str) -> int | None:
    text = query.get(key)
    if not text:
        return None
    if not text.isdigit() or len(text) > 18:
        raise QueryError(f"{key}={text!r} is not a run id (see the runs list)")
    return int(text)


def run_page(
    repo: ReadOnlyRepository, run_id: int, query: Mapping[str, str], source: TriageSource
) -> Page:
    info = repo.run(run_id)
    records = repo.records(run_id)
    notes = failure_notes(repo, info, source)
    alive = repo.writers_alive([info])
    failing_seqs = [seq for seq, record in enumerate(records) if failing(record.status)]
    failures = [records[seq] for seq in failing_seqs]
    failure_notes_of = [notes.get(seq) for seq in failing_seqs]
    skipped = [record for record in records if status_name(record.status) in ("skip", "xfail")]
    slowest = slowest_of(records, SLOWEST)
    previous = previous_run(repo, info)
    others = [other for other in repo.runs(limit=50) if other.id != info.id]
    context: dict[str, object] = {
        "info": info,
        "state": run_state(info, alive),
        "job": job_of(info),
        "failures": failures,
        "skipped": skipped,
        "slowest": slowest,
        "previous": previous,
        "others": others,
        "results": len(records),
        "notes": failure_notes_of,
        "clusters": run_clusters(notes),
    }
    document: dict[str, object] = {
        "schema": SCHEMA,
        "run": run_json(info, run_state(info, alive)),
        "previous": None if previous is None else previous.id,
        "failures": [
            {**record_json(record), "cluster": note_json(note)}
            for record, note in zip(failures, failure_notes_of, strict=True)
        ],
        "slowest": [
            {"id": record.test_id, "duration_seconds": record.duration} for record in slowest
        ],
    }
    rows: list[list[object]] = [
        [
            record.test_id,
            status_name(record.status),
            record.duration,
            record.worker,
            record.start,
        ]
        for record in records
    ]
    return Page(
        "run.html",
        context,
        document,
        (["id", "status", "duration_seconds", "worker", "start_ns"], rows),
        title=f"Run {info.id}",
    )


def compare_page(repo: ReadOnlyRepository, query: Mapping[str, str]) -> Page:
    head_id = _run_id(query, "head")
    if head_id is None:
        latest = repo.latest_run()
        if latest is None:
            raise QueryError("there are no runs to compare yet")
        head_id = latest.id
    head = repo.run(head_id)
    base_id = _run_id(query, "base")
    base = repo.run(base_id) if base_id is not None else previous_run(repo, head, any_branch=True)
    if base is None:
        raise QueryError(f"run {head.id} has no earlier run to compare with: choose base=RUN")
    result = compare_runs(
        repo.records(base.id, attachments=False), repo.records(head.id, attachments=False)
    )

    def change_json(change: Change) -> dict[str, object]:
        return {
            "id": change.test_id,
            "base_status": None if change.base is None else status_name(change.base),
            "head_status": None if change.head is None else status_name(change.head),
            "base_seconds": change.base_seconds,
            "head_seconds": change.head_seconds,
        }

    lists = result.lists()
    document: dict[str, object] = {
        "schema": SCHEMA,
        "base": run_json(base, run_state(base)),
        "head": run_json(head, run_state(head)),
        "common": result.common,
        **{name: [change_json(change) for change in changes] for name, changes in lists},
    }
    rows: list[list[object]] = [
        [
            name,
            change.test_id,
            None if change.base is None else status_name(change.base),
            None if change.head is None else status_name(change.head),
            change.base_seconds,
            change.head_seconds,
        ]
        for name, changes in lists
        for change in changes
    ]
    context: dict[str, object] = {
        "base": base,
        "head": head,
        "result": result,
        "lists": lists,
        "categories": CATEGORIES,
        "others": repo.runs(limit=100),
    }
    header = ["change", "id", "base_status", "head_status", "base_seconds", "head_seconds"]
    return Page(
        "compare.html", context, document, (header, rows), title=f"Run {base.id} → {head.id}"
    )


def test_page(
    repo: ReadOnlyRepository, query: Mapping[str, str], links: Links, source: TriageSource
) -> Page:
    test_id = query.get("id")
    if not test_id:
        raise QueryError("no test named: give id=TEST (search finds one)")
    count_text = query.get("n") or str(HISTORY_DEFAULT)
    if not count_text.isdigit() or not 1 <= int(count_text) <= HISTORY_MAX:
        raise QueryError(f"n={count_text!r}: show between 1 and {HISTORY_MAX} executions")
    count = int(count_text)
    branch = query.get("branch") or None
    history = repo.test_history(test_id, limit=None if branch else count)
    if branch:
        history = [entry for entry in history if entry.git_branch == branch][:count]
    stats = repo.test_stats([test_id]).get(test_id)
    change = started_failing(history)
    branches = sorted({entry.git_branch for entry in history if entry.git_branch})
    failed_runs = [entry.run_id for entry in history if failing(entry.status)]
    clusters, bugs = test_clusters(repo, test_id, failed_runs, source)
    verdict = repo.test_verdict(test_id, history, source.settings)
    context: dict[str, object] = {
        "test_id": test_id,
        "verdict": verdict,
        "history": history,
        "stats": stats,
        "change": change,
        "count": count,
        "branch": branch,
        "branches": branches,
        "strip": outcome_strip(history, links.run),
        "durations": duration_chart(history, links.run),
        "clusters": clusters,
        "bugs": bugs,
        "csv": links.page(
            "/test.csv", {"id": test_id, "n": str(count), **({"branch": branch} if branch else {})}
        ),
    }
    document: dict[str, object] = {
        "schema": SCHEMA,
        "test": test_id,
        "branch": branch,
        "history": test_stats_json(stats),
        "started_failing": None
        if change is None
        else {
            "run": change.first_failure.run_id,
            "commit": change.first_failure.git_commit,
            "branch": change.first_failure.git_branch,
            "started_ns": change.first_failure.run_started_ns,
            "streak": change.streak,
            "last_good_run": None if change.last_good is None else change.last_good.run_id,
            "last_good_commit": None if change.last_good is None else change.last_good.git_commit,
        },
        "verdict": None
        if verdict is None
        else {
            "verdict": verdict.verdict,
            "reasons": verdict.reasons,
            "impact_runs": verdict.impact,
        },
        "executions": history_json(history),
        "clusters": [
            {"cluster": cluster, "key": key, "failures": count, "newest_run": newest}
            for cluster, key, count, newest in clusters
        ],
        "bugs": [bug.as_json() for bug in bugs],
    }
    rows: list[list[object]] = [
        [e.run_id, e.run_started_ns, status_name(e.status), e.duration, e.git_branch, e.git_commit]
        for e in history
    ]
    header = ["run", "run_started_ns", "status", "duration_seconds", "branch", "commit"]
    return Page("test.html", context, document, (header, rows), title=test_id)


SEARCH_LIMIT = 100


def search(repo: ReadOnlyRepository, query: Mapping[str, str]) -> Page:
    fragment = query.get("q", "")
    found = repo.find_tests(fragment, limit=SEARCH_LIMIT) if fragment else []
    context: dict[str, object] = {"q": fragment, "found": found, "limit": SEARCH_LIMIT}
    document: dict[str, object] = {"schema": SCHEMA, "q": fragment, "tests": found}
    return Page("search.html", context, document, (["id"], [[t] for t in found]))
