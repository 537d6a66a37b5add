"""``proctor run --rerun-failures N`` with real worker processes on a generated project:
a test that fails on its first attempt only passes on the rerun, the run passes and
says "1 flaky", the store keeps both attempts, and ``proctor flaky`` names the test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from proctor.store.model import RETRIED_TAG
from proctor.store.opening import open_store
from tests.runner.projects import UNITTEST_CONF, worker_env, write_project

pytestmark = pytest.mark.slow

FLIP = "tests.test_flip.Flip.test_fails_first"
PROJECT = {
    **UNITTEST_CONF,
    "tests/test_flip.py": """
        import os, unittest

        MARK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "attempted")

        class Flip(unittest.TestCase):
            def test_fails_first(self):
                if not os.path.exists(MARK):
                    open(MARK, "w").close()
                    self.fail("the first attempt fails")

            def test_fine(self):
                pass
    """,
}


def _proctor(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "proctor", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env=worker_env(),
        check=False,
    )


def _git(root: Path, *args: str) -> None:
    identity = ["-c", "user.name=Proctor Test", "-c", "user.email=test@example.invalid"]
    subprocess.run(["git", *identity, *args], cwd=root, check=True, capture_output=True)


def test_a_test_passing_on_its_rerun_passes_the_run_and_is_named_flaky(tmp_path: Path) -> None:
    root = write_project(tmp_path, PROJECT)
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "a flaky test")  # flakiness is judged per commit

    done = _proctor(root, "run", "--rerun-failures", "2", "--no-color")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed, 0 failed, 0 skipped, 1 flaky" in done.stdout
    assert f"{FLIP} failed; running it again (2 of 3)" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr

    store = open_store(str(root / ".proctor"), create=False)
    try:
        latest = store.latest_run()
        assert latest is not None
        attempts = [r for r in store.records(latest.id, attachments=False) if r.test_id == FLIP]
        assert [r.status.wire_name for r in attempts] == ["fail", "success"]
        assert "attempt-2" in attempts[1].tags
        assert RETRIED_TAG in attempts[0].tags
        assert latest.metadata.git_dirty is not True
        # The stored run's outcome is the final attempts', as the run's was.
        assert latest.succeeded
        assert (latest.counts.passed, latest.counts.failed) == (2, 0)
    finally:
        store.close()
    last = _proctor(root, "last")
    assert last.returncode == 0, last.stdout + last.stderr

    flaky = _proctor(root, "flaky", "--json")
    assert flaky.returncode == 0, flaky.stderr
    tests = {test["id"]: test for test in json.loads(flaky.stdout)["tests"]}
    assert tests[FLIP]["verdict"] == "flaky"
    assert list(tests) == [FLIP]
    shown = _proctor(root, "flaky")
    assert FLIP in shown.stdout
