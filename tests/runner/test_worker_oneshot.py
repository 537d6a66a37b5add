"""One-shot mode: ``python -m proctor.worker`` writes a clean subunit v2 stream to stdout.

"Clean" is checked with python-subunit's strict parser (``non_subunit_name=None``
raises on any byte that is not a packet), which is exactly what
``python -m subunit.run`` fails when a test or an import prints.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
import subunit
import testtools

from tests.runner.projects import (
    ODD_ID_PREFIX,
    ODD_IDS,
    UNITTEST_CONF,
    collect_files,
    outcomes,
    run_oneshot,
    worker_env,
    write_project,
)

pytestmark = pytest.mark.slow

NOISY = """
    import os
    import sys
    import unittest

    print("printed while importing")
    os.write(1, b"\\xb3 a stray signature byte at import\\n")

    class Noisy(unittest.TestCase):
        def test_prints(self):
            for i in range(20_000):
                print("line", i, "\\xb3")
            os.write(1, bytes(range(256)) * 512)
            print("err", file=sys.stderr)

        def test_fails(self):
            print("about to fail")
            self.fail("on purpose")

        def test_reads_input(self):
            self.assertEqual(input(), "typed")
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_project(
        tmp_path_factory.mktemp("oneshot"), {**UNITTEST_CONF, "tests/test_noisy.py": NOISY}
    )


def strict_summary(stream: bytes) -> testtools.StreamSummary:
    """python-subunit's reading of ``stream``; raises if a single byte is not a packet."""
    summary = testtools.StreamSummary()
    summary.startTestRun()
    subunit.ByteStreamToStreamResult(io.BytesIO(stream), non_subunit_name=None).run(summary)
    summary.stopTestRun()
    return summary


def raw(project: Path, *args: str, stdin: bytes = b"typed\n") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "proctor.worker", *args],
        cwd=project,
        input=stdin,
        capture_output=True,
        env=worker_env(),
        timeout=60,
        check=False,
    )


def test_the_stream_stays_clean_whatever_tests_print(project: Path) -> None:
    done = raw(project)
    assert done.returncode == 0, "a complete stream exits 0 even when tests fail"
    summary = strict_summary(done.stdout)
    assert summary.testsRun == 3
    assert len(summary.errors) == 1
    assert b"printed while importing" in done.stderr  # import-time output belongs to no test


def test_output_is_attached_to_its_test(project: Path) -> None:
    ran = run_oneshot(project, stdin=b"typed\n")
    assert outcomes(ran.events) == {
        "tests.test_noisy.Noisy.test_prints": "success",
        "tests.test_noisy.Noisy.test_fails": "fail",
        "tests.test_noisy.Noisy.test_reads_input": "success",
    }
    files = collect_files(ran.events, "tests.test_noisy.Noisy.test_prints")
    assert files["stdout"].count(b"line") == 20_000
    assert bytes(range(256)) * 512 in files["stdout"]
    assert files["stderr"] == b"err\n"
    assert (
        collect_files(ran.events, "tests.test_noisy.Noisy.test_fails")["stdout"]
        == b"about to fail\n"
    )


def test_list_writes_exists_events_only(project: Path) -> None:
    listed = run_oneshot(project, "--list")
    assert listed.returncode == 0
    assert [(e.test_id, e.status.wire_name) for e in listed.events] == [
        ("tests.test_noisy.Noisy.test_fails", "exists"),
        ("tests.test_noisy.Noisy.test_prints", "exists"),
        ("tests.test_noisy.Noisy.test_reads_input", "exists"),
    ]


def test_no_capture_sends_test_output_to_stderr_not_the_stream(
    project: Path, tmp_path: Path
) -> None:
    load_list = tmp_path / "ids"
    load_list.write_text("tests.test_noisy.Noisy.test_fails\nno.such.test\n")
    done = raw(project, "--no-capture", "--load-list", str(load_list))
    summary = strict_summary(done.stdout)
    assert summary.testsRun == 2
    assert b"about to fail" in done.stderr
    ran = run_oneshot(project, "--load-list", str(load_list))
    finished = [(e.test_id, e.status.wire_name) for e in ran.events if e.status.is_final]
    assert finished[-2:] == [
        ("tests.test_noisy.Noisy.test_fails", "fail"),
        ("no.such.test", "fail"),
    ]


def test_python_subunit_tools_read_the_stream(project: Path) -> None:
    done = raw(project)
    listing = subprocess.run(
        [sys.executable, "-c", "from subunit.filter_scripts.subunit_ls import main; main()"],
        input=done.stdout,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert sorted(listing.stdout.decode().split()) == [
        "tests.test_noisy.Noisy.test_fails",
        "tests.test_noisy.Noisy.test_prints",
        "tests.test_noisy.Noisy.test_reads_input",
    ]


def test_bad_arguments_exit_2(project: Path) -> None:
    done = raw(project, "--serve")
    assert done.returncode == 2
    assert b"--serve needs --commands-fd" in done.stderr
    assert done.stdout == b""


def test_a_load_list_id_may_hold_a_hash(tmp_path: Path) -> None:
    project = write_project(tmp_path / "odd", {**UNITTEST_CONF, "tests/test_odd.py": ODD_IDS})
    load_list = tmp_path / "ids"
    load_list.write_text(
        f"# the one with a hash\n{ODD_ID_PREFIX}(hash#x)\n  # done\n", encoding="utf-8"
    )
    ran = run_oneshot(project, "--load-list", str(load_list))
    assert ran.returncode == 0, ran.stderr
    assert outcomes(ran.events) == {f"{ODD_ID_PREFIX}(hash#x)": "success"}


@pytest.mark.parametrize("framework", ["unittest", "pytest"])
def test_only_collects_just_the_files_named(tmp_path: Path, framework: str) -> None:
    """``--only`` (a watch cycle's files): the other test files are not even imported."""
    broken = "raise RuntimeError('imported')\n"
    if framework == "unittest":
        files = {
            "tests/__init__.py": "",
            "tests/test_a.py": "import unittest\n\nclass A(unittest.TestCase):\n"
            "    def test_one(self):\n        pass\n",
            "tests/test_b.py": broken,
            "tests/sub/__init__.py": "",
            "tests/sub/test_c.py": broken,
        }
        expected = {"tests.test_a.A.test_one": "success"}
    else:
        files = {
            "pytest.ini": "[pytest]\n",
            "tests/test_a.py": "def test_one():\n    pass\n",
            "tests/test_b.py": broken,
            "tests/sub/test_c.py": broken,
        }
        expected = {"tests/test_a.py::test_one": "success"}
    root = write_project(tmp_path, files)
    only = f"--only={root / 'tests/test_a.py'}"
    done = run_oneshot(root, f"--framework={framework}", only)
    assert outcomes(done.events) == expected, done.stderr
    everything = outcomes(run_oneshot(root, f"--framework={framework}").events)
    assert set(expected) < set(everything)  # without it, the broken files fail
