"""The run session (``proctor.runner.session``) driven directly, on fake workers.

What ``proctor run`` does around a controller, without the command line:
``--until-failure`` and ``--max-runs``, a new seed for each run, storing (and
saying whether it worked), Ctrl-C / SIGTERM through real signal handlers, the
isolation probes and ``--isolated``.
"""

from __future__ import annotations

import io
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import pytest

from proctor.exitcode import ExitCode
from proctor.runner.isolate import ProbeInterrupted
from proctor.runner.options import RunOptions
from proctor.runner.report import NullReporter, RunReporter
from proctor.runner.session import RunSession, SessionOptions
from proctor.runner.storing import RunStorage
from proctor.store.contract import Store
from proctor.store.errors import StoreError
from proctor.store.memory import MemoryStore
from proctor.store.model import RunInfo, RunMetadata
from proctor.store.opening import open_store
from proctor.testing import FakeBackend, FakeTest
from proctor.wire.event import Status
from proctor.wire.record import TestRecord


class Backends:
    """A backend factory making fake backends whose suite can change from run to run."""

    def __init__(self, suite: Callable[[int], list[FakeTest]]) -> None:
        self.suite = suite
        self.made: list[FakeBackend] = []

    def __call__(self) -> FakeBackend:
        backend = FakeBackend(self.suite(len(self.made)))
        self.made.append(backend)
        return backend

    def ran(self, index: int) -> list[str]:
        return [i for w in self.made[index].workers.values() for i in w.ran]


def _flaky(fails_on: int) -> Callable[[int], list[FakeTest]]:
    """A suite whose last test fails in run ``fails_on`` (0-based) only."""

    def suite(run: int) -> list[FakeTest]:
        outcome = "fail" if run == fails_on else "success"
        return [FakeTest("pkg.m.C.t_ok"), FakeTest("pkg.m.C.t_flaky", outcome=outcome)]

    return suite


def _quiet(out: object) -> RunReporter:
    return NullReporter()


def test_a_single_run_closes_its_backend_and_returns_the_result() -> None:
    backends = Backends(_flaky(fails_on=0))
    done = RunSession(SessionOptions(RunOptions(concurrency=2)), backends, view=_quiet).run()
    assert done.runs == 1
    assert done.result.exit_code == ExitCode.FAILED
    assert done.stored  # nothing to store: nothing lost
    assert [b.closed for b in backends.made] == [True]


def test_until_failure_stops_at_the_first_failing_run() -> None:
    backends = Backends(_flaky(fails_on=3))
    reruns: list[int] = []
    options = SessionOptions(RunOptions(concurrency=1), until_failure=True)
    session = RunSession(options, backends, view=_quiet, before_rerun=reruns.append)
    done = session.run()
    assert done.runs == 4
    assert done.result.exit_code == ExitCode.FAILED
    assert not done.max_runs_reached
    assert reruns == [2, 3, 4]
    assert len(backends.made) == 4  # fresh workers for every run
    assert all(backend.closed for backend in backends.made)


def test_max_runs_stops_a_run_that_keeps_passing() -> None:
    backends = Backends(_flaky(fails_on=99))
    options = SessionOptions(RunOptions(), until_failure=True, max_runs=3)
    done = RunSession(options, backends, view=_quiet).run()
    assert (done.runs, done.max_runs_reached) == (3, True)
    assert done.result.exit_code == ExitCode.OK
    assert len(backends.made) == 3


def test_reseed_draws_a_new_seed_for_each_run_and_a_given_seed_stays() -> None:
    many = [FakeTest(f"pkg.m{i}.C.t") for i in range(20)]
    backends = Backends(lambda run: many)
    options = SessionOptions(RunOptions(seed=7), until_failure=True, max_runs=3, reseed=True)
    done = RunSession(options, backends, view=_quiet).run()
    assert done.options.seed != 7
    assert len({tuple(backends.ran(i)) for i in range(3)}) == 3
    kept = Backends(lambda run: many)
    options = SessionOptions(RunOptions(seed=7), until_failure=True, max_runs=3)
    assert RunSession(options, kept, view=_quiet).run().options.seed == 7
    assert len({tuple(kept.ran(i)) for i in range(3)}) == 1


def test_a_given_first_backend_runs_the_first_run() -> None:
    backends = Backends(_flaky(fails_on=0))
    first = FakeBackend(_flaky(fails_on=-1)(0))
    options = SessionOptions(RunOptions(), until_failure=True)
    done = RunSession(options, backends, view=_quiet, first_backend=first).run()
    assert done.runs == 2
    assert first.closed
    assert first.workers  # it ran the first run
    assert len(backends.made) == 1  # made for run 2 (which fails)


class _Screen(io.StringIO):
    """A stdout (text and bytes) that checks, at each write, that the lines shown
    name results already stored in the latest run of ``store`` (when given)."""

    def __init__(self, store: Store | None = None) -> None:
        super().__init__()
        self.buffer = io.BytesIO()
        self.store = store

    def write(self, text: str) -> int:
        if self.store is not None:
            latest = self.store.latest_run()
            assert latest is not None
            stored = {r.test_id for r in self.store.records(latest.id)}
            assert set(text.split()) <= stored
        return super().write(text)


class _Lines(NullReporter):
    def __init__(self, out: TextIO) -> None:
        self.out = out

    def record(self, record: TestRecord) -> None:
        self.out.write(f"{record.test_id}\n")


def test_each_run_is_stored_and_its_lines_shown_only_once_stored(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "repo"))
    stored: list[RunInfo] = []
    screen = _Screen(store)
    try:
        options = SessionOptions(RunOptions(), until_failure=True)
        session = RunSession(
            options,
            Backends(_flaky(fails_on=1)),
            view=_Lines,
            storage=lambda: RunStorage(store, RunMetadata()),
            stdout=screen,
            stored=stored.append,
        )
        done = session.run()
        assert done.stored
        assert done.runs == 2
        assert sorted(info.id for info in store.runs()) == sorted(info.id for info in stored)
        assert [info.counts.total for info in stored] == [2, 2]
        assert store.failing_ids() == ["pkg.m.C.t_flaky"]
        assert screen.getvalue().count("pkg.m.C.t_flaky\n") == 2
    finally:
        store.close()


class RefusingStore(MemoryStore):
    """A repository that fails when a run is begun (a full disk, say)."""

    def begin_run(self, metadata: RunMetadata | None = None) -> object:  # type: ignore[override]
        raise StoreError("the disk is full")


def test_a_run_that_could_not_be_stored_says_so_and_ends_until_failure() -> None:
    notices: list[str] = []

    class Notices(NullReporter):
        def notice(self, text: str) -> None:
            notices.append(text)

    backends = Backends(_flaky(fails_on=99))
    store = RefusingStore()
    session = RunSession(
        SessionOptions(RunOptions(), until_failure=True),
        backends,
        view=lambda out: Notices(),
        storage=lambda: RunStorage(store, RunMetadata()),
        stdout=_Screen(),
    )
    done = session.run()
    assert not done.stored
    assert done.runs == 1  # a run that is not kept ends --until-failure
    assert done.result.exit_code == ExitCode.OK
    assert any("cannot store results: the disk is full" in text for text in notices)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_running_interrupts_the_run_and_the_handlers_come_back(
    signum: int,
) -> None:
    before = signal.getsignal(signum)

    def suite(run: int) -> list[FakeTest]:
        return [FakeTest(f"pkg.m.T.t{i}", duration=2.0) for i in range(3)]

    class Signalling(Backends):
        def __call__(self) -> FakeBackend:
            backend = super().__call__()
            backend.schedule(3.0, lambda: os.kill(os.getpid(), signum))  # a real signal
            return backend

    backends = Signalling(suite)
    options = SessionOptions(RunOptions(concurrency=1), until_failure=True)
    done = RunSession(options, backends, view=_quiet).run()
    assert done.result.interrupted
    # Ctrl-C is "interrupted" (130); another signal is named (128 + it)
    assert done.result.signal == (None if signum == signal.SIGINT else signum)
    assert done.result.exit_code == 128 + signum
    assert done.runs == 1
    assert done.result.counts[Status.SUCCESS] in (1, 2)  # Ctrl-C lets the running test end
    assert "pkg.m.T.t2" in done.result.not_run
    assert signal.getsignal(signum) is before
    assert backends.made[0].closed


def _order_dependent(run: int) -> list[FakeTest]:
    tests = [FakeTest(f"pkg.m.A.test_{i:02d}") for i in range(12)]
    victim = FakeTest(
        "pkg.z.Z.test_victim", fails_after=frozenset({"pkg.m.A.test_03", "pkg.m.A.test_09"})
    )
    return [*tests, victim]


def test_isolate_probes_fresh_workers_until_it_finds_the_culprits() -> None:
    backends = Backends(_order_dependent)
    session = RunSession(SessionOptions(RunOptions(concurrency=4, seed=5)), backends)
    suspects = [f"pkg.m.A.test_{i:02d}" for i in range(12)]
    probes: list[tuple[int, int, bool]] = []
    report = session.isolate(
        "pkg.z.Z.test_victim",
        "0",
        suspects,
        on_probe=lambda *seen: probes.append(seen),
    )
    assert report.problems == []
    assert report.found.culprits == ["pkg.m.A.test_03", "pkg.m.A.test_09"]
    assert report.found.probes == len(probes) == len(backends.made)
    assert probes[:2] == [(1, 0, False), (2, 12, True)]  # alone passes, after all fails
    for index in range(len(backends.made)):  # one worker, in the order given, target last
        assert list(backends.made[index].workers) == [0]
        assert backends.ran(index)[-1] == "pkg.z.Z.test_victim"
    assert all(backend.closed for backend in backends.made)


def test_an_interrupted_probe_stops_the_search() -> None:
    def suite(run: int) -> list[FakeTest]:
        return _order_dependent(run)

    class Interrupting(Backends):
        def __call__(self) -> FakeBackend:
            backend = super().__call__()
            if len(self.made) == 2:
                backend.interrupt_at(0.0)
            return backend

    backends = Interrupting(suite)
    session = RunSession(SessionOptions(RunOptions()), backends)
    with pytest.raises(ProbeInterrupted) as stopped:
        session.isolate("pkg.z.Z.test_victim", "0", [f"pkg.m.A.test_{i:02d}" for i in range(12)])
    assert stopped.value.exit_code == 130
    assert len(backends.made) == 2


def test_isolated_runs_each_test_on_a_worker_of_its_own_into_one_stored_run() -> None:
    store = MemoryStore()
    backends = Backends(lambda run: _flaky(fails_on=0)(0))
    session = RunSession(
        SessionOptions(RunOptions(concurrency=4), isolated=True),
        backends,
        view=_quiet,
        storage=lambda: RunStorage(store, RunMetadata()),
        stdout=_Screen(),
    )
    done = session.run()
    assert done.result.exit_code == ExitCode.FAILED
    assert done.result.counts[Status.SUCCESS] == 1
    assert len(backends.made) == 3  # the listing, then one per test
    assert [backends.ran(i) for i in (1, 2)] == [["pkg.m.C.t_ok"], ["pkg.m.C.t_flaky"]]
    (run,) = store.runs()
    assert run.counts.total == 2


def test_list_tests_lists_on_one_worker_and_runs_nothing() -> None:
    backends = Backends(_flaky(fails_on=0))
    session = RunSession(SessionOptions(RunOptions(concurrency=4, list_only=True)), backends)
    result = session.list_tests()
    assert result.selected == ["pkg.m.C.t_ok", "pkg.m.C.t_flaky"]
    assert result.ran == 0
    assert backends.ran(0) == []
    assert backends.made[0].closed


def test_the_worker_count_serial_configured_or_worth_it() -> None:
    from proctor.runner.concurrency import choose_concurrency, cores
    from proctor.runner.history import RecordsHistory

    assert choose_concurrency(serial=True, configured=8, history=None) == 1
    assert choose_concurrency(serial=False, configured=3, history=None) == 3
    assert choose_concurrency(serial=False, configured=0, history=None) == cores()
    quick = RecordsHistory([[TestRecord("t", Status.SUCCESS, start=0, stop=1000)]])
    assert choose_concurrency(serial=False, configured=None, history=quick) == 1  # 1 us of tests
