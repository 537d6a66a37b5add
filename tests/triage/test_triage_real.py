"""`proctor run` stores signed failures; `triage`, `flaky` and `last` read them
(real runs of a generated project, in a real git checkout)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.runner.projects import UNITTEST_CONF, worker_env, write_project

pytestmark = pytest.mark.slow

SUITE = {
    **UNITTEST_CONF,
    "shop/__init__.py": "",
    "shop/config.py": """
        def setting(settings, name):
            return settings[name]
    """,
    "tests/test_shop.py": """
        import os, unittest
        from shop import config

        class Shop(unittest.TestCase):
            def test_price(self): config.setting({}, "price")
            def test_tax(self): config.setting({}, "tax")
            def test_fine(self): pass
            def test_flaky(self):
                if os.path.exists("flip"):
                    self.fail("flipped")
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
    subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


def test_runs_are_clustered_and_a_flaky_test_is_found(tmp_path: Path) -> None:
    root = write_project(tmp_path, SUITE)
    _git(root, "init", "-q", ".")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "shop")
    outputs = []
    for flip in (False, True, False):
        flag = root / "flip"
        if flip:
            flag.write_text("")
        elif flag.exists():
            flag.unlink()
        done = _proctor(root, "run", "-j", "2")
        assert done.returncode == 1, done.stderr
        outputs.append(done.stdout)
    # run's closing summary names the clusters: new in the first run, known after
    assert "NEW  2 failures: KeyError @ shop/config.py:setting" in outputs[0]
    assert "first seen in this run" in outputs[0]
    assert "NEW  1 failure: AssertionError @ tests/test_shop.py:test_flaky" in outputs[1]
    assert "also failed in 2 other runs since" in outputs[2]
    listing = _proctor(root, "triage", "--json")
    assert listing.returncode == 0, listing.stderr
    clusters = json.loads(listing.stdout)["clusters"]
    assert [(c["failures"], c["tests"], c["runs"]) for c in clusters] == [(6, 2, 3), (1, 1, 1)]
    assert clusters[0]["key"] == "KeyError @ shop/config.py:setting | return settings[name]"
    assert clusters[0]["state"] == "new"
    flaky = _proctor(root, "flaky", "--json")
    verdicts = {t["id"].rsplit(".", 1)[-1]: t for t in json.loads(flaky.stdout)["tests"]}
    assert verdicts["test_flaky"]["verdict"] == "flaky"
    assert verdicts["test_price"]["verdict"] == "broken"
    last = _proctor(root, "last")
    assert "also failed in 2 other runs since" in last.stdout
    assert clusters[0]["id"] in last.stdout
