"""`proctor triage`, `triage show`, `triage failures`, `triage recluster`, `proctor flaky`
and the cluster notes of `proctor last`, in process on SQLite repositories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proctor.store import open_store
from proctor.store.model import RunMetadata
from proctor.wire.event import Status
from tests.triage.history import DAY, T0, fault, ok, store_run

from .history_streams import stream
from .invoke import Result, invoke

SINCE = "2023-11-01"  # before T0: every run of these histories


@pytest.fixture
def repo(tmp_path: Path) -> str:
    url = str(tmp_path / ".proctor")
    with open_store(url, create=True) as store:
        for day in range(4):
            records = [fault("t_a", "steady"), fault("t_b", "steady"), ok("t_ok")]
            records.append(fault("t_flaky", "flip") if day == 2 else ok("t_flaky"))
            store_run(store, records, day=day)
    return url


def run(repo: str, *args: str) -> Result:
    return invoke(*args, "--repository", repo)


def test_triage_lists_clusters_most_common_first(repo: str) -> None:
    result = run(repo, "triage", "--since", SINCE)
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert "9 failures in 2 clusters over 4 runs" in text
    steady, flip = text.index("steady"), text.index("flip")
    assert steady < flip
    assert "NEW" in text
    assert "8 failures (88.9%), 2 tests, 4 runs" in text
    assert "KeyError: 'x'" in text  # the example's traceback


def test_triage_json_has_every_field(repo: str) -> None:
    result = run(repo, "triage", "--since", SINCE, "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["schema"] == 1
    assert document["failures"] == 9
    assert len(document["window"]["runs"]) == 4
    first = document["clusters"][0]
    assert set(first) == {
        "id", "signature", "algorithm", "kind", "key", "failures", "tests", "runs",
        "first_seen_ns", "last_seen_ns", "first_seen_ever_ns", "trend", "state", "share",
        "rule", "bug", "bug_closed_ns", "bug_regressed", "example",
    }  # fmt: skip
    assert (first["failures"], first["tests"], first["runs"]) == (8, 2, 4)
    assert first["state"] == "new"
    assert sum(first["trend"]) == 8
    assert first["rule"] is None
    assert first["bug"] is None
    assert first["example"]["test"] in ("t_a", "t_b")
    assert "KeyError" in first["example"]["traceback"]
    # --runs and --branch narrow the window
    two = json.loads(run(repo, "triage", "--runs", "2", "--json").stdout)
    assert two["failures"] == 5
    none = json.loads(run(repo, "triage", "--since", SINCE, "--branch", "x", "--json").stdout)
    assert none["clusters"] == []
    # --until alone: the configured number of days before it (7: every run here)
    until = json.loads(run(repo, "triage", "--until", "2023-11-20", "--json").stdout)
    assert until["failures"] == 9
    too_early = json.loads(run(repo, "triage", "--until", "2023-11-13", "--json").stdout)
    assert too_early["failures"] == 0


def test_triage_show_gives_tests_runs_examples_and_history(repo: str) -> None:
    listing = json.loads(run(repo, "triage", "--since", SINCE, "--json").stdout)
    cluster = listing["clusters"][0]["id"]
    result = invoke("triage", "--repository", repo, "show", cluster)
    assert result.exit_code == 0, result.stderr
    assert f"Cluster {cluster}" in result.stdout
    assert "Tests (2):" in result.stdout
    assert "Runs (4), newest first:" in result.stdout
    assert "Example 1:" in result.stdout
    assert "Example 2:" in result.stdout
    shown = json.loads(invoke("triage", "show", cluster, "--json", "--repository", repo).stdout)
    assert len(shown["failures"]) == 8
    assert sum(shown["per_day"]["counts"]) == 8
    missing = invoke("triage", "show", "0" * 16, "--repository", repo)
    assert missing.exit_code == 2
    assert "no cluster" in missing.stderr


def test_triage_failures_prints_one_json_object_per_failure(repo: str) -> None:
    result = invoke("triage", "failures", "--json", "--since", SINCE, "--repository", repo)
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 9
    for line in lines:
        assert {"run", "test", "cluster", "signature", "rule", "bug"} <= set(line)
    assert {line["test"] for line in lines} == {"t_a", "t_b", "t_flaky"}


def test_flaky_names_the_flaky_test_and_why(repo: str) -> None:
    result = run(repo, "flaky", "--since", SINCE, "--json")
    assert result.exit_code == 0, result.stderr
    tests = {test["id"]: test for test in json.loads(result.stdout)["tests"]}
    assert tests["t_flaky"]["verdict"] == "flaky"
    assert tests["t_flaky"]["evidence"][0]["commit"] == "c1"
    assert tests["t_a"]["verdict"] == "broken"
    text = run(repo, "flaky", "--since", SINCE).stdout
    assert "1 flaky and 2 broken tests" in text
    assert "failed in its last 3 runs" in text


def test_last_names_each_failures_cluster_and_marks_new_ones(repo: str) -> None:
    result = run(repo, "last")
    assert result.exit_code == 1
    assert "Failure clusters (1;" in result.stdout
    assert "also failed in 3 other runs since" in result.stdout
    with open_store(repo) as store:
        store_run(store, [fault("t_a", "steady"), fault("t_new", "brand_new")], day=5)
    text = run(repo, "last").stdout
    assert "NEW  1 failure" in text
    assert "first seen in this run" in text


def test_hostile_ids_and_tracebacks_are_neutralised(tmp_path: Path) -> None:
    url = str(tmp_path / ".proctor")
    evil = "t\x1b]0;pwned\x07\x1b[2J"
    with open_store(url, create=True) as store:
        store_run(store, [fault(evil, "boom", error="KeyError: '\x1b[31mred'")], day=0)
    for args in (["triage", "--since", SINCE], ["last"], ["flaky", "--since", SINCE]):
        result = run(url, *args)
        assert "\x1b" not in result.stdout, args
        assert "\x07" not in result.stdout, args
    cluster = json.loads(run(url, "triage", "--since", SINCE, "--json").stdout)["clusters"][0]
    shown = invoke("triage", "show", cluster["id"], "--repository", url)
    assert "\x1b" not in shown.stdout


def test_load_signs_failures_and_recluster_signs_an_old_history(tmp_path: Path) -> None:
    url = str(tmp_path / ".proctor")
    outcomes = {"pkg.a": Status.FAIL, "pkg.b": Status.SUCCESS}
    loaded = invoke("load", "--repository", url, stdin=stream(outcomes))
    assert loaded.exit_code == 1, loaded.stderr
    lines = invoke("triage", "failures", "--json", "--since", SINCE, "--repository", url)
    assert [json.loads(line)["test"] for line in lines.stdout.splitlines()] == ["pkg.a"]
    with open_store(url) as store:  # no signer: as stored before signatures existed
        store.write_run([fault("old", "f")], RunMetadata(started_ns=T0 + DAY))
    result = invoke("triage", "recluster", "--repository", url)
    assert result.exit_code == 0, result.stderr
    assert "Signed 1 failure under frames-v1 in 1 chunk." in result.stdout
    again = invoke("triage", "recluster", "--repository", url)
    assert "Signed 0 failures" in again.stdout
    document = json.loads(invoke("triage", "recluster", "--json", "--repository", url).stdout)
    assert document == {
        "schema": 1,
        "algorithm": "frames-v1",
        "signed": 0,
        "chunks": 0,
        "kept_ids": 0,
    }


def test_bad_triage_settings_are_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, repo: str
) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.proctor.triage]\nbroken_window = 'x'\n")
    monkeypatch.chdir(tmp_path)
    for command in ("triage", "flaky"):
        result = run(repo, command)
        assert result.exit_code == 2
        assert "[tool.proctor.triage]: broken_window = 'x'" in result.stderr
        assert "Traceback" not in result.stderr


def test_import_signs_the_failures_of_every_run(tmp_path: Path) -> None:
    from .test_history_load import _stestr_dir

    url = str(tmp_path / ".proctor")
    source = _stestr_dir(
        tmp_path / ".stestr",
        [{"i.a": Status.FAIL, "i.b": Status.SUCCESS}, {"i.a": Status.FAIL, "i.b": Status.FAIL}],
    )
    done = invoke("import", str(source), "--repository", url)
    assert done.exit_code == 0, done.stderr
    lines = invoke("triage", "failures", "--json", "--since", SINCE, "--repository", url)
    got = sorted((row["run"], row["test"]) for row in map(json.loads, lines.stdout.splitlines()))
    assert got == [(1, "i.a"), (2, "i.a"), (2, "i.b")]


def _two_clusters_sharing_a_prefix(repo: str) -> tuple[str, str]:
    """Rename the repository's two clusters to ids that share their first 5 characters."""
    from proctor.triage.signature import ALGORITHM

    listing = json.loads(run(repo, "triage", "--since", SINCE, "--json").stdout)
    digests = [cluster["signature"] for cluster in listing["clusters"]]
    ids = ("abcde" + "0" * 11, "abcde" + "1" * 11)
    with open_store(repo) as store:
        store.set_clusters(ALGORITHM, dict(zip(digests, ids, strict=True)))
    return ids


def test_triage_show_takes_a_unique_prefix_of_a_cluster_id(repo: str) -> None:
    listing = json.loads(run(repo, "triage", "--since", SINCE, "--json").stdout)
    cluster = listing["clusters"][0]["id"]
    result = invoke("triage", "show", cluster[:6], "--repository", repo)
    assert result.exit_code == 0, result.stderr
    assert f"Cluster {cluster}" in result.stdout
    shown = json.loads(invoke("triage", "show", cluster[:4], "--json", "--repository", repo).stdout)
    assert shown["cluster"] == cluster
    assert len(shown["failures"]) == 8


def test_an_ambiguous_or_short_cluster_prefix_is_an_error_naming_the_candidates(
    repo: str,
) -> None:
    first, second = _two_clusters_sharing_a_prefix(repo)
    ambiguous = invoke("triage", "show", "abcde", "--repository", repo)
    assert ambiguous.exit_code == 2
    assert "ambiguous" in ambiguous.stderr
    assert first in ambiguous.stderr
    assert second in ambiguous.stderr
    assert "KeyError" in ambiguous.stderr  # each candidate with its key
    assert "Traceback" not in ambiguous.stderr
    one = invoke("triage", "show", "abcde1", "--json", "--repository", repo)
    assert one.exit_code == 0, one.stderr
    assert json.loads(one.stdout)["cluster"] == second
    short = invoke("triage", "show", "abc", "--repository", repo)
    assert short.exit_code == 2
    assert "at least 4 characters" in short.stderr
    assert first in short.stderr
    unknown = invoke("triage", "show", "fedc", "--repository", repo)
    assert unknown.exit_code == 2
    assert "no failure cluster 'fedc'" in unknown.stderr
    assert "candidates" not in unknown.stderr


def test_bug_commands_take_a_cluster_prefix_and_link_the_whole_id(
    repo: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROCTOR_AUTHOR", "Ann <ann@example.org>")
    first, second = _two_clusters_sharing_a_prefix(repo)
    made = invoke("bug", "new", "--from-cluster", "abcde0", "--json", "--repository", repo)
    assert made.exit_code == 0, made.stderr
    bug_id = json.loads(made.stdout)["id"]
    ambiguous = invoke("bug", "new", "--from-cluster", "abcde", "--repository", repo)
    assert ambiguous.exit_code == 2
    assert first in ambiguous.stderr
    assert second in ambiguous.stderr
    linked = invoke("bug", "link", bug_id, "cluster", "abcde1", "--repository", repo)
    assert linked.exit_code == 0, linked.stderr
    elsewhere = invoke("bug", "link", bug_id, "cluster", "0123456789abcdef", "--repository", repo)
    assert elsewhere.exit_code == 0, elsewhere.stderr  # a cluster of another copy: as given
    shown = invoke("bug", "show", bug_id, "--json", "--repository", repo)
    links = json.loads(shown.stdout)["bug"]["links"]
    assert {"kind": "cluster", "target": first} in links
    assert {"kind": "cluster", "target": second} in links
    assert {"kind": "cluster", "target": "0123456789abcdef"} in links
    again = invoke("bug", "link", bug_id, "cluster", "abcde", "--repository", repo)
    assert again.exit_code == 2
    assert "ambiguous" in again.stderr
