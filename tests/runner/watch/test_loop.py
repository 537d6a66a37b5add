"""The watch loop with a fake cycle runner: failing set, keys, merged changes."""

from __future__ import annotations

import io
import queue
from pathlib import Path

from proctor.runner.watch.graph import ImportGraph
from proctor.runner.watch.loop import CycleResult, FileChanges, InboxItem, Key, Quit, WatchLoop
from proctor.runner.watch.plan import CyclePlan


class FakeRunner:
    def __init__(self) -> None:
        self.plans: list[CyclePlan] = []
        self.next: dict[str, str] = {}
        self.complete = True

    def __call__(self, plan: CyclePlan) -> CycleResult:
        self.plans.append(plan)
        return CycleResult(dict(self.next), complete=self.complete, summary="fake")


def make(tmp_path: Path) -> tuple[WatchLoop, FakeRunner, io.StringIO]:
    (tmp_path / "tests").mkdir()
    (tmp_path / "lib.py").write_text("")
    (tmp_path / "tests/test_a.py").write_text("import lib\n")
    (tmp_path / "tests/test_b.py").write_text("")
    runner = FakeRunner()
    out = io.StringIO()
    answers = iter(["test_b", "[bad"])
    loop = WatchLoop(ImportGraph(tmp_path), runner, out, prompt=lambda text: next(answers, None))
    return loop, runner, out


def test_a_change_runs_the_affected_files(tmp_path: Path) -> None:
    loop, runner, out = make(tmp_path)
    loop.on_changes([tmp_path / "lib.py"])
    assert [p.name for p in runner.plans[0].files] == ["test_a.py"]
    assert "[watch] cycle 1 (changed lib.py; 1 file(s)): fake" in out.getvalue()


def test_failing_set_follows_outcomes_and_drops_vanished_tests(tmp_path: Path) -> None:
    loop, runner, _ = make(tmp_path)
    runner.next = {"tests.test_a.C.test_x": "fail", "tests.test_b.C.test_y": "fail"}
    loop.run_all()
    assert loop.failing == {"tests.test_a.C.test_x", "tests.test_b.C.test_y"}
    runner.next = {"tests.test_a.C.test_renamed": "success"}  # test_x renamed
    loop.on_changes([tmp_path / "tests/test_a.py"])
    assert runner.plans[-1].failing == ("tests.test_a.C.test_x", "tests.test_b.C.test_y")
    # test_b's failing test was expected (it is in the failing set) and not reported
    assert loop.failing == set()


def test_an_incomplete_cycle_drops_nothing(tmp_path: Path) -> None:
    loop, runner, _ = make(tmp_path)
    loop.failing = {"tests.test_a.C.test_x"}
    runner.complete = False
    loop.on_changes([tmp_path / "tests/test_a.py"])
    assert loop.failing == {"tests.test_a.C.test_x"}


def test_nothing_affected_runs_nothing(tmp_path: Path) -> None:
    loop, runner, out = make(tmp_path)
    (tmp_path / "other.py").write_text("")
    loop.on_changes([tmp_path / "other.py"])
    assert runner.plans == []
    assert "no test affected" in out.getvalue()


def test_configuration_change_runs_everything(tmp_path: Path) -> None:
    loop, runner, _ = make(tmp_path)
    loop.on_changes([tmp_path / "pyproject.toml"])
    assert runner.plans[0].everything


def test_keys(tmp_path: Path) -> None:
    loop, runner, out = make(tmp_path)
    assert loop.on_key("a")
    assert runner.plans[-1].everything
    assert loop.on_key("p")  # answers "test_b"
    assert [p.name for p in runner.plans[-1].files] == ["test_b.py"]
    assert loop.on_key("t")  # "[bad": refused, filter unchanged
    assert "not a valid regex" in out.getvalue()
    assert loop.filters.test_regex is None
    assert loop.on_key("f")
    assert loop.filters.failing_only
    assert loop.on_key("c")
    cleared = loop.filters
    assert not cleared.failing_only
    assert cleared.file_regex is None
    count = len(runner.plans)
    assert loop.on_key("\n")
    assert len(runner.plans) == count + 1
    assert loop.on_key("h")
    assert "a run all" in out.getvalue()
    assert not loop.on_key("q")


def test_serve_merges_changes_that_queue_up(tmp_path: Path) -> None:
    loop, runner, _ = make(tmp_path)
    inbox: queue.Queue[InboxItem] = queue.Queue()
    inbox.put(FileChanges(frozenset({tmp_path / "tests/test_a.py"})))
    inbox.put(FileChanges(frozenset({tmp_path / "tests/test_b.py"})))
    inbox.put(Key("x"))
    inbox.put(Quit(0))
    assert loop.serve(inbox) == 0
    assert len(runner.plans) == 1
    assert [p.name for p in runner.plans[0].files] == ["test_a.py", "test_b.py"]


def test_an_interrupted_cycle_ends_the_session(tmp_path: Path) -> None:
    loop, _, _ = make(tmp_path)

    def interrupted(plan: CyclePlan) -> CycleResult:
        return CycleResult({}, complete=False, interrupted=True)

    loop.run_cycle = interrupted
    inbox: queue.Queue[InboxItem] = queue.Queue()
    inbox.put(FileChanges(frozenset({tmp_path / "tests/test_a.py"})))
    inbox.put(Quit(0))
    assert loop.serve(inbox) == 130


def test_a_test_regex_keeps_failing_tests_it_does_not_run(tmp_path: Path) -> None:
    loop, runner, _ = make(tmp_path)
    loop.failing = {"tests.test_a.C.test_x"}
    loop.on_key("p")
    assert runner.plans[-1].failing == ()  # file regex "test_b": test_a's failing test is not run
    assert loop.failing == {"tests.test_a.C.test_x"}


def test_a_signal_ends_an_idle_serve(tmp_path: Path) -> None:
    loop, _, _ = make(tmp_path)
    inbox: queue.Queue[InboxItem] = queue.Queue()

    def after() -> None:  # what a SIGTERM handler does while the loop waits
        loop.stop_code = 143

    loop.after_item = after
    assert loop.serve(inbox) == 143
