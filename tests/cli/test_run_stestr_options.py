"""stestr's ``run`` options and rules in ``proctor run``, in-process with fake workers.

Bad regexes in list files, ``--random`` on a small suite, ``--until-failure
--max-runs``, ``--combine``, ``--abbreviate``, ``--isolated`` and
``--no-discover``. The same options with real workers (and ``--pdb ID`` with a
real debugger) are in ``test_run_stestr_processes.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from proctor.runner.protocol import ListTests
from proctor.testing import FakeBackend, FakeTest

SUITE = [
    FakeTest("pkg.test_a.A.test_ok"),
    FakeTest("pkg.test_a.A.test_also_ok"),
    FakeTest("pkg.test_b.B.test_bad", outcome="fail"),
    FakeTest("pkg.test_b.B.test_skip", outcome="skip"),
]


@pytest.mark.parametrize("option", ["--include-list", "--exclude-list"])
def test_a_bad_regex_in_a_list_file_is_exit_2_before_any_worker(
    project: Path,
    fake_suite: Callable[[list[FakeTest]], list[FakeBackend]],
    fake_main: Callable[[list[str]], int],
    capsys: pytest.CaptureFixture[str],
    option: str,
) -> None:
    backends = fake_suite(SUITE)
    (project / "list.txt").write_text("test_ok\npkg.test_b.B.test_[bad\n")
    assert fake_main(["run", option, "list.txt"]) == 2
    err = capsys.readouterr().err
    expected = "list.txt:2:19: 'pkg.test_b.B.test_[bad' is not a regex: unterminated character set"
    assert expected in err
    assert "Traceback" not in err
    assert backends == []
    assert not (project / ".proctor").exists()


def _stored(project: Path) -> list[tuple[int, list[str]]]:
    """Every stored run: (id, the ids of its results in order)."""
    from proctor.store.opening import open_store

    store = open_store(str(project / ".proctor"))
    try:
        return [
            (info.id, [r.test_id for r in store.records(info.id)])
            for info in reversed(store.runs())
        ]
    finally:
        store.close()


def test_random_on_a_small_suite_with_history_varies_the_first_test(
    project: Path,
    fake_suite: Callable[[list[FakeTest]], list[FakeBackend]],
    fake_main: Callable[[list[str]], int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # 20 tests, one of which the history shows slower (it paid an import).
    tests = [FakeTest(f"pkg.test_m{i:02d}.T.test_x", duration=0.001) for i in range(20)]
    tests[3] = FakeTest(tests[3].test_id, duration=0.02)
    fake_suite(tests)
    assert fake_main(["run", "--serial"]) == 0
    firsts = []
    for seed in range(1, 13):
        backends = fake_suite(tests)
        assert fake_main(["run", "--serial", "--random-seed", str(seed)]) == 0
        firsts.append(backends[0].workers[0].ran[0])
    assert f"seed {12}" in capsys.readouterr().out
    assert len(set(firsts)) >= 6  # a uniform shuffle gives about 10 distinct firsts in 12
    assert firsts.count(tests[3].test_id) <= 3


def test_until_failure_stops_after_max_runs(
    project: Path,
    fake_suite: Callable[[list[FakeTest]], list[FakeBackend]],
    fake_main: Callable[[list[str]], int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    passing = [t for t in SUITE if t.outcome != "fail"]
    backends = fake_suite(passing)
    assert fake_main(["run", "--until-failure", "--max-runs", "3"]) == 0
    assert len(backends) == 3
    assert len(_stored(project)) == 3
    assert "Stopped after 3 runs (--max-runs): none failed." in capsys.readouterr().out
    backends = fake_suite(SUITE)
    assert fake_main(["run", "--until-failure", "--max-runs", "3"]) == 1  # a failure stops it first
    assert len(backends) == 1


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--max-runs", "2"], "--max-runs limits --until-failure"),
        (["--combine", "--no-store"], "cannot be used with --no-store"),
        (["--pdb", "x", "--until-failure"], "--pdb runs one test; it cannot be used with"),
        (["--pdb", "x", "--no-discover", "y"], "--pdb and --no-discover cannot be used together"),
        (["--isolated", "--isolate", "y"], "--isolated and --isolate cannot be used together"),
        (["--no-discover", "x", "--failing"], "it cannot be used with a selection option"),
        (["--no-discover", "x", "some_filter"], "it cannot be used with filters"),
    ],
)
def test_options_that_cannot_work_together_are_exit_2(
    project: Path,
    fake_suite: Callable[[list[FakeTest]], list[FakeBackend]],
    fake_main: Callable[[list[str]], int],
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    expected: str,
) -> None:
    backends = fake_suite(SUITE)
    assert fake_main(["run", *args]) == 2
    assert expected in capsys.readouterr().err
    assert backends == []


def test_combine_adds_the_results_to_the_last_run(
    project: Path,
    fake_suite: Callable[[list[FakeTest]], list[FakeBackend]],
    fake_main: Callable[[list[str]], int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake_suite(SUITE[:2])
    assert fake_main(["run", "--combine"]) == 0  # nothing stored yet: this starts a run
    assert "no run stored yet" in capsys.readouterr().err
    fake_suite(SUITE[2:])
    assert fake_main(["run", "--combine"]) == 1
    fake_suite(SUITE[:1])
    assert fake_main(["run"]) == 0
    runs = _stored(project)
    assert [run_id for run_id, _ in runs] == [1, 2]
    assert sorted(runs[0][1]) == sorted(t.test_id for t in SUITE)
    assert runs[1][1] == [SUITE[0].test_id]


def test_abbreviate_prints_a_character_per_test_then_the_failures(
    project: Path,
    fake_suite: Callable[[list[FakeTest]], list[FakeBackend]],
    fake_main: Callable[[list[str]], int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    tests = [*SUITE, FakeTest("pkg.test_c.C.test_xfail", outcome="xfail")]
    tests.append(FakeTest("pkg.test_c.C.test_crash", outcome="crash"))
    fake_suite(tests)
    assert fake_main(["run", "--serial", "--abbreviate"]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    chars = lines[1]
    assert sorted(chars) == sorted("..FS.F")  # a crash fails its test
    assert "pkg.test_a.A.test_ok" not in out  # passing tests are a character only
    assert "pkg.test_b.B.test_bad [" in out  # failures in full, after the characters
    assert "pkg.test_c.C.test_crash [" in out
    assert "AssertionError: pkg.test_b.B.test_bad failed" in out
    assert out.index("pkg.test_b.B.test_bad [") > out.index(chars)


def test_isolated_gives_each_test_a_worker_of_its_own_and_stores_one_run(
    project: Path,
    fake_suite: Callable[[list[FakeTest]], list[FakeBackend]],
    fake_main: Callable[[list[str]], int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    backends = fake_suite(SUITE)
    assert fake_main(["run", "--isolated", "-E", "skip"]) == 1
    listing, *each = backends
    assert [w.ran for w in listing.workers.values()] == [[]]  # it only listed
    assert [[i for w in b.workers.values() for i in w.ran] for b in each] == [
        [t.test_id] for t in SUITE if "skip" not in t.test_id
    ]
    assert all(len(b.workers) == 1 for b in each)
    runs = _stored(project)
    assert len(runs) == 1
    assert sorted(runs[0][1]) == sorted(t.test_id for t in SUITE if "skip" not in t.test_id)
    assert "2 passed, 1 failed, 0 skipped" in capsys.readouterr().out


def test_no_discover_runs_the_named_test_without_listing(
    project: Path,
    fake_suite: Callable[[list[FakeTest]], list[FakeBackend]],
    fake_main: Callable[[list[str]], int],
) -> None:
    backends = fake_suite(SUITE)
    assert fake_main(["run", "--no-discover", "pkg/test_b.py::B::test_skip"]) == 0
    (worker,) = backends[0].workers.values()
    assert worker.ran == ["pkg.test_b.B.test_skip"]
    assert ListTests() not in worker.commands
