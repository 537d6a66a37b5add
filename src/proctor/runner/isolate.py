"""Finding the tests that make another test fail (``proctor run --isolate ID``).

A test that passes alone but fails in a full run depends on something earlier
tests left behind. The suspects are the tests that ran before it *in the same
worker process* in the last run (other workers share nothing with it). This
module finds a smallest set of them that still makes it fail.

The search takes the tests one necessary culprit at a time: binary-search the
shortest prefix of the suspects that, run (in their original order) before the
target, still makes it fail; the last test of that prefix is necessary; keep it,
and search again among the tests before it. Each probe is a fresh worker, so
probes cannot contaminate each other. With ``k`` culprits among ``n`` suspects
that takes about ``k * log2(n)`` probes, and the result is minimal in the sense
that dropping any one culprit makes the target pass (when the failure is
deterministic; a flaky target shows up as an inconsistent probe, reported).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from proctor.runner.history import worker_sequences
from proctor.runner.report import RunResult
from proctor.wire.event import Status
from proctor.wire.record import TestRecord

__all__ = [
    "Isolation",
    "IsolationError",
    "ProbeInterrupted",
    "find_culprits",
    "last_outcome",
    "probe_failed",
    "suspects_of",
]


class IsolationError(ValueError):
    """The isolation cannot start (the test is not in the last run...)."""


@dataclass(slots=True)
class Isolation:
    """What the search found."""

    target: str
    worker: str
    suspects: list[str]
    fails_alone: bool = False
    fails_after_all: bool = True
    culprits: list[str] = field(default_factory=list)
    probes: int = 0
    inconsistent: bool = False


Probe = Callable[[list[str]], bool]
"""Runs these ids in this order on a fresh worker; True when the last one (the target) failed."""


def suspects_of(target: str, last_run: Sequence[TestRecord]) -> tuple[str, list[str]]:
    """The worker that ran ``target`` in ``last_run`` and the tests it ran before it."""
    sequences = worker_sequences(last_run)
    for worker, ids in sequences.items():
        if target in ids:
            return worker, ids[: ids.index(target)]
    if not last_run:
        raise IsolationError("there is no previous run to isolate from; run the suite first")
    raise IsolationError(
        f"{target} did not run in the last run (or its records carry no worker); "
        "run it with the suite first"
    )


class ProbeInterrupted(Exception):
    """A probe was interrupted (Ctrl-C, SIGTERM): the search stops with this exit status."""

    def __init__(self, exit_code: int) -> None:
        super().__init__(f"interrupted (exit status {exit_code})")
        self.exit_code = exit_code


def last_outcome(target: str, last_run: Sequence[TestRecord]) -> Status | None:
    """The final status ``target`` had in ``last_run`` (None if it did not finish)."""
    found = None
    for record in last_run:
        if record.test_id == target and record.status > Status.INPROGRESS:
            found = record.status
    return found


def probe_failed(target: str, result: RunResult, problems: list[str]) -> bool:
    """Whether a probe's run made ``target`` fail (a probe that could not run
    anything counts as failing); its error, if any, is added to ``problems``.
    Raises :class:`ProbeInterrupted` for an interrupted probe."""
    if result.interrupted:
        raise ProbeInterrupted(result.exit_code)
    if result.error:
        problems.append(result.error)
    outcome = [r for r in result.failures + result.unfinished if r.test_id == target]
    passed = result.counts[Status.SUCCESS] + result.counts[Status.SKIP]
    return bool(outcome) or (passed == 0 and bool(result.error))


def find_culprits(
    target: str,
    worker: str,
    suspects: Sequence[str],
    probe: Probe,
    *,
    on_probe: Callable[[int, int, bool], None] | None = None,
) -> Isolation:
    """Search ``suspects`` for a smallest set that makes ``target`` fail (module docstring).

    ``on_probe(count, set size, failed)`` is told of every probe.
    """
    suspects = list(suspects)
    found = Isolation(target, worker, suspects)
    cache: dict[tuple[str, ...], bool] = {}

    def fails(chosen: Sequence[str]) -> bool:
        key = tuple(chosen)
        if key not in cache:
            found.probes += 1
            cache[key] = probe([*key, target])
            if on_probe is not None:
                on_probe(found.probes, len(key), cache[key])
        return cache[key]

    found.fails_alone = fails([])
    if found.fails_alone:
        return found
    found.fails_after_all = fails(suspects)
    if not found.fails_after_all:
        return found
    position = {test_id: index for index, test_id in enumerate(suspects)}
    required: list[str] = []
    candidates = suspects
    while True:
        ordered = sorted(required, key=position.__getitem__)
        if fails(ordered):
            found.culprits = ordered
            return found
        if not candidates:
            found.inconsistent = True
            found.culprits = ordered
            return found
        low, high = 1, len(candidates)  # candidates[:high] + required fails
        while low < high:
            middle = (low + high) // 2
            trial = sorted([*candidates[:middle], *required], key=position.__getitem__)
            if fails(trial):
                high = middle
            else:
                low = middle + 1
        required.append(candidates[low - 1])
        candidates = candidates[: low - 1]
