"""Crashes, hangs, broken start-ups and Ctrl-C, against fake workers on a virtual clock."""

from __future__ import annotations

import signal

from proctor.exitcode import ExitCode
from proctor.runner.options import RunOptions
from proctor.testing import FakeBackend, FakeSuite, FakeTest
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
    assert result.exit_code == ExitCode.FAILED
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
    assert outcome.result.exit_code == ExitCode.FAILED
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
    assert outcome.result.exit_code == ExitCode.FAILED
    text = outcome.result.failures[0].attachment("traceback")
    assert text is not None
    assert "did not answer the request for a stack dump" in text.text()
    assert 1.5 <= outcome.result.wall_time < 1.0 + 0.5 + 0.2


def test_workers_that_fail_to_start_are_replaced_up_to_the_limit() -> None:
    suite = FakeSuite(passing(10), startup_failures=3)
    outcome = run_fake(suite, RunOptions(concurrency=2, max_worker_restarts=4))
    assert outcome.result.exit_code == ExitCode.OK
    assert outcome.result.counts[Status.SUCCESS] == 10
    assert any("failed to start" in str(n) for n in outcome.reporter.of("notice"))


def test_a_suite_that_kills_every_worker_at_start_stops_with_an_error() -> None:
    suite = FakeSuite(passing(10), startup_failures=1000)
    outcome = run_fake(suite, RunOptions(concurrency=2, max_worker_restarts=3))
    result = outcome.result
    assert result.exit_code == ExitCode.RUN_ERROR
    assert result.error is not None
    assert "ImportError: boom" in result.error
    assert len(outcome.backend.workers) <= 2 + 3 + 1


def test_ctrl_c_lets_running_tests_finish_starts_no_more_and_keeps_results() -> None:
    suite = passing(100, duration=0.1)
    backend = FakeBackend(suite)
    backend.interrupt_at(1.05)
    outcome = run_fake(suite, RunOptions(concurrency=2), backend=backend)
    result = outcome.result
    assert result.exit_code == ExitCode.INTERRUPTED
    finished = result.counts[Status.SUCCESS]
    assert 15 <= finished <= 25
    # The worker had started the next test of its batch when its test finished (its
    # result and the next inprogress come in one write): that test is "not run",
    # not also unfinished, and nothing of it reaches the sink.
    assert not result.unfinished  # the running tests were allowed to finish
    assert finished + len(result.not_run) == 100
    assert len(set(result.not_run)) == len(result.not_run)
    reported = {r.test_id for r in outcome.records}
    assert reported.isdisjoint(result.not_run)
    assert len(reported) == finished
    assert result.wall_time < 1.3
    assert any("Ctrl-C again" in str(n) for n in outcome.reporter.of("notice"))


def test_ctrl_c_in_a_batch_of_long_tests_stops_after_the_running_one() -> None:
    """The reviewer's case: 3 tests of 2 s on one worker, Ctrl-C at 2.5 s."""
    suite = [FakeTest(f"m.T.test_{i}", duration=2.0) for i in (1, 2, 3)]
    backend = FakeBackend(suite)
    backend.interrupt_at(2.5)
    outcome = run_fake(suite, RunOptions(concurrency=1), backend=backend)
    result = outcome.result
    assert result.exit_code == ExitCode.INTERRUPTED
    assert result.outcome_line() == "2 passed, 0 failed, 0 skipped, 1 not run"
    assert result.not_run == ["m.T.test_3"]
    assert outcome.status_of("m.T.test_3") is None
    assert backend.workers[0].ran == ["m.T.test_1", "m.T.test_2", "m.T.test_3"]
    assert backend.workers[0].killed


def test_a_second_ctrl_c_counts_the_running_tests_once_as_unfinished() -> None:
    suite = [FakeTest(f"m.T.t{i}", duration=10.0) for i in range(4)]
    backend = FakeBackend(suite)
    backend.interrupt_at(5.0)
    backend.interrupt_at(6.0)
    outcome = run_fake(suite, RunOptions(concurrency=2), backend=backend)
    result = outcome.result
    assert len(result.unfinished) == 2  # one running on each worker
    assert result.ran == 0
    assert sorted([r.test_id for r in result.unfinished] + result.not_run) == [
        test.test_id for test in suite
    ]


def test_sigterm_stops_every_worker_at_once_and_exits_128_plus_the_signal() -> None:
    suite = [FakeTest("m.A.long", duration=100.0), *passing(3)]
    backend = FakeBackend(suite)
    backend.interrupt_at(1.0, signal.SIGTERM)
    outcome = run_fake(suite, RunOptions(concurrency=2), backend=backend)
    result = outcome.result
    assert result.interrupted
    assert result.exit_code == 128 + signal.SIGTERM
    assert result.wall_time < 1.1
    assert [r.test_id for r in result.unfinished] == ["m.A.long"]
    assert result.counts[Status.SUCCESS] + len(result.not_run) == 3
    assert result.counts[Status.SUCCESS] >= 1
    running = next(w for w in backend.workers.values() if "m.A.long" in w.ran)
    assert running.killed
    assert not any(worker.alive for worker in backend.workers.values())
    assert any("SIGTERM" in str(n) for n in outcome.reporter.of("notice"))


def test_a_test_that_finishes_while_its_stacks_are_dumped_is_not_failed() -> None:
    """The reviewer's case: test_1 sleeps 1.04 s under --timeout 1: its result (with
    test_2's inprogress) arrives while the controller waits for the stack dump."""
    suite = [
        FakeTest("m.T.test_1", duration=1.04),
        FakeTest("m.T.test_2", duration=0.5),
        FakeTest("m.T.test_3"),
    ]
    backend = FakeBackend(suite)
    outcome = run_fake(suite, RunOptions(concurrency=1, timeout=1.0), backend=backend)
    result = outcome.result
    assert result.exit_code == ExitCode.OK
    for test in suite:
        assert outcome.status_of(test.test_id) == "success"  # once each
    assert not result.unfinished
    assert len(backend.workers) == 1  # the worker was spared
    assert backend.workers[0].dumps == 1
    assert any("finished just after its --timeout" in str(n) for n in outcome.reporter.of("notice"))


def test_a_result_read_only_after_the_kill_blames_nobody_and_reruns_the_next_test() -> None:
    """The timed-out test finished before the kill, but its result (and the next
    test's inprogress) were still in the pipe: read with the worker's exit."""
    suite = FakeSuite(
        [
            FakeTest("m.T.test_1", duration=1.3),
            FakeTest("m.T.test_2", duration=0.5),
            FakeTest("m.T.test_3"),
        ],
        results_lag=0.5,
    )
    backend = FakeBackend(suite)
    outcome = run_fake(suite, RunOptions(concurrency=1, timeout=1.0), backend=backend)
    result = outcome.result
    assert backend.workers[0].killed
    assert result.exit_code == ExitCode.OK
    assert not result.failures
    assert not result.unfinished
    for test in suite.tests:
        assert outcome.status_of(test.test_id) == "success"  # once each
    test_2 = [r for r in outcome.records if r.test_id == "m.T.test_2"]
    assert [r.worker for r in test_2] == ["1"]  # ran again on the new worker
    notices = [str(n) for n in outcome.reporter.of("notice")]
    assert any("had just finished; m.T.test_2 will run again" in n for n in notices)


def test_a_timed_out_test_with_more_of_its_batch_fails_once_and_the_rest_run_elsewhere() -> None:
    suite = [FakeTest("m.T.a"), FakeTest("m.T.hang", outcome="hang"), FakeTest("m.T.b")]
    backend = FakeBackend(suite)
    outcome = run_fake(suite, RunOptions(concurrency=1, timeout=1.0), backend=backend)
    assert outcome.status_of("m.T.hang") == "fail"
    assert outcome.status_of("m.T.a") == "success"
    assert outcome.status_of("m.T.b") == "success"
    assert not outcome.result.unfinished


def test_a_second_ctrl_c_stops_running_tests_at_once() -> None:
    suite = [FakeTest("m.A.long", duration=100.0), FakeTest("m.B.long", duration=100.0)]
    backend = FakeBackend(suite)
    backend.interrupt_at(1.0)
    backend.interrupt_at(2.0)
    outcome = run_fake(suite, RunOptions(concurrency=2), backend=backend)
    result = outcome.result
    assert result.exit_code == ExitCode.INTERRUPTED
    assert result.wall_time < 2.1
    assert sorted(r.test_id for r in result.unfinished) == ["m.A.long", "m.B.long"]


def test_ctrl_c_while_listing_ends_the_run() -> None:
    backend = FakeBackend(passing(5))
    backend.interrupt_at(0.01)
    outcome = run_fake(passing(5), RunOptions(concurrency=2), backend=backend)
    assert outcome.result.exit_code == ExitCode.INTERRUPTED
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
    from proctor.events.sink import ListSink
    from proctor.runner.controller import Controller
    from proctor.runner.slot import Slot
    from proctor.wire.event import Event

    backend = FakeBackend([])
    seen = ListSink()
    controller = Controller(backend, RunOptions(), sink=seen)
    slot = Slot(backend.start(4), 0.0)
    controller._on_events(slot, [Event(test_id="t", status=Status.SUCCESS, route_code="x")])
    assert seen.events[0].route_code == "4/x"
    assert seen.events[0].tags == {"worker-4"}


def test_tests_the_worker_never_reported_are_counted_apart() -> None:
    class Skipping(FakeBackend):
        pass

    suite = passing(4, modules=1)
    backend = Skipping(suite)
    backend.tests.pop(suite[1].test_id)  # the worker does not know this one: reports fail
    outcome = run_fake(suite, RunOptions(concurrency=1), backend=backend)
    assert outcome.status_of(suite[1].test_id) == "fail"


def test_no_tests_selected_is_exit_5() -> None:
    from proctor.exitcode import ExitCode
    from proctor.runner.selection import Selection

    outcome = run_fake(
        passing(5), RunOptions(concurrency=2, selection=Selection(filters=("nomatch",)))
    )
    assert outcome.result.exit_code == ExitCode.NO_TESTS
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


def test_salvaged_capture_is_bounded_to_a_head_and_a_tail_with_a_note(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from proctor.runner.casualty import salvage_capture

    path = tmp_path / "capture.out"
    path.write_bytes(b"H" * 300_000 + b"M" * 2_000_000 + b"T" * 300_000)
    [attachment] = salvage_capture({"stdout": str(path)}, limit=1_000_000)
    content = attachment.content
    assert content.startswith(b"H" * 250_000)  # the head: a quarter of the limit
    assert content.endswith(b"T" * 300_000)
    assert b"bytes cut by proctor: the test wrote 2600000" in content
    assert len(content) < 1_000_200
    assert not path.exists()
    small = tmp_path / "small.out"
    small.write_bytes(b"hello\n")
    assert salvage_capture({"stderr": str(small)})[0].content == b"hello\n"


def test_a_timeouts_worker_output_attachment_stops_where_the_dump_begins() -> None:
    from proctor.runner.casualty import timeout_text
    from proctor.runner.slot import Slot

    backend = FakeBackend([])
    slot = Slot(backend.start(0), 0.0)
    slot.add_output(b"x" * 100_000, 0.0)  # more than the 64 KiB kept before the dump
    slot.dump_mark = len(slot.output)
    slot.add_output(b"Thread 0x1 (most recent call first):\n", 0.0)
    text, before = timeout_text(slot, 1.0)
    assert before == b"x" * 64 * 1024
    assert "Thread 0x1" in text
