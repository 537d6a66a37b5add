"""One cluster whole, from its stored failures: what `proctor triage show`
shows, and the evidence `proctor bug new --from-cluster` writes into a bug.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from proctor.store.contract import Store
from proctor.store.failures import FailureRow
from proctor.store.model import RunInfo
from proctor.triage.algorithm import ALGORITHM
from proctor.triage.clusters import DAY_NS
from proctor.triage.text import failure_text
from proctor.wire.record import TestRecord

__all__ = [
    "MIN_PREFIX",
    "ClusterDetail",
    "ClusterNotFound",
    "cluster_detail",
    "evidence_text",
    "resolve_cluster",
]

EXAMPLES = 3
"""Examples kept, each from a different test."""


@dataclass(frozen=True, slots=True)
class ClusterDetail:
    cluster: str
    rows: list[FailureRow]
    """Every failure of the cluster, newest first (never empty)."""
    runs: dict[int, RunInfo]
    """The runs since its first failure, by id."""
    examples: list[TestRecord]
    """Up to :data:`EXAMPLES` failures, newest first, each of a different test."""
    first_day_ns: int
    daily: list[int]
    """Failures per UTC day, from ``first_day_ns`` to the day of the newest."""

    @property
    def newest(self) -> FailureRow:
        return self.rows[0]

    @property
    def tests(self) -> list[str]:
        """Its tests, sorted."""
        return sorted({row.test_id for row in self.rows})

    @property
    def run_ids(self) -> list[int]:
        """The runs it failed in, newest first."""
        return list(dict.fromkeys(row.run for row in self.rows))


MIN_PREFIX = 4
"""Characters of a cluster id at least for a prefix to name it (git's rule)."""
CANDIDATES = 10
"""Candidates named at most when a prefix is ambiguous."""


class ClusterNotFound(LookupError):
    """No cluster, or more than one, goes by the id given: ``candidates`` are
    the ids it could mean (empty when none), ``more`` whether there are more."""

    def __init__(self, message: str, candidates: list[str], more: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.candidates = candidates
        self.more = more

    def __str__(self) -> str:
        return self.message


def resolve_cluster(store: Store, given: str, *, algorithm: str = ALGORITHM) -> str:
    """The id of the cluster ``given`` names: that id, or a unique prefix of one
    (at least :data:`MIN_PREFIX` characters: git-style) among the clusters
    with a stored failure; :class:`ClusterNotFound` when none or several."""
    found = store.cluster_ids(given, algorithm=algorithm, limit=CANDIDATES + 1)
    if given in found:
        return given
    if len(given) < MIN_PREFIX:
        raise ClusterNotFound(
            f"there is no failure cluster {given!r} under {algorithm}; a cluster id's prefix "
            f"needs at least {MIN_PREFIX} characters (`proctor triage` lists them)",
            found[:CANDIDATES],
            len(found) > CANDIDATES,
        )
    if not found:
        raise ClusterNotFound(
            f"there is no failure cluster {given!r} under {algorithm} here: no cluster id "
            "is it or starts with it; `proctor triage` lists them",
            [],
        )
    if len(found) > 1:
        shown = found[:CANDIDATES]
        raise ClusterNotFound(
            f"{given!r} is ambiguous: {len(shown)}{'+' if len(found) > CANDIDATES else ''} "
            "clusters start with it; give more of the id",
            shown,
            len(found) > CANDIDATES,
        )
    return found[0]


def cluster_detail(
    store: Store, cluster: str, *, algorithm: str = ALGORITHM
) -> ClusterDetail | None:
    """``cluster`` whole, or None when no stored failure is in it."""
    rows = store.cluster_failures(cluster, algorithm=algorithm)
    if not rows:
        return None
    runs = {info.id: info for info in store.runs(since_ns=rows[-1].run_ns)}
    examples: list[TestRecord] = []
    seen_tests: set[str] = set()
    for row in rows:
        if row.test_id not in seen_tests and len(examples) < EXAMPLES:
            seen_tests.add(row.test_id)
            record = store.result(row.run, row.seq)
            if record is not None:
                examples.append(record)
    first_day = rows[-1].run_ns // DAY_NS
    daily = [0] * (rows[0].run_ns // DAY_NS - first_day + 1)
    for row in rows:
        daily[row.run_ns // DAY_NS - first_day] += 1
    return ClusterDetail(cluster, rows, runs, examples, first_day * DAY_NS, daily)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
MAX_TRACEBACK = 8000
MAX_TESTS = 20
MAX_TEXT = 60_000
"""At most this much (a bug's description holds 65,536 characters)."""


def _clean(text: str) -> str:
    """Test output made safe for a bug's description: control characters
    (tab and newline kept) and lone surrogates shown as escapes."""
    return _CONTROL.sub(lambda found: ascii(found.group())[1:-1], text)


def _when(ns: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ns // 1_000_000_000))


def evidence_text(detail: ClusterDetail) -> str:
    """The cluster's evidence as a bug's description: its signature, counts,
    first and last seen, tests, runs and a representative traceback (the
    newest; at most :data:`MAX_TRACEBACK` characters, its end kept)."""
    first, newest = detail.rows[-1], detail.newest
    tests = detail.tests
    runs = detail.run_ids
    commits = list(
        dict.fromkeys(
            commit
            for run in runs
            if run in detail.runs and (commit := detail.runs[run].metadata.git_commit)
        )
    )
    lines = [
        f"Failure cluster {detail.cluster} ({newest.algorithm}, {newest.kind}):",
        f"  {newest.key}",
        "",
        f"{len(detail.rows)} failure(s) of {len(tests)} test(s) in {len(runs)} run(s); "
        f"first seen {_when(first.run_ns)} (run {first.run}), "
        f"last seen {_when(newest.run_ns)} (run {newest.run}).",
        f"Runs (newest first): {' '.join(map(str, runs[:20]))}{' ...' if len(runs) > 20 else ''}",
    ]
    if commits:
        lines.append(f"Commits: {' '.join(c[:12] for c in commits[:10])}")
    lines += ["", "Tests:"]
    lines += [f"  {test}" for test in tests[:MAX_TESTS]]
    if len(tests) > MAX_TESTS:
        lines.append(f"  ... and {len(tests) - MAX_TESTS} more")
    if detail.examples:
        example = detail.examples[0]
        traceback = failure_text(example).rstrip()
        if len(traceback) > MAX_TRACEBACK:
            traceback = "...\n" + traceback[-MAX_TRACEBACK:]
        lines += ["", f"Representative traceback ({example.test_id}):", traceback]
    return _clean("\n".join(lines))[:MAX_TEXT] + "\n"
