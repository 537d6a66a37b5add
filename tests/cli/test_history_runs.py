"""``proctor runs / export / gc`` on real repositories."""

from __future__ import annotations

import io
import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from proctor.events.collector import collect_records
from proctor.store import RunMetadata, open_store
from proctor.wire import v2
from proctor.wire.event import NS_PER_SECOND, Status

from .history_streams import stream
from .invoke import invoke

NOW = time.time_ns()
DAY = 86_400 * NS_PER_SECOND


@pytest.fixture
def repo(tmp_path: Path) -> str:
    """Four runs loaded from generated streams: three on main (the newest failed),
    one on a branch; one 3 days old, one 2 days, one 1 day, one a minute."""
    url = str(tmp_path / ".proctor")
    with open_store(url) as store:
        for started, branch, commit, failed in [
            (NOW - 3 * DAY, "main", "aaaa1111", False),
            (NOW - 2 * DAY, "feature", "bbbb2222", False),
            (NOW - DAY, "main", "aaaa3333", False),
            (NOW - 60 * NS_PER_SECOND, "main", "cccc4444", True),
        ]:
            outcome = Status.FAIL if failed else Status.SUCCESS
            writer = store.begin_run(
                RunMetadata(started_ns=started, git_branch=branch, git_commit=commit)
            )
            writer.add_many(
                collect_records(v2.decode(stream({"t.a": outcome, "t.b": Status.SUCCESS})))
            )
            writer.finish()
    return url


def run(repo: str, *args: str) -> Any:
    return invoke(*args, "--repository", repo)


def _ids(out: str) -> list[str]:
    return [line.split()[0] for line in out.splitlines()[1:]]


def test_runs_lists_newest_first_with_state_and_counts(repo: str) -> None:
    result = run(repo, "runs")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split()[:5] == ["Run", "Started", "State", "Tests", "Failed"]
    newest = lines[1].split()
    assert newest[0] == "4"
    assert newest[3:6] == ["failed", "2", "1"]
    assert "main @ cccc4444" in lines[1]
    assert _ids(result.stdout) == ["4", "3", "2", "1"]
    assert _ids(run(repo, "runs", "list").stdout) == ["4", "3", "2", "1"]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (["--branch", "main"], ["4", "3", "1"]),
        (["--commit", "aaaa"], ["3", "1"]),
        (["--commit", "bbbb2222"], ["2"]),
        (["--since", "36h"], ["4", "3"]),
        (["--until", "36h"], ["2", "1"]),
        (["--branch", "main", "-n", "1"], ["4"]),
    ],
)
def test_runs_are_filtered(repo: str, filters: list[str], expected: list[str]) -> None:
    assert _ids(run(repo, "runs", *filters).stdout) == expected


def test_runs_filtered_to_nothing_says_so(repo: str) -> None:
    result = run(repo, "runs", "--branch", "nope")
    assert result.exit_code == 0
    assert result.stdout == "No runs match.\n"
    bad = run(repo, "runs", "--since", "last tuesday")
    assert bad.exit_code == 2
    assert "neither a date" in bad.stderr


def test_runs_show_gives_metadata_tests_and_totals(repo: str) -> None:
    result = run(repo, "runs", "show", "4")
    assert result.exit_code == 1  # the run failed
    out = result.stdout
    assert out.startswith("Run:")
    assert "main @ cccc4444" in out
    assert "State:    failed" in out
    assert "t.a [" in out
    assert "Ran: 2 tests" in out
    passed = run(repo, "runs", "show", "-2")
    assert passed.exit_code == 0
    assert "run 3 (" in passed.stdout


def test_runs_remove_deletes_runs_and_their_failures(repo: str) -> None:
    assert run(repo, "failing", "--list").stdout == "t.a\n"
    result = run(repo, "runs", "remove", "4")
    assert result.exit_code == 0
    assert result.stdout == "Removed run 4.\n"
    assert _ids(run(repo, "runs").stdout) == ["3", "2", "1"]
    assert run(repo, "failing", "--list").stdout == ""
    missing = run(repo, "runs", "remove", "4")
    assert missing.exit_code == 2
    assert "no run 4" in missing.stderr


def test_gc_keeps_the_newest_runs(repo: str) -> None:
    dry = run(repo, "gc", "--keep", "2", "--dry-run")
    assert dry.stdout.splitlines()[0] == "Would remove 2 runs."
    assert _ids(run(repo, "runs").stdout) == ["4", "3", "2", "1"]
    done = run(repo, "gc", "--keep", "2")
    assert done.exit_code == 0
    assert done.stdout.startswith("Removed 2 runs")
    assert _ids(run(repo, "runs").stdout) == ["4", "3"]


def test_gc_removes_runs_older_than_an_age(repo: str) -> None:
    run(repo, "gc", "--older-than", "36h")
    assert _ids(run(repo, "runs").stdout) == ["4", "3"]
    none = run(repo, "gc")
    assert none.exit_code == 2
    assert "--keep N and/or --older-than" in none.stderr


def test_export_writes_a_run_python_subunit_reads(repo: str, tmp_path: Path) -> None:
    import subunit
    import testtools

    result = run(repo, "export", "4")
    assert result.exit_code == 0
    seen: dict[str, Any] = {}
    summary = testtools.StreamToDict(lambda test: seen.__setitem__(test["id"], test))
    summary.startTestRun()
    subunit.ByteStreamToStreamResult(io.BytesIO(result.stdout_bytes)).run(summary)
    summary.stopTestRun()
    assert {name: test["status"] for name, test in seen.items()} == {
        "t.a": "fail",
        "t.b": "success",
    }
    assert b"AssertionError" in b"".join(seen["t.a"]["details"]["traceback"].iter_bytes())
    out = tmp_path / "run.xml"
    assert run(repo, "export", "last", "--format", "junit", "-o", str(out)).exit_code == 0
    assert out.read_bytes().startswith(b"<?xml")
    v1 = run(repo, "export", "-1", "--format", "v1").stdout
    assert "failure: t.a" in v1


def test_an_unfinished_run_is_running_while_its_writer_lives(tmp_path: Path) -> None:
    url = str(tmp_path / ".proctor")
    with open_store(url) as store:
        writer = store.begin_run()
        writer.add(collect_records(v2.decode(stream({"t.a": Status.SUCCESS})))[0])
        writer.flush()
        assert "running" in invoke("runs", "--repository", url).stdout
        writer.interrupt()  # (and its connection closed)
    from proctor.store.contract import writer_alive

    assert writer_alive("elsewhere.example:1") is None
    assert writer_alive("nonsense") is False
    assert writer_alive(f"{socket.gethostname()}:999999999") is False
    assert writer_alive(f"{socket.gethostname()}:{os.getpid()}") is True


def test_gc_and_remove_keep_a_run_that_is_being_written(repo: str) -> None:
    with open_store(repo) as store:
        writer = store.begin_run()
        writer.add(collect_records(v2.decode(stream({"t.a": Status.SUCCESS})))[0])
        writer.flush()
        done = run(repo, "gc", "--keep", "0")
        assert done.exit_code == 0
        assert done.stdout.startswith("Removed 4 runs")
        assert done.stdout.endswith(
            "\nKept run 5: still being written (or written from another host, which cannot "
            "be checked).\n"
        )
        refused = run(repo, "runs", "remove", "5")
        assert refused.exit_code == 2
        assert "run 5 was not removed: it is still being written by" in refused.stderr
        writer.add(collect_records(v2.decode(stream({"t.b": Status.SUCCESS})))[0])
        assert writer.finish().counts.total == 2  # the writer never noticed
        writer = store.begin_run()
        writer.flush()
        assert run(repo, "runs", "remove", "--force", "6").stdout == "Removed run 6.\n"
        assert writer.interrupt() is None
    assert _ids(run(repo, "runs").stdout) == ["5"]


def test_gc_says_how_much_space_it_gave_back(tmp_path: Path) -> None:
    import random
    import sqlite3

    from proctor.wire.record import Attachment, TestRecord

    url = str(tmp_path / ".proctor")
    rng = random.Random(5)
    with open_store(url) as store:
        for _ in range(4):
            blob = Attachment("blob", rng.randbytes(500_000))
            store.write_run([TestRecord("t.a", Status.FAIL, attachments=(blob,))])
    done = invoke("gc", "--keep", "1", "--repository", url)
    assert done.exit_code == 0
    assert "Gave 1." in done.stdout  # about 1.4 MiB
    assert "MiB back to the disk: the repository takes" in done.stdout
    assert "--vacuum" not in done.stdout
    # A repository made before incremental auto-vacuum keeps the space until vacuumed.
    conn = sqlite3.connect(Path(url) / "repository.sqlite", isolation_level=None)
    conn.execute("PRAGMA auto_vacuum = NONE")
    conn.execute("VACUUM")
    conn.close()
    with open_store(url) as store:
        for _ in range(3):
            blob = Attachment("blob", rng.randbytes(500_000))
            store.write_run([TestRecord("t.a", Status.FAIL, attachments=(blob,))])
    kept = invoke("gc", "--keep", "1", "--repository", url)
    assert "stays free inside the repository's file" in kept.stdout
    assert "`proctor gc --vacuum` gives it back" in kept.stdout
    vacuumed = invoke("gc", "--vacuum", "--repository", url)
    assert vacuumed.stdout.startswith("Removed 0 runs")
    assert "MiB back to the disk" in vacuumed.stdout
