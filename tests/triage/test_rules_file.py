"""proctor-rules.toml: read, append, remove, round trips and bad files."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proctor.triage.rules import Rule, make_rule
from proctor.triage.rules_file import (
    RulesFileError,
    add_rule,
    parse_rules,
    read_rules,
    remove_rule,
    render_rule,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ONE = make_rule(
    "LP#1",
    'type = "TimeoutError" and message ~ "connection (refused|reset)"',
    added="2026-12-04",
    author="Ann <ann@example.org>",
)
TWO = make_rule("https://bugs.example.org/2", 'test ~ "^tests\\.unit\\." and key ~ "it\'s"')


def test_a_missing_file_has_no_rules(tmp_path: Path) -> None:
    assert read_rules(tmp_path / "proctor-rules.toml") == []


def test_add_then_read_gives_the_rules_in_order(tmp_path: Path) -> None:
    path = tmp_path / "proctor-rules.toml"
    assert add_rule(path, ONE) == [ONE]
    assert add_rule(path, TWO) == [ONE, TWO]
    assert [rule.row for rule in read_rules(path)] == [ONE.row, TWO.row]
    text = path.read_text()
    assert text.startswith("# Known-bug rules")
    # the where reads as it was written (a literal string) where it can
    assert 'where = \'type = "TimeoutError" and message ~ "connection (refused|reset)"\'' in text
    with pytest.raises(RulesFileError, match="already has rule"):
        add_rule(path, ONE)


def test_remove_cuts_out_one_table_and_keeps_comments(tmp_path: Path) -> None:
    path = tmp_path / "proctor-rules.toml"
    path.write_text(
        "# our rules\n\n# the timeout one\n"
        + render_rule(ONE)
        + "\n"
        + render_rule(TWO)
        + "# trailing note\n"
    )
    left = remove_rule(path, ONE.id)
    assert left == [TWO]
    text = path.read_text()
    assert text.startswith("# our rules\n")
    assert "the timeout one" not in text
    assert "trailing note" in text
    assert [rule.row for rule in read_rules(path)] == [TWO.row]
    with pytest.raises(RulesFileError, match="has no rule"):
        remove_rule(path, ONE.id)


_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=20)


@settings(max_examples=200)
@given(bug=st.sampled_from(["LP#1", "https://x.example/a?b=c&d='e'"]), value=_text, author=_text)
def test_any_rule_renders_to_toml_that_reads_back_the_same(
    bug: str, value: str, author: str
) -> None:
    from proctor.triage.rules_lang import Compare, unparse

    where = unparse(Compare("message", "=", value))
    rule = Rule("abc12345", bug, where, "2026-12-04", author)
    assert [r.row for r in parse_rules(render_rule(rule).encode(), "f")] == [rule.row]
    assert tomllib.loads(render_rule(rule))["rule"][0]["where"] == where


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (b"\xff\xfe", "not UTF-8"),
        (b"[[rule]\n", "not valid TOML"),
        (b"title = 'x'\n", "unknown top-level key 'title'"),
        (b"rule = 3\n", "[[rule]] tables"),
        (b"[[rule]]\nid = 'a'\nbug = 'LP#1'\n", "rule 1 (id 'a'): 'where' is missing"),
        (
            b"[[rule]]\nid = 'a'\nbug = 'LP#1'\nwhere = 'type = \"x\"'\nseverity = 1\n",
            "unknown key 'severity'",
        ),
        (b"[[rule]]\nid = 'a'\nbug = 3\nwhere = 'type = \"x\"'\n", "'bug' must be a string"),
        (b"[[rule]]\nid = 'a'\nbug = 'two words'\nwhere = 'type = \"x\"'\n", "not a bug reference"),
        (
            b"[[rule]]\nid = 'a'\nbug = 'LP#1'\nwhere = 'type = \"x\"'\n"
            b"[[rule]]\nid = 'b'\nbug = 'LP#1'\nwhere = 'tpye = \"x\"'\n",
            "rule 2 (id 'b'): 'where' does not parse: unknown field 'tpye'",
        ),
        (
            b"[[rule]]\nid = 'a'\nbug = 'LP#1'\nwhere = 'type = \"x\"'\n"
            b"[[rule]]\nid = 'a'\nbug = 'LP#2'\nwhere = 'type = \"y\"'\n",
            "rules 1 and 2 have the same id 'a'",
        ),
    ],
)
def test_bad_files_are_refused_naming_the_file_and_the_rule(text: bytes, words: str) -> None:
    with pytest.raises(RulesFileError) as caught:
        parse_rules(text, "proctor-rules.toml")
    assert str(caught.value).startswith("proctor-rules.toml: ")
    assert words in str(caught.value)


def test_a_where_error_in_the_file_shows_the_caret() -> None:
    text = b"[[rule]]\nid = 'a'\nbug = 'LP#1'\nwhere = 'type = \"x\" and'\n"
    with pytest.raises(RulesFileError) as caught:
        parse_rules(text, "proctor-rules.toml")
    assert '  type = "x" and\n                ^' in str(caught.value)


def test_a_bad_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "proctor-rules.toml"
    path.write_bytes(b"[[rule]\n")
    with pytest.raises(RulesFileError):
        add_rule(path, ONE)
    assert path.read_bytes() == b"[[rule]\n"


def test_remove_finds_a_table_whose_header_carries_a_comment(tmp_path: Path) -> None:
    path = tmp_path / "proctor-rules.toml"
    path.write_text(
        render_rule(ONE) + "\n" + render_rule(TWO).replace("[[rule]]", "[[rule]]  # flaky")
    )
    assert remove_rule(path, TWO.id) == [ONE]
    assert [rule.row for rule in read_rules(path)] == [ONE.row]
