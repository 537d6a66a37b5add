"""``proctor stats``: what the repository holds, from maintained counters."""

from __future__ import annotations

import sys

import click

from proctor.cli._show import json_option
from proctor.cli.formats import format_size as _size
from proctor.cli.formats import format_time
from proctor.cli.repository import open_repository, repository_option
from proctor.exitcode import ExitCode

__all__ = ["stats"]


@click.command()
@json_option
@repository_option
def stats(as_json: bool, repository: str | None) -> int:
    """Show how many runs, results and tests the repository holds, and its size."""
    with open_repository(repository) as store:
        found = store.stats()
    if as_json:
        from proctor.cli.json_shapes import dump, stats_json

        dump(stats_json(found), sys.stdout)
        return ExitCode.OK
    saved = found.raw_attachment_bytes - found.blob_bytes
    per_result = found.size_bytes / found.results if found.results and found.size_bytes else None
    rows = [
        ("Repository", f"{found.location} ({found.backend}, schema {found.schema_version})"),
        ("Runs", f"{found.runs} ({found.interrupted_runs} interrupted)"),
        ("First run", format_time(found.first_started_ns)),
        ("Latest run", format_time(found.last_started_ns)),
        ("Results", str(found.results)),
        ("Tests", str(found.tests)),
        ("Failing now", str(found.failing)),
        (
            "Attachments",
            f"{found.attachments} ({_size(found.raw_attachment_bytes)} received, "
            f"{found.blobs} distinct in {_size(found.blob_bytes)}; {_size(max(saved, 0))} saved)",
        ),
        (
            "Size",
            (_size(found.size_bytes) if found.size_bytes else "unknown")
            + (f" ({per_result:.0f} bytes per result)" if per_result else ""),
        ),
    ]
    width = max(len(name) for name, _ in rows)
    sys.stdout.write("".join(f"{name + ':':<{width + 1}} {value}\n" for name, value in rows))
    return ExitCode.OK
