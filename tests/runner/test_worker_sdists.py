"""Real open-source suites from PyPI sdists: the worker against stestr and pytest.

* testscenarios 0.7.0 and fixtures 4.3.2: unittest/testtools suites run by
  stestr (``load_tests`` with scenarios and doctests; fixtures' details);
* pluggy 1.6.0: a pytest suite (conftest fixtures, parametrisation).

Each sdist is fetched by the set-up step (``scripts/fetch_test_data.py``, run by
``scripts/test``) into ``.test-data/sdists`` (``PROCTOR_SDIST_CACHE`` names another
directory) and unpacked into the test's temporary directory. The worker runs
each suite twice: one-shot (the whole suite in one go), and as a server fed
the ids in small batches (what the controller does), which must not change a
single outcome. The batches are shuffled, except for fixtures: its
``LogHandlerTest.test_captures_logging`` depends on an earlier test lowering
the root logger's level (it fails alone under plain ``python -m unittest``).
"""

from __future__ import annotations

import os
import random
import tarfile
from pathlib import Path

import pytest

from tests.runner.projects import (
    WorkerProcess,
    outcomes,
    pytest_outcomes,
    run_oneshot,
    stestr_outcomes,
)

pytestmark = pytest.mark.slow


SDISTS = Path(__file__).resolve().parents[2] / ".test-data" / "sdists"
"""Where ``scripts/fetch_test_data.py`` (the set-up step of ``scripts/test``) puts them."""


def sdist(name: str, version: str, into: Path) -> Path:
    """The unpacked sdist of ``name==version``, fetched by the set-up step (no test
    needs the network)."""
    cache = Path(os.environ.get("PROCTOR_SDIST_CACHE", SDISTS))
    archive = cache / f"{name}-{version}.tar.gz"
    if not archive.is_file():
        pytest.fail(
            f"{archive} is missing: run `python scripts/fetch_test_data.py` (scripts/test "
            "does it in its set-up step) or point PROCTOR_SDIST_CACHE at the sdists"
        )
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / f"{name}-{version}"


ORDER_DEPENDENT = {"tests._fixtures.test_logger.LogHandlerTest.test_captures_logging"}
"""Tests whose outcome depends on the order tests ran in. fixtures' test passes only
after another test has lowered the root logger's level; stestr's own parallel runs
report it either way, so the reference itself varies."""


def same_but_order_dependent(got: dict[str, str], expected: dict[str, str]) -> None:
    assert set(got) == set(expected)
    differing = {test_id for test_id in got if got[test_id] != expected[test_id]}
    assert differing <= ORDER_DEPENDENT, {i: (got[i], expected[i]) for i in differing}


def batched(
    root: Path, *args: str, shuffle: bool = True, size: int = 7
) -> tuple[list[str], dict[str, str]]:
    """Ids listed by a server worker, and outcomes when run in (shuffled) batches."""
    with WorkerProcess(root, args) as worker:
        worker.ready()
        ids = worker.list()
        order = list(ids)
        if shuffle:
            random.Random(1).shuffle(order)
        for start in range(0, len(order), size):
            worker.run(order[start : start + size], timeout=120)
        assert worker.quit() == 0
        return ids, outcomes(worker.events)


@pytest.mark.parametrize(
    ("name", "version", "minimum", "shuffle"),
    [("testscenarios", "0.7.0", 30, True), ("fixtures", "4.3.2", 100, False)],
)
def test_unittest_suites_match_stestr(
    name: str, version: str, minimum: int, shuffle: bool, tmp_path: Path
) -> None:
    root = sdist(name, version, tmp_path)
    location = ("--test-path", "./tests", "--top-dir", ".")
    expected = stestr_outcomes(root, *location)
    assert len(expected) >= minimum, "stestr ran the suite"
    oneshot = run_oneshot(root, *location, timeout=300)
    assert oneshot.returncode == 0, oneshot.stderr
    same_but_order_dependent(outcomes(oneshot.events), expected)
    ids, served = batched(root, *location, shuffle=shuffle)
    assert set(ids) == set(expected)
    same_but_order_dependent(served, expected)


def test_a_pytest_suite_matches_pytest(tmp_path: Path) -> None:
    root = sdist("pluggy", "1.6.0", tmp_path)
    expected = pytest_outcomes(root, tmp_path / "scratch")
    assert len(expected) >= 100, "pytest ran the suite"
    oneshot = run_oneshot(root, timeout=300)
    assert oneshot.returncode == 0, oneshot.stderr
    assert outcomes(oneshot.events) == expected
    ids, served = batched(root)
    assert set(ids) == set(expected)
    assert served == expected
