"""Flaky and broken tests over a window of runs: what `proctor flaky` shows.

Definitions (the industry's, shared `reference/triage.md` 3.8):

* **flaky**: on the same commit and the same variant (Python version,
  platform and CI job name) the test both passed and failed. Runs of a dirty checkout are
  not the same code as their commit, and runs with no commit cannot be
  compared: neither counts as evidence.
* **broken**: it fails consistently at the edge of history, in one variant:
  its newest ``broken_consecutive`` executions all failed, or
  ``broken_failures`` of its newest ``broken_window`` did.
* **recovered** (dropped): its newest ``recovered_after`` executions all passed.

Every verdict says why: the runs and commits. Verdicts are ranked by impact:
the runs that failed only because of this test (it was the run's one failure).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from proctor.store.contract import Store
from proctor.store.failures import SIGNED_STATUSES
from proctor.store.model import RunInfo
from proctor.triage.settings import TriageSettings
from proctor.wire.event import Status

__all__ = ["Evidence", "Verdict", "judge", "judge_test", "variant_of"]

Variant = tuple[str, str, str]


def variant_of(info: RunInfo) -> Variant:
    """The run's variant: its Python version, platform ("?" when unknown) and
    CI job name (the ``ci.job`` property; "" outside CI)."""
    meta = info.metadata
    return (meta.python or "?", meta.platform or "?", meta.properties.get("ci.job", ""))


@dataclass(frozen=True, slots=True)
class Evidence:
    """One commit and variant on which the test both passed and failed."""

    commit: str
    variant: Variant
    passed: tuple[int, ...]
    failed: tuple[int, ...]


@dataclass(slots=True)
class Verdict:
    test_id: str
    verdict: Literal["flaky", "broken"]
    reasons: list[str] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    failed_runs: list[int] = field(default_factory=list)
    passed_runs: list[int] = field(default_factory=list)
    impact: list[int] = field(default_factory=list)
    """Runs whose only failure was this test."""
    broken_runs: list[int] = field(default_factory=list)


def judge(
    store: Store, runs: Sequence[RunInfo], settings: TriageSettings | None = None
) -> list[Verdict]:
    """The flaky and broken tests of ``runs`` (oldest first), most impact first."""
    settings = settings or TriageSettings()
    if not runs:
        return []
    by_id = {info.id: info for info in runs}
    order = {info.id: position for position, info in enumerate(runs)}
    executions: dict[str, list[tuple[int, bool]]] = {}
    for run_id, test_id, status in store.outcomes(by_id):
        if status is Status.SUCCESS:
            executions.setdefault(test_id, []).append((run_id, True))
        elif status in SIGNED_STATUSES:
            executions.setdefault(test_id, []).append((run_id, False))
    verdicts = []
    for test_id, seen in executions.items():
        seen.sort(key=lambda item: order[item[0]])
        verdict = _judge_one(test_id, seen, by_id, settings)
        if verdict is not None:
            verdicts.append(verdict)
    verdicts.sort(
        key=lambda v: (-len(v.impact), v.verdict != "broken", -len(v.failed_runs), v.test_id)
    )
    return verdicts


def judge_test(
    test_id: str,
    executions: Sequence[tuple[RunInfo, Status]],
    settings: TriageSettings | None = None,
) -> Verdict | None:
    """The verdict on one test from its own executions (its run and outcome,
    oldest first), by the same rules as :func:`judge`: what a test's page shows.
    None: neither flaky nor broken in these runs (or recovered)."""
    runs = {info.id: info for info, _ in executions}
    seen = [
        (info.id, status is Status.SUCCESS)
        for info, status in executions
        if status is Status.SUCCESS or status in SIGNED_STATUSES
    ]
    if not seen:
        return None
    return _judge_one(test_id, seen, runs, settings or TriageSettings())


def _judge_one(
    test_id: str,
    seen: list[tuple[int, bool]],
    runs: dict[int, RunInfo],
    settings: TriageSettings,
) -> Verdict | None:
    failed = [run for run, passed in seen if not passed]
    if not failed:
        return None
    tail = seen[-settings.recovered_after :]
    if len(tail) == settings.recovered_after and all(passed for _, passed in tail):
        return None  # recovered
    verdict = Verdict(test_id, "flaky", failed_runs=failed)
    verdict.passed_runs = [run for run, passed in seen if passed]
    groups: dict[tuple[str, Variant], tuple[list[int], list[int]]] = {}
    by_variant: dict[Variant, list[tuple[int, bool]]] = {}
    for run, passed in seen:
        info = runs[run]
        variant = variant_of(info)
        by_variant.setdefault(variant, []).append((run, passed))
        commit = info.metadata.git_commit
        if commit and info.metadata.git_dirty is not True:
            group = groups.setdefault((commit, variant), ([], []))
            group[0 if passed else 1].append(run)
    for (commit, variant), (passes, fails) in sorted(groups.items()):
        if passes and fails:
            verdict.evidence.append(Evidence(commit, variant, tuple(passes), tuple(fails)))
    for variant, history in sorted(by_variant.items()):
        reason = _broken(history, settings)
        if reason:
            verdict.verdict = "broken"
            verdict.reasons.append(f"{reason} on {_variant_text(variant)}")
            verdict.broken_runs += [run for run, passed in history if not passed]
    for evidence in verdict.evidence:
        verdict.reasons.append(
            f"passed in {_runs_text(evidence.passed)} and failed in {_runs_text(evidence.failed)} "
            f"on commit {evidence.commit[:12]}, {_variant_text(evidence.variant)}"
        )
    if verdict.verdict == "flaky" and not verdict.evidence:
        return None
    verdict.impact = [
        run
        for run in failed
        if (counts := runs[run].counts).failed + counts.uxsuccess + counts.incomplete == 1
    ]
    return verdict


def _broken(history: list[tuple[int, bool]], settings: TriageSettings) -> str | None:
    newest = history[-settings.broken_consecutive :]
    if len(newest) == settings.broken_consecutive and not any(passed for _, passed in newest):
        return f"failed in its last {len(newest)} runs ({_runs_text([r for r, _ in newest])})"
    window = history[-settings.broken_window :]
    fails = [run for run, passed in window if not passed]
    if len(fails) >= settings.broken_failures:
        return f"failed in {len(fails)} of its last {len(window)} runs ({_runs_text(fails)})"
    return None


def _variant_text(variant: Variant) -> str:
    python, platform, job = variant
    return f"{python} on {platform}" + (f", CI job {job}" if job else "")


def _runs_text(runs: Sequence[int]) -> str:
    shown = ", ".join(str(run) for run in runs[:6])
    more = f" and {len(runs) - 6} more" if len(runs) > 6 else ""
    return f"run{'s' if len(runs) > 1 else ''} {shown}{more}"
