"""Running unittest tests, any subset in any order, in one long-lived process.

Each run is unittest's own ``TestSuite.run`` over a batch built by
:class:`~proctor.runner.worker.discovery.SuiteIndex`, with one
:class:`~proctor.events.unittest_result.EventResult` for the worker's whole
life. unittest keeps its class/module fixture state on the result
(``_previousTestClass``, ``_moduleSetUpFailed``) and tears down the last class
and module only at the end of a *top-level* run. The worker marks the result as
inside a run (``_testRunEntered``) for good, so every batch is a nested run:

* consecutive batches that hit the same class share one ``setUpClass``: the
  class stays set up between batches while the worker idles;
* when a batch starts with a test of another class or module, unittest tears
  the previous one down first (``tearDownClass``, ``tearDownModule``), exactly
  as it does between two classes of one run; their failures are reported as
  ``tearDownClass (pkg.mod.Class)`` then;
* :meth:`UnittestSuite.close` ends the run for real (an empty top-level run),
  which tears down whatever is still up.

unittest does not report the tests of a class whose ``setUpClass`` failed (or
of a module whose ``setUpModule`` did); it reports the fixture alone
(``setUpClass (pkg.mod.Class)``, ``runnable=False``). The controller asked
for those tests by id, so each gets a final status too: ``skip`` when the
fixture skipped, ``fail`` when it failed, with a ``reason`` naming the fixture.
"""

from __future__ import annotations

import unittest
from collections.abc import Sequence
from unittest.util import strclass

from proctor.events.unittest_result import EventResult, FixtureOutcome
from proctor.runner.worker.discovery import SuiteIndex
from proctor.runner.worker.suite import Runtime, emit_outcome, emit_stray_output
from proctor.wire.event import Status

__all__ = ["UnittestSuite"]

# unittest's private run state on the result; named once, here.
_RUN_ENTERED = "_testRunEntered"


class UnittestSuite:
    """A discovered unittest suite that runs batches of ids (see the module docstring)."""

    framework = "unittest"

    def __init__(self, index: SuiteIndex, runtime: Runtime) -> None:
        self._index = index
        self._runtime = runtime
        self.result = EventResult(
            runtime.sink, output=runtime.output, flush=runtime.sink.flush, clock=runtime.clock
        )
        self.result.startTestRun()

    def test_ids(self) -> Sequence[str]:
        return self._index.ids

    def current_test_id(self) -> str | None:
        return self.result.current_test_id

    def run(self, ids: Sequence[str]) -> int:
        runtime = self._runtime
        result = self.result
        result.finished.clear()
        result.fixture_outcomes.clear()
        result.shouldStop = False
        batch = self._index.batch(ids, runtime.sink.flush, self._unknown)
        setattr(result, _RUN_ENTERED, True)
        batch.suite.run(result)
        sent = len(result.finished) + len(batch.unknown)
        if len(result.finished) < len(batch.tests):
            sent += self._report_unrun(batch.tests)
        emit_stray_output(runtime)
        runtime.sink.flush()
        return sent

    def _unknown(self, test_id: str) -> None:
        emit_outcome(self._runtime, test_id, Status.FAIL, f"No test with id {test_id!r} was found.")

    def _report_unrun(self, tests: Sequence[tuple[str, unittest.TestCase]]) -> int:
        """Give a final status to each test unittest skipped over (see the module docstring)."""
        remaining: dict[str, int] = {}
        for test_id in self.result.finished:
            remaining[test_id] = remaining.get(test_id, 0) + 1
        sent = 0
        for test_id, test in tests:
            if remaining.get(test_id, 0) > 0:
                remaining[test_id] -= 1
                continue
            outcome = self._fixture_outcome(test)
            if outcome is None:
                status, text = Status.FAIL, "The test was not run, and unittest did not say why."
            elif outcome.status is Status.SKIP:
                status, text = Status.SKIP, f"{outcome.test_id} skipped: {outcome.message}"
            else:
                last = outcome.message.strip().splitlines()[-1:] or [""]
                status, text = Status.FAIL, f"Not run: {outcome.test_id} failed: {last[0]}"
            emit_outcome(self._runtime, test_id, status, text)
            sent += 1
        return sent

    def _fixture_outcome(self, test: unittest.TestCase) -> FixtureOutcome | None:
        test_class = type(test)
        outcomes = self.result.fixture_outcomes
        for key in (
            f"setUpClass ({strclass(test_class)})",
            f"setUpModule ({test_class.__module__})",
        ):
            if key in outcomes:
                return outcomes[key]
        return None

    def close(self) -> None:
        result = self.result
        setattr(result, _RUN_ENTERED, False)
        unittest.TestSuite().run(result)  # top level: tears down the last class and module
        result.stopTestRun()
        emit_stray_output(self._runtime)
        self._runtime.sink.flush()
