"""The ``--json`` output of the query commands: one documented shape per command.

``docs/json.md`` describes every shape; ``tests/cli/test_json_output.py`` pins
them. Conventions shared by all of them:

* One JSON document per command, an object with ``"schema": 1``. A later,
  incompatible change raises the number; fields may be added without one.
* Moments are integers, nanoseconds since the epoch (``*_ns``); durations are
  seconds as floats (``*_seconds``); absent values are ``null``, never left out.
* Strings are what the tests and streams gave, JSON-escaped; output is ASCII
  (``ensure_ascii``), so no byte of it can command a terminal. Attachment
  content is ``text`` when it is text in UTF-8, else ``base64``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, TextIO

from proctor.cli.render import is_text
from proctor.wire.event import NS_PER_SECOND, Status
from proctor.wire.record import Attachment, TestRecord, worker_of

if TYPE_CHECKING:
    from proctor.store.model import HistoryEntry, RunInfo, SlowTest, StoreStats, TestStats

__all__ = [
    "SCHEMA",
    "attachment_json",
    "dump",
    "history_json",
    "record_json",
    "run_document",
    "run_json",
    "slow_json",
    "stats_json",
    "test_stats_json",
]

SCHEMA = 1

JsonObject = dict[str, object]


def dump(document: Mapping[str, object], out: TextIO) -> None:
    """Write ``document`` (with its schema number) and a newline."""
    out.write(json.dumps({"schema": SCHEMA, **document}, ensure_ascii=True, indent=2) + "\n")


def status_name(status: Status) -> str:
    """``success``, ``fail``, ``skip``, ``xfail``, ``uxsuccess``, ``exists``,
    ``inprogress``; ``unfinished`` for a test that never reported an outcome."""
    if not status.is_final:
        return "unfinished"
    return status.wire_name or "unfinished"


def _seconds(ns: float | None) -> float | None:
    return None if ns is None else ns / NS_PER_SECOND


def attachment_json(attachment: Attachment, *, content: bool) -> JsonObject:
    text: str | None = None
    data: str | None = None
    if content:
        if is_text(attachment):
            try:
                text = attachment.content.decode("utf-8")
            except UnicodeDecodeError:
                data = base64.b64encode(attachment.content).decode("ascii")
        else:
            data = base64.b64encode(attachment.content).decode("ascii")
    return {
        "name": attachment.name,
        "mime_type": attachment.mime_type,
        "size": len(attachment.content),
        "text": text,
        "base64": data,
    }


def record_json(record: TestRecord, *, content: bool | None = None) -> JsonObject:
    """A stored result. Attachment content is included for results that did not
    pass (``content=None``), as the text output shows them."""
    if content is None:
        content = record.status is not Status.SUCCESS
    return {
        "id": record.test_id,
        "status": status_name(record.status),
        "worker": worker_of(record.route_code, record.tags),
        "route": record.route_code,
        "tags": sorted(record.tags),
        "start_ns": record.start,
        "stop_ns": record.stop,
        "duration_seconds": record.duration,
        "attachments": [attachment_json(a, content=content) for a in record.attachments],
    }


def run_json(info: RunInfo, state: str) -> JsonObject:
    """A stored run: its state (as ``proctor runs`` names it), counts and metadata."""
    counts = info.counts
    meta = info.metadata
    ci: Mapping[str, object] | None = None
    if meta.ci_provider:
        ci = {"provider": meta.ci_provider, "job_id": meta.ci_job_id, "url": meta.ci_url}
    return {
        "id": info.id,
        "state": state,
        "succeeded": info.succeeded,
        "interrupted": info.interrupted,
        "started_ns": info.started_ns,
        "finished_ns": info.finished_ns,
        "wall_seconds": info.wall_seconds,
        "test_seconds": counts.test_ns / NS_PER_SECOND,
        "counts": {
            "ran": counts.ran,
            "passed": counts.passed,
            "failed": counts.failed,
            "skipped": counts.skipped,
            "xfail": counts.xfail,
            "uxsuccess": counts.uxsuccess,
            "unfinished": counts.incomplete,
            "listed": counts.exists,
            "failures": counts.failures,
        },
        "source": meta.source,
        "partial": meta.partial,
        "git": {"commit": meta.git_commit, "branch": meta.git_branch, "dirty": meta.git_dirty},
        "python": meta.python,
        "platform": meta.platform,
        "host": meta.hostname,
        "command": meta.command,
        "ci": ci,
        "properties": dict(sorted(meta.properties.items())),
    }


def run_document(
    info: RunInfo, state: str, records: Iterable[TestRecord], *, quiet: bool = False
) -> JsonObject:
    """``last --json`` and ``runs show --json``: the run and its results (with
    ``quiet``, only those that did not pass, as ``-q`` shows)."""
    results = [
        record_json(record)
        for record in records
        if record.status is not Status.EXISTS
        and not (quiet and record.status.is_final and not record.status.is_failure)
    ]
    return {"run": run_json(info, state), "results": results}


def test_stats_json(stats: TestStats | None) -> JsonObject | None:
    if stats is None:
        return None
    return {
        "executions": stats.results,
        "passed": stats.passed,
        "failed": stats.failed,
        "skipped": stats.skipped,
        "timed": stats.timed,
        "mean_seconds": stats.mean,
        "min_seconds": _seconds(stats.min_ns),
        "max_seconds": _seconds(stats.max_ns),
        "last_seconds": _seconds(stats.last_ns),
        "expected_seconds": stats.expected,
        "last_run": stats.last_run,
    }


def slow_json(rows: Iterable[SlowTest]) -> list[JsonObject]:
    return [
        {"id": row.test_id, "duration_seconds": row.duration, "history": test_stats_json(row.stats)}
        for row in rows
    ]


def history_json(entries: Iterable[HistoryEntry]) -> list[JsonObject]:
    return [
        {
            "run": entry.run_id,
            "run_started_ns": entry.run_started_ns,
            "status": status_name(entry.status),
            "route": entry.route_code,
            "worker": worker_of(entry.route_code, frozenset()),
            "start_ns": entry.start_ns,
            "duration_seconds": entry.duration,
            "git": {"commit": entry.git_commit, "branch": entry.git_branch},
        }
        for entry in entries
    ]


def stats_json(found: StoreStats) -> JsonObject:
    return {
        "repository": found.location,
        "backend": found.backend,
        "schema_version": found.schema_version,
        "runs": found.runs,
        "interrupted_runs": found.interrupted_runs,
        "first_started_ns": found.first_started_ns,
        "last_started_ns": found.last_started_ns,
        "results": found.results,
        "tests": found.tests,
        "failing": found.failing,
        "attachments": found.attachments,
        "attachment_bytes": found.raw_attachment_bytes,
        "blobs": found.blobs,
        "blob_bytes": found.blob_bytes,
        "size_bytes": found.size_bytes or None,
    }
