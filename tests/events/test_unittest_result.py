"""EventResult: unittest's result API in, events out, read back by python-subunit itself."""

from __future__ import annotations

import datetime as dt
import io
import unittest

import pytest
import subunit
import testtools
from testtools.content import text_content

from proctor.events.sink import ListSink
from proctor.events.unittest_result import REASON_MIME_TYPE, EventResult
from proctor.wire.event import TRACEBACK_MIME_TYPE, Event, Status
from proctor.wire.record import Attachment
from proctor.wire.v2 import encode_many


def run(*cases: type[unittest.TestCase], **options: object) -> tuple[list[Event], EventResult]:
    sink = ListSink()
    ticks = iter(range(1_000_000_000, 10**12, 1000))
    result = EventResult(sink, clock=lambda: next(ticks), **options)  # type: ignore[arg-type]
    loader = unittest.TestLoader()
    suite = unittest.TestSuite(loader.loadTestsFromTestCase(case) for case in cases)
    suite.run(result)
    return sink.events, result


class Sample(unittest.TestCase):
    """Cases these tests run by hand; pytest must not collect them."""

    __test__ = False


def finals(events: list[Event]) -> dict[str, Status]:
    return {e.test_id: e.status for e in events if e.test_id and e.status.is_final}


def files(events: list[Event], test_id: str) -> dict[str, Event]:
    return {e.file_name: e for e in events if e.test_id == test_id and e.file_name}


class Outcomes(Sample):
    def test_ok(self) -> None:
        pass

    def test_fail(self) -> None:
        self.assertEqual(1, 2)  # noqa: PT009 - unittest's own failure text

    def test_error(self) -> None:
        raise ValueError("boom")

    @unittest.skip("not today")
    def test_skip(self) -> None:
        pass

    @unittest.expectedFailure
    def test_xfail(self) -> None:
        self.fail("expected")

    @unittest.expectedFailure
    def test_uxsuccess(self) -> None:
        pass


class Subtests(Sample):
    def test_some_fail(self) -> None:
        for i in range(4):
            with self.subTest(i=i):
                self.assertEqual(i % 2, 0)  # noqa: PT009

    def test_all_pass(self) -> None:
        for i in range(3):
            with self.subTest(i=i):
                pass

    def test_skipped(self) -> None:
        with self.subTest("msg", n=1):
            self.skipTest("no n")

    def test_error_in_subtest(self) -> None:
        with self.subTest(k="v"):
            raise KeyError("k")


class ManyErrors(Sample):
    def tearDown(self) -> None:
        raise RuntimeError("teardown too")

    def test_two(self) -> None:
        self.addCleanup(lambda: 1 / 0)
        self.fail("first")


class BadClassFixture(Sample):
    @classmethod
    def setUpClass(cls) -> None:
        raise RuntimeError("class broken")

    def test_never(self) -> None:
        pass


class SkippedClassFixture(Sample):
    @classmethod
    def setUpClass(cls) -> None:
        raise unittest.SkipTest("whole class")

    def test_never(self) -> None:
        pass


def test_each_outcome_maps_to_its_status() -> None:
    events, result = run(Outcomes)
    prefix = f"{__name__}.Outcomes."
    assert finals(events) == {
        prefix + "test_ok": Status.SUCCESS,
        prefix + "test_fail": Status.FAIL,
        prefix + "test_error": Status.FAIL,
        prefix + "test_skip": Status.SKIP,
        prefix + "test_xfail": Status.XFAIL,
        prefix + "test_uxsuccess": Status.UXSUCCESS,
    }
    assert not result.wasSuccessful()
    assert result.testsRun == plain_tests_run(Outcomes)  # 6; 5 from 3.12 (see below)


def plain_tests_run(case: type[unittest.TestCase]) -> int:
    """What unittest's own result counts as run. From Python 3.12 a test skipped
    by a decorator never gets ``startTest`` (only ``addSkip``), so it is not
    counted, and it has no ``inprogress`` event here either."""
    plain = unittest.TestResult()
    unittest.TestLoader().loadTestsFromTestCase(case).run(plain)
    return plain.testsRun


def test_a_passing_test_is_two_events_with_its_duration() -> None:
    events, _ = run(Outcomes)
    mine = [e for e in events if e.test_id and e.test_id.endswith("test_ok")]
    assert [e.status for e in mine] == [Status.INPROGRESS, Status.SUCCESS]
    assert mine[0].timestamp is not None
    assert mine[1].timestamp is not None
    assert mine[1].timestamp > mine[0].timestamp


def test_tracebacks_and_reasons_carry_python_subunits_mime_types() -> None:
    events, _ = run(Outcomes)
    prefix = f"{__name__}.Outcomes."
    failure = files(events, prefix + "test_fail")["traceback"]
    assert failure.mime_type == TRACEBACK_MIME_TYPE
    assert failure.eof
    assert b"AssertionError: 1 != 2" in failure.file_bytes
    assert b"Traceback (most recent call last)" in failure.file_bytes
    reason = files(events, prefix + "test_skip")["reason"]
    assert (reason.file_bytes, reason.mime_type) == (b"not today", REASON_MIME_TYPE)
    assert b"expected" in files(events, prefix + "test_xfail")["traceback"].file_bytes


def test_failing_subtests_are_attachments_on_a_failed_parent() -> None:
    events, _ = run(Subtests)
    prefix = f"{__name__}.Subtests."
    status = finals(events)
    assert status[prefix + "test_some_fail"] is Status.FAIL
    assert status[prefix + "test_all_pass"] is Status.SUCCESS
    assert status[prefix + "test_skipped"] is Status.SUCCESS
    assert status[prefix + "test_error_in_subtest"] is Status.FAIL
    assert len(status) == 4  # no subtest became a test of its own
    some = files(events, prefix + "test_some_fail")
    assert set(some) == {"traceback (i=1)", "traceback (i=3)"}
    assert b"AssertionError: 1 != 0" in some["traceback (i=1)"].file_bytes
    assert some["traceback (i=3)"].mime_type == TRACEBACK_MIME_TYPE
    assert set(files(events, prefix + "test_skipped")) == {"reason [msg] (n=1)"}
    errored = files(events, prefix + "test_error_in_subtest")
    assert b"KeyError" in errored["traceback (k='v')"].file_bytes


def test_passing_subtests_emit_nothing() -> None:
    events, _ = run(Subtests)
    mine = [e for e in events if e.test_id and e.test_id.endswith("test_all_pass")]
    assert len(mine) == 2


def test_several_errors_make_one_final_status_and_keep_every_traceback() -> None:
    events, _ = run(ManyErrors)
    test_id = f"{__name__}.ManyErrors.test_two"
    assert [e.status for e in events if e.test_id == test_id and e.status is not Status.NONE] == [
        Status.INPROGRESS,
        Status.FAIL,
    ]
    found = files(events, test_id)
    assert set(found) == {"traceback", "traceback-1", "traceback-2"}
    texts = b"".join(e.file_bytes for e in found.values())
    for needle in (b"first", b"teardown too", b"ZeroDivisionError"):
        assert needle in texts


def test_a_failed_class_fixture_is_a_non_runnable_failure_remembered_by_id() -> None:
    events, result = run(BadClassFixture, SkippedClassFixture)
    failed = f"setUpClass ({__name__}.BadClassFixture)"
    skipped = f"setUpClass ({__name__}.SkippedClassFixture)"
    status = finals(events)
    assert status == {failed: Status.FAIL, skipped: Status.SKIP}
    fixture_final = [e for e in events if e.test_id == failed and e.status is Status.FAIL]
    assert [e.runnable for e in fixture_final] == [False]
    assert b"class broken" in files(events, failed)["traceback"].file_bytes
    assert result.fixture_outcomes[failed].status is Status.FAIL
    assert result.fixture_outcomes[skipped].message == "whole class"
    assert result.finished == []  # fixtures are not tests


class Printer:
    """An output source that hands out what a test 'printed'."""

    def __init__(self) -> None:
        self.pending: list[Attachment] = []

    def take(self) -> list[Attachment]:
        taken, self.pending = self.pending, []
        return taken


def test_captured_output_is_attached_before_the_final_status() -> None:
    printer = Printer()

    class Prints(Sample):
        def test_it(self) -> None:
            printer.pending.append(Attachment("stdout", b"hello\n", "text/plain; charset=utf8"))

    events, _ = run(Prints, output=printer)
    mine = [e for e in events if e.test_id and e.test_id.endswith("test_it")]
    assert [(e.status, e.file_name) for e in mine] == [
        (Status.INPROGRESS, None),
        (Status.NONE, "stdout"),
        (Status.SUCCESS, None),
    ]
    assert mine[1].file_bytes == b"hello\n"
    assert mine[1].timestamp == mine[2].timestamp


def test_flush_is_called_after_each_inprogress() -> None:
    sink = ListSink()
    seen: list[list[Status]] = []
    result = EventResult(sink, flush=lambda: seen.append([e.status for e in sink.events]))
    unittest.TestLoader().loadTestsFromTestCase(Outcomes).run(result)
    assert len(seen) == plain_tests_run(Outcomes)  # one per started test
    assert all(statuses[-1] is Status.INPROGRESS for statuses in seen)


def test_testtools_details_and_tags_come_through() -> None:
    class WithDetails(testtools.TestCase):
        __test__ = False

        def test_detailed(self) -> None:
            self.addDetail("note", text_content("a detail"))
            self.fail("with details")

    sink = ListSink()
    result = EventResult(sink, tags=["worker-0"])
    result.tags({"global"}, set())
    case = WithDetails("test_detailed")
    result.startTest(case)
    result.tags({"local"}, {"global"})
    result.addSuccess(case, details={"note": text_content("n")})
    result.stopTest(case)
    final = next(e for e in sink.events if e.status is Status.SUCCESS)
    assert final.tags == {"worker-0", "local"}
    note = next(e for e in sink.events if e.file_name == "note")
    assert note.mime_type == 'text/plain; charset="utf8"'

    sink2 = ListSink()
    WithDetails("test_detailed").run(EventResult(sink2))
    found = {e.file_name for e in sink2.events if e.file_name}
    assert {"note", "traceback"} <= found
    assert finals(sink2.events)[case.id()] is Status.FAIL


def test_time_pins_the_timestamps() -> None:
    sink = ListSink()
    result = EventResult(sink)
    moment = dt.datetime(2020, 1, 2, 3, 4, 5, 6000, tzinfo=dt.timezone.utc)
    result.time(moment)
    unittest.TestLoader().loadTestsFromName("test_ok", Outcomes).run(result)
    assert {e.timestamp for e in sink.events} == {1_577_934_245_006_000_000}


def test_failfast_stops_after_a_failure() -> None:
    _, result = run(Outcomes, Subtests)
    assert not result.shouldStop
    sink = ListSink()
    fast = EventResult(sink)
    fast.failfast = True
    unittest.TestLoader().loadTestsFromTestCase(Outcomes).run(fast)
    assert fast.shouldStop
    assert len(finals(sink.events)) < 6


def test_outcomes_for_tests_that_never_started_are_emitted_at_once() -> None:
    sink = ListSink()
    result = EventResult(sink)
    case = Outcomes("test_ok")
    result.addSkip(case, "skipped without starting")
    assert finals(sink.events) == {case.id(): Status.SKIP}
    assert result.finished == [case.id()]


class Interrupted(Sample):
    def test_interrupt(self) -> None:
        raise KeyboardInterrupt

    def test_later(self) -> None:
        pass


class Silent(Sample):
    """A test that reports no outcome at all (unittest counts it as run, not failed)."""

    def run(self, result: unittest.TestResult | None = None) -> None:
        assert result is not None
        result.startTest(self)
        result.stopTest(self)

    def runTest(self) -> None:
        pass


def test_a_test_a_keyboard_interrupt_escapes_fails_with_its_traceback() -> None:
    sink = ListSink()
    result = EventResult(sink)
    suite = unittest.TestLoader().loadTestsFromTestCase(Interrupted)
    with pytest.raises(KeyboardInterrupt) as raised:
        suite.run(result)
    test_id = Interrupted("test_interrupt").id()
    assert finals(sink.events) == {test_id: Status.FAIL}  # unittest stopped the run there
    traceback = files(sink.events, test_id)["traceback"]
    assert b"raise KeyboardInterrupt" in traceback.file_bytes
    assert traceback.mime_type == TRACEBACK_MIME_TYPE
    assert result.escaped is not None
    assert (result.escaped.test_id, result.escaped.exception) == (test_id, raised.value)
    assert not result.wasSuccessful()


def test_a_test_without_an_outcome_and_nothing_escaping_passes() -> None:
    sink = ListSink()
    result = EventResult(sink)
    Silent().run(result)
    assert finals(sink.events) == {Silent().id(): Status.SUCCESS}
    assert result.escaped is None


# -- python-subunit reads what we emit ---------------------------------------------


def summarise(events: list[Event]) -> testtools.StreamSummary:
    summary = testtools.StreamSummary()
    summary.startTestRun()
    subunit.ByteStreamToStreamResult(io.BytesIO(encode_many(events))).run(summary)
    summary.stopTestRun()
    return summary


def to_dicts(events: list[Event]) -> dict[str, dict[str, object]]:
    tests: dict[str, dict[str, object]] = {}
    stream = testtools.StreamToDict(lambda test: tests.__setitem__(test["id"], test))
    stream.startTestRun()
    subunit.ByteStreamToStreamResult(io.BytesIO(encode_many(events))).run(stream)
    stream.stopTestRun()
    return tests


def test_python_subunit_counts_each_test_once_with_the_right_outcome() -> None:
    events, _ = run(Outcomes, Subtests, ManyErrors)
    summary = summarise(events)
    assert summary.testsRun == 6 + 4 + 1
    assert len(summary.errors) == 2 + 2 + 1  # StreamSummary files every fail under errors
    assert len(summary.skipped) == 1
    assert len(summary.expectedFailures) == 1
    assert len(summary.unexpectedSuccesses) == 1
    assert summary.skipped[0][1] == "not today"


def test_python_subunit_sees_each_failing_subtest_with_its_parameters() -> None:
    events, _ = run(Subtests)
    tests = to_dicts(events)
    parent = tests[f"{__name__}.Subtests.test_some_fail"]
    assert parent["status"] == "fail"
    details = parent["details"]
    assert isinstance(details, dict)
    assert set(details) == {"traceback (i=1)", "traceback (i=3)"}
    assert "AssertionError: 1 != 0" in details["traceback (i=1)"].as_text()
    assert details["traceback (i=1)"].content_type.type == "text"
    durations = [t["timestamps"] for t in tests.values()]
    assert all(start is not None and stop is not None for start, stop in durations)


@pytest.mark.parametrize("case", [Outcomes, Subtests, ManyErrors])
# testtools 2.9's adapter lacks Python 3.12's addDuration; unittest warns and goes on.
@pytest.mark.filterwarnings("ignore:TestResult has no addDuration method:RuntimeWarning")
def test_outcomes_match_testtools_own_adapter(case: type[unittest.TestCase]) -> None:
    """Same statuses per test as testtools' ExtendedToStreamDecorator (what stestr uses)."""
    ours = {k: v.wire_name for k, v in finals(run(case)[0]).items()}
    theirs: dict[str, str] = {}
    stream = testtools.StreamToDict(lambda test: theirs.__setitem__(test["id"], test["status"]))
    adapter = testtools.ExtendedToStreamDecorator(stream)
    adapter.startTestRun()
    unittest.TestLoader().loadTestsFromTestCase(case).run(adapter)
    adapter.stopTestRun()
    # testtools makes a skipped subtest a test of its own (and then never finishes
    # the parent: it stays "inprogress"); we keep it on the parent, which passed.
    theirs = {k: v for k, v in theirs.items() if "test_skipped" not in k}
    ours = {k: v for k, v in ours.items() if "test_skipped" not in k}
    assert ours == theirs
