"""``proctor run`` in-process, with fake workers: options, output, exit codes, the store.

The subprocess backend is replaced by :class:`~proctor.testing.fake_backend.FakeBackend`
(given by parameter: ``main(argv, obj=CliDeps(...))``), so these run in milliseconds; the
same paths with real workers are in ``test_run_processes.py``.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from proctor.cli.deps import CliDeps
from proctor.cli.main import main
from proctor.cli.run_view import LiveView
from proctor.runner.report import Progress, RunResult
from proctor.testing import FakeBackend, FakeTest
from proctor.wire.event import Status
from proctor.wire.record import Attachment, TestRecord
from proctor.wire.v2 import decode

SUITE = [
    FakeTest("pkg.test_a.A.test_ok", duration=0.2),
    FakeTest("pkg.test_a.A.test_also_ok", duration=0.1),
    FakeTest("pkg.test_b.B.test_bad", outcome="fail"),
    FakeTest("pkg.test_b.B.test_skip", outcome="skip"),
]


def test_a_failing_run_shows_each_test_the_failure_and_a_summary(
    project: Path,
    fake_suite: Callable[[list[FakeTest]], list[FakeBackend]],
    fake_main: Callable[[list[str]], int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake_suite(SUITE)
    code = fake_main(["run"])
    out = capsys.readouterr().out
    assert code == 1
    assert re.search(r"^\{\d\} pkg\.test_a\.A\.test_ok \[0\.\d+s\] \.\.\. ok$", out, re.M)
    assert "pkg.test_b.B.test_bad [" in out
    assert "AssertionError: pkg.test_b.B.test_bad failed" in out
    assert "Failed tests:\n  pkg.test_b.B.test_bad\n" in out
    assert re.search(r"^2 passed, 1 failed, 1 skipped in ", out, re.M)


def test_the_run_is_stored_and_failing_reruns_only_the_failure(
    project: Path,
    fake_suite: Callable[[list[FakeTest]], list[FakeBackend]],
    fake_main: Callable[[list[str]], int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake_suite(SUITE)
    assert fake_main(["run"]) == 1
    capsys.readouterr()
    backends = fake_suite(SUITE)
    assert fake_main(["run", "--failing"]) == 1
    ran = [i for b in backends for w in b.workers.values() for i in w.ran]
    assert ran == ["pkg.test_b.B.test_bad"]
    fake_suite([t for t in SUITE if t.outcome != "fail"] + [FakeTest("pkg.test_b.B.test_bad")])
    assert fake_main(["run", "--failing"]) == 0
    capsys.readouterr()
    assert fake_main(["run", "--failing"]) == 0
    assert "No failing tests recorded" in capsys.readouterr().out


def test_history_orders_the_next_run_longest_first(
    project: Path,
    fake_suite: Callable[[list[FakeTest]], list[FakeBackend]],
    fake_main: Callable[[list[str]], int],
) -> None:
    tests = [FakeTest(f"pkg.m{i}.C.t", duration=0.01 * (i + 1)) for i in range(6)]
    fake_suite(tests)
    assert fake_main(["run", "--serial"]) == 0
    backends = fake_suite(tests)
    assert fake_main(["run", "--serial"]) == 0
    ran = backends[0].workers[0].ran
    assert ran == [t.test_id for t in reversed(tests)]


def test_subunit_writes_a_v2_stream_with_worker_routes(
    project: Path,
    fake_suite: Callable[[list[FakeTest]], list[FakeBackend]],
    fake_main: Callable[[list[str]], int],
    capfdbinary: pytest.CaptureFixture[bytes],
) -> None:
    fake_suite(SUITE)
    assert fake_main(["run", "--subunit", "--no-store"]) == 1
    captured = capfdbinary.readouterr()
    events = decode(captured.out)
    finals = {e.test_id: e for e in events if e.status > Status.INPROGRESS}
    assert set(finals) == {t.test_id for t in SUITE}
    assert all(e.route_code in ("0", "1") for e in finals.values())
    assert all(e.tags == {f"worker-{e.route_code}"} for e in finals.values())
    assert b"2 passed, 1 failed, 1 skipped" in captured.err


def test_junit_is_written(
    project: Path,
    fake_suite: Callable[[list[FakeTest]], list[FakeBackend]],
    fake_main: Callable[[list[str]], int],
) -> None:
    fake_suite(SUITE)
    assert fake_main(["run", "--junit", "out.xml", "--no-store"]) == 1
    root = ET.parse(project / "out.xml").getroot()
    suite = root if root.tag == "testsuite" else root[0]
    assert suite.get("tests") == "4"
    assert suite.get("failures") == "1"


def test_list_prints_the_selected_ids(
    project: Path,
    fake_suite: Callable[[list[FakeTest]], list[FakeBackend]],
    fake_main: Callable[[list[str]], int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake_suite(SUITE)
    assert fake_main(["run", "--list", "test_a"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "pkg.test_a.A.test_ok",
        "pkg.test_a.A.test_also_ok",
    ]


def test_no_tests_selected_is_exit_5_with_a_reason(
    project: Path,
    fake_suite: Callable[[list[FakeTest]], list[FakeBackend]],
    fake_main: Callable[[list[str]], int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake_suite(SUITE)
    assert fake_main(["run", "nothing-matches"]) == 5
    assert "matched none of the 4 tests found" in capsys.readouterr().err


def test_a_bad_filter_is_a_usage_error_before_any_worker(
    project: Path,
    fake_suite: Callable[[list[FakeTest]], list[FakeBackend]],
    fake_main: Callable[[list[str]], int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    backends = fake_suite(SUITE)
    assert fake_main(["run", "("]) == 2
    assert "not a regex" in capsys.readouterr().err
    assert backends == []


def test_random_prints_the_seed_and_seed_replays_the_order(
    project: Path,
    fake_suite: Callable[[list[FakeTest]], list[FakeBackend]],
    fake_main: Callable[[list[str]], int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    tests = [FakeTest(f"pkg.m{i % 5}.C.t{i}") for i in range(40)]
    first = fake_suite(tests)
    assert fake_main(["run", "--serial", "--random", "--no-store"]) == 0
    seed = re.search(r"seed (\d+)", capsys.readouterr().out)
    assert seed is not None
    again = fake_suite(tests)
    assert fake_main(["run", "--serial", "--seed", seed.group(1), "--no-store"]) == 0
    assert first[0].workers[0].ran == again[0].workers[0].ran
    other = fake_suite(tests)
    assert fake_main(["run", "--serial", "--seed", str(int(seed.group(1)) + 1), "--no-store"]) == 0
    assert other[0].workers[0].ran != first[0].workers[0].ran


def test_until_failure_runs_until_a_run_fails(
    project: Path,
    fake_suite: Callable[[list[FakeTest]], list[FakeBackend]],
) -> None:
    runs: list[FakeBackend] = []

    def make_backend(args: object, config: object) -> FakeBackend:
        outcome = "fail" if len(runs) == 3 else "success"
        backend = FakeBackend([FakeTest("pkg.m.C.flaky", outcome=outcome)])
        runs.append(backend)
        return backend

    deps = CliDeps(backend_factory=make_backend)
    assert main(["run", "--until-failure", "--no-store"], obj=deps) == 1
    assert len(runs) == 4


def test_isolate_names_the_culprit(
    project: Path,
    fake_suite: Callable[[list[FakeTest]], list[FakeBackend]],
    fake_main: Callable[[list[str]], int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    tests = [FakeTest(f"pkg.m.A.test_{i:02d}") for i in range(12)]
    tests.append(FakeTest("pkg.z.Z.test_victim", fails_after=frozenset({"pkg.m.A.test_05"})))
    fake_suite(tests)
    assert fake_main(["run", "--serial"]) == 1
    capsys.readouterr()
    assert fake_main(["run", "--isolate", "pkg.z.Z.test_victim"]) == 1
    out = capsys.readouterr().out
    assert "12 tests ran before it on worker 0" in out
    assert "pkg.z.Z.test_victim fails when run after:\n  pkg.m.A.test_05\n" in out


def test_live_view_draws_a_status_line_and_prints_failures_above_it() -> None:
    out = io.StringIO()
    view = LiveView(out, color=False)
    progress = Progress(total=4, workers=2, has_history=True, expected_left=8.0)
    view.planned(progress)
    progress.done = 1
    view.record(TestRecord("t.ok", Status.SUCCESS, route_code="0", start=0, stop=1))
    progress.done, progress.failed = 2, 1
    failure = TestRecord(
        "t.bad",
        Status.FAIL,
        route_code="1",
        start=0,
        stop=10**9,
        attachments=(Attachment("traceback", b"Traceback: boom\n"),),
    )
    view.record(failure)
    text = out.getvalue()
    assert "Running 4 tests on 2 workers" in text
    assert "{1} t.bad [1.00s] ... FAILED" in text
    assert "Traceback: boom" in text
    status = view.status_text(0.0)
    assert "2/4" in status
    assert "1 failed" in status
    assert "ETA 4.00s" in status
    result = RunResult()
    result.counts[Status.SUCCESS] = 1
    result.counts[Status.FAIL] = 1
    result.failures.append(failure)
    view.finished(result)
    # The run's wall time as the store keeps it: first test start to last test end.
    assert out.getvalue().rstrip().endswith("1 passed, 1 failed, 0 skipped in 1.00s")


def test_a_queue_jobs_status_line_counts_its_share_of_the_build() -> None:
    out = io.StringIO()
    view = LiveView(out, color=False)
    progress = Progress(total=0, workers=2, build_total=300, has_history=True)
    view.planned(progress)
    progress.total, progress.done, progress.expected_left = 40, 25, 30.0
    assert "Running a share of the build's 300 tests on 2 workers" in out.getvalue()
    status = view.status_text(0.0)
    assert "25/40 taken of 300" in status
    assert "ETA 15.00s" in status  # its part of the build's time left, on its workers


def test_the_line_views_short_way_for_passing_tests_matches_trace_view() -> None:
    from proctor.cli.render import TraceView
    from proctor.cli.run_view import LineView

    records = [
        TestRecord("t.a", Status.SUCCESS, route_code="1", start=0, stop=1_234_000),
        TestRecord("t.b", Status.SUCCESS, route_code="0/x", start=0, stop=2 * 10**9),
        TestRecord("t.c", Status.SUCCESS, route_code=None, tags=frozenset({"worker-3"})),
        TestRecord("t.d", Status.SUCCESS),
    ]
    for color in (False, True):
        ours, theirs = io.StringIO(), io.StringIO()
        line_view, trace = LineView(ours, color=color), TraceView(theirs, color=color)
        for record in records:
            line_view.record(record)
            trace.record(record)
        assert ours.getvalue() == theirs.getvalue()


def _failing(project: Path) -> list[str]:
    """The failing set stored in the project's repository."""
    from proctor.store.opening import open_store

    store = open_store(str(project / ".proctor"), create=False)
    try:
        return store.failing_ids()
    finally:
        store.close()


def test_ctrl_c_stores_no_test_as_failing_and_the_counts_add_up(
    project: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def make_backend(args: object, config: object) -> FakeBackend:
        backend = FakeBackend([FakeTest(f"pkg.m.T.test_{i}", duration=2.0) for i in (1, 2, 3)])
        backend.interrupt_at(2.5)
        return backend

    deps = CliDeps(backend_factory=make_backend)
    assert main(["run", "-j1"], obj=deps) == 130
    out = capsys.readouterr().out
    assert "Interrupted: 2 passed, 0 failed, 0 skipped, 1 not run in" in out
    assert _failing(project) == []
    assert main(["failing"], obj=deps) == 0


def test_until_failure_with_random_draws_a_new_seed_each_run(
    project: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    runs: list[FakeBackend] = []

    def make_backend(args: object, config: object) -> FakeBackend:
        outcome = "fail" if len(runs) == 3 else "success"
        tests = [FakeTest(f"pkg.m{i}.C.t") for i in range(20)]
        backend = FakeBackend([*tests, FakeTest("pkg.z.Z.flaky", outcome=outcome)])
        runs.append(backend)
        return backend

    deps = CliDeps(backend_factory=make_backend)
    assert main(["run", "--until-failure", "--random", "--no-store", "--serial"], obj=deps) == 1
    seeds = re.findall(r"^Random order, seed (\d+)$", capsys.readouterr().out, re.M)
    assert len(runs) == 4
    assert len(seeds) == 4
    assert len(set(seeds)) == 4
    orders = {tuple(backend.workers[0].ran) for backend in runs[:3]}
    assert len(orders) == 3


def test_until_failure_with_seed_keeps_the_seed(
    project: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    runs: list[FakeBackend] = []

    def make_backend(args: object, config: object) -> FakeBackend:
        outcome = "fail" if len(runs) == 2 else "success"
        backend = FakeBackend([FakeTest("pkg.m.C.t"), FakeTest("pkg.z.Z.t", outcome=outcome)])
        runs.append(backend)
        return backend

    deps = CliDeps(backend_factory=make_backend)
    assert main(["run", "--until-failure", "--seed", "7", "--no-store"], obj=deps) == 1
    seeds = re.findall(r"^Random order, seed (\d+)$", capsys.readouterr().out, re.M)
    assert seeds == ["7", "7", "7"]


def test_failing_until_failure_reruns_the_same_failing_set(
    project: Path,
    fake_suite: Callable[[list[FakeTest]], list[FakeBackend]],
    fake_main: Callable[[list[str]], int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake_suite(SUITE)
    assert fake_main(["run"]) == 1  # pkg.test_b.B.test_bad fails: the failing set
    runs: list[FakeBackend] = []

    def make_backend(args: object, config: object) -> FakeBackend:
        outcome = "fail" if len(runs) == 2 else "success"
        others = [t for t in SUITE if t.test_id != "pkg.test_b.B.test_bad"]
        backend = FakeBackend([*others, FakeTest("pkg.test_b.B.test_bad", outcome=outcome)])
        runs.append(backend)
        return backend

    deps = CliDeps(backend_factory=make_backend)
    capsys.readouterr()
    assert main(["run", "--failing", "--until-failure"], obj=deps) == 1
    assert len(runs) == 3  # it passed twice (leaving the failing set), then failed
    for backend in runs:
        assert [i for w in backend.workers.values() for i in w.ran] == ["pkg.test_b.B.test_bad"]


def test_nothing_failing_with_subunit_says_so_on_stderr(
    project: Path,
    fake_suite: Callable[[list[FakeTest]], list[FakeBackend]],
    fake_main: Callable[[list[str]], int],
    capfdbinary: pytest.CaptureFixture[bytes],
) -> None:
    fake_suite([FakeTest("pkg.m.C.t")])
    assert fake_main(["run", "--no-store"]) == 0
    capfdbinary.readouterr()
    assert fake_main(["run", "--failing", "--subunit"]) == 0
    captured = capfdbinary.readouterr()
    assert captured.out == b""
    assert b"No failing tests recorded" in captured.err


def test_an_unwritable_junit_path_is_a_usage_error_before_anything_starts(
    project: Path,
    fake_suite: Callable[[list[FakeTest]], list[FakeBackend]],
    fake_main: Callable[[list[str]], int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    backends = fake_suite(SUITE)
    assert fake_main(["run", "--junit", str(project / "nonexistent" / "x.xml")]) == 2
    assert "cannot write the JUnit file" in capsys.readouterr().err
    assert backends == []
    assert not (project / ".proctor").exists()  # no (empty, interrupted) run stored


def test_isolate_an_unknown_test_is_a_usage_error(
    project: Path,
    fake_suite: Callable[[list[FakeTest]], list[FakeBackend]],
    fake_main: Callable[[list[str]], int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake_suite(SUITE)
    assert fake_main(["run"]) == 1
    capsys.readouterr()
    assert fake_main(["run", "--isolate", "pkg.nope.N.test"]) == 2
    assert "did not run in the last run" in capsys.readouterr().err


def test_isolate_a_test_that_passed_last_time_says_so(
    project: Path,
    fake_suite: Callable[[list[FakeTest]], list[FakeBackend]],
    fake_main: Callable[[list[str]], int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake_suite(SUITE)
    assert fake_main(["run", "--serial"]) == 1
    capsys.readouterr()
    backends = fake_suite(SUITE)
    assert fake_main(["run", "--isolate", "pkg.test_a.A.test_also_ok"]) == 0
    out = capsys.readouterr().out
    assert "pkg.test_a.A.test_also_ok passed in the last run: there is no failure to isolate" in out
    assert "did not reproduce" not in out
    assert backends == []  # no probe was run


def test_the_heading_never_counts_more_workers_than_tests(
    project: Path,
    fake_suite: Callable[[list[FakeTest]], list[FakeBackend]],
    fake_main: Callable[[list[str]], int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake_suite([FakeTest("pkg.m.C.t")])
    assert fake_main(["run", "-j", "2", "--no-store"]) == 0
    assert "Running 1 test on 1 worker\n" in capsys.readouterr().out


def test_click_runner_gives_the_workers_through_the_context_object(project: Path) -> None:
    from click.testing import CliRunner

    from proctor.cli.commands import cli

    made: list[FakeBackend] = []

    def make_backend(args: object, config: object) -> FakeBackend:
        made.append(FakeBackend(SUITE))
        return made[-1]

    deps = CliDeps(backend_factory=make_backend)
    done = CliRunner().invoke(cli, ["run", "--no-store"], obj=deps, standalone_mode=False)
    assert done.exception is None
    assert done.return_value == 1  # the commands return their exit status
    assert "pkg.test_b.B.test_bad" in done.output
    assert len(made) == 1
    assert made[0].closed


def test_without_a_context_object_the_real_workers_are_used() -> None:
    from proctor.cli.deps import current_deps
    from proctor.cli.run_setup import default_backend_factory

    assert current_deps().backend_factory is default_backend_factory
