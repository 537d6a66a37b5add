"""How many workers a run gets: one per core, fewer for a quick suite."""

from __future__ import annotations

import os

from proctor.runner.history import History
from proctor.runner.schedule import workers_worth

__all__ = ["choose_concurrency", "cores"]


def cores() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def choose_concurrency(*, serial: bool, configured: int | None, history: History | None) -> int:
    """Workers for a run: ``serial`` is one; ``configured`` (``--concurrency`` or the
    project's ``concurrency``) is that many (0: one per core); otherwise one per
    core, or fewer when ``history`` says the suite takes less time than starting
    them would cost (:func:`~proctor.runner.schedule.workers_worth`)."""
    if serial:
        return 1
    if configured is not None:
        return configured or cores()
    expected = history.expected_total() if history is not None else None
    return workers_worth(expected, cores())
