"""``proctor gc``: keep the repository to a size, by number of runs or by age.

Runs are removed one transaction each (a ``gc`` stopped half way leaves whole
runs), per-test statistics and the failing set are corrected as they go, and
attachment contents no remaining result uses are deleted at the end. A run
still being written is never removed (its writer would fail); one whose writer
is gone is interrupted for good, and goes like any other.

The space is given back to the disk: an SQLite repository cuts its free pages
off the file (incremental auto-vacuum, on for every repository created since
it became the default; ``--vacuum`` rewrites the file once, which turns it on
for an older one). PostgreSQL reuses the space (``--vacuum`` runs VACUUM
ANALYZE; giving it back to the system, VACUUM FULL, locks the tables, and is
left to its administrators).
"""

from __future__ import annotations

import sys

import click

from proctor.cli.formats import format_size, format_time, parse_when
from proctor.cli.render import plural
from proctor.cli.repository import open_repository, repository_option
from proctor.exitcode import ExitCode

__all__ = ["gc"]


@click.command()
@click.option("--keep", type=click.IntRange(min=0), help="Keep only the newest N runs.")
@click.option(
    "--older-than", metavar="WHEN", help="Remove runs begun before this (a date, or an age: 30d)."
)
@click.option("--dry-run", is_flag=True, help="Only say what would be removed.")
@click.option(
    "--vacuum",
    is_flag=True,
    help="Also rewrite the database compactly (SQLite: VACUUM, once for a repository "
    "made before gc gave space back by itself; PostgreSQL: VACUUM ANALYZE).",
)
@repository_option
def gc(
    keep: int | None, older_than: str | None, dry_run: bool, vacuum: bool, repository: str | None
) -> int:
    """Remove old runs (by count and/or age) and the attachments only they used,
    and give the space back."""
    if keep is None and older_than is None and not vacuum:
        raise click.UsageError(
            "say what to remove: --keep N and/or --older-than WHEN (e.g. 90d), or --vacuum"
        )
    cutoff = None if older_than is None else parse_when(older_than)
    with open_repository(repository) as store:
        doomed = store.select_for_removal(keep=keep, older_than_ns=cutoff)
        going = {info.id for info in doomed}
        live = [
            info.id
            for info in store.select_for_removal(
                keep=keep, older_than_ns=cutoff, include_running=True
            )
            if info.id not in going
        ]
        note = (
            f"Kept run{'s' if len(live) > 1 else ''} {', '.join(map(str, live))}: "
            "still being written (or written from another host, which cannot be checked).\n"
            if live
            else ""
        )
        if dry_run:
            lines = [f"Would remove {plural(len(doomed), 'run')}.\n"]
            lines += [f"  run {info.id} ({format_time(info.started_ns)})\n" for info in doomed]
            sys.stdout.write("".join(lines) + note)
            return ExitCode.OK
        removed = store.remove_runs(info.id for info in doomed)
        garbage = store.collect_garbage(vacuum=vacuum)
    lines = [
        f"Removed {plural(len(removed), 'run')} and "
        f"{plural(garbage.blobs, 'attachment content')} "
        f"({format_size(garbage.blob_bytes)}).\n"
    ]
    if garbage.freed_bytes:
        lines.append(
            f"Gave {format_size(garbage.freed_bytes)} back to the disk: the repository "
            f"takes {format_size(garbage.size_bytes)}.\n"
        )
    if garbage.reusable_bytes >= _WORTH_A_VACUUM:
        lines.append(
            f"{format_size(garbage.reusable_bytes)} stays free inside the repository's file, "
            "for new results: `proctor gc --vacuum` gives it back (needed once: this "
            "repository was made before gc gave space back by itself).\n"
        )
    sys.stdout.write("".join(lines) + note)
    return ExitCode.OK


_WORTH_A_VACUUM = 1 << 20
"""Free space inside an SQLite file worth a hint about --vacuum."""
