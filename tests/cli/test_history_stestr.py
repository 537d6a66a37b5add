"""Compatibility with a real stestr repository, made by running real ``stestr run``.

A small unittest project is generated, run twice with stestr (which stores
subunit v1, ``times.dbm`` and ``failing``), imported, and then every run is
compared with what stestr itself replays (``stestr history show N --subunit``),
read through python-subunit's decoder on both sides.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .invoke import invoke

pytestmark = pytest.mark.slow

SAMPLE = """
import sys
import unittest


class TestSample(unittest.TestCase):
    def test_pass(self):
        pass

    def test_fail(self):
        self.assertEqual(1, 2)

    @unittest.skip("not today")
    def test_skip(self):
        pass

    @unittest.expectedFailure
    def test_xfail(self):
        self.assertEqual(1, 2)

    @unittest.expectedFailure
    def test_uxsuccess(self):
        pass

    def test_output(self):
        print("hello from stdout")
        sys.stderr.write("and stderr\\n")

    def test_error(self):
        raise RuntimeError("kaboom \\u2603")


class TestMore(unittest.TestCase):
"""
MORE = "".join(f"    def test_{i:02d}(self):\n        pass\n\n" for i in range(12))


def _stestr(project: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "stestr", *args],
        cwd=project,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def stestr_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("stestr_project")
    (project / "tests").mkdir()
    (project / "tests" / "__init__.py").write_text("")
    (project / "tests" / "test_sample.py").write_text(SAMPLE + MORE)
    (project / ".stestr.conf").write_text("[DEFAULT]\ntest_path=./tests\ntop_dir=./\n")
    first = _stestr(project, "run")
    assert first.returncode == 1, first.stderr  # it has failures
    second = _stestr(project, "run", "--serial")
    assert second.returncode == 1, second.stderr
    return project


def _tests(stream: bytes) -> dict[str, dict[str, Any]]:
    import subunit
    import testtools

    found: dict[str, dict[str, Any]] = {}
    result = testtools.StreamToDict(lambda test: found.__setitem__(test["id"], test))
    result.startTestRun()
    subunit.ByteStreamToStreamResult(io.BytesIO(stream), non_subunit_name="stdout").run(result)
    result.stopTestRun()
    return {
        test_id: {
            "status": test["status"],
            "tags": test["tags"],
            "timestamps": test["timestamps"],
            "details": {
                name: (str(content.content_type), b"".join(content.iter_bytes()))
                for name, content in test["details"].items()
            },
        }
        for test_id, test in found.items()
    }


def test_an_imported_stestr_repository_replays_as_stestr_replays_it(
    stestr_project: Path, tmp_path: Path
) -> None:
    repo = str(tmp_path / ".proctor")
    imported = invoke("import", str(stestr_project / ".stestr"), "--repository", repo)
    assert imported.exit_code == 0, imported.stderr
    assert imported.stdout.startswith(f"Imported 2 runs (38 results) from {stestr_project}")
    for stestr_run, our_run in [("0", "1"), ("1", "2")]:
        theirs = _stestr(stestr_project, "history", "show", stestr_run, "--subunit")
        ours = invoke("export", our_run, "--repository", repo)
        assert ours.exit_code == 0
        expected = _tests(theirs.stdout)
        assert len(expected) == 19
        assert _tests(ours.stdout_bytes) == expected


def test_failing_and_timings_agree_with_stestr(stestr_project: Path, tmp_path: Path) -> None:
    repo = str(tmp_path / ".proctor")
    invoke("import", str(stestr_project / ".stestr"), "--repository", repo)
    theirs = _stestr(stestr_project, "failing", "--list").stdout.decode().split()
    ours = invoke("failing", "--list", "--repository", repo)
    assert set(theirs) == {
        "tests.test_sample.TestSample.test_error",
        "tests.test_sample.TestSample.test_fail",
    }
    # One deliberate difference: an unexpected success fails the run in both
    # tools, and so Proctor keeps it in the failing set for `run --failing`;
    # stestr leaves it out.
    assert ours.stdout.split() == sorted([*theirs, "tests.test_sample.TestSample.test_uxsuccess"])
    assert ours.exit_code == 1
    last = invoke("last", "--repository", repo)
    assert last.exit_code == 1  # stestr's last exits 1 on this run too
    assert _stestr(stestr_project, "last").returncode == 1
    assert "Ran: 19 tests" in last.stdout
    assert " - Unexpected Success: 1" in last.stdout
    slowest = invoke("slowest", "--all", "--repository", repo)
    assert slowest.exit_code == 0
    assert len(slowest.stdout.splitlines()) == 3 + 19


def test_last_subunit_exits_0_on_a_failed_run_as_stestrs_does(
    stestr_project: Path, tmp_path: Path
) -> None:
    # `last --subunit | subunit2junitxml` under `set -o pipefail` must not fail
    # because the run did: the stream carries the outcome.
    repo = str(tmp_path / ".proctor")
    invoke("import", str(stestr_project / ".stestr"), "--repository", repo)
    theirs = _stestr(stestr_project, "last", "--subunit")
    ours = invoke("last", "--subunit", "--repository", repo)
    assert theirs.returncode == 0
    assert ours.exit_code == 0
    assert _tests(ours.stdout_bytes) == _tests(theirs.stdout)
    assert invoke("last", "--repository", repo).exit_code == 1  # without --subunit: the outcome
