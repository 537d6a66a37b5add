"""``proctor bug`` as a user runs it: two projects' repositories editing and syncing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.invoke import Result, invoke
from tests.store.conftest import PostgresSchemas, postgres_base_url


@pytest.fixture(autouse=True)
def _author(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROCTOR_AUTHOR", "Ann <ann@example.org>")
    monkeypatch.delenv("PROCTOR_REPOSITORY", raising=False)


def _project(tmp_path: Path, name: str) -> Path:
    root = tmp_path / name
    root.mkdir()
    (root / "pyproject.toml").write_text('[project]\nname = "x"\n')
    return root


def bug(repo: Path | str, *args: str, stdin: bytes = b"") -> Result:
    return invoke("bug", *args, "--repository", str(repo), stdin=stdin)


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.stderr
    return result.stdout


def _list(repo: Path | str, *args: str) -> list[dict[str, object]]:
    bugs: list[dict[str, object]] = json.loads(ok(bug(repo, "list", "--json", *args)))["bugs"]
    return bugs


def test_edit_show_and_list(tmp_path: Path) -> None:
    repo = _project(tmp_path, "a") / ".proctor"
    first = ok(bug(repo, "new", "store loses rows", "--tag", "component:store")).strip()
    second = ok(bug(repo, "new", "runner hangs", "--assignee", "bob")).strip()
    ok(bug(repo, "tag", first, "flaky"))
    ok(bug(repo, "comment", first, "seen twice on CI"))
    ok(bug(repo, "link", first, "test", "tests.test_store.test_rows"))
    ok(bug(repo, "edit", second, "--severity", "high", "--title", "runner hangs at exit"))
    ok(bug(repo, "close", second))
    assert [b["short_id"] for b in _list(repo, "--tag", "flaky")] == [first]
    assert [b["short_id"] for b in _list(repo, "--status", "closed")] == [second]
    assert [b["short_id"] for b in _list(repo, "--assignee", "bob")] == [second]
    assert [b["short_id"] for b in _list(repo, "--search", "TWICE")] == [first]
    assert [b["short_id"] for b in _list(repo, "--open")] == [first]
    shown = json.loads(ok(bug(repo, "show", first, "--json")))["bug"]
    assert shown["tags"] == ["component:store", "flaky"]
    assert shown["links"] == [{"kind": "test", "target": "tests.test_store.test_rows"}]
    assert [c["text"] for c in shown["comments"]] == ["seen twice on CI"]
    ok(bug(repo, "reopen", second))
    ok(bug(repo, "untag", first, "flaky"))
    ok(bug(repo, "unlink", first, "test", "tests.test_store.test_rows"))
    text = ok(bug(repo, "show", first))
    assert "seen twice on CI" in text
    assert "link:" not in text
    assert _list(repo, "--tag", "flaky") == []
    assert _list(repo, "--status", "open", "--assignee", "bob")[0]["severity"] == "high"


def test_errors_are_messages_with_exit_2_and_change_nothing(tmp_path: Path) -> None:
    repo = _project(tmp_path, "a") / ".proctor"
    first = ok(bug(repo, "new", "a bug")).strip()
    for args in (
        ("show", "zzzz"),
        ("show", "0000000000"),
        ("untag", first, "never-there"),
        ("comment", first, "bell \x07 in it"),
    ):
        result = bug(repo, *args)
        assert result.exit_code == 2, args
        assert "Traceback" not in result.stderr
        assert result.stderr.startswith("Error:")
    assert len(_list(repo)) == 1
    # A bad tag refuses the whole new bug, not just the tag.
    refused = bug(repo, "new", "second", "--tag", "two words")
    assert refused.exit_code == 2
    assert "single words" in refused.stderr
    assert len(_list(repo)) == 1
    nowhere = bug(tmp_path / "nowhere", "list")
    assert nowhere.exit_code == 2
    assert "no bug records here yet" in nowhere.stderr
    assert not (tmp_path / "nowhere").exists()


def test_untrusted_text_is_neutralised_on_the_terminal(tmp_path: Path) -> None:
    source, target = _project(tmp_path, "a"), _project(tmp_path, "b")
    first = ok(bug(source / ".proctor", "new", "title")).strip()
    ok(bug(source / ".proctor", "comment", first, "line one\nline two\twith tab"))
    ok(bug(target / ".proctor", "pull", str(source)))
    text = ok(bug(target / ".proctor", "show", first))
    assert "line two\twith tab" in text
    # A hostile bundle carrying an escape sequence is refused; the message shows it escaped.
    bundle = tmp_path / "hostile.bundle"
    ok(bug(source / ".proctor", "export", str(bundle)))
    data = bundle.read_bytes().replace(b'"title":"title"', b'"title":"\\u001b[2Jgone"')
    bundle.write_bytes(data)
    refused = bug(target / ".proctor", "import", str(bundle))
    assert refused.exit_code == 2
    assert "\x1b" not in refused.stderr
    assert "control character" in refused.stderr


def test_two_projects_sync_both_ways_with_filters(tmp_path: Path) -> None:
    team, laptop = _project(tmp_path, "team"), _project(tmp_path, "laptop")
    t, lp = team / ".proctor", laptop / ".proctor"
    store_bug = ok(bug(t, "new", "store loses rows", "--tag", "component:store")).strip()
    web_bug = ok(bug(t, "new", "page blank", "--tag", "component:web")).strip()
    pulled = bug(lp, "pull", str(team), "--filter", "component=store")
    assert "pulled: 2 new event(s) in 1 bug(s)" in ok(pulled)
    assert "partial copy" in pulled.stdout
    assert [b["short_id"] for b in _list(lp)] == [store_bug]
    assert json.loads(ok(bug(lp, "list", "--json")))["partial_copy_filters"] == ["component=store"]
    missing = bug(lp, "show", web_bug)
    assert missing.exit_code == 2
    assert "partial" in missing.stderr
    # Laptop edits offline; the team re-tags the web bug into the store component.
    ok(bug(lp, "comment", store_bug, "reproduced on my laptop"))
    ok(bug(t, "tag", web_bug, "component:store"))
    ok(bug(t, "untag", store_bug, "component:store"))
    synced = ok(bug(lp, "sync", str(t)))
    assert "pulled: 4 new event(s) in 2 bug(s)" in synced
    assert "pushed: 1 new event(s) in 1 bug(s)" in synced
    assert sorted(b["short_id"] for b in _list(lp)) == sorted([store_bug, web_bug])
    team_view = json.loads(ok(bug(t, "show", store_bug, "--json")))["bug"]
    laptop_view = json.loads(ok(bug(lp, "show", store_bug, "--json")))["bug"]
    assert team_view == laptop_view
    assert team_view["tags"] == []  # stopped matching, stayed, and is current
    again = ok(bug(lp, "sync", str(t)))
    assert again.count("0 new event(s)") == 2


def test_bundle_export_import_and_bad_bundles_change_nothing(tmp_path: Path) -> None:
    team, other = _project(tmp_path, "team") / ".proctor", _project(tmp_path, "o") / ".proctor"
    first = ok(bug(team, "new", "flaky thing", "--tag", "flaky")).strip()
    ok(bug(team, "new", "other thing"))
    bundle = tmp_path / "flaky.bundle"
    ok(bug(team, "export", str(bundle), "--filter", "tag=flaky"))
    assert "imported: 2 new event(s) in 1 bug(s)" in ok(bug(other, "import", str(bundle)))
    assert [b["short_id"] for b in _list(other)] == [first]
    ok(bug(team, "comment", first, "more"))
    good = tmp_path / "all.bundle"
    ok(bug(team, "export", str(good)))
    data = good.read_bytes()
    before = ok(bug(other, "list", "--json"))
    bad_files = {
        "truncated": data[: data.rindex(b"\n", 0, len(data) - 1) + 1],
        "forged": data.replace(b"more", b"mode"),
        "garbage": b"not a bundle\n",
        "newer": data.replace(b'"version":1', b'"version":99', 1),
    }
    for name, content in bad_files.items():
        path = tmp_path / f"{name}.bundle"
        path.write_bytes(content)
        result = bug(other, "import", str(path))
        assert result.exit_code == 2, name
        assert "Traceback" not in result.stderr, name
        assert ok(bug(other, "list", "--json")) == before, name
    assert "imported: 2 new event(s) in 2 bug(s)" in ok(bug(other, "import", str(good)))
    # stdout / stdin bundles, for pipes and mail
    piped = bug(team, "export", "-")
    assert ok(bug(_project(tmp_path, "p") / ".proctor", "import", "-", stdin=piped.stdout_bytes))


@pytest.mark.postgres
def test_sqlite_to_postgresql_and_back(tmp_path: Path) -> None:
    schemas = PostgresSchemas(postgres_base_url())
    try:
        url = schemas.new_url()
        laptop = _project(tmp_path, "laptop") / ".proctor"
        first = ok(bug(laptop, "new", "store loses rows", "--tag", "component:store")).strip()
        assert "pushed: 2 new event(s)" in ok(bug(laptop, "push", url))
        ok(bug(url, "comment", first, "seen in the team repository"))
        assert "pulled: 1 new event(s)" in ok(bug(laptop, "pull", url))
        assert (
            json.loads(ok(bug(laptop, "show", first, "--json")))["bug"]
            == json.loads(ok(bug(url, "show", first, "--json")))["bug"]
        )
    finally:
        schemas.close()


def test_show_includes_live_evidence_of_linked_tests(tmp_path: Path) -> None:
    from proctor.store import open_store
    from proctor.store.model import RunMetadata
    from tests.store.factory import failure

    repo = _project(tmp_path, "a") / ".proctor"
    store = open_store(str(repo))
    with store.begin_run(RunMetadata(git_commit="abcdef1234")) as writer:
        writer.add(failure("tests.test_x.test_y"))
    run = writer.finish().id
    store.close()
    first = ok(bug(repo, "new", "x fails")).strip()
    ok(bug(repo, "link", first, "test", "tests.test_x.test_y"))
    ok(bug(repo, "link", first, "cluster", "c-17"))
    live = json.loads(ok(bug(repo, "show", first, "--json")))["evidence"]
    by_kind = {item["kind"]: item for item in live}
    assert by_kind["test"]["failures"] == 1
    assert by_kind["test"]["last_failed_run"] == run
    assert by_kind["test"]["commits"] == ["abcdef1234"]
    assert sum(d["failures"] for d in by_kind["test"]["failures_per_day"]) == 1
    assert by_kind["cluster"]["state"] == "unknown"  # no cluster c-17 is stored
    text = ok(bug(repo, "show", first))
    assert f"(run {run} @ abcdef1234)" in text
