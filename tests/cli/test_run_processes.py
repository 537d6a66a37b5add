"""``proctor run`` with real worker processes on generated projects.

Crashes (segfault, ``os._exit``), a hang under ``--timeout``, an import error,
a print storm, ``load_tests``, pytest fixtures and parametrisation, a debugger
fed through stdin, Ctrl-C sent to a real ``proctor run`` process, and
``--isolate`` on a real order dependency. Outcomes are read back from the
``--subunit`` stream or the repository, the way a user's tools would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from proctor.cli.main import main
from proctor.store.opening import open_store
from proctor.wire.v2 import decode
from tests.runner.projects import PYTEST_CONF, UNITTEST_CONF, outcomes, worker_env, write_project

pytestmark = pytest.mark.slow

MIXED = {
    **UNITTEST_CONF,
    "tests/test_mixed.py": """
        import ctypes, os, sys, time, unittest

        class Fine(unittest.TestCase):
            def test_one(self): pass
            def test_two(self): print("two says hello")
            def test_three(self): self.skipTest("not today")

        class Broken(unittest.TestCase):
            def test_assert(self): self.assertEqual(1, 2)
            def test_segfault(self):
                os.write(1, b"last words\\n")
                ctypes.string_at(0)
            def test_exit(self): os._exit(7)
            def test_hang(self): time.sleep(60)

        class After(unittest.TestCase):
            def test_a(self): pass
            def test_b(self): pass
            def test_c(self): pass
    """,
    "tests/test_storm.py": """
        import sys, unittest

        class Storm(unittest.TestCase):
            def test_storm(self):
                for i in range(20000):
                    print("line", i, "x" * 60)
                    sys.stderr.write("err %d\\n" % i)
    """,
    "tests/test_import_error.py": "import no_such_module_here\n",
}


def _run(
    root: Path, *args: str, stdin: bytes = b"", timeout: float = 60
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "proctor", "run", *args],
        cwd=root,
        input=stdin,
        capture_output=True,
        timeout=timeout,
        env=worker_env(),
        check=False,
    )


def test_crashes_hangs_and_import_errors_fail_their_tests_and_nothing_else(tmp_path: Path) -> None:
    root = write_project(tmp_path, MIXED)
    done = _run(root, "--subunit", "--timeout", "3", "-j", "2")
    events = decode(done.stdout)
    got = outcomes(events)
    assert done.returncode == 1, done.stderr.decode()
    assert got["tests.test_mixed.Fine.test_one"] == "success"
    assert got["tests.test_mixed.Fine.test_three"] == "skip"
    for name in ("test_assert", "test_segfault", "test_exit", "test_hang"):
        assert got[f"tests.test_mixed.Broken.{name}"] == "fail"
    for name in ("test_a", "test_b", "test_c"):
        assert got[f"tests.test_mixed.After.{name}"] == "success"
    assert got["tests.test_storm.Storm.test_storm"] == "success"
    import_errors = {status for test_id, status in got.items() if "import_error" in test_id}
    assert import_errors == {"fail"}

    def text(test_id: str, name: str = "traceback") -> str:
        return b"".join(
            e.file_bytes for e in events if e.test_id == test_id and e.file_name == name
        ).decode()

    segv = text("tests.test_mixed.Broken.test_segfault")
    assert "killed by signal 11 (SIGSEGV)" in segv
    assert "Fatal Python error: Segmentation fault" in segv
    assert "test_mixed.py" in segv  # faulthandler's traceback names the test's frame
    assert "last words" in text("tests.test_mixed.Broken.test_segfault", "stdout")
    assert "exited with code 7" in text("tests.test_mixed.Broken.test_exit")
    hang = text("tests.test_mixed.Broken.test_hang")
    assert "Timed out: still running after 3s" in hang
    assert "in test_hang" in hang
    storm = text("tests.test_storm.Storm.test_storm", "stdout")
    assert storm.count("\n") == 20000


def test_the_plain_view_and_the_store_agree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_project(
        tmp_path,
        {
            **UNITTEST_CONF,
            "tests/test_a.py": """
        import unittest
        class A(unittest.TestCase):
            def test_ok(self): pass
            def test_bad(self): self.fail("nope")
    """,
        },
    )
    monkeypatch.chdir(root)
    assert main(["run", "-j", "2"]) == 1
    out = capsys.readouterr().out
    assert "tests.test_a.A.test_bad [" in out
    assert "AssertionError: nope" in out
    assert "1 passed, 1 failed, 0 skipped in" in out
    store = open_store(str(root / ".proctor"), create=False)
    try:
        assert store.failing_ids() == ["tests.test_a.A.test_bad"]
        latest = store.latest_run()
        assert latest is not None
        assert {r.test_id for r in store.records(latest.id)} == {
            "tests.test_a.A.test_ok",
            "tests.test_a.A.test_bad",
        }
    finally:
        store.close()


def test_load_tests_and_a_pytest_suite_with_fixtures_and_parameters(tmp_path: Path) -> None:
    unit = write_project(
        tmp_path / "unit",
        {
            **UNITTEST_CONF,
            "tests/test_lt.py": """
        import unittest
        class P(unittest.TestCase):
            def __init__(self, name, n=0):
                super().__init__(name); self.n = n
            def id(self): return super().id() + "(n=%d)" % self.n
            def test_even(self): self.assertEqual(self.n % 2, 0)
        def load_tests(loader, tests, pattern):
            suite = unittest.TestSuite()
            for n in range(4):
                suite.addTest(P("test_even", n))
            return suite
    """,
        },
    )
    done = _run(unit, "--subunit", "--no-store")
    got = outcomes(decode(done.stdout))
    assert got == {
        f"tests.test_lt.P.test_even(n={n})": ("success" if n % 2 == 0 else "fail") for n in range(4)
    }

    py = write_project(
        tmp_path / "py",
        {
            **PYTEST_CONF,
            "tests/conftest.py": """
        import pytest
        CALLS = []
        @pytest.fixture(scope="module")
        def resource():
            CALLS.append(1)
            yield len(CALLS)
    """,
            "tests/test_p.py": """
        import pytest
        @pytest.mark.parametrize("x", [1, 2, 3])
        def test_param(x, resource):
            assert x != 2
        @pytest.mark.xfail(reason="known")
        def test_xfail():
            assert False
        @pytest.mark.skip(reason="no")
        def test_skip():
            pass
        class TestK:
            def test_m(self, resource):
                assert resource >= 1
    """,
        },
    )
    done = _run(py, "--subunit", "--no-store", "-j", "2")
    got = outcomes(decode(done.stdout))
    assert got == {
        "tests/test_p.py::test_param[1]": "success",
        "tests/test_p.py::test_param[2]": "fail",
        "tests/test_p.py::test_param[3]": "success",
        "tests/test_p.py::test_xfail": "xfail",
        "tests/test_p.py::test_skip": "skip",
        "tests/test_p.py::TestK::test_m": "success",
    }
    assert done.returncode == 1


def test_a_debugger_gets_the_lines_piped_to_stdin(tmp_path: Path) -> None:
    root = write_project(
        tmp_path,
        {
            **UNITTEST_CONF,
            "tests/test_dbg.py": """
        import pdb, unittest
        class D(unittest.TestCase):
            def test_pdb(self):
                secret = 41 + 1
                pdb.set_trace()
                self.assertEqual(secret, 42)
            def test_input(self):
                self.assertEqual(input("name? "), "proctor")
    """,
        },
    )
    done = _run(root, "--serial", "--no-store", stdin=b"proctor\np secret\nc\n")
    out = done.stdout.decode()
    assert done.returncode == 0, out + done.stderr.decode()
    assert "(Pdb) " in out
    assert "42" in out
    assert "waits for input" not in out  # piped input: answered without a session
    assert "2 passed, 0 failed, 0 skipped" in out


def test_ctrl_c_keeps_the_finished_results_and_exits_130(tmp_path: Path) -> None:
    tests = "\n".join(f"    def test_{i:02d}(self): time.sleep(0.2)" for i in range(40))
    root = write_project(
        tmp_path,
        {
            **UNITTEST_CONF,
            "tests/test_slow.py": f"import time, unittest\nclass S(unittest.TestCase):\n{tests}\n",
        },
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "proctor", "run", "-j", "2"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=worker_env(),
    )
    try:
        assert process.stdout is not None
        seen = b""
        while seen.count(b" ... ok") < 6:
            line = process.stdout.readline()
            assert line, "proctor run ended early"
            seen += line
        process.send_signal(signal.SIGINT)
        rest, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    out = (seen + rest).decode()
    assert process.returncode == 130, out + err.decode()
    assert "Interrupted" in out
    assert "not run" in out
    store = open_store(str(root / ".proctor"), create=False)
    try:
        latest = store.latest_run()
        assert latest is not None
        kept = store.records(latest.id, attachments=False)
        assert 6 <= len([r for r in kept if r.status.wire_name == "success"]) < 40
    finally:
        store.close()
    assert _no_workers_left(root)


def _no_workers_left(root: Path) -> bool:
    """No process is left with this project's root on its command line."""
    time.sleep(0.2)
    return not any(
        str(root).encode() in _read(cmdline) for cmdline in Path("/proc").glob("*/cmdline")
    )


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def test_isolate_finds_the_test_that_pollutes_shared_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    many = "\n".join(f"    def test_{i:02d}(self): pass" for i in range(20))
    root = write_project(
        tmp_path,
        {
            **UNITTEST_CONF,
            "tests/state.py": "FLAGS = {}\n",
            "tests/test_a.py": f"""
import unittest
from tests import state
class A(unittest.TestCase):
{many}
    def test_10_pollute(self): state.FLAGS["dirty"] = True
""",
            "tests/test_z.py": """
import unittest
from tests import state
class Z(unittest.TestCase):
    def test_victim(self): self.assertNotIn("dirty", state.FLAGS)
""",
        },
    )
    monkeypatch.chdir(root)
    assert main(["run", "--serial"]) == 1
    capsys.readouterr()
    assert main(["run", "--isolate", "tests.test_z.Z.test_victim"]) == 1
    out = capsys.readouterr().out
    assert "fails when run after:\n  tests.test_a.A.test_10_pollute\n" in out
    assert os.path.isdir(root / ".proctor")
