"""Which known-bug rule explains a stored failure, or a cluster.

An :class:`Explainer` holds the project's rules (``proctor-rules.toml``) and
answers for :class:`~proctor.store.failures.FailureRow` s, taking what the
rules look at as stored with the row (signature, key, kind, exception type and
normalised message); only a failure stored without its type and message (not
yet re-signed) has its record read, once. The first rule (in file
order) that explains a failure names it. A cluster is explained by its
example failure (the newest in the window): rules are written for a fault,
and a cluster is one fault.
"""

from __future__ import annotations

from collections.abc import Sequence

from proctor.store.contract import Store
from proctor.store.failures import FailureRow
from proctor.triage.clusters import Cluster, Explanation
from proctor.triage.failures import facts_of_row
from proctor.triage.rules import FactsReader, Rule, RuleSet
from proctor.triage.rules_lang import FailureFacts
from proctor.triage.signature import NO_PROJECT, Project

__all__ = ["Explainer"]

UNEXPLAINED = Explanation()


class Explainer:
    """The rules that explain stored failures, each failure read at most once."""

    def __init__(self, store: Store, rules: Sequence[Rule], project: Project = NO_PROJECT) -> None:
        self.store = store
        self.rules = RuleSet(rules)
        self._reader = FactsReader(project)
        self._seen: dict[tuple[int, int], Explanation] = {}

    def facts(self, row: FailureRow) -> FailureFacts:
        """What the rules see of ``row``: its stored signature, key, kind, type
        and message (the type and message of its record's traceback when they
        were not stored)."""
        stored = facts_of_row(row)
        if stored is not None:
            return stored
        record = self.store.result(row.run, row.seq)
        found = self._reader(record, run=row.run) if record is not None else None
        type_, message = (found.type, found.message) if found is not None else ("", "")
        return FailureFacts(row.test_id, type_, message, row.digest, row.key, row.kind, row.run)

    def failure(self, row: FailureRow) -> Explanation:
        """The first rule that explains ``row``, and its bug (or no rule)."""
        if not self.rules.rules:
            return UNEXPLAINED
        place = (row.run, row.seq)
        known = self._seen.get(place)
        if known is None:
            rules = self.rules.explain(self.facts(row))
            known = Explanation(rules[0].id, rules[0].bug) if rules else UNEXPLAINED
            self._seen[place] = known
        return known

    def cluster(self, cluster: Cluster) -> Explanation:
        """What explains ``cluster``: what explains its example failure."""
        return self.failure(cluster.example) if cluster.example is not None else UNEXPLAINED

    def pair(self, row: FailureRow) -> tuple[str | None, str | None]:
        """:meth:`failure` as (rule, bug), as ``notes_for_run(explain=)`` takes it."""
        found = self.failure(row)
        return found.rule, found.bug
