"""Known-bug rules name what explains failures in `triage`, `triage failures`,
`triage show` and `last`: a rule added with `proctor rules add --yes` to the
project's proctor-rules.toml, on repositories filled by real `proctor load`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from proctor.wire.event import NS_PER_SECOND

from .history_streams import T0
from .invoke import invoke
from .test_rules_commands import KEYERROR, TIMEOUT, failing_run

SINCE = "2023-11-01"
TIMEOUT_TESTS = {"tests.test_api.test_get", "tests.test_api.test_list"}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A project (the working directory) with two runs loaded: timeouts and a key error."""
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'shop'\n")
    monkeypatch.chdir(tmp_path)
    url = str(tmp_path / ".proctor")
    runs = [
        {"tests.test_api.test_get": TIMEOUT, "tests.test_config.test_colour": KEYERROR},
        {"tests.test_api.test_list": TIMEOUT, "tests.test_config.test_colour": KEYERROR},
    ]
    for number, failures in enumerate(runs):
        loaded = invoke("load", "--repository", url, stdin=failing_run(failures, T0 + number))
        assert loaded.exit_code == 1, loaded.stderr
    return url


def add_rule(url: str) -> str:
    added = invoke(
        "rules", "add", "LP#7", "--where", 'type = "TimeoutError"', "--yes", "--repository", url
    )
    assert added.exit_code == 0, added.stderr
    assert Path("proctor-rules.toml").is_file()  # the project's file, by default
    (rule,) = json.loads(invoke("rules", "list", "--json", "--repository", url).stdout)["rules"]
    return str(rule["id"])


def test_without_rules_nothing_is_explained(project: str) -> None:
    document = json.loads(
        invoke("triage", "--since", SINCE, "--json", "--repository", project).stdout
    )
    assert [(c["rule"], c["bug"]) for c in document["clusters"]] == [(None, None)] * 2
    assert "known:" not in invoke("last", "--repository", project).stdout


def test_a_rule_names_its_bug_in_triage_failures_show_and_last(project: str) -> None:
    rule = add_rule(project)
    document = json.loads(
        invoke("triage", "--since", SINCE, "--json", "--repository", project).stdout
    )
    explained = {c["key"].split(" ", 1)[0]: (c["rule"], c["bug"]) for c in document["clusters"]}
    assert explained == {"TimeoutError": (rule, "LP#7"), "KeyError": (None, None)}
    text = invoke("triage", "--since", SINCE, "--repository", project).stdout
    assert f"known: bug LP#7 (rule {rule})" in text

    lines = invoke("triage", "failures", "--json", "--since", SINCE, "--repository", project)
    rows = [json.loads(line) for line in lines.stdout.splitlines()]
    assert len(rows) == 4
    for row in rows:
        timeout = row["test"] in TIMEOUT_TESTS
        assert (row["rule"], row["bug"]) == ((rule, "LP#7") if timeout else (None, None)), row

    cluster = next(c["id"] for c in document["clusters"] if c["rule"] == rule)
    shown = json.loads(invoke("triage", "show", cluster, "--json", "--repository", project).stdout)
    assert (shown["rule"], shown["bug"]) == (rule, "LP#7")

    last = invoke("last", "--repository", project)
    assert last.exit_code == 1
    assert f"known: bug LP#7 (rule {rule})" in last.stdout
    assert last.stdout.count("known:") == 1  # the key error is not explained


def test_a_rule_on_the_test_explains_only_that_tests_failures(project: str) -> None:
    added = invoke(
        "rules", "add", "LP#8", "--where", 'test ~ "test_get$"', "--yes", "--repository", project
    )
    assert added.exit_code == 0, added.stderr
    lines = invoke("triage", "failures", "--json", "--since", SINCE, "--repository", project)
    bugs = {json.loads(line)["test"]: json.loads(line)["bug"] for line in lines.stdout.splitlines()}
    assert bugs == {
        "tests.test_api.test_get": "LP#8",
        "tests.test_api.test_list": None,
        "tests.test_config.test_colour": None,
    }


def test_a_broken_rules_file_is_a_clear_error_for_triage_and_a_note_for_last(
    project: str,
) -> None:
    Path("proctor-rules.toml").write_text("[[rule]]\nid = 'x'\nbug = 'LP#1'\nwhere = 'type ='\n")
    result = invoke("triage", "--since", SINCE, "--repository", project)
    assert result.exit_code != 0
    assert "proctor-rules.toml" in result.stderr
    assert "Traceback" not in result.stderr
    last = invoke("last", "--repository", project)
    assert last.exit_code == 1  # the run failed; the rules are only a note
    assert "known-bug rules not applied" in last.stderr
    assert "Failure clusters" in last.stdout


@pytest.mark.slow
def test_last_imports_nothing_of_the_rules_without_a_rules_file(project: str) -> None:
    code = (
        "import sys; from proctor.cli.main import main; "
        f"main(['last', '--repository', {project!r}]); "
        "print(sorted(m for m in ('proctor.triage.rules', 'proctor.triage.explain', 'hashlib') "
        "if m in sys.modules), file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    assert done.stderr.strip().splitlines()[-1] == "[]", done.stderr


@pytest.mark.slow
def test_run_names_the_bug_of_a_failure_a_rule_explains(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'shop'\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "__init__.py").write_text("")
    (tmp_path / "tests" / "test_shop.py").write_text(
        "import unittest\n\n\nclass T(unittest.TestCase):\n"
        "    def test_get(self):\n        raise TimeoutError('connection refused by host')\n\n"
        "    def test_ok(self):\n        pass\n"
    )

    def proctor(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "proctor", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=120,
        )

    first = proctor("run")
    assert first.returncode == 1, first.stderr
    assert "Failure clusters (1;" in first.stdout
    assert "known:" not in first.stdout
    added = proctor("rules", "add", "LP#7", "--where", 'type = "TimeoutError"', "--yes")
    assert added.returncode == 0, added.stderr
    second = proctor("run")
    assert second.returncode == 1, second.stderr
    assert "known: bug LP#7 (rule " in second.stdout


def test_a_closed_bug_whose_rule_explains_new_failures_is_regressed_in_triage(
    project: str,
) -> None:
    opened = invoke("bug", "new", "Timeouts on the API", "--json", "--repository", project)
    assert opened.exit_code == 0, opened.stderr
    bug = json.loads(opened.stdout)["short_id"]
    added = invoke(
        "rules", "add", bug, "--where", 'type = "TimeoutError"', "--yes", "--repository", project
    )
    assert added.exit_code == 0, added.stderr

    def timeout_cluster() -> dict[str, object]:
        shown = invoke("triage", "--since", SINCE, "--json", "--repository", project)
        assert shown.exit_code == 0, shown.stderr
        (found,) = [c for c in json.loads(shown.stdout)["clusters"] if c["bug"] == bug]
        return dict(found)

    # Open: no closing to speak of.
    assert (timeout_cluster()["bug_closed_ns"], timeout_cluster()["bug_regressed"]) == (None, False)
    closed = invoke("bug", "close", bug, "--repository", project)
    assert closed.exit_code == 0, closed.stderr
    # Closed after every failure so far: the fix holds.
    held = timeout_cluster()
    assert isinstance(held["bug_closed_ns"], int)
    assert held["bug_closed_ns"] > T0
    assert held["bug_regressed"] is False
    assert held["state"] != "regressed"
    assert "REGRESSED" not in invoke("triage", "--since", SINCE, "--repository", project).stdout

    # A timeout in a run begun after the closing: the rule explains it, the fix did not hold.
    later = time.time_ns() + NS_PER_SECOND
    loaded = invoke(
        "load",
        "--repository",
        project,
        stdin=failing_run({"tests.test_api.test_get": TIMEOUT}, later),
    )
    assert loaded.exit_code == 1, loaded.stderr
    again = timeout_cluster()
    assert (again["bug_regressed"], again["state"]) == (True, "regressed")
    assert again["bug_closed_ns"] == held["bug_closed_ns"]
    key_error = [
        c
        for c in json.loads(
            invoke("triage", "--since", SINCE, "--json", "--repository", project).stdout
        )["clusters"]
        if c["bug"] is None
    ]
    assert [c["bug_regressed"] for c in key_error] == [False]
    text = invoke("triage", "--since", SINCE, "--repository", project).stdout
    assert f"known: bug {bug} (rule " in text
    assert "REGRESSED, failing again since" in text
    shown = invoke("triage", "show", str(again["id"]), "--repository", project)
    assert shown.exit_code == 0, shown.stderr
    assert f"Known: bug {bug}" in shown.stdout
    assert "REGRESSED" in shown.stdout
    detail = json.loads(
        invoke("triage", "show", str(again["id"]), "--json", "--repository", project).stdout
    )
    assert detail["bug_regressed"] is True

    # Reopened: no longer a closed bug failing again, only an open one.
    assert invoke("bug", "reopen", bug, "--repository", project).exit_code == 0
    assert timeout_cluster()["bug_closed_ns"] is None
