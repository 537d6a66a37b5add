"""Rules over many failures: matching, previews, the unexplained, the rule book."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proctor.triage.rules import (
    BugReferenceError,
    MemoryRuleBook,
    Rule,
    RuleSet,
    check_bug,
    differences,
    facts_of_record,
    make_rule,
    preview,
    unexplained,
)
from proctor.triage.rules_lang import Expr, FailureFacts, RuleSyntaxError, compile_rule, unparse
from proctor.wire.event import Status
from proctor.wire.record import Attachment, TestRecord

from .test_rules_lang import _exprs


def failure(test: str, signature: str, type_: str = "ValueError", run: int = 1) -> FailureFacts:
    return FailureFacts(
        test,
        type_,
        f"bad {type_}",
        signature,
        f"{type_} @ pkg/{signature}.py:f | x",
        "traceback",
        run,
    )


FAILURES = [
    failure("t.a", "s1", run=1),
    failure("t.b", "s1", run=1),
    failure("t.a", "s1", run=2),
    failure("t.c", "s2", "KeyError", run=2),
    failure("t.d", "s3", "TimeoutError", run=3),
]


def brute_force(where: str, failures: list[FailureFacts]) -> list[int]:
    rule = make_rule("LP#1", where)
    from proctor.triage.rules_lang import compile_rule

    predicate = compile_rule(rule.expr)
    return [index for index, facts in enumerate(failures) if predicate(facts)]


@pytest.mark.parametrize(
    "where",
    [
        'type = "ValueError"',
        'type = "ValueError" and test = "t.a"',
        'test ~ "^t\\.[ab]$" or type = "KeyError"',
        'not signature = "s1"',
        'kind = "traceback" and not test = "t.d"',
    ],
)
def test_grouped_evaluation_agrees_with_evaluating_every_failure(where: str) -> None:
    assert RuleSet([make_rule("LP#1", where)]).matches(FAILURES) == [brute_force(where, FAILURES)]


def test_explain_names_the_rules_of_one_failure() -> None:
    first = make_rule("LP#1", 'type = "ValueError"')
    second = make_rule("LP#2", 'test = "t.a"')
    assert RuleSet([first, second]).explain(FAILURES[0]) == [first, second]
    assert RuleSet([first, second]).explain(FAILURES[3]) == []


def test_preview_counts_clusters_failures_tests_and_runs() -> None:
    result = preview(make_rule("LP#1", 'type = "ValueError"'), FAILURES, examples=2)
    assert (result.failures, result.total, result.tests, result.runs) == (3, 5, 2, 2)
    assert [(c.signature, c.failures, c.tests) for c in result.clusters] == [("s1", 3, 2)]
    assert result.unrelated == 1
    assert not result.too_broad
    assert result.examples == FAILURES[:2]


def test_preview_flags_a_rule_spanning_unrelated_clusters() -> None:
    result = preview(make_rule("LP#1", 'message ~ "bad"'), FAILURES)
    assert result.failures == 5
    assert result.unrelated == 3
    assert result.too_broad


def test_clusters_sharing_a_root_cause_are_related() -> None:
    shared = [
        FailureFacts("t.a", "E", "", "d1", "KeyError @ a.py:f | x -> E @ b.py:g | y", "traceback"),
        FailureFacts("t.b", "E", "", "d2", "KeyError @ a.py:f | x -> F @ c.py:h | z", "traceback"),
    ]
    assert preview(make_rule("LP#1", 'type = "E"'), shared).unrelated == 1


def test_unexplained_groups_what_no_rule_explains_and_gives_the_rate() -> None:
    rules = [make_rule("LP#1", 'type = "ValueError"'), make_rule("LP#2", 'test = "t.a"')]
    report = unexplained(rules, FAILURES)
    assert (report.total, report.explained, report.unexplained) == (5, 3, 2)
    assert report.rate == pytest.approx(0.6)
    assert [c.signature for c in report.clusters] == ["s2", "s3"]
    assert report.per_rule == {rules[0].id: 3, rules[1].id: 2}
    assert unexplained(rules, []).rate is None


def test_make_rule_writes_the_canonical_form_and_ids_follow_the_content() -> None:
    one = make_rule("LP#1", 'type="A"   AND test ~ "x"')
    assert one.where == 'type = "A" and test ~ "x"'
    assert one.id == make_rule("LP#1", 'type = "A" and test ~ "x"').id
    assert one.id != make_rule("LP#2", one.where).id
    with pytest.raises(RuleSyntaxError):
        make_rule("LP#1", "type =")


@pytest.mark.parametrize("bug", ["1234", "LP#1234", "PROJ-12", "https://github.com/o/r/issues/3"])
def test_bug_references(bug: str) -> None:
    assert check_bug(bug) == bug


@pytest.mark.parametrize("bug", ["", "two words", "\x1b[2J", "-x", "a" * 501, "https://a b"])
def test_bad_bug_references_are_refused(bug: str) -> None:
    with pytest.raises(BugReferenceError):
        check_bug(bug)


def test_differences_between_the_file_and_a_rule_book() -> None:
    a = make_rule("LP#1", 'type = "A"')
    b = make_rule("LP#2", 'type = "B"')
    c = make_rule("LP#3", 'type = "C"')
    book = MemoryRuleBook([a, b])
    assert differences([a, b], book.load()).same
    changed = type(c)(b.id, "LP#9", b.where)
    diff = differences([changed, c], book.load())
    assert diff.only_in_file == [c]
    assert diff.only_in_repository == [a]
    assert diff.changed == [(changed, b)]
    assert diff.summary() == "1 only in the file, 1 only in the repository, 1 changed"
    book.replace([c])
    assert book.load() == [c]


def test_facts_of_a_failed_record() -> None:
    text = (
        "Traceback (most recent call last):\n"
        '  File "/src/shop/client.py", line 9, in get\n'
        "    raise requests.exceptions.ConnectionError(f'refused by {host}:8080')\n"
        "requests.exceptions.ConnectionError: refused by 10.0.0.1:8080\n"
    )
    record = TestRecord(
        "tests.test_api.test_get",
        status=Status.FAIL,
        attachments=(Attachment("traceback", text.encode(), "text/plain"),),
    )
    facts = facts_of_record(record, run=7)
    assert facts is not None
    assert (facts.test, facts.type, facts.run, facts.kind) == (
        "tests.test_api.test_get",
        "ConnectionError",
        7,
        "traceback",
    )
    assert facts.message == "refused by <ip>:<port>"
    assert len(facts.signature) == 16
    assert "client.py:get" in facts.key
    passed = TestRecord("tests.test_api.test_ok", status=Status.SUCCESS)
    assert facts_of_record(passed) is None


_facts = st.builds(
    FailureFacts,
    test=st.sampled_from(["t.a", "t.b", "tests.unit.c", "x"]),
    type=st.sampled_from(["", "a", "ValueError"]),
    message=st.sampled_from(["", "a|b", "bad a", "\\"]),
    signature=st.sampled_from(["s1", "s2"]),
    key=st.sampled_from(["k", "a @ x"]),
    kind=st.sampled_from(["traceback", "crash"]),
    run=st.integers(1, 3),
)


@settings(max_examples=200)
@given(expr=_exprs, failures=st.lists(_facts, max_size=12))
def test_grouped_evaluation_agrees_with_brute_force_for_any_rule(
    expr: Expr, failures: list[FailureFacts]
) -> None:
    rule = Rule("r", "LP#1", unparse(expr), parsed=expr)
    predicate = compile_rule(expr)
    expected = [index for index, facts in enumerate(failures) if predicate(facts)]
    assert RuleSet([rule]).matches(failures) == [expected]


def test_the_facts_reader_agrees_with_facts_of_record_and_remembers_texts() -> None:
    from proctor.triage.rules import FactsReader

    text = (
        b"Traceback (most recent call last):\n"
        b'  File "/p/a.py", line 3, in f\n'
        b"    g()\n"
        b"KeyError: 'x'\n"
    )
    records = [
        TestRecord("t.fail", status=Status.FAIL, attachments=(Attachment("traceback", text),)),
        TestRecord("t.same", status=Status.FAIL, attachments=(Attachment("traceback", text),)),
        TestRecord("t.reason", status=Status.FAIL, attachments=(Attachment("reason", b"boom 12"),)),
        TestRecord("t.empty", status=Status.FAIL),
        TestRecord("t.ux", status=Status.UXSUCCESS),
        TestRecord("t.unfinished", status=Status.INPROGRESS),
        TestRecord("t.ok", status=Status.SUCCESS, attachments=(Attachment("traceback", text),)),
        TestRecord("t.skip", status=Status.SKIP),
    ]
    reader = FactsReader()
    for _ in range(2):  # the second time from memory
        assert [reader(record, run=3) for record in records] == [
            facts_of_record(record, run=3) for record in records
        ]
