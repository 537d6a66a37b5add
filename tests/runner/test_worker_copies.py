"""The worker runs copies of the tests it indexed: each run starts clean, and
what a run stores on ``self`` is not kept by the index."""

from __future__ import annotations

import gc
import sys
import unittest
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from proctor.runner.worker.discovery import SuiteIndex, discover, fresh_copy
from proctor.runner.worker.suite import Runtime
from proctor.runner.worker.unittest_suite import UnittestSuite
from tests.runner.projects import outcomes, write_project
from tests.runner.test_worker_units import FakeSink, NoOutput

PKG = "copiespkg"

STATEFUL = """
    import unittest
    import weakref

    RUNS = []  # weak references to every instance that ran

    class Payload:
        pass

    class Stateful(unittest.TestCase):
        def test_starts_clean(self):
            self.assertFalse(hasattr(self, "ran"), "state from an earlier run")
            self.ran = True
            self.payload = Payload()
            RUNS.append(weakref.ref(self.payload))
            self.addCleanup(lambda: None)
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    write_project(tmp_path, {f"{PKG}/__init__.py": "", f"{PKG}/test_stateful.py": STATEFUL})
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m == PKG or m.startswith(PKG + ".")]:
        del sys.modules[name]


def test_a_test_run_again_starts_clean_and_its_state_is_freed(project: Path) -> None:
    sink = FakeSink()
    index = SuiteIndex(discover(str(project / PKG), str(project)))
    suite = UnittestSuite(index, Runtime(sink=sink, output=NoOutput()))  # type: ignore[arg-type]
    test_id = f"{PKG}.test_stateful.Stateful.test_starts_clean"
    assert suite.run([test_id, test_id]) == 2
    assert suite.run([test_id]) == 1
    statuses = [
        e.status.wire_name for e in sink.events if e.test_id == test_id and e.status.is_final
    ]
    assert statuses == ["success"] * 3
    gc.collect()
    runs = sys.modules[f"{PKG}.test_stateful"].RUNS
    assert len(runs) == 3
    assert [ref() for ref in runs] == [None, None, None]  # nothing kept what the runs stored
    (indexed,) = index.find(test_id)[1]  # type: ignore[index]
    assert not hasattr(indexed.test, "ran")
    assert indexed.test._cleanups == []
    assert outcomes(sink.events) == {test_id: "success"}


class Slotted(unittest.TestCase):
    __test__ = False  # (not one of our tests: an object to copy)
    __slots__ = ("extra",)

    def test(self) -> None:
        pass


class OwnCopy(unittest.TestCase):
    __test__ = False
    copies = 0

    def __copy__(self) -> OwnCopy:
        OwnCopy.copies += 1
        return OwnCopy("test")

    def test(self) -> None:
        pass


def test_tests_with_slots_or_their_own_copy_are_copied_their_way() -> None:
    slotted = Slotted("test")
    slotted.extra = [1]
    clone = fresh_copy(slotted)
    assert clone is not slotted
    assert isinstance(clone, Slotted)
    assert clone.extra == [1]
    before = OwnCopy.copies
    own = OwnCopy("test")
    assert fresh_copy(own) is not own
    assert OwnCopy.copies == before + 1
    plain = unittest.FunctionTestCase(lambda: None)
    copied = fresh_copy(plain)
    assert copied is not plain
    assert copied._cleanups is not plain._cleanups
    assert weakref.ref(copied)() is copied


REGISTRY: dict[str, int] = {}


class Registering(unittest.TestCase):
    __test__ = False

    def __init__(self, method_name: str = "test") -> None:
        super().__init__(method_name)
        self.registry = REGISTRY  # the module's: runs must reach it

    def test(self) -> None:
        self.registry[self.id()] = 1


def test_only_what_unittest_and_testtools_fill_per_run_is_copied() -> None:
    import testtools

    original = Registering()
    clone = fresh_copy(original)
    assert clone.registry is REGISTRY
    assert clone._cleanups is not original._cleanups
    assert clone._type_equality_funcs is not original._type_equality_funcs
    clone.run(unittest.TestResult())
    assert {original.id(): 1} == REGISTRY

    class Tt(testtools.TestCase):
        __test__ = False

        def test(self) -> None:
            self.addOnException(lambda exc_info: None)

    tt = Tt("test")
    handlers = list(tt._TestCase__exception_handlers)  # type: ignore[attr-defined]
    for _ in range(3):
        fresh_copy(tt).run(unittest.TestResult())
    assert tt._TestCase__exception_handlers == handlers  # type: ignore[attr-defined]
