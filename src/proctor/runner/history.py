"""What the runner needs to know about earlier runs, and nothing more.

The scheduler wants expected durations, ``--failing`` wants the ids that failed
last, and ``--isolate`` wants the order tests ran in on each worker in the last
run. The run-history store (``proctor.store``) answers all three; the runner
depends only on this small protocol so that it can be tested with an in-memory
history and so that the store can change underneath it.

:class:`RecordsHistory` builds the answers from the records of one run; it is
what the tests use, and what a caller can use when it has a run's results but
no store.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol

from proctor.wire.event import Status
from proctor.wire.record import TestRecord

if TYPE_CHECKING:
    from proctor.store.contract import Store

__all__ = ["EMPTY_HISTORY", "History", "RecordsHistory", "StoreHistory", "worker_sequences"]


class History(Protocol):
    """Read access to earlier runs.

    Required methods: :meth:`durations`, :meth:`failing_ids`, :meth:`last_run`,
    :meth:`expected_total`.
    """

    def durations(self, ids: Iterable[str]) -> dict[str, float]:
        """Expected seconds for those of ``ids`` that have run before (others are left out)."""
        ...

    def failing_ids(self) -> list[str]:
        """Ids of the tests that are failing now (failed the last time they ran)."""
        ...

    def last_run(self) -> Sequence[TestRecord]:
        """The records of the latest run, with route codes and timestamps (empty if none)."""
        ...

    def expected_total(self) -> float | None:
        """Seconds the whole known suite is expected to take, or None when nothing is
        known (decides how many workers are worth starting, before the listing)."""
        ...


class RecordsHistory:
    """A history made of the records of runs, oldest first, kept in memory.

    Durations are those of the latest run a test appeared in; a test is failing
    when its latest result was ``fail`` or ``uxsuccess`` (so a partial run only
    changes the tests it ran, as in testrepository).
    """

    def __init__(self, runs: Iterable[Sequence[TestRecord]] = ()) -> None:
        self._runs: list[Sequence[TestRecord]] = []
        self._durations: dict[str, float] = {}
        self._failing: dict[str, None] = {}
        for run in runs:
            self.add_run(run)

    def add_run(self, records: Sequence[TestRecord]) -> None:
        """Record one more run."""
        self._runs.append(records)
        for record in records:
            if not record.finished or record.status is Status.EXISTS:
                continue
            duration = record.duration
            if duration is not None:
                self._durations[record.test_id] = duration
            if record.status.is_failure:
                self._failing[record.test_id] = None
            else:
                self._failing.pop(record.test_id, None)

    def durations(self, ids: Iterable[str]) -> dict[str, float]:
        known = self._durations
        return {test_id: known[test_id] for test_id in ids if test_id in known}

    def failing_ids(self) -> list[str]:
        return list(self._failing)

    def last_run(self) -> Sequence[TestRecord]:
        return self._runs[-1] if self._runs else ()

    def expected_total(self) -> float | None:
        return sum(self._durations.values()) if self._durations else None


EMPTY_HISTORY: History = RecordsHistory()
"""A history with nothing in it (first run, or no store)."""


class StoreHistory:
    """The history kept in the run repository (:mod:`proctor.store`).

    Durations are the store's expected durations (a weighted mean over runs);
    the failing set is the store's, which partial runs update test by test.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._all: dict[str, float] | None = None  # every duration, once fetched

    def durations(self, ids: Iterable[str]) -> dict[str, float]:
        known = self._all
        if known is None:
            return self._store.durations(ids)
        # Fetched already for expected_total: one query per run, not two (planning a
        # 5,000-test run waited ~10 ms on the second, between the listing and the
        # first batch).
        return {test_id: known[test_id] for test_id in ids if test_id in known}

    def failing_ids(self) -> list[str]:
        return self._store.failing_ids()

    def last_run(self) -> Sequence[TestRecord]:
        latest = self._store.latest_run()
        if latest is None:
            return ()
        return self._store.records(latest.id, attachments=False)

    def expected_total(self) -> float | None:
        known = self._all = self._store.durations(None)
        return sum(known.values()) if known else None


def worker_sequences(records: Iterable[TestRecord]) -> dict[str, list[str]]:
    """Per worker, the ids it ran in the order it started them.

    The worker is the first segment of the route code (or stestr's
    ``worker-N`` tag). Tests without a start time keep their stream order.
    """
    by_worker: dict[str, list[tuple[int, int, str]]] = {}
    for position, record in enumerate(records):
        worker = record.worker
        if worker is None or record.status is Status.EXISTS:
            continue
        entries = by_worker.setdefault(worker, [])
        # No timestamp: place it right after the test before it in the stream.
        start = record.start if record.start is not None else (entries[-1][0] if entries else -1)
        entries.append((start, position, record.test_id))
    return {
        worker: [test_id for _, _, test_id in sorted(entries)]
        for worker, entries in by_worker.items()
    }
