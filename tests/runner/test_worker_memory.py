"""A worker's memory stays flat in the number of tests it has run.

unittest's own suites drop each test once it has run; a worker that kept every
test it ran (and so everything each test stored on ``self``) grew by what the
tests stored, for its whole life. The check is a memory property, compared
between two real workers: one that runs N tests and one that runs 10N, each
test storing 100 KB on its instance. The peak resident size of the worker
(``VmHWM``, read from ``/proc`` while it idles after the last batch) may not
grow by more than a small part of what 9N such tests would hold.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.runner.projects import UNITTEST_CONF, WorkerProcess, outcomes, write_project

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]

HEAVY = """
    import os
    import unittest

    import testtools

    COUNT = int(os.environ["PROCTOR_TEST_COUNT"])
    PER_TEST = 100_000

    def make(index):
        def test(self):
            self.blob = bytes([index % 251]) * PER_TEST  # 100 KB the test keeps on self
            self.addCleanup(lambda: None)
        return test

    class Heavy(unittest.TestCase):
        pass

    class HeavyTesttools(testtools.TestCase):
        def setUp(self):
            super().setUp()
            self.other = bytes(PER_TEST // 2) + b"x"  # kept in setUp, never deleted

    for i in range(COUNT):
        target = Heavy if i % 2 else HeavyTesttools
        setattr(target, "test_%05d" % i, make(i))
"""

PER_TEST = 100_000


def _peak_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/PID/status")


def _peak_after_running(root: Path, count: int) -> int:
    with WorkerProcess(root, env={"PROCTOR_TEST_COUNT": str(count)}) as worker:
        worker.ready()
        ids = worker.list()
        assert len(ids) == count
        for start in range(0, count, 50):  # in batches, as a controller sends them
            batch = ids[start : start + 50]
            ran = outcomes(worker.run(batch))
            assert ran == dict.fromkeys(batch, "success"), worker.diagnosis()
        peak = _peak_kib(worker.process.pid)
        assert worker.quit() == 0
    return peak


def test_worker_memory_stays_flat_as_the_number_of_tests_run_grows(tmp_path: Path) -> None:
    root = write_project(tmp_path, {**UNITTEST_CONF, "tests/test_heavy.py": HEAVY})
    small = 150
    few = _peak_after_running(root, small)
    many = _peak_after_running(root, small * 10)
    kept_if_leaking_kib = small * 9 * PER_TEST // 1024  # ~132 MB
    growth = many - few
    # What 1,350 more indexed (never run) test instances cost is well under this.
    assert growth < kept_if_leaking_kib // 10, (few, many)
