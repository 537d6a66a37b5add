"""The state of one run that the parts of the controller share.

:class:`~proctor.runner.controller.Controller` is composed of parts, one
concern each (see its module docstring); what more than one of them reads or
changes is this one value, passed to each part that needs it: the phase of the
run, its result so far, the progress a view draws, the queue of tests not
handed out yet, and whether the run is stopping early (Ctrl-C, ``--maxfail``).
Everything else belongs to exactly one part.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from proctor.runner.report import Progress, RunResult
from proctor.runner.schedule import WorkSource

__all__ = ["Phase", "RunState"]


class Phase(enum.Enum):
    LISTING = "listing"
    RUNNING = "running"
    STOPPING = "stopping"


@dataclass(slots=True)
class RunState:
    """What the parts of one run share (see the module docstring)."""

    result: RunResult
    progress: Progress
    phase: Phase = Phase.LISTING
    queue: WorkSource | None = None
    """The tests not handed out yet (None until the tests are listed and planned)."""
    interrupts: int = 0
    """Ctrl-C presses (and stopping signals) so far."""
    halted: str | None = None
    """Why the run stopped early (``--maxfail``, ``pytest.exit()``), if it did."""

    @classmethod
    def new(cls, seed: int | None, workers: int) -> RunState:
        return cls(RunResult(seed=seed), Progress(workers=workers, seed=seed))

    @property
    def rescheduling(self) -> bool:
        """Whether tests a worker could not finish go back into the queue (else
        they are reported as not run): only while the run is running normally."""
        return (
            self.queue is not None
            and not self.interrupts
            and self.halted is None
            and self.phase is Phase.RUNNING
        )

    @property
    def winding_down(self) -> bool:
        """Whether no new worker may start: stopping, interrupted or halted."""
        return self.phase is Phase.STOPPING or bool(self.interrupts) or self.halted is not None

    def drop_queue(self) -> None:
        """Report every test still queued as not run."""
        if self.queue is not None:
            self.result.not_run.extend(self.queue.clear())
