"""``proctor last / failing / slowest / stats / history`` on repositories built by ``load``."""

from __future__ import annotations

import io
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from proctor.events.collector import collect_records
from proctor.wire import v2
from proctor.wire.event import Status

from .history_streams import T0, passing, stream
from .invoke import Result, invoke

OUTCOMES = {
    "pkg.test_mod.TestA.test_pass": Status.SUCCESS,
    "pkg.test_mod.TestA.test_fail": Status.FAIL,
    "pkg.test_mod.TestB.test_skip": Status.SKIP,
    "pkg.test_mod.TestB.test_xfail": Status.XFAIL,
    "pkg.test_mod.TestB.test_slow": Status.SUCCESS,
}


@pytest.fixture
def repo(tmp_path: Path) -> str:
    return str(tmp_path / ".proctor")


def run(repo: str, *args: str, stdin: bytes = b"") -> Result:
    return invoke(*args, "--repository", repo, stdin=stdin)


def load(repo: str, data: bytes, *args: str) -> Result:
    return invoke("load", "--repository", repo, *args, stdin=data)


@pytest.mark.parametrize(
    "command", ["last", "failing", "slowest", "stats", "runs", "history x", "export", "gc --keep 1"]
)
def test_commands_on_a_missing_repository_say_how_to_create_one(repo: str, command: str) -> None:
    result = run(repo, *command.split())
    assert result.exit_code == 2
    assert "no repository" in result.stderr
    assert "proctor run" in result.stderr
    assert not Path(repo).exists()


@pytest.mark.parametrize("command", ["last", "stats", "runs", "load"])
def test_commands_leave_another_applications_database_alone(tmp_path: Path, command: str) -> None:
    import sqlite3

    other = tmp_path / "app.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()
    before = other.read_bytes()
    result = run(str(other), command, stdin=stream(passing(["a"])))
    assert result.exit_code == 2
    assert "is an SQLite database of something else (it holds accounts)" in result.stderr
    assert other.read_bytes() == before


@pytest.mark.parametrize("command", ["last", "failing", "slowest", "runs", "export"])
def test_commands_on_a_repository_without_runs_say_how_to_add_one(repo: str, command: str) -> None:
    from proctor.store import open_store

    open_store(repo).close()
    result = run(repo, command)
    assert result.exit_code == 2
    assert "there are no runs in" in result.stderr
    assert "proctor load" in result.stderr


def test_last_shows_every_test_the_totals_and_fails_when_the_run_failed(repo: str) -> None:
    loaded = load(repo, stream(OUTCOMES, seconds={"pkg.test_mod.TestB.test_slow": 2.5}))
    assert loaded.exit_code == 1
    assert "Stored run 1: 5 tests, 2 passed, 1 failed, 1 skipped, 1 xfailed." in loaded.stdout
    result = run(repo, "last")
    assert result.exit_code == 1
    out = result.stdout
    assert "{0} pkg.test_mod.TestA.test_pass [0.010s] ... ok" in out
    assert "{1} pkg.test_mod.TestA.test_fail [0.020s] ... FAILED" in out
    assert "AssertionError: 1 != 2" in out
    assert "pkg.test_mod.TestB.test_skip [0.030s] ... SKIPPED: needs a network" in out
    assert "pkg.test_mod.TestB.test_slow [2.50s] ... ok" in out
    assert "Ran: 5 tests in 2.6000 sec." in out
    assert " - Passed: 2\n - Skipped: 1\n - Expected Fail: 1\n" in out
    assert " - Failed: 1\n" in out
    assert " - Worker 0 (3 tests)" in out
    assert "Run 1 FAILED (1 failed)" in out


def test_last_exits_zero_for_a_passing_run_and_quiet_hides_passes(repo: str) -> None:
    assert load(repo, stream(passing(["a.test_1", "a.test_2"]))).exit_code == 0
    result = run(repo, "last", "-q")
    assert result.exit_code == 0
    assert "a.test_1" not in result.stdout
    assert "Run 1 passed" in result.stdout


def test_last_of_a_run_where_nothing_ran_fails(repo: str) -> None:
    listing = v2.encode_many(
        [e._replace(status=Status.EXISTS) for e in v2.decode(stream(passing(["a"])))[1:]]
    )
    load(repo, listing)
    result = run(repo, "last")
    assert result.exit_code == 1
    assert "ran no tests" in result.stdout


def test_last_subunit_is_the_stored_run_as_a_v2_stream(repo: str) -> None:
    data = stream(OUTCOMES)
    load(repo, data)
    result = run(repo, "last", "--subunit")
    assert result.exit_code == 0  # stestr's rule: the stream, not the status, carries the outcome
    assert collect_records(v2.decode(result.stdout_bytes)) == collect_records(v2.decode(data))


def test_last_junit_writes_a_report(repo: str, tmp_path: Path) -> None:
    load(repo, stream(OUTCOMES))
    report = tmp_path / "report.xml"
    result = run(repo, "last", "--junit", str(report))
    assert result.exit_code == 1
    assert "Ran: 5 tests" in result.stdout
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None
    # JUnit has no expected failures: the xfail is reported skipped.
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("5", "1", "2")
    to_stdout = run(repo, "last", "--junit", "-")
    assert to_stdout.stdout.startswith("<?xml")
    assert "Ran:" not in to_stdout.stdout


def test_last_can_show_an_earlier_run(repo: str) -> None:
    load(repo, stream({"a.one": Status.FAIL}))
    load(repo, stream({"a.two": Status.SUCCESS}))
    earlier = run(repo, "last", "--run", "1")
    assert "a.one" in earlier.stdout
    assert earlier.exit_code == 1
    assert "a.one" in run(repo, "last", "--run", "-2").stdout
    assert run(repo, "last", "--run", "9").exit_code == 2
    assert "no run 9" in run(repo, "last", "--run", "9").stderr
    bad = run(repo, "last", "--run", "yesterday")
    assert bad.exit_code == 2
    assert "not a run" in bad.stderr


def test_failing_merges_partial_runs(repo: str) -> None:
    load(repo, stream({"t.a": Status.FAIL, "t.b": Status.FAIL, "t.c": Status.SUCCESS}))
    load(repo, stream({"t.a": Status.SUCCESS}))  # a subset: only t.a changes
    listed = run(repo, "failing", "--list")
    assert listed.stdout == "t.b\n"
    assert listed.exit_code == 1
    shown = run(repo, "failing")
    assert "t.b [" in shown.stdout
    assert "AssertionError" in shown.stdout
    assert "1 failing test\n" in shown.stdout
    load(repo, stream({"t.b": Status.SUCCESS}))
    cleared = run(repo, "failing")
    assert cleared.exit_code == 0
    assert cleared.stdout == "No failing tests.\n"
    assert run(repo, "failing", "--list").stdout == ""


def test_failing_subunit_streams_the_failures(repo: str) -> None:
    load(repo, stream({"t.a": Status.FAIL, "t.b": Status.SUCCESS}))
    result = run(repo, "failing", "--subunit")
    assert result.exit_code == 1
    (only,) = collect_records(v2.decode(result.stdout_bytes))
    assert only.test_id == "t.a"
    assert only.status is Status.FAIL
    assert b"AssertionError" in only.attachments[0].content


def test_a_complete_load_clears_failures_of_tests_it_does_not_hold(repo: str) -> None:
    load(repo, stream({"t.gone": Status.FAIL, "t.kept": Status.FAIL}))
    load(repo, stream({"t.kept": Status.FAIL}), "--complete")
    assert run(repo, "failing", "--list").stdout == "t.kept\n"


def test_slowest_ranks_the_latest_run_beside_the_history(repo: str) -> None:
    load(repo, stream(passing(["s.a", "s.b", "s.c"]), seconds={"s.a": 1, "s.b": 3, "s.c": 2}))
    load(repo, stream(passing(["s.a", "s.b", "s.c"]), seconds={"s.a": 3, "s.b": 1, "s.c": 2}))
    result = run(repo, "slowest", "--top", "2")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "slowest tests of run 2"
    assert lines[1].split() == ["Test", "id", "Runtime", "Mean", "Min", "Max", "Runs"]
    assert lines[3].split() == ["s.a", "3.00s", "2.00s", "1.00s", "3.00s", "2"]
    assert lines[4].split()[:2] == ["s.c", "2.00s"]
    assert len(lines) == 5
    by_mean = run(repo, "slowest", "--average", "--all").stdout.splitlines()
    assert [line.split()[0] for line in by_mean[3:]] == ["s.a", "s.b", "s.c"]


def test_stats_describe_the_repository(repo: str) -> None:
    load(repo, stream(OUTCOMES))
    load(repo, stream(OUTCOMES))
    out = run(repo, "stats").stdout
    assert "(sqlite, schema 4)" in out  # v3: failure signatures; v4: their messages
    assert "Runs:        2 (0 interrupted)" in out
    assert "Results:     10" in out
    assert "Tests:       5" in out
    assert "Failing now: 1" in out
    assert "4 (" in out  # attachments: a traceback and a reason per run
    assert "2 distinct" in out


def test_history_lists_a_tests_runs_newest_first(repo: str) -> None:
    test = "pkg.test_mod.TestA.test_fail"
    load(repo, stream({test: Status.FAIL}, seconds={test: 1.0}))
    load(repo, stream({test: Status.SUCCESS}, seconds={test: 3.0}, start=T0 + 10**12))
    result = run(repo, "history", test)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == f"{test}: 2 executions, 1 passed (50%), 1 failed, 0 skipped"
    assert lines[1].startswith("duration: mean 2.00s, min 1.00s, max 3.00s")
    assert lines[3].split() == ["Run", "Started", "Worker", "Outcome", "Duration", "Revision"]
    rows = [line.split() for line in lines[4:]]
    assert [(row[0], row[3], row[4], row[5]) for row in rows] == [
        ("2", "-", "ok", "3.00s"),
        ("1", "-", "FAILED", "1.00s"),
    ]
    limited = run(repo, "history", test, "-n", "1").stdout.splitlines()
    assert len(limited) == 6
    assert limited[-1] == "(1 older execution not shown; use --all)"


def test_history_counts_executions_and_shows_their_routes(repo: str) -> None:
    from proctor.wire.event import Event

    events = [
        Event("t.twice", Status.INPROGRESS, route_code="0", timestamp=T0),
        Event("t.twice", Status.INPROGRESS, route_code="1", timestamp=T0),
        Event("t.twice", Status.SUCCESS, route_code="0", timestamp=T0 + 10**9),
        Event("t.twice", Status.FAIL, route_code="1", timestamp=T0 + 2 * 10**9),
        Event("t.hung", Status.INPROGRESS, route_code="1", timestamp=T0 + 3 * 10**9),
        Event("t.hung", route_code="1", timestamp=T0 + 9 * 10**9),
    ]
    load(repo, v2.encode_many(events))
    lines = run(repo, "history", "t.twice").stdout.splitlines()
    assert lines[0] == "t.twice: 2 executions, 1 passed (50%), 1 failed, 0 skipped"
    rows = [line.split() for line in lines[4:]]
    assert [(row[0], row[3], row[4], row[5]) for row in rows] == [
        ("1", "1", "FAILED", "2.00s"),
        ("1", "0", "ok", "1.00s"),
    ]
    hung = run(repo, "history", "t.hung").stdout.splitlines()
    assert hung[3].split()[3:6] == ["1", "UNFINISHED", "?"]  # no duration: it never ended


@pytest.mark.parametrize(
    "command",
    [
        "slowest --top 0",
        "slowest -n -1",
        "history t.a -n 0",
        "history t.a --limit -5",
        "runs -n -1",
        "runs list -n 0",
    ],
)
def test_limits_must_be_positive(repo: str, command: str) -> None:
    load(repo, stream({"t.a": Status.SUCCESS}))
    result = run(repo, *command.split())
    assert result.exit_code == 2
    assert "is not in the range x>=1" in result.stderr


@pytest.mark.parametrize(
    "command", ["last --junit {missing}/report.xml", "export -o {missing}/run.subunit"]
)
def test_a_report_that_cannot_be_written_is_an_error(
    repo: str, tmp_path: Path, command: str
) -> None:
    load(repo, stream({"t.a": Status.SUCCESS}))  # a run that passed: 1 would be wrong too
    missing = tmp_path / "no" / "such" / "directory"
    result = run(repo, *command.format(missing=missing).split())
    assert result.exit_code == 2
    assert f"cannot write {missing}/" in result.stderr
    assert "No such file or directory" in result.stderr


def test_history_of_an_unknown_test_suggests_similar_ids(repo: str) -> None:
    load(repo, stream(OUTCOMES))
    result = run(repo, "history", "test_fail")
    assert result.exit_code == 2
    assert "no test 'test_fail'" in result.stderr
    assert "pkg.test_mod.TestA.test_fail" in result.stderr


def test_short_commands_import_neither_psycopg_nor_the_writer(repo: str) -> None:
    load(repo, stream(OUTCOMES))
    # Measured against what the CLI's own imports already bring in: on Python
    # 3.10, click imports uuid, which imports platform and subprocess.
    code = (
        "import sys, click; from proctor.cli.main import main; before = set(sys.modules); "
        f"[main([c, '--repository', {repo!r}]) for c in ('last', 'failing', 'runs', 'stats')]; "
        "print(sorted(m for m in ('psycopg', 'proctor.store.metadata', 'proctor.store.memory', "
        "'subprocess', 'hashlib') if m in sys.modules and m not in before), file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    assert done.stderr.strip().splitlines()[-1] == "[]"


def test_the_output_of_last_reads_like_stestrs(repo: str) -> None:
    # The headings stestr users and their scripts look for.
    load(repo, stream(OUTCOMES))
    out = io.StringIO(run(repo, "last").stdout)
    text = out.read()
    for heading in ("======\nTotals\n======\n", "==============\nWorker Balance\n=============="):
        assert heading in text


@pytest.mark.parametrize("color", [False, True])
def test_stored_runs_are_shown_line_for_line_as_the_live_trace(color: bool) -> None:
    from proctor.cli._show import show_records
    from proctor.cli.render import TraceView

    records = collect_records(v2.decode(stream(OUTCOMES)))
    records.append(records[0].__class__("no.worker", Status.SUCCESS, start=T0, stop=T0 + 5))
    ours, theirs = io.StringIO(), io.StringIO()
    balance = show_records(ours, records, color=color)
    view = TraceView(theirs, color=color)
    for record in records:
        view.record(record)
    assert ours.getvalue() == theirs.getvalue()
    assert balance == {"0": [3, T0, T0 + 150_000_000], "1": [2, T0 + 10_000_000, T0 + 100_000_000]}


def test_the_worker_balance_leaves_untimed_tests_out_of_the_span() -> None:
    from proctor.cli._show import show_records, show_totals
    from proctor.store.model import RunCounts, RunInfo, RunMetadata
    from proctor.wire.record import TestRecord

    records = [
        TestRecord("w.timed", Status.SUCCESS, "0", T0, T0 + 1_000_000_000),
        TestRecord("w.untimed", Status.SUCCESS, "0"),
        TestRecord("w.never", Status.SUCCESS, "1"),
        TestRecord("w.started", Status.INPROGRESS, "2", T0 + 5, None),
    ]
    out = io.StringIO()
    balance = show_records(out, records, color=False)
    assert balance["0"] == [2, T0, T0 + 1_000_000_000]
    info = RunInfo(1, RunMetadata(started_ns=T0), RunCounts(total=4, passed=3, incomplete=1))
    text = io.StringIO()
    show_totals(text, info, balance)
    assert " - Worker 0 (2 tests) => 0:00:01.000000\n" in text.getvalue()
    assert " - Worker 1 (1 tests) => no timings\n" in text.getvalue()
    assert " - Worker 2 (1 tests) => 0:00:00.000000\n" in text.getvalue()
