"""``proctor run``'s command line, parsed: :class:`RunArgs`, and the error for
options or configuration that cannot work together (:class:`UsageProblem`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click

from proctor.exitcode import ExitCode
from proctor.runner.pytest_options import PytestOptions
from proctor.runner.selection import Selection

if TYPE_CHECKING:
    from proctor.runner.shard import Shard

__all__ = ["RunArgs", "UsageProblem"]


class UsageProblem(click.ClickException):
    """Options or configuration that cannot work together; exit status 2."""

    exit_code = ExitCode.ERROR


@dataclass(frozen=True, slots=True)
class RunArgs:
    """The command line of ``proctor run``, parsed (each option: :func:`proctor.cli.run.run`)."""

    filters: tuple[str, ...] = ()
    concurrency: int | None = None
    serial: bool = False
    timeout: float | None = None
    random_order: bool = False
    seed: int | None = None
    failing: bool = False
    until_failure: bool = False
    exclude_regex: tuple[str, ...] = ()
    load_list: Path | None = None
    include_list: Path | None = None
    exclude_list: Path | None = None
    isolate: str | None = None
    list_tests: bool = False
    subunit: bool = False
    junit: Path | None = None
    group_regex: str | None = None
    parallel_class: bool = False
    test_path: str | None = None
    top_dir: str | None = None
    framework: str | None = None
    max_worker_restarts: int | None = None
    capture: bool = True
    store: bool = True
    repository: str | None = None
    color: bool | None = None
    # stestr's run options (see proctor.cli.run_stestr)
    max_runs: int | None = None
    combine: bool = False
    abbreviate: bool = False
    isolated: bool = False
    no_discover: str | None = None
    # pytest's options (see proctor.runner.pytest_options): -k, -m, -v/-q, --pdb, after --
    pytest: PytestOptions = field(default_factory=PytestOptions)
    maxfail: int | None = None  # -x / --maxfail N: stop after N failures across workers
    post_mortem: bool = False  # --pdb: the debugger at each failure (pytest and unittest)
    failed_first: bool = False  # --ff
    pdb_test_id: str | None = None  # --pdb ID: run that one test under the debugger (stestr)
    shard: Shard | None = None  # --shard K/N (proctor.cli.run_shard)
    cluster: str | None = None  # --cluster ADDRESS|FILE (proctor.cli.run_cluster)
    queue: str | None = None  # --queue BUILD (proctor.cli.run_queue)
    rerun_failures: int = 0  # --rerun-failures N (proctor.runner.rerun)
    only_files: tuple[str, ...] = ()  # a watch cycle: the workers collect only these files

    @property
    def selection(self) -> Selection:
        return Selection(
            filters=self.filters,
            exclude_regex=self.exclude_regex,
            include_list=self.include_list,
            exclude_list=self.exclude_list,
            load_list=self.load_list,
            failing=self.failing,
        )
