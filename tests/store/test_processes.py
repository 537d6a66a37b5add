"""Real processes: writers killed with SIGKILL mid-run, and writers racing each other."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from proctor.store import Store, open_store
from proctor.wire.event import Status

from .factory import record

CHILD = Path(__file__).with_name("_writer_child.py")
pytestmark = pytest.mark.slow


def _start(url: str, mode: str, count: int, batch: int, tag: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(CHILD), url, mode, str(count), str(batch), tag],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _read_until(child: subprocess.Popen[str], wanted: str) -> list[str]:
    assert child.stdout is not None
    lines = []
    for line in child.stdout:
        lines.append(line.strip())
        if line.strip() == wanted:
            return lines
    _, err = child.communicate()
    pytest.fail(f"writer exited before {wanted!r}: {lines} {err}")


def _kill(child: subprocess.Popen[str]) -> None:
    child.send_signal(signal.SIGKILL)
    child.communicate()  # reap it and close its pipes


def _check_consistent(store: Store) -> None:
    """Every maintained number agrees with the results actually stored."""
    executions: Counter[str] = Counter()
    for run in store.runs():
        records = store.records(run.id)
        assert run.counts.total == len(records), run
        assert run.counts.failed == sum(r.status is Status.FAIL for r in records)
        for r in records:
            if r.status is Status.FAIL:
                assert r.attachments, r  # never a result without its traceback
            executions[r.test_id] += r.status is not Status.EXISTS
    stats = store.test_stats(executions)
    assert {t: s.results for t, s in stats.items()} == dict(executions)


def test_a_killed_writer_leaves_an_interrupted_run_with_everything_it_stored(
    repository_url: str,
) -> None:
    child = _start(repository_url, "hang", 150, 1000, "killed")
    lines = _read_until(child, "stored 150")
    run_id = int(lines[0].split()[1])
    _kill(child)
    with open_store(repository_url) as store:
        info = store.run(run_id)
        assert info.interrupted
        assert not info.finished
        assert info.counts.total == 150
        assert len(store.records(run_id)) == 150
        assert store.failing_ids() != []
        _check_consistent(store)
        # The repository goes on working: a new run is stored normally.
        assert store.write_run([record("after.crash")]).succeeded


def test_a_run_is_kept_from_removal_until_its_writer_dies(repository_url: str) -> None:
    child = _start(repository_url, "hang", 10, 1000, "alive")
    lines = _read_until(child, "stored 10")
    run_id = int(lines[0].split()[1])
    with open_store(repository_url) as store:
        running = store.run(run_id)
        try:
            assert store.writers_alive([running]) == {run_id: True}
            assert store.select_for_removal(keep=0) == []
        finally:
            _kill(child)
        # PostgreSQL drops the writer's lock once it notices the connection closed.
        deadline = time.monotonic() + 60
        while store.writers_alive([running]) != {run_id: False}:
            assert time.monotonic() < deadline, "the killed writer still looks alive"
            time.sleep(0.05)
        assert [info.id for info in store.select_for_removal(keep=0)] == [run_id]


def test_a_writer_killed_inside_a_transaction_loses_only_that_batch(repository_url: str) -> None:
    child = _start(repository_url, "stream", 100_000, 50, "mid-batch")
    lines = _read_until(child, "stored 1000")
    run_id = int(lines[0].split()[1])
    _kill(child)  # almost surely in the middle of a later batch
    with open_store(repository_url) as store:
        info = store.run(run_id)
        assert info.interrupted
        assert info.counts.total >= 1000
        assert info.counts.total % 50 == 0  # whole batches only
        _check_consistent(store)
    if not repository_url.startswith("postgresql"):
        import sqlite3

        from proctor.store.opening import sqlite_path

        conn = sqlite3.connect(sqlite_path(repository_url))
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        conn.close()


def test_concurrent_writers_lose_nothing(repository_url: str) -> None:
    writers = 2 if not repository_url.startswith("postgresql") else 4
    count = 1500
    open_store(repository_url).close()  # create the schema once, as the first run would
    children = [_start(repository_url, "stream", count, 100, f"w{i}") for i in range(writers)]
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        assert out.strip().endswith("finished")
    with open_store(repository_url) as store:
        runs = store.runs()
        assert len(runs) == writers
        assert sorted(run.metadata.properties["writer"] for run in runs) == [
            f"w{i}" for i in range(writers)
        ]
        for run in runs:
            assert run.finished
            assert not run.interrupted
            assert run.counts.total == count
        stats = store.stats()
        assert stats.tests == 50
        assert stats.blobs == 1  # the shared traceback, stored once by whoever came first
        _check_consistent(store)
        assert all(
            s.results == writers * count // 50
            for s in store.test_stats(f"pkg.test_{i:02d}" for i in range(50)).values()
        )


def test_writers_creating_a_repository_at_once_create_it_once(tmp_path: Path) -> None:
    url = str(tmp_path / "fresh")
    children = [_start(url, "stream", 200, 100, f"w{i}") for i in range(3)]
    for child in children:
        _, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
    with open_store(url) as store:
        assert len(store.runs()) == 3
        _check_consistent(store)


def test_concurrent_complete_runs_keep_every_failure(repository_url: str) -> None:
    """Complete runs writing at once: each replaces, test by test, only the
    failing entries it is newer than, so the set ends as the newest run's.

    The writers store concurrently, then finish newest first: finishing
    "forget every test but mine" (as it used to) would leave, of the failures
    all of them share, only those the oldest run happened to write last."""
    from ._writer_child import make

    writers = 2 if not repository_url.startswith("postgresql") else 8
    count = 1000
    open_store(repository_url).close()
    children = [
        subprocess.Popen(
            [sys.executable, str(CHILD), repository_url, "complete", str(count), "25", f"w{i}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(writers)
    ]
    runs = {}
    for child in children:
        lines = _read_until(child, f"stored {count}")
        runs[int(lines[0].split()[1])] = child
    for run_id in sorted(runs, reverse=True):  # the newest run finishes first
        child = runs[run_id]
        out, err = child.communicate("finish\n", timeout=120)
        assert child.returncode == 0, err
        assert out.strip().endswith("finished")
    last: dict[str, Status] = {}
    for i in range(count):
        made = make(i)
        last[made.test_id] = made.status
    expected = sorted(test for test, status in last.items() if status is Status.FAIL)
    assert len(expected) == 7
    with open_store(repository_url) as store:
        assert all(run.finished and not run.interrupted for run in store.runs())
        assert store.failing_ids() == expected
        _check_consistent(store)
