"""A running summary of a stream: counts, wall time, failures.

:class:`Summary` is a sink that keeps constant memory per finished test (it
remembers only the ids of failures, never their details), so ``stats`` over a
gigabyte stream stays flat.

Counting rules, compared with testtools' ``StreamSummary``:

* ``exists`` events are enumeration, not runs: counted apart, not as tests.
* A test is keyed by (id, route code); each final status completes one run.
* ``uxsuccess`` fails the run (StreamSummary does not count it; its own
  docstring says it should).
* A test started but never finished (the worker died, the stream was cut)
  fails the run and is listed in :attr:`Summary.unfinished`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from proctor.wire.event import INTERIM, NS_PER_SECOND, Event, Status

__all__ = ["Failure", "Summary", "outcome_line"]


@dataclass(frozen=True, slots=True)
class Failure:
    """A test that failed the run."""

    test_id: str
    route_code: str | None
    status: Status  # FAIL, UXSUCCESS, or INPROGRESS/NONE for unfinished tests


class Summary:
    """A sink counting outcomes; see the module docstring for the rules."""

    def __init__(self, *, keep_failures: bool = True) -> None:
        """``keep_failures=False`` counts failures without remembering which
        tests they were: memory then stays flat even for a stream with millions
        of failures (``stats`` shows only counts)."""
        self._keep_failures = keep_failures
        self.failed_count = 0  # fail + uxsuccess, whether remembered or not
        self.counts: dict[Status, int] = dict.fromkeys(Status, 0)
        self.failures: list[Failure] = []
        self.unfinished: list[Failure] = []
        self.tags: set[str] = set()
        self.first_timestamp: int | None = None
        self.last_timestamp: int | None = None
        self.test_time_ns = 0  # sum of the durations of finished tests
        self._open: dict[tuple[str, str | None], int | None] = {}  # key -> start ns
        self.closed = False

    def send(self, event: Event) -> None:
        timestamp = event.timestamp
        if timestamp is not None:
            if self.first_timestamp is None or timestamp < self.first_timestamp:
                self.first_timestamp = timestamp
            if self.last_timestamp is None or timestamp > self.last_timestamp:
                self.last_timestamp = timestamp
        test_id = event.test_id
        if test_id is None:
            return
        if event.tags:
            self.tags.update(event.tags)
        status = event.status
        key = (test_id, event.route_code)
        if status in INTERIM:
            start = self._open.get(key)
            if start is None:
                self._open[key] = timestamp
            return
        start = self._open.pop(key, None)
        self.counts[status] += 1
        if start is not None and timestamp is not None:
            self.test_time_ns += timestamp - start
        if status is Status.FAIL or status is Status.UXSUCCESS:
            self.failed_count += 1
            if self._keep_failures:
                self.failures.append(Failure(test_id, event.route_code, status))

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for test_id, route_code in self._open:
            self.unfinished.append(Failure(test_id, route_code, Status.INPROGRESS))
        self._open.clear()

    @property
    def tests_run(self) -> int:
        """Tests that ran to a final status, plus unfinished ones (not ``exists``)."""
        ran = sum(n for status, n in self.counts.items() if status > Status.EXISTS)
        return ran + len(self.unfinished)

    @property
    def failed(self) -> int:
        """fail + uxsuccess + unfinished."""
        return self.failed_count + len(self.unfinished)

    @property
    def successful(self) -> bool:
        """True when nothing failed, nothing was left unfinished."""
        return not self.failed_count and not self.unfinished and not self._open

    @property
    def wall_time(self) -> float | None:
        """Seconds from the first to the last timestamp in the stream."""
        if self.first_timestamp is None or self.last_timestamp is None:
            return None
        return (self.last_timestamp - self.first_timestamp) / NS_PER_SECOND

    def outcome_line(self) -> str:
        """``N passed, N failed, N skipped`` (see :func:`outcome_line`)."""
        return outcome_line(self.counts, len(self.unfinished))


def outcome_line(counts: Mapping[Status, int], unfinished: int = 0, not_run: int = 0) -> str:
    """``N passed, N failed, N skipped``, then xfailed, unexpectedly passed,
    unfinished and not run when there are any: the closing line of every view."""
    parts = [
        f"{counts[Status.SUCCESS]} passed",
        f"{counts[Status.FAIL]} failed",
        f"{counts[Status.SKIP]} skipped",
    ]
    if counts[Status.XFAIL]:
        parts.append(f"{counts[Status.XFAIL]} xfailed")
    if counts[Status.UXSUCCESS]:
        parts.append(f"{counts[Status.UXSUCCESS]} unexpectedly passed")
    if unfinished:
        parts.append(f"{unfinished} unfinished")
    if not_run:
        parts.append(f"{not_run} not run")
    return ", ".join(parts)
