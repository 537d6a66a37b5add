"""Workers starting, loading the suite, tearing down and quitting, against fake workers."""

from __future__ import annotations

from proctor.exitcode import ExitCode
from proctor.runner.options import RunOptions
from proctor.runner.protocol import Stdin
from proctor.testing import FakeBackend, FakeStdin, FakeSuite, FakeTest
from proctor.wire.event import Status
from tests.runner.controller_support import passing, run_fake


def _notices(outcome: object) -> list[str]:
    return [str(n) for n in outcome.reporter.of("notice")]  # type: ignore[attr-defined]


def test_a_suite_that_cannot_load_stops_the_run_at_once_with_its_output_once() -> None:
    output = b"ImportError while loading conftest 'tests/conftest.py'.\nE   boom\n"
    suite = FakeSuite(
        passing(5),
        startup_error="pytest stopped before running tests (exit code 4)",
        startup_output=output,
    )
    outcome = run_fake(suite, RunOptions(concurrency=2, max_worker_restarts=8))
    result = outcome.result
    assert result.exit_code == ExitCode.RUN_ERROR
    assert result.error is not None
    assert "the suite could not be loaded" in result.error
    assert "pytest stopped before running tests" in result.error
    assert result.error.count("E   boom") == 1
    assert len(outcome.backend.workers) == 2  # no worker started again
    assert not any("could not obey" in n for n in _notices(outcome))
    shown = b"".join(d for d in outcome.reporter.of("output") if isinstance(d, bytes))
    assert b"E   boom" not in shown  # once: in the error, not also as output
    assert result.ran == 0


def test_a_worker_stuck_starting_is_killed_with_its_stacks_and_the_run_stops() -> None:
    suite = FakeSuite(passing(3), startup_hangs=True)
    backend = FakeBackend(suite)
    outcome = run_fake(suite, RunOptions(concurrency=1, start_wait=10.0), backend=backend)
    result = outcome.result
    assert result.exit_code == ExitCode.RUN_ERROR
    assert result.error is not None
    assert "was not ready after 10s" in result.error
    assert "File fake.py in <idle>" in result.error  # its stacks
    assert backend.workers[0].dumps == 1
    assert backend.workers[0].killed
    assert 10.0 <= result.wall_time < 12.5


def test_a_module_reading_stdin_at_import_gets_end_of_input_at_once() -> None:
    suite = FakeSuite(passing(3), import_reads_stdin=True)
    backend = FakeBackend(suite)
    stdin = FakeStdin(backend, [b"c\n"], interactive=True)  # even with a terminal
    outcome = run_fake(suite, RunOptions(concurrency=1), backend=backend, stdin=stdin)
    assert outcome.result.exit_code == ExitCode.OK
    assert Stdin(b"") in backend.workers[0].commands
    assert stdin.requests == 0
    assert outcome.reporter.of("debug_start") == []


def test_a_worker_that_does_not_exit_after_quit_is_killed_with_a_notice_of_its_stacks() -> None:
    suite = FakeSuite(passing(3), quit_hangs=True)
    backend = FakeBackend(suite)
    outcome = run_fake(suite, RunOptions(concurrency=1, quit_wait=5.0), backend=backend)
    assert outcome.result.exit_code == ExitCode.OK
    assert backend.workers[0].killed
    assert backend.workers[0].dumps == 1
    notice = next(n for n in _notices(outcome) if "after quit" in n)
    assert "worker 0 (pid 10000) had not exited 5s after quit" in notice
    assert "non-daemon thread" in notice
    assert "File fake.py in <idle>" in notice
    assert 5.0 <= outcome.result.wall_time < 8.0


def test_a_crash_in_teardown_after_quit_fails_the_run() -> None:
    suite = FakeSuite(passing(3), quit_exit_code=9, quit_output=b"tearDownModule: fatal error\n")
    outcome = run_fake(suite, RunOptions(concurrency=1))
    result = outcome.result
    assert result.exit_code == ExitCode.FAILED
    assert result.counts[Status.SUCCESS] == 3
    [failure] = result.failures
    assert failure.test_id == "worker-0 teardown"
    assert not failure.runnable
    traceback = failure.attachment("traceback")
    assert traceback is not None
    text = traceback.text()
    assert "exited with code 9 while tearing down after quit" in text
    assert "tearDownModule: fatal error" in text
    notices = _notices(outcome)
    assert "worker 0 exited with code 9 while tearing down after quit" in notices
    assert not any("while idle" in n for n in notices)


def test_workers_that_collected_different_suites_are_warned_about_once() -> None:
    suite = FakeSuite(passing(8), ready_counts={1: 7, 2: 6})
    outcome = run_fake(suite, RunOptions(concurrency=3))
    warnings = [n for n in _notices(outcome) if "collected different suites" in n]
    assert len(warnings) == 1
    assert "worker 0 found 8 tests" in warnings[0]
    assert outcome.result.exit_code == ExitCode.OK


def test_same_suites_are_not_warned_about() -> None:
    outcome = run_fake(passing(8), RunOptions(concurrency=3))
    assert not any("collected different suites" in n for n in _notices(outcome))


def test_no_capture_output_is_passed_on_live_and_whole() -> None:
    lines = b"".join(b"line %05d of the test's output\n" % i for i in range(20_000))
    test = FakeTest("m.T.loud", duration=5.0, output=lines)
    suite = FakeSuite([test, *passing(2)], capture=False)
    outcome = run_fake(suite, RunOptions(concurrency=1))
    calls = outcome.reporter.calls
    shown = b"".join(v for name, v in calls if name == "output" and isinstance(v, bytes))
    assert shown == lines  # all of it (the slot keeps only a bounded tail)
    first_output = next(i for i, (name, _) in enumerate(calls) if name == "output")
    assert first_output < calls.index(("record", "m.T.loud"))  # before the test ended
    in_sink = b"".join(e.file_bytes for e in outcome.events.events if e.file_name == "stderr")
    assert in_sink == lines


def test_never_more_workers_than_tests_in_the_heading() -> None:
    outcome = run_fake(passing(1), RunOptions(concurrency=4))
    progress = outcome.reporter.progress
    assert progress is not None
    assert progress.workers == 1


def test_quit_goes_out_with_the_last_batch_and_its_wait_starts_when_the_batch_ends() -> None:
    """A worker is sent quit as soon as nothing is left to hand out (it obeys it after
    its batch); quit_wait counts from the end of its last test, not from the quit."""
    suite = [FakeTest("m.A.t1", duration=50.0), FakeTest("m.A.t2", duration=50.0)]
    backend = FakeBackend(suite)
    outcome = run_fake(suite, RunOptions(concurrency=1, quit_wait=5.0), backend=backend)
    assert outcome.result.exit_code == ExitCode.OK
    worker = backend.workers[0]
    assert [type(c).__name__ for c in worker.commands] == ["ListTests", "RunTests", "Quit"]
    assert not worker.killed
    assert worker.dumps == 0
    assert outcome.result.wall_time < 101.0


def test_on_idle_is_called_when_the_controller_has_caught_up_after_new_records() -> None:
    from proctor.events.sink import ListSink
    from proctor.runner.controller import Controller

    suite = passing(30, duration=0.1)
    backend = FakeBackend(suite)
    seen: list[str] = []
    idle_at: list[int] = []
    controller = Controller(
        backend,
        RunOptions(concurrency=1),
        sink=ListSink(),
        record_sinks=[lambda record: seen.append(record.test_id)],
        on_idle=lambda: idle_at.append(len(seen)),
    )
    assert controller.run().exit_code == ExitCode.OK
    assert len(seen) == 30
    assert len(idle_at) >= 10  # between records, not only at the end
    assert idle_at == sorted(set(idle_at))  # only after new records
    assert all(count > 0 for count in idle_at)
