"""A build's shared test queue in a PostgreSQL repository (``proctor run --queue BUILD``).

N CI jobs started with the same build id share one queue: the first to arrive
fills it with the build's tests in the order the history plans (longest first),
every job then claims batches from it, and the build is done when every test is.

How the rows move, and why:

* **Claims** take rows with ``FOR UPDATE SKIP LOCKED``: jobs claiming at once
  never wait on each other and never get the same row.
* **Leases, on the database's clock.** A claimed row carries ``lease_until``
  (``clock_timestamp()`` plus the lease); the job renews its leases while it
  works. A job that dies, hangs or loses the network stops renewing, and its
  rows become claimable again when the lease runs out, by whichever job asks
  next. The server's clock is the only one compared, so CI machines whose
  clocks disagree cannot steal each other's work early.
* **Done is conditional.** A job marks a row done only while it still holds
  it; a job whose lease ran out (it was slow, not dead) learns that its result
  came second, so the build keeps one result per test.
* **Attempts are counted.** A row whose lease ran out ``max_attempts`` times
  (its jobs keep dying on it) is *abandoned*: handed once more, as a culprit to
  report, never retried forever.
* **Batches shrink.** A claim takes about ``1 / (4 x workers)`` of the expected
  time still claimable, longest first (the queue's order), at least one test;
  ``workers`` is the build's: each job registers its own on its first claim, and
  they count at least :data:`ASSUMED_JOBS` times the claiming job's, since the
  first job claims before the others arrive. Early batches are big (few round
  trips), the last ones small, so the jobs run dry together and no job is left
  holding a long test at the end. A late job just takes less.
* **Wake-ups, not polls.** The job whose results finish the build, and a job
  that gives tests back, say so with ``NOTIFY`` on the build's channel; the
  jobs waiting on the others listen on it (:meth:`BuildQueue.listen`) and
  ask again at once (a lease that runs out, they wait for by the clock).
* **Joining checks.** The build row records the revision, the environment and a
  digest of the selected ids; a job that differs is refused with what differs,
  so one build never mixes two versions of the code or two selections.

The tables live beside the repository's (the connection's ``search_path``);
they are created on first use under an advisory lock, so jobs starting
together do not race.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from proctor.store.errors import StoreError, StoreUnavailable

__all__ = [
    "BuildMismatch",
    "BuildQueue",
    "Claim",
    "QueueState",
    "selection_digest",
]

_SCHEMA_LOCK = 0x70717565  # "pque": taken while creating the tables
BATCHES_PER_WORKER = 4
ASSUMED_JOBS = 4
"""Batches are sized for at least this many times the claiming job's workers: the
first job claims before the others have registered theirs, and a batch sized for
it alone would hold the longest tests on one worker. More jobs than this are
counted as they register (on their first claim)."""
MIN_CLAIM_SECONDS = 0.05
"""Expected seconds below which a batch is not made smaller (each claim is a round
trip to the database; a worker's next batch is claimed before it runs dry)."""
CLAIM_TRIES = 20
"""Claims tried before giving up for now: each passes over the rows the one before
found taken (the caller asks again later; nothing is lost)."""
MAX_CLAIM_ROWS = 500  # rows examined per claim; enough for any batch of one worker

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS build_queues (
        build TEXT PRIMARY KEY,
        revision TEXT NOT NULL,
        environment TEXT NOT NULL,
        selection TEXT NOT NULL,
        tests INTEGER NOT NULL,
        created TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
    )""",
    """CREATE TABLE IF NOT EXISTS build_queue_items (
        build TEXT NOT NULL REFERENCES build_queues (build) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        test TEXT NOT NULL,
        expected DOUBLE PRECISION NOT NULL,
        state SMALLINT NOT NULL DEFAULT 0,
        holder TEXT,
        lease_until TIMESTAMPTZ,
        attempts INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (build, seq),
        UNIQUE (build, test)
    )""",
    "CREATE INDEX IF NOT EXISTS build_queue_items_open "
    "ON build_queue_items (build, seq) WHERE state < 2",
    """CREATE TABLE IF NOT EXISTS build_queue_jobs (
        build TEXT NOT NULL REFERENCES build_queues (build) ON DELETE CASCADE,
        job TEXT NOT NULL,
        workers INTEGER NOT NULL,
        PRIMARY KEY (build, job)
    )""",
)
_NEWEST_TABLE = "build_queue_jobs"  # absent: the tables are created (or completed)

QUEUED, LEASED, DONE, ABANDONED = 0, 1, 2, 3


class BuildMismatch(StoreError):
    """A job that differs from the build it joins (revision, environment, selection)."""


def _channel(build: str) -> str:
    """The build's ``LISTEN``/``NOTIFY`` channel (an identifier: a digest of the id)."""
    return (
        "proctor_queue_" + hashlib.sha256(build.encode("utf-8", "surrogateescape")).hexdigest()[:32]
    )


def selection_digest(test_ids: Iterable[str]) -> str:
    """A digest of the selected ids (order-free): what every job of a build must agree on."""
    digest = hashlib.sha256()
    for test_id in sorted(test_ids):
        digest.update(test_id.encode("utf-8", "surrogateescape") + b"\0")
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Claim:
    """What one claim gave this job: tests to run (``ids`` with their expected
    seconds), and tests abandoned after too many lost leases (to report as
    failed, not to run); and the build as the claim found it: the expected
    seconds still claimable (these tests' included) and the workers its jobs
    have registered so far (for a job's share of the time left)."""

    ids: tuple[str, ...]
    expected: tuple[float, ...]
    abandoned: tuple[str, ...] = ()
    left: float = 0.0
    registered_workers: int = 0

    def __bool__(self) -> bool:
        return bool(self.ids or self.abandoned)


@dataclass(frozen=True, slots=True)
class QueueState:
    """The build's queue now: how many tests are queued, held (by this job and
    by others, and how many of those leases have run out), done, abandoned; and
    the seconds until the first live lease of another job runs out."""

    total: int
    queued: int
    mine: int
    others: int
    expired: int
    done: int
    abandoned: int
    next_expiry_s: float | None

    @property
    def finished(self) -> bool:
        """Nothing left to run or to wait for."""
        return self.queued == self.mine == self.others == 0


class BuildQueue:
    """One job's handle on a build's queue (one connection; not thread-safe)."""

    def __init__(
        self,
        url: str,
        build: str,
        job: str,
        *,
        lease_s: float = 60.0,
        max_attempts: int = 3,
        connect_timeout: int = 10,
    ) -> None:
        _check_name("build id", build, "the CI pipeline's id, say")
        _check_name("job name", job, "PROCTOR_JOB, unique in the build")
        self.build = build
        self.job = job
        self.lease_s = lease_s
        self.max_attempts = max_attempts
        self._registered: int | None = None  # the workers this job registered
        self._conn = _connect(url, connect_timeout)
        self._ensure_tables()

    def close(self) -> None:
        self._conn.close()

    # -- joining ---------------------------------------------------------------------

    def join(
        self,
        planned: Sequence[tuple[str, float]],
        *,
        revision: str,
        environment: str,
    ) -> bool:
        """Join the build, filling its queue with ``planned`` (test id, expected
        seconds, in the order to run) when this job is the first. Returns True
        for the job that filled it. Raises :class:`BuildMismatch` when the build
        was started with another revision, environment or selection."""
        digest = selection_digest(test_id for test_id, _ in planned)
        with self._transaction() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.build,))
            row = cur.execute(
                "SELECT revision, environment, selection, tests FROM build_queues WHERE build = %s",
                (self.build,),
            ).fetchone()
            if row is not None:
                self._check_same(row, revision, environment, digest, len(planned))
                return False
            cur.execute(
                "INSERT INTO build_queues (build, revision, environment, selection, tests) "
                "VALUES (%s, %s, %s, %s, %s)",
                (self.build, revision, environment, digest, len(planned)),
            )
            with cur.copy("COPY build_queue_items (build, seq, test, expected) FROM STDIN") as copy:
                for seq, (test_id, expected) in enumerate(planned):
                    copy.write_row((self.build, seq, test_id, float(expected)))
            return True

    def _check_same(
        self, row: tuple[Any, ...], revision: str, environment: str, digest: str, count: int
    ) -> None:
        their_revision, their_environment, their_selection, their_count = row
        if their_revision != revision:
            raise BuildMismatch(
                f"build {self.build!r} runs revision {their_revision[:12]}, this job has "
                f"{revision[:12]}: a job joins only the build of its own commit (use a new "
                "build id per pipeline run)"
            )
        if their_environment != environment:
            raise BuildMismatch(
                f"build {self.build!r} was started in another environment (Python or "
                "installed packages differ): every job of a build must install the same ones"
            )
        if their_selection != digest:
            raise BuildMismatch(
                f"build {self.build!r} was started with another selection of tests "
                f"({their_count} tests; this job selects {count}): a build id is reused with "
                "different filters. Give every job the same arguments, or a new build id"
            )

    # -- claiming and finishing ------------------------------------------------------

    def claim(self, workers: int) -> Claim:
        """The next batch for this job's ``workers``: about a 1 / (4 x the build's
        workers) share of the expected time still claimable, longest first, at
        least one test (the build's workers: every job's, as registered, and at
        least :data:`ASSUMED_JOBS` times this job's).

        The batch is chosen from the first claimable rows read without locks, and
        only the chosen rows are locked (``SKIP LOCKED``): a claim never holds
        rows it does not take, so jobs claiming at once each get their own. A row
        another job took meanwhile is skipped; the claim tries again when it got
        nothing that way."""
        contended: list[int] = []
        for _ in range(CLAIM_TRIES):
            claim = self._claim_once(workers, contended)
            if claim is not None:
                return claim
        return Claim((), ())

    def _claim_once(self, workers: int, contended: list[int]) -> Claim | None:
        """A claim, or None when every row chosen was taken meanwhile (those rows
        are added to ``contended``, which the next try passes over).

        Two statements, each atomic on its own (no transaction round trips: a
        claim is on the way of a worker's next batch): the first reads, the second
        locks what is still claimable of the chosen rows and takes it."""
        workers = max(1, workers)
        with self._statements() as cur:
            if self._registered != workers:
                cur.execute(
                    "INSERT INTO build_queue_jobs (build, job, workers) VALUES (%s, %s, %s) "
                    "ON CONFLICT (build, job) DO UPDATE SET workers = EXCLUDED.workers",
                    (self.build, self.job, workers),
                )
                self._registered = workers
            # The first claimable rows, the expected seconds of all of them (the
            # window is computed before the LIMIT) and the build's workers.
            rows = cur.execute(
                "SELECT seq, test, expected, attempts, state, sum(expected) OVER (), "
                "(SELECT sum(workers) FROM build_queue_jobs WHERE build = %s) "
                "FROM build_queue_items "
                "WHERE build = %s AND state < 2 "
                "AND (state = 0 OR lease_until < clock_timestamp()) AND seq <> ALL(%s) "
                "ORDER BY seq LIMIT %s",
                (self.build, self.build, contended, MAX_CLAIM_ROWS),
            ).fetchall()
            if not rows:
                return Claim((), ())
            left, registered = float(rows[0][5]), int(rows[0][6] or 0)
            build_workers = max(registered, ASSUMED_JOBS * workers)
            target = max(left / (BATCHES_PER_WORKER * build_workers), MIN_CLAIM_SECONDS)
            chosen: dict[int, tuple[str, float]] = {}
            total = 0.0
            for seq, test_id, expected, attempts, state, _, _ in rows:
                culprit = state == LEASED and attempts >= self.max_attempts
                if not culprit and chosen and total + expected > target:
                    break
                chosen[seq] = (test_id, expected)
                total += 0.0 if culprit else expected
            # Judged on the rows as locked: one given back meanwhile is no culprit
            # (the expressions of SET read the row before the update).
            took = cur.execute(
                "UPDATE build_queue_items AS item SET "
                "state = CASE WHEN item.state = 1 AND item.attempts >= %(max)s "
                "THEN 3 ELSE 1 END, "
                "holder = %(job)s, "
                "attempts = item.attempts + CASE WHEN item.state = 1 "
                "AND item.attempts >= %(max)s THEN 0 ELSE 1 END, "
                "lease_until = CASE WHEN item.state = 1 AND item.attempts >= %(max)s "
                "THEN NULL ELSE clock_timestamp() + make_interval(secs => %(lease)s) END "
                "FROM (SELECT seq FROM build_queue_items "
                "WHERE build = %(build)s AND seq = ANY(%(chosen)s) AND state < 2 "
                "AND (state = 0 OR lease_until < clock_timestamp()) "
                "ORDER BY seq FOR UPDATE SKIP LOCKED) AS locked "
                "WHERE item.build = %(build)s AND item.seq = locked.seq "
                "RETURNING item.seq, item.state",
                {
                    "max": self.max_attempts,
                    "job": self.job,
                    "lease": self.lease_s,
                    "build": self.build,
                    "chosen": list(chosen),
                },
            ).fetchall()
        if not took:
            contended.extend(chosen)
            return None
        taken = sorted(seq for seq, state in took if state == LEASED)
        abandoned = sorted(seq for seq, state in took if state == ABANDONED)
        return Claim(
            tuple(chosen[seq][0] for seq in taken),
            tuple(chosen[seq][1] for seq in taken),
            tuple(chosen[seq][0] for seq in abandoned),
            left,
            registered,
        )

    def renew(self) -> int:
        """Extend every lease this job holds; how many it still holds (a lease that
        ran out and was claimed by another job is not this job's any more)."""
        with self._transaction() as cur:
            cur.execute(
                "UPDATE build_queue_items "
                "SET lease_until = clock_timestamp() + make_interval(secs => %s) "
                "WHERE build = %s AND holder = %s AND state = 1",
                (self.lease_s, self.build, self.job),
            )
            return int(cur.rowcount)

    def done(self, test_ids: Sequence[str], *, notify: bool = False) -> set[str]:
        """Mark these tests done; the ones this job still held (the others' results
        came second: another job took them over when this job's lease ran out).
        ``notify``: when that finishes the build, wake the jobs waiting on it."""
        if not test_ids:
            return set()
        with self._transaction() as cur:
            rows = cur.execute(
                "UPDATE build_queue_items SET state = 2, lease_until = NULL "
                "WHERE build = %s AND holder = %s AND state = 1 AND test = ANY(%s) "
                "RETURNING test",
                (self.build, self.job, list(test_ids)),
            ).fetchall()
            if notify and rows:
                (finished,) = cur.execute(
                    "SELECT NOT EXISTS (SELECT 1 FROM build_queue_items "
                    "WHERE build = %s AND state < 2)",
                    (self.build,),
                ).fetchone()
                if finished:
                    self._notify(cur)
        return {test_id for (test_id,) in rows}

    def give_back(self, test_ids: Sequence[str] | None = None) -> int:
        """Return tests this job holds (all of them by default: the job stops, and
        no longer counts among the build's workers) to the queue, for another worker
        or job: a stopped job gives its work back at once rather than when its
        leases run out. How many went back; the waiting jobs are woken to take them."""
        with self._transaction() as cur:
            if test_ids is None:
                cur.execute(
                    "UPDATE build_queue_items SET state = 0, holder = NULL, lease_until = NULL "
                    "WHERE build = %s AND holder = %s AND state = 1",
                    (self.build, self.job),
                )
                count = int(cur.rowcount)
                cur.execute(
                    "DELETE FROM build_queue_jobs WHERE build = %s AND job = %s",
                    (self.build, self.job),
                )
                self._registered = None
            else:
                cur.execute(
                    "UPDATE build_queue_items SET state = 0, holder = NULL, lease_until = NULL "
                    "WHERE build = %s AND holder = %s AND state = 1 AND test = ANY(%s)",
                    (self.build, self.job, list(test_ids)),
                )
                count = int(cur.rowcount)
            if count:
                self._notify(cur)
            return count

    # -- waking the waiting jobs -----------------------------------------------------

    def listen(self) -> None:
        """Receive the build's notifications on this connection (see :meth:`notified`)."""
        with self._transaction() as cur:
            cur.execute(f'LISTEN "{_channel(self.build)}"')

    def fileno(self) -> int:
        """The connection's socket: readable when a notification may have come."""
        return int(self._conn.fileno())

    def notified(self) -> bool:
        """Whether a notification came since the last call (read now, without waiting;
        also those read meanwhile by other queries on this connection)."""
        import psycopg

        try:
            return any(True for _ in self._conn.notifies(timeout=0))
        except psycopg.Error as error:
            detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise StoreUnavailable(
                f"the build queue {self.build!r} failed: {detail or type(error).__name__}"
            ) from None

    def _notify(self, cur: Any) -> None:
        cur.execute("SELECT pg_notify(%s, '')", (_channel(self.build),))

    def state(self) -> QueueState:
        with self._transaction() as cur:
            row = cur.execute(
                "SELECT count(*), "
                "count(*) FILTER (WHERE state = 0), "
                "count(*) FILTER (WHERE state = 1 AND holder = %s), "
                "count(*) FILTER (WHERE state = 1 AND holder <> %s), "
                "count(*) FILTER (WHERE state = 1 AND lease_until < clock_timestamp()), "
                "count(*) FILTER (WHERE state = 2), "
                "count(*) FILTER (WHERE state = 3), "
                "extract(epoch FROM min(lease_until - clock_timestamp()) "
                "  FILTER (WHERE state = 1 AND holder <> %s AND lease_until >= clock_timestamp())) "
                "FROM build_queue_items WHERE build = %s",
                (self.job, self.job, self.job, self.build),
            ).fetchone()
        total, queued, mine, others, expired, done, abandoned, next_expiry = row
        return QueueState(
            total,
            queued,
            mine,
            others,
            expired,
            done,
            abandoned,
            None if next_expiry is None else max(0.0, float(next_expiry)),
        )

    # -- plumbing --------------------------------------------------------------------

    def _ensure_tables(self) -> None:
        with self._transaction() as cur:
            exists = cur.execute("SELECT to_regclass(%s) IS NOT NULL", (_NEWEST_TABLE,)).fetchone()[
                0
            ]
            if exists:
                return
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            for statement in _SCHEMA:
                cur.execute(statement)

    @contextmanager
    def _statements(self) -> Iterator[Any]:
        """A cursor whose statements each commit on their own (autocommit)."""
        import psycopg

        try:
            yield self._conn.cursor()
        except psycopg.Error as error:
            detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise StoreUnavailable(
                f"the build queue {self.build!r} failed: {detail or type(error).__name__}"
            ) from None

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._statements() as cur, self._conn.transaction():
            yield cur


def _check_name(what: str, name: str, hint: str) -> None:
    """A build id or job name is stored and printed: 1 to 200 printable characters
    (no control character, C0 or C1, which a terminal would obey; no byte that was
    not UTF-8, which the database would refuse)."""
    if not name or len(name) > 200 or not name.isprintable():
        raise StoreError(f"bad {what} {name[:40]!r}: give 1 to 200 printable characters ({hint})")


def _connect(url: str, connect_timeout: int) -> Any:
    if not url.startswith(("postgresql://", "postgres://")):
        raise StoreError(
            "--queue needs a PostgreSQL repository that every job of the build reaches "
            f"(a postgresql:// URL); {url!r} is not one. Set [tool.proctor] repository or "
            "--repository, or split the build without coordination with --shard K/N"
        )
    import psycopg

    extra: dict[str, Any] = {}
    if "connect_timeout" not in url:
        extra["connect_timeout"] = connect_timeout
    try:
        return psycopg.connect(url, autocommit=True, **extra)
    except psycopg.Error as error:
        detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise StoreUnavailable(
            f"cannot reach the build queue's repository: {detail or type(error).__name__}"
        ) from None
