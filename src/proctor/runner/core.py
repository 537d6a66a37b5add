"""The state of one run, shared by the parts of the controller.

:class:`~proctor.runner.controller.Controller` is assembled from three parts
that each handle one concern and share this state: the controller proper
(events, listing, dispatch), :mod:`proctor.runner.stopping` (deadlines,
Ctrl-C and signals, stopping and killing workers) and
:mod:`proctor.runner.exits` (what a worker's exit means for its tests). This
module holds what they share: the run's state, and the few helpers all of them
use (routing an event, passing a worker's output on, starting a worker).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence

from proctor.events.collector import RecordCollector
from proctor.events.sink import NullSink, Sink
from proctor.runner.backend import StdinSource, WorkerBackend
from proctor.runner.debugging import DebugDesk
from proctor.runner.history import EMPTY_HISTORY, History
from proctor.runner.options import RunOptions
from proctor.runner.report import NullReporter, Progress, RunReporter, RunResult
from proctor.runner.rerun import Reruns
from proctor.runner.schedule import WorkQueue
from proctor.runner.slot import Slot
from proctor.wire.event import TEXT_MIME_TYPE as TEXT
from proctor.wire.event import Event
from proctor.wire.record import TestRecord

__all__ = ["EPSILON", "TEXT", "ControllerCore", "Phase"]

EPSILON = 1e-6
"""A deadline this close counts as reached (float sums never quite meet)."""


class Phase(enum.Enum):
    LISTING = "listing"
    RUNNING = "running"
    STOPPING = "stopping"


class ControllerCore:
    """The state of one run and the helpers every part of the controller uses."""

    def __init__(
        self,
        backend: WorkerBackend,
        options: RunOptions,
        *,
        history: History = EMPTY_HISTORY,
        sink: Sink | None = None,
        reporter: RunReporter | None = None,
        stdin: StdinSource | None = None,
        record_sinks: Sequence[Callable[[TestRecord], None]] = (),
        on_idle: Callable[[], None] | None = None,
    ) -> None:
        self._backend = backend
        self._options = options
        self._history = history
        self._sink = sink if sink is not None else NullSink()
        self._reporter = reporter if reporter is not None else NullReporter()
        self._record_sinks = tuple(record_sinks)
        self._on_idle = on_idle
        self._idle_due = False  # records were passed on since on_idle was last called
        self._slots: dict[int, Slot] = {}
        self._next_worker = 0
        self._workers_wanted = 1 if options.ordered else max(options.concurrency, 1)
        self._queue: WorkQueue | None = None
        self._phase = Phase.LISTING
        self._listed: list[str] = []
        self._result = RunResult(seed=options.seed)
        self._progress = Progress(workers=self._workers_wanted, seed=options.seed)
        self._collector = RecordCollector(self._on_record)
        self._interrupts = 0
        self._unproductive_deaths = 0
        self._last_tick = 0.0
        self._desk = DebugDesk(self._reporter, stdin)
        self._reporter = self._desk.reporter  # holds other workers' reports during a session
        self._last_death = ""
        self._last_death_output = b""
        self._observed_time = 0.0  # seconds of test time finished so far
        self._observed_count = 0
        self._replacing: list[Slot] = []  # dead workers not replaced yet, for notices
        self._ready_counts: dict[int, int] = {}  # worker -> tests its `ready` announced
        self._counts_differ = False  # (warned once)
        self._halted: str | None = None  # why the run stopped early (--maxfail, pytest.exit())
        self._digest: tuple[int, str] | None = None  # the lister's worker and ids digest
        self._reruns = Reruns(options.rerun_failures)  # --rerun-failures

    # -- implemented by the controller proper ---------------------------------------------

    def _on_events(self, slot: Slot, events: Sequence[Event]) -> None:
        raise NotImplementedError

    def _on_ready(self, slot: Slot) -> None:
        raise NotImplementedError

    def _on_record(self, record: TestRecord) -> None:
        raise NotImplementedError

    # -- shared helpers -------------------------------------------------------------------

    def _start_worker(self) -> Slot:
        worker = self._next_worker
        self._next_worker += 1
        slot = Slot(self._backend.start(worker), self._backend.now())
        self._slots[worker] = slot
        return slot

    def _send(self, event: Event) -> None:
        self._collector.send(event)
        self._sink.send(event)

    def _flush_output(self, slot: Slot, end: int | None = None, more: bytes = b"") -> None:
        """Pass on what the worker wrote (outside its tests' capture) that was not
        passed on yet, up to offset ``end``, then ``more`` (just arrived, not kept
        yet): to the sink as ``stderr`` on its route, and to the reporter."""
        stop = len(slot.output) if end is None else end
        data = more
        if stop > slot.shown:
            data = bytes(slot.output[slot.shown : stop]) + more
            slot.shown = stop
        if not data:
            return
        self._sink.send(
            Event(
                file_name="stderr",
                file_bytes=data,
                mime_type=TEXT,
                route_code=slot.route,
                timestamp=self._backend.time_ns(),
            )
        )
        self._reporter.output(slot.worker, data)
