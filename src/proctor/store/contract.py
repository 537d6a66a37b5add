"""The store contract: what every repository backend offers, and the run writer.

A :class:`Store` keeps runs and their results and answers the everyday
questions from maintained tables, never by re-reading stored streams. Three
implementations follow the same contract and pass the same tests
(``tests/store/``): SQLite (the default, one file in ``.proctor/``), PostgreSQL
(shared by a team or a CI fleet) and an in-memory fake for other layers' tests.

Required methods of a backend (all abstract below):

* writing: :meth:`Store.begin_run`, :meth:`Store.resume_run`; the returned
  :class:`RunWriter` implements ``_write`` and ``_finish``;
* reading runs: :meth:`Store.run`, :meth:`Store.latest_run`, :meth:`Store.runs`,
  :meth:`Store.records`;
* reading tests: :meth:`Store.failing_ids`, :meth:`Store.failing_records`,
  :meth:`Store.durations`, :meth:`Store.test_stats`, :meth:`Store.slowest`,
  :meth:`Store.test_history`, :meth:`Store.find_tests`;
* housekeeping: :meth:`Store.stats`, :meth:`Store.remove_runs`,
  :meth:`Store.collect_garbage`, :meth:`Store.seed_durations`, :meth:`Store.close`.

Provided on top of those (override only for speed or precision):
:meth:`Store.write_run`, :meth:`Store.writers_alive`, :meth:`Store.select_for_removal`,
:meth:`Store.check_writable`.
"""

from __future__ import annotations

import abc
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType

from proctor.store.errors import WriterClosed
from proctor.store.failures import FailureRow, Sighting, SignatureLike, SignedFailure, Signer
from proctor.store.model import (
    GarbageReport,
    HistoryEntry,
    RunInfo,
    RunMetadata,
    SlowTest,
    StoreStats,
    TestStats,
)
from proctor.wire.event import Status
from proctor.wire.record import TestRecord

__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_FLUSH_INTERVAL",
    "RunWriter",
    "Store",
    "check_limit",
    "writer_alive",
]

DEFAULT_BATCH = 5000
"""Records per write transaction at most. Large batches make ingest fast (one
commit, one statement per table per batch); the interval below bounds how long a
record can wait in memory."""
DEFAULT_FLUSH_INTERVAL = 0.25
"""Seconds: a record that arrives this long after the last write is written at
once, with everything pending. So a run of slow tests is on disk test by test,
and a kill loses at most the last quarter second of a fast burst."""


class RunWriter(abc.ABC):
    """Writes one run as its records stream in.

    Records are buffered and written in transactions of up to ``batch_size``,
    or as soon as ``flush_interval`` has passed since the last write. Each
    transaction is complete in itself (results, attachments, counts, the
    failing set, timings), so a writer killed at any moment leaves a consistent
    run that is marked interrupted and holds every batch written so far. Call
    :meth:`flush` when the stream goes quiet (from a ``select`` timeout, say) to
    put what is pending on disk without waiting for the next record.

    Records come whole: a caller with events assembles them with a
    :class:`~proctor.events.collector.RecordCollector` (one per stream, so that
    closing it stores the tests that stream left running as unfinished) whose
    callback is :meth:`add`.

    Use it as a context manager: an exception (Ctrl-C included) finishes the
    run as interrupted, a normal exit finishes it normally.
    """

    def __init__(
        self,
        run_id: int,
        *,
        batch_size: int = DEFAULT_BATCH,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.run_id = run_id
        self.batch_size = batch_size
        """Records per transaction at most; may be changed at any time."""
        self.flush_interval = flush_interval
        """Seconds after which a new record is written at once with everything pending."""
        self._clock = clock
        self._pending: list[TestRecord] = []
        self._written = 0
        self._last_write = clock()
        self._info: RunInfo | None = None

    # -- records

    def add(self, record: TestRecord) -> None:
        """Store one test's record (written with the next batch)."""
        if self._info is not None:
            raise WriterClosed(
                f"run {self.run_id} is finished; {record.test_id!r} was not stored "
                "(begin a new run, or resume this one)"
            )
        pending = self._pending
        pending.append(record)
        if (
            len(pending) >= self.batch_size
            or self._clock() - self._last_write >= self.flush_interval
        ):
            self.flush()

    def add_many(self, records: Iterable[TestRecord]) -> None:
        """Store several records."""
        for record in records:
            self.add(record)

    def flush(self) -> None:
        """Write everything pending now, in one transaction."""
        if self._pending:
            batch, self._pending = self._pending, []
            try:
                self._write(batch)
            except BaseException:
                self._pending[:0] = batch  # nothing was written: keep it for a retry
                raise
            self._written += len(batch)
        self._last_write = self._clock()

    @property
    def written(self) -> int:
        """Records this writer has committed to the repository so far."""
        return self._written

    @property
    def finished(self) -> bool:
        return self._info is not None

    def finish(self, interrupted: bool = False) -> RunInfo:
        """Write what is pending, mark the run finished (or interrupted) and
        return its summary.

        Finishing twice returns the first summary.
        """
        if self._info is not None:
            return self._info
        self.flush()
        self._info = self._finish(interrupted, time.time_ns())
        return self._info

    def interrupt(self) -> RunInfo | None:
        """Finish the run as interrupted after something went wrong, never raising.

        What is pending is written if it can be; when that fails too (the
        error that stopped the run was most likely a failed write) it is
        dropped, and the run is marked interrupted with what was committed.
        Returns None when even that was impossible (the repository is gone).
        """
        if self._info is not None:
            return self._info
        try:
            return self.finish(interrupted=True)
        except Exception:
            self._pending.clear()
        try:
            return self.finish(interrupted=True)
        except Exception:
            return None

    # -- context manager

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._info is None:
            if exc_type is None:
                self.finish()
            else:
                self.interrupt()  # the exception that stopped the run propagates

    # -- what a backend implements

    @abc.abstractmethod
    def _write(self, records: list[TestRecord]) -> None:
        """Store a batch in one transaction: results, attachments, run counts,
        failing set and test statistics together, or nothing on error."""

    @abc.abstractmethod
    def _finish(self, interrupted: bool, finished_ns: int) -> RunInfo:
        """Mark the run finished; for a complete, uninterrupted run also drop
        from the failing set the tests it did not run. Release resources."""


class Store(abc.ABC):
    """A repository of runs. See the module docstring for the required methods.

    Run ids are positive integers that are never reused, so "run 12" means the
    same run for as long as it is kept. Methods that return several runs or
    results return them newest first unless they say otherwise; a ``limit``
    of 0 returns nothing, and a negative one raises ``ValueError``.
    """

    backend: str = "abstract"
    location: str = ""
    signer: Signer | None = None
    """Signs each failing result as it is stored (see :mod:`proctor.store.failures`);
    None: failures are stored unsigned. The command line sets the triage one."""

    # -- writing

    @abc.abstractmethod
    def begin_run(self, metadata: RunMetadata | None = None) -> RunWriter:
        """Create a run (visible at once, as interrupted until finished) and
        return its writer. ``metadata.started_ns`` defaults to now."""

    @abc.abstractmethod
    def resume_run(self, run_id: int) -> RunWriter:
        """A writer that appends to an existing run (``load --id``): the run is
        unfinished again until the writer finishes. Raises ``UnknownRun``."""

    def write_run(
        self,
        records: Iterable[TestRecord],
        metadata: RunMetadata | None = None,
        *,
        interrupted: bool = False,
    ) -> RunInfo:
        """Store a whole run at once and return its summary (an error on the
        way finishes the run interrupted with what was written, and propagates)."""
        with self.begin_run(metadata) as writer:
            writer.add_many(records)
            return writer.finish(interrupted=interrupted)

    # -- runs

    @abc.abstractmethod
    def run(self, run_id: int) -> RunInfo:
        """The run with that id; raises ``UnknownRun``."""

    @abc.abstractmethod
    def latest_run(self) -> RunInfo | None:
        """The most recently begun run (finished or not), or None when there are none."""

    @abc.abstractmethod
    def runs(
        self,
        *,
        branch: str | None = None,
        commit: str | None = None,
        since_ns: int | None = None,
        until_ns: int | None = None,
        limit: int | None = None,
    ) -> list[RunInfo]:
        """Runs, newest first. ``commit`` matches a prefix of the commit id;
        ``since_ns``/``until_ns`` bound the start time (inclusive/exclusive)."""

    @abc.abstractmethod
    def records(self, run_id: int, *, attachments: bool = True) -> list[TestRecord]:
        """The run's results as records, in the order they were stored.
        Raises ``UnknownRun``."""

    # -- tests

    @abc.abstractmethod
    def failing_ids(self) -> list[str]:
        """Ids of the tests in the failing set, sorted."""

    @abc.abstractmethod
    def failing_records(self) -> list[TestRecord]:
        """For each failing test, the result that made it fail (with its
        attachments), sorted by test id."""

    @abc.abstractmethod
    def durations(self, test_ids: Iterable[str] | None = None) -> dict[str, float]:
        """Expected seconds per test id from history (the weighted mean of
        :class:`TestStats`); ids never timed are absent. ``None``: every test."""

    @abc.abstractmethod
    def test_stats(self, test_ids: Iterable[str]) -> dict[str, TestStats]:
        """The maintained statistics of each known test among ``test_ids``."""

    @abc.abstractmethod
    def slowest(
        self, *, limit: int | None = 10, run_id: int | None = None, by_mean: bool = False
    ) -> list[SlowTest]:
        """The slowest tests of a run (default: the latest), slowest first; or,
        with ``by_mean``, the tests with the largest mean over history."""

    @abc.abstractmethod
    def test_history(self, test_id: str, *, limit: int | None = None) -> list[HistoryEntry]:
        """The test's executions, newest first. Raises ``UnknownTest``."""

    @abc.abstractmethod
    def find_tests(self, fragment: str, *, limit: int = 10) -> list[str]:
        """Known test ids containing ``fragment``, sorted (for "did you mean")."""

    # -- housekeeping

    @abc.abstractmethod
    def stats(self) -> StoreStats:
        """Counts and sizes of the whole repository."""

    @abc.abstractmethod
    def remove_runs(self, run_ids: Iterable[int]) -> list[int]:
        """Delete runs with their results; return the ids that existed.

        Test statistics lose those results' counts and durations; a failing
        entry that came from a removed run is recomputed from the test's latest
        remaining result.
        """

    @abc.abstractmethod
    def collect_garbage(self, *, vacuum: bool = False) -> GarbageReport:
        """Delete attachment contents that no stored result refers to any more,
        and give the space removed runs and contents took back where the
        backend can: SQLite truncates the free pages off its file
        (incremental auto-vacuum), or with ``vacuum`` rewrites it whole
        (``VACUUM``: what a repository made before incremental auto-vacuum
        needs once); PostgreSQL, with ``vacuum``, runs ``VACUUM ANALYZE``."""

    @abc.abstractmethod
    def seed_durations(self, durations: Mapping[str, float]) -> int:
        """Give tests with no timings yet a starting duration (seconds), as
        imported from stestr's ``times.dbm``; return how many were seeded."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections. Writers begun from this store stay usable."""

    def close_at_exit(self) -> None:
        """Like :meth:`close`, for a process about to end: what the end of the
        process releases by itself may be left to it, provided everything
        committed is as safe as :meth:`close` would have made it. By default
        :meth:`close`."""
        self.close()

    def check_writable(self) -> None:
        """Raise a ``StoreError`` saying why when nothing could be stored here
        (a read-only file, a server that refuses writes), changing nothing.

        For a command that is about to produce results: it fails before the
        work rather than after. By default every store is writable."""
        return None

    def writers_alive(self, runs: Iterable[RunInfo]) -> dict[int, bool | None]:
        """For each unfinished run among ``runs``: whether its writer is still
        writing (True), is gone (False: the run is interrupted for good), or
        cannot be checked from here (None: it ran on another host).

        This default reads the ``host:pid`` every run records; PostgreSQL
        overrides it with a lock each writer holds, which any host can see.
        """
        return {info.id: writer_alive(info.writer) for info in runs if not info.finished}

    def select_for_removal(
        self,
        *,
        keep: int | None = None,
        older_than_ns: int | None = None,
        include_running: bool = False,
    ) -> list[RunInfo]:
        """The runs a retention policy would remove: all but the newest
        ``keep``, and those begun before ``older_than_ns``; never a run that
        is still being written, or may be (see :meth:`writers_alive`), unless
        ``include_running``."""
        doomed: dict[int, RunInfo] = {}
        if keep is not None:
            for info in self.runs()[keep:]:
                doomed[info.id] = info
        if older_than_ns is not None:
            for info in self.runs(until_ns=older_than_ns):
                doomed[info.id] = info
        if not include_running:
            for run_id, alive in self.writers_alive(doomed.values()).items():
                if alive is not False:
                    del doomed[run_id]
        return sorted(doomed.values(), key=lambda info: info.id)

    # -- failure signatures (proctor.store.failures; implemented by every backend)

    def failures(self, run_ids: Iterable[int], *, algorithm: str) -> list[FailureRow]:
        """The signed failures (under ``algorithm``) of the runs, newest run first,
        each run's in the order they were stored."""
        raise NotImplementedError

    def sightings(
        self, digests: Iterable[str], *, algorithm: str, before_ns: int, count_runs: int = 0
    ) -> dict[str, Sighting]:
        """For each signature digest ever stored: when it first failed, the
        last time before ``before_ns``, and (with ``count_runs``) in how many
        runs it failed, counted up to ``count_runs`` (0: not counted)."""
        raise NotImplementedError

    def cluster_failures(
        self, cluster: str, *, algorithm: str, limit: int | None = None
    ) -> list[FailureRow]:
        """Every failure of a cluster, newest first (empty: no such cluster)."""
        raise NotImplementedError

    def cluster_ids(self, prefix: str, *, algorithm: str, limit: int | None = None) -> list[str]:
        """The ids of the clusters (under ``algorithm``, with a stored failure)
        that start with ``prefix``, sorted; at most ``limit``."""
        raise NotImplementedError

    def signing_progress(self, algorithm: str) -> tuple[int, int]:
        """How far signing stored failures under ``algorithm`` has come: every
        failing result up to this (run, position) is signed ((0, -1): none is
        known to be), as :meth:`set_signing_progress` last said."""
        raise NotImplementedError

    def set_signing_progress(self, algorithm: str, position: tuple[int, int]) -> None:
        """Record how far signing under ``algorithm`` has come (see :meth:`signing_progress`)."""
        raise NotImplementedError

    def unsigned_failures(
        self, *, algorithm: str, after: tuple[int, int] = (0, -1), limit: int = 1000
    ) -> list[tuple[int, int, TestRecord]]:
        """Up to ``limit`` failing results with no signature under ``algorithm``
        (or one stored without its type and message), as (run, position,
        record), after (run, position) in that order: the chunks of a
        re-clustering."""
        raise NotImplementedError

    def add_signatures(
        self, signed: Sequence[tuple[int, int, SignatureLike | SignedFailure]]
    ) -> int:
        """Give stored results (run, position) a signature (with its type and
        message when a :class:`SignedFailure`), in one transaction; results
        already signed under that algorithm keep theirs, and get the type and
        message if they had none. Returns how many were given either."""
        raise NotImplementedError

    def set_clusters(self, algorithm: str, clusters: Mapping[str, str]) -> None:
        """Set the cluster id of signatures of ``algorithm`` (digest -> cluster id)."""
        raise NotImplementedError

    def result(self, run_id: int, seq: int) -> TestRecord | None:
        """One stored result, with its attachments (None: not stored)."""
        raise NotImplementedError

    def outcomes(self, run_ids: Iterable[int]) -> list[tuple[int, str, Status]]:
        """(run, test id, status) of every result, in those runs, of the tests
        with a signed failure in any of them (what flakiness is judged from)."""
        raise NotImplementedError

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def check_limit(limit: int | None) -> int | None:
    """``limit`` if it is None or a count; a negative one is refused on every
    backend alike (SQLite would read it as "no limit", PostgreSQL as an error)."""
    if limit is not None and limit < 0:
        raise ValueError(f"a limit is a number of rows, 0 or more, not {limit}")
    return limit


def writer_alive(writer: str | None) -> bool | None:
    """Whether the process a run records as its writer (``host:pid``) is alive:
    None when it ran on another host, where this process cannot look."""
    import socket  # only the commands that ask pay for it

    if not writer or ":" not in writer:
        return False
    host, _, pid = writer.rpartition(":")
    if host != socket.gethostname():
        return None
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True
