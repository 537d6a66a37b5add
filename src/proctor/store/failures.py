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

What known-bug rules match on is stored too: the exception type the test saw
and its normalised message (a :class:`SignedFailure`), interned once per
distinct pair in ``messages`` and named by each ``failures`` row, so rules are
evaluated over stored columns without reading a traceback again. A failure
signed before messages were stored has none (``FailureRow.type`` is None)
until it is signed again (:meth:`~proctor.store.contract.Store.unsigned_failures`
returns it).
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from proctor.wire.event import Status
from proctor.wire.record import TestRecord

__all__ = [
    "SIGNED_STATUSES",
    "FailureRow",
    "Sighting",
    "SignatureLike",
    "SignedFailure",
    "Signer",
    "signed_parts",
]


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


class SignedFailure(NamedTuple):
    """A failure's signature, with what rules match on besides it."""

    signature: SignatureLike
    type: str
    """The exception type the test saw (the last dotted part), '' when none."""
    message: str
    """That exception's normalised message."""


class Signer(Protocol):
    """Signs failing records for a store (``proctor.triage.RecordSigner`` is one)."""

    def sign(self, record: TestRecord) -> SignedFailure | None:
        """The signature of a failing record, with its type and message (None:
        it is not a failure, or cannot be signed)."""
        ...


def signed_parts(
    signed: SignatureLike | SignedFailure,
) -> tuple[SignatureLike, tuple[str, str] | None]:
    """A signature and its (type, message), None when not given."""
    if isinstance(signed, SignedFailure):
        return signed.signature, (signed.type, signed.message)
    return signed, None


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
    type: str | None = None
    """The exception type the test saw (None: not stored, signed before messages were)."""
    message: str | None = None
    """Its normalised message (None: not stored)."""


class Sighting(NamedTuple):
    """When a signature's failures were seen, over the whole history."""

    first_ns: int
    """The start of the first run it failed in."""
    last_before_ns: int | None
    """The start of the last run it failed in before the asked moment (None: none)."""
    runs: int = 0
    """How many runs it failed in, counted up to the cap asked for (0: not counted)."""
