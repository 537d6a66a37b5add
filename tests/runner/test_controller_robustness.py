"""Crashes, hangs, broken start-ups and Ctrl-C, against fake workers on a virtual clock."""

from __future__ import annotations

from proctor.runner.fake import FakeBackend, FakeSuite, FakeTest
from proctor.runner.options import RunOptions
from proctor.runner.report import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_RUN_ERROR
from proctor.wire.event import Status
from tests.runner.controller_support import passing, run_fake

SEGFAULT = (
    b"Fatal Python error: Segmentation fault\n\nCurrent thread 0x01 (most recent call first):\n"
)


def _ids(tests: list[FakeTest]) -> list[str]:
    return [t.test_id for t in tests]


def test_a_crash_fails_the_test_with_the_signal_and_output_and_the_rest_still_runs() -> None:
    suite = passing(40, duration=0.1)
    suite.insert(5, FakeTest("pkg.test_m0.Case.test_segv", outcome="crash", output=SEGFAULT))
    outcome = run_fake(suite, RunOptions(concurrency=2))
    result = outcome.result
    assert result.exit_code == EXIT_FAILED
    assert [r.test_id for r in result.failures] == ["pkg.test_m0.Case.test_segv"]
    traceback = result.failures[0].attachment("traceback")
    assert traceback is not None
    text = traceback.text()
    assert "killed by signal 11 (SIGSEGV)" in text
    assert "Fatal Python error: Segmentation fault" in text
    assert result.counts[Status.SUCCESS] == 40
    for test_id in _ids(suite):
        assert outcome.status_of(test_id) is not None
    assert result.worker_restarts == 1
    assert len(outcome.backend.workers) == 3
    assert any("SIGSEGV" in str(n) for n in outcome.reporter.of("notice"))


def test_an_exit_code_is_named_and_an_unannounced_test_is_still_blamed() -> None:
    suite = [
        FakeTest("m.A.t1"),
        FakeTest("m.A.t2", outcome="crash", exit_code=3),
        FakeTest("m.A.t3"),
    ]
    outcome = run_fake(suite, RunOptions(concurrency=1))
    failure = outcome.result.failures[0]
    assert failure.test_id == "m.A.t2"
    text = failure.attachment("traceback")
    assert text is not None
    assert "exited with code 3" in text.text()
    assert outcome.status_of("m.A.t3") == "success"


def test_every_test_crashing_still_ends_each_failed_once() -> None:
    suite = [FakeTest(f"m.C{i}.t", outcome="crash", exit_code=-9) for i in range(12)]
    outcome = run_fake(suite, RunOptions(concurrency=2, max_worker_restarts=1))
    assert outcome.result.exit_code == EXIT_FAILED
    assert outcome.result.error is None
    assert sorted(r.test_id for r in outcome.result.failures) == sorted(_ids(suite))
    assert "SIGKILL" in (outcome.result.failures[0].attachment("traceback") or _none()).text()


def _none():  # type: ignore[no-untyped-def]
    raise AssertionError("missing attachment")


def test_a_hung_test_times_out_with_the_stacks_and_the_run_goes_on() -> None:
    suite = passing(20, duration=0.5)
    suite.insert(3, FakeTest("pkg.test_h.Case.test_hang", outcome="hang"))
    outcome = run_fake(suite, RunOptions(concurrency=2, timeout=2.0))
    result = outcome.result
    assert [r.test_id for r in result.failures] == ["pkg.test_h.Case.test_hang"]
    text = (result.failures[0].attachment("traceback") or _none()).text()
    assert "Timed out: still running after 2s" in text
    assert "File fake.py in pkg.test_h.Case.test_hang" in text
    assert result.counts[Status.SUCCESS] == 20
    duration = result.failures[0].duration
    assert duration is not None
    assert 2.0 <= duration < 2.5
    assert result.wall_time < 20 * 0.5 / 2 + 3


def test_a_worker_that_does_not_answer_the_dump_is_killed_after_the_wait() -> None:
    suite = [FakeTest("m.A.t", outcome="hang", answers_dump=False)]
    backend = FakeBackend(suite)
    outcome = run_fake(
        suite, RunOptions(concurrency=1, timeout=1.0, dump_wait=0.5), backend=backend
    )
    assert outcome.result.exit_code == EXIT_FAILED
    text = outcome.result.failures[0].attachment("traceback")
    assert text is not None
    assert "did not answer the request for a stack dump" in text.text()
    assert 1.5 <= outcome.result.wall_time < 1.0 + 0.5 + 0.2


def test_workers_that_fail_to_start_are_replaced_up_to_the_limit() -> None:
    suite = FakeSuite(passing(10), startup_failures=3)
    outcome = run_fake(suite, RunOptions(concurrency=2, max_worker_restarts=4))
    assert outcome.result.exit_code == EXIT_OK
    assert outcome.result.counts[Status.SUCCESS] == 10
    assert any("failed to start" in str(n) for n in outcome.reporter.of("notice"))


def test_a_suite_that_kills_every_worker_at_start_stops_with_an_error() -> None:
    suite = FakeSuite(passing(10), startup_failures=1000)
    outcome = run_fake(suite, RunOptions(concurrency=2, max_worker_restarts=3))
    result = outcome.result
    assert result.exit_code == EXIT_RUN_ERROR
    assert result.error is not None
    assert "ImportError: boom" in result.error
    assert len(outcome.backend.workers) <= 2 + 3 + 1


def test_ctrl_c_lets_running_tests_finish_starts_no_more_and_keeps_results() -> None:
    suite = passing(100, duration=0.1)
    backend = FakeBackend(suite)
    backend.interrupt_at(1.05)
    outcome = run_fake(suite, RunOptions(concurrency=2), backend=backend)
    result = outcome.result
    assert result.exit_code == EXIT_INTERRUPTED
    finished = result.counts[Status.SUCCESS]
    assert 15 <= finished <= 25
    assert finished + len(result.not_run) == 100
    assert not result.unfinished  # the running tests were allowed to finish
    assert result.wall_time < 1.3
    assert any("Ctrl-C again" in str(n) for n in outcome.reporter.of("notice"))


def test_a_second_ctrl_c_stops_running_tests_at_once() -> None:
    suite = [FakeTest("m.A.long", duration=100.0), FakeTest("m.B.long", duration=100.0)]
    backend = FakeBackend(suite)
    backend.interrupt_at(1.0)
    backend.interrupt_at(2.0)
    outcome = run_fake(suite, RunOptions(concurrency=2), backend=backend)
    result = outcome.result
    assert result.exit_code == EXIT_INTERRUPTED
    assert result.wall_time < 2.1
    assert sorted(r.test_id for r in result.unfinished) == ["m.A.long", "m.B.long"]


def test_ctrl_c_while_listing_ends_the_run() -> None:
    backend = FakeBackend(passing(5))
    backend.interrupt_at(0.01)
    outcome = run_fake(passing(5), RunOptions(concurrency=2), backend=backend)
    assert outcome.result.exit_code == EXIT_INTERRUPTED
    assert outcome.result.ran == 0


def test_events_carry_the_worker_as_route_code_and_stestr_tag() -> None:
    outcome = run_fake(passing(10), RunOptions(concurrency=2))
    statuses = [e for e in outcome.events.events if e.status is not Status.NONE]
    assert statuses
    for event in statuses:
        assert event.route_code in ("0", "1")
        assert event.tags == {f"worker-{event.route_code}"}
    assert {r.worker for r in outcome.records} == {"0", "1"}


def test_a_route_code_the_worker_set_is_kept_under_the_worker_number() -> None:
    from proctor.runner.controller import Controller
    from proctor.runner.slot import Slot
    from proctor.wire.event import Event

    backend = FakeBackend([])
    controller = Controller(backend, RunOptions())
    slot = Slot(backend.start(4), 0.0)
    seen = []
    controller._send = seen.append  # type: ignore[method-assign]
    controller._on_events(slot, [Event(test_id="t", status=Status.SUCCESS, route_code="x")])
    assert seen[0].route_code == "4/x"


def test_tests_the_worker_never_reported_are_counted_apart() -> None:
    class Skipping(FakeBackend):
        pass

    suite = passing(4, modules=1)
    backend = Skipping(suite)
    backend.tests.pop(suite[1].test_id)  # the worker does not know this one: reports fail
    outcome = run_fake(suite, RunOptions(concurrency=1), backend=backend)
    assert outcome.status_of(suite[1].test_id) == "fail"


def test_no_tests_selected_is_exit_5() -> None:
    from proctor.runner.report import EXIT_NO_TESTS
    from proctor.runner.selection import Selection

    outcome = run_fake(
        passing(5), RunOptions(concurrency=2, selection=Selection(filters=("nomatch",)))
    )
    assert outcome.result.exit_code == EXIT_NO_TESTS
    assert outcome.result.ran == 0


def test_a_worker_dying_between_tests_is_said_to_have_died_before_the_next_one() -> None:
    from proctor.runner.casualty import crash_text, salvage_capture
    from proctor.runner.slot import Slot

    backend = FakeBackend([])
    slot = Slot(backend.start(0), 0.0)
    slot.add_batch(["m.A.t1", "m.A.t2"], [0.1, 0.1], 0.0)
    slot.current = "m.A.t1"
    assert "while running this test" in crash_text(slot, "m.A.t1", -11)
    slot.finish("m.A.t1", 0.1)
    text = crash_text(slot, "m.A.t2", 1)
    assert "exited with code 1 before this test started" in text
    assert salvage_capture({"stdout": "/nonexistent/file"}) == []
