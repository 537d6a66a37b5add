"""One ``proctor watch`` cycle: a fresh ``proctor run`` of the planned tests.

Each cycle has fresh worker processes: forked from the session's warm parents
(:func:`forking_backends`, :mod:`proctor.runner.watch.zygotes`), which hold
what is not the project's and, for a pytest suite, a warm pytest session whose
project state is checked against its files before every fork and copied to
each child, or spawned as ``proctor run`` does (``--fresh-workers``). Either
way every test module is imported anew and nothing can be stale or leak from
one cycle to the next: the results are those
of ``proctor run FILTERS`` with the cycle's filters, by construction (the
workers collect only the files those filters can match: ``--only``). The
previously failing tests go first (``--ff``). The views, stdin routing
(debuggers), ``--timeout`` and crash handling are ``proctor run``'s own.

Each cycle that runs tests is stored as one run (``source`` ``watch``, partial
unless it ran everything), with the properties ``watch.session`` (the
session's start, ns) and ``watch.cycle``, so ``proctor failing``, ``history``
and triage see them, and ``proctor runs`` / ``gc`` can tell and prune them.
A cycle that selects nothing stores nothing.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING

from proctor.cli.run_args import RunArgs
from proctor.cli.run_setup import BackendFactory, choose_view, run_options, worker_spec
from proctor.runner.session import RunSession, SessionOptions
from proctor.runner.watch.loop import CycleResult

if TYPE_CHECKING:
    from proctor.config import Config
    from proctor.runner.backend import WorkerBackend
    from proctor.runner.history import History
    from proctor.runner.subprocess_backend import Spawner
    from proctor.runner.watch.plan import CyclePlan
    from proctor.store.contract import RunWriter, Store
    from proctor.store.model import RunMetadata
    from proctor.wire.record import TestRecord

__all__ = ["CycleRunner", "forking_backends"]


def forking_backends(spawner: Spawner) -> BackendFactory:
    """Each cycle's workers from ``spawner`` (a session's
    :class:`~proctor.runner.watch.zygotes.ZygotePool`)."""

    def make(args: RunArgs, config: Config) -> WorkerBackend:
        from proctor.runner.subprocess_backend import SubprocessBackend

        return SubprocessBackend(worker_spec(args, config, early=False), spawner)

    return make


class CycleRunner:
    """Runs cycles for one watch session (a callable for :class:`WatchLoop`);
    each cycle is a :class:`~proctor.runner.session.RunSession` on workers from
    ``backends``."""

    def __init__(
        self, args: RunArgs, config: Config, store: Store | None, backends: BackendFactory
    ) -> None:
        self.args = args
        self.config = config
        self.store = store
        self.backends = backends
        self.session = time.time_ns()
        self.cycle = 0
        self._metadata: RunMetadata | None = None
        if store is not None:
            from proctor.store.metadata import capture_metadata

            self._metadata = capture_metadata(root=config.root, source="watch")

    def history(self) -> History:
        from proctor.runner.history import EMPTY_HISTORY, StoreHistory

        return StoreHistory(self.store) if self.store is not None else EMPTY_HISTORY

    def __call__(self, plan: CyclePlan) -> CycleResult:
        self.cycle += 1
        args = dataclasses.replace(
            self.args,
            filters=plan.filters,
            failed_first=True,
            only_files=tuple(str(path) for path in plan.only),
        )
        history = self.history()
        # Failing first: the session's failing set (the plan's), which knows this
        # session's cycles even when they are not stored.
        options = dataclasses.replace(run_options(args, self.config, history), failing=plan.failing)
        if not plan.everything and len(plan.files) + len(plan.failing) <= 2 and not args.serial:
            options = dataclasses.replace(options, concurrency=1)
        outcomes: dict[str, str] = {}

        def collect(record: TestRecord) -> None:
            status = record.status.wire_name if record.finished else None
            outcomes[record.test_id] = status or "unfinished"

        writer: RunWriter | None = None
        store = self.store
        base = self._metadata

        def keep(record: TestRecord) -> None:
            # The run begins with its first result: a cycle that ran nothing stores nothing.
            nonlocal writer
            if writer is None:
                assert store is not None
                assert base is not None
                writer = store.begin_run(
                    base._replace(
                        started_ns=None,
                        partial=not plan.everything or bool(args.selection.narrows),
                        properties={
                            **base.properties,
                            "watch.session": str(self.session),
                            "watch.cycle": str(self.cycle),
                        },
                    )
                )
            writer.add(record)

        sinks = [collect] if store is None or base is None else [collect, keep]
        config = self.config
        session = RunSession(
            SessionOptions(run=options),
            lambda: self.backends(args, config),
            history=history,
            view=lambda out: choose_view(args, out),
            record_sinks=sinks,
        )
        try:
            result = session.run().result  # closes its workers, also after a Ctrl-C
        except BaseException:
            if writer is not None:
                writer.finish(interrupted=True)
            raise
        incomplete = result.interrupted or result.error is not None or bool(result.not_run)
        if writer is not None:
            writer.finish(interrupted=incomplete or not result.ran)
        summary = result.error or result.outcome_line()
        return CycleResult(
            outcomes=outcomes,
            complete=not incomplete,
            interrupted=result.interrupted,
            summary=summary.splitlines()[0] if summary else "",
        )
