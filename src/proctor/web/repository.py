"""The store's reading half: all the dashboard may touch.

The dashboard holds a :class:`ReadOnlyRepository`, never the :class:`Store`,
so no page can write, remove or collect garbage, whatever a request asks. It
also serialises the calls: the server answers requests on several threads, and
a backend's connection is one.

It opens the repository with ``create=False``: pointing ``proctor ui`` at a
place with no history explains itself instead of creating an empty repository.
(A store option to open the database itself read-only, SQLite ``mode=ro`` and a
PostgreSQL ``READ ONLY`` session, would add a second guard below this one; the
store's contract does not offer it yet.)
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from proctor.store.contract import Store
from proctor.store.model import HistoryEntry, RunInfo, SlowTest, StoreStats, TestStats
from proctor.wire.record import TestRecord

__all__ = ["ReadOnlyRepository", "open_readonly"]


class ReadOnlyRepository:
    """The reading methods of a :class:`Store`, one call at a time."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self.location = store.location
        self.backend = store.backend

    def run(self, run_id: int) -> RunInfo:
        with self._lock:
            return self._store.run(run_id)

    def latest_run(self) -> RunInfo | None:
        with self._lock:
            return self._store.latest_run()

    def runs(
        self,
        *,
        branch: str | None = None,
        commit: str | None = None,
        since_ns: int | None = None,
        until_ns: int | None = None,
        limit: int | None = None,
    ) -> list[RunInfo]:
        with self._lock:
            return self._store.runs(
                branch=branch, commit=commit, since_ns=since_ns, until_ns=until_ns, limit=limit
            )

    def records(self, run_id: int, *, attachments: bool = True) -> list[TestRecord]:
        with self._lock:
            return self._store.records(run_id, attachments=attachments)

    def test_history(self, test_id: str, *, limit: int | None = None) -> list[HistoryEntry]:
        with self._lock:
            return self._store.test_history(test_id, limit=limit)

    def test_stats(self, test_ids: Iterable[str]) -> dict[str, TestStats]:
        with self._lock:
            return self._store.test_stats(test_ids)

    def find_tests(self, fragment: str, *, limit: int = 10) -> list[str]:
        with self._lock:
            return self._store.find_tests(fragment, limit=limit)

    def slowest(self, *, limit: int | None = 10, run_id: int | None = None) -> list[SlowTest]:
        with self._lock:
            return self._store.slowest(limit=limit, run_id=run_id)

    def writers_alive(self, runs: Iterable[RunInfo]) -> dict[int, bool | None]:
        with self._lock:
            return self._store.writers_alive(runs)

    def stats(self) -> StoreStats:
        with self._lock:
            return self._store.stats()

    def close(self) -> None:
        with self._lock:
            self._store.close()


def open_readonly(url: str) -> ReadOnlyRepository:
    """The repository at ``url`` for reading; ``RepositoryNotFound`` when there is none."""
    from proctor.store.opening import open_store

    return ReadOnlyRepository(open_store(url, create=False))
