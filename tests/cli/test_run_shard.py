"""``proctor run --shard K/N`` for real: worker processes on a generated project."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from proctor.store.opening import open_store
from proctor.wire.v2 import decode
from tests.runner.projects import UNITTEST_CONF, outcomes, worker_env, write_project

pytestmark = pytest.mark.slow

PROJECT = {
    **UNITTEST_CONF,
    **{
        f"tests/test_m{m}.py": "import time, unittest\nclass T(unittest.TestCase):\n"
        + "".join(
            f"    def test_{n}(self): time.sleep({0.02 if n == m else 0.001})\n" for n in range(6)
        )
        for m in range(4)
    },
}
ALL = {f"tests.test_m{m}.T.test_{n}" for m in range(4) for n in range(6)}


def _run(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "proctor", "run", *args],
        cwd=root,
        capture_output=True,
        timeout=120,
        env=worker_env(),
        check=False,
    )


def test_n_shards_run_a_disjoint_cover_of_the_suite_and_the_run_says_which(
    tmp_path: Path,
) -> None:
    root = write_project(tmp_path, PROJECT)
    assert _run(root, "-j", "1").returncode == 0  # the history the split is timed by
    ran: list[set[str]] = []
    for k in (1, 2, 3):
        done = _run(root, "--subunit", "--no-store", "-j", "1", "--shard", f"{k}/3")
        assert done.returncode == 0, done.stderr.decode()
        results = outcomes(decode(done.stdout))
        assert set(results.values()) == {"success"}
        ran.append(set(results))
    assert ran[0] | ran[1] | ran[2] == ALL
    assert sum(len(part) for part in ran) == len(ALL)
    # --list --shard shows the same part; a stored shard run is partial and says which.
    listed = _run(root, "--list", "--shard", "2/3")
    assert set(listed.stdout.decode().split()) == ran[1]
    assert _run(root, "-j", "1", "--shard", "2/3").returncode == 0
    store = open_store(str(root / ".proctor"), create=False)
    try:
        latest = store.latest_run()
        assert latest is not None
        assert latest.metadata.properties.get("shard") == "2/3"
        assert latest.metadata.partial
        assert {r.test_id for r in store.records(latest.id)} == ran[1]
    finally:
        store.close()


@pytest.mark.parametrize("value", ["0/2", "3/2", "2", "x/y"])
def test_a_bad_shard_is_a_usage_error_before_anything_runs(tmp_path: Path, value: str) -> None:
    root = write_project(tmp_path, PROJECT)
    done = _run(root, "--shard", value)
    assert done.returncode == 2
    err = done.stderr.decode()
    assert "--shard" in err
    assert "Traceback" not in err
    assert not (root / ".proctor").exists()


def test_a_part_with_no_tests_says_so_and_succeeds(tmp_path: Path) -> None:
    root = write_project(tmp_path, PROJECT)
    done = _run(root, "--no-store", "tests.test_m0.T.test_1$", "--shard", "2/2")
    assert done.returncode == 0, done.stderr.decode()
    assert "Shard 2/2: no tests in this part (1 selected for 2 parts)" in done.stderr.decode()
    assert _run(root, "--no-store", "nothing-matches", "--shard", "2/2").returncode == 5


def test_shard_and_an_exact_test_cannot_go_together(tmp_path: Path) -> None:
    root = write_project(tmp_path, PROJECT)
    done = _run(root, "--shard", "1/2", "--no-discover", "tests.test_m0.T.test_1")
    assert done.returncode == 2
    assert "--shard splits the suite; --no-discover names the test" in done.stderr.decode()
