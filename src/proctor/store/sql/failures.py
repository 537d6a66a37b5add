"""Signed failures in SQL (both backends): written with each batch, read by triage.

See :mod:`proctor.store.failures` for the tables and the types. The writer
signs a batch's failing results with the store's signer (memoised by the
signer, not here) and stores them in the batch's transaction; re-clustering
adds signatures of another algorithm to results already stored, chunk by
chunk, each chunk its own transaction, so it can stop and resume anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from proctor.store.contract import check_limit
from proctor.store.failures import (
    SIGNED_STATUSES,
    FailureRow,
    Sighting,
    SignatureLike,
    SignedFailure,
    Signer,
    signed_parts,
)
from proctor.store.sql.dialect import Dialect
from proctor.store.sql.interned import Interned
from proctor.store.sql.records import RECORD_COLUMNS, attachments_by_key, build_records
from proctor.store.sql.rules import STATUSES
from proctor.store.sql.transaction import in_transaction
from proctor.wire.event import Status
from proctor.wire.record import TestRecord

__all__ = ["SqlFailures", "message_digest", "sign_batch"]

_SIGNED = tuple(status in SIGNED_STATUSES for status in STATUSES)
_SIGNED_IN = ", ".join(str(int(status)) for status in STATUSES if status in SIGNED_STATUSES)
_ROW_COLUMNS = (
    "f.run, f.seq, t.test_id, f.status, f.run_ns, s.algorithm, s.digest, s.kind, s.key, "
    "s.cluster, f.message"
)
_ROW_FROM = "failures f JOIN signatures s ON s.id = f.signature JOIN tests t ON t.id = f.test"

Facts = tuple[str, str] | None
"""A failure's (exception type, normalised message), None when not known."""
SignedRow = tuple[int, int, int, int, int, SignatureLike, Facts]
"""(run, seq, test, status, run start, signature, facts) of one failing result to store."""


def sign_batch(
    dialect: Dialect,
    signer: Signer | None,
    cur: Any,
    run_id: int,
    first_seq: int,
    records: list[TestRecord],
    test_ids: Mapping[str, int],
) -> None:
    """Sign the batch's failing results and store their signatures (inside the
    batch's transaction). Nothing happens without a signer."""
    if signer is None:
        return
    sign = signer.sign
    signed: list[tuple[int, int, int, SignedFailure]] = []
    signed_status = _SIGNED
    for seq, record in enumerate(records, first_seq):
        status = int(record.status)
        if signed_status[status]:
            found = sign(record)
            if found is not None:
                signed.append((seq, test_ids[record.test_id], status, found))
    if not signed:
        return
    cur.execute(dialect.q("SELECT started_ns FROM runs WHERE id = ?"), (run_id,))
    run_ns = cur.fetchone()[0]
    _store_signed(
        dialect,
        cur,
        [
            (run_id, seq, test, status, run_ns, found.signature, (found.type, found.message))
            for seq, test, status, found in signed
        ],
    )


def message_digest(type_: str, message: str) -> str:
    """What a (type, message) pair is found by in ``messages``."""
    import hashlib  # here: reading the store (`proctor last`) does not need it

    text = f"{type_}\0{message}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(text).hexdigest()[:32]


def _store_signed(dialect: Dialect, cur: Any, rows: Sequence[SignedRow]) -> int:
    """Intern the signatures and messages of ``rows`` and link each result to
    its own; return how many links were new."""
    wanted = {(sig.algorithm, sig.digest): sig for *_, sig, _ in rows}
    ids = _intern_signatures(dialect, cur, wanted)
    messages = _intern_messages(dialect, cur, {facts for *_, facts in rows if facts is not None})
    links = sorted(
        (
            run,
            seq,
            ids[sig.algorithm, sig.digest],
            test,
            status,
            run_ns,
            None if facts is None else messages[facts],
        )
        for run, seq, test, status, run_ns, sig, facts in rows
    )
    cur.executemany(
        dialect.q(
            "INSERT INTO failures (run, seq, signature, test, status, run_ns, message) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run, seq, signature) DO NOTHING"
        ),
        links,
    )
    return len(links)


def _intern_messages(
    dialect: Dialect, cur: Any, wanted: set[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """The ids of (type, message) pairs in ``messages``, inserting the new ones."""
    if not wanted:
        return {}
    by_digest = {message_digest(*pair): pair for pair in wanted}
    digests = sorted(by_digest)
    select = "SELECT digest, id FROM messages WHERE digest IN ({})"
    found = {by_digest[digest]: id for digest, id in dialect.fetch_in(cur, select, digests)}
    absent = [digest for digest in digests if by_digest[digest] not in found]
    if absent:
        cur.executemany(
            dialect.q(
                "INSERT INTO messages (digest, type, message) VALUES (?, ?, ?) "
                "ON CONFLICT (digest) DO NOTHING"
            ),
            [(digest, *by_digest[digest]) for digest in absent],
        )
        for digest, id in dialect.fetch_in(cur, select, absent):
            found[by_digest[digest]] = id
    return found


def _intern_signatures(
    dialect: Dialect, cur: Any, wanted: Mapping[tuple[str, str], SignatureLike]
) -> dict[tuple[str, str], int]:
    found: dict[tuple[str, str], int] = {}
    by_algorithm: dict[str, list[str]] = {}
    for algorithm, digest in sorted(wanted):
        by_algorithm.setdefault(algorithm, []).append(digest)
    select = "SELECT digest, id FROM signatures WHERE algorithm = ? AND digest IN ({})"
    for algorithm, digests in by_algorithm.items():
        for digest, signature_id in dialect.fetch_in(cur, select, digests, (algorithm,)):
            found[algorithm, digest] = signature_id
        absent = [digest for digest in digests if (algorithm, digest) not in found]
        if absent:
            cur.executemany(
                dialect.q(
                    "INSERT INTO signatures (algorithm, digest, kind, key, cluster) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (algorithm, digest) DO NOTHING"
                ),
                [
                    (
                        algorithm,
                        digest,
                        wanted[algorithm, digest].kind,
                        wanted[algorithm, digest].key,
                        digest,
                    )
                    for digest in absent
                ],
            )
            for digest, signature_id in dialect.fetch_in(cur, select, absent, (algorithm,)):
                found[algorithm, digest] = signature_id
    return found


def _rows(dialect: Dialect, cur: Any, rows: Sequence[Any]) -> list[FailureRow]:
    """Failure rows from ``_ROW_COLUMNS``, their messages read on ``cur``."""
    statuses = STATUSES
    wanted = sorted({row[10] for row in rows if row[10] is not None})
    messages: dict[int | None, tuple[str | None, str | None]] = {None: (None, None)}
    for id, type_, message in dialect.fetch_in(
        cur, "SELECT id, type, message FROM messages WHERE id IN ({})", wanted
    ):
        messages[id] = (type_, message)
    found = []
    for run, seq, test_id, status, run_ns, algorithm, digest, kind, key, cluster, message in rows:
        type_, text = messages[message]
        found.append(
            FailureRow(
                run,
                seq,
                test_id,
                statuses[status],
                run_ns,
                algorithm,
                digest,
                kind,
                key,
                cluster,
                type_,
                text,
            )
        )
    return found


class SqlFailures:
    """The failure-signature part of the contract, on the store's connection
    (:class:`~proctor.store.sql.store.SqlStore` answers with it)."""

    def __init__(self, dialect: Dialect, conn: Any, interned: Interned) -> None:
        self.dialect = dialect
        self.conn = conn
        self.interned = interned

    def failures(self, run_ids: Iterable[int], *, algorithm: str) -> list[FailureRow]:
        runs = sorted(set(run_ids))
        with self.dialect.snapshot(self.conn) as cur:
            self.dialect.quick(cur)
            # The runs' ranges of failures first (CROSS JOIN: SQLite keeps the
            # order): led by signatures(algorithm), SQLite would read every
            # failure of the algorithm through failures(signature, run_ns).
            found = self.dialect.fetch_in(
                cur,
                f"SELECT {_ROW_COLUMNS} FROM failures f CROSS JOIN signatures s "
                "CROSS JOIN tests t WHERE s.id = f.signature AND t.id = f.test "
                "AND s.algorithm = ? AND f.run IN ({})",
                runs,
                (algorithm,),
            )
            rows = _rows(self.dialect, cur, found)
        return sorted(rows, key=lambda row: (-row.run, row.seq))

    def sightings(
        self, digests: Iterable[str], *, algorithm: str, before_ns: int, count_runs: int = 0
    ) -> dict[str, Sighting]:
        wanted = sorted(set(digests))
        with self.dialect.snapshot(self.conn) as cur:
            self.dialect.quick(cur)
            found = self.dialect.fetch_in(
                cur,
                "SELECT s.digest, "
                "(SELECT min(f.run_ns) FROM failures f WHERE f.signature = s.id), "
                "(SELECT max(f.run_ns) FROM failures f WHERE f.signature = s.id AND f.run_ns < ?), "
                "s.id "
                "FROM signatures s WHERE s.algorithm = ? AND s.digest IN ({})",
                wanted,
                (before_ns, algorithm),
            )
            counted: dict[int, int] = {}
            if count_runs:
                # Distinct runs (by their start: two runs begun in the same
                # nanosecond count once), read in the order of the index
                # failures(signature, run_ns) and only as far as the cap: a
                # fault seen in thousands of runs costs no more than one seen
                # in ``count_runs``.
                for signature_id in sorted({row[3] for row in found}):
                    cur.execute(
                        self.dialect.q(
                            "SELECT DISTINCT f.run_ns FROM failures f WHERE f.signature = ? "
                            "ORDER BY f.run_ns LIMIT ?"
                        ),
                        (signature_id, count_runs),
                    )
                    counted[signature_id] = len(cur.fetchall())
        return {
            digest: Sighting(first, last, counted.get(signature_id, 0))
            for digest, first, last, signature_id in found
            if first is not None
        }

    def cluster_failures(
        self, cluster: str, *, algorithm: str, limit: int | None = None
    ) -> list[FailureRow]:
        if check_limit(limit) == 0:
            return []
        sql = (
            f"SELECT {_ROW_COLUMNS} FROM {_ROW_FROM} WHERE s.algorithm = ? AND s.cluster = ? "
            "ORDER BY f.run_ns DESC, f.run DESC, f.seq"
        )
        params: list[object] = [algorithm, cluster]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with self.dialect.snapshot(self.conn) as cur:
            self.dialect.quick(cur)
            cur.execute(self.dialect.q(sql), params)
            return _rows(self.dialect, cur, cur.fetchall())

    def cluster_ids(self, prefix: str, *, algorithm: str, limit: int | None = None) -> list[str]:
        if check_limit(limit) == 0:
            return []
        # A range of the index signatures(cluster): every id that starts with
        # ``prefix`` sorts between it and it followed by the last character.
        sql = (
            "SELECT DISTINCT s.cluster FROM signatures s WHERE s.algorithm = ? "
            "AND s.cluster >= ? AND s.cluster < ? "
            "AND EXISTS (SELECT 1 FROM failures f WHERE f.signature = s.id) ORDER BY s.cluster"
        )
        params: list[object] = [algorithm, prefix, prefix + "\U0010ffff"]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with self.dialect.snapshot(self.conn) as cur:
            cur.execute(self.dialect.q(sql), params)
            return [row[0] for row in cur.fetchall()]

    def signing_progress(self, algorithm: str) -> tuple[int, int]:
        with self.dialect.snapshot(self.conn) as cur:
            cur.execute(
                self.dialect.q("SELECT run, seq FROM signing_progress WHERE algorithm = ?"),
                (algorithm,),
            )
            found = cur.fetchone()
        return (0, -1) if found is None else (found[0], found[1])

    def set_signing_progress(self, algorithm: str, position: tuple[int, int]) -> None:
        sql = self.dialect.q(
            "INSERT INTO signing_progress (algorithm, run, seq) VALUES (?, ?, ?) "
            "ON CONFLICT (algorithm) DO UPDATE SET run = excluded.run, seq = excluded.seq"
        )
        row = (algorithm, *position)
        in_transaction(self.conn, self.dialect, lambda cur: cur.execute(sql, row))

    def unsigned_failures(
        self, *, algorithm: str, after: tuple[int, int] = (0, -1), limit: int = 1000
    ) -> list[tuple[int, int, TestRecord]]:
        run, seq = after
        with self.dialect.snapshot(self.conn) as cur:
            # Failing results in stored order from ``after`` (a range of the
            # primary key), less those signed under ``algorithm`` already
            # (found in the same runs' range of ``failures``): a planner given
            # NOT EXISTS may scan every failure of every algorithm per chunk.
            while True:
                cur.execute(
                    self.dialect.q(
                        f"SELECT r.run, r.seq, {RECORD_COLUMNS} FROM results r "
                        "JOIN tests t ON t.id = r.test "
                        f"WHERE r.status IN ({_SIGNED_IN}) "
                        "AND r.run >= ? AND (r.run > ? OR r.seq > ?) "
                        "ORDER BY r.run, r.seq LIMIT ?"
                    ),
                    (run, run, seq, limit),
                )
                candidates = cur.fetchall()
                if not candidates:
                    return []
                # Signed without a message (before messages were stored):
                # signed again, for the message.
                # The chunk's runs' range of failures first (CROSS JOIN, as in
                # failures()): led by signatures(algorithm), each chunk would
                # read every failure signed so far under the algorithm.
                cur.execute(
                    self.dialect.q(
                        "SELECT f.run, f.seq FROM failures f CROSS JOIN signatures s "
                        "WHERE s.id = f.signature AND f.run >= ? AND f.run <= ? "
                        "AND s.algorithm = ? AND f.message IS NOT NULL"
                    ),
                    (candidates[0][0], candidates[-1][0], algorithm),
                )
                signed = {(row[0], row[1]) for row in cur.fetchall()}
                found = [row for row in candidates if (row[0], row[1]) not in signed]
                if found:
                    break
                run, seq = candidates[-1][0], candidates[-1][1]
            by_run: dict[int, list[int]] = {}
            for row in found:
                by_run.setdefault(row[0], []).append(row[1])
            files_rows: list[Any] = []
            for run_id, seqs in by_run.items():
                files_rows += self.dialect.fetch_in(
                    cur,
                    "SELECT a.run, a.seq, a.name, a.mime, b.codec, b.data FROM attachments a "
                    "JOIN blobs b ON b.id = a.blob WHERE a.run = ? AND a.seq IN ({}) "
                    "ORDER BY a.seq, a.ordinal",
                    seqs,
                    (run_id,),
                )
            files = attachments_by_key(((run_id, seq), *rest) for run_id, seq, *rest in files_rows)
            records = build_records(
                self.interned, cur, [((row[0], row[1]), *row[2:]) for row in found], files
            )
        return [(row[0], row[1], record) for row, record in zip(found, records, strict=True)]

    def result(self, run_id: int, seq: int) -> TestRecord | None:
        with self.dialect.snapshot(self.conn) as cur:
            cur.execute(
                self.dialect.q(
                    f"SELECT r.seq, {RECORD_COLUMNS} FROM results r "
                    "JOIN tests t ON t.id = r.test WHERE r.run = ? AND r.seq = ?"
                ),
                (run_id, seq),
            )
            rows = cur.fetchall()
            if not rows:
                return None
            cur.execute(
                self.dialect.q(
                    "SELECT a.seq, a.name, a.mime, b.codec, b.data FROM attachments a "
                    "JOIN blobs b ON b.id = a.blob WHERE a.run = ? AND a.seq = ? "
                    "ORDER BY a.ordinal"
                ),
                (run_id, seq),
            )
            return build_records(self.interned, cur, rows, attachments_by_key(cur.fetchall()))[0]

    def add_signatures(
        self, signed: Sequence[tuple[int, int, SignatureLike | SignedFailure]]
    ) -> int:
        if not signed:
            return 0
        return in_transaction(self.conn, self.dialect, lambda cur: self._link(cur, signed))

    def _link(
        self, cur: Any, signed: Sequence[tuple[int, int, SignatureLike | SignedFailure]]
    ) -> int:
        keys = sorted({(run, seq) for run, seq, _ in signed})
        by_run: dict[int, list[int]] = {}
        for run, seq in keys:
            by_run.setdefault(run, []).append(seq)
        known: dict[tuple[int, int], tuple[int, int, int]] = {}
        done: dict[tuple[int, int, str], bool] = {}  # -> whether it has its message
        for run, seqs in by_run.items():
            for seq, test, status, run_ns in self.dialect.fetch_in(
                cur,
                "SELECT r.seq, r.test, r.status, u.started_ns FROM results r "
                "JOIN runs u ON u.id = r.run WHERE r.run = ? AND r.seq IN ({})",
                seqs,
                (run,),
            ):
                known[run, seq] = (test, status, run_ns)
            for seq, algorithm, message in self.dialect.fetch_in(
                cur,
                "SELECT f.seq, s.algorithm, f.message FROM failures f JOIN signatures s "
                "ON s.id = f.signature WHERE f.run = ? AND f.seq IN ({})",
                seqs,
                (run,),
            ):
                done[run, seq, algorithm] = message is not None
        rows: list[SignedRow] = []
        described: list[tuple[int, int, str, tuple[str, str]]] = []
        for run, seq, given in signed:
            sig, facts = signed_parts(given)
            place = (run, seq, sig.algorithm)
            if (run, seq) not in known:
                continue
            if place not in done:
                done[place] = facts is not None
                rows.append((run, seq, *known[run, seq], sig, facts))
            elif not done[place] and facts is not None:
                done[place] = True
                described.append((run, seq, sig.algorithm, facts))
        added = _store_signed(self.dialect, cur, rows) if rows else 0
        if described:
            ids = _intern_messages(self.dialect, cur, {facts for *_, facts in described})
            cur.executemany(
                self.dialect.q(
                    "UPDATE failures SET message = ? WHERE run = ? AND seq = ? AND signature = "
                    "(SELECT id FROM signatures WHERE algorithm = ? AND id = failures.signature)"
                ),
                [(ids[facts], run, seq, algorithm) for run, seq, algorithm, facts in described],
            )
        return added + len(described)

    def set_clusters(self, algorithm: str, clusters: Mapping[str, str]) -> None:
        if not clusters:
            return
        rows = [(cluster, algorithm, digest) for digest, cluster in sorted(clusters.items())]
        sql = self.dialect.q("UPDATE signatures SET cluster = ? WHERE algorithm = ? AND digest = ?")
        in_transaction(self.conn, self.dialect, lambda cur: cur.executemany(sql, rows))

    def outcomes(self, run_ids: Iterable[int]) -> list[tuple[int, str, Status]]:
        runs = sorted(set(run_ids))
        if not runs:
            return []
        found: list[tuple[int, int, int]] = []
        with self.dialect.snapshot(self.conn) as cur:
            self.dialect.quick(cur)
            failed = {
                row[0]
                for row in self.dialect.fetch_in(
                    cur, "SELECT DISTINCT f.test FROM failures f WHERE f.run IN ({})", runs
                )
            }
            if not failed:
                return []
            # The runs' results of those tests, through results(run, test):
            # one statement per 100 runs and 500 tests.
            tests = sorted(failed)
            for first in range(0, len(runs), 100):
                chunk = runs[first : first + 100]
                marks = ", ".join("?" * len(chunk))
                found += self.dialect.fetch_in(
                    cur,
                    f"SELECT r.run, r.test, r.status FROM results r WHERE r.run IN ({marks}) "
                    "AND r.test IN ({})",
                    tests,
                    chunk,
                )
            names = dict(
                self.dialect.fetch_in(
                    cur, "SELECT id, test_id FROM tests WHERE id IN ({})", sorted(failed)
                )
            )
        return [(run, names[test], STATUSES[status]) for run, test, status in found]
