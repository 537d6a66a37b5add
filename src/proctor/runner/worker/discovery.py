"""unittest discovery, once, and an index to run any tests from it in any order.

Discovery is unittest's own (``TestLoader.discover``), so the ``load_tests``
protocol works and ids are what ``python -m unittest``, ``subunit.run`` and
stestr's runner produce: testscenarios' ``test_x(scenario)``, doctests,
testresources suites alike. A module that fails to import becomes unittest's
``unittest.loader._FailedTest.<module>`` test, which fails with the import
traceback when run (stestr shows the same id); if discovery itself raises (a
start directory that is not importable), a test of the same shape named after
the start directory carries the traceback.

The index keeps, for each test, the chain of *custom* suites above it: suites
whose class overrides ``run`` (testresources' ``OptimisingTestSuite``,
testtools' ``FixtureSuite``...). Plain ``TestSuite`` levels only group; class
and module fixtures are handled by unittest from the order of the tests, not
from the suite tree. :meth:`SuiteIndex.batch` builds a suite for a list of ids,
in that order: plain tests at the top level (so unittest's class and module
fixture logic sees them in sequence); the batch's tests under the same custom
suites together, at the place of the first of them, in a shallow copy of those
suites holding just those tests (so the suite's own ``run`` still sets up what
they need, once, and orders them as it likes, as it would under stestr); and a
flush hook wherever the test class changes, so results reach the controller
before class and module fixtures run (a crash in ``setUpClass`` then loses
nothing). Such a suite's shared set-up (a testresources resource) lasts one
batch: the suite tears it down when its ``run`` ends.
"""

from __future__ import annotations

import copy
import functools
import os
import sys
import traceback
import unittest
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple, cast

from proctor.runner.worker.channels import wire_aliases

__all__ = ["FAILED_TEST_PREFIX", "Batch", "SuiteIndex", "discover", "fresh_copy"]

FAILED_TEST_PREFIX = "unittest.loader._FailedTest."
_PLAIN_RUN = unittest.TestSuite.run
_BASE_RUN = unittest.BaseTestSuite.run


class DiscoveryFailure(unittest.TestCase):
    """Stands for a discovery that raised: fails with the traceback when run."""

    def __init__(self, name: str, text: str) -> None:
        super().__init__("runTest")
        self._name = name
        self._text = text

    def id(self) -> str:
        return FAILED_TEST_PREFIX + self._name

    def __str__(self) -> str:
        return self.id()

    def runTest(self) -> None:
        raise ImportError(self._text)


class _OnlyLoader(unittest.TestLoader):
    """unittest's loader, loading only the test files named (a watch cycle's)."""

    def __init__(self, only: Iterable[str]) -> None:
        super().__init__()
        self._only = {os.path.realpath(path) for path in only}

    def _match_path(self, path: str, full_path: str, pattern: str) -> bool:
        # (unittest's own hook for "an alternative matching strategy")
        matched: bool = super()._match_path(path, full_path, pattern)
        return matched and os.path.realpath(full_path) in self._only


def discover(
    start: str, top_dir: str | None, pattern: str = "test*.py", only: Sequence[str] = ()
) -> unittest.TestSuite:
    """unittest discovery that never raises: failures become failing tests.
    With ``only``, just those test files are loaded (a watch cycle's)."""
    loader = _OnlyLoader(only) if only else unittest.TestLoader()
    try:
        return loader.discover(start, pattern=pattern, top_level_dir=top_dir)
    except Exception:
        text = f"Failed to discover tests in {start!r}:\n{traceback.format_exc()}"
        return unittest.TestSuite([DiscoveryFailure(start.strip("/").replace("/", "."), text)])


class _Entry(NamedTuple):
    """A test and the custom suites above it (a tuple: thousands are built at start-up)."""

    test: unittest.TestCase
    chain: tuple[unittest.BaseTestSuite, ...]


class Hook(unittest.TestSuite):
    """An empty suite placed in a batch: running it calls a function.

    unittest runs anything iterable as a suite, without touching class or
    module fixtures, so a hook runs exactly between the tests around it.
    """

    def __init__(self, action: Callable[[], None]) -> None:
        super().__init__()
        self._action = action

    def run(self, result: unittest.TestResult, debug: bool = False) -> unittest.TestResult:
        self._action()
        return result


class Batch(NamedTuple):
    """A runnable suite for some ids, and what could not be found."""

    suite: unittest.TestSuite
    tests: tuple[tuple[str, unittest.TestCase], ...]
    unknown: tuple[str, ...]


class SuiteIndex:
    """Every test of a discovered suite by id, with its custom-suite chain."""

    def __init__(self, suite: unittest.TestSuite) -> None:
        self._entries: dict[str, list[_Entry]] = {}
        self._aliases: dict[str, str] | None = None  # built at the first unknown id
        self._failed: dict[str, unittest.TestCase] | None = None  # likewise
        self.ids: list[str] = []
        for test, chain in _walk(suite, (), _scenario_expander()):
            test_id = test.id()
            entries = self._entries.get(test_id)
            if entries is None:
                self._entries[test_id] = [_Entry(test, chain)]
                self.ids.append(test_id)
            else:
                entries.append(_Entry(test, chain))

    def __len__(self) -> int:
        return len(self.ids)

    def find(self, test_id: str) -> tuple[str, list[_Entry]] | None:
        """The id as discovered and its tests, for an id as discovered or as sent.

        An id subunit cannot carry (a lone surrogate, a NUL) reaches the
        controller repaired (:func:`~proctor.runner.worker.channels.wire_text`),
        and comes back that way: it is found too.
        """
        entries = self._entries.get(test_id)
        if entries is not None:
            return test_id, entries
        if self._aliases is None:
            self._aliases = wire_aliases(self.ids)
        original = self._aliases.get(test_id)
        if original is None:
            return None
        return original, self._entries[original]

    def failed_import(self, test_id: str) -> tuple[str, unittest.TestCase] | None:
        """The module (or package, or start directory) that failed to load here
        and would hold ``test_id``, with its failing test; ``None`` if none would."""
        if self._failed is None:
            self._failed = {
                test_id[len(FAILED_TEST_PREFIX) :]: self._entries[test_id][0].test
                for test_id in self.ids
                if test_id.startswith(FAILED_TEST_PREFIX)
            }
        best: tuple[str, unittest.TestCase] | None = None
        for name, test in self._failed.items():
            if test_id.startswith(name + ".") and (best is None or len(name) > len(best[0])):
                best = (name, test)
        return best

    def batch(
        self,
        ids: Sequence[str],
        flush: Callable[[], None],
        unknown_id: Callable[[str], None] | None = None,
        settle: Callable[[Sequence[tuple[str, unittest.TestCase]]], None] | None = None,
    ) -> Batch:
        """A suite running ``ids`` in this order (see the module docstring).

        ``unknown_id`` is called, in its turn, for each id the index does not know.
        Tests under the same custom suites run together, in one copy of those
        suites, at the place of the first of them: such suites order their tests
        themselves and share costly set-up between them (testresources), so
        splitting them would repeat that set-up for nothing.

        ``settle`` is called with each *segment* of the batch (the tests of one
        class in a row, or of one custom suite) right after it ran, before the
        next class's fixtures run: while unittest's fixture state (a failed
        ``setUpClass`` or ``setUpModule``) still says why a test of it did not run.
        """
        plan: list[tuple[str, _Entry] | list[tuple[str, _Entry]] | str] = []
        groups: dict[tuple[int, ...], list[tuple[str, _Entry]]] = {}
        tests: list[tuple[str, unittest.TestCase]] = []
        unknown: list[str] = []
        entries_of = self._entries
        for test_id in ids:
            entries = entries_of.get(test_id)
            if entries is None:
                found = self.find(test_id)
                if found is None:
                    unknown.append(test_id)
                    plan.append(test_id)
                    continue
                test_id, entries = found
            for entry in entries:
                tests.append((test_id, entry.test))
                if not entry.chain:
                    plan.append((test_id, entry))
                    continue
                key = tuple(id(suite) for suite in entry.chain)
                group = groups.get(key)
                if group is None:
                    group = groups[key] = []
                    plan.append(group)
                group.append((test_id, entry))
        top = unittest.TestSuite()
        add = top.addTest
        segment: list[tuple[str, unittest.TestCase]] = []

        def boundary() -> None:
            nonlocal segment
            if settle is not None and segment:
                add(Hook(functools.partial(settle, segment)))
                segment = []
            add(Hook(flush))

        previous_class: type | None = None
        for step in plan:
            if isinstance(step, str):
                if unknown_id is not None:
                    add(Hook(functools.partial(unknown_id, step)))
            elif isinstance(step, list):
                boundary()
                add(_rebuild(step[0][1].chain, [fresh_copy(entry.test) for _, entry in step]))
                segment = [(test_id, entry.test) for test_id, entry in step]
                previous_class = None
            else:
                test_id, entry = step
                test_class = type(entry.test)
                if test_class is not previous_class and (previous_class is not None or segment):
                    boundary()
                add(fresh_copy(entry.test))
                segment.append((test_id, entry.test))
                previous_class = test_class
        if settle is not None and segment:
            add(Hook(functools.partial(settle, segment)))
        return Batch(top, tuple(tests), tuple(unknown))


_COPIED_CONTAINERS = (list, dict, set)
_PER_RUN = (
    "_cleanups",  # unittest: addCleanup
    "_type_equality_funcs",  # unittest: addTypeEqualityFunc
    "_TestCase__exception_handlers",  # testtools: addOnException
    "exception_handlers",  # testtools
    "_traceback_id_gens",  # testtools: one per traceback detail name
    "_TestCase__details",  # testtools: addDetail
)
"""Instance attributes unittest and testtools fill while a test runs (see fresh_copy)."""
_OBJECT_REDUCE = object.__reduce_ex__
_OBJECT_GETSTATE = getattr(object, "__getstate__", None)  # Python 3.11+
_PLAIN_CLASSES: dict[type, bool] = {}  # class -> copied by hand (see fresh_copy)


def fresh_copy(test: unittest.TestCase) -> unittest.TestCase:
    """A copy of ``test`` to run, so that what the run stores on it dies with the copy.

    A shallow copy, with the containers unittest and testtools fill while a test
    runs copied too (:data:`_PER_RUN`: ``_cleanups``, ``addTypeEqualityFunc``'s
    table, testtools' exception handlers and details), which must not reach the
    indexed test. Other attributes are shared, as a ``copy.copy`` shares them:
    a container a test's ``__init__`` stored (a registry of the module's, say)
    stays the same object. testscenarios and testtools clone tests with
    ``copy.copy`` too, so tests are made to be copied. The common case (a plain
    instance dictionary) is copied by hand: ``copy.copy`` costs twice as much.
    A test that cannot be copied runs as itself.
    """
    cls = type(test)
    try:
        plain = _PLAIN_CLASSES.get(cls)
        if plain is None:
            plain = _PLAIN_CLASSES[cls] = not (
                cls.__reduce_ex__ is not _OBJECT_REDUCE
                or getattr(cls, "__getstate__", _OBJECT_GETSTATE) is not _OBJECT_GETSTATE
                or hasattr(cls, "__setstate__")
                or hasattr(cls, "__copy__")
                or hasattr(cls, "__slots__")
            )
        if not plain:
            copied = copy.copy(test)
            if hasattr(copied, "__dict__"):
                copied.__dict__.update(_fresh_state(copied.__dict__))
            return copied
        clone: unittest.TestCase = cls.__new__(cls)
        clone.__dict__ = _fresh_state(test.__dict__)
        return clone
    except Exception:
        return test


def _fresh_state(state: dict[str, Any]) -> dict[str, Any]:
    """A copy of an instance dictionary, with its per-run containers copied."""
    state = state.copy()
    for name in _PER_RUN:
        value = state.get(name)
        if value is not None and type(value) in _COPIED_CONTAINERS:
            state[name] = value.copy()
    return state


def _is_suite(item: object) -> bool:
    """unittest's own test: anything iterable is a suite."""
    try:
        iter(item)  # type: ignore[call-overload]
    except TypeError:
        return False
    return True


def _is_custom(suite: object) -> bool:
    """A suite whose ``run`` does more than unittest's (and can be copied with fewer tests)."""
    if not isinstance(suite, unittest.BaseTestSuite):
        return False
    run = type(suite).run
    return run is not _PLAIN_RUN and run is not _BASE_RUN


def _walk(
    item: object, chain: tuple[unittest.BaseTestSuite, ...], expand: _Expander | None = None
) -> Iterator[tuple[unittest.TestCase, tuple[unittest.BaseTestSuite, ...]]]:
    if _is_custom(item):
        chain = (*chain, item)  # type: ignore[arg-type]
    for child in item:  # type: ignore[attr-defined]
        # A TestCase is never a suite: skip unittest's "is it iterable?" probe,
        # whose exception costs a microsecond a test at start-up.
        if isinstance(child, unittest.TestCase) or not _is_suite(child):
            if expand is not None:
                scenarios = expand(child)
                if scenarios is not None:
                    for scenario in scenarios:
                        yield scenario, chain
                    continue
            yield child, chain
        else:
            yield from _walk(child, chain, expand)


_Expander = Callable[[object], "Iterable[unittest.TestCase] | None"]


def _scenario_expander() -> _Expander | None:
    """What turns a testscenarios ``WithScenarios`` test into its scenario tests.

    Such a test, found by discovery without ``load_tests_apply_scenarios``, has
    the id ``m.C.test_x`` but runs as ``m.C.test_x(a)``, ``m.C.test_x(b)``...
    (its ``run`` multiplies it). Indexed as itself, the worker would list an id
    that never reports, and not know the ids it does report (a ``--failing``
    run asks for those). Indexed as its scenarios (testscenarios'
    ``generate_scenarios``, which gives each clone ``scenarios = None``), every
    id listed is an id reported, and runnable alone. None when testscenarios is
    not imported: then no test can be one.
    """
    testcase = sys.modules.get("testscenarios.testcase")
    scenarios = sys.modules.get("testscenarios.scenarios")
    with_scenarios: type | None = getattr(testcase, "WithScenarios", None)
    generate: Callable[[object], Iterable[unittest.TestCase]] | None = getattr(
        scenarios, "generate_scenarios", None
    )
    if with_scenarios is None or generate is None:
        return None
    mixin, expand_all = with_scenarios, generate

    def expand(test: object) -> Iterable[unittest.TestCase] | None:
        if not isinstance(test, mixin):
            return None
        try:
            if not test._get_scenarios():  # type: ignore[attr-defined]
                return None
            return list(expand_all(test))
        except Exception:  # a scenario list that cannot be applied: the test reports it
            return None

    return expand


def _rebuild(
    chain: tuple[unittest.BaseTestSuite, ...], tests: Iterable[unittest.TestCase]
) -> unittest.TestSuite:
    """Shallow copies of the chain's suites, nested, holding only ``tests``."""
    inner: list[Any] = list(tests)
    for suite in reversed(chain):
        clone = copy.copy(suite)
        clone._tests = inner
        inner = [clone]
    return cast(unittest.TestSuite, inner[0])
