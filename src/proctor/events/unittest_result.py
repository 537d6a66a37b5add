"""Adapter from the ``unittest.TestResult`` API to events.

:class:`EventResult` is a ``unittest.TestResult`` that turns what unittest (and
testtools, which extends the API with ``details`` and ``tags``) tells it into
events on a :class:`~proctor.events.sink.Sink`. Run any unittest suite with it
and the sink receives a stream python-subunit reads as it reads the output of
``python -m subunit.run``.

What a test becomes (all events carry its id; times are ns since the epoch):

* ``startTest``: one ``inprogress`` event, then the ``flush`` hook, so a
  consumer knows which test a process that dies next was running.
* outcomes are **held** until ``stopTest``. unittest may report several for one
  test (the method fails, then ``tearDown`` or a cleanup errors too; since
  Python 3.11 errors are reported before ``tearDown`` runs), and testtools'
  ``ExtendedToStreamDecorator`` then writes two final statuses, which makes
  python-subunit count the test twice. Here a test gets exactly one final
  status, the worst of its outcomes (fail > uxsuccess > xfail > skip >
  success), and every traceback is kept (``traceback``, ``traceback-1``...).
* ``stopTest``: the captured output (``stdout``/``stderr``/``log`` from the
  ``output`` source), then the held files in the order they were reported, then
  the final status with the test's tags, all sharing one timestamp (as
  testtools does), so duration = final timestamp - ``inprogress`` timestamp.
* a test that reaches ``stopTest`` with no outcome **while an exception is
  propagating** (unittest re-raises ``KeyboardInterrupt`` out of the test and
  calls ``stopTest`` on the way, in a ``finally``) fails, with that
  exception's traceback; :attr:`EventResult.escaped` names it, for a runner
  that wants to go on. With no exception under way, no outcome is a success
  (a custom ``TestCase`` that reports nothing), as unittest counts it.

Attachments: tracebacks are ``traceback`` with python-subunit's MIME type
(:data:`~proctor.wire.record.TRACEBACK_MIME_TYPE`) in unittest's own format
(``python -m unittest`` prints the same text); skip reasons are ``reason`` as
``text/plain; charset=utf8``; testtools details keep their names and MIME types.

Subtests: a failing subtest adds a file ``traceback (<params>)`` (for example
``traceback (i=1)``) to its **parent**, and the parent fails; passing subtests
cost nothing and emit nothing; a skipped subtest adds ``reason (<params>)`` and
leaves the parent's outcome alone (unittest reports the parent as passed). This
is testtools' representation (>= 2.8.4) for failures, chosen over separate,
non-runnable subtest ids because (a) python-subunit and stestr then count
tests and outcomes exactly as unittest does, one test with the parent's
outcome, (b) every id in the stream stays runnable, so "rerun what failed"
never names a subtest no loader can find, and (c) the parameters and the
traceback of every failing subtest are still there, in the file name and its
content. (testtools reports a *skipped* subtest as a separate ``skip`` test
id; we keep it on the parent for the same reasons.)

Outcomes for something that never started (unittest's class and module
fixtures: ``setUpClass (pkg.mod.Class)``, ``tearDownModule (pkg.mod)``...) are
emitted at once, marked ``runnable=False`` since no loader can run them by that
id, and remembered in :attr:`EventResult.fixture_outcomes` so a runner can say
why the tests of that class never ran.

The result keeps no per-test history (unlike ``unittest.TestResult``, whose
``failures`` and ``errors`` lists grow for the whole run): only counters, so a
worker can run for hours in constant memory. Its cost per passing test is two
events and no system call beyond what ``flush`` and ``output`` do.
"""

from __future__ import annotations

import sys
import time as _time
import traceback
import unittest
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, NamedTuple, Protocol

from proctor.events.emit import ending_events, status_event
from proctor.events.sink import Sink
from proctor.wire.event import (
    OUTCOME_RANK,
    TEXT_MIME_TYPE,
    TRACEBACK_MIME_TYPE,
    Status,
    datetime_to_ns,
    worse_outcome,
)
from proctor.wire.record import Attachment

__all__ = [
    "REASON_MIME_TYPE",
    "Escaped",
    "EventResult",
    "FixtureOutcome",
    "OutputSource",
    "subtest_description",
]

REASON_MIME_TYPE = TEXT_MIME_TYPE
"""What python-subunit labels a skip reason with (:data:`~proctor.wire.record.TEXT_MIME_TYPE`)."""

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
OptExcInfo = ExcInfo | tuple[None, None, None]

# unittest's private helper types, looked up once: subtests are reported with a
# ``_SubTest`` standing for the parent, fixture failures with an ``_ErrorHolder``.
_SUBTEST_TYPE: type | None = getattr(unittest.case, "_SubTest", None)
_HOLDER_TYPE: type | None = getattr(unittest.suite, "_ErrorHolder", None)

# Statuses the per-test path uses, as module globals (an Enum attribute costs ~50 ns).
_NONE = Status.NONE
_INPROGRESS = Status.INPROGRESS
_SUCCESS = Status.SUCCESS


class OutputSource(Protocol):
    """Where captured output comes from (the worker's fd or sys capture).

    :meth:`take` returns what was captured since the previous call, as
    attachments (usually ``stdout``, ``stderr`` and ``log``), and an empty
    list, cheaply, when nothing was.
    """

    def take(self) -> list[Attachment]: ...


class _Content(Protocol):
    """What this module needs of a testtools ``Content`` detail."""

    @property
    def content_type(self) -> object: ...

    def iter_bytes(self) -> Iterable[bytes]: ...


Details = Mapping[str, _Content]


class Escaped(NamedTuple):
    """A test that ended with an exception propagating out of it (``KeyboardInterrupt``)."""

    test: object
    test_id: str
    exception: BaseException


class FixtureOutcome(NamedTuple):
    """A class or module fixture that reported an outcome (it failed or skipped)."""

    test_id: str
    status: Status
    message: str


class _Open:
    """A test between ``startTest`` and ``stopTest``."""

    __slots__ = ("files", "start", "started", "status", "tags", "test", "test_id", "tracebacks")

    def __init__(
        self, test: object, test_id: str, start: int, tags: frozenset[str], started: bool = True
    ) -> None:
        self.test = test
        self.started = started
        self.test_id = test_id
        self.start = start
        self.status = _NONE
        self.tags = tags
        self.files: list[Attachment] | None = None
        self.tracebacks = 0

    def add(self, attachment: Attachment) -> None:
        if self.files is None:
            self.files = [attachment]
        else:
            self.files.append(attachment)

    def add_traceback(self, text: str, name: str = "traceback") -> None:
        if name == "traceback":
            if self.tracebacks:
                name = f"traceback-{self.tracebacks}"
            self.tracebacks += 1
        self.add(Attachment(name, text.encode("utf-8", "replace"), TRACEBACK_MIME_TYPE))

    def settle(self, status: Status) -> None:
        self.status = worse_outcome(self.status, status)


def subtest_description(subtest: object, parent_id: str) -> str:
    """The parameter part of a subtest's id, e.g. ``(i=1)`` or ``[msg] (i=1)``.

    unittest builds a subtest's id as ``<parent id> <description>``; only the
    public ``id()`` is used, so any subtest-like object works.
    """
    sub_id: str = subtest.id()  # type: ignore[attr-defined]
    if sub_id.startswith(parent_id + " "):
        return sub_id[len(parent_id) + 1 :]
    return sub_id


class EventResult(unittest.TestResult):
    """A ``unittest.TestResult`` that sends each test's story to a sink as events.

    :param sink: receives the events.
    :param output: where captured output comes from; taken at every
        ``stopTest`` (and for fixture outcomes) and attached to the test.
    :param flush: called right after each ``inprogress`` event is sent, so a
        buffering sink can push it (and the previous test's result) out before
        the test runs.
    :param clock: nanoseconds since the epoch; injectable for tests.
    :param tags: tags every test's final status carries (testtools' global tags
        from :meth:`tags` outside a test are added to these).
    """

    def __init__(
        self,
        sink: Sink,
        *,
        output: OutputSource | None = None,
        flush: Callable[[], None] | None = None,
        clock: Callable[[], int] = _time.time_ns,
        tags: Iterable[str] = (),
    ) -> None:
        super().__init__()
        self._send = sink.send
        self._output = output
        self._flush = flush
        self._clock = clock
        self._real_clock = clock
        self._global_tags = frozenset(tags)
        self._stack: list[_Open] = []
        self.finished: list[str] = []
        """Ids of the (runnable) tests that got a final status, in order; clear it at will."""
        self.fixture_outcomes: dict[str, FixtureOutcome] = {}
        """Class/module fixture outcomes by id, e.g. ``setUpClass (m.C)``."""
        self.counts: dict[Status, int] = dict.fromkeys(OUTCOME_RANK, 0)
        """Final statuses emitted so far, by status."""
        self.escaped: Escaped | None = None
        """The last test failed because an exception escaped it (see the module docstring)."""

    # -- the run ------------------------------------------------------------

    @property
    def current_test_id(self) -> str | None:
        """The id of the test under way, if any (for a stdin request)."""
        return self._stack[-1].test_id if self._stack else None

    def wasSuccessful(self) -> bool:
        """No test failed and none passed unexpectedly."""
        return not (self.counts[Status.FAIL] or self.counts[Status.UXSUCCESS])

    def startTest(self, test: unittest.TestCase) -> None:
        self.testsRun += 1
        test_id = test.id()
        now = self._clock()
        self._stack.append(_Open(test, test_id, now, self._global_tags))
        self._send(status_event(test_id, _INPROGRESS, now))
        if self._flush is not None:
            self._flush()

    def stopTest(self, test: unittest.TestCase) -> None:
        stack = self._stack
        if stack and stack[-1].test is test:
            current = stack.pop()
        else:
            found = self._find(test)
            if found is None:
                return
            stack.remove(found)
            current = found
        if current.status is _NONE:
            self._fail_if_escaping(current)
        self._finish(current, runnable=True)

    def _fail_if_escaping(self, current: _Open) -> None:
        """No outcome: a failure if an exception is propagating out of the test."""
        exc_type, exc, tb = sys.exc_info()
        if exc_type is None or exc is None:
            return
        current.add_traceback(self._format((exc_type, exc, tb), current.test))
        current.status = Status.FAIL
        self.escaped = Escaped(current.test, current.test_id, exc)

    def _finish(self, current: _Open, *, runnable: bool) -> None:
        now = self._clock()
        test_id = current.test_id
        send = self._send
        files: list[Attachment] = self._output.take() if self._output is not None else []
        if current.files:
            files.extend(current.files)
        status = current.status
        if status is _NONE:
            # No outcome was reported (a custom TestCase, or a test stopped by
            # failfast) and nothing escaped it: unittest counts such a test as
            # run and not failed.
            status = _SUCCESS
        for event in ending_events(test_id, status, files, now, current.tags, runnable):
            send(event)
        self.counts[status] += 1
        if runnable:
            self.finished.append(test_id)

    def _find(self, test: object) -> _Open | None:
        for candidate in reversed(self._stack):
            if candidate.test is test:
                return candidate
        return None

    def _open_for(self, test: object) -> tuple[_Open, str | None]:
        """The open test an outcome belongs to, and the subtest description.

        An outcome for something that never started (a fixture's
        ``_ErrorHolder``) gets a record of its own, finished by the caller.
        """
        stack = self._stack
        if stack:
            top = stack[-1]
            if top.test is test:
                return top, None
            if _SUBTEST_TYPE is not None and isinstance(test, _SUBTEST_TYPE):
                parent = self._find(test.test_case)  # type: ignore[attr-defined]
                if parent is not None:
                    return parent, subtest_description(test, parent.test_id)
            found = self._find(test)
            if found is not None:
                return found, None
        test_id: str = test.id()  # type: ignore[attr-defined]
        return _Open(test, test_id, self._clock(), self._global_tags, started=False), None

    def _settle(self, test: object, status: Status, current: _Open, message: str = "") -> None:
        """Record ``status``; emit at once when ``current`` never started."""
        current.settle(status)
        if current.started:
            return
        # A fixture (or an outcome without startTest): report it now.
        runnable = not (_HOLDER_TYPE is not None and isinstance(test, _HOLDER_TYPE))
        if not runnable:
            self.fixture_outcomes[current.test_id] = FixtureOutcome(
                current.test_id, current.status, message
            )
        self._finish(current, runnable=runnable)

    # -- outcomes -------------------------------------------------------------

    def addSuccess(self, test: unittest.TestCase, details: Details | None = None) -> None:
        stack = self._stack
        if stack and stack[-1].test is test and not details:
            current = stack[-1]
            if current.status is _NONE:
                current.status = _SUCCESS
            return
        current, _ = self._open_for(test)
        self._add_details(current, details)
        self._settle(test, Status.SUCCESS, current)

    def addError(
        self, test: unittest.TestCase, err: OptExcInfo | None = None, details: Details | None = None
    ) -> None:
        self._failed(test, err, details, Status.FAIL)

    def addFailure(
        self, test: unittest.TestCase, err: OptExcInfo | None = None, details: Details | None = None
    ) -> None:
        self._failed(test, err, details, Status.FAIL)

    def addExpectedFailure(
        self, test: unittest.TestCase, err: OptExcInfo | None = None, details: Details | None = None
    ) -> None:
        self._failed(test, err, details, Status.XFAIL)

    def addUnexpectedSuccess(self, test: unittest.TestCase, details: Details | None = None) -> None:
        current, _ = self._open_for(test)
        self._add_details(current, details)
        self._settle(test, Status.UXSUCCESS, current)
        if self.failfast:
            self.stop()

    def addSkip(
        self, test: unittest.TestCase, reason: str | None = None, details: Details | None = None
    ) -> None:
        current, subtest = self._open_for(test)
        self._add_details(current, details)
        if reason is not None:
            name = "reason" if subtest is None else f"reason {subtest}"
            current.add(Attachment(name, reason.encode("utf-8", "replace"), REASON_MIME_TYPE))
        if subtest is None:
            self._settle(test, Status.SKIP, current, reason or "")

    def addSubTest(
        self, test: unittest.TestCase, subtest: unittest.TestCase, err: OptExcInfo | None
    ) -> None:
        if err is None:
            return
        parent = self._find(test)
        if parent is None:
            parent, _ = self._open_for(test)
        description = subtest_description(subtest, parent.test_id)
        text = self._format(err, subtest)
        parent.add_traceback(text, f"traceback {description}")
        self._settle(test, Status.FAIL, parent, text)
        if self.failfast:
            self.stop()

    def addDuration(self, test: unittest.TestCase, elapsed: float) -> None:
        """Ignored: durations come from the events' timestamps (Python 3.12+ API)."""

    def _failed(
        self, test: object, err: OptExcInfo | None, details: Details | None, status: Status
    ) -> None:
        current, subtest = self._open_for(test)
        self._add_details(current, details)
        message = ""
        if err is not None and err[0] is not None:
            message = self._format(err, test)
            name = "traceback" if subtest is None else f"traceback {subtest}"
            current.add_traceback(message, name)
        if subtest is not None and status is Status.FAIL:
            current.settle(status)
        else:
            self._settle(test, status, current, message)
        if self.failfast and status is Status.FAIL:
            self.stop()

    def _format(self, err: OptExcInfo, test: object) -> str:
        """A traceback exactly as ``python -m unittest`` prints it."""
        exc_type, value, tb = err
        try:
            # unittest's own formatting: drops its frames, honours tb_locals.
            return self._exc_info_to_string(err, test)  # type: ignore[attr-defined,no-any-return]
        except Exception:  # a hostile exception or test object: still say something
            return "".join(traceback.format_exception(exc_type, value, tb))

    def _add_details(self, current: _Open, details: Details | None) -> None:
        """testtools details: one attachment each, MIME type as testtools renders it."""
        if not details:
            return
        for name, content in details.items():
            chunks = b"".join(content.iter_bytes())
            mime = repr(content.content_type)
            if name == "traceback" or name.startswith("traceback "):
                current.tracebacks += name == "traceback"
            current.add(Attachment(name, chunks, mime))

    # -- testtools extensions ------------------------------------------------------

    def tags(self, new_tags: Iterable[str], gone_tags: Iterable[str]) -> None:
        """Change tags: of the test under way, or of every later test outside one."""
        if self._stack:
            current = self._stack[-1]
            current.tags = (current.tags | frozenset(new_tags)) - frozenset(gone_tags)
        else:
            self._global_tags = (self._global_tags | frozenset(new_tags)) - frozenset(gone_tags)

    def time(self, a_datetime: Any) -> None:
        """Use this (aware) time for later events; ``None`` returns to the clock."""
        if a_datetime is None:
            self._clock = self._real_clock
        else:
            fixed = datetime_to_ns(a_datetime)
            self._clock = lambda: fixed

    def progress(self, offset: int, whence: int) -> None:
        """Ignored, as testtools' stream adapter ignores it."""

    def current_tags(self) -> frozenset[str]:
        """The tags the next final status would carry."""
        return self._stack[-1].tags if self._stack else self._global_tags
