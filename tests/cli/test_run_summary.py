"""What ``proctor run`` says at the end: one wall time everywhere, and English plurals."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from proctor.cli.render import format_duration, plural
from proctor.cli.run_view import LineView, LiveView, NoticeView
from proctor.runner.report import RunResult
from proctor.store.memory import MemoryStore
from proctor.wire.event import Status
from proctor.wire.record import TestRecord

S = 1_000_000_000
T0 = 1_700_000_000 * S


def _records() -> list[TestRecord]:
    return [
        TestRecord("t.a", Status.SUCCESS, route_code="0", start=T0 + S // 2, stop=T0 + 3 * S),
        TestRecord("t.b", Status.FAIL, route_code="1", start=T0 + S, stop=T0 + 21 * S),
        TestRecord("t.c", Status.SKIP, route_code="0", start=T0 + 4 * S, stop=T0 + 5 * S),
    ]


@pytest.mark.parametrize("view_class", [LineView, LiveView, NoticeView])
def test_the_summary_gives_the_wall_time_the_store_keeps(view_class: type) -> None:
    out = io.StringIO()
    view = view_class(out) if view_class is NoticeView else view_class(out, color=False)
    result = RunResult(wall_time=20.3)  # the controller's clock, from before the workers started
    for record in _records():
        view.record(record)
        result.counts[record.status] += 1
    view.finished(result)
    store = MemoryStore()
    info = store.write_run(_records())
    assert info.wall_seconds == 20.5
    assert out.getvalue().rstrip().endswith(f"in {format_duration(info.wall_seconds)}")


def test_without_timestamps_the_controllers_clock_is_the_figure() -> None:
    out = io.StringIO()
    view = LineView(out)
    view.record(TestRecord("t.a", Status.SUCCESS))
    result = RunResult(wall_time=1.5)
    result.counts[Status.SUCCESS] = 1
    view.finished(result)
    assert out.getvalue().rstrip().endswith("1 passed, 0 failed, 0 skipped in 1.50s")


def test_plurals() -> None:
    assert [plural(n, "test") for n in (0, 1, 2)] == ["0 tests", "1 test", "2 tests"]
    assert plural(1, "child", "children") == "1 child"
    assert plural(3, "child", "children") == "3 children"
    out = io.StringIO()
    LineView(out).finished(RunResult(unreported=["t.x"], missing=["t.y"]))
    text = out.getvalue()
    assert "\n1 test was sent to a worker but never reported" in text
    assert "\n1 listed test was not found in the suite:" in text
    out = io.StringIO()
    LineView(out).finished(RunResult(unreported=["t.x", "t.z"], missing=["t.y", "t.w"]))
    assert "\n2 tests were sent" in out.getvalue()
    assert "\n2 listed tests were not found" in out.getvalue()


@pytest.mark.slow
def test_run_last_and_runs_show_one_wall_time(tmp_path: Path) -> None:
    (tmp_path / ".stestr.conf").write_text("[DEFAULT]\ntest_path=./tests\ntop_dir=./\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "__init__.py").write_text("")
    (tmp_path / "tests" / "test_t.py").write_text(
        "import time, unittest\n"
        "class T(unittest.TestCase):\n"
        "    def test_a(self): time.sleep(0.05)\n"
        "    def test_b(self): time.sleep(0.05)\n"
    )

    def proctor(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "proctor", *args],
            cwd=tmp_path,
            capture_output=True,
            timeout=120,
            check=False,
        )
        return done.stdout.decode()

    summary = proctor("run", "-j", "2").rstrip().splitlines()[-1]
    shown = summary.rsplit(" in ", 1)[1]
    runs = proctor("runs").splitlines()[1].split()
    assert runs[7] == shown  # the Time column
    last = proctor("last")
    seconds = float(last.split("Ran: 2 tests in ", 1)[1].split(" sec", 1)[0])
    assert format_duration(seconds) == shown
