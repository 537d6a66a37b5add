"""`proctor bug new --from-cluster` and `bug show`'s live evidence for linked
clusters and rules, on a repository filled by real `proctor load` of generated
v2 streams with failures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from proctor.wire.event import NS_PER_SECOND

from .history_streams import T0
from .invoke import Result, invoke
from .test_rules_commands import KEYERROR, TIMEOUT, failing_run, traceback

DAY = 86_400 * NS_PER_SECOND
SINCE = "2023-11-01"
HOSTILE = traceback("evil.py", "boom", "raise ValueError(x)", "ValueError: \x1b[2J\x07 gone\x00")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Three runs on three days at three commits: timeouts in each, a key error in the first."""
    monkeypatch.setenv("PROCTOR_AUTHOR", "Ann <ann@example.org>")
    monkeypatch.delenv("PROCTOR_REPOSITORY", raising=False)
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'shop'\n")
    monkeypatch.chdir(tmp_path)
    url = str(tmp_path / ".proctor")
    runs = [
        {"tests.test_api.test_get": TIMEOUT, "tests.test_config.test_colour": KEYERROR},
        {"tests.test_api.test_list": TIMEOUT},
        {"tests.test_api.test_get": TIMEOUT, "tests.test_evil.test_boom": HOSTILE},
    ]
    for day, failures in enumerate(runs):
        loaded = invoke(
            "load",
            "--commit",
            f"{day + 1}" * 40,
            "--branch",
            "main",
            "--repository",
            url,
            stdin=failing_run(failures, T0 + day * DAY),
        )
        assert loaded.exit_code == 1, loaded.stderr
    return url


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.stderr
    return result.stdout


def cluster_of(url: str, word: str) -> dict[str, Any]:
    document = json.loads(ok(invoke("triage", "--since", SINCE, "--json", "--repository", url)))
    (found,) = [c for c in document["clusters"] if str(c["key"]).startswith(word)]
    return found  # type: ignore[no-any-return]


def show(url: str, bug_id: str) -> dict[str, Any]:
    args = ("bug", "show", bug_id, "--days", "365", "--json", "--repository", url)
    return json.loads(ok(invoke(*args)))  # type: ignore[no-any-return]


def test_a_bug_from_a_cluster_holds_its_evidence_and_links_it(project: str) -> None:
    cluster = cluster_of(project, "TimeoutError")
    made = ok(
        invoke(
            "bug", "new", "--from-cluster", str(cluster["id"]), "--json", "--repository", project
        )
    )
    bug_id = json.loads(made)["id"]
    document = show(project, bug_id)
    bug = document["bug"]
    assert bug["title"] == cluster["key"]  # no TITLE: the cluster's key
    assert bug["links"] == [{"kind": "cluster", "target": cluster["id"]}]
    text = bug["description"]
    assert f"Failure cluster {cluster['id']}" in text
    assert "3 failure(s) of 2 test(s) in 3 run(s)" in text
    assert "first seen 2023-11-14" in text  # T0's day, the first run
    assert "last seen 2023-11-16" in text
    assert "tests.test_api.test_get\n  tests.test_api.test_list" in text
    assert "TimeoutError: connection refused by host" in text  # the traceback
    assert "KeyError" not in text  # another cluster's
    (live,) = document["evidence"]
    assert (live["state"], live["failures"], live["executions"]) == ("found", 3, 3)
    assert live["commits"] == ["3" * 40, "2" * 40, "1" * 40]
    assert live["last_failed_commit"] == "3" * 40
    assert len(live["runs"]) == 3
    assert live["last_failed_run"] == live["runs"][0]
    assert len(live["failures_per_day"]) == 365  # per day: tests/bugs/test_evidence.py
    listing = ok(invoke("bug", "show", bug_id, "--days", "365", "--repository", project))
    assert "3 failure(s) in 3 run(s)" in listing


def test_a_title_and_description_come_first(project: str) -> None:
    cluster = str(cluster_of(project, "KeyError")["id"])
    made = invoke(
        "bug", "new", "Colour setting lost", "-d", "Seen on CI.", "--from-cluster", cluster,
        "--json", "--repository", project,
    )  # fmt: skip
    bug = show(project, json.loads(ok(made))["id"])["bug"]
    assert isinstance(bug, dict)
    assert bug["title"] == "Colour setting lost"
    assert str(bug["description"]).startswith("Seen on CI.\n\nFailure cluster ")
    assert "1 failure(s) of 1 test(s) in 1 run(s)" in str(bug["description"])


def test_hostile_test_output_is_neutralised_in_the_bug(project: str) -> None:
    cluster = str(cluster_of(project, "ValueError")["id"])
    made = invoke("bug", "new", "--from-cluster", cluster, "--json", "--repository", project)
    bug_id = json.loads(ok(made))["id"]
    shown = ok(invoke("bug", "show", bug_id, "--repository", project))
    for char in "\x1b\x07\x00":
        assert char not in shown
    assert "gone" in shown


def test_an_unknown_cluster_is_a_clear_error_and_opens_no_bug(project: str) -> None:
    result = invoke("bug", "new", "--from-cluster", "nosuch", "--repository", project)
    assert result.exit_code != 0
    assert "no failure cluster 'nosuch'" in result.stderr
    assert "Traceback" not in result.stderr
    assert json.loads(ok(invoke("bug", "list", "--json", "--repository", project)))["bugs"] == []
    neither = invoke("bug", "new", "--repository", project)
    assert neither.exit_code == 2
    assert "TITLE" in neither.stderr


def test_a_linked_rule_and_an_unknown_cluster_have_live_evidence(project: str) -> None:
    added = invoke(
        "rules", "add", "LP#7", "--where", 'type = "TimeoutError"', "--yes", "--repository", project
    )
    assert added.exit_code == 0, added.stderr
    (rule,) = json.loads(ok(invoke("rules", "list", "--json", "--repository", project)))["rules"]
    bug_id = json.loads(ok(invoke("bug", "new", "Timeouts", "--json", "--repository", project)))[
        "id"
    ]
    ok(invoke("bug", "link", bug_id, "rule", rule["id"], "--repository", project))
    ok(invoke("bug", "link", bug_id, "cluster", "gone", "--repository", project))
    found = {e["kind"]: e for e in show(project, bug_id)["evidence"]}
    assert (found["rule"]["state"], found["rule"]["failures"]) == ("found", 3)
    assert found["rule"]["executions"] == 5  # of all the failures
    assert len(found["rule"]["runs"]) == 3
    assert found["cluster"]["state"] == "unknown"
    text = ok(invoke("bug", "show", bug_id, "--repository", project))
    assert "explains 3 of 5 failure(s)" in text
