"""``proctor rules`` on repositories filled by real ``proctor load`` of generated streams."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proctor.store import open_store
from proctor.triage.rules import StoreRuleBook
from proctor.triage.rules_file import read_rules
from proctor.wire import v2
from proctor.wire.event import NS_PER_SECOND, Event, Status

from .history_streams import T0, TRACEBACK_MIME
from .invoke import Result, invoke


def traceback(path: str, function: str, line: str, error: str) -> bytes:
    return (
        "Traceback (most recent call last):\n"
        f'  File "/src/shop/{path}", line 12, in {function}\n'
        f"    {line}\n"
        f"{error}\n"
    ).encode()


TIMEOUT = traceback(
    "client.py", "get", "return self.session.get(url)", "TimeoutError: connection refused by host"
)
KEYERROR = traceback("config.py", "setting", "return settings[name]", "KeyError: 'colour'")
VALUE = traceback("cart.py", "total", "raise ValueError(price)", "ValueError: -3")


def failing_run(failures: dict[str, bytes], start: int) -> bytes:
    events = []
    for index, (test_id, text) in enumerate([*failures.items(), ("tests.test_ok.test_ok", b"")]):
        now = start + index * NS_PER_SECOND
        events.append(Event(test_id, Status.INPROGRESS, timestamp=now))
        if text:
            events.append(
                Event(
                    test_id,
                    file_name="traceback",
                    file_bytes=text,
                    eof=True,
                    mime_type=TRACEBACK_MIME,
                )
            )
        status = Status.FAIL if text else Status.SUCCESS
        events.append(Event(test_id, status, timestamp=now + NS_PER_SECOND // 2))
    return v2.encode_many(events)


@pytest.fixture
def repo(tmp_path: Path) -> str:
    """Three runs loaded: 4 timeouts (2 tests), 2 key errors (1 test), 1 value error."""
    url = str(tmp_path / ".proctor")
    runs = [
        {
            "tests.test_api.test_get": TIMEOUT,
            "tests.test_api.test_list": TIMEOUT,
            "tests.test_config.test_colour": KEYERROR,
        },
        {"tests.test_api.test_get": TIMEOUT, "tests.test_config.test_colour": KEYERROR},
        {"tests.test_api.test_list": TIMEOUT, "tests.test_cart.test_total": VALUE},
    ]
    for number, failures in enumerate(runs):
        loaded = invoke(
            "load",
            "--repository",
            url,
            stdin=failing_run(failures, T0 + number * 100 * NS_PER_SECOND),
        )
        assert loaded.exit_code == 1, loaded.stderr  # the runs failed
    return url


def rules(repo: str, rules_file: Path, *args: str) -> Result:
    return invoke("rules", *args, "--file", str(rules_file), "--repository", repo)


def repository_rules(repo: str) -> list[tuple[str, str, str, str, str]]:
    store = open_store(repo, create=False)
    try:
        return [rule.row for rule in StoreRuleBook(store).load()]
    finally:
        store.close()


def test_add_previews_then_saves_to_the_file_and_the_repository(repo: str, tmp_path: Path) -> None:
    path = tmp_path / "proctor-rules.toml"
    added = rules(repo, path, "add", "LP#1", "--where", 'type = "TimeoutError"', "--yes")
    assert added.exit_code == 0, added.stderr
    assert "Would explain 4 of 7 failures" in added.stdout
    assert "1 cluster, 2 tests, 3 runs" in added.stdout
    assert "TimeoutError @ shop/client.py:get" in added.stdout
    assert "tests.test_api.test_get" in added.stdout  # an example
    assert "warning" not in added.stderr
    saved = read_rules(path)
    assert [(rule.bug, rule.where) for rule in saved] == [("LP#1", 'type = "TimeoutError"')]
    assert repository_rules(repo) == [saved[0].row]
    assert f"Saved rule {saved[0].id}" in added.stdout

    listed = rules(repo, path, "list", "--json")
    document = json.loads(listed.stdout)
    assert document["in_step"] is True
    assert document["rules"] == [
        {
            "id": saved[0].id,
            "bug": "LP#1",
            "where": 'type = "TimeoutError"',
            "added": saved[0].added,
            "author": saved[0].author or None,
        }
    ]
    shown = rules(repo, path, "show", saved[0].id[:4], "--json")
    assert json.loads(shown.stdout)["preview"]["failures"] == 4

    removed = rules(repo, path, "remove", saved[0].id)
    assert removed.exit_code == 0, removed.stderr
    assert read_rules(path) == []
    assert repository_rules(repo) == []


def test_without_yes_off_a_terminal_nothing_is_saved(repo: str, tmp_path: Path) -> None:
    path = tmp_path / "proctor-rules.toml"
    result = rules(repo, path, "add", "LP#1", "--where", 'type = "TimeoutError"')
    assert result.exit_code == 2
    assert "--yes" in result.stderr
    assert not path.exists()
    assert repository_rules(repo) == []


def test_a_rule_that_does_not_parse_is_refused_with_a_caret(repo: str, tmp_path: Path) -> None:
    path = tmp_path / "proctor-rules.toml"
    result = rules(repo, path, "add", "LP#1", "--where", 'type = "x" and tset ~ "y"', "--yes")
    assert result.exit_code == 2
    assert "unknown field 'tset' (did you mean 'test'?)" in result.stderr
    assert '  type = "x" and tset ~ "y"\n                 ^^^^' in result.stderr
    assert "Traceback" not in result.stderr
    assert not path.exists()


def test_a_rule_spanning_unrelated_clusters_is_warned_about(repo: str, tmp_path: Path) -> None:
    result = rules(repo, tmp_path / "r.toml", "test", 'test ~ "^tests\\.test_(api|config)"')
    assert result.exit_code == 0, result.stderr
    assert "Would explain 6 of 7 failures" in result.stdout
    assert "matches 2 unrelated clusters" in result.stderr
    assert not (tmp_path / "r.toml").exists()  # a preview saves nothing


def test_unexplained_gives_the_rate_and_the_clusters_left(repo: str, tmp_path: Path) -> None:
    path = tmp_path / "proctor-rules.toml"
    assert rules(repo, path, "add", "LP#1", "--where", 'type = "TimeoutError"', "-y").exit_code == 0
    result = rules(repo, path, "unexplained")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("57% of 7 failures explained")
    assert "3 unexplained in 2 clusters" in result.stdout
    lines = result.stdout.splitlines()
    assert "KeyError @ shop/config.py:setting" in lines[2]  # the larger cluster first
    assert "ValueError @ shop/cart.py:total" in lines[3]
    document = json.loads(rules(repo, path, "unexplained", "--json").stdout)
    assert (document["failures"], document["explained"]) == (7, 4)
    assert [c["failures"] for c in document["clusters"]] == [2, 1]
    wider = rules(repo, path, "test", 'type = "TimeoutError" or type = "KeyError"')
    assert "Would explain 6 of 7 failures" in wider.stdout
    saved = read_rules(path)[0]
    assert f"4 of them are explained by the rules already saved: {saved.id} (LP#1)." in wider.stdout


def test_the_file_is_the_source_of_truth_and_sync_brings_the_repository_in_step(
    repo: str, tmp_path: Path
) -> None:
    path = tmp_path / "proctor-rules.toml"
    assert rules(repo, path, "add", "LP#1", "--where", 'type = "KeyError"', "-y").exit_code == 0
    # a reviewed change lands in the file (a pull, a merge): the repository is behind
    path.write_text(path.read_text().replace("LP#1", "LP#2"))
    listed = rules(repo, path, "list")
    assert "LP#2" in listed.stdout
    assert "differ from" in listed.stderr
    assert "1 changed" in listed.stderr
    synced = rules(repo, path, "sync")
    assert synced.exit_code == 0, synced.stderr
    assert "updated (1 changed)" in synced.stdout
    assert "(changed, LP#2) would explain 2 of 7 failures in 1 cluster." in synced.stdout
    assert [row[1] for row in repository_rules(repo)] == ["LP#2"]
    assert "differ" not in rules(repo, path, "list").stderr


def test_a_bad_rules_file_is_an_error_naming_it(repo: str, tmp_path: Path) -> None:
    path = tmp_path / "proctor-rules.toml"
    path.write_text("[[rule]]\nid = 'a'\nbug = 'LP#1'\nwhere = 'type = '\n")
    for command in (["list"], ["unexplained"], ["sync"]):
        result = rules(repo, path, *command)
        assert result.exit_code == 2
        assert f"{path}: rule 1 (id 'a'): 'where' does not parse" in result.stderr


def test_without_a_repository_the_file_works_alone_and_none_is_created(tmp_path: Path) -> None:
    repo = str(tmp_path / ".proctor")
    path = tmp_path / "proctor-rules.toml"
    result = rules(
        repo, path, "add", "https://bugs.example.org/9", "--where", 'kind = "crash"', "-y"
    )
    assert result.exit_code == 0, result.stderr
    assert "No failures in history" in result.stdout
    assert "in the file only" in result.stdout
    assert not Path(repo).exists()
    assert len(read_rules(path)) == 1


def test_the_default_file_is_at_the_project_root(
    repo: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    result = invoke(
        "rules", "add", "LP#1", "--where", 'type = "KeyError"', "-y", "--repository", repo
    )
    assert result.exit_code == 0, result.stderr
    assert len(read_rules(tmp_path / "proctor-rules.toml")) == 1


def test_test_provided_text_is_neutralised_on_the_terminal(tmp_path: Path) -> None:
    repo = str(tmp_path / ".proctor")
    hostile = "tests.test_x.test_\x1b]0;owned\x07a\x1b[2J"
    text = traceback("x.py", "f", "boom()", "RuntimeError: \x1b[31mred\u202e")
    assert (
        invoke("load", "--repository", repo, stdin=failing_run({hostile: text}, T0)).exit_code == 1
    )
    result = rules(repo, tmp_path / "r.toml", "test", 'type = "RuntimeError"')
    assert result.exit_code == 0, result.stderr
    assert "Would explain 1 of 1 failures" in result.stdout
    assert "\x1b" not in result.stdout
    assert "\u202e" not in result.stdout


def _on_a_terminal(args: list[str], answer: bytes, cwd: Path) -> tuple[int, str]:
    """``proctor ARGS`` in a real process on a pseudo-terminal, answering ``answer``."""
    import os
    import pty
    import subprocess
    import sys

    main, secondary = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "proctor", *args],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        cwd=cwd,
        close_fds=True,
    )
    os.close(secondary)
    seen = b""
    answered = False
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the process is gone and the terminal closed
            break
        if not chunk:
            break
        seen += chunk
        if not answered and (b"[y/N]" in seen or b"[Y/n]" in seen):
            os.write(main, answer)
            answered = True
    os.close(main)
    return process.wait(timeout=60), seen.decode("utf-8", "replace")


@pytest.mark.slow
@pytest.mark.parametrize(("answer", "saved"), [(b"y\n", True), (b"n\n", False)])
def test_add_asks_on_a_terminal(repo: str, tmp_path: Path, answer: bytes, saved: bool) -> None:
    path = tmp_path / "proctor-rules.toml"
    args = ["rules", "add", "LP#1", "--where", 'type = "KeyError"', "--file", str(path)]
    code, seen = _on_a_terminal([*args, "--repository", repo], answer, tmp_path)
    assert "Would explain 2 of 7 failures" in seen
    rule_id = make_rule_id("LP#1", 'type = "KeyError"')
    assert f"Save rule {rule_id} to" in seen
    assert code == (0 if saved else 1), seen
    assert path.exists() is saved
    assert len(repository_rules(repo)) == (1 if saved else 0)


def make_rule_id(bug: str, where: str) -> str:
    from proctor.triage.rules import make_rule

    return make_rule(bug, where).id


def test_sync_previews_new_rules_and_warns_on_broad_ones(repo: str, tmp_path: Path) -> None:
    path = tmp_path / "proctor-rules.toml"
    path.write_text("[[rule]]\nid = 'wide'\nbug = 'LP#5'\nwhere = 'test ~ \"^tests\\.\"'\n")
    synced = rules(repo, path, "sync")
    assert synced.exit_code == 0, synced.stderr
    assert "Rule wide (new, LP#5) would explain 7 of 7 failures in 3 clusters." in synced.stdout
    assert "warning: rule wide matches 3 unrelated clusters" in synced.stderr
    assert [row[0] for row in repository_rules(repo)] == ["wide"]


def test_a_rule_matching_nothing_says_so(repo: str, tmp_path: Path) -> None:
    result = rules(repo, tmp_path / "r.toml", "test", 'message = "connection refused by host 10"')
    assert result.exit_code == 0, result.stderr
    assert "Would explain 0 of 7 failures" in result.stdout
    assert "matches no failure in history" in result.stderr


def test_json_shapes_of_show_and_unexplained(repo: str, tmp_path: Path) -> None:
    path = tmp_path / "proctor-rules.toml"
    assert rules(repo, path, "add", "LP#1", "--where", 'type = "KeyError"', "-y").exit_code == 0
    rule = read_rules(path)[0]
    cluster_fields = {"signature", "key", "kind", "failures", "tests", "runs", "example_test"}
    shown = json.loads(rules(repo, path, "show", rule.id, "--json").stdout)
    assert set(shown) == {"schema", "rule", "preview"}
    assert set(shown["rule"]) == {"id", "bug", "where", "added", "author"}
    preview = shown["preview"]
    assert set(preview) == {"failures", "total", "tests", "runs", "unrelated_clusters", "clusters"}
    assert (preview["failures"], preview["total"], preview["tests"], preview["runs"]) == (
        2,
        7,
        1,
        2,
    )
    assert preview["unrelated_clusters"] == 1
    [cluster] = preview["clusters"]
    assert set(cluster) == cluster_fields
    assert cluster["example_test"] == "tests.test_config.test_colour"
    assert cluster["kind"] == "traceback"
    assert len(cluster["signature"]) == 16
    document = json.loads(rules(repo, path, "unexplained", "--json").stdout)
    assert set(document) == {"schema", "failures", "explained", "rate", "per_rule", "clusters"}
    assert document["per_rule"] == {rule.id: 2}
    assert document["rate"] == pytest.approx(2 / 7)
    assert all(set(c) == cluster_fields for c in document["clusters"])


def test_triage_unexplained_is_the_same_command(repo: str, tmp_path: Path) -> None:
    path = tmp_path / "proctor-rules.toml"
    assert rules(repo, path, "add", "LP#1", "--where", 'type = "TimeoutError"', "-y").exit_code == 0
    result = invoke("triage", "unexplained", "--file", str(path), "--repository", repo)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == rules(repo, path, "unexplained").stdout
    assert result.stdout.startswith("57% of 7 failures explained")
