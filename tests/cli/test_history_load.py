"""``proctor load`` (every format, files and stdin) and ``proctor import`` (stestr layouts)."""

from __future__ import annotations

import dbm.dumb
from pathlib import Path

import pytest

from proctor.events.collector import collect_records
from proctor.store import open_store
from proctor.wire import v1, v2
from proctor.wire.event import Status

from .history_streams import T0, events_for, passing, stream
from .invoke import Result, invoke

JUNIT = b"""<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="3" failures="1" skipped="1" time="0.6">
<testcase classname="tests.test_api" name="test_get" time="0.25"/>
<testcase classname="tests.test_api" name="test_post" time="0.30">
  <failure message="assert 500 == 200">def test_post():
&gt;       assert response.status == 200
E       assert 500 == 200</failure>
</testcase>
<testcase classname="tests.test_api" name="test_put" time="0.05">
  <skipped message="not implemented"/>
</testcase>
</testsuite></testsuites>
"""


@pytest.fixture
def repo(tmp_path: Path) -> str:
    return str(tmp_path / ".proctor")


def load(repo: str, *args: str, stdin: bytes = b"") -> Result:
    return invoke("load", "--repository", repo, *args, stdin=stdin)


def stored(repo: str, run_id: int | None = None) -> dict[str, Status]:
    with open_store(repo) as store:
        latest = store.latest_run()
        assert latest is not None
        return {r.test_id: r.status for r in store.records(run_id or latest.id)}


def test_load_reads_v2_from_stdin(repo: str) -> None:
    result = load(repo, stdin=stream({"a.t": Status.SUCCESS, "a.u": Status.FAIL}))
    assert result.exit_code == 1
    assert stored(repo) == {"a.t": Status.SUCCESS, "a.u": Status.FAIL}
    with open_store(repo) as store:
        run = store.latest_run()
        assert run is not None
        assert run.metadata.source == "load"
        assert run.metadata.command is not None
        assert run.metadata.python is not None


def test_load_reads_v1_and_junit_files_into_one_run(repo: str, tmp_path: Path) -> None:
    first = tmp_path / "unit.subunit"
    first.write_bytes(v1.encode_records(collect_records(events_for(passing(["u.a", "u.b"])))))
    second = tmp_path / "api.xml"
    second.write_bytes(JUNIT)
    result = load(repo, str(first), str(second))
    assert result.exit_code == 1
    assert "Stored run 1 from 2 files: 5 tests, 3 passed, 1 failed, 1 skipped." in result.stdout
    assert stored(repo) == {
        "u.a": Status.SUCCESS,
        "u.b": Status.SUCCESS,
        "tests.test_api.test_get": Status.SUCCESS,
        "tests.test_api.test_post": Status.FAIL,
        "tests.test_api.test_put": Status.SKIP,
    }
    with open_store(repo) as store:
        (failure,) = store.failing_records()
        assert b"assert 500 == 200" in failure.attachments[0].content
        assert store.durations(["tests.test_api.test_post"]) == {
            "tests.test_api.test_post": pytest.approx(0.3)
        }


def test_load_can_be_told_the_format(repo: str) -> None:
    data = v1.encode_records(collect_records(events_for(passing(["f.a"]))))
    assert load(repo, "--format", "v1", stdin=data).exit_code == 0
    assert stored(repo) == {"f.a": Status.SUCCESS}


def test_load_id_appends_to_an_existing_run(repo: str) -> None:
    load(repo, stdin=stream(passing(["x.a"])))
    result = load(repo, "--id", "1", stdin=stream({"x.b": Status.FAIL}))
    assert result.exit_code == 1
    assert "Stored run 1: 2 tests" in result.stdout
    assert stored(repo, 1) == {"x.a": Status.SUCCESS, "x.b": Status.FAIL}


def test_load_exit_zero(repo: str) -> None:
    assert load(repo, "--exit-zero", stdin=stream({"x.b": Status.FAIL})).exit_code == 0


def test_load_of_nothing_stores_nothing(repo: str) -> None:
    result = load(repo, stdin=b"just some text, no results\n")
    assert result.exit_code == 2
    assert "no test results found in <stdin>, so nothing was stored" in result.stderr
    with open_store(repo) as store:
        assert store.runs() == []


def test_load_of_a_broken_file_says_which_and_keeps_what_came_before(
    repo: str, tmp_path: Path
) -> None:
    good = tmp_path / "good.subunit"
    good.write_bytes(stream(passing(["g.a"])))
    broken = tmp_path / "broken.xml"
    broken.write_bytes(b"<testsuite><testcase name='x'>")
    result = load(repo, str(good), str(broken))
    assert result.exit_code == 2
    assert f"{broken} cannot be read" in result.stderr
    assert "stored as run 1, marked interrupted" in result.stderr
    with open_store(repo) as store:
        run = store.run(1)
        assert run.interrupted
        assert run.counts.total == 1
    missing = load(repo, str(tmp_path / "nope.subunit"))
    assert missing.exit_code == 2
    assert "cannot open" in missing.stderr
    assert "Nothing was stored" in missing.stderr


def test_load_checks_every_file_before_storing_anything(repo: str, tmp_path: Path) -> None:
    good = tmp_path / "good.subunit"
    good.write_bytes(stream(passing(["g.a"])))
    result = load(repo, str(good), str(tmp_path / "missing.subunit"))
    assert result.exit_code == 2
    assert f"cannot open {tmp_path / 'missing.subunit'}" in result.stderr
    assert "Nothing was stored" in result.stderr
    assert not Path(repo).exists()


def _failing_set_after(repo: str, data: bytes) -> tuple[Result, str]:
    load(repo, stdin=stream({"t.a": Status.FAIL, "t.b": Status.FAIL}))
    result = load(repo, "--complete", stdin=data)
    return result, invoke("failing", "--list", "--repository", repo).stdout


def test_a_complete_load_of_nothing_leaves_the_failing_set_and_the_run_ids(repo: str) -> None:
    result, failing = _failing_set_after(repo, b"")
    assert result.exit_code == 2
    assert "nothing was stored" in result.stderr
    assert failing == "t.a\nt.b\n"
    with open_store(repo) as store:
        assert [run.id for run in store.runs()] == [1]
    assert "Stored run 2:" in load(repo, stdin=stream(passing(["t.c"]))).stdout


def test_a_complete_load_of_a_listing_leaves_the_failing_set(repo: str) -> None:
    listing = v2.encode_many(
        e._replace(status=Status.EXISTS, timestamp=None)
        for e in events_for(passing(["t.a", "t.c"]))
        if e.status is Status.SUCCESS
    )
    result, failing = _failing_set_after(repo, listing)
    assert result.exit_code == 1
    assert "Run 2 ran no tests" in result.stdout
    assert failing == "t.a\nt.b\n"


def test_appending_nothing_to_a_run_leaves_it_alone(repo: str) -> None:
    load(repo, stdin=stream(passing(["x.a"])))
    result = load(repo, "--id", "1", stdin=b"")
    assert result.exit_code == 2
    assert "run 1 is unchanged" in result.stderr
    with open_store(repo) as store:
        run = store.run(1)
        assert run.finished
        assert not run.interrupted


def test_a_loaded_run_starts_at_its_streams_first_timestamp(repo: str) -> None:
    load(repo, stdin=stream(passing(["t.a"]), start=T0 + 5))
    with open_store(repo) as store:
        run = store.run(1)
        assert run.started_ns == T0 + 5
        assert run.first_ns == T0 + 5


def test_load_can_be_given_the_revision_or_none(repo: str) -> None:
    data = stream(passing(["t.a"]))
    load(repo, "--commit", "f00dcafe", "--branch", "feature/x", stdin=data)
    load(repo, "--no-git", stdin=data)
    load(repo, "--no-git", "--branch", "main", stdin=data)
    with open_store(repo) as store:
        one, two, three = (store.run(n).metadata for n in (1, 2, 3))
    assert (one.git_commit, one.git_branch, one.git_dirty) == ("f00dcafe", "feature/x", None)
    assert (two.git_commit, two.git_branch, two.git_dirty) == (None, None, None)
    assert (three.git_commit, three.git_branch) == (None, "main")
    mixed = load(repo, "--id", "1", "--commit", "abc", stdin=data)
    assert mixed.exit_code == 2
    assert "cannot be used with --id" in mixed.stderr


def _writes_fail_after(monkeypatch: pytest.MonkeyPatch, good_batches: int) -> None:
    """Make the SQL writer's batches fail once ``good_batches`` have been written."""
    from proctor.store.errors import StoreUnavailable
    from proctor.store.sql import store as sql

    real = sql.write_batch
    written = []

    def flaky(*args: object, **kwargs: object) -> None:
        if len(written) >= good_batches:
            raise StoreUnavailable("the repository refused a query: disk on fire")
        written.append(1)
        real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sql, "write_batch", flaky)


def test_a_load_whose_first_write_fails_leaves_no_run(
    repo: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    load(repo, stdin=stream({"t.a": Status.FAIL}))
    _writes_fail_after(monkeypatch, 0)
    result = load(repo, stdin=stream(passing(["t.b"])))
    assert result.exit_code == 2
    assert "disk on fire" in result.stderr
    assert "Nothing was stored." in result.stderr
    monkeypatch.undo()
    with open_store(repo) as store:
        assert [run.id for run in store.runs()] == [1]
        assert store.failing_ids() == ["t.a"]


def test_a_load_whose_later_write_fails_keeps_what_was_written(
    repo: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "1.subunit", tmp_path / "2.subunit"
    first.write_bytes(stream(passing(["t.a"])))
    second.write_bytes(stream(passing(["t.b"])))
    _writes_fail_after(monkeypatch, 1)  # load flushes after each block it reads
    result = load(repo, str(first), str(second))
    assert result.exit_code == 2
    assert "stored as run 1, marked interrupted" in result.stderr
    monkeypatch.undo()
    with open_store(repo) as store:
        run = store.run(1)
        assert run.finished
        assert run.interrupted
        assert [r.test_id for r in store.records(1)] == ["t.a"]


# -- import


def _stestr_dir(path: Path, runs: list[dict[str, Status]], *, version: str = "v1") -> Path:
    """A repository laid out the way stestr writes one."""
    path.mkdir()
    (path / "format").write_text("1\n")
    (path / "next-stream").write_text(f"{len(runs)}\n")
    for number, outcomes in enumerate(runs):
        events = events_for(outcomes, start=T0 + number * 10**12)
        records = collect_records(events)
        data = v1.encode_records(records) if version == "v1" else v2.encode_many(events)
        (path / str(number)).write_bytes(data)
    with dbm.dumb.open(str(path / "times.dbm"), "c") as times:
        times[b"only.in.times"] = b"4.5"
        times[b"i.a"] = b"99.0"
    return path


def test_import_brings_every_stestr_run_in_order(repo: str, tmp_path: Path) -> None:
    runs = [
        {"i.a": Status.SUCCESS, "i.b": Status.FAIL},
        {"i.a": Status.FAIL, "i.b": Status.FAIL},
        {"i.a": Status.SUCCESS, "i.b": Status.SKIP, "i.c": Status.FAIL},
    ]
    source = _stestr_dir(tmp_path / ".stestr", runs)
    result = invoke("import", str(source), "--repository", repo)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        f"Imported 3 runs (7 results) from {source}; seeded durations of 1 test from times.dbm.\n"
    )
    with open_store(repo) as store:
        found = store.runs()
        assert [r.id for r in found] == [3, 2, 1]
        for info, outcomes in zip(reversed(found), runs, strict=True):
            assert {r.test_id: r.status for r in store.records(info.id)} == outcomes
            assert info.metadata.source == "import"
            assert info.metadata.properties["import.tool"] == "stestr"
            assert info.first_ns is not None
            assert info.started_ns == info.first_ns
        assert store.failing_ids() == ["i.c"]  # as stestr's: the last run's failures
        durations = store.durations()
        assert durations["only.in.times"] == pytest.approx(4.5)
        assert durations["i.a"] == pytest.approx(0.0103, rel=0.1)  # from the streams
    again = invoke("import", str(source), "--repository", repo)
    assert again.stdout.startswith("Imported 0 runs (0 results)")
    assert "skipped 3 already imported" in again.stdout


def test_import_reads_testrepository_v2_runs(repo: str, tmp_path: Path) -> None:
    source = _stestr_dir(tmp_path / ".testrepository", [{"r.a": Status.SUCCESS}], version="v2")
    assert invoke("import", str(source), "--repository", repo).exit_code == 0
    assert stored(repo) == {"r.a": Status.SUCCESS}
    with open_store(repo) as store:
        latest = store.latest_run()
        assert latest is not None
        assert latest.metadata.properties["import.tool"] == "testrepository"


def test_import_refuses_a_directory_that_is_not_a_repository(repo: str, tmp_path: Path) -> None:
    result = invoke("import", str(tmp_path), "--repository", repo)
    assert result.exit_code == 2
    assert "not an stestr or testrepository repository" in result.stderr


def test_a_load_whose_run_is_removed_under_it_says_so(
    repo: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from proctor.store.sql import store as sql

    first, second = tmp_path / "1.subunit", tmp_path / "2.subunit"
    first.write_bytes(stream(passing(["t.a"])))
    second.write_bytes(stream(passing(["t.b"])))
    real = sql.write_batch
    calls = []

    def removed_after_the_first(
        store: sql.SqlStore, conn: object, run_id: int, *rest: object
    ) -> None:
        if calls:
            with open_store(repo) as other:
                other.remove_runs([run_id])  # `runs remove --force` from another shell
        calls.append(run_id)
        real(store, conn, run_id, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(sql, "write_batch", removed_after_the_first)
    result = load(repo, str(first), str(second))
    assert result.exit_code == 2
    assert (
        "its remaining results were not stored. "
        "Run 1 could not be marked interrupted either (it was removed" in result.stderr
    )
    assert "stored as run" not in result.stderr


def test_an_interrupted_import_is_completed_by_the_next(
    repo: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from proctor.cli import load as load_module

    runs = [{"i.a": Status.FAIL}, {"i.a": Status.SUCCESS, "i.b": Status.FAIL}, {"i.c": Status.FAIL}]
    source = _stestr_dir(tmp_path / ".stestr", runs)
    real = load_module.pump_file

    def interrupted(name: str, input_format: str, target: load_module.RunTarget) -> None:
        if not name.endswith("1"):
            real(name, input_format, target)
            return
        target.add(collect_records(events_for({"i.a": Status.SUCCESS}))[0])
        target.flush()
        raise KeyboardInterrupt  # Ctrl-C in the middle of the second run

    monkeypatch.setattr(load_module, "pump_file", interrupted)
    assert invoke("import", str(source), "--repository", repo).exit_code == 130
    with open_store(repo) as store:
        partial = store.run(2)
        assert partial.interrupted
        assert partial.counts.total == 1
    monkeypatch.undo()
    again = invoke("import", str(source), "--repository", repo)
    assert again.exit_code == 0, again.stderr
    assert again.stdout.startswith(f"Imported 2 runs (3 results) from {source}; skipped 1")
    assert "replaced 1 left incomplete by an interrupted import" in again.stdout
    with open_store(repo) as store:
        found = {info.metadata.properties["import.run"]: info for info in store.runs()}
        assert sorted(found) == ["0", "1", "2"]
        assert all(info.finished and not info.interrupted for info in found.values())
        assert {r.test_id: r.status for r in store.records(found["1"].id)} == runs[1]
        assert store.failing_ids() == ["i.c"]


def test_an_import_still_running_is_not_taken_over(repo: str, tmp_path: Path) -> None:
    from proctor.store import RunMetadata

    source = _stestr_dir(tmp_path / ".stestr", [{"i.a": Status.SUCCESS}])
    with open_store(repo) as store:
        writer = store.begin_run(
            RunMetadata(properties={"import.source": str(source.resolve()), "import.run": "0"})
        )
        writer.flush()
        refused = invoke("import", str(source), "--repository", repo)
        assert refused.exit_code == 2
        assert f"{source} is being imported by another process (run 1" in refused.stderr
        writer.interrupt()
    taken = invoke("import", str(source), "--repository", repo)
    assert "Imported 1 run (1 result)" in taken.stdout
    assert stored(repo) == {"i.a": Status.SUCCESS}


@pytest.mark.slow
def test_import_streams_each_run_instead_of_holding_it(repo: str, tmp_path: Path) -> None:
    import random
    import tracemalloc

    from proctor.wire.event import Event

    source = _stestr_dir(tmp_path / ".stestr", [])
    rng = random.Random(7)
    events = []
    for i in range(300):  # 16 KB of output per test: 5 MB, a few distinct test ids
        test_id = f"big.test_{i:03d}"
        output = rng.randbytes(8000).hex().encode()
        events += [
            Event(test_id, Status.INPROGRESS, timestamp=T0 + i),
            Event(test_id, file_name="stdout", file_bytes=output, eof=True),
            Event(test_id, Status.SUCCESS, timestamp=T0 + i + 1),
        ]
    (source / "0").write_bytes(v2.encode_many(events))
    size = (source / "0").stat().st_size
    (tmp_path / "small").mkdir()
    warm_up = _stestr_dir(tmp_path / "small" / ".stestr", [{"w.a": Status.FAIL}])
    invoke("import", str(warm_up), "--repository", str(tmp_path / "other"))  # imports modules
    tracemalloc.start()
    try:
        assert invoke("import", str(source), "--repository", repo).exit_code == 0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Holding the file, let alone its events and records, would take several times this.
    assert peak < size / 2
    with open_store(repo) as store:
        assert store.stats().results == 300


def test_the_summary_counts_every_result_once(repo: str) -> None:
    outcomes = {
        "s.ok": Status.SUCCESS,
        "s.bad": Status.FAIL,
        "s.skip": Status.SKIP,
        "s.xfail": Status.XFAIL,
        "s.ux": Status.UXSUCCESS,
        "s.hung": Status.INPROGRESS,  # started, never finished
    }
    result = load(repo, stdin=stream(outcomes))
    assert result.stdout.splitlines()[0] == (
        "Stored run 1: 6 tests, 1 passed, 1 failed, 1 skipped, 1 xfailed, "
        "1 unexpectedly passed, 1 unfinished."
    )
    one = load(repo, stdin=stream({"s.ok": Status.SUCCESS}))
    assert one.stdout.splitlines()[0] == "Stored run 2: 1 test, 1 passed, 0 failed, 0 skipped."
