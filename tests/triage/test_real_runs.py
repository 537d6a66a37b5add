"""Signatures of what ``proctor run`` really stores: assertion failures, a segfault,
an exit, a hang killed by ``--timeout``, under unittest and under pytest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from proctor.events import collect_records
from proctor.triage import Project, Signature, signature_of_record
from proctor.wire.v2 import decode
from tests.runner.projects import PYTEST_CONF, UNITTEST_CONF, worker_env, write_project

pytestmark = pytest.mark.slow

SHOP = {
    "shop/__init__.py": "",
    "shop/cart.py": """
        def total(prices, items):
            return sum(prices[item] for item in items)
    """,
}

UNITTEST_SUITE = {
    **UNITTEST_CONF,
    **SHOP,
    "tests/test_mixed.py": """
        import ctypes, os, time, unittest
        from shop import cart

        class Broken(unittest.TestCase):
            def test_total_a(self): cart.total({}, ["sku-%d" % os.getpid()])
            def test_total_b(self): cart.total({"a": 1}, ["a", "b"])
            def test_assert(self): self.assertEqual(os.getpid(), 0)
            def test_segfault(self): ctypes.string_at(0)
            def test_exit(self): os._exit(7)
            def test_hang(self): time.sleep(60)
    """,
}

PYTEST_SUITE = {
    **PYTEST_CONF,
    **SHOP,
    "tests/test_cart.py": """
        import os
        from shop import cart

        def test_total_a():
            cart.total({}, ["sku-%d" % os.getpid()])

        def test_total_b():
            cart.total({"a": 1}, ["a", "b"])
    """,
}


def _signatures(root: Path, *args: str) -> dict[str, Signature]:
    done = subprocess.run(
        [sys.executable, "-m", "proctor", "run", "--subunit", "-j", "2", *args],
        cwd=root,
        capture_output=True,
        timeout=120,
        env=worker_env(),
        check=False,
    )
    assert done.returncode == 1, done.stderr.decode()
    project = Project((str(root),))
    found = {}
    for record in collect_records(decode(done.stdout)):
        signature = signature_of_record(record, project=project)
        if signature is not None:
            found[record.test_id.rsplit(".", 1)[-1].rsplit("::", 1)[-1]] = signature
    return found


def test_signatures_of_a_unittest_run_with_casualties(tmp_path: Path) -> None:
    got = _signatures(write_project(tmp_path, UNITTEST_SUITE), "--timeout", "3")
    assert set(got) == {
        "test_total_a",
        "test_total_b",
        "test_assert",
        "test_segfault",
        "test_exit",
        "test_hang",
    }
    assert got["test_total_a"] == got["test_total_b"]
    assert got["test_total_a"].key == (
        "KeyError @ shop/cart.py:<anonymous> | return sum(prices[item]for item in items)"
    )
    assert got["test_assert"].key.startswith("AssertionError @ tests/test_mixed.py:test_assert |")
    assert (got["test_segfault"].kind, got["test_segfault"].key) == (
        "crash",
        "crash: SIGSEGV: Segmentation fault @ tests/test_mixed.py:test_segfault",
    )
    assert got["test_exit"].key == "crash: exit 7"
    assert (got["test_hang"].kind, got["test_hang"].key) == (
        "timeout",
        "timeout @ tests/test_mixed.py:test_hang",
    )


def test_a_pytest_suite_signs_like_the_unittest_one(tmp_path: Path) -> None:
    got = _signatures(write_project(tmp_path, PYTEST_SUITE))
    assert got["test_total_a"] == got["test_total_b"]
    assert got["test_total_a"].key == (
        "KeyError @ shop/cart.py:<anonymous> | return sum(prices[item]for item in items)"
    )
