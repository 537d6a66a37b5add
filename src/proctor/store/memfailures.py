"""Signed failures in the in-memory store: the reference the SQL backends are checked against.

:class:`MemoryFailures` is a part :class:`~proctor.store.memory.MemoryStore`
delegates the failure-signature half of the contract to, as the SQL store
delegates to ``sql/failures.py``. It is given the store's runs (read, never
changed here) and keeps the signatures and clusters itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from proctor.store.contract import check_limit
from proctor.store.failures import (
    SIGNED_STATUSES,
    FailureRow,
    Sighting,
    SignatureLike,
    SignedFailure,
    Signer,
    signed_parts,
)
from proctor.store.model import RunMetadata
from proctor.wire.event import Status
from proctor.wire.record import TestRecord

__all__ = ["HeldRun", "MemoryFailures"]


class HeldRun(Protocol):
    """What the failures part reads of a run the memory store holds."""

    @property
    def metadata(self) -> RunMetadata: ...

    @property
    def records(self) -> Sequence[TestRecord]: ...


class MemoryFailures:
    """The failure-signature part of the contract, over ``runs`` (the store's runs by id)."""

    def __init__(self, runs: Mapping[int, HeldRun]) -> None:
        self._runs = runs
        self._signed: dict[tuple[int, int], dict[str, SignatureLike]] = {}
        self._facts: dict[tuple[int, int, str], tuple[str, str]] = {}
        self._clusters: dict[tuple[str, str], str] = {}
        self._progress: dict[str, tuple[int, int]] = {}

    def sign_records(
        self, signer: Signer | None, run_id: int, first: int, records: Sequence[TestRecord]
    ) -> None:
        """Sign the failures among ``records``, about to be stored in run ``run_id``
        from index ``first`` on."""
        if signer is None:
            return
        for index, record in enumerate(records, first):
            if record.status in SIGNED_STATUSES:
                found = signer.sign(record)
                if found is not None:
                    self._link(run_id, index, found)

    def _link(self, run_id: int, index: int, given: SignatureLike | SignedFailure) -> bool:
        signature, facts = signed_parts(given)
        signed = self._signed.setdefault((run_id, index), {})
        place = (run_id, index, signature.algorithm)
        described = place in self._facts
        if facts is not None:
            self._facts.setdefault(place, facts)
        if signature.algorithm in signed:
            return not described and facts is not None
        signed[signature.algorithm] = signature
        self._clusters.setdefault((signature.algorithm, signature.digest), signature.digest)
        return True

    def _all_rows(self, algorithm: str) -> list[FailureRow]:
        rows = []
        for (run_id, index), signed in self._signed.items():
            run = self._runs.get(run_id)
            signature = signed.get(algorithm)
            if run is None or signature is None:
                continue
            rows.append(self._row(run_id, index, signature))
        return rows

    def _row(self, run_id: int, index: int, signature: SignatureLike) -> FailureRow:
        run = self._runs[run_id]
        record = run.records[index]
        facts = self._facts.get((run_id, index, signature.algorithm))
        type_, message = (None, None) if facts is None else facts
        return FailureRow(
            run_id,
            index,
            record.test_id,
            record.status,
            run.metadata.started_ns or 0,
            signature.algorithm,
            signature.digest,
            signature.kind,
            signature.key,
            self._clusters[signature.algorithm, signature.digest],
            type_,
            message,
        )

    def failures(self, run_ids: Iterable[int], *, algorithm: str) -> list[FailureRow]:
        wanted = set(run_ids)
        rows = [row for row in self._all_rows(algorithm) if row.run in wanted]
        return sorted(rows, key=lambda row: (-row.run, row.seq))

    def sightings(
        self, digests: Iterable[str], *, algorithm: str, before_ns: int, count_runs: int = 0
    ) -> dict[str, Sighting]:
        wanted = set(digests)
        found: dict[str, Sighting] = {}
        runs: dict[str, set[int]] = {}
        for row in self._all_rows(algorithm):
            if row.digest not in wanted:
                continue
            first, last, _ = found.get(row.digest, (row.run_ns, None, 0))
            first = min(first, row.run_ns)
            if row.run_ns < before_ns and (last is None or row.run_ns > last):
                last = row.run_ns
            runs.setdefault(row.digest, set()).add(row.run)
            found[row.digest] = Sighting(first, last, min(len(runs[row.digest]), count_runs))
        return found

    def cluster_failures(
        self, cluster: str, *, algorithm: str, limit: int | None = None
    ) -> list[FailureRow]:
        check_limit(limit)
        rows = [row for row in self._all_rows(algorithm) if row.cluster == cluster]
        rows.sort(key=lambda row: (-row.run_ns, -row.run, row.seq))
        return rows if limit is None else rows[:limit]

    def cluster_ids(self, prefix: str, *, algorithm: str, limit: int | None = None) -> list[str]:
        check_limit(limit)
        found = sorted(
            {row.cluster for row in self._all_rows(algorithm) if row.cluster.startswith(prefix)}
        )
        return found if limit is None else found[:limit]

    def signing_progress(self, algorithm: str) -> tuple[int, int]:
        return self._progress.get(algorithm, (0, -1))

    def set_signing_progress(self, algorithm: str, position: tuple[int, int]) -> None:
        self._progress[algorithm] = position

    def unsigned_failures(
        self, *, algorithm: str, after: tuple[int, int] = (0, -1), limit: int = 1000
    ) -> list[tuple[int, int, TestRecord]]:
        found: list[tuple[int, int, TestRecord]] = []
        for run_id in sorted(self._runs):
            for index, record in enumerate(self._runs[run_id].records):
                if (run_id, index) <= after or record.status not in SIGNED_STATUSES:
                    continue
                signed = algorithm in self._signed.get((run_id, index), {})
                if signed and (run_id, index, algorithm) in self._facts:
                    continue
                if len(found) >= limit:
                    return found
                found.append((run_id, index, record))
        return found

    def result(self, run_id: int, seq: int) -> TestRecord | None:
        run = self._runs.get(run_id)
        if run is None or not 0 <= seq < len(run.records):
            return None
        return run.records[seq]

    def add_signatures(
        self, signed: Sequence[tuple[int, int, SignatureLike | SignedFailure]]
    ) -> int:
        added = 0
        for run_id, index, signature in signed:
            run = self._runs.get(run_id)
            if run is not None and 0 <= index < len(run.records):
                added += self._link(run_id, index, signature)
        return added

    def set_clusters(self, algorithm: str, clusters: Mapping[str, str]) -> None:
        for digest, cluster in clusters.items():
            if (algorithm, digest) in self._clusters:
                self._clusters[algorithm, digest] = cluster

    def outcomes(self, run_ids: Iterable[int]) -> list[tuple[int, str, Status]]:
        runs = sorted(run_id for run_id in set(run_ids) if run_id in self._runs)
        wanted = set(runs)
        failed = {
            self._runs[run_id].records[index].test_id
            for run_id, index in self._signed
            if run_id in wanted
        }
        return [
            (run_id, record.test_id, record.status)
            for run_id in runs
            for record in self._runs[run_id].records
            if record.test_id in failed
        ]
