"""Debugger sessions: a test that reads stdin gets the terminal, one at a time."""

from __future__ import annotations

from proctor.exitcode import ExitCode
from proctor.runner.backend import StdinLine
from proctor.runner.options import RunOptions
from proctor.testing import FakeBackend, FakeStdin, FakeTest
from tests.runner.controller_support import RecordingReporter, passing, run_fake


def test_lines_typed_go_to_the_test_until_it_finishes() -> None:
    suite = [*passing(6), FakeTest("pkg.test_d.Case.test_pdb", outcome="stdin", reads=3)]
    backend = FakeBackend(suite)
    stdin = FakeStdin(backend, [b"p x\n", b"n\n", b"c\n"])
    outcome = run_fake(suite, RunOptions(concurrency=2), backend=backend, stdin=stdin)
    assert outcome.result.exit_code == ExitCode.OK
    worker = next(w for w in backend.workers.values() if "pkg.test_d.Case.test_pdb" in w.ran)
    sent = [c.data for c in worker.commands if type(c).__name__ == "Stdin"]
    assert sent == [b"p x\n", b"n\n", b"c\n"]
    kinds = [name for name, _ in outcome.reporter.calls if name.startswith("debug")]
    assert kinds[0] == "debug_start"
    assert kinds[-1] == "debug_end"
    start = outcome.reporter.of("debug_start")[0]
    assert start == ("pkg.test_d.Case.test_pdb", b"(Pdb) ")
    assert b"(Pdb) " in outcome.reporter.of("debug_output")


def test_the_timeout_clock_stops_while_a_test_waits_for_input() -> None:
    suite = [FakeTest("m.A.t", outcome="stdin", reads=1)]
    backend = FakeBackend(suite)

    class SlowTyping(FakeStdin):
        def request(self) -> None:  # the user takes a minute to answer
            self.requests += 1
            backend.schedule(60.0, lambda: backend.post(StdinLine(b"c\n")))

    outcome = run_fake(
        suite,
        RunOptions(concurrency=1, timeout=5.0),
        backend=backend,
        stdin=SlowTyping(backend, []),
    )
    assert outcome.result.exit_code == ExitCode.OK
    assert outcome.result.wall_time > 60


def test_without_a_terminal_a_test_reading_stdin_gets_end_of_input() -> None:
    suite = [FakeTest("m.A.t", outcome="stdin", reads=1)]
    outcome = run_fake(suite, RunOptions(concurrency=1), stdin=None)
    assert outcome.result.exit_code == ExitCode.FAILED  # it wanted "c"


def test_two_tests_asking_at_once_take_turns() -> None:
    suite = [
        FakeTest("m.A.t", outcome="stdin", reads=2, duration=0.1),
        FakeTest("m.B.t", outcome="stdin", reads=1, duration=0.1),
    ]
    backend = FakeBackend(suite)
    stdin = FakeStdin(backend, [b"n\n", b"c\n", b"c\n"])
    reporter = RecordingReporter()
    outcome = run_fake(
        suite, RunOptions(concurrency=2), backend=backend, stdin=stdin, reporter=reporter
    )
    assert outcome.result.exit_code == ExitCode.OK
    sessions = [(n, v) for n, v in reporter.calls if n in ("debug_start", "debug_end")]
    assert [n for n, _ in sessions] == ["debug_start", "debug_end", "debug_start", "debug_end"]
    first = sessions[0][1]
    assert isinstance(first, tuple)
    assert sessions[1][1] == first[0]


def test_a_line_typed_restarts_the_clock_and_the_timeout_still_applies_after_it() -> None:
    suite = [FakeTest("m.A.t", outcome="stdin", reads=1, after_input=20.0)]
    backend = FakeBackend(suite)

    class SlowTyping(FakeStdin):
        def request(self) -> None:  # the user answers after a minute
            self.requests += 1
            backend.schedule(60.0, lambda: backend.post(StdinLine(b"c\n")))

    outcome = run_fake(
        suite,
        RunOptions(concurrency=1, timeout=5.0),
        backend=backend,
        stdin=SlowTyping(backend, []),
    )
    result = outcome.result
    assert [r.test_id for r in result.failures] == ["m.A.t"]
    traceback = result.failures[0].attachment("traceback")
    assert traceback is not None
    assert "Timed out" in traceback.text()
    assert 65.0 <= result.wall_time < 68.0  # 60 s waiting (not counted), then 5 s


def test_at_end_of_input_the_timeout_applies_to_a_test_that_read_stdin() -> None:
    """``try: input() except EOFError: pass; time.sleep(20)`` under ``< /dev/null``."""
    suite = [FakeTest("m.A.t", outcome="stdin", reads=1, after_input=20.0)]
    backend = FakeBackend(suite)
    stdin = FakeStdin(backend, [], interactive=False)
    outcome = run_fake(suite, RunOptions(concurrency=1, timeout=1.0), backend=backend, stdin=stdin)
    result = outcome.result
    assert [r.test_id for r in result.failures] == ["m.A.t"]
    assert result.wall_time < 4.0
    assert outcome.reporter.of("debug_start") == []  # no session: nobody is typing


def test_input_that_is_not_a_terminal_goes_to_the_test_without_a_session() -> None:
    suite = [
        FakeTest("m.A.t", outcome="stdin", reads=2),
        FakeTest("m.B.t", outcome="stdin", reads=1, duration=0.5),
        FakeTest("m.C.t", outcome="stdin", reads=1, duration=0.5),
    ]
    backend = FakeBackend(suite)
    stdin = FakeStdin(backend, [b"n\n", b"c\n"], interactive=False)
    outcome = run_fake(suite, RunOptions(concurrency=1), backend=backend, stdin=stdin)
    assert outcome.status_of("m.A.t") == "success"  # got "n", then "c"
    assert outcome.status_of("m.B.t") == "fail"  # end of input: it wanted "c"
    assert outcome.status_of("m.C.t") == "fail"
    assert stdin.requests == 3  # m.C.t was answered at once: the input had ended
    assert outcome.reporter.of("debug_start") == []
    assert not any(name.startswith("debug") for name, _ in outcome.reporter.calls)


def test_without_input_a_test_that_keeps_reading_is_still_timed_out() -> None:
    suite = [FakeTest("m.A.t", outcome="stdin", reads=3, after_input=30.0)]
    outcome = run_fake(suite, RunOptions(concurrency=1, timeout=2.0), stdin=None)
    assert [r.test_id for r in outcome.result.failures] == ["m.A.t"]
    assert outcome.result.wall_time < 5.0


def test_a_busy_worker_is_not_sent_quit_early_while_input_may_come() -> None:
    """A quit waiting in a worker's pipe is end of input for a test reading stdin
    later in its batch: it is sent early only when no input can come."""
    suite = [FakeTest("m.A.first", duration=1.0), FakeTest("m.A.reads", outcome="stdin")]
    backend = FakeBackend(suite)
    stdin = FakeStdin(backend, [b"c\n"], interactive=False)
    outcome = run_fake(suite, RunOptions(concurrency=1), backend=backend, stdin=stdin)
    assert outcome.status_of("m.A.reads") == "success"  # it got "c", not end of input
    names = [type(c).__name__ for c in backend.workers[0].commands]
    assert names == ["ListTests", "RunTests", "Stdin", "Quit"]


def test_devnull_as_stdin_is_known_to_be_exhausted(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os

    from proctor.runner.threaded_stdin import ThreadedStdin

    backend = FakeBackend([])
    with open(os.devnull, "rb") as null:
        assert ThreadedStdin(backend, null).exhausted
    (tmp_path / "input").write_bytes(b"a line\n")
    with open(tmp_path / "input", "rb") as file:
        source = ThreadedStdin(backend, file)
        assert not source.exhausted
        assert not source.interactive


def test_other_workers_reports_wait_while_a_test_has_the_terminal() -> None:
    """Printed at once, other workers' results would land on the debugger's prompt."""
    big = [FakeTest(f"m.A.test_{i:02d}", duration=0.1) for i in range(30)]  # goes first
    suite = [FakeTest("m.A.pdb", outcome="stdin", reads=2), *big, *passing(20, duration=0.1)]
    backend = FakeBackend(suite)

    class SlowTyping(FakeStdin):
        def request(self) -> None:  # the user takes a second a line
            self.requests += 1
            backend.schedule(1.0, lambda: backend.post(StdinLine(b"c\n")))

    outcome = run_fake(
        suite, RunOptions(concurrency=2), backend=backend, stdin=SlowTyping(backend, [])
    )
    assert outcome.result.exit_code == ExitCode.OK
    calls = [name for name, _ in outcome.reporter.calls]
    start, end = calls.index("debug_start"), calls.index("debug_end")
    during = calls[start + 1 : end]
    assert during
    assert set(during) == {"debug_output"}
    records = outcome.reporter.of("record")
    assert sorted(records) == sorted([t.test_id for t in suite])  # held, then all reported
    after = [value for name, value in outcome.reporter.calls[end:] if name == "record"]
    assert len(after) > 1  # the other worker's results came after the session, in order
