"""``proctor report``: one run as one self-contained HTML file, for a CI artifact.

The same templates, stylesheet and SVG charts as ``proctor ui``, written into
one file that opens from ``file://`` with no network: the stylesheet is inline
and allowed by its hash in the file's own Content-Security-Policy, which allows
nothing else (no script at all, no request anywhere). What it holds: the run,
its failures in full, the comparison with the previous run on its branch, the
trend of the last runs of the branch, the slowest tests, and every other result
as a compact row. Each failure names its cluster and what is known of it (the
known-bug rule that explains it, the bugs that link its cluster or test).

Size discipline (so that 10,000 results fit in 5 MB and 100,000 in 30 MB):
passing tests are one short row each with no attachments; an attachment text
repeated across failures is written once, later failures point to it; each
attachment is cut to :data:`ATTACHMENT_LIMIT` characters, and to
:data:`TIGHT_LIMIT` once :data:`TEXT_BUDGET` characters of attachments have been
written; binary attachments are left out with a note.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Sequence

from markupsafe import Markup

from proctor.cli._show import run_state
from proctor.store.model import RunInfo
from proctor.web.compare import compare_runs
from proctor.web.pages import ReportLinks, environment, static_text
from proctor.web.queries import failing, job_of, previous_run, slowest_of
from proctor.web.repository import ReadOnlyRepository
from proctor.web.svg import rate_chart, runs_chart, wall_chart
from proctor.web.triage_pages import TriageSource, failure_notes, run_clusters
from proctor.wire.record import TestRecord

__all__ = ["ATTACHMENT_LIMIT", "TEXT_BUDGET", "TIGHT_LIMIT", "TREND_RUNS", "build_report"]

ATTACHMENT_LIMIT = 64 * 1024
TIGHT_LIMIT = 2 * 1024
TEXT_BUDGET = 3 * 1024 * 1024
TREND_RUNS = 30
SLOWEST = 20


def report_csp(css: str) -> str:
    digest = base64.b64encode(hashlib.sha256(css.encode("utf-8")).digest()).decode("ascii")
    return (
        f"default-src 'none'; style-src 'sha256-{digest}'; img-src data:; "
        "base-uri 'none'; form-action 'none'"
    )


def _plan_attachments(
    failures: Sequence[TestRecord],
) -> tuple[dict[str, int], list[int]]:
    """For each failure's attachments: the earlier failure showing the same
    text (key ``"i:j"``, 1-based failure numbers), and each failure's limit."""
    first: dict[tuple[str, bytes], int] = {}
    shared: dict[str, int] = {}
    limits: list[int] = []
    written = 0
    for index, record in enumerate(failures, 1):
        limit = ATTACHMENT_LIMIT if written < TEXT_BUDGET else TIGHT_LIMIT
        limits.append(limit)
        for ordinal, attachment in enumerate(record.attachments):
            key = (attachment.name, hashlib.sha256(attachment.content).digest())
            seen = first.get(key)
            if seen is not None:
                shared[f"{index}:{ordinal}"] = seen
            else:
                first[key] = index
                written += min(len(attachment.content), limit)
    return shared, limits


def build_report(
    repo: ReadOnlyRepository,
    info: RunInfo,
    *,
    trend: int = TREND_RUNS,
    now_ns: int | None = None,
    triage: TriageSource | None = None,
) -> str:
    """The report on run ``info`` as one HTML document; ``triage``: the
    known-bug rules that name each failure's cluster's bug (default: the
    repository's copy)."""
    records = repo.records(info.id)
    failing_seqs = [seq for seq, record in enumerate(records) if failing(record.status)]
    failures = [records[seq] for seq in failing_seqs]
    others = [record for record in records if not failing(record.status)]
    notes = failure_notes(repo, info, triage or TriageSource())
    failure_notes_of = [notes.get(seq) for seq in failing_seqs]
    previous = previous_run(repo, info)
    comparison = None
    if previous is not None:
        comparison = compare_runs(repo.records(previous.id, attachments=False), records)
    history = repo.runs(
        branch=info.metadata.git_branch, until_ns=info.started_ns + 1, limit=trend + 5
    )
    history = [other for other in history if other.id <= info.id][:trend]
    oldest_first = list(reversed(history))
    links = ReportLinks(info.id)
    shared, limits = _plan_attachments(failures)
    css = static_text("app.css")
    return (
        environment()
        .get_template("report.html")
        .render(
            links=links,
            css=Markup(css),  # our own file, written as it is: its hash is in the CSP
            report_csp=report_csp(css),
            generated=time.time_ns() if now_ns is None else now_ns,
            title=f"Run {info.id} report",
            path="",
            query="",
            info=info,
            state=run_state(info),
            job=job_of(info),
            failures=failures,
            notes=failure_notes_of,
            clusters=run_clusters(notes),
            shared=shared,
            limits=limits,
            others=others,
            slowest=slowest_of(records, SLOWEST),
            previous=previous,
            comparison=comparison,
            trend=runs_chart(oldest_first, links.run),
            rate=rate_chart(oldest_first, links.run),
            wall=wall_chart(oldest_first, links.run),
            trend_runs=len(oldest_first),
        )
    )
