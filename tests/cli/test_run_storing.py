"""How ``proctor run`` stores its results (``proctor.runner.storing``): no empty
runs, output released only after what it shows is committed, a repository that
cannot be opened or that fails part of the way. In-process, with fake workers
and real stores; the same with real processes (SIGKILL, read-only files, corrupt
pages) is in ``test_run_store.py``."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest

from proctor.runner.storing import HeldOutput, IdleWrites, RunStorage
from proctor.store import RunMetadata, open_store
from proctor.store.errors import StoreUnavailable
from proctor.store.memory import MemoryStore
from proctor.testing import FakeBackend, FakeTest
from proctor.wire.event import Status
from proctor.wire.record import TestRecord

SUITE = [
    FakeTest("pkg.test_a.A.test_ok"),
    FakeTest("pkg.test_b.B.test_bad", outcome="fail"),
]


def _run_ids(project: Path) -> list[int]:
    with open_store(str(project / ".proctor")) as store:
        return [run.id for run in store.runs()]


# -- no empty runs


@pytest.mark.parametrize(
    ("suite", "args"),
    [
        (SUITE, ["no_such_test"]),  # a filter matching nothing
        ([], []),  # an empty suite
        ([FakeTest("pkg.test_a.A.test_ok")], ["--failing"]),  # the failing test is gone
    ],
    ids=["filter", "empty-suite", "failing-gone"],
)
def test_a_run_in_which_nothing_ran_stores_no_run(
    project: Path,
    fake_suite: Callable[[list[FakeTest]], list[FakeBackend]],
    fake_main: Callable[[list[str]], int],
    capsys: pytest.CaptureFixture[str],
    suite: list[FakeTest],
    args: list[str],
) -> None:
    fake_suite(SUITE)
    assert fake_main(["run"]) == 1
    fake_suite(suite)
    for _ in range(2):  # each call used to add an empty "interrupted" run
        assert fake_main(["run", *args]) == 5
    assert _run_ids(project) == [1]
    capsys.readouterr()
    assert fake_main(["last"]) == 1  # the real last run, not an empty one
    out = capsys.readouterr().out
    assert "pkg.test_b.B.test_bad" in out
    assert "interrupted" not in out
    assert fake_main(["failing", "--list"]) == 1
    assert capsys.readouterr().out == "pkg.test_b.B.test_bad\n"


# -- a repository that cannot be used


@pytest.mark.parametrize(
    "content",
    [b"hello, I am notes\n", b"SQLite format 3\x00" + b"\x01" * 200],
    ids=["text-file", "broken-header"],
)
def test_an_unopenable_repository_fails_the_run_with_exit_2_unless_no_store(
    project: Path,
    fake_suite: Callable[[list[FakeTest]], list[FakeBackend]],
    fake_main: Callable[[list[str]], int],
    capsys: pytest.CaptureFixture[str],
    content: bytes,
) -> None:
    notes = project / "notes.db"
    notes.write_bytes(content)
    backends = fake_suite(SUITE)
    assert fake_main(["run", "--repository", str(notes)]) == 2
    err = capsys.readouterr().err
    assert "cannot store this run" in err
    assert str(notes) in err
    assert "--no-store" in err
    assert "Traceback" not in err
    assert [w.ran for b in backends for w in b.workers.values()] == [[]] * sum(
        len(b.workers) for b in backends
    )  # no test ran
    assert notes.read_bytes() == content  # untouched
    assert fake_main(["run", "--repository", str(notes), "--no-store"]) == 1
    assert notes.read_bytes() == content


def test_a_foreign_sqlite_database_fails_the_run_and_is_left_alone(
    project: Path,
    fake_suite: Callable[[list[FakeTest]], list[FakeBackend]],
    fake_main: Callable[[list[str]], int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    import sqlite3

    other = project / "app.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE users (name TEXT)")
    conn.commit()
    conn.close()
    before = other.read_bytes()
    fake_suite(SUITE)
    assert fake_main(["run", "--repository", str(other)]) == 2
    assert "something else" in capsys.readouterr().err
    assert other.read_bytes() == before


def test_a_repository_failing_mid_run_stops_storing_not_testing(
    project: Path,
    fake_suite: Callable[[list[FakeTest]], list[FakeBackend]],
    fake_main: Callable[[list[str]], int],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from proctor.store.sql import store as sql

    tests = [FakeTest(f"pkg.m.C.test_{i:03d}") for i in range(50)]
    fake_suite(tests)
    written: list[int] = []
    real = sql.SqlRunWriter._write

    def write_then_fail(self: sql.SqlRunWriter, records: list[TestRecord]) -> None:
        if written:
            raise StoreUnavailable("cannot write to the repository: the disk is full")
        real(self, records)
        written.append(len(records))

    monkeypatch.setattr(sql.SqlRunWriter, "_write", write_then_fail)
    monkeypatch.setattr(IdleWrites, "BATCH", 10)
    assert fake_main(["run", "--serial"]) == 2
    out = capsys.readouterr().out
    assert "cannot store results: cannot write to the repository: the disk is full" in out
    assert f"keeps the {written[0]} results stored before it" in out
    assert out.count(" ... ok") == 50  # every test ran and was shown
    assert "Traceback" not in out
    monkeypatch.undo()
    with open_store(str(project / ".proctor")) as store:
        (run,) = store.runs()
        assert run.interrupted
        assert run.counts.total == written[0]


# -- shown means stored


class _Screen(io.StringIO):
    """Output that checks, at each write, that everything shown is stored."""

    def __init__(self, store: MemoryStore) -> None:
        super().__init__()
        self.store = store
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        shown = {line.split()[0] for line in (self.getvalue() + text).splitlines() if line}
        latest = self.store.latest_run()
        stored = set() if latest is None else {r.test_id for r in self.store.records(latest.id)}
        assert shown <= stored
        return super().write(text)


def test_held_output_reaches_the_screen_only_after_the_results_it_shows_are_stored() -> None:
    store = MemoryStore()
    times = [0.0]
    storing = RunStorage(store, RunMetadata(), clock=lambda: times[0])
    screen = _Screen(store)
    out = storing.hold(screen)
    for i in range(30):
        record = TestRecord(f"t{i:02d}", Status.SUCCESS)
        storing.add(record)
        out.write(f"t{i:02d} ... ok\n")
        if i % 7 == 0:
            times[0] += 1.0  # idle after a while: releases (committing first)
        storing.idle()
    assert 0 < screen.writes < 30  # grouped: not one commit per result
    out.flush()  # as the view's summary does
    assert screen.getvalue().count(" ... ok") == 30
    info = storing.finish(interrupted=False)
    assert info is not None
    assert info.counts.total == 30


def test_held_output_holds_at_most_its_limit() -> None:
    commits: list[int] = []
    screen = io.StringIO()
    held = HeldOutput(screen, lambda: commits.append(len(screen.getvalue())))
    held.write("x" * (HeldOutput.LIMIT - 1))
    assert screen.getvalue() == ""
    held.write("y")
    assert commits == [0]  # committed before anything was shown
    assert len(screen.getvalue()) == HeldOutput.LIMIT


def test_a_held_result_stream_is_released_after_the_commit_too() -> None:
    store = MemoryStore()
    times = [0.0]
    storing = RunStorage(store, RunMetadata(), clock=lambda: times[0])
    screen = io.BytesIO()
    stream = storing.hold_bytes(screen)
    storing.add(TestRecord("t.a", Status.SUCCESS))
    stream.write(b"the bytes of t.a")
    storing.idle()
    assert screen.getvalue() == b""  # not yet: less than RELEASE_INTERVAL since the start
    times[0] += 1.0
    storing.idle()
    assert screen.getvalue() == b"the bytes of t.a"
    latest = store.latest_run()
    assert latest is not None
    assert [r.test_id for r in store.records(latest.id)] == ["t.a"]


def test_the_view_ticks_the_held_output_out_while_the_controller_waits() -> None:
    from proctor.runner.report import NullReporter
    from proctor.runner.storing import RELEASE_INTERVAL, ReleasingView

    store = MemoryStore()
    times = [0.0]
    storing = RunStorage(store, RunMetadata(), clock=lambda: times[0])
    screen = io.StringIO()
    out = storing.hold(screen)
    view = ReleasingView(NullReporter(), storing)
    assert view.tick_interval == RELEASE_INTERVAL  # the controller wakes for it
    storing.add(TestRecord("t.quick", Status.SUCCESS))
    out.write("t.quick ... ok\n")
    storing.idle()  # right after the start: held (a burst may follow)
    assert screen.getvalue() == ""
    times[0] += RELEASE_INTERVAL  # the next test hangs; the controller ticks
    view.tick()
    assert screen.getvalue() == "t.quick ... ok\n"
    latest = store.latest_run()
    assert latest is not None
    assert [r.test_id for r in store.records(latest.id)] == ["t.quick"]


def test_storing_nothing_begins_no_run() -> None:
    store = MemoryStore()
    storing = RunStorage(store, RunMetadata())
    storing.idle()
    storing.commit()
    assert storing.finish(interrupted=True) is None
    assert store.runs() == []


def test_idle_writes_flush_the_store_in_batches_when_the_controller_is_idle() -> None:
    from typing import cast

    from proctor.store.contract import RunWriter

    class Writer:
        def __init__(self) -> None:
            self.written = 7  # from an earlier batch of the same run
            self.pending: list[TestRecord] = []
            self.flushes = 0
            self.batch_size = 5000

        def add(self, record: TestRecord) -> None:
            self.pending.append(record)
            if len(self.pending) >= self.batch_size:
                self.flush()

        def flush(self) -> None:
            self.written += len(self.pending)
            self.pending = []
            self.flushes += 1

    writer = Writer()
    idle = IdleWrites(cast(RunWriter, writer))
    record = TestRecord("t", Status.SUCCESS)
    for _ in range(IdleWrites.BATCH - 1):
        idle.add(record)
    idle.idle()
    assert writer.flushes == 0  # too few to be worth a commit
    idle.add(record)
    idle.idle()
    assert writer.flushes == 1
    assert writer.pending == []
    for _ in range(IdleWrites.BATCH):
        idle.add(record)
    writer.flush()  # the writer's own quarter-second flush
    idle.idle()
    assert writer.flushes == 2  # nothing pending: no extra flush
    # Never idle (the workers keep the controller busy): no transaction grows
    # beyond MOST records, so the last one, written after the last test, is short.
    assert writer.batch_size == IdleWrites.MOST
    for _ in range(IdleWrites.MOST * 3):
        idle.add(record)
    assert writer.flushes == 5
    assert writer.pending == []
