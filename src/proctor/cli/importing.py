"""``proctor import PATH``: bring a ``.stestr`` or ``.testrepository`` history in.

Those repositories hold one stream file per run (``0``, ``1``, ...: subunit v1
for stestr, v2 for recent testrepository; told apart by their first bytes), a
``next-stream`` counter, a ``failing`` stream and ``times.dbm`` (test id ->
last duration). Every run becomes a run here, in order, with the times of its
results; each is stored as a complete run, so the failing set ends as stestr's
(the failures of the last run). ``times.dbm`` seeds durations only for tests
no stream timed. Importing the same directory again adds only the runs that
are new since (each imported run remembers where it came from).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from proctor.cli._repo import RepositoryError, open_repository, repository_option

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
    from it are skipped, so importing again brings in only new runs.
    """
    from proctor.events.collector import collect_records
    from proctor.events.source import detect_format, make_decoder
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
        done = {
            info.metadata.properties.get("import.run")
            for info in store.runs()
            if info.metadata.properties.get("import.source") == source
        }
        for number, file in run_files(path):
            if str(number) in done:
                skipped += 1
                continue
            data = file.read_bytes()
            decoder = make_decoder(detect_format(data[:4096]))
            try:
                events = decoder.feed(data) + decoder.close()
            except ValueError as error:
                raise RepositoryError(
                    f"{file}: cannot be read as a subunit stream ({error}); "
                    f"{imported} runs were imported before it"
                ) from None
            records = collect_records(events)
            starts = [r.start for r in records if r.start is not None]
            properties = {"import.source": source, "import.run": str(number), "import.tool": tool}
            if str(number) in notes:
                properties["stestr.metadata"] = notes[str(number)]
            metadata = RunMetadata(
                started_ns=min(starts) if starts else int(os.stat(file).st_mtime * 1e9),
                source="import",
                partial=False,
                properties=properties,
            )
            store.write_run(records, metadata)
            imported += 1
            results += len(records)
        seeded = store.seed_durations(read_times(path))
    lines = [f"Imported {imported} runs ({results} results) from {path}"]
    if skipped:
        lines.append(f"; skipped {skipped} already imported")
    if seeded:
        lines.append(f"; seeded durations of {seeded} tests from times.dbm")
    sys.stdout.write("".join(lines) + ".\n")
    return 0
