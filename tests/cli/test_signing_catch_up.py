"""Stored failures an older Proctor left unsigned, or signed under an older
algorithm, get signed a chunk at a time after `proctor load`, `import` and
`run` store a run (proctor.triage.recluster.catch_up), the command's output
and exit status unchanged but for one note."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from proctor.store import open_store
from proctor.store.model import RunMetadata
from proctor.triage.signature import ALGORITHM, Signature
from tests.runner.projects import UNITTEST_CONF, worker_env, write_project
from tests.triage.history import T0, fault, ok

from .test_history_load import JUNIT, load

OLD = Signature("frames-v0", "traceback", "old key", "0" * 16)


def _old_history(url: str) -> list[int]:
    """Two runs with 5 failures, each signed only under an older algorithm."""
    with open_store(url, create=True) as store:
        for day, records in enumerate(
            [
                [fault("a", "get"), fault("b", "get"), fault("c", "put"), ok("d")],
                [fault("a", "get"), fault("c", "put", error="TypeError: t"), ok("b")],
            ]
        ):
            store.write_run(records, RunMetadata(started_ns=T0 + day))
        found = store.unsigned_failures(algorithm=OLD.algorithm)
        store.add_signatures([(run, seq, OLD) for run, seq, _ in found])
        return [info.id for info in store.runs()]


def _signed(url: str, runs: list[int]) -> list[tuple[str, str | None]]:
    with open_store(url) as store:
        return [(row.test_id, row.type) for row in store.failures(runs, algorithm=ALGORITHM)]


@pytest.fixture
def repo(tmp_path: Path) -> str:
    return str(tmp_path / ".proctor")


def test_load_signs_older_failures_after_storing_its_run_and_says_so(repo: str) -> None:
    runs = _old_history(repo)
    assert _signed(repo, runs) == []
    first = load(repo, stdin=JUNIT)
    assert first.exit_code == 1  # its failure, as ever
    assert first.stdout.startswith("Stored run 3: 3 tests, 1 passed, 1 failed, 1 skipped")
    assert first.stderr.splitlines() == [
        f"proctor: signed 5 older stored failures under {ALGORITHM}; "
        "every stored failure is signed now"
    ]
    assert sorted(_signed(repo, runs)) == [
        ("a", "KeyError"),
        ("a", "KeyError"),
        ("b", "KeyError"),
        ("c", "KeyError"),
        ("c", "TypeError"),
    ]
    with open_store(repo) as store:
        assert len(store.failures(runs, algorithm=OLD.algorithm)) == 5  # kept beside
    again = load(repo, stdin=JUNIT)
    assert again.exit_code == 1
    assert again.stderr == ""  # nothing left: no note
    shown = load(repo, "--format", "junit", stdin=JUNIT)
    assert "signed" not in shown.stderr


@pytest.mark.slow
def test_run_signs_older_failures_after_storing_its_run(tmp_path: Path) -> None:
    root = write_project(
        tmp_path / "project",
        {
            **UNITTEST_CONF,
            "tests/test_x.py": """
                import unittest
                class T(unittest.TestCase):
                    def test_ok(self): pass
                    def test_fails(self): self.assertEqual(1, 2)
            """,
        },
    )
    url = str(root / ".proctor")
    runs = _old_history(url)
    done = subprocess.run(
        [sys.executable, "-m", "proctor", "run", "--repository", url],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env=worker_env(),
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "1 passed, 1 failed" in done.stdout
    assert f"proctor: signed 5 older stored failures under {ALGORITHM}" in done.stderr
    assert "Traceback" not in done.stderr
    assert len(_signed(url, runs)) == 5
