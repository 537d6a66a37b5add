"""What ``proctor run`` and ``proctor load`` keep, tested with real processes:
concurrent complete runs in one repository (SQLite and PostgreSQL), a
controller killed with SIGKILL, runs in which nothing ran, repositories that
cannot be opened or written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from proctor.store.opening import open_store
from proctor.wire.event import Status
from tests.runner.projects import UNITTEST_CONF, worker_env, write_project
from tests.store.conftest import (  # noqa: F401 - the fixtures a PostgreSQL URL needs
    SQL_BACKENDS,
    _url_for,
    postgres_schemas,
    postgres_url,
)

from .history_streams import events_for

pytestmark = pytest.mark.slow


@pytest.fixture(params=SQL_BACKENDS)
def repository_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty repository's URL on each persistent backend (as in tests/store)."""
    return _url_for(request.param, request, tmp_path / "repository")


def _proctor(
    root: Path, *args: str, stdin: bytes = b"", timeout: float = 120
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "proctor", *args],
        cwd=root,
        input=stdin,
        capture_output=True,
        timeout=timeout,
        env=worker_env(),
        check=False,
    )


def _spawn(root: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "proctor", *args],
        cwd=root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=worker_env(),
    )


# -- concurrent complete runs


def test_concurrent_complete_loads_keep_every_failure(repository_url: str, tmp_path: Path) -> None:
    """8 (PostgreSQL) or 4 (SQLite) ``load --complete`` at once, twice: each
    run has the same 10 failures, and ``failing`` lists all 10 after each round
    (finishing "forget every test but mine" used to leave a few, or none)."""
    from proctor.wire import v2

    tests = 10_000
    failing = {f"pkg.test_{i:05d}" for i in range(0, tests, tests // 10)}
    outcomes = {
        f"pkg.test_{i:05d}": Status.FAIL if f"pkg.test_{i:05d}" in failing else Status.SUCCESS
        for i in range(tests)
    }
    stream = tmp_path / "run.v2"
    stream.write_bytes(v2.encode_many(events_for(outcomes, seconds=dict.fromkeys(outcomes, 0.001))))
    loaders = 8 if repository_url.startswith("postgresql") else 4
    open_store(repository_url).close()
    for _ in range(2):
        children = [
            _spawn(tmp_path, "load", "--complete", "--repository", repository_url, str(stream))
            for _ in range(loaders)
        ]
        for child in children:
            _, err = child.communicate(timeout=300)
            assert child.returncode == 1, err.decode()  # 1: the run it stored failed
        listed = _proctor(tmp_path, "failing", "--list", "--repository", repository_url)
        assert sorted(listed.stdout.decode().split()) == sorted(failing)
    with open_store(repository_url) as store:
        runs = store.runs()
        assert len(runs) == 2 * loaders
        assert all(run.finished and not run.interrupted for run in runs)


def test_two_runs_at_once_in_one_project_keep_every_failure(tmp_path: Path) -> None:
    body = "\n".join(
        f"    def test_{i:04d}(self): self.assertTrue({i % 100 != 7})" for i in range(1000)
    )
    root = write_project(
        tmp_path,
        {
            **UNITTEST_CONF,
            "tests/test_many.py": f"import unittest\n\nclass Many(unittest.TestCase):\n{body}\n",
        },
    )
    failing = sorted(f"tests.test_many.Many.test_{i:04d}" for i in range(7, 1000, 100))
    for _ in range(2):
        children = [_spawn(root, "run", "-j", "1") for _ in range(2)]
        for child in children:
            _, err = child.communicate(timeout=300)
            assert child.returncode == 1, err.decode()
        listed = _proctor(root, "failing", "--list")
        assert listed.stdout.decode().split() == failing
