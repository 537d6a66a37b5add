"""Tests unittest never ran, and tests that run as other ids, in the worker's unittest suite.

A failed ``setUpClass`` or ``setUpModule`` keeps its tests from running, and
unittest says nothing of them; the worker gives each a final status naming the
fixture, the same for every one of them, whether they came in one batch or
many, in one class or several. A testscenarios ``WithScenarios`` test runs as
its scenarios: the worker lists (and runs) those ids, so every id it lists is
an id it reports.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from proctor.runner.worker.discovery import SuiteIndex, discover
from proctor.runner.worker.suite import Runtime
from proctor.runner.worker.unittest_suite import UnittestSuite
from proctor.wire.event import Event
from proctor.wire.v2 import decode
from tests.runner.projects import UNITTEST_CONF, outcomes, worker_env, write_project
from tests.runner.test_worker_units import FakeSink, NoOutput

BROKEN_MODULE = """
    import unittest

    def setUpModule():
        raise OSError("no database")

    class D(unittest.TestCase):
        def test_1(self):
            pass

        def test_2(self):
            pass

    class E(unittest.TestCase):
        def test_1(self):
            pass
"""

BROKEN_CLASS = """
    import unittest

    class C(unittest.TestCase):
        @classmethod
        def setUpClass(cls):
            raise RuntimeError("boom")

        def test_1(self):
            pass

        def test_2(self):
            pass

        def test_3(self):
            pass

    class Fine(unittest.TestCase):
        def test_ok(self):
            pass
"""

SCENARIOS = """
    import unittest

    import testscenarios

    class S(testscenarios.WithScenarios, unittest.TestCase):
        scenarios = [("a", {"x": 1}), ("b", {"x": 2})]

        def test_x(self):
            self.assertEqual(self.x, 1)

    class Broken(testscenarios.WithScenarios, unittest.TestCase):
        scenarios = [("a", {"x": 1}), ("b", {"x": 2})]

        @classmethod
        def setUpClass(cls):
            raise RuntimeError("broken scenarios")

        def test_y(self):
            pass

    class Plain(testscenarios.WithScenarios, unittest.TestCase):
        def test_z(self):
            pass
"""

PKG = "unrunpkg"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    write_project(
        tmp_path,
        {
            f"{PKG}/__init__.py": "",
            f"{PKG}/test_module.py": BROKEN_MODULE,
            f"{PKG}/test_class.py": BROKEN_CLASS,
            f"{PKG}/test_scenarios.py": SCENARIOS,
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m == PKG or m.startswith(PKG + ".")]:
        del sys.modules[name]


def load(project: Path) -> tuple[UnittestSuite, FakeSink]:
    sink = FakeSink()
    index = SuiteIndex(discover(str(project / PKG), str(project)))
    return UnittestSuite(index, Runtime(sink=sink, output=NoOutput())), sink  # type: ignore[arg-type]


def reasons(events: list[Event], test_id: str) -> list[bytes]:
    return [e.file_bytes for e in events if e.test_id == test_id and e.file_name == "reason"]


MODULE_IDS = [
    f"{PKG}.test_module.D.test_1",
    f"{PKG}.test_module.D.test_2",
    f"{PKG}.test_module.E.test_1",
]
CLASS_IDS = [
    f"{PKG}.test_class.C.test_1",
    f"{PKG}.test_class.C.test_2",
    f"{PKG}.test_class.C.test_3",
]
MODULE_REASON = b"Not run: setUpModule (unrunpkg.test_module) failed: OSError: no database"
CLASS_REASON = b"Not run: setUpClass (unrunpkg.test_class.C) failed: RuntimeError: boom"


@pytest.mark.parametrize("batches", [[MODULE_IDS], [[i] for i in MODULE_IDS]], ids=["one", "each"])
def test_every_test_of_a_module_whose_setup_failed_says_so_in_any_batching(
    project: Path, batches: list[list[str]]
) -> None:
    suite, sink = load(project)
    for batch in batches:
        assert suite.run(batch) == len(batch)
    got = outcomes(sink.events)
    assert got["setUpModule (unrunpkg.test_module)"] == "fail"
    for test_id in MODULE_IDS:
        assert got[test_id] == "fail"
        assert reasons(sink.events, test_id) == [MODULE_REASON], test_id


@pytest.mark.parametrize("batches", [[CLASS_IDS], [[i] for i in CLASS_IDS]], ids=["one", "each"])
def test_every_test_of_a_class_whose_setup_failed_says_so_in_any_batching(
    project: Path, batches: list[list[str]]
) -> None:
    suite, sink = load(project)
    for batch in batches:
        assert suite.run(batch) == len(batch)
    for test_id in CLASS_IDS:
        assert reasons(sink.events, test_id) == [CLASS_REASON], test_id


def test_a_class_tried_again_after_another_class_reports_its_new_failure(project: Path) -> None:
    suite, sink = load(project)
    fine = f"{PKG}.test_class.Fine.test_ok"
    assert suite.run([CLASS_IDS[0], fine, CLASS_IDS[1], fine]) == 4
    got = outcomes(sink.events)
    assert got[fine] == "success"
    for test_id in CLASS_IDS[:2]:
        assert reasons(sink.events, test_id) == [CLASS_REASON], test_id
    fixture = "setUpClass (unrunpkg.test_class.C)"
    assert sum(1 for e in sink.events if e.test_id == fixture and e.status.is_final) == 2


def test_with_scenarios_tests_are_listed_and_run_as_their_scenarios(project: Path) -> None:
    suite, sink = load(project)
    prefix = f"{PKG}.test_scenarios."
    listed = [i for i in suite.test_ids() if i.startswith(prefix)]
    assert listed == [
        prefix + "Broken.test_y(a)",
        prefix + "Broken.test_y(b)",
        prefix + "Plain.test_z",
        prefix + "S.test_x(a)",
        prefix + "S.test_x(b)",
    ]
    assert suite.run(listed) == len(listed)
    got = {k: v for k, v in outcomes(sink.events).items() if k.startswith(prefix)}
    assert got == {
        prefix + "Broken.test_y(a)": "fail",
        prefix + "Broken.test_y(b)": "fail",
        prefix + "Plain.test_z": "success",
        prefix + "S.test_x(a)": "success",
        prefix + "S.test_x(b)": "fail",
    }
    broken = (
        b"Not run: setUpClass (unrunpkg.test_scenarios.Broken) failed: "
        b"RuntimeError: broken scenarios"
    )
    assert reasons(sink.events, prefix + "Broken.test_y(b)") == [broken]
    sink.events.clear()
    assert suite.run([prefix + "S.test_x(b)"]) == 1  # a failing scenario reruns alone
    assert outcomes(sink.events) == {prefix + "S.test_x(b)": "fail"}


@pytest.mark.slow
def test_proctor_run_reports_every_test_it_sent_with_the_fixture_that_stopped_it(
    tmp_path: Path,
) -> None:
    """The whole path: ``proctor run`` with two real workers, which split the
    classes between batches (batches shrink to one test at the end)."""
    root = write_project(
        tmp_path,
        {
            **UNITTEST_CONF,
            "tests/test_module.py": BROKEN_MODULE,
            "tests/test_class.py": BROKEN_CLASS,
            "tests/test_scenarios.py": SCENARIOS,
        },
    )
    done = subprocess.run(
        [sys.executable, "-m", "proctor", "run", "--subunit", "-j", "2"],
        cwd=root,
        capture_output=True,
        timeout=120,
        env=worker_env(),
        check=False,
    )
    stderr = done.stderr.decode("utf-8", "replace")
    assert "never reported" not in stderr, stderr
    events = decode(done.stdout)
    got = outcomes(events)
    scenario = "tests.test_scenarios."
    assert got[scenario + "S.test_x(a)"] == "success"
    assert scenario + "S.test_x" not in got
    for test_id in [i.replace(PKG, "tests") for i in MODULE_IDS]:
        assert reasons(events, test_id) == [MODULE_REASON.replace(PKG.encode(), b"tests")]
    for test_id in [i.replace(PKG, "tests") for i in CLASS_IDS]:
        assert reasons(events, test_id) == [CLASS_REASON.replace(PKG.encode(), b"tests")]


STOPS = """
    import unittest

    class X(unittest.TestCase):
        def test_1_stops_the_run(self):
            self._outcome.result.stop()  # as failfast does

        def test_2(self):
            pass

    class Z(unittest.TestCase):
        def test_z(self):
            pass
"""


def test_a_run_stopped_early_still_gives_every_test_a_final_status(project: Path) -> None:
    (project / PKG / "test_stops.py").write_text(textwrap.dedent(STOPS))
    suite, sink = load(project)
    prefix = f"{PKG}.test_stops."
    ids = [prefix + "X.test_1_stops_the_run", prefix + "X.test_2", prefix + "Z.test_z"]
    assert suite.run(ids) == 3
    got = outcomes(sink.events)
    assert got == {ids[0]: "success", ids[1]: "fail", ids[2]: "fail"}
    assert suite.run([prefix + "Z.test_z"]) == 1  # the next batch runs as usual
    assert outcomes(sink.events)[prefix + "Z.test_z"] == "success"
