"""What the controller knows about one worker process.

A :class:`Slot` tracks the work a worker holds (the batches it was sent and the
tests of them not yet finished, in order), which test it is running and since
when (for ``--timeout``), why the controller is stopping or killing it, and
the tail of what the process wrote to its own stdout/stderr (for crash
reports). It holds no I/O: the controller reads and writes through the
worker's handle.

A slot is *condemned* once the controller has decided to kill it after a
stack dump (a test over ``--timeout``, a worker stuck starting or quitting):
``condemned`` and ``kill_at`` are set, and the results it sends from then on are *held* rather
than reported, until the controller knows whether the kill happened (see
``Controller._on_results``).
"""

from __future__ import annotations

import enum
from collections import deque

from proctor.runner.backend import WorkerHandle
from proctor.wire.event import Event
from proctor.wire.v2 import Decoder

__all__ = ["DUMP_QUIET", "OUTPUT_KEEP", "Slot", "SlotState", "StopReason"]

OUTPUT_KEEP = 256 * 1024
"""Bytes of a worker's own output kept for crash reports."""
DUMP_QUIET = 0.1
"""Once a stack dump has started to arrive, this long without output means it is complete."""


class SlotState(enum.Enum):
    STARTING = "starting"  # started, not yet ready
    READY = "ready"  # serving
    STOPPING = "stopping"  # sent Quit or being killed; its exit is expected
    DEAD = "dead"


class StopReason(enum.Enum):
    """Why the controller ended a worker (absent: it ended on its own, a crash)."""

    QUIT = "quit"  # no more work
    TIMEOUT = "timeout"  # its test ran over --timeout
    INTERRUPT = "interrupt"  # Ctrl-C
    STUCK_STARTING = "stuck starting"  # not ready within start_wait
    STUCK_QUITTING = "stuck quitting"  # still alive quit_wait after quit


class Slot:
    """One worker (see the module docstring)."""

    def __init__(self, handle: WorkerHandle, now: float) -> None:
        self.handle = handle
        self.worker = handle.worker
        self.pid = handle.pid
        self.route = str(handle.worker)
        self.tag = f"worker-{handle.worker}"
        self.decoder = Decoder()
        self.state = SlotState.STARTING
        self.stop_reason: StopReason | None = None
        self.killed = False  # the controller killed it (its death is no news)
        self.listing = False
        self.batches: deque[list[str]] = deque()
        self.pending: dict[str, float] = {}  # sent, not finished -> expected seconds
        self.pending_expected = 0.0
        self.current: str | None = None  # test the worker said it started
        self.current_route: str | None = None  # its route code, as routed
        self.since = now  # when the current test (or the wait for one) began
        self.started_at = now  # when the process was started
        self.quit_at: float | None = None  # when it was sent Quit
        self.quit_mark = 0  # output offset when it was sent Quit
        self.ever_ready = False
        self.live = False  # its output passes through as it arrives (--no-capture)
        self.waiting_input = False  # a stdin request is outstanding: its clock is stopped
        self.at_desk = False  # its test has the terminal, or waits for it
        self.stop_after_current = False  # first Ctrl-C: stop it once its test finishes
        self.discarding = False  # stopped after Ctrl-C: what it sends later is not a result
        self.load_error: str | None = None  # it could not load the suite
        self.exit_expected: int | None = None  # it stops on its own with this status
        self.own_ids: list[str] | None = None  # its listing, when its ids' digest differed
        self.own_ids_done = False  # (that listing is complete)
        self.timed_out: str | None = None  # the test that ran over --timeout
        self.condemned = False  # to be killed after a stack dump
        self.reprieve: tuple[SlotState, StopReason | None] = (SlotState.READY, None)
        """State and stop reason to go back to if the timed-out test finishes before the kill."""
        self.kill_at: float | None = None  # condemned: kill it then (or once its dump is in)
        self.held: list[Event] = []  # results that arrived after its test timed out
        self.dump_mark: int | None = None  # output offset when stacks were requested
        self.last_output_at = now
        self.output = bytearray()
        self.output_mark = 0  # output offset when the current test began
        self.shown = 0  # output offset up to which it was passed on
        self.capture: dict[str, str] = {}  # the worker's capture files, by stream name

    @property
    def busy(self) -> bool:
        return bool(self.pending)

    @property
    def alive(self) -> bool:
        return self.state is not SlotState.DEAD

    def add_batch(self, ids: list[str], costs: list[float], now: float) -> None:
        if not self.pending:
            self.begin_test(now)
        self.batches.append(ids)
        for test_id, cost in zip(ids, costs, strict=True):
            self.pending[test_id] = cost
        self.pending_expected += sum(costs)

    def begin_test(self, now: float) -> None:
        self.since = now
        self.output_mark = len(self.output)

    def finish(self, test_id: str, now: float) -> bool:
        """A final status for ``test_id``; True when it was one of this worker's tests."""
        cost = self.pending.pop(test_id, None)
        if cost is None:
            return False
        self.pending_expected -= cost
        if self.current == test_id:
            self.current = None
        self.waiting_input = False
        self.since = now  # (begin_test, written out: once per test)
        self.output_mark = len(self.output)
        return True

    def batch_done(self) -> list[str]:
        """The worker finished its oldest batch; the ids of it it never reported."""
        if not self.batches:
            return []
        batch = self.batches.popleft()
        unreported = [test_id for test_id in batch if test_id in self.pending]
        for test_id in unreported:
            self.pending_expected -= self.pending.pop(test_id)
        return unreported

    def culprit(self) -> str | None:
        """The test the worker was running: the one it announced, else its first pending one."""
        if self.current is not None and self.current in self.pending:
            return self.current
        return next(iter(self.pending), None)

    def take_pending(self) -> list[str]:
        """Forget all work held (the worker is gone); the unfinished ids in order."""
        ids = list(self.pending)
        self.pending.clear()
        self.batches.clear()
        self.pending_expected = 0.0
        self.current = None
        return ids

    def add_output(self, data: bytes, now: float) -> None:
        self.output += data
        self.last_output_at = now
        excess = len(self.output) - OUTPUT_KEEP
        if excess > 0:
            del self.output[:excess]
            self.output_mark = max(0, self.output_mark - excess)
            self.shown = max(0, self.shown - excess)
            self.quit_mark = max(0, self.quit_mark - excess)
            if self.dump_mark is not None:
                self.dump_mark = max(0, self.dump_mark - excess)

    def output_since(self, mark: int, limit: int = 64 * 1024, end: int | None = None) -> bytes:
        """The last ``limit`` bytes of the output between offsets ``mark`` and ``end``."""
        stop = len(self.output) if end is None else end
        return bytes(self.output[max(mark, stop - limit) : stop])

    @property
    def dump(self) -> bytes:
        """What the worker wrote since its stacks were asked for."""
        return bytes(self.output[self.dump_mark :]) if self.dump_mark is not None else b""

    def kill_time(self) -> float:
        """When to kill a worker that was asked for a stack dump: once the dump
        has stopped arriving, or at ``kill_at`` if it never comes."""
        assert self.kill_at is not None
        if self.dump_mark is not None and len(self.output) > self.dump_mark:
            return min(self.kill_at, self.last_output_at + DUMP_QUIET)
        return self.kill_at
