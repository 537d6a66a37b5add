"""What the bug records say about clusters and tests: which bugs link them.

A :class:`BugIndex` is read once per page from the bugs' snapshots (one query,
however many bugs) and answers "which bugs link this cluster, this test, this
rule" and "which bug does this rule's reference name". A rule's bug reference
is a ``proctor bug`` id (then it is a link to its page) or any URL or id of
another tracker: only an ``http``/``https`` URL becomes a link, since a rule's
reference is text a contributor wrote (``javascript://`` passes as a URL).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

from proctor.store.bug_tables import SnapshotRow

__all__ = ["BugIndex", "BugRef", "external_url"]

_HEX = re.compile(r"[0-9a-f]{4,64}")
_WEB = re.compile(r"https?://[^\s\x00-\x1f\x7f\"'<>]+", re.IGNORECASE)


def external_url(reference: str | None) -> str | None:
    """``reference`` when it is an ``http(s)://`` URL a page may link to, else None."""
    if reference and _WEB.fullmatch(reference):
        return reference
    return None


class BugRef(NamedTuple):
    """A bug as other pages name it."""

    id: str
    short: str
    title: str
    status: str
    severity: str

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "short_id": self.short,
            "title": self.title,
            "status": self.status,
            "severity": self.severity,
        }


class BugIndex:
    """The bugs of a repository by what they link to."""

    def __init__(self, rows: Iterable[SnapshotRow], shorts: dict[str, str]) -> None:
        self.rows = list(rows)
        self.refs = {
            row.id: BugRef(
                row.id, shorts.get(row.id, row.id[:7]), row.title, row.status, row.severity
            )
            for row in self.rows
        }
        self._by_link: dict[tuple[str, str], list[BugRef]] = {}
        for row in self.rows:
            for kind, target in row.links:
                self._by_link.setdefault((kind, target), []).append(self.refs[row.id])

    def linking(self, kind: str, target: str) -> list[BugRef]:
        """The bugs that link ``kind`` ``target`` (a cluster, test, rule or commit)."""
        return list(self._by_link.get((kind, target), []))

    def named(self, reference: str | None) -> BugRef | None:
        """The bug a rule's reference names when it is (a unique prefix of) a
        bug id here; None for another tracker's reference."""
        if not reference or not _HEX.fullmatch(reference):
            return None
        found = [ref for bug, ref in self.refs.items() if bug.startswith(reference)]
        return found[0] if len(found) == 1 else None

    def known(self, kind: str, target: str, rule_bug: str | None) -> list[BugRef]:
        """The bugs known for a cluster or test: those linking it, and the
        one its explaining rule names."""
        found = self.linking(kind, target)
        named = self.named(rule_bug)
        if named is not None and named not in found:
            found.append(named)
        return found
