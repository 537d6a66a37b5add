"""``--filter EXPR``: which whole bugs a partial copy wants.

An expression is terms separated by spaces, all of which must hold (quote a value
that holds spaces, shell-style). A term is ``KEY=VALUE`` (equal), ``KEY~GLOB``
(shell-style pattern) or either with a leading ``!`` (must not hold). Keys:

=========  ===============================================================
tag        one of the bug's tags
component  a tag ``component:VALUE`` (``component=store`` is ``tag=component:store``)
status     open, in-progress, fixed, wontfix, closed
severity   low, normal, high, critical
assignee   who it is assigned to (``assignee=`` is unassigned)
author     who opened it
test       a linked test id (``rule``, ``cluster`` and ``commit`` likewise)
id         the bug id or a prefix of it
=========  ===============================================================

A filter is evaluated on the sender's *current* state of each bug, and selects
whole bugs, never parts of a log. Several filters select the union of what each
selects. A copy records the filters it was made with (:attr:`BugFilter.text` is
the normalised expression), so it knows it is partial.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from proctor.bugs.errors import FilterError, shown
from proctor.bugs.state import BugState

__all__ = ["FILTER_KEYS", "BugFilter", "Term", "parse_filter", "wanted"]

FILTER_KEYS = (
    "tag",
    "component",
    "status",
    "severity",
    "assignee",
    "author",
    "test",
    "rule",
    "cluster",
    "commit",
    "id",
)


@dataclass(frozen=True, slots=True)
class Term:
    key: str
    value: str
    glob: bool = False
    negated: bool = False

    def text(self) -> str:
        return ("!" if self.negated else "") + self.key + ("~" if self.glob else "=") + self.value

    def holds(self, state: BugState) -> bool:
        return any(self._match(value) for value in _values(self.key, state)) != self.negated

    def _match(self, value: str) -> bool:
        if self.key == "id" and not self.glob:
            return value.startswith(self.value)
        return fnmatchcase(value, self.value) if self.glob else value == self.value


@dataclass(frozen=True, slots=True)
class BugFilter:
    """A parsed expression: every term must hold."""

    terms: tuple[Term, ...]

    @property
    def text(self) -> str:
        return " ".join(shlex.quote(term.text()) for term in self.terms)

    def matches(self, state: BugState) -> bool:
        return all(term.holds(state) for term in self.terms)


def _values(key: str, state: BugState) -> list[str]:
    if key == "tag":
        return sorted(state.tags)
    if key == "component":
        return [tag[len("component:") :] for tag in state.tags if tag.startswith("component:")]
    if key in ("test", "rule", "cluster", "commit"):
        return [link.target for link in state.links if link.kind == key]
    single = {
        "status": state.status,
        "severity": state.severity,
        "assignee": state.assignee,
        "author": state.author,
        "id": state.id,
    }
    return [single[key]]


def parse_filter(expression: str) -> BugFilter:
    """Parse ``EXPR``; :class:`FilterError` says which term is wrong and why."""
    try:
        words = shlex.split(expression)
    except ValueError as error:
        raise FilterError(f"filter {shown(expression)}: {error}") from None
    if not words:
        raise FilterError(f"filter {shown(expression)} is empty; write terms like status=open")
    terms = []
    for word in words:
        negated = word.startswith("!")
        body = word[1:] if negated else word
        cut = min((i for i in (body.find("="), body.find("~")) if i >= 0), default=-1)
        if cut <= 0:
            raise FilterError(
                f"filter term {shown(word)} is not KEY=VALUE or KEY~GLOB (for example tag=flaky)"
            )
        key, value = body[:cut], body[cut + 1 :]
        if key not in FILTER_KEYS:
            raise FilterError(
                f"filter term {shown(word)}: unknown key {shown(key)} "
                f"(known: {', '.join(FILTER_KEYS)})"
            )
        terms.append(Term(key, value, glob=body[cut] == "~", negated=negated))
    return BugFilter(tuple(terms))


def wanted(filters: Sequence[BugFilter], state: BugState) -> bool:
    """Whether a copy with these filters wants this bug (no filters: every bug)."""
    return not filters or any(f.matches(state) for f in filters)
