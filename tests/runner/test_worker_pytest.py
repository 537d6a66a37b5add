"""pytest suites in the worker: the same ids and outcomes as ``pytest`` itself.

The reference is a real ``python -m pytest`` run of the same generated project,
observed by a tiny plugin that records every report; its outcomes are folded
into one per test by :func:`tests.runner.projects.fold_pytest_reports`, written
independently of the worker.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from proctor.runner.protocol import RunTests
from tests.runner.projects import (
    PYTEST_CONF,
    WorkerProcess,
    collect_files,
    outcomes,
    pytest_outcomes,
    run_oneshot,
    write_project,
)

pytestmark = pytest.mark.slow

CONFTEST = """
    import pytest

    CREATED = []

    @pytest.fixture(scope="session")
    def database():
        CREATED.append("database")
        yield {"rows": 3}

    @pytest.fixture(scope="module")
    def fragile():
        yield "fragile"
        raise RuntimeError("fragile teardown failed")

    @pytest.fixture(params=["a", "b"])
    def letter(request):
        return request.param
"""

TEST_FIXTURES = """
    import pytest

    from tests.conftest import CREATED

    def test_session_fixture(database):
        assert database["rows"] == 3

    def test_session_made_once(database):
        print("made", CREATED.count("database"), "times")

    @pytest.mark.parametrize("n", [1, 2, 3], ids=["one", "two", "three"])
    def test_param(n, letter):
        assert (n, letter) != (2, "b")

    class TestGroup:
        @pytest.fixture(autouse=True)
        def prepared(self):
            self.ready = True

        def test_uses_class_fixture(self):
            assert self.ready

        @pytest.mark.parametrize("value", [None, 0, ""])
        def test_falsy(self, value):
            assert not value

    def test_setup_error(missing_fixture):
        pass

    @pytest.fixture
    def broken_teardown():
        yield
        raise ValueError("function teardown")

    def test_teardown_error(broken_teardown):
        pass

    def test_capsys(capsys):
        print("seen")
        assert capsys.readouterr().out == "seen\\n"

    def test_caplog(caplog):
        import logging
        logging.getLogger("x").error("recorded")
        assert "recorded" in caplog.text
"""

TEST_MARKS = """
    import sys
    import unittest

    import pytest

    @pytest.mark.skip(reason="never")
    def test_skip_mark():
        pass

    @pytest.mark.skipif(sys.version_info > (3,), reason="python 3")
    def test_skipif():
        pass

    def test_skip_inside():
        pytest.skip("decided at run time")

    @pytest.mark.xfail(reason="known bug")
    def test_xfail():
        assert False

    @pytest.mark.xfail(reason="fixed now")
    def test_xpass():
        pass

    @pytest.mark.xfail(reason="must fail", strict=True)
    def test_xpass_strict():
        pass

    @pytest.mark.xfail(run=False, reason="would crash")
    def test_xfail_not_run():
        raise SystemExit(1)

    def test_imperative_xfail():
        pytest.xfail("not yet")

    def test_fails_with_output():
        print("some output")
        assert 1 == 2

    def test_subtests(subtests):
        for i in range(3):
            with subtests.test(msg="check", i=i):
                assert i != 1

    class TestUnittestStyle(unittest.TestCase):
        @classmethod
        def setUpClass(cls):
            cls.shared = 1

        def test_ok(self):
            self.assertEqual(self.shared, 1)

        def test_subtest(self):
            for i in range(2):
                with self.subTest(i=i):
                    self.assertEqual(i, 0)

        @unittest.skip("unittest skip")
        def test_skipped(self):
            pass

        @unittest.expectedFailure
        def test_expected(self):
            self.fail()
"""

TEST_FRAGILE = """
    def test_first(fragile):
        pass

    def test_second(fragile):
        pass
"""

TEST_LAST = """
    def test_last():
        pass
"""

TEST_MODULE_SKIP = """
    import pytest
    pytest.skip("the whole module", allow_module_level=True)

    def test_never():
        pass
"""

TEST_BROKEN = "import a_module_that_does_not_exist\n"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_project(
        tmp_path_factory.mktemp("pytest_project"),
        {
            **PYTEST_CONF,
            "tests/conftest.py": CONFTEST,
            "tests/test_fixtures.py": TEST_FIXTURES,
            "tests/test_marks.py": TEST_MARKS,
            "tests/test_fragile.py": TEST_FRAGILE,
            "tests/test_module_skip.py": TEST_MODULE_SKIP,
            "tests/test_broken.py": TEST_BROKEN,
            "tests/test_zz_last.py": TEST_LAST,
        },
    )


def test_ids_and_outcomes_match_pytest(project: Path, tmp_path: Path) -> None:
    expected = pytest_outcomes(project, tmp_path)
    listed = run_oneshot(project, "--list")
    ran = run_oneshot(project)
    assert ran.returncode == 0, ran.stderr
    ids = [e.test_id for e in listed.events]
    assert set(ids) == set(expected)
    assert "tests/test_fixtures.py::test_param[a-one]" in ids
    assert "tests/test_fixtures.py::TestGroup::test_falsy[None]" in ids
    assert outcomes(ran.events) == expected
    spot = {
        "tests/test_broken.py": "fail",
        "tests/test_module_skip.py": "skip",
        "tests/test_marks.py::test_xpass": "success",  # pytest: passed (not strict)
        "tests/test_marks.py::test_xpass_strict": "fail",
        "tests/test_marks.py::test_xfail_not_run": "xfail",
        "tests/test_marks.py::test_subtests": "fail",
        "tests/test_fragile.py::test_second": "fail",  # the module fixture's teardown
        "tests/test_fixtures.py::test_teardown_error": "fail",
    }
    assert {k: expected[k] for k in spot} == spot


def test_attachments_carry_output_reasons_and_subtests(project: Path) -> None:
    ran = run_oneshot(project)
    fails = collect_files(ran.events, "tests/test_marks.py::test_fails_with_output")
    assert fails["stdout"] == b"some output\n"
    assert b"assert 1 == 2" in fails["traceback"]
    reason = collect_files(ran.events, "tests/test_marks.py::test_skip_mark")["reason"]
    assert reason == b"never"
    assert collect_files(ran.events, "tests/test_marks.py::test_skip_inside")["reason"] == (
        b"decided at run time"
    )
    subtests = collect_files(ran.events, "tests/test_marks.py::test_subtests")
    assert "traceback [check] (i=1)" in subtests
    unittest_subtests = collect_files(
        ran.events, "tests/test_marks.py::TestUnittestStyle::test_subtest"
    )
    assert "traceback (i=1)" in unittest_subtests
    broken = collect_files(ran.events, "tests/test_broken.py")["traceback"]
    assert b"a_module_that_does_not_exist" in broken
    assert b"seen" not in collect_files(ran.events, "tests/test_fixtures.py::test_capsys").get(
        "stdout", b""
    )


def test_fixtures_live_across_batches_and_fall_when_no_longer_needed(project: Path) -> None:
    with WorkerProcess(project) as worker:
        ready = worker.ready()
        assert ready.fields["framework"] == "pytest"
        worker.run(["tests/test_fixtures.py::test_session_fixture"])
        worker.run(["tests/test_fragile.py::test_first"])
        events = worker.run(["tests/test_fixtures.py::test_session_made_once"])
        made = collect_files(events, "tests/test_fixtures.py::test_session_made_once")
        assert made["stdout"] == b"made 1 times\n"
        # Moving on to another module tore down test_fragile.py's fixture, whose
        # teardown fails: reported against the module, not a test.
        assert outcomes(events) == {
            "tests/test_fragile.py (teardown)": "fail",
            "tests/test_fixtures.py::test_session_made_once": "success",
        }
        again = worker.run(
            ["tests/test_fragile.py::test_first", "tests/test_fragile.py::test_first"]
        )
        assert [e.status.wire_name for e in again if e.status.is_final] == ["success", "success"]
        assert worker.quit() == 0
        assert outcomes(worker.events)["tests/test_fragile.py (teardown)"] == "fail"


def test_pdb_in_a_pytest_test(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        {
            **PYTEST_CONF,
            "tests/test_debug.py": """
                def test_debug():
                    value = 1
                    breakpoint()
                    assert value == 2
            """,
        },
    )
    with WorkerProcess(tmp_path) as worker:
        worker.ready()
        worker.send(RunTests(("tests/test_debug.py::test_debug",)))
        assert worker.wait_for("stdin").fields == {"test_id": "tests/test_debug.py::test_debug"}
        assert b"(Pdb)" in worker.stdout
        worker.stdin(b"value = 2\n")
        worker.wait_for("stdin")
        worker.stdin(b"continue\n")
        worker.wait_for("done")
        assert outcomes(worker.events) == {"tests/test_debug.py::test_debug": "success"}
        assert worker.quit() == 0


def test_a_broken_conftest_is_an_error_not_a_hang(tmp_path: Path) -> None:
    write_project(
        tmp_path, {**PYTEST_CONF, "conftest.py": "raise ImportError('broken conftest')\n"}
    )
    with WorkerProcess(tmp_path) as worker:
        error = worker.wait_for("error")
        assert "pytest stopped before running tests" in error.fields["message"]
        assert worker.wait_exit() == 2
        assert b"broken conftest" in worker.stderr + worker.stdout


def test_xdist_in_addopts_does_not_distribute_inside_a_worker(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        {
            "pytest.ini": "[pytest]\naddopts = -n 2\n",
            "tests/test_x.py": "def test_a():\n    pass\n\ndef test_b():\n    assert 0\n",
        },
    )
    ran = run_oneshot(tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert outcomes(ran.events) == {
        "tests/test_x.py::test_a": "success",
        "tests/test_x.py::test_b": "fail",
    }


def test_ids_subunit_cannot_carry_run_by_the_id_the_controller_received(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        {
            "pytest.ini": "[pytest]\n"
            "disable_test_id_escaping_and_forfeit_all_rights_to_community_support = true\n",
            "tests/test_odd.py": """
                import pytest

                @pytest.mark.parametrize("value", ["\\udcff", "\\x00", "plain"])
                def test_param(value):
                    pass
            """,
        },
    )
    with WorkerProcess(tmp_path) as worker:
        worker.ready()
        listed = worker.list()
        assert sorted(listed) == [
            "tests/test_odd.py::test_param[\\udcff]",
            "tests/test_odd.py::test_param[\\x00]",
            "tests/test_odd.py::test_param[plain]",
        ]
        assert outcomes(worker.run(listed)) == dict.fromkeys(listed, "success")
        assert worker.quit() == 0


def test_reading_stdin_while_collecting_or_after_quit_is_end_of_input(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        {
            **PYTEST_CONF,
            "tests/conftest.py": """
                import pytest

                try:
                    ANSWER = input("config? ")
                except EOFError:
                    ANSWER = "end of input"

                @pytest.fixture(scope="session")
                def asks_at_teardown():
                    yield
                    input("still there? ")
            """,
            "tests/test_reads.py": """
                from tests.conftest import ANSWER

                def test_import_time_read(asks_at_teardown):
                    assert ANSWER == "end of input"
            """,
        },
    )
    # pytest's capture answers reads itself (OSError); without it they reach the worker.
    with WorkerProcess(tmp_path, ["--no-capture"]) as worker:
        worker.ready()
        test_id = "tests/test_reads.py::test_import_time_read"
        assert outcomes(worker.run([test_id])) == {test_id: "success"}
        assert worker.quit() == 0
        teardown = collect_files(worker.events, "<session> (teardown)")
        assert b"EOFError" in teardown["traceback"]
        assert "stdin" not in [control.kind for control in worker.controls]


PYTEST_INTERRUPTS = """
    import os
    import signal
    import time

    import pytest

    LOG = []

    @pytest.fixture(scope="module")
    def shared():
        LOG.append("module fixture")
        yield

    @pytest.fixture
    def own(request):
        yield
        LOG.append("teardown " + request.node.name)

    def test_raises(shared, own):
        raise KeyboardInterrupt

    def test_signal(shared, own):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(30)

    def test_plain(shared, own):
        print(LOG)

    def test_exit(shared):
        pytest.exit("enough of this")

    def test_never(shared):
        pass
"""


def test_keyboard_interrupt_and_pytest_exit_fail_their_test(tmp_path: Path) -> None:
    write_project(tmp_path, {**PYTEST_CONF, "tests/test_interrupts.py": PYTEST_INTERRUPTS})
    ids = [f"tests/test_interrupts.py::{name}" for name in ("test_raises", "test_signal")]
    plain, stop, never = (
        f"tests/test_interrupts.py::{name}" for name in ("test_plain", "test_exit", "test_never")
    )
    with WorkerProcess(tmp_path) as worker:
        worker.ready()
        events = worker.run([*ids, plain])
        assert outcomes(events) == {ids[0]: "fail", ids[1]: "fail", plain: "success"}
        assert b"KeyboardInterrupt" in collect_files(events, ids[0])["traceback"]
        assert b"os.kill" in collect_files(events, ids[1])["traceback"]
        assert collect_files(events, plain)["stdout"] == (
            b"['module fixture', 'teardown test_raises', 'teardown test_signal']\n"
        )
        worker.send(RunTests((stop, never)))
        error = worker.wait_for("error")
        assert error.fields["test_id"] == stop
        assert error.fields["exit"] == 4
        assert "enough of this" in error.fields["message"]
        assert worker.wait_exit() == 4
        assert outcomes(worker.events)[stop] == "fail"
        assert never not in outcomes(worker.events)
        reason = collect_files(worker.events, stop)["reason"]
        assert (
            reason == b"pytest.exit() in " + stop.encode() + b": enough of this; the worker stops."
        )


def test_a_keyboard_interrupt_under_pytest_one_shot_fails_its_test_and_stops(
    tmp_path: Path,
) -> None:
    write_project(tmp_path, {**PYTEST_CONF, "tests/test_interrupts.py": PYTEST_INTERRUPTS})
    load_list = tmp_path / "ids"
    load_list.write_text(
        "tests/test_interrupts.py::test_raises\ntests/test_interrupts.py::test_plain\n"
    )
    ran = run_oneshot(tmp_path, "--load-list", str(load_list))
    assert ran.returncode == 130, ran.stderr
    assert outcomes(ran.events) == {"tests/test_interrupts.py::test_raises": "fail"}
    assert "KeyboardInterrupt" in ran.stderr


def test_a_controller_gone_under_pytest_is_exit_3_not_0(tmp_path: Path) -> None:
    write_project(tmp_path, {**PYTEST_CONF, "tests/test_x.py": "def test_a():\n    pass\n"})
    with WorkerProcess(tmp_path) as worker:
        worker.ready()
        worker.close_results()
        worker.send(RunTests(("tests/test_x.py::test_a",)))
        assert worker.wait_exit() == 3


def test_cache_options_in_addopts_work_and_choose_no_tests(tmp_path: Path) -> None:
    project = write_project(
        tmp_path / "project",
        {
            "pytest.ini": "[pytest]\naddopts = --ff --nf --lf --lfnf=none --sw --cache-clear\n",
            "tests/test_cached.py": """
                def test_a_fails():
                    assert False

                def test_b_uses_the_cache(cache):
                    cache.set("proctor/probe", 42)
                    assert cache.get("proctor/probe", None) == 42

                def test_c_after_a_failure():
                    pass
            """,
        },
    )
    capture_dir = tmp_path / "capture"
    capture_dir.mkdir()
    ids = [f"tests/test_cached.py::{name}" for name in ("test_a_fails", "test_b_uses_the_cache")]
    ids.append("tests/test_cached.py::test_c_after_a_failure")
    for _ in range(2):  # the second time, a shared cache would hold test_a's failure
        with WorkerProcess(project, ["--capture-dir", str(capture_dir)]) as worker:
            worker.ready()
            assert sorted(worker.list()) == ids  # --lf --lfnf=none deselected nothing
            events = worker.run(ids)
            assert outcomes(events) == dict(zip(ids, ["fail", "success", "success"], strict=True))
            assert worker.quit() == 0
    assert not (project / ".pytest_cache").exists()
    assert not list(capture_dir.iterdir()), "the worker's cache is removed at exit"


def test_an_id_under_a_module_only_this_worker_failed_to_collect_fails_with_the_error(
    tmp_path: Path,
) -> None:
    write_project(
        tmp_path,
        {
            **PYTEST_CONF,
            "tests/test_flaky.py": """
                import os

                if os.environ.get("BREAK_IMPORT"):
                    raise ImportError("cannot import in this worker")

                def test_x():
                    pass
            """,
        },
    )
    test_id = "tests/test_flaky.py::test_x"
    with WorkerProcess(tmp_path, env={"BREAK_IMPORT": "1"}) as worker:
        worker.ready()
        events = worker.run([test_id])
        assert outcomes(events) == {test_id: "fail"}
        files = collect_files(events, test_id)
        assert b"suites differ between workers" in files["reason"]
        assert b"collecting 'tests/test_flaky.py'" in files["reason"]
        assert b"cannot import in this worker" in files["traceback"]
        assert worker.quit() == 0
