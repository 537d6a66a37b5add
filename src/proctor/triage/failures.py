"""The stored failures rules are evaluated over, as :class:`FailureFacts`.

For now they are read through the store's public contract (each run's records,
failures signed with :func:`~proctor.triage.signature_of` and parsed for their
type and message once per distinct text: :class:`~proctor.triage.rules.FactsReader`). That is the
seam for stored signatures: once the store keeps each failure's signature,
type and normalised message, :func:`load_failures` reads those instead and
nothing above it changes.
"""

from __future__ import annotations

from proctor.store.contract import Store
from proctor.triage.rules import FactsReader
from proctor.triage.rules_lang import FailureFacts
from proctor.triage.signature import NO_PROJECT, Project

__all__ = ["load_failures"]


def load_failures(
    store: Store,
    *,
    since_ns: int | None = None,
    runs: int | None = None,
    project: Project = NO_PROJECT,
) -> list[FailureFacts]:
    """Every failure of the runs begun since ``since_ns`` (and among the newest
    ``runs`` runs), oldest run first."""
    found: list[FailureFacts] = []
    reader = FactsReader(project)
    for info in reversed(store.runs(since_ns=since_ns, limit=runs)):
        if not info.counts.failures:
            continue
        for record in store.records(info.id):
            facts = reader(record, run=info.id)
            if facts is not None:
                found.append(facts)
    return found
