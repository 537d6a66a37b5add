"""``proctor run`` on generated pytest projects, with real workers, against plain pytest.

pytest's options (``-k``, ``-m``, ``-x``/``--maxfail``, ``--ff``, ``--pdb``,
arguments after ``--``), ``pytest.exit()`` in a test, pytest's own outcomes
and words (XPASS, setup and teardown errors, tracebacks, the warnings summary,
INTERNALERROR), and test ids that differ between worker processes.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from proctor.cli.run import RunArgs, _pytest_params, run
from proctor.wire.v2 import decode
from tests.runner.projects import (
    PYTEST_CONF,
    UNITTEST_CONF,
    collect_files,
    outcomes,
    pytest_outcomes,
    worker_env,
    write_project,
)

pytestmark = pytest.mark.slow

EXITS = {
    **PYTEST_CONF,
    "tests/test_a.py": """
        import pytest

        def test_1(): pass
        def test_2(): pass
        def test_3(): pytest.exit("stop here")
        def test_4(): pass
        def test_5(): pass
        def test_6(): pass
    """,
    "tests/test_b.py": """
        import time

        def test_b1(): time.sleep(0.2)
        def test_b2(): time.sleep(0.2)
        def test_b3(): time.sleep(0.2)
    """,
}

MARKED = {
    "pytest.ini": "[pytest]\nmarkers =\n    slow: slow ones\n",
    "tests/test_m.py": """
        import pytest

        @pytest.mark.slow
        def test_slow_one(): pass

        @pytest.mark.slow
        @pytest.mark.parametrize("n", [1, 2])
        def test_slow_param(n): pass

        def test_quick(): pass

        class TestGroup:
            def test_inside(self): pass
            def test_other_quick(self): pass
    """,
}

OUTCOMES = {
    **PYTEST_CONF,
    "conftest.py": "",
    "tests/test_o.py": """
        import warnings
        import pytest

        @pytest.fixture
        def bad_setup():
            raise RuntimeError("setup broke")

        @pytest.fixture
        def bad_teardown():
            yield
            raise RuntimeError("teardown broke")

        def test_setup_error(bad_setup):
            pass

        def test_teardown_error(bad_teardown):
            pass

        @pytest.mark.xfail(reason="known bug")
        def test_xpass():
            pass

        @pytest.mark.xfail(reason="known bug", strict=True)
        def test_xpass_strict():
            pass

        def test_warns():
            warnings.warn("this is deprecated", DeprecationWarning)

        def helper(x):
            if x:
                assert x == 5, "nested"

        def test_indent():
            helper(1)
    """,
}


def _run(root: Path, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "proctor", "run", "--no-store", *args],
        cwd=root,
        input=stdin,
        capture_output=True,
        timeout=120,
        env=worker_env(),
        check=False,
    )


def _counts(text: str) -> dict[str, int]:
    """The closing line's counts: ``2 passed, 1 failed, 0 skipped, 6 not run``."""
    line = [line for line in text.splitlines() if " passed, " in line][-1]
    return {name: int(n) for n, name in re.findall(r"(\d+) ([a-z ]+?)(?=,| in )", line)}


@pytest.mark.parametrize("workers", ["1", "2"])
def test_pytest_exit_stops_the_run_and_what_did_not_run_is_not_run(
    tmp_path: Path, workers: str
) -> None:
    root = write_project(tmp_path, EXITS)
    done = _run(root, "-j", workers)
    out = done.stdout.decode()
    assert done.returncode == 1, out + done.stderr.decode()
    counts = _counts(out)
    assert counts["failed"] == 1  # the test that called pytest.exit(), nothing else
    assert counts["passed"] + counts["failed"] + counts["not run"] == 9
    assert counts["not run"] >= 1
    assert "teardown" not in out
    assert "exited with code" not in out
    assert "pytest.exit() in tests/test_a.py::test_3: stop here: the run stops" in out
    failed = out.split("Failed tests:")[1].split("\n\n")[0].split()
    assert failed == ["tests/test_a.py::test_3"]
    if workers == "1":  # one worker, discovery order: what pytest itself ran
        expected = pytest_outcomes(root, tmp_path / "scratch")
        ran = _run(root, "-j", "1", "--subunit").stdout
        assert {k: v for k, v in outcomes(decode(ran)).items() if v == "success"} == expected
        assert counts == {"passed": 2, "failed": 1, "skipped": 0, "not run": 6}


@pytest.mark.parametrize(
    "args",
    [("-k", "quick or inside"), ("-m", "slow"), ("-m", "not slow", "-k", "Group"), ("-k", "none")],
)
def test_k_and_m_select_what_pytest_selects(tmp_path: Path, args: tuple[str, ...]) -> None:
    root = write_project(tmp_path / "p", MARKED)
    expected = pytest_outcomes(root, tmp_path / "scratch", *args)
    for given in (args, ("--", *args)):  # proctor's options, or pytest's after --
        done = _run(root, "--subunit", "-j", "2", *given)
        assert outcomes(decode(done.stdout)) == expected, done.stderr.decode()
        assert done.returncode == (0 if expected else 5)


def test_arguments_after_the_double_dash_and_verbosity_reach_pytest(tmp_path: Path) -> None:
    root = write_project(
        tmp_path,
        {
            **PYTEST_CONF,
            "tests/test_t.py": "def test_long():\n    x = [1, 2]\n    assert x == [1, 3]\n",
        },
    )
    test_id = "tests/test_t.py::test_long"
    plain = collect_files(decode(_run(root, "--subunit").stdout), test_id)["traceback"]
    assert b"Use -v to get more diff" in plain
    verbose = collect_files(decode(_run(root, "--subunit", "-v").stdout), test_id)["traceback"]
    assert b"Use -v to get more diff" not in verbose
    done = _run(root, "--subunit", "--", "--tb=native", "-p", "no:randomly")
    native = collect_files(decode(done.stdout), test_id)["traceback"]
    assert native.startswith(b"Traceback (most recent call last):")


def test_pytest_options_on_a_unittest_suite_are_a_usage_error(tmp_path: Path) -> None:
    root = write_project(
        tmp_path, {**UNITTEST_CONF, "tests/test_u.py": "import unittest\n", "tests/__init__.py": ""}
    )
    done = _run(root, "-k", "x")
    assert done.returncode == 2
    assert "-k: pytest's options, but this project's tests run under unittest" in (
        done.stderr.decode()
    )


FAILING = {
    **PYTEST_CONF,
    "tests/test_f.py": """
        import time
        import pytest

        @pytest.mark.parametrize("n", range(12))
        def test_fine(n):
            time.sleep(0.05)

        @pytest.mark.parametrize("n", range(4))
        def test_broken(n):
            time.sleep(0.05)
            assert n < 0
    """,
}


@pytest.mark.parametrize(("workers", "option"), [("1", ("-x",)), ("2", ("--maxfail", "2"))])
def test_maxfail_stops_the_run_across_workers_and_the_rest_is_not_run(
    tmp_path: Path, workers: str, option: tuple[str, ...]
) -> None:
    root = write_project(tmp_path, FAILING)
    done = _run(root, "-j", workers, *option)
    out = done.stdout.decode()
    assert done.returncode == 1, out
    counts = _counts(out)
    limit = 1 if option == ("-x",) else 2
    assert limit <= counts["failed"] <= limit + int(workers) - 1  # a test under way may fail too
    assert counts["not run"] >= 1
    assert counts["passed"] + counts["failed"] + counts["not run"] == 16
    assert f"stopping after {limit} failure" in out
    assert "exited with code" not in out
    assert "killed by signal" not in out
    if workers == "1":
        assert counts == {"passed": 12, "failed": 1, "skipped": 0, "not run": 3}


def test_ff_runs_the_failing_tests_first(tmp_path: Path) -> None:
    root = write_project(tmp_path, FAILING)
    first = subprocess.run(
        [sys.executable, "-m", "proctor", "run", "-j", "1"],
        cwd=root,
        capture_output=True,
        timeout=120,
        env=worker_env(),
        check=False,
    )
    assert first.returncode == 1
    again = subprocess.run(
        [sys.executable, "-m", "proctor", "run", "-j", "1", "--ff", "--subunit"],
        cwd=root,
        capture_output=True,
        timeout=120,
        env=worker_env(),
        check=False,
    )
    order = [e.test_id for e in decode(again.stdout) if e.status.wire_name == "inprogress"]
    assert len(order) == 16
    assert {test_id.split("[")[0] for test_id in order[:4]} == {"tests/test_f.py::test_broken"}


def test_pdb_post_mortem_at_a_failure_through_stdin(tmp_path: Path) -> None:
    root = write_project(
        tmp_path,
        {
            **PYTEST_CONF,
            "tests/test_d.py": """
                def test_fail():
                    value = 41
                    assert value == 42

                def test_ok():
                    pass
            """,
        },
    )
    done = _run(root, "-j", "1", "--pdb", stdin=b"p value * 1000 + 1\ncontinue\n")
    out = done.stdout.decode()
    assert done.returncode == 1
    assert "(Pdb)" in out
    assert "41001" in out  # the debugger ran in the failing test's frame
    assert _counts(out) == {"passed": 1, "failed": 1, "skipped": 0}


def test_pytest_outcomes_and_words(tmp_path: Path) -> None:
    root = write_project(tmp_path, OUTCOMES)
    expected = pytest_outcomes(root, tmp_path / "scratch")
    done = _run(root, "-j", "1", "--subunit")
    events = decode(done.stdout)
    assert outcomes(events) == expected
    assert expected["tests/test_o.py::test_xpass"] == "success"
    xpass = collect_files(events, "tests/test_o.py::test_xpass")
    assert xpass["reason"] == b"XPASS known bug"
    setup = collect_files(events, "tests/test_o.py::test_setup_error")["traceback"].decode()
    assert setup.startswith("ERROR at setup of test_setup_error\n\n    @pytest.fixture\n")
    teardown = collect_files(events, "tests/test_o.py::test_teardown_error")["traceback"]
    assert teardown.startswith(b"ERROR at teardown of test_teardown_error\n")
    indent = collect_files(events, "tests/test_o.py::test_indent")["traceback"].decode()
    assert indent.startswith("    def test_indent():\n>       helper(1)\n")
    warned = collect_files(events, "tests/test_o.py::test_warns")["warnings"]
    assert b"DeprecationWarning: this is deprecated" in warned
    view = _run(root, "-j", "2").stdout.decode()
    summary = view.split("warnings summary")[1]
    assert "tests/test_o.py::test_warns\n" in summary
    assert "DeprecationWarning: this is deprecated" in summary
    assert view.count("warnings summary") == 1
    assert _counts(view)["passed"] == 2  # test_warns and the XPASS


def test_collection_warnings_are_summarised_once_with_two_workers(tmp_path: Path) -> None:
    root = write_project(
        tmp_path,
        {
            **PYTEST_CONF,
            "tests/test_w.py": """
                import time
                import pytest

                @pytest.mark.unknown_mark_here
                def test_a():
                    time.sleep(0.3)

                def test_b():
                    time.sleep(0.3)
            """,
        },
    )
    view = _run(root, "-j", "2").stdout.decode()
    assert view.count("PytestUnknownMarkWarning") == 1, view


def test_an_internal_error_shows_pytests_reason(tmp_path: Path) -> None:
    root = write_project(
        tmp_path,
        {
            **PYTEST_CONF,
            "conftest.py": """
                def pytest_collection_modifyitems(items):
                    raise ValueError("plugin exploded")
            """,
            "tests/test_a.py": "def test_a():\n    pass\n",
        },
    )
    done = _run(root, "-j", "1")
    out = done.stdout.decode() + done.stderr.decode()
    assert done.returncode == 3
    assert "(exit code 3): INTERNALERROR> ValueError: plugin exploded" in out
    assert 'raise ValueError("plugin exploded")' in out  # pytest's report, once
    assert out.count('raise ValueError("plugin exploded")') == 1


def test_ids_that_differ_between_workers_fail_the_run_naming_them(tmp_path: Path) -> None:
    root = write_project(
        tmp_path,
        {
            **PYTEST_CONF,
            "tests/test_p.py": """
                import os
                import time
                import pytest

                @pytest.mark.parametrize("pid", [os.getpid()])
                def test_pid(pid):
                    pass

                @pytest.mark.parametrize("n", range(8))
                def test_slow(n):
                    time.sleep(0.4)
            """,
        },
    )
    done = _run(root, "-j", "2")
    out = done.stdout.decode() + done.stderr.decode()
    assert done.returncode == 3, out
    assert "the workers collected different tests" in out
    pids = re.findall(r"'tests/test_p.py::test_pid\[(\d+)\]'", out)
    assert len(set(pids)) == 2, out  # both workers' ids, named
    assert "No test with id" not in out


def test_pdb_post_mortem_in_a_unittest_suite_too(tmp_path: Path) -> None:
    root = write_project(
        tmp_path,
        {
            **UNITTEST_CONF,
            "tests/__init__.py": "",
            "tests/test_u.py": """
                import unittest

                class T(unittest.TestCase):
                    def test_fail(self):
                        value = 41
                        self.assertEqual(value, 42)

                    def test_ok(self):
                        pass
            """,
        },
    )
    done = _run(root, "-j", "1", "--pdb", stdin=b"p value * 1000 + 1\ncontinue\n")
    out = done.stdout.decode()
    assert done.returncode == 1
    assert "41001" in out
    assert _counts(out) == {"passed": 1, "failed": 1, "skipped": 0}


def test_pdb_with_an_id_reaches_its_own_field(tmp_path: Path) -> None:
    """``--pdb`` takes an optional value: alone it is the post-mortem flag; with an
    id it is stestr's ``--pdb ID`` (``RunArgs.pdb_test_id``), not a filter."""
    for argv, expected in (
        (["--pdb"], (True, None)),
        (["--pdb", "-j", "1"], (True, None)),
        (["--pdb", "tests.test_u.T.test_ok"], (False, "tests.test_u.T.test_ok")),
        ([], (False, None)),
    ):
        ctx = run.make_context("run", list(argv))
        params = dict(ctx.params)
        _pytest_params(params, ())
        args = RunArgs(**params)  # type: ignore[arg-type]
        assert (args.post_mortem, args.pdb_test_id) == expected, argv
        assert args.filters == ()


def test_pytests_own_maxfail_after_the_double_dash_stops_the_run_too(tmp_path: Path) -> None:
    root = write_project(tmp_path, FAILING)
    done = _run(root, "-j", "1", "--", "--maxfail", "2")
    out = done.stdout.decode()
    assert done.returncode == 1, out
    assert _counts(out) == {"passed": 12, "failed": 2, "skipped": 0, "not run": 2}
    assert "pytest stopped the session after tests/test_f.py::test_broken[1]" in out
    assert "exited with code" not in out
