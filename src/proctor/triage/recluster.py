"""Re-clustering: sign stored failures under the current algorithm, in chunks.

A new algorithm (a new name: docs/triage.md) leaves every stored failure
without a signature under it. :func:`recluster` signs them chunk by chunk
(1,000 failures, each chunk its own transaction, in stored order), so it can
be stopped at any point and run again: it carries on with what is still
unsigned. Failures stored before signatures existed are signed the same way.

Cluster ids are kept stable where the grouping did not change: a new
signature whose failures are exactly the failures of one old cluster (each
maps to the other and to nothing else) takes that cluster's id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from proctor.store.contract import Store
from proctor.triage.signer import RecordSigner

__all__ = ["CHUNK", "ReclusterReport", "keep_cluster_ids", "recluster"]

CHUNK = 1000


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
        found = store.unsigned_failures(algorithm=algorithm, after=after, limit=chunk)
        if not found:
            break
        rows = []
        for run, seq, record in found:
            signed_failure = signer.sign(record)
            if signed_failure is not None:
                rows.append((run, seq, signed_failure))
        signed += store.add_signatures(rows)
        chunks += 1
        after = (found[-1][0], found[-1][1])
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
