"""Failure signatures in the store: the types the contract speaks in.

Every failing result (``fail``, ``uxsuccess``, a test that never finished)
gets a signature when it is stored, if the store has a :data:`Signer` (the
command line gives every store it opens the one from :mod:`proctor.triage`;
the store cannot compute one itself: triage sits above it). A signature is
interned once per (algorithm, digest) in ``signatures`` with its kind, key and
cluster id; ``failures`` maps each signed result to it, with its test and its
run's start time, indexed by (signature, run start) for a cluster's history.
A failing result has at most one signature per algorithm; a new algorithm's
are added beside the old ones (``proctor triage recluster``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, Protocol

from proctor.wire.event import Status
from proctor.wire.record import TestRecord

__all__ = ["SIGNED_STATUSES", "FailureRow", "Sighting", "SignatureLike", "Signer"]


class SignatureLike(Protocol):
    """What the store keeps of a signature (``proctor.triage.Signature`` is one)."""

    @property
    def algorithm(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def key(self) -> str: ...

    @property
    def digest(self) -> str: ...


Signer = Callable[[TestRecord], "SignatureLike | None"]
"""Signs a failing record (None: it is not a failure, or cannot be signed)."""

SIGNED_STATUSES = frozenset({Status.FAIL, Status.UXSUCCESS, Status.INPROGRESS, Status.NONE})
"""The statuses of results that get a signature (what puts a test in the failing set)."""


class FailureRow(NamedTuple):
    """One signed failing result."""

    run: int
    seq: int
    """The result's position in its run (0-based, the order it was stored in)."""
    test_id: str
    status: Status
    run_ns: int
    """When its run started (what windows filter on)."""
    algorithm: str
    digest: str
    kind: str
    key: str
    cluster: str
    """The cluster id: the digest, or the id of the cluster it continues."""


class Sighting(NamedTuple):
    """When a signature's failures were seen, over the whole history."""

    first_ns: int
    """The start of the first run it failed in."""
    last_before_ns: int | None
    """The start of the last run it failed in before the asked moment (None: none)."""
    runs: int = 0
    """How many runs it failed in, counted up to the cap asked for (0: not counted)."""
