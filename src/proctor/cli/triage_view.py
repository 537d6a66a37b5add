"""How `proctor triage` and `proctor flaky` show what proctor.triage found:
text for a terminal (every test-provided text through :mod:`printable`) and
the `--json` documents (docs/json.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, TextIO

from proctor.cli.formats import format_time
from proctor.cli.printable import printable, printable_id
from proctor.store.failures import FailureRow
from proctor.store.model import RunInfo
from proctor.triage.text import failure_text

if TYPE_CHECKING:
    from proctor.triage.clusters import Cluster, Explanation
    from proctor.triage.flaky import Verdict
    from proctor.triage.notes import ClusterNote
    from proctor.wire.record import TestRecord

__all__ = [
    "cluster_json",
    "failure_json",
    "show_cluster",
    "show_clusters",
    "show_notes",
    "show_verdicts",
    "sparkline",
    "verdict_json",
    "window_json",
]

_BARS = "▁▂▃▄▅▆▇█"
_ASCII_BARS = "_.-=+*#@"


def sparkline(counts: Sequence[int], out: TextIO | None = None) -> str:
    """Counts as a line of bars (a space for none); ASCII when ``out`` cannot
    encode the block characters."""
    bars = _BARS
    encoding = (getattr(out, "encoding", None) or "utf-8").lower()
    if "utf" not in encoding:
        bars = _ASCII_BARS
    top = max(counts, default=0)
    if top == 0:
        return " " * len(counts)
    return "".join(
        " " if count == 0 else bars[min(len(bars) - 1, (count * len(bars) - 1) // top)]
        for count in counts
    )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _other_runs(count: int) -> str:
    from proctor.triage.notes import RUNS_COUNTED

    if count > RUNS_COUNTED:
        return f"{RUNS_COUNTED}+ other runs"
    return _count(count, "other run")


def _tail(text: str, lines: int) -> list[str]:
    kept = [line for line in text.rstrip().splitlines() if line.strip()]
    return kept[-lines:]


def window_json(
    runs: Sequence[RunInfo], since_ns: int | None, until_ns: int | None, branch: str | None
) -> dict[str, object]:
    return {
        "since_ns": since_ns,
        "until_ns": until_ns,
        "branch": branch,
        "runs": [info.id for info in runs],
    }


def mark_bug_regressions(
    clusters: Sequence[Cluster], closings: Mapping[str, int]
) -> dict[str, int]:
    """Mark *regressed* each cluster whose bug was closed (``closings``: bug
    reference -> closing time) before a run it failed in began: the fix did not
    hold. Returns those clusters' ids with their bug's closing time."""
    reopened: dict[str, int] = {}
    for cluster in clusters:
        closed = closings.get(cluster.explanation.bug or "")
        if closed is not None and cluster.last_ns > closed:
            cluster.state = "regressed"
            reopened[cluster.id] = closed
    return reopened


def bug_closing_json(closed_ns: int | None, last_ns: int) -> dict[str, object]:
    """A cluster's known bug's closing, for JSON: when it was closed (None: it
    is not a closed ``proctor bug`` record) and whether it failed since."""
    return {
        "bug_closed_ns": closed_ns,
        "bug_regressed": closed_ns is not None and last_ns > closed_ns,
    }


def show_known(out: TextIO, known: Explanation, closed_ns: int | None, last_ns: int) -> None:
    """What explains a cluster (``triage show``): its rule and bug, and whether
    the bug, closed, fails again."""
    if not (known.bug or known.rule):
        out.write("\nKnown: no rule explains it (`proctor rules add` names its bug).\n")
        return
    out.write(f"\nKnown: bug {printable_id(known.bug or '-')} (rule {known.rule or '-'})")
    out.write(_closing(closed_ns, last_ns) + "\n")


def _closing(closed_ns: int | None, last_ns: int) -> str:
    if closed_ns is None:
        return ""
    if last_ns > closed_ns:
        return f", closed {format_time(closed_ns)}: REGRESSED, failing again since"
    return f", closed {format_time(closed_ns)}"


def cluster_json(
    cluster: Cluster, example: TestRecord | None, closed_ns: int | None = None
) -> dict[str, object]:
    row = cluster.example
    return {
        "id": cluster.id,
        "signature": cluster.digest,
        "algorithm": cluster.algorithm,
        "kind": cluster.kind,
        "key": cluster.key,
        "failures": cluster.failures,
        "tests": len(cluster.tests),
        "runs": len(cluster.runs),
        "first_seen_ns": cluster.first_ns,
        "last_seen_ns": cluster.last_ns,
        "first_seen_ever_ns": cluster.first_ever_ns,
        "trend": cluster.trend,
        "state": cluster.state,
        "share": round(cluster.share, 6),
        "rule": cluster.explanation.rule,
        "bug": cluster.explanation.bug,
        **bug_closing_json(closed_ns, cluster.last_ns),
        "example": None
        if row is None
        else {
            "run": row.run,
            "test": row.test_id,
            "traceback": None if example is None else failure_text(example),
        },
    }


def failure_json(row: FailureRow, known: Explanation | None = None) -> dict[str, object]:
    """One stored failure, for `triage failures --json` (one object per line);
    ``known``: the rule and bug that explain it (None: nothing does)."""
    return {
        "run": row.run,
        "seq": row.seq,
        "test": row.test_id,
        "cluster": row.cluster,
        "signature": row.digest,
        "algorithm": row.algorithm,
        "kind": row.kind,
        "run_started_ns": row.run_ns,
        "rule": None if known is None else known.rule,
        "bug": None if known is None else known.bug,
    }


def verdict_json(verdict: Verdict) -> dict[str, object]:
    return {
        "id": verdict.test_id,
        "verdict": verdict.verdict,
        "reasons": verdict.reasons,
        "impact_runs": verdict.impact,
        "failed_runs": verdict.failed_runs,
        "passed_runs": verdict.passed_runs,
        "evidence": [
            {
                "commit": evidence.commit,
                "python": evidence.variant[0],
                "platform": evidence.variant[1],
                "ci_job": evidence.variant[2],
                "passed_runs": list(evidence.passed),
                "failed_runs": list(evidence.failed),
            }
            for evidence in verdict.evidence
        ],
    }


def _span(runs: Sequence[RunInfo]) -> str:
    first, last = runs[0], runs[-1]
    count = f"{len(runs)} run{'s' if len(runs) != 1 else ''}"
    return (
        f"{count}, {first.id}..{last.id}, "
        f"{format_time(first.metadata.started_ns)} to {format_time(last.metadata.started_ns)}"
    )


def show_clusters(
    out: TextIO,
    clusters: Sequence[Cluster],
    total: int,
    runs: Sequence[RunInfo],
    examples: dict[str, TestRecord | None],
    limit: int | None,
    reopened: Mapping[str, int] | None = None,
) -> None:
    """The cluster table; ``reopened``: clusters failing again after their bug was
    closed, with its closing time (:func:`mark_bug_regressions`)."""
    if not runs:
        out.write("No runs in the window.\n")
        return
    out.write(
        f"{total} failure{'s' if total != 1 else ''} in {len(clusters)} "
        f"cluster{'s' if len(clusters) != 1 else ''} over {_span(runs)}\n"
    )
    shown = clusters if limit is None else clusters[:limit]
    for rank, cluster in enumerate(shown, 1):
        out.write(
            f"\n{rank:>2}. {cluster.id}  {cluster.state.upper():<9} "
            f"{_count(cluster.failures, 'failure')} "
            f"({cluster.share:.1%}), {_count(len(cluster.tests), 'test')}, "
            f"{_count(len(cluster.runs), 'run')}  "
            f"[{sparkline(cluster.trend, out)}]\n"
        )
        out.write(f"    {printable_id(cluster.key)}\n")
        out.write(
            f"    seen {format_time(cluster.first_ns)} .. {format_time(cluster.last_ns)}"
            f"{'' if cluster.state != 'new' else ' (first ever)'}"
        )
        known = cluster.explanation
        if known.bug or known.rule:
            out.write(f"; known: bug {printable_id(known.bug or '-')} (rule {known.rule or '-'})")
            closed = (reopened or {}).get(cluster.id)
            out.write(_closing(closed, cluster.last_ns))
        out.write("\n")
        example = examples.get(cluster.id)
        row = cluster.example
        if row is not None:
            out.write(f"    e.g. {printable_id(row.test_id)} in run {row.run}\n")
        if example is not None:
            for line in _tail(failure_text(example), 3):
                out.write(f"      {printable_id(line)}\n")
    if limit is not None and len(clusters) > limit:
        out.write(f"\n({len(clusters) - limit} more clusters: --limit or --all)\n")


def show_cluster(
    out: TextIO,
    cluster_id: str,
    rows: Sequence[FailureRow],
    runs: dict[int, RunInfo],
    examples: Sequence[TestRecord],
    daily: Sequence[int],
) -> None:
    newest = rows[0]
    out.write(f"Cluster {cluster_id} ({newest.algorithm}, {newest.kind})\n")
    out.write(f"  {printable_id(newest.key)}\n")
    tests: dict[str, int] = {}
    per_run: dict[int, int] = {}
    for row in rows:
        tests[row.test_id] = tests.get(row.test_id, 0) + 1
        per_run[row.run] = per_run.get(row.run, 0) + 1
    out.write(
        f"  {len(rows)} failures, {len(tests)} tests, {len(per_run)} runs; first seen "
        f"{format_time(rows[-1].run_ns)}, last seen {format_time(newest.run_ns)}\n"
    )
    out.write(f"  per day: [{sparkline(daily, out)}]\n")
    out.write(f"\nTests ({len(tests)}):\n")
    for test_id, count in sorted(tests.items(), key=lambda item: (-item[1], item[0])):
        out.write(f"  {count:>6}  {printable_id(test_id)}\n")
    out.write(f"\nRuns ({len(per_run)}), newest first:\n")
    for run_id, count in per_run.items():
        info = runs.get(run_id)
        meta = info.metadata if info is not None else None
        where = ""
        if meta is not None:
            revision = " @ ".join(
                part for part in (meta.git_branch, (meta.git_commit or "")[:10]) if part
            )
            where = f"  {format_time(meta.started_ns)}  {printable_id(revision)}"
        out.write(f"  run {run_id:<6} {count:>5} failure{'s' if count != 1 else ' '}{where}\n")
    for number, example in enumerate(examples, 1):
        out.write(f"\nExample {number}: {printable_id(example.test_id)}\n")
        text = failure_text(example).rstrip()
        for line in (text or "(no traceback)").splitlines()[-40:]:
            out.write(f"  {printable(line)}\n")


def show_verdicts(out: TextIO, verdicts: Sequence[Verdict], runs: Sequence[RunInfo]) -> None:
    if not runs:
        out.write("No runs in the window.\n")
        return
    flaky = sum(1 for verdict in verdicts if verdict.verdict == "flaky")
    broken = len(verdicts) - flaky
    out.write(f"{flaky} flaky and {broken} broken tests over {_span(runs)}\n")
    for verdict in verdicts:
        impact = len(verdict.impact)
        out.write(
            f"\n{verdict.verdict.upper():<6}  {printable_id(verdict.test_id)}\n"
            f"        failed in {len(verdict.failed_runs)} runs, passed in "
            f"{len(verdict.passed_runs)}; {impact} run{'s' if impact != 1 else ''} "
            "failed only because of it\n"
        )
        for reason in verdict.reasons:
            out.write(f"        {printable_id(reason)}\n")


def show_notes(out: TextIO, notes: Sequence[ClusterNote], *, most: int = 10) -> None:
    """What the history knows of a run's failures, cluster by cluster (`last`, `run`)."""
    if not notes:
        return
    out.write(f"\nFailure clusters ({len(notes)}; `proctor triage show CLUSTER` for one):\n")
    for note in notes[:most]:
        count = _count(len(note.tests), "failure")
        mark = "NEW  " if note.new else ""
        out.write(f"  {note.cluster}  {mark}{count}: {printable_id(note.key)}\n")
        if note.bug or note.rule:
            out.write(f"      known: bug {note.bug or '-'} (rule {note.rule or '-'})\n")
        if note.new:
            out.write("      first seen in this run\n")
        elif note.other_runs:
            out.write(
                f"      also failed in {_other_runs(note.other_runs)} "
                f"since {format_time(note.first_ns)}\n"
            )
        shown = ", ".join(printable_id(test) for test in note.tests[:3])
        more = f" and {len(note.tests) - 3} more" if len(note.tests) > 3 else ""
        out.write(f"      {shown}{more}\n")
    if len(notes) > most:
        out.write(f"  ({len(notes) - most} more clusters: `proctor triage --runs 1`)\n")
