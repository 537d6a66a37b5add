"""``proctor import PATH``: bring a ``.stestr`` or ``.testrepository`` history in.

Those repositories hold one stream file per run (``0``, ``1``, ...: subunit v1
for stestr, v2 for recent testrepository; told apart by their first bytes), a
``next-stream`` counter, a ``failing`` stream and ``times.dbm`` (test id ->
last duration). Every run becomes a run here, in order, with the times of its
results; each is stored as a complete run, so the failing set ends as stestr's
(the failures of the last run). ``times.dbm`` seeds durations only for tests
no stream timed. Importing the same directory again adds only the runs that
are new since (each imported run remembers where it came from), and replaces
a run that an interrupted import left incomplete. Each run file is decoded and
stored as it is read, through ``proctor load``'s path, so a big one never sits
in memory.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from proctor.cli.render import plural
from proctor.cli.repository import RepositoryError, open_repository, repository_option
from proctor.exitcode import ExitCode

if TYPE_CHECKING:
    from proctor.store.contract import Store

__all__ = ["import_", "read_times", "run_files"]


def run_files(path: Path) -> list[tuple[int, Path]]:
    """The numbered run files of an stestr/testrepository directory, in order."""
    return sorted(
        (int(entry.name), entry)
        for entry in path.iterdir()
        if entry.name.isdigit() and entry.is_file()
    )


def _read_dbm(path: Path, name: str) -> dict[str, str]:
    """A dbm file of the repository as text; empty when absent or unreadable
    (these are caches: not worth failing an import for)."""
    import dbm

    if not any(path.glob(f"{name}*")):
        return {}
    try:
        with dbm.open(str(path / name), "r") as db:
            return {
                _text(key): _text(db[key])
                for key in db.keys()  # noqa: SIM118 - dbm objects are not iterable
            }
    except Exception:
        return {}


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def read_times(path: Path) -> dict[str, float]:
    """``times.dbm``: test id -> seconds of its last run (as stestr records it)."""
    times: dict[str, float] = {}
    for test_id, text in _read_dbm(path, "times.dbm").items():
        try:
            times[test_id] = float(text)
        except ValueError:  # noqa: PERF203 - a damaged entry is skipped, not fatal
            continue
    return times


@click.command(name="import")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@repository_option
def import_(path: Path, repository: str | None) -> int:
    """Import every run of an stestr or testrepository directory, with its timings.

    PATH is the `.stestr` or `.testrepository` directory. Runs already imported
    from it are skipped, so importing again brings in only new runs (and
    completes an import that was interrupted).
    """
    from proctor.cli.load import InputError, RunTarget, pump_file
    from proctor.store.model import RunMetadata

    format_file = path / "format"
    if not format_file.is_file() or format_file.read_text(errors="replace").strip() != "1":
        raise RepositoryError(
            f"{path} is not an stestr or testrepository repository (it has no `format` file "
            "saying 1); give the .stestr or .testrepository directory itself"
        )
    tool = "testrepository" if path.name == ".testrepository" else "stestr"
    source = str(path.resolve())
    notes = _read_dbm(path, "meta.dbm")  # run id -> stestr --metadata string
    imported = skipped = results = 0
    with open_repository(repository, create=True) as store:
        done, redone = _previous_imports(store, source, path)
        for number, file in run_files(path):
            if str(number) in done:
                skipped += 1
                continue
            properties = {"import.source": source, "import.run": str(number), "import.tool": tool}
            if str(number) in notes:
                properties["stestr.metadata"] = notes[str(number)]
            # The run starts at the stream's first timestamp, or when the file was written.
            metadata = RunMetadata(
                started_ns=int(os.stat(file).st_mtime * 1e9),
                source="import",
                partial=False,
                properties=properties,
            )
            target = RunTarget(store, metadata)
            try:
                pump_file(str(file), "auto", target)
                target.begin()  # an empty stream is still a run of the history
                info = target.finish()
            except InputError as error:
                kept = target.interrupt()
                left = "" if kept is None else f" (what it held before is run {kept.id})"
                raise RepositoryError(
                    f"{file} cannot be imported: {error.message}{left}; "
                    f"{plural(imported, 'run')} {'was' if imported == 1 else 'were'} "
                    "imported before it"
                ) from None
            except BaseException:
                target.interrupt()  # importing again replaces this run
                raise
            assert info is not None
            imported += 1
            results += info.counts.total
        seeded = store.seed_durations(read_times(path))
        if imported:
            from proctor.cli.run_triage import sign_older_failures

            sign_older_failures(sys.stderr, store)  # older failures, a chunk at a time
    lines = [f"Imported {plural(imported, 'run')} ({plural(results, 'result')}) from {path}"]
    if skipped:
        lines.append(f"; skipped {skipped} already imported")
    if redone:
        lines.append(f"; replaced {redone} left incomplete by an interrupted import")
    if seeded:
        lines.append(f"; seeded durations of {plural(seeded, 'test')} from times.dbm")
    sys.stdout.write("".join(lines) + ".\n")
    return ExitCode.OK


def _previous_imports(store: Store, source: str, path: Path) -> tuple[set[str], int]:
    """The stestr run numbers already imported from ``source``, and how many
    runs an interrupted import left (removed here, to be imported again).

    Only a finished, uninterrupted run counts: an import stopped part of the
    way (Ctrl-C, a crash, a failed write) leaves its last run unfinished or
    interrupted, and that run is replaced, not skipped. An import of the same
    directory that is still running is left alone, and this one refused.
    """
    mine = [
        info for info in store.runs() if info.metadata.properties.get("import.source") == source
    ]
    incomplete = [info for info in mine if info.interrupted]
    for run_id, alive in store.writers_alive(incomplete).items():
        if alive is not False:
            raise RepositoryError(
                f"{path} is being imported by another process (run {run_id}, unfinished); "
                "wait for it to finish"
            )
    store.remove_runs(info.id for info in incomplete)
    done = {info.metadata.properties.get("import.run", "") for info in mine if not info.interrupted}
    return done, len(incomplete)
