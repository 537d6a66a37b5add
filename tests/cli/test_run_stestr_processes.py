"""stestr's ``run`` modes with real worker processes on generated projects:
``--pdb ID`` driving a real pdb through stdin, ``--isolated`` on a real order
dependency, ``--no-discover`` beside a module that cannot be imported, and
``--abbreviate`` against stestr's own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from proctor.store.opening import open_store
from tests.runner.projects import PYTEST_CONF, UNITTEST_CONF, worker_env, write_project

pytestmark = pytest.mark.slow

SUITE = {
    **UNITTEST_CONF,
    "tests/test_a.py": """
        import os, unittest

        STATE = []

        class A(unittest.TestCase):
            def test_1_leaves_state(self):
                STATE.append(os.getpid())

            def test_2_needs_a_clean_process(self):
                self.assertEqual(STATE, [])

            def test_3_debugged(self):
                import pdb; pdb.set_trace()
                x = 41
                self.assertEqual(x + 1, 42, "the debugger changed nothing")

            @unittest.skip("not today")
            def test_4_skipped(self):
                pass
    """,
}


def _run(root: Path, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "proctor", "run", *args],
        cwd=root,
        input=stdin,
        capture_output=True,
        timeout=120,
        env=worker_env(),
        check=False,
    )


def _last_run(root: Path) -> dict[str, str]:
    store = open_store(str(root / ".proctor"))
    try:
        latest = store.latest_run()
        assert latest is not None
        return {r.test_id: r.status.name.lower() for r in store.records(latest.id)}
    finally:
        store.close()


@pytest.mark.parametrize(
    "spec", ["tests.test_a.A.test_3_debugged", "tests/test_a.py::A::test_3_debugged"]
)
def test_pdb_runs_one_test_in_the_foreground_under_a_real_debugger(
    tmp_path: Path, spec: str
) -> None:
    root = write_project(tmp_path, SUITE)
    # Step to the assertion, show x, then continue: pdb reads our stdin itself.
    done = _run(root, "--pdb", spec, stdin=b"n\np x * 2\nc\n")
    assert done.returncode == 0, done.stderr.decode()
    err = done.stderr.decode()
    assert "(Pdb)" in err
    assert "82" in err  # `p x * 2` was evaluated in the test's frame
    assert "tests.test_a.A.test_3_debugged" in done.stdout.decode()
    assert _last_run(root) == {"tests.test_a.A.test_3_debugged": "success"}


def test_pdb_stores_a_failure_the_debugger_caused(tmp_path: Path) -> None:
    root = write_project(tmp_path, SUITE)
    done = _run(root, "--pdb", "tests.test_a.A.test_3_debugged", stdin=b"n\n!x = 1\nc\n")
    assert done.returncode == 1
    assert "the debugger changed nothing" in done.stdout.decode()
    assert _last_run(root) == {"tests.test_a.A.test_3_debugged": "fail"}


def test_isolated_runs_each_test_in_a_process_of_its_own(tmp_path: Path) -> None:
    root = write_project(tmp_path, SUITE)
    shared = _run(root, "--serial", "-E", "debugged")
    assert shared.returncode == 1  # test_2 sees what test_1 left in the same process
    isolated = _run(root, "--isolated", "-E", "debugged")
    assert isolated.returncode == 0, isolated.stdout.decode()
    assert _last_run(root) == {
        "tests.test_a.A.test_1_leaves_state": "success",
        "tests.test_a.A.test_2_needs_a_clean_process": "success",
        "tests.test_a.A.test_4_skipped": "skip",
    }
    assert "2 passed, 0 failed, 1 skipped" in isolated.stdout.decode()


def test_no_discover_runs_one_test_without_importing_the_rest(tmp_path: Path) -> None:
    root = write_project(
        tmp_path,
        {
            **SUITE,
            "tests/broken/__init__.py": "",
            "tests/broken/test_b.py": "raise ImportError('never import me')\n",
        },
    )
    full = _run(root, "-E", "debugged")
    assert full.returncode == 1
    assert "never import me" in full.stdout.decode()
    done = _run(root, "--no-discover", "tests/test_a.py::A::test_1_leaves_state")
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    assert "never import me" not in done.stdout.decode() + done.stderr.decode()
    assert _last_run(root) == {"tests.test_a.A.test_1_leaves_state": "success"}


def test_no_discover_takes_a_pytest_node_id(tmp_path: Path) -> None:
    root = write_project(
        tmp_path,
        {
            **PYTEST_CONF,
            "tests/test_p.py": "def test_one():\n    pass\n\ndef test_two():\n    assert 0\n",
            "tests/test_broken.py": "raise ImportError('never import me')\n",
        },
    )
    done = _run(root, "--no-discover", "tests/test_p.py::test_one")
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    assert _last_run(root) == {"tests/test_p.py::test_one": "success"}


def test_abbreviate_prints_the_characters_stestr_prints(tmp_path: Path) -> None:
    root = write_project(
        tmp_path,
        {
            **UNITTEST_CONF,
            "tests/test_c.py": """
                import unittest

                class C(unittest.TestCase):
                    def test_a(self): pass
                    def test_b(self): self.fail("no")
                    @unittest.skip("later")
                    def test_c(self): pass
                    @unittest.expectedFailure
                    def test_d(self): self.fail("known")
            """,
        },
    )
    theirs = subprocess.run(
        [sys.executable, "-m", "stestr", "run", "--serial", "--abbreviate"],
        cwd=root,
        capture_output=True,
        timeout=120,
        env=worker_env(),
        check=False,
    )
    ours = _run(root, "--serial", "--abbreviate", "--no-color")
    assert ours.returncode == theirs.returncode == 1
    their_chars = theirs.stdout.decode().split("\n", 1)[0]
    our_chars = ours.stdout.decode().splitlines()[1]
    assert sorted(our_chars) == sorted(their_chars) == sorted(".F.S")


def test_pdb_takes_a_pytest_node_id(tmp_path: Path) -> None:
    root = write_project(
        tmp_path,
        {
            **PYTEST_CONF,
            "tests/test_p.py": """
                def test_dbg():
                    x = 41
                    breakpoint()
                    assert x + 1 == 42
            """,
            "tests/test_other.py": "def test_other():\n    pass\n",
        },
    )
    done = _run(root, "--pdb", "tests/test_p.py::test_dbg", stdin=b"p x * 2\nc\n")
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    assert "82" in done.stderr.decode()
    assert _last_run(root) == {"tests/test_p.py::test_dbg": "success"}
