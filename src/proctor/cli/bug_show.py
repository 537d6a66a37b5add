"""What ``proctor bug show`` writes: a bug and its live evidence, as text or JSON.

Every string from a bug or a test id goes through :mod:`proctor.cli.printable`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from proctor.cli.formats import format_time
from proctor.cli.printable import printable, printable_id

if TYPE_CHECKING:
    from proctor.bugs.repository import BugRepository

__all__ = ["bug_json", "evidence_json", "write_bug"]


def _short(repo: BugRepository, bug: str) -> str:
    return repo.short_ids([bug])[bug]


def bug_json(repo: BugRepository, bug_id: str) -> dict[str, object]:
    state = repo.state(bug_id)
    return {
        "id": state.id,
        "short_id": _short(repo, state.id),
        "title": state.title,
        "description": state.description,
        "status": state.status,
        "severity": state.severity,
        "assignee": state.assignee or None,
        "author": state.author,
        "tags": sorted(state.tags),
        "links": [{"kind": link.kind, "target": link.target} for link in sorted(state.links)],
        "comments": [
            {"id": c.event, "author": c.author, "wall_ns": c.wall, "text": c.text}
            for c in state.comments
        ],
        "created_ns": state.created,
        "updated_ns": state.updated,
        "events": state.events,
    }


def evidence_json(found: list[Any]) -> list[dict[str, object]]:
    return [
        {
            "kind": item.link.kind,
            "target": item.link.target,
            "state": item.state,
            "executions": item.executions,
            "failures": item.failures,
            "failures_per_day": [{"day": day, "failures": n} for day, n in item.per_day],
            "last_failed_ns": item.last_failed_ns,
            "last_failed_run": item.last_failed_run,
            "last_failed_commit": item.last_failed_commit,
            "last_seen_ns": item.last_seen_ns,
            "runs": list(item.runs),
            "commits": list(item.commits),
            "note": item.note or None,
        }
        for item in found
    ]


def _show_evidence(items: list[dict[str, Any]]) -> None:
    line = printable_id
    for item in items:
        head = f"evidence: {item['kind']} {line(item['target'])}: "
        if item["state"] != "found":
            click.echo(head + line(item["note"] or item["state"]))
            continue
        if item["kind"] == "commit":
            click.echo(
                head + f"{item['executions']} run(s), {item['failures']} failure(s); "
                f"runs {' '.join(map(str, item['runs']))}"
            )
            continue
        if item["kind"] == "rule":
            click.echo(
                head + f"explains {item['failures']} of {item['executions']} failure(s) "
                f"({line(item['note'] or '')}); runs {' '.join(map(str, item['runs'])) or '-'}"
            )
            continue
        counted = (
            f"{item['failures']} failure(s) in {item['executions']} run(s)"
            if item["kind"] == "cluster"
            else f"failed {item['failures']} of {item['executions']} time(s)"
        )
        click.echo(
            head + f"{counted}; "
            f"last failed {format_time(item['last_failed_ns'])}"
            + (f" (run {item['last_failed_run']}" if item["last_failed_run"] else "")
            + (
                f" @ {line(item['last_failed_commit'][:10])})"
                if item["last_failed_commit"]
                else ")"
                if item["last_failed_run"]
                else ""
            )
            + f"; last seen {format_time(item['last_seen_ns'])}"
        )
        days = item["failures_per_day"]
        if any(d["failures"] for d in days):
            bars = " ".join(str(d["failures"]) for d in days)
            click.echo(f"          failures per day since {days[0]['day']}: {bars}")
        if item["commits"]:
            click.echo(f"          commits: {line(' '.join(c[:10] for c in item['commits']))}")


def write_bug(
    document: dict[str, object], live: list[dict[str, object]], partial: list[str]
) -> None:
    """The text form of ``bug show``."""
    line = printable_id
    click.echo(f"{document['short_id']}  {line(str(document['title']))}")
    click.echo(f"status:   {document['status']}   severity: {document['severity']}")
    click.echo(f"assignee: {line(str(document['assignee'] or '-'))}")
    click.echo(
        f"opened:   {format_time(int(str(document['created_ns'])))} by "
        f"{line(str(document['author']))}"
    )
    click.echo(f"updated:  {format_time(int(str(document['updated_ns'])))}")
    tags: list[str] = document["tags"]  # type: ignore[assignment]
    click.echo(f"tags:     {line(' '.join(tags)) or '-'}")
    links: list[dict[str, str]] = document["links"]  # type: ignore[assignment]
    for link in links:
        click.echo(f"link:     {link['kind']} {line(link['target'])}")
    if document["description"]:
        click.echo("")
        click.echo(printable(str(document["description"])))
    comments: list[dict[str, Any]] = document["comments"]  # type: ignore[assignment]
    for comment in comments:
        click.echo("")
        click.echo(f"-- {line(comment['author'])}, {format_time(comment['wall_ns'])}")
        click.echo(printable(comment["text"]))
    if live:
        click.echo("")
        _show_evidence(live)
    if partial:
        click.echo(f"\n(this copy is partial: made with --filter {line('; '.join(partial))})")
