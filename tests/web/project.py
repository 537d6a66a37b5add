"""A repository for the dashboard's tests, filled by real ``proctor load`` of
generated streams: branches, CI jobs, a test that starts failing, one that is
fixed, added and removed tests, a slowdown, and hostile ids and output."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from proctor.wire import v2
from proctor.wire.event import NS_PER_SECOND, Event, Status
from tests.cli.invoke import invoke

T0 = 1_700_000_000 * NS_PER_SECOND
HOUR = 3600 * NS_PER_SECOND
TEXT = "text/plain; charset=utf8"

XSS_IDS = [
    "hostile.<script>window.__xss=1</script>",
    'hostile." onmouseover="window.__xss=2" x="',
    "javascript:window.__xss=3",
    "hostile.<img src=x onerror=window.__xss=4>",
    '=HYPERLINK("http://127.0.0.1:9/")',
]
HOSTILE_OUTPUT = (
    "Traceback (most recent call last):\n<script>window.__xss=5</script>\n"
    "\x1b[31mRED\x1b[0m \x1b]0;retitled\x07 \r overwritten \u202eevil\n"
).encode()
HUGE_ID = "hostile.huge_output"
BINARY_ID = "hostile.binary_output"
HUGE_BYTES = 1024 * 1024

Attach = tuple[str, bytes, str]


def result(
    test_id: str,
    status: Status,
    start: int,
    seconds: float,
    attachments: Iterable[Attach] = (),
    worker: int = 0,
) -> list[Event]:
    tags = frozenset({f"worker-{worker}"})
    events = [Event(test_id, Status.INPROGRESS, tags, timestamp=start)]
    for name, content, mime in attachments:
        events.append(Event(test_id, file_name=name, file_bytes=content, eof=True, mime_type=mime))
    events.append(Event(test_id, status, tags, timestamp=start + round(seconds * NS_PER_SECOND)))
    return events


def traceback(test_id: str) -> Attach:
    text = (
        f"Traceback (most recent call last):\n  File x, in {test_id}\nAssertionError: {test_id}\n"
    )
    return ("traceback", text.encode(), TEXT)


def run_events(index: int) -> list[Event]:
    """Run ``index`` (1-based) of the main history."""
    start = T0 + index * HOUR
    outcomes: list[tuple[str, Status, float, list[Attach]]] = []
    outcomes += [(f"pkg.test_a.T.test_ok_{n}", Status.SUCCESS, 0.01, []) for n in range(10)]
    flip = Status.FAIL if index >= 4 else Status.SUCCESS
    outcomes.append(
        ("pkg.test_a.T.test_flip", flip, 0.02, [traceback("flip")] if index >= 4 else [])
    )
    fixed = Status.FAIL if index <= 3 else Status.SUCCESS
    outcomes.append(
        ("pkg.test_a.T.test_fixed", fixed, 0.02, [traceback("fixed")] if index <= 3 else [])
    )
    if index >= 6:
        outcomes.append(("pkg.test_a.T.test_new", Status.SUCCESS, 0.01, []))
    if index <= 5:
        outcomes.append(("pkg.test_a.T.test_gone", Status.SUCCESS, 0.01, []))
    outcomes.append(("pkg.test_a.T.test_slow", Status.SUCCESS, 2.0 if index >= 6 else 0.2, []))
    outcomes.append(("pkg.test_a.T.test_skip", Status.SKIP, 0.0, [("reason", b"no network", TEXT)]))
    for hostile in XSS_IDS:
        outcomes.append((hostile, Status.FAIL, 0.01, [("traceback", HOSTILE_OUTPUT, TEXT)]))
    outcomes.append((HUGE_ID, Status.FAIL, 0.01, [("stdout", b"A" * HUGE_BYTES, TEXT)]))
    binary = bytes(range(256)) * 64
    outcomes.append((BINARY_ID, Status.FAIL, 0.01, [("core", binary, "application/octet-stream")]))
    events: list[Event] = []
    now = start
    for n, (test_id, status, seconds, attachments) in enumerate(outcomes):
        events += result(test_id, status, now, seconds, attachments, worker=n % 2)
        now += round(seconds * NS_PER_SECOND) + 1000
    return events


HOSTILE_BRANCH = '"><script>window.__xss=6</script>'
RUNS = [
    # (branch, commit, CI job)
    ("main", "c1" * 20, "unit"),
    ("main", "c2" * 20, "integration"),
    ("main", "c3" * 20, "unit"),
    ("main", "c4" * 20, "integration"),
    ("main", "c5" * 20, "unit"),
    ("main", "c6" * 20, "unit"),
    (HOSTILE_BRANCH, "c7" * 20, "unit"),
]
"""Runs 1-7 as loaded; run N holds ``run_events(N)``."""


def fill_repository(
    directory: Path, monkeypatch: pytest.MonkeyPatch, url: str | None = None
) -> str:
    """Load :data:`RUNS` into the repository at ``url`` (default: under
    ``directory``, where the streams are written); its URL."""
    repository = url or str(directory / "repo")
    for key in ("CI", "GITLAB_CI", "JENKINS_URL", "CIRCLECI", "TRAVIS", "TF_BUILD", "BUILDKITE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv("BITBUCKET_BUILD_NUMBER", raising=False)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    for index, (branch, commit, job) in enumerate(RUNS, 1):
        monkeypatch.setenv("GITHUB_JOB", job)
        path = directory / f"run{index}.subunit"
        path.write_bytes(v2.encode_many(run_events(index)))
        done = invoke(
            "load", "--repository", repository, "--branch", branch, "--commit", commit,
            "--exit-zero", str(path),
        )  # fmt: skip
        assert done.exit_code == 0, done.stderr
    return repository


HOSTILE_TITLE = "<script>window.__xss=7</script> flip breaks"
HOSTILE_COMMENT = '"><img src=x onerror=window.__xss=8> and javascript:alert(9)'
HOSTILE_AUTHOR = "<b>mallory</b> <m@example.com>"
HOSTILE_LINK = '"><script>window.__xss=11</script>'
"""A cluster link target another copy of the bugs could send."""
HOSTILE_RULE_BUG = "javascript://%0awindow.__xss=10"
"""A rule's bug reference that is a valid URL and would run as a link."""


def add_known_bugs(url: str) -> dict[str, str]:
    """Bugs and a known-bug rule for the loaded history, written through the
    bugs and triage layers with a fixed clock (so that every copy gets the same
    ids): a bug opened from the flip test's cluster (hostile title, comment and
    author; also linking the test), a fixed bug linking the huge-output test
    and a hostile cluster id,
    and a rule explaining the hostile ids' cluster whose bug reference is a
    ``javascript:`` URL. Returns the ids by name (``flip_bug``, ``huge_bug``,
    ``flip_cluster``, ``hostile_cluster``, ``rule``)."""
    from proctor.bugs.cluster import cluster_bug
    from proctor.bugs.repository import BugRepository
    from proctor.store.bug_tables import bug_tables
    from proctor.store.opening import open_store
    from proctor.triage.algorithm import ALGORITHM
    from proctor.triage.rules import StoreRuleBook, make_rule

    store = open_store(url, create=False)
    try:
        latest = store.latest_run()
        assert latest is not None
        rows = store.failures([info.id for info in store.runs()], algorithm=ALGORITHM)
        cluster_of = {row.test_id: row.cluster for row in rows}
        flip = cluster_of["pkg.test_a.T.test_flip"]
        hostile = cluster_of[XSS_IDS[0]]
        ticks = iter(range(T0 + 10 * HOUR, T0 + 11 * HOUR, NS_PER_SECOND))
        repo = BugRepository(bug_tables(store), clock=lambda: next(ticks))
        title, description = cluster_bug(store, flip, HOSTILE_TITLE, "")
        flip_bug = repo.create(
            HOSTILE_AUTHOR,
            title,
            description,
            tags=["regression"],
            links=[("cluster", flip), ("test", "pkg.test_a.T.test_flip")],
        ).id
        repo.comment(flip_bug, HOSTILE_AUTHOR, HOSTILE_COMMENT)
        repo.set_field(flip_bug, "alice", "status", "in-progress")
        huge_bug = repo.create("alice", "huge output floods the log").id
        repo.link(huge_bug, "alice", "test", HUGE_ID)
        repo.link(huge_bug, "alice", "cluster", HOSTILE_LINK)
        repo.set_field(huge_bug, "alice", "status", "fixed")
        rule = make_rule(HOSTILE_RULE_BUG, 'test ~ "^hostile\\\\."')
        StoreRuleBook(store).replace([rule])
    finally:
        store.close()
    return {
        "flip_bug": flip_bug,
        "huge_bug": huge_bug,
        "flip_cluster": flip,
        "hostile_cluster": hostile,
        "rule": rule.id,
    }
