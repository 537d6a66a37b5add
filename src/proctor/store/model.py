"""The values the store hands out and takes in: run metadata, run summaries, timings.

Every value is immutable, so that callers can keep them, compare them in tests
and never change the repository by accident. They are ``NamedTuple``s rather
than frozen slotted dataclasses for the reason ``proctor.wire.event`` gives for
``Event``: cost on the short commands' path. Defining a frozen slotted
dataclass costs about 1.7 ms (code generation, then the class built twice), a
NamedTuple about 0.25 ms; this module defines eight, and every ``proctor last``
imports it, against a budget of 150 ms for the whole command. Code here only
uses the named fields. Test records themselves are
:class:`proctor.wire.record.TestRecord`, the unit every layer speaks; nothing
here duplicates them.

The failing rule and the timing rule live here too, as plain functions, because
every backend (SQLite, PostgreSQL and the in-memory fake) must apply exactly the
same ones and the contract tests check that they do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import NamedTuple

from proctor.wire.event import NS_PER_SECOND, Status
from proctor.wire.record import TestRecord

__all__ = [
    "EWMA_WEIGHT",
    "RETRIED_TAG",
    "GarbageReport",
    "HistoryEntry",
    "RunCounts",
    "RunInfo",
    "RunMetadata",
    "SlowTest",
    "StoreStats",
    "TestStats",
    "clears_failing",
    "failing_change",
    "is_timed",
]

EWMA_WEIGHT = 0.3
"""Weight of the newest duration in a test's expected duration (see :func:`is_timed`).

An exponentially weighted mean follows a test that became slower within a few
runs (stestr's "last duration" follows it at once but jumps with every noisy
run; a plain mean over all history never catches up). 0.3 forgets a change of
speed to 3% in ten runs.
"""


class RunMetadata(NamedTuple):
    """What is known about a run besides its results; captured when it begins.

    ``partial`` says the run covered a subset of the suite (a filter,
    ``--failing``, a loaded stream): its results update the failing set test by
    test. A complete run (``partial=False``) that finishes uninterrupted and
    ran at least one test also clears from the failing set every test it did
    not run, so tests deleted from the suite do not stay "failing" forever
    (:func:`clears_failing`). ``properties`` is free-form
    (variant keys, where an imported run came from); the always-present keys
    are columns, indexed where a query filters on them.
    """

    started_ns: int | None = None
    """When the run began (ns since the epoch); ``None``: when it is stored."""
    git_commit: str | None = None
    git_branch: str | None = None
    git_dirty: bool | None = None
    python: str | None = None
    platform: str | None = None
    hostname: str | None = None
    ci_provider: str | None = None
    ci_job_id: str | None = None
    ci_url: str | None = None
    command: str | None = None
    source: str = "run"
    """How the run arrived: ``run``, ``load``, ``import``."""
    partial: bool = True
    properties: Mapping[str, str] = MappingProxyType({})


RETRIED_TAG = "proctor:retried"
"""The tag of a failed attempt that ``--rerun-failures`` ran again. It is stored (flaky
evidence, in the test's statistics) and counted in its run's ``total``, but not among
the run's outcomes (:class:`RunCounts`), which tally each test's final attempt, as the
run's outcome does."""


class RunCounts(NamedTuple):
    """How many results of each kind a run holds, and their summed duration.

    Failed attempts that were run again (:data:`RETRIED_TAG`) count in ``total``
    (and time) only, not among the outcomes.
    """

    total: int = 0
    """Every stored result, ``exists`` listings and retried attempts included."""
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    xfail: int = 0
    uxsuccess: int = 0
    incomplete: int = 0
    """Tests that started but never reported an outcome (the worker died, the run was cut)."""
    exists: int = 0
    test_ns: int = 0
    """Sum of the durations of the timed results, in nanoseconds."""

    @property
    def ran(self) -> int:
        """Results that are test executions (everything but ``exists``)."""
        return self.total - self.exists

    @property
    def failures(self) -> int:
        """Results that fail a run: ``fail``, ``uxsuccess`` and unfinished tests."""
        return self.failed + self.uxsuccess + self.incomplete

    def plus(self, other: RunCounts) -> RunCounts:
        """The sum of two tallies."""
        return RunCounts(*(mine + theirs for mine, theirs in zip(self, other, strict=True)))

    @staticmethod
    def of(records: Iterable[TestRecord]) -> RunCounts:
        """The tally of some records."""
        counts = [0] * len(RunCounts._fields)
        for record in records:
            counts[0] += 1
            if not (record.tags and RETRIED_TAG in record.tags):
                counts[_STATUS_SLOT[record.status]] += 1
            if is_timed(record):
                counts[8] += record.stop - record.start  # type: ignore[operator]
        return RunCounts(*counts)


_STATUS_SLOT: dict[Status, int] = {
    Status.SUCCESS: 1,
    Status.FAIL: 2,
    Status.SKIP: 3,
    Status.XFAIL: 4,
    Status.UXSUCCESS: 5,
    Status.INPROGRESS: 6,
    Status.NONE: 6,
    Status.EXISTS: 7,
}


class RunInfo(NamedTuple):
    """One stored run: its metadata, state and counts (never its results)."""

    id: int
    metadata: RunMetadata
    counts: RunCounts
    finished_ns: int | None = None
    interrupted: bool = True
    """True when the run was stopped early, or never finished at all (its
    writer crashed, was killed, or is still writing)."""
    first_ns: int | None = None
    """The earliest test timestamp stored for the run."""
    last_ns: int | None = None
    """The latest test timestamp stored for the run."""
    writer: str | None = None
    """``host:pid`` of the process that wrote it (to tell "still running" apart)."""

    @property
    def started_ns(self) -> int:
        """When the run began (always set once stored)."""
        return self.metadata.started_ns or 0

    @property
    def finished(self) -> bool:
        return self.finished_ns is not None

    @property
    def wall_seconds(self) -> float | None:
        """From the first to the last test timestamp, or None without timestamps."""
        if self.first_ns is None or self.last_ns is None:
            return None
        return (self.last_ns - self.first_ns) / NS_PER_SECOND

    @property
    def succeeded(self) -> bool:
        """Finished, not interrupted, something ran, and nothing failed.

        This is what ``proctor last`` turns into its exit code: like stestr, a
        run in which no test ran is not a success.
        """
        return (
            self.finished_ns is not None
            and not self.interrupted
            and self.counts.failures == 0
            and self.counts.ran > 0
        )


class TestStats(NamedTuple):
    """What the history says about one test, maintained as results arrive.

    Durations count only timed, finished executions (see :func:`is_timed`).
    """

    test_id: str
    results: int = 0
    passed: int = 0
    failed: int = 0
    """``fail``, ``uxsuccess`` and unfinished results."""
    skipped: int = 0
    timed: int = 0
    total_ns: int = 0
    min_ns: int | None = None
    max_ns: int | None = None
    last_ns: int | None = None
    expected_ns: float | None = None
    """The exponentially weighted mean duration (see :data:`EWMA_WEIGHT`)."""
    last_run: int | None = None
    """The newest run holding an execution of the test."""

    @property
    def mean(self) -> float | None:
        """Mean duration over history, in seconds."""
        return self.total_ns / self.timed / NS_PER_SECOND if self.timed else None

    @property
    def expected(self) -> float | None:
        """Expected duration of the next execution, in seconds."""
        return None if self.expected_ns is None else self.expected_ns / NS_PER_SECOND


TestStats.__test__ = False  # type: ignore[attr-defined]  # not a pytest test class


class SlowTest(NamedTuple):
    """One row of ``slowest``: a test's duration in a run, beside its history."""

    test_id: str
    duration: float
    """Seconds, in the run asked about (or the historical mean when ranking by it)."""
    stats: TestStats


class HistoryEntry(NamedTuple):
    """One execution of a test, with the run it belongs to."""

    run_id: int
    run_started_ns: int
    git_commit: str | None
    git_branch: str | None
    status: Status
    start_ns: int | None
    duration: float | None
    route_code: str | None


class StoreStats(NamedTuple):
    """The size and shape of a repository, answered from maintained counters."""

    location: str
    backend: str
    schema_version: int
    runs: int
    results: int
    tests: int
    failing: int
    attachments: int
    blobs: int
    blob_bytes: int
    """Bytes of attachment content as stored (compressed, each distinct content once)."""
    raw_attachment_bytes: int
    """Bytes of attachment content as received, counting every copy."""
    size_bytes: int
    """The database's size on disk (file, or PostgreSQL relations), 0 when unknown."""
    first_started_ns: int | None
    last_started_ns: int | None
    interrupted_runs: int


class GarbageReport(NamedTuple):
    """What :meth:`Store.collect_garbage` removed, and the space it gave back."""

    blobs: int = 0
    """Attachment contents deleted (no stored result used them any more)."""
    blob_bytes: int = 0
    freed_bytes: int = 0
    """How much smaller the repository's files became on disk."""
    reusable_bytes: int = 0
    """Space freed inside the files but still allocated to them, for new
    results to reuse (SQLite repositories made before incremental
    auto-vacuum, until a vacuum); 0 when unknown (PostgreSQL)."""
    size_bytes: int = 0
    """The repository's size on disk afterwards (0 when unknown)."""


def failing_change(status: Status) -> bool | None:
    """How a result changes its test's membership of the failing set.

    ``True``: the test is failing now (``fail``, ``uxsuccess``, or it never
    finished: it crashed or hung, so it must be re-run). ``False``: it is not
    (``success``, ``skip``, ``xfail``). ``None``: no news (``exists`` is a
    listing, not an execution). This is testrepository's per-test merge;
    stestr counts only ``fail`` and replaces the whole set after every run.
    """
    if status is Status.EXISTS:
        return None
    return status.is_failure or not status.is_final


def clears_failing(run: RunInfo) -> bool:
    """Whether finishing ``run`` removes from the failing set every test it did
    not run (whose entry is older than it: see docs/store.md).

    Only a run that says it covered the whole suite (``partial=False``),
    finished uninterrupted, and executed at least one test: an empty stream or
    a listing (``exists`` only) loaded with ``--complete`` says nothing about
    which tests exist now, and must not empty the set.
    """
    return (
        run.finished_ns is not None
        and not run.interrupted
        and not run.metadata.partial
        and run.counts.ran > 0
    )


def is_timed(record: TestRecord) -> bool:
    """Whether a result's duration counts towards its test's timings.

    Finished executions with both timestamps: a listing (``exists``) has no
    duration, and a test that never finished stopped at an arbitrary moment.
    """
    return (
        record.start is not None
        and record.stop is not None
        and record.status.is_final
        and record.status is not Status.EXISTS
    )
