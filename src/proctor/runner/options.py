"""The options of one run, as one typed value.

The command line and the project configuration are merged into a
:class:`RunOptions` once, by the CLI; the controller reads nothing else. (The
alternative, options threaded one by one through functions, is what made
stestr's ``run_command`` take 29 parameters.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from proctor.runner.selection import Selection
from proctor.runner.shard import Shard
from proctor.settings import check_regex

__all__ = ["RunOptions"]


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Everything that shapes one run."""

    concurrency: int = 1
    """Workers to run (a run with an order to keep uses one)."""
    plan_workers: int | None = None
    """Workers to plan the order for when more than this run's own take from it
    (the jobs of a build sharing one queue, ``--queue``); None: this run's."""
    timeout: float | None = None
    """Seconds a test may run before it is failed with every thread's stack (None: no limit)."""
    group_regex: str | None = None
    """Tests whose ids match to the same prefix (``re.match``) share a worker, in order."""
    seed: int | None = None
    """Shuffle the order with this seed (``--random``); None keeps the planned order."""
    selection: Selection = field(default_factory=Selection)
    only: tuple[str, ...] | None = None
    """Run exactly these ids, without listing (isolation probes, replays)."""
    failing: tuple[str, ...] | None = None
    """The failing set for ``--failing``, read once by the caller (so that
    ``--until-failure`` runs the same tests every time); None: ask the history."""
    ordered: bool = False
    """Keep the order given (``only``, or the load list) on one worker."""
    list_only: bool = False
    """List and select, but run nothing."""
    max_worker_restarts: int | None = None
    """Deaths not caused by a test that are tolerated (None: 4 per worker, like xdist)."""
    maxfail: int | None = None
    """Stop the run after this many failures across all workers (``-x``: 1); the
    tests not started are reported as not run. None: no limit."""
    failed_first: bool = False
    """Run the tests of the failing set first (``--ff``), then the rest."""
    shard: Shard | None = None
    """Run only this part of the selection (``--shard K/N``, :mod:`proctor.runner.shard`)."""
    rerun_failures: int = 0
    """Run a failing test again up to this many times in the same run
    (:mod:`proctor.runner.rerun`); the run's outcome follows the final attempt."""
    lookahead: float = 0.05
    """Send a worker its next batch when its current one has less than this many
    expected seconds left, so fast tests never wait for a round trip."""
    dump_wait: float = 2.0
    """Seconds to wait for a stack dump from a worker whose test timed out."""
    quit_wait: float = 30.0
    """Seconds workers get to tear down and exit after ``quit`` before they are killed."""
    start_wait: float = 300.0
    """Seconds a worker gets to import and collect the suite (``ready``) before it is
    killed (an import that blocks must not hang the run)."""

    def __post_init__(self) -> None:
        # A group_regex that does not compile would otherwise fail in the middle
        # of the run (when the plan is made), leaving it interrupted.
        if self.group_regex is not None:
            check_regex(self.group_regex, "group_regex")

    @property
    def restart_limit(self) -> int:
        if self.max_worker_restarts is not None:
            return self.max_worker_restarts
        return 4 * max(self.concurrency, 1)
