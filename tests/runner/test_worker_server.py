"""Real worker processes in server mode, driven through the protocol like the controller.

Each test starts ``python -m proctor.worker --serve`` on a generated project, so
they are all marked slow.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from proctor.runner.protocol import Quit, RunTests
from proctor.wire.event import Status
from tests.runner.projects import (
    ODD_ID_PREFIX,
    ODD_IDS,
    UNITTEST_CONF,
    WorkerProcess,
    collect_files,
    outcomes,
    run_oneshot,
    write_project,
)

pytestmark = pytest.mark.slow

P = "tests.test_main."

MAIN = """
    import ctypes
    import logging
    import os
    import subprocess
    import sys
    import time
    import unittest

    LOG = []

    class Fixtures(unittest.TestCase):
        @classmethod
        def setUpClass(cls):
            print("class set up")
            LOG.append("setUpClass")

        @classmethod
        def tearDownClass(cls):
            raise RuntimeError("tearDownClass failed")

        def test_count(self):
            print("setUpClass ran", LOG.count("setUpClass"), "times")

        def test_other(self):
            pass

    class Behaviour(unittest.TestCase):
        def test_ok(self):
            print("to stdout")
            print("to stderr", file=sys.stderr)
            os.write(1, b"raw fd\\n")
            logging.getLogger("app").warning("logged")

        def test_fail(self):
            self.assertEqual(1, 2)

        def test_subtests(self):
            for i in range(3):
                with self.subTest(i=i):
                    self.assertNotEqual(i, 1)

        def test_exit(self):
            print("last words")
            os._exit(7)

        def test_segfault(self):
            ctypes.string_at(0)

        def test_hang(self):
            time.sleep(60)

        def test_storm(self):
            for i in range(100_000):
                print("x" * 40, i)
            sys.stderr.write("e" * 2_000_000)
            os.write(1, bytes(range(256)) * 4096)
            subprocess.run([sys.executable, "-c", "print('from a child' * 1000)"], check=True)

        def test_child_outlives(self):
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
            os._exit(3)

        def test_fork_escapes(self):
            pid = os.fork()
            if pid == 0:
                sys.exit(0)  # unittest catches this: the child returns to the worker
            _, status = os.waitpid(pid, 0)
            print("child status", os.waitstatus_to_exitcode(status))

        def test_pdb(self):
            print("before the debugger")
            x = 41
            import pdb; pdb.set_trace()
            self.assertEqual(x, 42)

        def test_input(self):
            self.assertEqual(input("name? "), "bob")
            with self.assertRaises(EOFError):
                input()
"""

BROKEN = "import a_module_that_does_not_exist\n"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_project(
        tmp_path_factory.mktemp("server"),
        {**UNITTEST_CONF, "tests/test_main.py": MAIN, "tests/test_broken.py": BROKEN},
    )


@pytest.fixture
def worker(project: Path, tmp_path: Path) -> WorkerProcess:
    with WorkerProcess(project, ["--capture-dir", str(tmp_path)]) as process:
        yield process


def test_ready_list_run_and_quit(worker: WorkerProcess, tmp_path: Path) -> None:
    ready = worker.ready()
    assert ready.fields["pid"] == worker.process.pid
    assert ready.fields["protocol"] == 1
    assert ready.fields["framework"] == "unittest"
    assert ready.fields["dump_signal"] == "SIGUSR1"
    assert set(ready.fields["capture"]) == {"stdout", "stderr"}
    ids = worker.list()
    assert ready.fields["count"] == len(ids)
    assert ids[:3] == [  # discovery order: modules by name, then classes and methods
        "unittest.loader._FailedTest.tests.test_broken",
        P + "Behaviour.test_child_outlives",
        P + "Behaviour.test_exit",
    ]

    order = [P + "Behaviour.test_subtests", P + "Behaviour.test_ok", P + "Behaviour.test_fail"]
    events = worker.run([*order, "unittest.loader._FailedTest.tests.test_broken", "no.such.test"])
    finished = [e.test_id for e in events if e.status.is_final]
    assert finished == [*order, "unittest.loader._FailedTest.tests.test_broken", "no.such.test"]
    assert worker.controls[-1].fields == {"op": "run", "count": 5}
    assert outcomes(events) == {
        P + "Behaviour.test_subtests": "fail",
        P + "Behaviour.test_ok": "success",
        P + "Behaviour.test_fail": "fail",
        "unittest.loader._FailedTest.tests.test_broken": "fail",
        "no.such.test": "fail",
    }
    ok = collect_files(events, P + "Behaviour.test_ok")
    assert ok["stdout"] == b"to stdout\nraw fd\n" or ok["stdout"] == b"raw fd\nto stdout\n"
    assert ok["stderr"] == b"to stderr\n"
    assert b"WARNING  app: logged" in ok["log"]
    sub = collect_files(events, P + "Behaviour.test_subtests")
    assert list(sub) == ["traceback (i=1)"]
    broken = collect_files(events, "unittest.loader._FailedTest.tests.test_broken")
    assert b"No module named 'a_module_that_does_not_exist'" in broken["traceback"]

    worker.send_raw(b"this is not json\n")
    worker.run([])
    assert [c.kind for c in worker.controls[-2:]] == ["error", "done"]
    assert worker.quit() == 0
    assert not list(tmp_path.iterdir()), "capture files are removed at exit"


def test_class_fixtures_span_batches_and_teardown_failures_surface_at_quit(
    worker: WorkerProcess,
) -> None:
    worker.ready()
    worker.run([P + "Fixtures.test_other"])
    events = worker.run([P + "Fixtures.test_count"])
    assert collect_files(events, P + "Fixtures.test_count")["stdout"] == b"setUpClass ran 1 times\n"
    assert worker.quit() == 0
    assert outcomes(worker.events)["tearDownClass (tests.test_main.Fixtures)"] == "fail"
    teardown = [e for e in worker.events if e.test_id == "tearDownClass (tests.test_main.Fixtures)"]
    assert teardown[-1].runnable is False


def test_end_of_commands_is_a_quit(worker: WorkerProcess) -> None:
    worker.ready()
    worker.close_commands()
    assert worker.wait_exit() == 0


def test_a_crash_leaves_inprogress_and_the_tests_output(worker: WorkerProcess) -> None:
    ready = worker.ready()
    worker.send(
        RunTests((P + "Behaviour.test_ok", P + "Behaviour.test_exit", P + "Behaviour.test_fail"))
    )
    assert worker.wait_exit() == 7
    last = worker.events[-1]
    assert (last.test_id, last.status) == (P + "Behaviour.test_exit", Status.INPROGRESS)
    assert outcomes(worker.events) == {P + "Behaviour.test_ok": "success"}
    captured = Path(ready.fields["capture"]["stdout"]).read_bytes()
    assert captured == b"last words\n"


def test_a_segfault_leaves_a_python_traceback_on_stderr(worker: WorkerProcess) -> None:
    worker.ready()
    worker.send(RunTests((P + "Behaviour.test_segfault",)))
    assert worker.wait_exit() == -signal.SIGSEGV
    assert worker.events[-1].status is Status.INPROGRESS
    stderr = bytes(worker.stderr).decode()
    assert "Fatal Python error: Segmentation fault" in stderr
    assert 'test_main.py", line' in stderr
    assert "in test_segfault" in stderr


def test_the_dump_signal_shows_where_a_hung_test_is(worker: WorkerProcess) -> None:
    ready = worker.ready()
    worker.send(RunTests((P + "Behaviour.test_hang",)))
    deadline = time.monotonic() + 10
    while not worker.events or worker.events[-1].status is not Status.INPROGRESS:
        worker.pump(0.1)
        assert time.monotonic() < deadline
    time.sleep(0.2)  # let the test reach its sleep
    os.kill(ready.fields["pid"], signal.SIGUSR1)
    while b"in test_hang" not in worker.stderr:
        worker.pump(0.1)
        assert time.monotonic() < deadline, bytes(worker.stderr)
    assert worker.process.poll() is None, "a stack dump does not stop the worker"


def test_print_storms_never_corrupt_the_results(worker: WorkerProcess) -> None:
    worker.ready()
    events = worker.run([P + "Behaviour.test_storm", P + "Behaviour.test_ok"], timeout=60)
    assert outcomes(events) == {
        P + "Behaviour.test_storm": "success",
        P + "Behaviour.test_ok": "success",
    }
    files = collect_files(events, P + "Behaviour.test_storm")
    assert len(files["stderr"]) == 2_000_000
    assert files["stdout"].count(b"x" * 40) == 100_000
    assert bytes(range(256)) * 4096 in files["stdout"]
    assert b"from a child" in files["stdout"]
    assert not [e for e in events if e.test_id == "subunit.parser"]
    assert worker.stdout == b""
    assert worker.quit() == 0


def test_a_test_that_leaves_a_child_behind_does_not_hold_the_results_pipe(
    worker: WorkerProcess,
) -> None:
    worker.ready()
    worker.send(RunTests((P + "Behaviour.test_child_outlives",)))
    started = time.monotonic()
    assert worker.wait_exit(timeout=20) == 3
    assert time.monotonic() - started < 10, "results and output pipes closed with the worker"


def test_pdb_talks_to_the_controller_through_stdin(worker: WorkerProcess) -> None:
    worker.ready()
    test_id = P + "Behaviour.test_pdb"
    worker.send(RunTests((test_id,)))
    assert worker.wait_for("stdin").fields == {"test_id": test_id}
    assert b"before the debugger" in worker.stdout, "output goes live when a test reads stdin"
    assert b"(Pdb) " in worker.stdout
    worker.stdin(b"p x + 1\n")
    worker.wait_for("stdin")
    assert b"42" in worker.stdout
    worker.stdin(b"x = 42\n")
    worker.wait_for("stdin")
    worker.stdin(b"c\n")
    worker.wait_for("done")
    assert outcomes(worker.events) == {test_id: "success"}
    captured = collect_files(worker.events, test_id)["stdout"]
    assert captured.startswith(b"before the debugger\n")

    other = P + "Behaviour.test_input"
    worker.send(RunTests((other,)))
    worker.wait_for("stdin")
    worker.stdin(b"bo")  # input arrives in pieces
    worker.wait_for("stdin")
    worker.stdin(b"b\n")
    worker.wait_for("stdin")
    worker.stdin(b"")  # end of input
    worker.wait_for("done")
    assert outcomes(worker.events)[other] == "success"
    ok = worker.run([P + "Behaviour.test_ok"])
    assert "stdout" in collect_files(ok, P + "Behaviour.test_ok"), "capture is back on"
    assert worker.quit() == 0


def test_no_capture_lets_output_through_live(project: Path) -> None:
    with WorkerProcess(project, ["--no-capture"]) as worker:
        ready = worker.ready()
        assert ready.fields["capture"] is None
        events = worker.run([P + "Behaviour.test_ok"])
        assert outcomes(events) == {P + "Behaviour.test_ok": "success"}
        assert "stdout" not in collect_files(events, P + "Behaviour.test_ok")
        assert worker.quit() == 0
        assert b"to stdout" in worker.stdout
        assert b"to stderr" in worker.stderr


def test_a_forked_child_that_escapes_its_test_leaves_quietly(worker: WorkerProcess) -> None:
    worker.ready()
    ids = [P + "Behaviour.test_fork_escapes", P + "Behaviour.test_ok", P + "Behaviour.test_fail"]
    events = worker.run(ids)
    assert [e.test_id for e in events if e.status.is_final] == ids
    files = collect_files(events, P + "Behaviour.test_fork_escapes")
    assert files["stdout"] == b"child status 0\n"
    assert not [e for e in events if e.test_id == "subunit.parser"]
    assert worker.run([P + "Behaviour.test_ok"])[-1].status is Status.SUCCESS
    assert worker.quit() == 0


def test_ids_subunit_cannot_carry_run_by_the_id_the_controller_received(tmp_path: Path) -> None:
    project = write_project(tmp_path, {**UNITTEST_CONF, "tests/test_odd.py": ODD_IDS})
    with WorkerProcess(project) as worker:
        worker.ready()
        listed = worker.list()
        assert sorted(listed) == sorted(
            ODD_ID_PREFIX + suffix
            for suffix in ("(hash#x)", "(surrogate\\udcff)", "(nul\\x00)", "(plain)")
        )
        events = worker.run(listed)
        assert outcomes(events) == dict.fromkeys(listed, "success")
        assert worker.quit() == 0


READS_STDIN_OUTSIDE_TESTS = """
    import unittest

    try:
        ANSWER = input("config? ")
    except EOFError:
        ANSWER = "end of input"

    def tearDownModule():
        input("still there? ")  # after quit: EOFError at once, reported as the fixture's failure

    class T(unittest.TestCase):
        def test_import_time_read(self):
            self.assertEqual(ANSWER, "end of input")
"""


def test_reading_stdin_outside_a_run_is_end_of_input_not_a_hang(tmp_path: Path) -> None:
    project = write_project(
        tmp_path, {**UNITTEST_CONF, "tests/test_reads.py": READS_STDIN_OUTSIDE_TESTS}
    )
    with WorkerProcess(project) as worker:
        worker.ready()
        events = worker.run(["tests.test_reads.T.test_import_time_read"])
        assert outcomes(events) == {"tests.test_reads.T.test_import_time_read": "success"}
        assert worker.quit() == 0
        teardown = collect_files(worker.events, "tearDownModule (tests.test_reads)")
        assert b"EOFError" in teardown["traceback"]
        assert "stdin" not in [control.kind for control in worker.controls]
        assert b"config? " in worker.stdout


INTERRUPTS = """
    import os
    import signal
    import time
    import unittest

    LOG = []

    class T(unittest.TestCase):
        @classmethod
        def setUpClass(cls):
            LOG.append("setUpClass")

        def setUp(self):
            self.addCleanup(LOG.append, "cleanup " + self._testMethodName)
            if self._testMethodName == "test_in_setup":
                raise KeyboardInterrupt

        def tearDown(self):
            LOG.append("tearDown " + self._testMethodName)

        def test_raises(self):
            raise KeyboardInterrupt

        def test_signal(self):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(30)

        def test_in_setup(self):
            pass

        def test_plain(self):
            print(LOG)
"""


def test_a_keyboard_interrupt_fails_its_test_and_the_worker_goes_on(tmp_path: Path) -> None:
    project = write_project(tmp_path, {**UNITTEST_CONF, "tests/test_interrupts.py": INTERRUPTS})
    names = ["test_raises", "test_signal", "test_in_setup", "test_plain"]
    ids = [f"tests.test_interrupts.T.{name}" for name in names]
    with WorkerProcess(project) as worker:
        worker.ready()
        events = worker.run(ids)
        assert outcomes(events) == dict(zip(ids, ["fail", "fail", "fail", "success"], strict=True))
        assert worker.controls[-1].fields == {"op": "run", "count": 4}
        assert b"KeyboardInterrupt" in collect_files(events, ids[0])["traceback"]
        assert b"in test_signal" in collect_files(events, ids[1])["traceback"]
        # The class stayed set up; unittest skips tearDown and cleanups after an
        # interrupt, the worker runs them (tearDown only after the test method).
        assert (
            collect_files(events, ids[3])["stdout"]
            == repr(
                [
                    "setUpClass",
                    *("tearDown test_raises", "cleanup test_raises"),
                    *("tearDown test_signal", "cleanup test_signal"),
                    "cleanup test_in_setup",
                ]
            ).encode()
            + b"\n"
        )
        assert worker.quit() == 0


def test_a_keyboard_interrupt_in_one_shot_mode_fails_its_test_and_stops(tmp_path: Path) -> None:
    project = write_project(tmp_path, {**UNITTEST_CONF, "tests/test_interrupts.py": INTERRUPTS})
    load_list = tmp_path / "ids"
    load_list.write_text(
        "tests.test_interrupts.T.test_raises\ntests.test_interrupts.T.test_plain\n"
    )
    ran = run_oneshot(project, "--load-list", str(load_list))
    assert ran.returncode == 130
    assert outcomes(ran.events) == {"tests.test_interrupts.T.test_raises": "fail"}
    assert "KeyboardInterrupt" in ran.stderr


FLAKY_IMPORT = """
    import os
    import unittest

    if os.environ.get("BREAK_IMPORT"):
        raise ImportError("cannot import in this worker")

    class T(unittest.TestCase):
        def test_x(self):
            pass
"""


def test_an_id_from_a_module_only_this_worker_failed_to_import_fails_with_the_error(
    tmp_path: Path,
) -> None:
    project = write_project(tmp_path, {**UNITTEST_CONF, "tests/test_flaky.py": FLAKY_IMPORT})
    test_id = "tests.test_flaky.T.test_x"  # as a worker that could import it listed it
    with WorkerProcess(project, env={"BREAK_IMPORT": "1"}) as worker:
        worker.ready()
        events = worker.run([test_id, "tests.test_other.T.test_y"])
        assert outcomes(events) == {test_id: "fail", "tests.test_other.T.test_y": "fail"}
        files = collect_files(events, test_id)
        assert b"the suites differ between workers" in files["reason"].lower()
        assert b"importing 'tests.test_flaky'" in files["reason"]
        assert b"cannot import in this worker" in files["traceback"]
        other = collect_files(events, "tests.test_other.T.test_y")
        assert other == {"reason": b"No test with id 'tests.test_other.T.test_y' was found."}
        assert worker.quit() == 0


LEAVES_A_THREAD = """
    import atexit
    import os
    import threading
    import time
    import unittest

    atexit.register(lambda: open(os.environ["ATEXIT_MARKER"], "w").close())

    class T(unittest.TestCase):
        def test_starts_a_thread(self):
            threading.Thread(target=time.sleep, args=(600,), name="left-behind").start()
"""


def test_the_worker_exits_without_waiting_for_a_non_daemon_thread(tmp_path: Path) -> None:
    project = write_project(
        tmp_path / "project", {**UNITTEST_CONF, "tests/test_thread.py": LEAVES_A_THREAD}
    )
    marker = tmp_path / "atexit-ran"
    with WorkerProcess(project, env={"ATEXIT_MARKER": str(marker)}) as worker:
        worker.ready()
        events = worker.run(["tests.test_thread.T.test_starts_a_thread"])
        assert outcomes(events) == {"tests.test_thread.T.test_starts_a_thread": "success"}
        worker.send(Quit())
        assert worker.wait_exit(timeout=60) == 0  # not after the thread's 600 s
        assert marker.exists(), "the suite's atexit handlers still run"
        assert b"non-daemon thread(s) still running: left-behind" in worker.stderr
