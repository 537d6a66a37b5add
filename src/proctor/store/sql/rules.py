"""The model's rules spelled in SQL, once, for every query and both schemas.

Statuses are stored as their subunit v2 wire numbers (:class:`Status`); the
failing rule and the timing rule are :func:`~proctor.store.model.failing_change`
and :func:`~proctor.store.model.is_timed`. The fragments here are derived from
those, so a query can never disagree with the in-memory reference about which
status fails, passes or counts as a duration.
"""

from __future__ import annotations

from proctor.store.model import failing_change
from proctor.wire.event import Status

__all__ = [
    "EXISTS",
    "FAILED_IN",
    "FINISHED_IN",
    "PASSED",
    "SKIPPED",
    "STATUSES",
    "timed",
]

STATUSES = tuple(Status)
"""Stored number -> status (the wire values are 0..7, in order)."""
assert [int(status) for status in STATUSES] == list(range(len(STATUSES)))

EXISTS = int(Status.EXISTS)
"""A listing, not an execution: left out of statistics and histories."""
PASSED = int(Status.SUCCESS)
SKIPPED = int(Status.SKIP)
FAILED_IN = ", ".join(str(int(status)) for status in Status if failing_change(status))
"""``status IN (...)`` for results that put their test in the failing set."""
FINISHED_IN = ", ".join(
    str(int(status)) for status in Status if status.is_final and status is not Status.EXISTS
)
"""``status IN (...)`` for finished executions (what a duration may come from)."""


def timed(alias: str = "") -> str:
    """The condition "this result's duration counts" (``model.is_timed``) on
    the ``results`` columns, qualified with ``alias`` (``"r."``) if given."""
    return f"{alias}elapsed_ns IS NOT NULL AND {alias}status IN ({FINISHED_IN})"
