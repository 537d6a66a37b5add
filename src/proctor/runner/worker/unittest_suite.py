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
They are settled right after the tests of their class (or custom suite) ran,
while unittest's fixture state still says which fixture kept them from
running, and the fixtures' outcomes are kept across batches (unittest keeps
its own fixture state across them): every test of a failed fixture says the
same, whichever batch it came in.

A ``KeyboardInterrupt`` raised inside a test (``raise KeyboardInterrupt``, or
a SIGINT the test sends itself) is let through by unittest, which skips the
test's ``tearDown`` and cleanups; the result fails the test with the
traceback (:attr:`EventResult.escaped`). In server mode (``Runtime.server``)
the worker runs in a session of its own, so such an interrupt is never the
user's Ctrl-C: the worker runs what unittest skipped (``tearDown`` when the
interrupt came from the test method itself, then the cleanups; their failures
are reported as ``<test id> (cleanup)``, ``runnable=False``) and goes on with
the rest of the batch, the class and module fixtures still up. One-shot mode
stops there, as unittest does. An interrupt outside a test (in a class or
module fixture) stops the worker in both modes: unittest's fixture state is
then unknown.
"""

from __future__ import annotations

import traceback
import unittest
from collections.abc import Callable, Sequence
from typing import Any, cast
from unittest.util import strclass

from proctor.events.unittest_result import Escaped, EventResult, FixtureOutcome
from proctor.runner.worker.discovery import Hook, SuiteIndex
from proctor.runner.worker.suite import Runtime, emit_outcome, emit_stray_output, suites_differ
from proctor.wire.event import TRACEBACK_MIME_TYPE, Status
from proctor.wire.record import Attachment

__all__ = ["UnittestSuite"]

# unittest's private run state on the result; named once, here.
_RUN_ENTERED = "_testRunEntered"
# The frame of unittest's call of a test method (Python 3.8+), to tell an
# interrupt in the test method from one in setUp, tearDown or a cleanup.
_TEST_METHOD_CODE = getattr(getattr(unittest.TestCase, "_callTestMethod", None), "__code__", None)


class PostMortemResult(EventResult):
    """``--pdb``: the debugger in the frame of each failure or error, once it is
    recorded (its input comes through the worker's stdin channel)."""

    def addError(self, test: unittest.TestCase, err: Any = None, details: Any = None) -> None:
        super().addError(test, err, details)
        _post_mortem(err)

    def addFailure(self, test: unittest.TestCase, err: Any = None, details: Any = None) -> None:
        super().addFailure(test, err, details)
        _post_mortem(err)


def _post_mortem(err: Any) -> None:
    if isinstance(err, tuple) and len(err) == 3 and err[2] is not None:
        import pdb

        pdb.post_mortem(err[2])


class UnittestSuite:
    """A discovered unittest suite that runs batches of ids (see the module docstring)."""

    framework = "unittest"

    def __init__(self, index: SuiteIndex, runtime: Runtime) -> None:
        self._index = index
        self._runtime = runtime
        result_class = PostMortemResult if runtime.post_mortem else EventResult
        self.result = result_class(
            runtime.sink, output=runtime.output, flush=runtime.sink.flush, clock=runtime.clock
        )
        self.result.startTestRun()
        self._settled = 0  # tests of the run's `finished` already settled
        self._unrun = 0  # final statuses sent for tests unittest skipped over
        self._unrun_ids: list[str] = []  # their ids
        self._interrupted: list[str] = []  # tests interrupted in this run (server mode)

    def test_ids(self) -> Sequence[str]:
        return self._index.ids

    def current_test_id(self) -> str | None:
        return self.result.current_test_id

    def run(self, ids: Sequence[str]) -> int:
        runtime = self._runtime
        result = self.result
        result.finished.clear()
        result.shouldStop = False
        self._settled = 0
        self._unrun = 0
        self._unrun_ids.clear()
        self._interrupted = []
        batch = self._index.batch(ids, runtime.sink.flush, self._unknown, self._settle)
        setattr(result, _RUN_ENTERED, True)
        rest: unittest.TestSuite | None = batch.suite
        while rest is not None:
            rest = self._run_part(rest, self._interrupted)
        if len(result.finished) + self._unrun < len(batch.tests):
            self._settle_rest(batch.tests)  # the suite stopped before its last segment
        sent = len(result.finished) + len(batch.unknown) + self._unrun
        emit_stray_output(runtime)
        runtime.sink.flush()
        return sent

    def _run_part(
        self, suite: unittest.TestSuite, interrupted: list[str]
    ) -> unittest.TestSuite | None:
        """Run ``suite``; after an interrupt inside a test (server mode), what is left of it.

        See the module docstring. The rest is returned, and run, outside the
        ``except`` clause: a test run there would see the interrupt as its own.
        """
        result = self.result
        try:
            suite.run(result)
            return None
        except KeyboardInterrupt as interrupt:
            escaped = result.escaped
            if not self._runtime.server or escaped is None or escaped.exception is not interrupt:
                raise
            rest = _after(suite, escaped.test)
            if rest is None:
                raise
        result.escaped = None
        interrupted.append(escaped.test_id)
        self._tidy_up(escaped)
        emit_stray_output(self._runtime)  # what tearDown and the cleanups printed: no test's
        return rest

    def _tidy_up(self, escaped: Escaped) -> None:
        """Run what unittest skipped after an interrupt: ``tearDown`` (if the test
        method was interrupted) and the cleanups; report their failures."""
        test = escaped.test
        if not isinstance(test, unittest.TestCase):
            return
        errors: list[str] = []
        if _TEST_METHOD_CODE is not None and _interrupted_in(escaped.exception, test):
            try:
                test.tearDown()
            except Exception:
                errors.append(traceback.format_exc())
        run_cleanups: Callable[[], object] = test.doCleanups  # returns False if one failed
        try:
            if run_cleanups() is False:
                errors.append(
                    "A cleanup failed (unittest keeps no traceback outside a test run).\n"
                )
        except Exception:
            errors.append(traceback.format_exc())
        if errors:
            emit_outcome(
                self._runtime,
                f"{escaped.test_id} (cleanup)",
                Status.FAIL,
                "".join(errors),
                name="traceback",
                mime_type=TRACEBACK_MIME_TYPE,
                runnable=False,
            )

    def _unknown(self, test_id: str) -> None:
        failed = self._index.failed_import(test_id)
        if failed is None:
            text = f"No test with id {test_id!r} was found."
            emit_outcome(self._runtime, test_id, Status.FAIL, text)
            return
        name, test = failed
        trace = Attachment(
            "traceback", _failure_of(test).encode("utf-8", "replace"), TRACEBACK_MIME_TYPE
        )
        reason = suites_differ(test_id, f"importing {name!r}")
        emit_outcome(self._runtime, test_id, Status.FAIL, reason, more=[trace])

    def _settle(self, segment: Sequence[tuple[str, unittest.TestCase]]) -> None:
        """Give a final status to each test of ``segment`` that unittest skipped over.

        Called right after the segment (one class's tests in a row, or one custom
        suite's) ran, so unittest's fixture state still describes it (see
        :meth:`_fixture_outcome`).
        """
        finished = self.result.finished
        done = finished[self._settled :]
        self._settled = len(finished)
        if len(done) == len(segment) and all(
            test_id == ran for (test_id, _), ran in zip(segment, done, strict=True)
        ):
            return
        self._report_unrun(segment, done)

    def _settle_rest(self, tests: Sequence[tuple[str, unittest.TestCase]]) -> None:
        """Settle what no segment settled: the run stopped early (``result.stop()``,
        failfast), before the hooks that settle the last segments."""
        self._report_unrun(tests, [*self.result.finished, *self._unrun_ids])
        self._settled = len(self.result.finished)

    def _report_unrun(
        self, tests: Sequence[tuple[str, unittest.TestCase]], reported: Sequence[str]
    ) -> None:
        """A final status for each of ``tests`` not among the ``reported`` ids."""
        remaining: dict[str, int] = {}
        for test_id in reported:
            remaining[test_id] = remaining.get(test_id, 0) + 1
        interrupted = self._interrupted
        for test_id, test in tests:
            if remaining.get(test_id, 0) > 0:
                remaining[test_id] -= 1
                continue
            outcome = self._fixture_outcome(test)
            if outcome is None and interrupted:
                status, text = (
                    Status.FAIL,
                    (
                        f"Not run: {interrupted[-1]} was interrupted (KeyboardInterrupt) "
                        "inside the custom suite that runs this test too."
                    ),
                )
            elif outcome is None:
                status, text = Status.FAIL, "The test was not run, and unittest did not say why."
            elif outcome.status is Status.SKIP:
                status, text = Status.SKIP, f"{outcome.test_id} skipped: {outcome.message}"
            else:
                last = outcome.message.strip().splitlines()[-1:] or [""]
                status, text = Status.FAIL, f"Not run: {outcome.test_id} failed: {last[0]}"
            emit_outcome(self._runtime, test_id, status, text)
            self._unrun += 1
            self._unrun_ids.append(test_id)

    def _fixture_outcome(self, test: unittest.TestCase) -> FixtureOutcome | None:
        """The failed (or skipped) fixture that kept ``test`` from running.

        unittest's own state says which, right after the test's segment: a
        module whose ``setUpModule`` failed (``_moduleSetUpFailed``, for the
        module of the last test it saw) skips its classes without trying their
        ``setUpClass``; a class whose ``setUpClass`` failed is marked
        (``_classSetupFailed``) until unittest tries it again. Both stay so
        across batches, as do the outcomes remembered here, so every test of a
        failed fixture says the same, whichever batch it came in.
        """
        result = self.result
        test_class = type(test)
        module = test_class.__module__
        outcomes = result.fixture_outcomes
        module_key = f"setUpModule ({module})"
        class_key = f"setUpClass ({strclass(test_class)})"
        previous = getattr(result, "_previousTestClass", None)
        if (
            getattr(result, "_moduleSetUpFailed", False)
            and getattr(previous, "__module__", None) == module
            and module_key in outcomes
        ):
            return outcomes[module_key]
        if getattr(test_class, "_classSetupFailed", False) and class_key in outcomes:
            return outcomes[class_key]
        for key in (class_key, module_key):  # unittest's state says nothing: the last word
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


def _after(suite: unittest.TestSuite, test: object) -> unittest.TestSuite | None:
    """What is left of ``suite`` after the step running ``test``, which raised.

    ``TestSuite.run`` drops each step it has run (``None``: documented since
    Python 3.4), so the first step left is the one under way: ``test`` itself,
    or a custom suite holding it. ``None`` if it is neither (a hook raised).
    """
    steps: list[object] = list(suite)  # run steps are None, whatever typeshed says
    for index, step in enumerate(steps):
        if step is None:
            continue
        if step is test or (
            isinstance(step, unittest.BaseTestSuite) and not isinstance(step, Hook)
        ):
            return unittest.TestSuite(cast("list[unittest.TestCase]", steps[index + 1 :]))
        return None
    return None


def _interrupted_in(exception: BaseException, test: unittest.TestCase) -> bool:
    """Whether ``exception`` came out of ``test``'s test method (not setUp, tearDown...)."""
    tb = exception.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code is _TEST_METHOD_CODE and frame.f_locals.get("self") is test:
            return True
        tb = tb.tb_next
    return False


def _failure_of(test: unittest.TestCase) -> str:
    """The traceback a failed import's test (``_FailedTest``) fails with, run on the side."""
    scratch = unittest.TestResult()
    test.run(scratch)
    problems = scratch.errors + scratch.failures
    return problems[0][1] if problems else f"{test.id()} did not fail when run again."
