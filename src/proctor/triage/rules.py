"""Known-bug rules: a ``where`` expression tied to a bug, and what they explain.

A :class:`Rule` ties a parsed ``where`` expression (:mod:`proctor.triage.rules_lang`)
to a bug reference (a URL, or a ``proctor bug`` id). :class:`RuleSet` evaluates
rules over many failures at once: each rule is evaluated once per distinct
(signature, type, message) and, only when it mentions ``test``, once per
distinct test of each, so applying a rule to every stored failure costs about
as much as the history has distinct faults, not failures.

Matches are computed when asked, never materialised: a rule that is added or
changed applies to every stored failure at once, and to a new failure as soon
as it is stored. :func:`preview` says what a rule would match (clusters,
failures, tests, examples) and whether it spans unrelated clusters;
:func:`unexplained` gives the failures no rule explains, by cluster, with the
classification rate.

:class:`RuleBook` is where a repository keeps its copy of the rules
(:class:`MemoryRuleBook`, or the store's table through :class:`StoreRuleBook`);
``proctor-rules.toml`` (:mod:`proctor.triage.rules_file`) is the reviewed
source of truth, and :func:`differences` says how the two differ.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from proctor.triage.rules_lang import (
    Expr,
    FailureFacts,
    Predicate,
    RuleSyntaxError,
    compile_rule,
    fields_of,
    parse_rule,
    unparse,
)
from proctor.triage.signature import (
    NO_PROJECT,
    Project,
    Signature,
    exception_of,
    signature_of,
    signature_of_record,
)
from proctor.triage.traceback import parse_failure
from proctor.wire.event import Status
from proctor.wire.record import TestRecord

if TYPE_CHECKING:
    from proctor.store.contract import Store

__all__ = [
    "BugReferenceError",
    "ClusterCount",
    "Differences",
    "FactsReader",
    "MemoryRuleBook",
    "Preview",
    "Rule",
    "RuleBook",
    "RuleSet",
    "RuleSyntaxError",
    "StoreRuleBook",
    "Unexplained",
    "check_bug",
    "differences",
    "facts_from",
    "facts_of_record",
    "make_rule",
    "preview",
    "related_groups",
    "rule_id",
    "unexplained",
]

MAX_BUG = 500
_BUG_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:#/+-]*")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\x00-\x1f\x7f]+")


class BugReferenceError(ValueError):
    """A bug reference that is neither a URL nor an id."""


def check_bug(bug: str) -> str:
    """``bug`` if it is a URL (``https://...``) or a bug id (``1234``, ``LP#1234``,
    ``PROJ-12``, a ``proctor bug`` id); raises :class:`BugReferenceError`."""
    if not bug or len(bug) > MAX_BUG:
        raise BugReferenceError(
            f"a bug reference is a URL or an id of 1 to {MAX_BUG} characters, "
            f"not {len(bug)} characters"
        )
    if _URL.fullmatch(bug) or _BUG_ID.fullmatch(bug):
        return bug
    raise BugReferenceError(
        f"{bug!r} is not a bug reference: give its URL (https://...) or its id "
        "(letters, digits and . _ : # / + -, such as 1234, LP#1234 or PROJ-12)"
    )


def rule_id(bug: str, where: str) -> str:
    """A rule's id: 8 hex digits of SHA-256 of its bug and canonical ``where``.
    Made from the content, so two people adding rules on two branches do not
    collide, and adding the same rule twice is recognised."""
    return hashlib.sha256(f"{bug}\0{where}".encode()).hexdigest()[:8]


@dataclass(frozen=True, slots=True)
class Rule:
    """One known-bug rule. ``where`` is the canonical text of ``expr``."""

    id: str
    bug: str
    where: str
    added: str = ""
    author: str = ""
    parsed: Expr | None = field(compare=False, repr=False, default=None)
    """The parsed ``where`` (parsed on creation when not given)."""

    def __post_init__(self) -> None:
        if self.parsed is None:
            object.__setattr__(self, "parsed", parse_rule(self.where))

    @property
    def expr(self) -> Expr:
        assert self.parsed is not None
        return self.parsed

    @property
    def row(self) -> tuple[str, str, str, str, str]:
        """The fields a repository stores: id, bug, where, added, author."""
        return (self.id, self.bug, self.where, self.added, self.author)


def make_rule(bug: str, where: str, *, added: str = "", author: str = "") -> Rule:
    """A new rule: ``where`` parsed (:class:`RuleSyntaxError`) and written in its
    canonical form, ``bug`` checked (:class:`BugReferenceError`)."""
    check_bug(bug)
    expr = parse_rule(where)
    canonical = unparse(expr)
    return Rule(rule_id(bug, canonical), bug, canonical, added, author, expr)


# -- facts of a failure


def facts_of_record(
    record: TestRecord, *, run: int = 0, project: Project = NO_PROJECT
) -> FailureFacts | None:
    """What rules see of a failed test's record; None for a test that did not fail.

    (Stored failures' facts are read from the store instead:
    :func:`proctor.triage.failures.load_failures`.)
    """
    signature = signature_of_record(record, project=project)
    if signature is None:
        return None
    return facts_from(record.test_id, signature, _failure_text(record), run=run)


def facts_from(test_id: str, signature: Signature, text: str, *, run: int = 0) -> FailureFacts:
    """:class:`FailureFacts` from a signature and the failure's text (for the
    exception type and message the test saw)."""
    type_, message = exception_of(parse_failure(text)) if text.strip() else ("", "")
    return FailureFacts(
        test_id, type_, message, signature.digest, signature.key, signature.kind, run
    )


class FactsReader:
    """:func:`facts_of_record` for many records, signing and parsing each
    distinct failure text once: a test failing the same way run after run is
    the common case in a long history (at most ``memory`` texts are kept)."""

    def __init__(self, project: Project = NO_PROJECT, memory: int = 50_000) -> None:
        self.project = project
        self.memory = memory
        self._known: dict[str, tuple[Signature, str, str]] = {}

    def __call__(self, record: TestRecord, *, run: int = 0) -> FailureFacts | None:
        status = record.status
        if status not in (Status.FAIL, Status.UXSUCCESS) and status.is_final:
            return None
        text = _failure_text(record)
        if not text.strip():
            return facts_of_record(record, run=run, project=self.project)
        known = self._known.get(text)
        if known is None:
            signature = signature_of(text, project=self.project)
            facts = facts_from(record.test_id, signature, text)
            known = (signature, facts.type, facts.message)
            if len(self._known) < self.memory:
                self._known[text] = known
        signature, type_, message = known
        return FailureFacts(
            record.test_id, type_, message, signature.digest, signature.key, signature.kind, run
        )


def _failure_text(record: TestRecord) -> str:
    tracebacks = [a for a in record.attachments if a.name.split(" ", 1)[0].startswith("traceback")]
    texts = tracebacks or [a for a in record.attachments if a.name == "reason"]
    return "\n".join(a.text() for a in texts)


# -- evaluation over many failures

_Fault = tuple[str, str, str, str, str]  # signature, type, message, key, kind


def _fault(facts: FailureFacts) -> _Fault:
    return (facts.signature, facts.type, facts.message, facts.key, facts.kind)


class RuleSet:
    """Rules ready to evaluate over many failures."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = list(rules)
        self._compiled: list[tuple[Rule, Predicate, bool]] = [
            (rule, compile_rule(rule.expr), "test" in fields_of(rule.expr)) for rule in self.rules
        ]

    def explain(self, facts: FailureFacts) -> list[Rule]:
        """The rules that explain one failure (at ingest, say)."""
        return [rule for rule, predicate, _ in self._compiled if predicate(facts)]

    def matches(self, failures: Sequence[FailureFacts]) -> list[list[int]]:
        """For each rule, the indexes of the failures it explains, in order.

        Each rule runs once per distinct fault (signature, type, message, key,
        kind), and once per distinct (fault, test) only if it mentions ``test``.
        """
        by_fault: dict[_Fault, list[int]] = defaultdict(list)
        for index, facts in enumerate(failures):
            by_fault[_fault(facts)].append(index)
        found: list[list[int]] = []
        for _, predicate, per_test in self._compiled:
            hits: list[int] = []
            for indexes in by_fault.values():
                first = failures[indexes[0]]
                if not per_test:
                    if predicate(first):
                        hits += indexes
                    continue
                verdicts: dict[str, bool] = {}
                for index in indexes:
                    test = failures[index].test
                    verdict = verdicts.get(test)
                    if verdict is None:
                        verdict = verdicts[test] = predicate(failures[index])
                    if verdict:
                        hits.append(index)
            hits.sort()
            found.append(hits)
        return found

    def explained(self, failures: Sequence[FailureFacts]) -> list[bool]:
        """For each failure, whether some rule explains it."""
        flags = [False] * len(failures)
        for hits in self.matches(failures):
            for index in hits:
                flags[index] = True
        return flags


# -- previews and the unexplained


@dataclass(frozen=True, slots=True)
class ClusterCount:
    """One cluster (signature) among some failures."""

    signature: str
    key: str
    kind: str
    failures: int
    tests: int
    example_test: str
    runs: int


def _clusters(failures: Iterable[FailureFacts]) -> list[ClusterCount]:
    counts: Counter[str] = Counter()
    tests: dict[str, set[str]] = defaultdict(set)
    runs: dict[str, set[int]] = defaultdict(set)
    first: dict[str, FailureFacts] = {}
    for facts in failures:
        counts[facts.signature] += 1
        tests[facts.signature].add(facts.test)
        runs[facts.signature].add(facts.run)
        first.setdefault(facts.signature, facts)
    return [
        ClusterCount(
            digest,
            first[digest].key,
            first[digest].kind,
            count,
            len(tests[digest]),
            min(tests[digest]),
            len(runs[digest]),
        )
        for digest, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]


def related_groups(clusters: Sequence[ClusterCount]) -> list[list[ClusterCount]]:
    """Clusters gathered into groups of related ones: two clusters are related
    when their keys share the root cause (the first link of the exception chain,
    type and site) or, for the weak kinds, when they are of one kind. A rule
    that spans more than one group probably explains more than one fault."""
    groups: dict[str, list[ClusterCount]] = {}
    for cluster in clusters:
        root = cluster.key.split(" -> ", 1)[0]
        groups.setdefault(f"{cluster.kind}\0{root}", []).append(cluster)
    return list(groups.values())


@dataclass(frozen=True, slots=True)
class Preview:
    """What a rule would match among some failures."""

    failures: int
    """How many failures it matches."""
    total: int
    """Among how many."""
    tests: int
    runs: int
    clusters: list[ClusterCount]
    unrelated: int
    """Groups of related clusters among those matched (1: one fault)."""
    examples: list[FailureFacts]

    @property
    def too_broad(self) -> bool:
        return self.unrelated > 1


def preview(rule: Rule, failures: Sequence[FailureFacts], *, examples: int = 5) -> Preview:
    """What ``rule`` would explain among ``failures``."""
    hits = [failures[index] for index in RuleSet([rule]).matches(failures)[0]]
    clusters = _clusters(hits)
    return Preview(
        failures=len(hits),
        total=len(failures),
        tests=len({facts.test for facts in hits}),
        runs=len({facts.run for facts in hits}),
        clusters=clusters,
        unrelated=len(related_groups(clusters)),
        examples=hits[:examples],
    )


@dataclass(frozen=True, slots=True)
class Unexplained:
    """The failures no rule explains, by cluster, and the classification rate."""

    total: int
    explained: int
    clusters: list[ClusterCount]
    per_rule: dict[str, int]
    """Rule id -> failures it explains."""

    @property
    def rate(self) -> float | None:
        """Explained / total; None when there are no failures."""
        return self.explained / self.total if self.total else None

    @property
    def unexplained(self) -> int:
        return self.total - self.explained


def unexplained(rules: Iterable[Rule], failures: Sequence[FailureFacts]) -> Unexplained:
    """The failures among ``failures`` that no rule explains, grouped by cluster
    (largest first), with how many are explained and by which rule."""
    rule_set = RuleSet(rules)
    matches = rule_set.matches(failures)
    flags = [False] * len(failures)
    for hits in matches:
        for index in hits:
            flags[index] = True
    explained = sum(flags)
    rest = [facts for facts, flag in zip(failures, flags, strict=True) if not flag]
    per_rule = {rule.id: len(hits) for rule, hits in zip(rule_set.rules, matches, strict=True)}
    return Unexplained(len(failures), explained, _clusters(rest), per_rule)


# -- where a repository keeps its copy


class RuleBook(Protocol):
    """A repository's copy of the rules."""

    def load(self) -> list[Rule]:
        """The rules, sorted by id."""

    def replace(self, rules: Sequence[Rule]) -> None:
        """Make the copy exactly ``rules`` (one transaction)."""


class MemoryRuleBook:
    """A :class:`RuleBook` in memory (tests; the in-memory store)."""

    def __init__(self, rules: Iterable[Rule] = ()) -> None:
        self._rules = {rule.id: rule for rule in rules}

    def load(self) -> list[Rule]:
        return [self._rules[key] for key in sorted(self._rules)]

    def replace(self, rules: Sequence[Rule]) -> None:
        self._rules = {rule.id: rule for rule in rules}


class StoreRuleBook:
    """A :class:`RuleBook` in a repository (:mod:`proctor.store.rules_table`)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def load(self) -> list[Rule]:
        from proctor.store.rules_table import load_rules

        return [
            Rule(id, bug, where, added, author)
            for id, bug, where, added, author in load_rules(self.store)
        ]

    def replace(self, rules: Sequence[Rule]) -> None:
        from proctor.store.rules_table import replace_rules

        replace_rules(self.store, [rule.row for rule in rules])


@dataclass(frozen=True, slots=True)
class Differences:
    """How a repository's copy differs from the file."""

    only_in_file: list[Rule]
    only_in_repository: list[Rule]
    changed: list[tuple[Rule, Rule]]
    """(file's, repository's) for rules whose id is in both."""

    @property
    def same(self) -> bool:
        return not (self.only_in_file or self.only_in_repository or self.changed)

    def summary(self) -> str:
        parts = []
        if self.only_in_file:
            parts.append(f"{len(self.only_in_file)} only in the file")
        if self.only_in_repository:
            parts.append(f"{len(self.only_in_repository)} only in the repository")
        if self.changed:
            parts.append(f"{len(self.changed)} changed")
        return ", ".join(parts) or "the same"


def differences(file_rules: Sequence[Rule], book_rules: Sequence[Rule]) -> Differences:
    """Compare the file's rules with a repository's copy."""
    mine = {rule.id: rule for rule in file_rules}
    theirs = {rule.id: rule for rule in book_rules}
    return Differences(
        [mine[key] for key in sorted(mine.keys() - theirs.keys())],
        [theirs[key] for key in sorted(theirs.keys() - mine.keys())],
        [
            (mine[key], theirs[key])
            for key in sorted(mine.keys() & theirs.keys())
            if mine[key].row != theirs[key].row
        ],
    )
