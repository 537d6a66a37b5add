"""The SQLite schema, as the migrations that build it (see docs/store.md for the reasons).

Version 1 holds the results; version 2 adds the maintained per-test statistics
(filled from the history already stored), CI columns on runs, and free-form run
properties. Both are applied to every new repository, in order.
"""

from __future__ import annotations

from proctor.store.sql.migrations import Migration
from proctor.store.sql.rules import EXISTS, FAILED_IN, FINISHED_IN, PASSED, SKIPPED, timed

__all__ = ["MIGRATIONS"]

V1 = Migration(
    1,
    "runs, tests, results, attachments stored once by content, failing set",
    (
        """CREATE TABLE schema_migrations (
            version INTEGER PRIMARY KEY,
            applied_ns INTEGER NOT NULL,
            description TEXT NOT NULL)""",
        # Test ids are interned: results carry a small integer instead of the
        # (often 100-byte) id, which is most of what makes a result row small.
        "CREATE TABLE tests (id INTEGER PRIMARY KEY, test_id TEXT NOT NULL UNIQUE)",
        "CREATE TABLE tagsets (id INTEGER PRIMARY KEY, tags TEXT NOT NULL UNIQUE)",
        # AUTOINCREMENT: a run id is never reused, even after the newest run is removed.
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            started_ns INTEGER NOT NULL,
            finished_ns INTEGER,
            interrupted INTEGER NOT NULL DEFAULT 1,
            partial INTEGER NOT NULL DEFAULT 1,
            source TEXT NOT NULL DEFAULT 'run',
            git_commit TEXT,
            git_branch TEXT,
            git_dirty INTEGER,
            python TEXT,
            platform TEXT,
            hostname TEXT,
            command TEXT,
            writer TEXT,
            first_ns INTEGER,
            last_ns INTEGER,
            n_total INTEGER NOT NULL DEFAULT 0,
            n_passed INTEGER NOT NULL DEFAULT 0,
            n_failed INTEGER NOT NULL DEFAULT 0,
            n_skipped INTEGER NOT NULL DEFAULT 0,
            n_xfail INTEGER NOT NULL DEFAULT 0,
            n_uxsuccess INTEGER NOT NULL DEFAULT 0,
            n_incomplete INTEGER NOT NULL DEFAULT 0,
            n_exists INTEGER NOT NULL DEFAULT 0,
            test_ns INTEGER NOT NULL DEFAULT 0,
            n_attachments INTEGER NOT NULL DEFAULT 0,
            attachment_bytes INTEGER NOT NULL DEFAULT 0)""",
        "CREATE INDEX runs_started ON runs (started_ns)",
        "CREATE INDEX runs_branch ON runs (git_branch, id)",
        "CREATE INDEX runs_commit ON runs (git_commit)",
        # One row per test execution, keyed by its run and its position in
        # the run, and clustered that way (WITHOUT ROWID): a run is one range
        # of the table, and every insert lands at the end of the table and of
        # its one index. (An index led by the test would take one scattered
        # page write per test per run: 40 MB of writes per 10,000-test run
        # once the history is long.) Durations are kept as elapsed time, a
        # small integer, rather than a second absolute timestamp.
        """CREATE TABLE results (
            run INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            test INTEGER NOT NULL,
            status INTEGER NOT NULL,
            start_ns INTEGER,
            elapsed_ns INTEGER,
            route TEXT,
            tagset INTEGER,
            runnable INTEGER NOT NULL DEFAULT 1,
            PRIMARY KEY (run, seq)) WITHOUT ROWID""",
        # A test's history: probe (run, test) run by run, newest first.
        "CREATE INDEX results_run_test ON results (run, test)",
        """CREATE TABLE blobs (
            id INTEGER PRIMARY KEY,
            digest BLOB NOT NULL UNIQUE,
            size INTEGER NOT NULL,
            codec INTEGER NOT NULL,
            data BLOB NOT NULL)""",
        # Clustered by run, so a run's attachments are one range of the table.
        """CREATE TABLE attachments (
            run INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            ordinal INTEGER NOT NULL,
            name TEXT NOT NULL,
            mime TEXT NOT NULL,
            blob INTEGER NOT NULL,
            PRIMARY KEY (run, seq, ordinal)) WITHOUT ROWID""",
        "CREATE INDEX attachments_blob ON attachments (blob)",
        "CREATE TABLE failing (test INTEGER PRIMARY KEY, run INTEGER NOT NULL, "
        "seq INTEGER NOT NULL)",
        "CREATE INDEX failing_run ON failing (run)",
    ),
)

V2 = Migration(
    2,
    "per-test statistics maintained as results arrive; CI columns; run properties",
    (
        "ALTER TABLE runs ADD COLUMN ci_provider TEXT",
        "ALTER TABLE runs ADD COLUMN ci_job_id TEXT",
        "ALTER TABLE runs ADD COLUMN ci_url TEXT",
        """CREATE TABLE run_properties (
            run INTEGER NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (run, key)) WITHOUT ROWID""",
        """CREATE TABLE test_stats (
            test INTEGER PRIMARY KEY,
            results INTEGER NOT NULL DEFAULT 0,
            passed INTEGER NOT NULL DEFAULT 0,
            failed INTEGER NOT NULL DEFAULT 0,
            skipped INTEGER NOT NULL DEFAULT 0,
            timed INTEGER NOT NULL DEFAULT 0,
            total_ns INTEGER NOT NULL DEFAULT 0,
            min_ns INTEGER,
            max_ns INTEGER,
            last_ns INTEGER,
            expected_ns REAL,
            last_run INTEGER)""",
        # Fill the statistics from the history already stored. The expected
        # duration starts as the plain mean (the weighted one needs the order
        # of every past result; it converges within a few runs).
        f"""INSERT INTO test_stats
            (test, results, passed, failed, skipped, timed, total_ns, min_ns, max_ns,
             last_ns, expected_ns, last_run)
        SELECT test,
            count(*),
            sum(status = {PASSED}),
            sum(status IN ({FAILED_IN})),
            sum(status = {SKIPPED}),
            sum({timed()}),
            COALESCE(sum(CASE WHEN {timed()} THEN elapsed_ns END), 0),
            min(CASE WHEN status IN ({FINISHED_IN}) THEN elapsed_ns END),
            max(CASE WHEN status IN ({FINISHED_IN}) THEN elapsed_ns END),
            NULL,
            avg(CASE WHEN status IN ({FINISHED_IN}) THEN elapsed_ns END),
            max(run)
        FROM results WHERE status <> {EXISTS} GROUP BY test""",
        # The last duration: the test's last timed result in its newest run.
        f"""UPDATE test_stats SET last_ns = (
            SELECT r.elapsed_ns FROM results r
            WHERE r.run = test_stats.last_run AND r.test = test_stats.test
              AND {timed("r.")}
            ORDER BY r.seq DESC LIMIT 1)""",
    ),
)

V3 = Migration(
    3,
    "failure signatures: one row per distinct signature, one per signed failing result",
    (
        # A signature per (algorithm, digest), with the cluster it belongs to
        # (its digest, or the cluster a re-clustering found it continues).
        """CREATE TABLE signatures (
            id INTEGER PRIMARY KEY,
            algorithm TEXT NOT NULL,
            digest TEXT NOT NULL,
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            cluster TEXT NOT NULL,
            UNIQUE (algorithm, digest))""",
        "CREATE INDEX signatures_cluster ON signatures (cluster)",
        # Each signed failing result, clustered by run like results; its test,
        # status and run start are copied so that windows and clusters need
        # no join with results.
        """CREATE TABLE failures (
            run INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            signature INTEGER NOT NULL,
            test INTEGER NOT NULL,
            status INTEGER NOT NULL,
            run_ns INTEGER NOT NULL,
            PRIMARY KEY (run, seq, signature)) WITHOUT ROWID""",
        "CREATE INDEX failures_signature ON failures (signature, run_ns)",
    ),
)

V4 = Migration(
    4,
    "what rules match on: each failure's exception type and normalised message; "
    "how far signing stored failures has come",
    (
        # One row per distinct (type, message), found by a digest of the two
        # (a message may be long); a failure names its own. A failure stored
        # before this version has none (NULL) until it is signed again:
        # `proctor triage recluster`, or a chunk after each stored run.
        """CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            digest TEXT NOT NULL UNIQUE,
            type TEXT NOT NULL,
            message TEXT NOT NULL)""",
        "ALTER TABLE failures ADD COLUMN message INTEGER",
        # How far the chunks signed after each stored run have come, per
        # algorithm: every failing result up to (run, seq) has been signed.
        """CREATE TABLE signing_progress (
            algorithm TEXT PRIMARY KEY,
            run INTEGER NOT NULL,
            seq INTEGER NOT NULL)""",
    ),
)

MIGRATIONS = (V1, V2, V3, V4)
