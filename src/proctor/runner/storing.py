"""Storing a run's results as they arrive: a result shown is a result stored.

:class:`RunStorage` is the record sink the run session
(:mod:`proctor.runner.session`) gives the controller.
Three rules:

* **No empty runs.** The run is begun in the repository at the first result,
  not before: a run in which nothing ran (a filter matching nothing, an empty
  suite, a suite that failed to load, ``--failing`` whose tests are gone)
  stores nothing, so it never hides the last real run from ``last``,
  ``failing`` and ``slowest`` (as stestr stores none).
* **Shown means stored.** The view writes into :class:`HeldOutput`, which
  passes what it holds on to the terminal (or log) only after committing every
  result received so far. So a controller killed with SIGKILL has stored every
  result whose line (or count) reached the screen: what it loses is at most
  results that were never shown. Commits are grouped: one per release of the
  output (the live view draws at most ten times a second; a log is written
  when the controller has caught up with its workers, at most
  :attr:`IdleWrites.BATCH` results or :data:`RELEASE_INTERVAL` apart, or when
  64 KiB of text are held), never one per result.
* **A repository that fails stops storing, not testing.** A write refused
  mid-run (a full disk, a file gone read-only, corrupt pages) is said once;
  the tests go on and are shown, the run keeps what was committed (marked
  interrupted where that can still be written), and ``proctor run`` exits 2.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, AnyStr, BinaryIO, Generic, TextIO, cast

from proctor.store.errors import StoreError

if TYPE_CHECKING:
    from proctor.runner.report import Progress, RunReporter, RunResult
    from proctor.store.contract import RunWriter, Store
    from proctor.store.model import RunInfo, RunMetadata
    from proctor.wire.record import TestRecord

__all__ = [
    "RELEASE_INTERVAL",
    "HeldBytes",
    "HeldOutput",
    "IdleWrites",
    "ReleasingView",
    "RunStorage",
]

RELEASE_INTERVAL = 0.1
"""Seconds: an idle controller releases held output (committing first) at
least this often, so a log follows a slow suite closely."""


class IdleWrites:
    """Stores records through ``writer`` in small transactions, mostly while the
    controller would otherwise wait.

    The writer on its own writes everything pending every quarter second, in one
    transaction: in a fast run that is thousands of records (~4 us each) at
    once, long after the worker sent them: the last batch is written after the
    last test, while the user waits. Here a batch is written whenever the
    controller has caught up with its workers and at least :attr:`BATCH` are
    pending, and in any case once :attr:`MOST` are (the workers' results wait
    in their pipes meanwhile, which hold thousands: see
    :func:`proctor.runner.spawn.widen_pipe`). So the store's work is spread over
    the run, and what is left at the end is at most a few milliseconds of it.
    """

    BATCH = 400
    """Records pending before an idle moment writes them (about 2 ms of work)."""
    MOST = 1000
    """Records pending at most (about 4 ms of work)."""

    def __init__(self, writer: RunWriter) -> None:
        self._writer = writer
        self._added = 0
        self._base = writer.written
        writer.batch_size = min(writer.batch_size, self.MOST)

    def add(self, record: TestRecord) -> None:
        self._writer.add(record)
        self._added += 1

    @property
    def pending(self) -> int:
        """Records added and not yet committed."""
        return self._added - (self._writer.written - self._base)

    def idle(self) -> None:
        if self.pending >= self.BATCH:
            self._writer.flush()


class _Held(Generic[AnyStr]):
    """What :class:`HeldOutput` and :class:`HeldBytes` share: the writes held for
    ``out`` until ``commit()``, let out by :meth:`flush` (commit first) or
    :meth:`release`. Past ``limit`` held units a write flushes, as a full buffer
    would."""

    def __init__(
        self, out: IO[AnyStr], commit: Callable[[], None], limit: int, empty: AnyStr
    ) -> None:
        self.out: IO[AnyStr] = out
        self._commit = commit
        self._limit = limit
        self._empty: AnyStr = empty
        self._held: list[AnyStr] = []
        self._size = 0
        self._closing = False

    @property
    def holding(self) -> bool:
        return bool(self._held)

    def write(self, data: AnyStr) -> int:
        self._held.append(data)
        self._size += len(data)
        if self._size >= self._limit:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self._closing:
            return
        self._commit()
        self.release()

    def release(self) -> None:
        """Write out what is held, committed or not (after storing failed)."""
        if self._held:
            data = self._empty.join(self._held)
            self._held.clear()
            self._size = 0
            self.out.write(data)
        self.out.flush()

    def close(self) -> None:
        """Closing (garbage collection does it too) commits nothing and closes
        nothing underneath; what is still held goes out if it still can."""
        if not self._closing:
            self._closing = True
            with contextlib.suppress(OSError, ValueError):
                if self._held and not self.out.closed:
                    self.release()


class HeldOutput(io.TextIOBase):
    """A text stream whose writes reach ``out`` only after ``commit()``.

    :meth:`flush` (what a view calls when it wants the screen up to date)
    commits, then writes out what it holds. Writes past :attr:`LIMIT` held
    characters flush as a full buffer would.
    """

    LIMIT = 1 << 16

    def __init__(self, out: TextIO, commit: Callable[[], None]) -> None:
        super().__init__()
        self._held: _Held[str] = _Held(out, commit, self.LIMIT, "")

    @property
    def holding(self) -> bool:
        return self._held.holding

    def write(self, text: str) -> int:
        return self._held.write(text)

    def flush(self) -> None:
        self._held.flush()

    def release(self) -> None:
        """Write out what is held, committed or not (after storing failed)."""
        self._held.release()

    def close(self) -> None:
        self._held.close()
        super().close()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self._held.out.isatty()

    def fileno(self) -> int:
        return self._held.out.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return cast(TextIO, self._held.out).encoding

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return cast(TextIO, self._held.out).errors


class HeldBytes(io.BufferedIOBase):
    """:class:`HeldOutput` for a byte stream (``--subunit``'s stdout)."""

    LIMIT = 1 << 20

    def __init__(self, out: BinaryIO, commit: Callable[[], None]) -> None:
        super().__init__()
        self._held: _Held[bytes] = _Held(out, commit, self.LIMIT, b"")

    @property
    def holding(self) -> bool:
        return self._held.holding

    def write(self, data: bytes) -> int:  # type: ignore[override]
        return self._held.write(bytes(data))

    def flush(self) -> None:
        self._held.flush()

    def release(self) -> None:
        self._held.release()

    def close(self) -> None:
        self._held.close()
        super().close()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self._held.out.isatty()

    def fileno(self) -> int:
        return self._held.out.fileno()


class RunStorage:
    """Writes one ``proctor run`` into ``store`` (see the module docstring).

    Give :meth:`add` to the controller as a record sink and :meth:`idle` as its
    idle callback, let the view write to :meth:`hold` (``out``), and end with
    :meth:`finish` (or :meth:`interrupt` when the run was cut short). ``notice``
    tells the user that storing failed, once.
    """

    def __init__(
        self,
        store: Store,
        metadata: RunMetadata,
        *,
        notice: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        resume: int | None = None,
    ) -> None:
        self._store = store
        self._metadata = metadata
        self._resume = resume  # --combine: the stored run the results are added to
        self._notice = notice
        self._clock = clock
        self._writes: IdleWrites | None = None
        self._outputs: list[HeldOutput | HeldBytes] = []
        self._released = clock()
        self._finishing = False
        self.error: StoreError | None = None
        """Why storing stopped, if it did."""

    @property
    def writer(self) -> RunWriter | None:
        """The run's writer, once the first result began the run."""
        return None if self._writes is None else self._writes._writer

    def hold(self, out: TextIO) -> TextIO:
        """``out`` as the view must write to it: text held until the results
        it shows are committed."""
        held = HeldOutput(out, self.commit)
        self._outputs.append(held)
        return held  # type: ignore[return-value]  # a TextIO in all but name

    def hold_bytes(self, out: BinaryIO) -> BinaryIO:
        """``out`` (a result stream's) held the same way."""
        held = HeldBytes(out, self.commit)
        self._outputs.append(held)
        return held  # type: ignore[return-value]  # a BinaryIO in all but name

    def set_notice(self, notice: Callable[[str], None]) -> None:
        self._notice = notice

    # -- the controller's callbacks

    def add(self, record: TestRecord) -> None:
        if self.error is not None:
            return
        try:
            writes = self._writes
            if writes is None:
                store = self._store
                writer = (
                    store.begin_run(self._metadata)
                    if self._resume is None
                    else store.resume_run(self._resume)
                )
                writes = self._writes = IdleWrites(writer)
            writes.add(record)
        except StoreError as error:
            self._failed(error)

    def idle(self) -> None:
        """The controller caught up with its workers: write a batch if one is
        due, and let the output follow."""
        writes = self._writes
        due = writes is not None and writes.pending >= IdleWrites.BATCH
        if not self.release_due(force=due) and due:
            self.commit()

    def release_due(self, *, force: bool = False) -> bool:
        """Let out held output (committing first) if :data:`RELEASE_INTERVAL`
        has passed since the last release; say whether anything was."""
        if not any(output.holding for output in self._outputs):
            return False
        if not force and self._clock() - self._released < RELEASE_INTERVAL:
            return False
        for output in self._outputs:
            output.flush()  # the first one commits
        return True

    def commit(self) -> None:
        """Write every result received so far (the output is about to show them)."""
        self._released = self._clock()
        writes = self._writes
        if writes is None or self.error is not None or not writes.pending:
            return
        try:
            writes._writer.flush()
        except StoreError as error:
            self._failed(error)

    # -- the end

    def finish(self, interrupted: bool) -> RunInfo | None:
        """Finish the run (None when none was begun, or storing failed), and
        let out whatever output is still held."""
        try:
            return self._finish(interrupted)
        finally:
            for output in self._outputs:
                output.release()  # all of it is stored now (or storing failed)

    def _finish(self, interrupted: bool) -> RunInfo | None:
        writer = self.writer
        if writer is None or self.error is not None:
            return None
        self._finishing = True
        try:
            return writer.finish(interrupted=interrupted)
        except StoreError as error:
            self._failed(error)
            return None

    def interrupt(self) -> None:
        """Finish the run as interrupted, never raising; let out what is held."""
        writer = self.writer
        if writer is not None:
            writer.interrupt()
        for output in self._outputs:
            output.release()

    def _failed(self, error: StoreError) -> None:
        self.error = error
        writer = self.writer
        stored = 0
        if writer is not None:
            stored = writer.written
            writer.interrupt()  # what was committed stays, marked interrupted if possible
        kept = (
            f"run {writer.run_id} keeps the {stored} results stored before it"
            if writer is not None and stored
            else "nothing of this run was stored"
        )
        message = f"cannot store results: {error}; {kept}."
        if not self._finishing:
            message += " The tests go on without being stored."
        if self._notice is not None:
            self._notice(message)


class ReleasingView:
    """``view``, with a tick at least every :data:`RELEASE_INTERVAL` that lets
    ``storage``'s held output out: while the controller waits on a long test,
    the lines of the tests before it are on the screen (and in the store)."""

    def __init__(self, view: RunReporter, storage: RunStorage) -> None:
        self._view = view
        self._storage = storage
        inner = view.tick_interval
        self.tick_interval: float | None = (
            RELEASE_INTERVAL if inner is None else min(inner, RELEASE_INTERVAL)
        )

    def tick(self) -> None:
        self._storage.release_due()
        self._view.tick()

    def planned(self, progress: Progress) -> None:
        self._view.planned(progress)

    def record(self, record: TestRecord) -> None:
        self._view.record(record)

    def output(self, worker: int | None, data: bytes) -> None:
        self._view.output(worker, data)

    def notice(self, text: str) -> None:
        self._view.notice(text)

    def debug_start(self, test_id: str, worker: int, so_far: bytes) -> None:
        self._view.debug_start(test_id, worker, so_far)

    def debug_output(self, data: bytes) -> None:
        self._view.debug_output(data)

    def debug_end(self, test_id: str) -> None:
        self._view.debug_end(test_id)

    def finished(self, result: RunResult) -> None:
        self._view.finished(result)
