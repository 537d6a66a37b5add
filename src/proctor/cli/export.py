"""``proctor export RUN``: a stored run as a stream other tools read.

Subunit v2 by default: python-subunit reads it as the same tests, outcomes,
times and attachments that were stored (tested with python-subunit's own
decoder). The stream is made from the stored records, not kept as a copy.
"""

from __future__ import annotations

import sys

import click

from proctor.cli.output import write_output
from proctor.cli.repository import open_repository, repository_option, resolve_run
from proctor.exitcode import ExitCode

__all__ = ["export"]


@click.command(context_settings={"ignore_unknown_options": True})  # RUN may be -2
@click.argument("run_spec", metavar="RUN", default="last")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["v2", "v1", "junit"]),
    default="v2",
    show_default=True,
    help="Stream format to write.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True),
    default="-",
    help="File to write (default: stdout).",
)
@repository_option
def export(run_spec: str, output_format: str, output: str, repository: str | None) -> int:
    """Write run RUN (id, last or -N) as a subunit v2, v1 or JUnit XML stream."""
    with open_repository(repository) as store:
        info = resolve_run(store, run_spec)
        records = store.records(info.id)
    if output_format == "v2":
        from proctor.events.emit import records_to_v2

        data = records_to_v2(records)
    elif output_format == "v1":
        from proctor.wire.v1 import encode_records as v1_records

        data = v1_records(records)
    else:
        from proctor.wire.junit import encode_records as junit_records

        data = junit_records(records, name=f"proctor run {info.id}")
    if output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        write_output(output, data)
    return ExitCode.OK
