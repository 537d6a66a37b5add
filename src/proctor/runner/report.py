"""What a run tells its watcher, and what it returns.

The controller reports through a :class:`RunReporter`: the plan once the tests
are chosen, each test record as it completes, notices (a worker died and was
replaced; Ctrl-C), what workers printed outside tests, a tick now and then so a
progress display can move, and debugger sessions (a test waiting for input
takes the terminal until it finishes). The terminal views of ``proctor run``
implement it; the runner never imports them.

:class:`Progress` is the live state a view draws from, and :class:`RunResult`
is the outcome, with the exit code the command returns.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from proctor.events.summary import outcome_line
from proctor.exitcode import ExitCode, signal_exit
from proctor.runner.slot import Slot, SlotState
from proctor.wire.event import Status
from proctor.wire.record import TestRecord

__all__ = [
    "NullReporter",
    "Progress",
    "RunReporter",
    "RunResult",
    "TestSpan",
]


@dataclass(slots=True)
class Progress:
    """The state of a run in progress (updated by the controller, read by views)."""

    total: int = 0
    done: int = 0
    failed: int = 0
    workers: int = 0
    seed: int | None = None
    started_at: float = 0.0
    expected_left: float = 0.0
    """Seconds of expected test time not yet finished (history, or estimates)."""
    running: dict[int, tuple[str | None, float]] = field(default_factory=dict)
    """Busy worker -> (test it runs, if known; since when)."""
    has_history: bool = False
    build_total: int | None = None
    """The tests of the build this run takes a share of (``--queue``); ``total``
    then counts the tests this run has taken so far. None: a run of its own."""

    def refresh(self, queued: float, slots: Iterable[Slot]) -> None:
        """Recompute what depends on the workers (the controller calls this between ticks)."""
        live = [slot for slot in slots if slot.alive]
        self.expected_left = queued + sum(slot.pending_expected for slot in live)
        self.workers = max(1, sum(1 for slot in live if slot.state is SlotState.READY or slot.busy))
        self.running = {slot.worker: (slot.current, slot.since) for slot in live if slot.busy}

    def eta(self) -> float | None:
        """Expected seconds until the run ends, when history gives grounds for a guess."""
        if not self.has_history or self.workers <= 0:
            return None
        return max(self.expected_left / self.workers, 0.0)


@dataclass(slots=True)
class RunResult:
    """The outcome of one run."""

    counts: dict[Status, int] = field(default_factory=lambda: dict.fromkeys(Status, 0))
    failures: list[TestRecord] = field(default_factory=list)
    unfinished: list[TestRecord] = field(default_factory=list)
    discovered: list[str] = field(default_factory=list)
    selected: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)
    unreported: list[str] = field(default_factory=list)
    interrupted: bool = False
    signal: int | None = None
    """The signal that stopped the run when it was not Ctrl-C (SIGTERM, SIGHUP)."""
    error: str | None = None
    seed: int | None = None
    wall_time: float = 0.0
    worker_restarts: int = 0
    retried: list[TestRecord] = field(default_factory=list)
    """Failed attempts that were run again (``--rerun-failures``): not in ``counts``."""
    flaky: list[str] = field(default_factory=list)
    """Tests that failed, then passed on a rerun (counted in ``counts`` as passed)."""

    @property
    def ran(self) -> int:
        """Tests that reached a final status."""
        return sum(n for status, n in self.counts.items() if status > Status.EXISTS)

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return signal_exit(self.signal) if self.signal is not None else ExitCode.INTERRUPTED
        if self.error is not None:
            return ExitCode.RUN_ERROR
        if self.failures or self.unfinished:
            return ExitCode.FAILED
        if self.ran == 0:
            return ExitCode.NO_TESTS
        return ExitCode.OK

    def outcome_line(self) -> str:
        """``N passed, N failed, N skipped`` (+ xfailed / unexpectedly passed / not run)."""
        line = outcome_line(self.counts, len(self.unfinished), len(self.not_run))
        return f"{line}, {len(self.flaky)} flaky" if self.flaky else line


class TestSpan:
    """From the first test's start to the last test's end, as the records say.

    This is the run's wall time as the store keeps it (``RunInfo.wall_seconds``:
    the earliest and latest timestamp of its results), so a view that adds up
    the records it is shown prints the figure ``last`` and ``runs`` will print
    for the same run. :attr:`RunResult.wall_time` is the controller's own
    clock, starting before the first worker is up.
    """

    __slots__ = ("first", "last")

    def __init__(self) -> None:
        self.first: int | None = None
        self.last: int | None = None

    def add(self, record: TestRecord) -> None:
        for moment in (record.start, record.stop):
            if moment is not None:
                if self.first is None or moment < self.first:
                    self.first = moment
                if self.last is None or moment > self.last:
                    self.last = moment

    def seconds(self) -> float | None:
        """The span in seconds; None when no record had a timestamp."""
        if self.first is None or self.last is None:
            return None
        return (self.last - self.first) / 1e9


TestSpan.__test__ = False  # type: ignore[attr-defined]  # not a pytest test class


class RunReporter(Protocol):
    """Watches a run (see the module docstring). Every method is called from the
    controller's thread."""

    tick_interval: float | None
    """How often :meth:`tick` should be called while nothing else happens (None: never)."""

    def planned(self, progress: Progress) -> None:
        """The tests are chosen; ``progress`` stays live for the rest of the run."""

    def record(self, record: TestRecord) -> None:
        """A test finished (or, at the end, was left unfinished)."""

    def output(self, worker: int | None, data: bytes) -> None:
        """A worker printed this outside any test."""

    def notice(self, text: str) -> None:
        """Something the user should know (a worker died and was replaced...)."""

    def tick(self) -> None:
        """Nothing else happened for a while; redraw if that helps."""

    def debug_start(self, test_id: str, worker: int, so_far: bytes) -> None:
        """A test waits for input; it owns the terminal until :meth:`debug_end`."""

    def debug_output(self, data: bytes) -> None:
        """What the test under the debugger printed."""

    def debug_end(self, test_id: str) -> None:
        """The debugged test finished."""

    def finished(self, result: RunResult) -> None:
        """The run is over."""


class NullReporter:
    """Reports nothing."""

    tick_interval: float | None = None

    def planned(self, progress: Progress) -> None:
        pass

    def record(self, record: TestRecord) -> None:
        pass

    def output(self, worker: int | None, data: bytes) -> None:
        pass

    def notice(self, text: str) -> None:
        pass

    def tick(self) -> None:
        pass

    def debug_start(self, test_id: str, worker: int, so_far: bytes) -> None:
        pass

    def debug_output(self, data: bytes) -> None:
        pass

    def debug_end(self, test_id: str) -> None:
        pass

    def finished(self, result: RunResult) -> None:
        pass
