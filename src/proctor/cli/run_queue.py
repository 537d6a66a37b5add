"""``proctor run --queue BUILD``: this job's part of a build shared by several CI jobs.

The queue is :mod:`proctor.store.build_queue` (in the PostgreSQL repository
every job reaches) and the run's side of it :mod:`proctor.runner.fleet`. This
module holds the option, its checks, and what the stored run says: each job
stores its own run, marked with the build (``build`` and ``build.job``
properties) and partial, so ``proctor runs show --build BUILD`` and ``proctor
last --build BUILD`` show the build whole.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import click

if TYPE_CHECKING:
    from proctor.cli.run_args import RunArgs
    from proctor.config import Config
    from proctor.runner.fleet import LeaseKeeper
    from proctor.runner.schedule import Plan, WorkSource
    from proctor.store.build_queue import BuildQueue
    from proctor.wire.record import TestRecord

__all__ = ["BuildJob", "check_queue", "join_build", "queue_option", "queue_properties"]

LEASE_SECONDS = 60.0
"""How long a job may go silent (dead, hung, cut off) before its tests go to another."""

_F = TypeVar("_F", bound=Callable[..., object])


def queue_option(function: _F) -> _F:
    """The ``--queue BUILD`` click option (also ``PROCTOR_BUILD``)."""
    option = click.option(
        "--queue",
        "queue",
        metavar="BUILD",
        envvar="PROCTOR_BUILD",
        help="Share the tests with every job started with the same build id (a CI "
        "pipeline's id): they take batches from one queue in the PostgreSQL repository.",
    )
    return option(function)


def check_queue(args: RunArgs) -> None:
    """Options that cannot share a build's queue: exit 2, saying why."""
    if args.queue is None:
        return
    from proctor.cli.run_args import UsageProblem

    for name, given in (
        ("--shard", args.shard is not None),
        ("--until-failure", args.until_failure),
        ("--isolated", args.isolated),
        ("--isolate", args.isolate is not None),
        ("--pdb ID", args.pdb_test_id is not None),
        ("--no-discover", args.no_discover is not None),
        ("--list", args.list_tests),
        ("--combine", args.combine),
        ("--no-store", not args.store),
    ):
        if given:
            raise UsageProblem(
                f"--queue shares one build's tests between jobs; {name} does not fit with it"
            )


def job_name() -> str:
    """This job's name in the queue: ``PROCTOR_JOB``, else host, process and a nonce
    (two jobs must never share a name: the name is what holds a lease)."""
    given = os.environ.get("PROCTOR_JOB", "").strip()
    if given:
        return given[:200]
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def queue_properties(args: RunArgs, job: str | None) -> dict[str, str]:
    """What a job's stored run says of its build (:mod:`proctor.store.builds`)."""
    if args.queue is None or job is None:
        return {}
    from proctor.store.builds import BUILD_PROPERTY, JOB_PROPERTY, PARTIAL_PROPERTY

    narrowed = args.selection.narrows or args.pytest.selects
    return {
        BUILD_PROPERTY: args.queue,
        JOB_PROPERTY: job,
        PARTIAL_PROPERTY: "1" if narrowed else "0",
    }


@dataclass
class BuildJob:
    """This job's connection to the build: the work source's factory for the
    run, the record sink marking tests done, and what to close afterwards.

    ``queue`` is the connection :func:`join_build` opened (claims use it);
    ``identity`` gives the revision and environment every job must share,
    worked out on a thread while the run starts (git and the installed
    distributions take a while)."""

    build: str
    job: str
    url: str
    queue: BuildQueue
    identity: Callable[[], tuple[str, str]]
    lease_s: float = 60.0
    keeper: LeaseKeeper | None = None
    source: WorkSource | None = None

    def planned_workers(self, concurrency: int) -> int:
        """The workers the build's plan is made for: its jobs' workers, which
        nobody knows yet (the first job fills the queue), taken as
        :data:`~proctor.store.build_queue.ASSUMED_JOBS` jobs like this one. A plan
        for this job's workers alone would keep short tests in their classes (for
        one worker, locality costs nothing), and the build's last batches would
        be whatever a class ends with rather than its shortest tests."""
        from proctor.store.build_queue import ASSUMED_JOBS

        return ASSUMED_JOBS * max(concurrency, 1)

    def work(
        self, plan: Plan, report: Callable[[TestRecord], None], wake: Callable[[], None]
    ) -> WorkSource:
        """Join the build (filling its queue when first) and take from it."""
        from proctor.runner.fleet import FleetQueue, LeaseKeeper, planned_order
        from proctor.store.build_queue import BuildQueue

        revision, environment = self.identity()
        first = self.queue.join(planned_order(plan), revision=revision, environment=environment)
        if first:
            click.echo(f"proctor: build {self.build}: queued its tests", err=True)
        self.keeper = keeper = LeaseKeeper(
            BuildQueue(self.url, self.build, self.job, lease_s=self.lease_s), on_notice=wake
        )
        self.source = FleetQueue(self.queue, plan, report, settle=keeper.promptly)
        return self.source

    def finished(self, record: TestRecord) -> None:
        if self.keeper is not None:
            self.keeper.finished(record)

    def close(self) -> None:
        """Stop renewing; a queue that could not be reached meanwhile is a note
        (this job's leases run out and other jobs take what it had not finished)."""
        from proctor.store.errors import StoreError

        keeper, self.keeper = self.keeper, None
        try:
            if keeper is not None:
                keeper.close()
        except StoreError as error:
            click.echo(
                f"proctor: build {self.build}: lost the queue ({error}); other jobs take "
                "the tests this one had not finished when its leases run out",
                err=True,
            )
        finally:
            self.queue.close()


def join_build(args: RunArgs, config: Config) -> BuildJob | None:
    """This job's part of the build ``--queue`` names (None without it). A
    repository that is not PostgreSQL is a usage error (exit 2)."""
    if args.queue is None:
        return None
    from proctor.cli.run_args import UsageProblem
    from proctor.store.build_queue import BuildQueue
    from proctor.store.errors import StoreError

    lease = os.environ.get("PROCTOR_LEASE_SECONDS", "")
    try:
        lease_s = float(lease) if lease else LEASE_SECONDS
    except ValueError:
        lease_s = -1.0
    if not 0.1 <= lease_s <= 3600:
        raise UsageProblem(
            f"PROCTOR_LEASE_SECONDS={lease!r}: give the seconds a job may go silent before "
            "its tests go to another job (0.1 to 3600; default 60)"
        )
    identity = _meanwhile(str(config.root))
    url = config.repository_url
    name = job_name()
    try:
        queue = BuildQueue(url, args.queue, name, lease_s=lease_s)  # the URL, the server, the id
    except StoreError as error:
        raise UsageProblem(str(error)) from None
    return BuildJob(args.queue, name, url, queue, identity, lease_s)


def _meanwhile(root: str) -> Callable[[], tuple[str, str]]:
    """The revision and environment of this job
    (:func:`proctor.runner.job_identity.job_identity`), worked out on a thread
    while the run starts (git takes a while): the returned callable waits for them."""
    import threading

    from proctor.runner.job_identity import job_identity

    found: list[tuple[str, str]] = []
    failed: list[BaseException] = []

    def work() -> None:
        try:
            found.append(job_identity(root))
        except BaseException as error:  # raised again where it is wanted
            failed.append(error)

    thread = threading.Thread(target=work, name="proctor-identity", daemon=True)
    thread.start()

    def result() -> tuple[str, str]:
        thread.join()
        if failed:
            raise failed[0]
        return found[0]

    return result
