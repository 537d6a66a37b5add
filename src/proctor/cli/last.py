"""``proctor last`` and ``proctor failing``: the latest run, and what is failing now.

Both read records from the repository's tables; neither re-reads a stream.
Exit status, as stestr's: 0 when the run passed (``last``) or nothing is
failing (``failing``), 1 otherwise, 2 when the repository cannot answer.
``last --subunit`` exits 0 whenever it wrote the stream, as stestr's does (the
stream carries the outcome; a status of 1 would break ``set -o pipefail``
pipelines such as ``proctor last --subunit | subunit2junitxml``).
"""

from __future__ import annotations

import sys

import click

from proctor.cli._show import (
    json_option,
    run_outcome,
    run_state,
    show_records,
    show_totals,
    wants_color,
)
from proctor.cli.output import write_output
from proctor.cli.printable import ids_for
from proctor.cli.repository import (
    any_writer_alive,
    open_repository,
    repository_option,
    resolve_build,
    resolve_run,
)
from proctor.exitcode import ExitCode

__all__ = ["failing", "last"]

_color = click.option(
    "--color/--no-color", default=None, help="Colour the output (default: when it is a terminal)."
)


@click.command()
@click.option("--run", "run_spec", metavar="RUN", help="Show this run instead (id, or -N).")
@click.option(
    "--build",
    metavar="BUILD",
    help="Show the CI build BUILD as one run: every job's run of it (proctor run --queue).",
)
@click.option("--subunit", is_flag=True, help="Write the run to stdout as a subunit v2 stream.")
@click.option(
    "--junit",
    "junit_path",
    metavar="PATH",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Also write the run as JUnit XML to PATH (- for stdout, instead of the listing).",
)
@click.option("-q", "--quiet", is_flag=True, help="Show only tests that did not pass.")
@json_option
@_color
@repository_option
def last(
    run_spec: str | None,
    build: str | None,
    subunit: bool,
    junit_path: str | None,
    quiet: bool,
    as_json: bool,
    color: bool | None,
    repository: str | None,
) -> int:
    """Show the results of the latest run (exit status 1 if it failed; with
    --subunit, 0 once the stream is written, as stestr's).

    One line per test with its duration, failures with their tracebacks, then
    totals and the balance of the workers, like stestr's `last`.
    """
    if as_json and (subunit or junit_path == "-"):
        raise click.UsageError("--json writes to stdout; so do --subunit and --junit -")
    if build is not None and run_spec is not None:
        raise click.UsageError("--run and --build each name what to show: give one")
    with open_repository(repository) as store:
        if build is not None:
            info, records, parts = resolve_build(store, build)
        else:
            info = resolve_run(store, run_spec)
            records = store.records(info.id)
            parts = [info]
        alive = store.writers_alive(parts) if as_json and not info.finished else {}
        if build is not None and alive:
            alive = {info.id: any_writer_alive(alive, parts)}
        notes = []
        if not (as_json or subunit or junit_path == "-") and info.counts.failures:
            from proctor.cli._explain import project_explainer
            from proctor.triage.notes import notes_for_run

            explainer = project_explainer(store, strict=False)
            notes = notes_for_run(
                store, info, explain=None if explainer is None else explainer.pair
            )
    if as_json:
        from proctor.cli.json_shapes import dump, run_document

        dump(run_document(info, run_state(info, alive), records, quiet=quiet), sys.stdout)
    if subunit:
        from proctor.events.emit import records_to_v2

        sys.stdout.buffer.write(records_to_v2(records))
        sys.stdout.buffer.flush()
    if junit_path is not None:
        from proctor.wire.junit import encode_records

        document = encode_records(records, name=f"proctor run {info.id}")
        if junit_path == "-":
            sys.stdout.buffer.write(document)
            sys.stdout.buffer.flush()
        else:
            write_output(junit_path, document)
    if not subunit and junit_path != "-" and not as_json:
        out = sys.stdout
        workers = show_records(out, records, color=wants_color(color), failures_only=quiet)
        show_totals(out, info, workers)
        if notes:
            from proctor.cli.triage_view import show_notes

            show_notes(out, notes)
        out.write("\n" + run_outcome(info) + "\n")
        out.flush()
    elif subunit:
        return ExitCode.OK  # the stream says how the run went (stestr's rule)
    return ExitCode.OK if info.succeeded else ExitCode.FAILED


@click.command()
@click.option("--list", "list_ids", is_flag=True, help="Print only the ids, one per line.")
@click.option("--subunit", is_flag=True, help="Write the failures as a subunit v2 stream.")
@json_option
@_color
@repository_option
def failing(
    list_ids: bool, subunit: bool, as_json: bool, color: bool | None, repository: str | None
) -> int:
    """Show the tests failing now, with their failures (exit status 1 if any).

    A test is failing from the run where it last failed until a later run
    passes or skips it; running a subset of the suite updates only the tests
    it ran. `proctor run --failing` runs exactly these tests.
    """
    if as_json and (subunit or list_ids):
        raise click.UsageError("--json cannot be combined with --subunit or --list")
    with open_repository(repository) as store:
        if list_ids:
            ids = store.failing_ids()
            shown = ids_for(sys.stdout)
            sys.stdout.write("".join(f"{shown(test_id)}\n" for test_id in ids))
            return ExitCode.FAILED if ids else ExitCode.OK
        records = store.failing_records()
        if not records and store.latest_run() is None:
            resolve_run(store, None)  # explains that nothing has been stored yet
    if subunit:
        from proctor.events.emit import records_to_v2

        sys.stdout.buffer.write(records_to_v2(records))
        sys.stdout.buffer.flush()
        return ExitCode.FAILED if records else ExitCode.OK
    if as_json:
        from proctor.cli.json_shapes import dump, record_json

        dump({"count": len(records), "tests": [record_json(r) for r in records]}, sys.stdout)
        return ExitCode.FAILED if records else ExitCode.OK
    out = sys.stdout
    show_records(out, records, color=wants_color(color))
    count = len(records)
    out.write(
        f"\n{count} failing test{'s' if count != 1 else ''}\n" if count else "No failing tests.\n"
    )
    return ExitCode.FAILED if records else ExitCode.OK
