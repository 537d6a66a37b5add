"""``--filter EXPR``: parsing, every key, negation, globs, and the recorded text."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proctor.bugs import BugState, FilterError, parse_filter
from proctor.bugs.filters import FILTER_KEYS, wanted

from .helpers import ANN, BOB, ticking


def _bug() -> BugState:
    copy = ticking()
    bug = copy.create(ANN, "Crash").id
    copy.add_tag(bug, ANN, "flaky")
    copy.add_tag(bug, ANN, "component:store")
    copy.set_field(bug, ANN, "status", "in-progress")
    copy.set_field(bug, ANN, "severity", "high")
    copy.set_field(bug, ANN, "assignee", BOB)
    copy.link(bug, ANN, "test", "tests.store.test_x[1 2]")
    copy.link(bug, ANN, "rule", "rule-7")
    copy.link(bug, ANN, "cluster", "sig:abc")
    copy.link(bug, ANN, "commit", "2d748d4")
    return copy.state(bug)


STATE = _bug()


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("tag=flaky", True),
        ("tag=slow", False),
        ("component=store", True),
        ("component=runner", False),
        ("status=in-progress", True),
        ("status=open", False),
        ("severity=high", True),
        (f"assignee={BOB!r}", True),
        ("assignee=", False),
        (f"author={ANN!r}", True),
        ("'test=tests.store.test_x[1 2]'", True),
        ("test~tests.store.*", True),
        ("test~tests.runner.*", False),
        ("rule=rule-7", True),
        ("cluster~sig:*", True),
        ("commit=2d748d4", True),
        (f"id={STATE.id[:6]}", True),
        ("id=zzzz", False),
        ("!status=closed", True),
        ("!tag=flaky", False),
        ("tag=flaky component=store !status=closed", True),
        ("tag=flaky status=closed", False),
        ("tag~comp*", True),
        ("tag=comp*", False),
    ],
)
def test_each_key_matches_the_current_state(expression: str, expected: bool) -> None:
    assert parse_filter(expression).matches(STATE) is expected


def test_no_filters_want_everything_and_several_want_the_union() -> None:
    assert wanted((), STATE)
    assert wanted((parse_filter("status=closed"), parse_filter("tag=flaky")), STATE)
    assert not wanted((parse_filter("status=closed"), parse_filter("tag=slow")), STATE)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "is empty"),
        ("   ", "is empty"),
        ("flaky", "is not KEY=VALUE"),
        ("=flaky", "is not KEY=VALUE"),
        ("label=flaky", "unknown key 'label'"),
        ("tag='open", "No closing quotation"),
    ],
)
def test_bad_expressions_say_which_term_and_why(expression: str, message: str) -> None:
    with pytest.raises(FilterError, match=message):
        parse_filter(expression)


values = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12
)


@given(
    st.lists(
        st.tuples(st.sampled_from(FILTER_KEYS), values, st.booleans(), st.booleans()),
        min_size=1,
        max_size=4,
    )
)
def test_the_recorded_text_parses_back_to_the_same_filter(
    terms: list[tuple[str, str, bool, bool]],
) -> None:
    text = " ".join(
        shlex.quote(("!" if neg else "") + key + ("~" if glob else "=") + value)
        for key, value, glob, neg in terms
    )
    parsed = parse_filter(text)
    assert parse_filter(parsed.text) == parsed
    assert [(t.key, t.value, t.glob, t.negated) for t in parsed.terms] == terms
