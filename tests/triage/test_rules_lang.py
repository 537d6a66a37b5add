"""The rule language: parsing, errors with positions, canonical text, evaluation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proctor.triage.rules_lang import (
    FIELDS,
    KINDS,
    MAX_EXPRESSION,
    And,
    Compare,
    Expr,
    FailureFacts,
    Not,
    Or,
    RuleSyntaxError,
    compile_rule,
    fields_of,
    parse_rule,
    unparse,
)

FACTS = FailureFacts(
    test="tests.integration.test_api.TestApi.test_get",
    type="ConnectionError",
    message="connection refused by <ip>:<n>",
    signature="0123456789abcdef",
    key="ConnectionError @ shop/client.py:get | return self.session.get(url)",
    kind="traceback",
)


def holds(where: str, facts: FailureFacts = FACTS) -> bool:
    return compile_rule(parse_rule(where))(facts)


def test_the_example_of_the_docs_parses_to_its_tree() -> None:
    expr = parse_rule(
        'type = "TimeoutError" and message ~ "connection (refused|reset)" '
        'and not test ~ "^tests\\.unit\\."'
    )
    assert expr == And(
        (
            Compare("type", "=", "TimeoutError"),
            Compare("message", "~", "connection (refused|reset)"),
            Not(Compare("test", "~", "^tests\\.unit\\.")),
        )
    )


def test_and_binds_tighter_than_or_and_parentheses_override() -> None:
    a, b, c = (Compare("type", "=", name) for name in "abc")
    assert parse_rule('type = "a" or type = "b" and type = "c"') == Or((a, And((b, c))))
    assert parse_rule('(type = "a" or type = "b") and type = "c"') == And((Or((a, b)), c))
    assert parse_rule('not type = "a" and type = "b"') == And((Not(a), b))
    assert parse_rule('not (type = "a" and type = "b")') == Not(And((a, b)))


def test_keywords_are_case_insensitive_and_whitespace_is_free() -> None:
    assert parse_rule('type="a"AND\n NOT kind="crash"') == parse_rule(
        'type = "a" and not kind = "crash"'
    )


def test_string_escapes() -> None:
    assert parse_rule(r'message = "say \"hi\"\n\ttab \\ end"') == Compare(
        "message", "=", 'say "hi"\n\ttab \\ end'
    )
    # any other backslash is kept, so a regular expression reads as written
    assert parse_rule(r'test ~ "^a\.b\d+"') == Compare("test", "~", r"^a\.b\d+")


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ('type = "ConnectionError"', True),
        ('type = "connectionerror"', False),
        ('type != "ValueError"', True),
        ('message ~ "refused|reset"', True),
        ('message !~ "refused"', False),
        ('test ~ "^tests\\.unit\\."', False),
        ('not test ~ "^tests\\.unit\\."', True),
        ('kind = "traceback" and signature = "0123456789abcdef"', True),
        ('kind = "crash" or key ~ "shop/client\\.py:get"', True),
        ('kind = "crash" or key ~ "shop/other"', False),
        ('(type = "X" or type = "ConnectionError") and not message ~ "timeout"', True),
    ],
)
def test_evaluation(where: str, expected: bool) -> None:
    assert holds(where) is expected


def test_fields_mentioned() -> None:
    assert fields_of(parse_rule('type = "a" or not (test ~ "b" and kind = "crash")')) == {
        "type",
        "test",
        "kind",
    }


def test_a_pattern_searches_at_most_the_bounded_prefix_of_a_fact() -> None:
    long = FailureFacts("t" * 10_000 + "END", "", "", "", "", "text")
    assert holds('test ~ "^t+"', long)
    assert not holds('test ~ "END"', long)  # beyond MAX_FACT: not searched


def error(where: str) -> RuleSyntaxError:
    with pytest.raises(RuleSyntaxError) as caught:
        parse_rule(where)
    return caught.value


@pytest.mark.parametrize(
    ("where", "position", "words"),
    [
        ("", 0, "empty"),
        ('tpye = "x"', 0, "did you mean 'type'"),
        ('type "x"', 5, "expected an operator"),
        ("type = ", 7, "found the end of the rule"),
        ("type = x", 7, 'expected a "string"'),
        ('type == "x"', 6, 'expected a "string"'),
        ('type = "x" test = "y"', 11, "join conditions with 'and' or 'or'"),
        ('(type = "x" or kind = "crash"', 29, "expected ')'"),
        ('type = "x" and', 14, "expected a field"),
        ('type = "x)', 7, "not closed"),
        ("type = 'x'", 7, "double quotes"),
        ('type ! "x"', 5, "'!' must be followed"),
        ('type = "x" & kind = "crash"', 11, "unexpected character '&'"),
        ('kind = "boom"', 7, "not a kind"),
        ('message ~ "a(b"', 12, "invalid regular expression"),
        # the position inside a literal is mapped through its escapes
        ('message ~ "\\"q\\" [z"', 17, "invalid regular expression"),
    ],
)
def test_errors_say_what_and_point_at_where(where: str, position: int, words: str) -> None:
    caught = error(where)
    assert words in caught.message
    assert caught.position == position
    lines = caught.caret().split("\n")
    assert lines[0] == "  " + where
    assert lines[1].index("^") == position + 2
    assert f"column {position + 1}" in str(caught)


def test_error_on_a_later_line_gives_its_column() -> None:
    caught = error('type = "x"\n  and nope = "y"')
    assert caught.column == 7
    assert caught.caret().split("\n") == ['    and nope = "y"', "        ^^^^"]


def test_control_characters_in_an_error_line_are_shown_escaped() -> None:
    caught = error('type = "\x1b[2J" and bad')
    shown = caught.caret()
    assert "\x1b" not in shown
    line, marker = shown.split("\n")
    assert line[marker.index("^") :].startswith("bad")


def test_bounds() -> None:
    assert "limit" in error('type = "' + "a" * MAX_EXPRESSION + '"').message
    assert "levels deep" in error("not " * 60 + 'type = "a"').message
    assert "levels deep" in error("(" * 60 + 'type = "a"' + ")" * 60).message


# -- canonical text round trip

_values = st.text(
    alphabet=st.characters(exclude_categories=["Cs"]), max_size=12
)  # any text: quotes, backslashes, newlines, controls


def _compare(field: str, op: str, value: str) -> Compare:
    return Compare(field, op, value)  # type: ignore[arg-type]


_compares = st.builds(
    _compare,
    st.sampled_from([f for f in FIELDS if f != "kind"]),
    st.sampled_from(["=", "!="]),
    _values,
) | st.builds(
    _compare, st.just("kind"), st.sampled_from(["=", "!="]), st.sampled_from(sorted(KINDS))
)
_regexes = st.builds(
    _compare,
    st.sampled_from(FIELDS),
    st.sampled_from(["~", "!~"]),
    st.sampled_from(["a|b", "^x\\.y$", '"quoted"', "\\\\", "[0-9]+\\n", "\\d\\t"]),
)


def _trees(leaves: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
    return (
        st.builds(Not, leaves)
        | st.builds(And, st.lists(leaves, min_size=2, max_size=3).map(tuple))
        | st.builds(Or, st.lists(leaves, min_size=2, max_size=3).map(tuple))
    )


_exprs = st.recursive(_compares | _regexes, _trees, max_leaves=8)


@settings(max_examples=300)
@given(_exprs)
def test_unparse_then_parse_gives_the_same_tree(expr: Expr) -> None:
    text = unparse(expr)
    assert parse_rule(text) == expr
    assert unparse(parse_rule(text)) == text


def test_canonical_text_keeps_regular_expressions_as_written() -> None:
    assert unparse(parse_rule(r'test ~ "^tests\.unit\."')) == r'test ~ "^tests\.unit\."'
    assert unparse(parse_rule('TYPE = "a"'.lower() + ' OR kind="crash"')) == (
        'type = "a" or kind = "crash"'
    )
