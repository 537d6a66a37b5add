"""The stored failures rules are evaluated over, as :class:`FailureFacts`.

Everything a rule can match on is stored with each failure when it is signed
(:mod:`proctor.store.failures`): the signature's digest, key and kind, the
test, and the exception type and normalised message. So the failures of a
window are read as those columns (:meth:`~proctor.store.contract.Store.failures`,
no record, no attachment, no parse) and a rule runs once per distinct fault
(:class:`~proctor.triage.rules.RuleSet`).

A run whose failures are not all stored that way (stored without a signer, or
before messages were kept, and not yet re-signed: ``proctor triage
recluster`` or the chunk signed after each stored run) is read the old way:
its records, signed as the store's signer would sign them.
"""

from __future__ import annotations

from proctor.store.contract import Store
from proctor.store.failures import FailureRow
from proctor.triage.algorithm import ALGORITHM
from proctor.triage.rules_lang import FailureFacts
from proctor.triage.signature import NO_PROJECT, Project

__all__ = ["facts_of_row", "load_failures"]


def facts_of_row(row: FailureRow) -> FailureFacts | None:
    """What rules see of a stored failure (None: its type and message were not stored)."""
    if row.type is None or row.message is None:
        return None
    return FailureFacts(row.test_id, row.type, row.message, row.digest, row.key, row.kind, row.run)


def load_failures(
    store: Store,
    *,
    since_ns: int | None = None,
    runs: int | None = None,
    project: Project = NO_PROJECT,
) -> list[FailureFacts]:
    """Every failure of the runs begun since ``since_ns`` (and among the newest
    ``runs`` runs), oldest run first, each run's in stored order. ``project``
    keys the frames of failures read from their records (signed the way the
    command line's store signs them: with no project roots, by default)."""
    infos = [
        info for info in reversed(store.runs(since_ns=since_ns, limit=runs)) if info.counts.failures
    ]
    by_run: dict[int, list[FailureFacts]] = {info.id: [] for info in infos}
    incomplete: set[int] = set()
    for row in store.failures(by_run, algorithm=ALGORITHM):
        facts = facts_of_row(row)
        if facts is None:
            incomplete.add(row.run)
        else:
            by_run[row.run].append(facts)
    found: list[FailureFacts] = []
    signer = None
    for info in infos:
        stored = by_run[info.id]
        if info.id not in incomplete and len(stored) >= info.counts.failures:
            found += stored  # each run's rows come in stored order
            continue
        if signer is None:
            from proctor.triage.signer import RecordSigner

            signer = RecordSigner(project)
        for record in store.records(info.id):
            signed = signer.sign(record)
            if signed is not None:
                signature = signed.signature
                found.append(
                    FailureFacts(
                        record.test_id,
                        signed.type,
                        signed.message,
                        signature.digest,
                        signature.key,
                        signature.kind,
                        info.id,
                    )
                )
    return found
