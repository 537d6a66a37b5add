"""Helpers for the tests of the controller's parts, each driven alone on the fake backend."""

from __future__ import annotations

from dataclasses import dataclass, field

from proctor.events.collector import RecordCollector
from proctor.events.sink import ListSink
from proctor.runner.history import EMPTY_HISTORY
from proctor.runner.options import RunOptions
from proctor.runner.outlet import Outlet
from proctor.runner.planning import plan_run
from proctor.runner.protocol import Control, control_event, parse_control
from proctor.runner.run_state import Phase, RunState
from proctor.runner.schedule import WorkQueue
from proctor.runner.slot import Slot, SlotState
from proctor.runner.worker_pool import WorkerPool
from proctor.testing import FakeBackend, FakeTest, FakeWorker
from proctor.wire.record import TestRecord
from tests.runner.controller_support import RecordingReporter


@dataclass
class Parts:
    """A pool on fake workers, the run state it shares, and where output goes."""

    backend: FakeBackend
    options: RunOptions
    state: RunState
    reporter: RecordingReporter
    pool: WorkerPool
    sink: ListSink
    records: list[TestRecord] = field(default_factory=list)
    outlet: Outlet = field(init=False)

    def __post_init__(self) -> None:
        collector = RecordCollector(self.records.append)
        self.outlet = Outlet(self.sink, collector, self.reporter, self.backend.time_ns)

    def worker(self, slot: Slot) -> FakeWorker:
        return self.backend.workers[slot.worker]

    def ready_slot(self) -> Slot:
        """A started worker the controller has seen report ``ready``."""
        slot = self.pool.start()
        slot.state = SlotState.READY
        slot.ever_ready = True
        return slot

    def running(self, *test_ids: str) -> None:
        """The run is in its running phase with ``test_ids`` queued."""
        self.state.queue = queue_of(*test_ids)
        self.state.phase = Phase.RUNNING

    def record(self, test_id: str) -> TestRecord:
        [record] = [r for r in self.records if r.test_id == test_id]
        return record


def parts(options: RunOptions | None = None, *, wanted: int = 2) -> Parts:
    options = options if options is not None else RunOptions(concurrency=wanted)
    backend = FakeBackend([])
    state = RunState.new(options.seed, wanted)
    reporter = RecordingReporter()
    pool = WorkerPool(backend, options, state, reporter, wanted=wanted)
    return Parts(backend, options, state, reporter, pool, ListSink())


def queue_of(*test_ids: str) -> WorkQueue:
    return WorkQueue(plan_run(list(test_ids), RunOptions(), EMPTY_HISTORY, 1).plan)


def control(kind: str, **fields: object) -> Control:
    parsed = parse_control(control_event(kind, **fields))
    assert parsed is not None
    return parsed


def tests(*test_ids: str) -> list[FakeTest]:
    return [FakeTest(test_id) for test_id in test_ids]
