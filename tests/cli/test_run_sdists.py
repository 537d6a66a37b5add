"""Whole ``proctor run`` results on real suites from PyPI sdists, against stestr and pytest.

The suites (the worker tests use the same ones, and share the download cache):

* testscenarios 0.7.0: unittest with ``load_tests`` (scenarios, doctests);
* fixtures 4.3.2: testtools tests with details;
* pluggy 1.6.0: a pytest suite (conftest fixtures, parametrisation). Its tests
  import the pluggy installed in this environment (pytest's), as they do
  under ``pytest``; both see the same failure of ``test_hookspec`` there.

For each: the set of ids and every outcome from ``proctor run --subunit`` on
two workers must equal the peer's, and in a random order too, except for tests
with a known order dependency: fixtures' ``LogHandlerTest.test_captures_logging``
passes only after another test has lowered the root logger's level (it fails
alone under plain ``python -m unittest``), so its outcome depends on which
tests shared its worker before it, under stestr (whose partitions vary from
run to run) as under Proctor; a shuffled run exists to expose such tests.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from proctor.wire.v2 import decode
from tests.runner.projects import outcomes, pytest_outcomes, stestr_outcomes, worker_env
from tests.runner.test_worker_sdists import same_but_order_dependent as _same_but_order_dependent
from tests.runner.test_worker_sdists import sdist

pytestmark = pytest.mark.slow

UNITTEST_LOCATION = ("--test-path", "./tests", "--top-dir", ".")


def proctor_outcomes(root: Path, *args: str) -> tuple[int, dict[str, str]]:
    done = subprocess.run(
        [sys.executable, "-m", "proctor", "run", "--subunit", "--no-store", *args],
        cwd=root,
        capture_output=True,
        timeout=300,
        env=worker_env(),
        check=False,
    )
    assert done.stdout, done.stderr.decode()
    return done.returncode, outcomes(decode(done.stdout))


@pytest.mark.parametrize(
    ("name", "version", "minimum"), [("testscenarios", "0.7.0", 30), ("fixtures", "4.3.2", 100)]
)
def test_unittest_suites_give_stestrs_results(
    name: str, version: str, minimum: int, tmp_path: Path
) -> None:
    root = sdist(name, version, tmp_path)
    expected = stestr_outcomes(root, *UNITTEST_LOCATION)
    assert len(expected) >= minimum, "stestr ran the suite"
    code, got = proctor_outcomes(root, *UNITTEST_LOCATION, "-j", "2")
    _same_but_order_dependent(got, expected)
    assert code == (0 if all(s in ("success", "skip", "xfail") for s in got.values()) else 1)
    _, shuffled = proctor_outcomes(root, *UNITTEST_LOCATION, "-j", "2", "--random")
    _same_but_order_dependent(shuffled, expected)


def test_a_pytest_suite_gives_pytests_results(tmp_path: Path) -> None:
    root = sdist("pluggy", "1.6.0", tmp_path)
    expected = pytest_outcomes(root, tmp_path / "scratch")
    assert len(expected) >= 100, "pytest ran the suite"
    code, got = proctor_outcomes(root, "-j", "2")
    assert got == expected
    assert code == (0 if all(s in ("success", "skip", "xfail") for s in got.values()) else 1)
    _, shuffled = proctor_outcomes(root, "-j", "2", "--random")
    _same_but_order_dependent(shuffled, expected)
