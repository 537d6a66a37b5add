"""``--json`` of ``last``, ``failing``, ``slowest``, ``history``, ``runs``, ``stats``.

Each shape is pinned here field by field (docs/json.md documents them): a
script or the dashboard written against one must not break silently. Strings
are what the tests gave, JSON-escaped, and the output is ASCII.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from proctor.wire import v2
from proctor.wire.event import Event, Status

from .history_streams import T0, stream
from .invoke import invoke

OUTCOMES = {
    "pkg.T.test_pass": Status.SUCCESS,
    "pkg.T.test_fail": Status.FAIL,
    "pkg.T.test_skip": Status.SKIP,
    "pkg.T.test_xfail": Status.XFAIL,
}

RUN_KEYS = {
    "id",
    "state",
    "succeeded",
    "interrupted",
    "started_ns",
    "finished_ns",
    "wall_seconds",
    "test_seconds",
    "counts",
    "source",
    "partial",
    "git",
    "python",
    "platform",
    "host",
    "command",
    "ci",
    "properties",
}
COUNT_KEYS = {
    "ran",
    "passed",
    "failed",
    "skipped",
    "xfail",
    "uxsuccess",
    "unfinished",
    "listed",
    "failures",
}
RESULT_KEYS = {
    "id",
    "status",
    "worker",
    "route",
    "tags",
    "start_ns",
    "stop_ns",
    "duration_seconds",
    "attachments",
}
ATTACHMENT_KEYS = {"name", "mime_type", "size", "text", "base64"}
STATS_OF_TEST_KEYS = {
    "executions",
    "passed",
    "failed",
    "skipped",
    "timed",
    "mean_seconds",
    "min_seconds",
    "max_seconds",
    "last_seconds",
    "expected_seconds",
    "last_run",
}


@pytest.fixture
def repo(tmp_path: Path) -> str:
    repo = str(tmp_path / ".proctor")
    loaded = invoke(
        "load",
        "--repository",
        repo,
        "--branch",
        "main",
        "--commit",
        "abc123",
        stdin=stream(OUTCOMES),
    )
    assert loaded.exit_code == 1
    return repo


def answer(repo: str, *args: str, code: int = 0) -> Any:
    result = invoke(*args, "--json", "--repository", repo)
    assert result.exit_code == code, result.stderr
    assert result.stdout_bytes.isascii()
    document = json.loads(result.stdout)
    assert document["schema"] == 1
    return document


def check_run(run: dict[str, Any]) -> None:
    assert set(run) == RUN_KEYS
    assert set(run["counts"]) == COUNT_KEYS
    assert set(run["git"]) == {"commit", "branch", "dirty"}
    assert run["id"] == 1
    assert run["state"] == "failed"
    assert run["succeeded"] is False
    assert run["interrupted"] is False
    assert run["started_ns"] == T0
    assert isinstance(run["finished_ns"], int)
    assert run["wall_seconds"] == pytest.approx(0.1)
    assert run["test_seconds"] == pytest.approx(0.1)
    assert run["counts"] == {
        "ran": 4,
        "passed": 1,
        "failed": 1,
        "skipped": 1,
        "xfail": 1,
        "uxsuccess": 0,
        "unfinished": 0,
        "listed": 0,
        "failures": 1,
    }
    assert run["source"] == "load"
    assert run["partial"] is True
    assert run["git"] == {"commit": "abc123", "branch": "main", "dirty": None}
    assert run["properties"] == {}


def check_failure(result: dict[str, Any]) -> None:
    assert set(result) == RESULT_KEYS
    assert result["id"] == "pkg.T.test_fail"
    assert result["status"] == "fail"
    assert result["worker"] == "1"
    assert result["route"] is None
    assert result["tags"] == ["worker-1"]
    assert result["stop_ns"] - result["start_ns"] == 20_000_000
    assert result["duration_seconds"] == pytest.approx(0.02)
    [traceback] = result["attachments"]
    assert set(traceback) == ATTACHMENT_KEYS
    assert traceback["name"] == "traceback"
    assert traceback["text"].endswith("AssertionError: 1 != 2\n")
    assert traceback["size"] == len(traceback["text"].encode())
    assert traceback["base64"] is None


def test_last_json_is_the_run_and_its_results(repo: str) -> None:
    document = answer(repo, "last", code=1)
    assert set(document) == {"schema", "run", "results"}
    check_run(document["run"])
    results = {r["id"]: r for r in document["results"]}
    assert [r["status"] for r in document["results"]] == ["success", "fail", "skip", "xfail"]
    check_failure(results["pkg.T.test_fail"])
    [reason] = results["pkg.T.test_skip"]["attachments"]
    assert reason["text"] == "needs a network"
    quiet = answer(repo, "last", "-q", code=1)
    assert [r["id"] for r in quiet["results"]] == ["pkg.T.test_fail"]
    assert answer(repo, "runs", "show", "1", code=1) == document  # the same shape


def test_failing_json(repo: str) -> None:
    document = answer(repo, "failing", code=1)
    assert set(document) == {"schema", "count", "tests"}
    assert document["count"] == 1
    check_failure(document["tests"][0])


def test_slowest_json(repo: str) -> None:
    document = answer(repo, "slowest", "-n", "2")
    assert set(document) == {"schema", "ranking", "run", "tests"}
    assert (document["ranking"], document["run"]) == ("run", 1)
    assert [t["id"] for t in document["tests"]] == ["pkg.T.test_xfail", "pkg.T.test_skip"]
    first = document["tests"][0]
    assert set(first) == {"id", "duration_seconds", "history"}
    assert first["duration_seconds"] == pytest.approx(0.04)
    assert set(first["history"]) == STATS_OF_TEST_KEYS
    assert first["history"]["executions"] == 1
    assert first["history"]["mean_seconds"] == pytest.approx(0.04)
    by_mean = answer(repo, "slowest", "--average", "-n", "1")
    assert (by_mean["ranking"], by_mean["run"]) == ("mean", None)


def test_history_json(repo: str) -> None:
    document = answer(repo, "history", "pkg.T.test_fail")
    assert set(document) == {"schema", "test", "history", "executions", "not_shown"}
    assert document["test"] == "pkg.T.test_fail"
    assert set(document["history"]) == STATS_OF_TEST_KEYS
    assert (document["history"]["executions"], document["history"]["failed"]) == (1, 1)
    [execution] = document["executions"]
    assert execution == {
        "run": 1,
        "run_started_ns": T0,
        "status": "fail",
        "route": None,
        "worker": None,
        "start_ns": T0 + 10_000_000,
        "duration_seconds": pytest.approx(0.02),
        "git": {"commit": "abc123", "branch": "main"},
    }
    assert document["not_shown"] == 0


def test_runs_json(repo: str) -> None:
    document = answer(repo, "runs")
    assert set(document) == {"schema", "runs"}
    [run] = document["runs"]
    check_run(run)
    assert answer(repo, "runs", "list", "--branch", "nope") == {"schema": 1, "runs": []}


def test_stats_json(repo: str) -> None:
    document = answer(repo, "stats")
    assert set(document) == {
        "schema",
        "repository",
        "backend",
        "schema_version",
        "runs",
        "interrupted_runs",
        "first_started_ns",
        "last_started_ns",
        "results",
        "tests",
        "failing",
        "attachments",
        "attachment_bytes",
        "blobs",
        "blob_bytes",
        "size_bytes",
    }
    assert document["backend"] == "sqlite"
    assert (document["runs"], document["results"], document["tests"]) == (1, 4, 4)
    assert (document["failing"], document["attachments"]) == (1, 2)
    assert document["first_started_ns"] == document["last_started_ns"] == T0


def test_strings_are_what_the_tests_gave(tmp_path: Path) -> None:
    repo = str(tmp_path / ".proctor")
    odd = 'pkg.T.test_\x1b]0;title\x07 ünïcode \u202e "quoted" \\ \n'
    binary = bytes(range(256))
    events = [
        Event(odd, Status.INPROGRESS, timestamp=T0),
        Event(odd, file_name="stdout", file_bytes="é\x1b[2J\r\n".encode(), mime_type="text/plain"),
        Event(odd, file_name="core", file_bytes=binary, mime_type="application/octet-stream"),
        Event(odd, Status.FAIL, timestamp=T0 + 1, file_name="stdout", eof=True),
    ]
    invoke("load", "--repository", repo, stdin=v2.encode_many(events))
    document = answer(repo, "failing", code=1)
    [test] = document["tests"]
    assert test["id"] == odd
    stdout, core = test["attachments"]
    assert stdout["text"] == "é\x1b[2J\r\n"
    assert core["text"] is None
    assert base64.b64decode(core["base64"]) == binary
    history = answer(repo, "history", odd)
    assert history["test"] == odd


@pytest.mark.parametrize(
    "command", [["last", "--subunit"], ["last", "--junit", "-"], ["failing", "--list"]]
)
def test_json_and_another_stdout_format_are_a_usage_error(repo: str, command: list[str]) -> None:
    result = invoke(*command, "--json", "--repository", repo)
    assert result.exit_code == 2
    assert "--json" in result.stderr
