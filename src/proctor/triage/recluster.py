"""Re-clustering: sign stored failures under the current algorithm, in chunks.

A new algorithm (a new name: docs/triage.md) leaves every stored failure
without a signature under it. :func:`recluster` signs them chunk by chunk
(1,000 failures, each chunk its own transaction, in stored order), so it can
be stopped at any point and run again: it carries on with what is still
unsigned. Failures stored before signatures existed are signed the same way.

Cluster ids are kept stable where the grouping did not change: a new
signature whose failures are exactly the failures of one old cluster (each
maps to the other and to nothing else) takes that cluster's id.

:func:`catch_up` is the same work in the background: the commands that store
runs call it after storing one, and it signs for at most a fraction of a
second (:data:`BUDGET`), chunk by chunk, from where the last call stopped
(the store's :meth:`~proctor.store.contract.Store.signing_progress`), so a
repository with failures of an older algorithm, or stored before their type
and message were kept, converges over a few runs without anyone running
``proctor triage recluster``. Keeping the old cluster ids needs the whole
grouping at once: ``proctor triage recluster --previous OLD`` does it (and
signs whatever is left first).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

from proctor.store.contract import Store
from proctor.triage.signer import RecordSigner

__all__ = [
    "BUDGET",
    "CATCH_UP_CHUNK",
    "CHUNK",
    "CatchUp",
    "ReclusterReport",
    "catch_up",
    "keep_cluster_ids",
    "recluster",
]

CHUNK = 1000
BUDGET = 0.2
"""Seconds :func:`catch_up` signs for at most (it stops after the chunk that crosses it)."""
CATCH_UP_CHUNK = 200
"""Failures per chunk of :func:`catch_up` (about 30 ms of work each)."""
_END = 2**62
"""A position after every result of a run."""


class ReclusterReport(NamedTuple):
    algorithm: str
    signed: int
    chunks: int
    kept_ids: int


def recluster(
    store: Store,
    signer: RecordSigner | None = None,
    *,
    previous: str | None = None,
    chunk: int = CHUNK,
    progress: Callable[[int], None] | None = None,
) -> ReclusterReport:
    """Sign every stored failure not yet signed under ``signer``'s algorithm;
    then, given the ``previous`` algorithm, keep its cluster ids where the
    grouping is unchanged."""
    signer = signer or RecordSigner()
    algorithm = signer.algorithm
    after = (0, -1)
    signed = chunks = 0
    while True:
        found = _sign_chunk(store, signer, after, chunk)
        if found is None:
            _finished(store, algorithm, after)
            break
        added, after = found
        signed += added
        chunks += 1
        if progress is not None:
            progress(signed)
    kept = keep_cluster_ids(store, previous, algorithm) if previous else 0
    return ReclusterReport(algorithm, signed, chunks, kept)


def keep_cluster_ids(store: Store, previous: str, current: str) -> int:
    """Give each signature of ``current`` whose failures are exactly one cluster
    of ``previous`` that cluster's id; return how many kept an id."""
    run_ids = [info.id for info in store.runs()]
    old = {(row.run, row.seq): row.cluster for row in store.failures(run_ids, algorithm=previous)}
    if not old:
        return 0
    new_of_old: dict[str, set[str]] = {}
    old_of_new: dict[str, set[str | None]] = {}
    current_cluster: dict[str, str] = {}
    for row in store.failures(run_ids, algorithm=current):
        was = old.get((row.run, row.seq))
        old_of_new.setdefault(row.digest, set()).add(was)
        current_cluster[row.digest] = row.cluster
        if was is not None:
            new_of_old.setdefault(was, set()).add(row.digest)
    counts: dict[str, int] = {}
    for cluster in old.values():
        counts[cluster] = counts.get(cluster, 0) + 1
    renamed: dict[str, str] = {}
    for digest, olds in old_of_new.items():
        if len(olds) != 1:
            continue
        (was,) = olds
        if was is None or new_of_old.get(was) != {digest}:
            continue
        if current_cluster[digest] != was:
            renamed[digest] = was
    store.set_clusters(current, renamed)
    return len(renamed)


class CatchUp(NamedTuple):
    algorithm: str
    signed: int
    """Failures signed (or given their type and message) by this call."""
    done: bool
    """Whether every stored failure is signed now."""


def catch_up(
    store: Store,
    signer: RecordSigner | None = None,
    *,
    budget: float = BUDGET,
    chunk: int = CATCH_UP_CHUNK,
    clock: Callable[[], float] = time.monotonic,
) -> CatchUp:
    """Sign stored failures not yet signed under ``signer``'s algorithm (or
    stored without their type and message) for about ``budget`` seconds, from
    where the last call stopped; record how far it came."""
    signer = signer or RecordSigner()
    algorithm = signer.algorithm
    began = clock()
    start = after = store.signing_progress(algorithm)
    signed = 0
    while True:
        found = _sign_chunk(store, signer, after, chunk)
        if found is None:
            _finished(store, algorithm, after, start)
            return CatchUp(algorithm, signed, True)
        added, after = found
        signed += added
        if clock() - began >= budget:
            store.set_signing_progress(algorithm, after)
            return CatchUp(algorithm, signed, False)


def _sign_chunk(
    store: Store, signer: RecordSigner, after: tuple[int, int], chunk: int
) -> tuple[int, tuple[int, int]] | None:
    """Sign the next ``chunk`` unsigned failures after ``after``: how many were
    signed and where the chunk ended; None when none is left."""
    found = store.unsigned_failures(algorithm=signer.algorithm, after=after, limit=chunk)
    if not found:
        return None
    rows = []
    for run, seq, record in found:
        signed_failure = signer.sign(record)
        if signed_failure is not None:
            rows.append((run, seq, signed_failure))
    return store.add_signatures(rows), (found[-1][0], found[-1][1])


def _finished(
    store: Store, algorithm: str, after: tuple[int, int], start: tuple[int, int] | None = None
) -> None:
    """Every failure after ``after`` is signed: record that every one of the
    newest run is (runs stored later are signed as they are stored)."""
    newest = store.runs(limit=1)
    done = max(after, (newest[0].id, _END)) if newest else after
    if done != start:
        store.set_signing_progress(algorithm, done)
