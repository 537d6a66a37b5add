"""pytest suites, collected once and run on demand inside the persistent worker.

The worker calls ``pytest.main`` in-process with a plugin of its own
(:class:`PytestSuite`). pytest parses the configuration, loads conftests and
plugins and collects as usual; then, instead of its own test loop, the
plugin's ``pytest_runtestloop`` hands the collected session to the worker
(listing, running ids on command) and returns when the worker is done, after
which pytest finishes the session normally. Ids are pytest's node ids
(``tests/test_x.py::TestC::test_y[param]``, relative to pytest's rootdir, as
``pytest`` prints them when run from the project root).

Each id runs through pytest's ``pytest_runtest_protocol`` with a ``nextitem``,
which is how pytest decides what fixtures to tear down after a test. Within a
batch that is the next test of the batch. After the last test of a batch the
next test is not known yet, so the worker passes the test's parent collector:
function-scoped fixtures end with the test, while class, module, package and
session fixtures stay up. When the next batch starts, whatever its first test
does not need is torn down first (``SetupState.teardown_exact``, pytest's own
mechanism; ``_setupstate`` is private API, present since pytest 7); at quit,
everything is. A failure there is reported as ``<collector id> (teardown)``,
``runnable=False``, since pytest has no test to pin it on (it would report
``ERROR at teardown of`` the last test that used the fixture).

Outcomes: one final status per test from its setup, call and teardown
reports: a failure in any phase fails the test (pytest would count a passing
test with a failing teardown twice, as passed and as an error); ``skip``
from ``pytest.skip`` or a skip mark, with the ``reason``; ``xfail`` for an
expected failure and ``uxsuccess`` for a non-strict unexpected pass (strict
ones fail, as in pytest). Subtests (pytest >= 9, and unittest ``subTest``
under pytest) use the same representation as the unittest adapter: a failing
subtest adds ``traceback <description>`` to its test, which fails.
pytest re-raises ``KeyboardInterrupt`` and ``pytest.exit()`` out of a test
before reporting it; the test then fails with that traceback. After an
interrupt a server tears down what the next test does not need and goes on
(it runs in its own session: a SIGINT is never the user's Ctrl-C), one-shot
mode stops; after ``pytest.exit()`` the worker sends an ``error`` control
event with ``exit`` and stops (:attr:`PytestSuite.stopped`).

Output is captured by pytest itself (its ``--capture`` setting; fd-level by
default, so ``capsys``/``capfd``/``caplog`` behave as under ``pytest``), and its
captured sections become the ``stdout``, ``stderr`` and ``log`` attachments.
With ``--no-capture`` the worker passes ``-s``. A collection error becomes a
failing test named by the collector's id (``tests/test_bad.py``), with the
error, and the other tests still run (as ``--continue-on-collection-errors``);
a module-level skip becomes a skipped test of that id. pytest's terminal
report is silenced (it would be noise on the worker's stdout).
pytest-xdist's distribution (``-n`` in a project's ``addopts``) is turned
off: the controller does the distributing.

pytest's cache is the worker's own: ``-o cache_dir=<a temporary directory>``
(under ``--capture-dir`` when given), removed when pytest returns. So a
project whose ``addopts`` hold cache options (``--ff``, ``--lf``, ``--nf``,
``--sw``, ``--cache-clear``), or whose plugins use ``config.cache``, runs as
usual; and not the project's ``.pytest_cache``,
because several workers would write it at once (each worker's slice of
``lastfailed`` overwriting the others'), a worker's ``--lf`` would deselect
tests by the user's last ``pytest`` run, and ``--cache-clear`` in ``addopts``
would wipe the user's cache on every run. ``--lf`` and ``--sw`` are switched
off (:class:`_CacheChoosesNothing`): the controller chooses the tests. As that
cache starts empty and is thrown away, the plugins that keep history in it for
the next session (last-failed, new-first) are unregistered: there is no next
session, and they cost a hook per report.
"""

from __future__ import annotations

import contextlib
import faulthandler
import io
import os
import shutil
import sys
import tempfile
import traceback
import warnings
from collections.abc import Callable, Sequence
from typing import IO, Any

import pytest

from proctor.events.emit import ending_events, status_event
from proctor.runner.protocol import WorkerExit, control_event
from proctor.runner.worker.channels import wire_aliases
from proctor.runner.worker.suite import (
    Runtime,
    SuiteBody,
    emit_outcome,
    emit_stray_output,
    suites_differ,
)
from proctor.runner.worker.warmth import LEARNED, rewrite_spec
from proctor.wire.event import (
    OUTCOME_RANK,
    TEXT_MIME_TYPE,
    TRACEBACK_MIME_TYPE,
    Event,
    Status,
    worse_outcome,
)
from proctor.wire.record import Attachment

__all__ = ["PytestSuite", "run_pytest"]

# pytest's captured sections ("Captured stdout call"...) -> attachment names.
_SECTIONS = frozenset({"stdout", "stderr", "log"})


def _subtest_description(report: pytest.TestReport) -> str | None:
    """The description of a subtest report, ``None`` for a test's own report.

    pytest 9 has ``SubtestReport._sub_test_description``; the pytest-subtests
    plugin (pytest < 9) has ``SubTestReport.sub_test_description``. Looked up
    by name because neither is public API.
    """
    if not hasattr(report, "context"):
        return None
    for name in ("_sub_test_description", "sub_test_description"):
        method = getattr(report, name, None)
        if callable(method):
            return str(method())
    return None


def _report_text(report: Any) -> str:
    """pytest's text of a report's ``longrepr``, as its terminal shows it.

    ``report.longreprtext`` strips the text, which takes the indentation off
    the first line of a traceback (``    def test_x():``): only blank lines
    are trimmed here.
    """
    try:
        from _pytest._io import TerminalWriter

        out = io.StringIO()
        writer = TerminalWriter(out)
        writer.hasmarkup = False
        report.toterminal(writer)
        return out.getvalue().strip("\n").rstrip()
    except Exception:  # private API moved: pytest's own (stripped) text
        return str(report.longreprtext)


def _last_line(text: str) -> str:
    """The line of a report that says what went wrong (its last non-blank one)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1].removeprefix("E ").strip() if lines else text


def _skip_reason(report: Any) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        reason = str(longrepr[2])
    else:
        reason = str(getattr(report, "longreprtext", "") or "")
    return reason.removeprefix("Skipped: ")


class _Open:
    """A test between ``logstart`` and ``logfinish``."""

    __slots__ = ("files", "last", "start", "status", "subtest_failed", "test_id", "tracebacks")

    def __init__(self, test_id: str, start: int) -> None:
        self.test_id = test_id
        self.start = start
        self.status = Status.NONE
        self.files: list[Attachment] = []
        self.last: pytest.TestReport | None = None
        self.subtest_failed = False
        self.tracebacks = 0

    def settle(self, status: Status) -> None:
        self.status = worse_outcome(self.status, status)

    def traceback(self, text: str, name: str = "traceback") -> None:
        if name == "traceback":
            if self.tracebacks:
                name = f"traceback-{self.tracebacks}"
            self.tracebacks += 1
        self.files.append(Attachment(name, text.encode("utf-8", "replace"), TRACEBACK_MIME_TYPE))

    def reason(self, text: str, name: str = "reason") -> None:
        self.files.append(Attachment(name, text.encode("utf-8", "replace"), TEXT_MIME_TYPE))

    def add(self, report: pytest.TestReport) -> None:
        description = _subtest_description(report)
        if description is not None:
            if report.failed:
                self.subtest_failed = True
                self.traceback(report.longreprtext, f"traceback {description}")
            elif report.skipped and not hasattr(report, "wasxfail"):
                self.reason(_skip_reason(report), f"reason {description}")
            return
        self.last = report
        xfail = getattr(report, "wasxfail", None)
        if report.failed:
            self.settle(Status.FAIL)
            text = _report_text(report)
            if (
                report.when != "call"
            ):  # pytest's "ERROR at setup of test_x" (an error, not a failure)
                text = f"ERROR at {report.when} of {report.head_line or self.test_id}\n\n{text}"
            self.traceback(text)
        elif report.skipped:
            if xfail is not None:
                self.settle(Status.XFAIL)
                self.reason(str(xfail))
            else:
                self.settle(Status.SKIP)
                self.reason(_skip_reason(report))
        elif report.when == "call":
            # A non-strict XPASS passes, as under pytest (a strict one is failed by pytest).
            self.settle(Status.SUCCESS)
            if xfail is not None:
                self.reason(f"XPASS {xfail}".rstrip())

    def attachments(self) -> list[Attachment]:
        """Captured output (from the last report: pytest accumulates sections), then files."""
        parts: dict[str, list[str]] = {}
        if self.last is not None:
            for title, content in self.last.sections:
                words = title.split()
                if len(words) >= 2 and words[0] == "Captured" and words[1] in _SECTIONS:
                    parts.setdefault(words[1], []).append(content)
        captured = [
            Attachment(name, "".join(chunks).encode("utf-8", "replace"), TEXT_MIME_TYPE)
            for name, chunks in parts.items()
        ]
        return captured + self.files


class _SessionStopped(Exception):
    """pytest's session wants to stop (``session.shouldstop``/``shouldfail``)."""


class _Chain:
    """Stands for "a next test needing exactly these collectors" in ``teardown_exact``."""

    def __init__(self, nodes: list[Any]) -> None:
        self._nodes = nodes

    def listchain(self) -> list[Any]:
        return self._nodes

    def __bool__(self) -> bool:
        return True


class _OneProcess:
    """Turns pytest-xdist's distribution off (``-n auto`` in a project's ``addopts``).

    The worker *is* one of the controller's processes: xdist would otherwise
    take over the test loop and start workers of its own. Done the way xdist's
    own workers do it, before xdist's (``trylast``) configure looks.
    """

    @pytest.hookimpl(tryfirst=True)
    def pytest_configure(self, config: pytest.Config) -> None:
        option = config.option
        if getattr(option, "dist", "no") != "no" or getattr(option, "numprocesses", None):
            option.dist = "no"
            option.numprocesses = 0
            option.tx = []


class _CacheChoosesNothing:
    """Switches off the cache options that choose tests: ``--lf`` and ``--sw``.

    The controller chooses what a worker runs: ``--lf`` would deselect tests
    it will ask for, ``--lfnf=none`` every test (with ``--ff`` too, when no
    failure is known), and ``--sw`` would stop after a failure. They may sit
    in a project's ``addopts``, so they are accepted and ignored (``--ff`` and
    ``--nf`` only reorder, and find no history in the worker's cache). Done
    before pytest's ``configure``, where the cache and stepwise plugins read
    the options: the last-failed plugin filters collection from its start.
    """

    @pytest.hookimpl(tryfirst=True)
    def pytest_cmdline_main(self, config: pytest.Config) -> None:
        option = config.option
        for name in ("lf", "stepwise", "stepwise_skip", "stepwise_reset"):
            if getattr(option, name, False):
                setattr(option, name, False)
        if getattr(option, "last_failed_no_failures", "all") != "all":
            option.last_failed_no_failures = "all"


class PytestSuite:
    """The pytest plugin that is also the worker's :class:`~proctor.runner.worker.suite.Suite`."""

    framework = "pytest"

    def __init__(self, runtime: Runtime, body: SuiteBody, crash_file: IO[bytes] | None) -> None:
        self._runtime = runtime
        self._body = body
        self._crash_file = crash_file
        self._session: pytest.Session | None = None
        self._ids: list[str] = []
        self._items: dict[str, list[pytest.Item]] = {}
        self._collected: dict[str, tuple[Status, str]] = {}
        self._aliases: dict[str, str] | None = None  # wire id -> id, built when first needed
        self._open: _Open | None = None
        self._ended: _Open | None = None  # finished, its final status not sent yet
        self._session_seen: pytest.Session | None = None
        self._sent = 0
        self._null: IO[str] | None = None
        self.served = False
        self.stopped: str | None = None
        """Why a test stopped the session (``pytest.exit()``), if one did."""
        self.interrupted = False
        """Whether a ``KeyboardInterrupt`` inside a test stopped the session (one-shot mode)."""
        self.internal_error: str | None = None
        """pytest's ``INTERNALERROR>`` report, if it had one."""
        self._config: pytest.Config | None = None
        self._listings = 0
        self._collection_warnings: set[int] = set()  # ids of the reporter's WarningReports

    # -- pytest hooks ---------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_configure(self, config: pytest.Config) -> None:
        self._config = config
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None and hasattr(reporter, "_tw"):
            from _pytest.config import create_terminal_writer

            self._null = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - closed at unconfigure
            reporter._tw = create_terminal_writer(config, self._null)
        if self._crash_file is not None:  # pytest's faulthandler plugin replaced ours
            faulthandler.enable(file=self._crash_file, all_threads=True)
        cache = getattr(config, "cache", None)
        if cache is not None:
            cache.set = _lenient(cache.set)
        # The last-failed and new-first plugins keep history for the next session;
        # the worker's cache starts empty and is thrown away, so they could only
        # cost (a hook per report, every node id written at the end).
        for name in ("lfplugin", "nfplugin"):
            if config.pluginmanager.has_plugin(name):
                config.pluginmanager.unregister(name=name)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self._null is not None:
            self._null.close()
        # For a watch zygote that forked this worker: how pytest rewrote asserts.
        LEARNED.pytest_session = True
        LEARNED.rewrite = rewrite_spec(config)

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        """Where an interrupt that stopped the session came from, on stderr (the
        terminal report that would show it is silenced)."""
        if not isinstance(excinfo.value, pytest.exit.Exception):
            print(excinfo.getrepr(style="short"), file=sys.stderr)

    def pytest_internalerror(self, excrepr: Any, excinfo: Any) -> None:
        """pytest's internal error (a plugin's hook raised), in its own words, on
        stderr: the terminal report that would show it is silenced."""
        text = "\n".join(f"INTERNALERROR> {line}" for line in str(excrepr).splitlines())
        self.internal_error = text
        print(text, file=sys.stderr)

    @pytest.hookimpl(trylast=True)  # after the terminal reporter has filed it
    def pytest_warning_recorded(
        self, warning_message: Any, when: str, nodeid: str, location: Any
    ) -> None:
        """A warning: attached to its test (``warnings``); the worker's summary of
        them all is written as pytest writes it, at the end (:meth:`close`)."""
        if when != "runtest":
            reporter = self._reporter()
            filed = reporter.stats.get("warnings") if reporter is not None else None
            if filed:
                self._collection_warnings.add(id(filed[-1]))
            return
        current = self._ended or self._open
        if current is not None and current.test_id == nodeid:
            text = warnings.formatwarning(
                warning_message.message,
                warning_message.category,
                warning_message.filename,
                warning_message.lineno,
                warning_message.line,
            )
            current.files.append(
                Attachment("warnings", text.encode("utf-8", "replace"), TEXT_MIME_TYPE)
            )

    def _reporter(self) -> Any:
        config = self._config
        return config.pluginmanager.get_plugin("terminalreporter") if config is not None else None

    def warnings_summary(self) -> str:
        """pytest's "warnings summary", as its terminal would show it ("" if none).

        Warnings of collection and configuration are the same in every worker:
        a server shows them only if it listed the tests (the controller asks
        one worker to), so that a run shows each once.
        """
        reporter = self._reporter()
        config = self._config
        filed = getattr(reporter, "stats", {}).get("warnings") if reporter is not None else None
        if not filed or config is None:
            return ""
        from _pytest.config import create_terminal_writer

        if self._runtime.server and self._listings < 2:  # serve() asks once for the count
            filed[:] = [w for w in filed if id(w) not in self._collection_warnings]
        out = io.StringIO()
        saved = reporter._tw
        try:
            reporter._tw = create_terminal_writer(config, out)
            reporter._tw.hasmarkup = False
            reporter.summary_warnings()
        except Exception:  # private API moved: no summary, the attachments remain
            return ""
        finally:
            reporter._tw = saved
        return out.getvalue()

    def why_not_served(self, code: int) -> str:
        """pytest's own reason for stopping before its test loop (exit ``code``), in
        the words of its short summary; its full report is in the worker's output."""
        reasons = [
            f"ERROR {nodeid} - {_last_line(text)}"
            for nodeid, (status, text) in self._collected.items()
            if status is Status.FAIL
        ]
        session = self._session_seen
        stops = (getattr(session, "shouldfail", False), getattr(session, "shouldstop", False))
        reasons.extend(f"Interrupted: {stop}" for stop in stops if stop)
        if self.internal_error:
            reasons.append(_last_line(self.internal_error))
        what = f"pytest stopped before running tests (exit code {code})"
        if not reasons:
            return f"{what}; its output says why"
        return f"{what}: " + "; ".join(reasons)

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self._session_seen = session

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self._collected[report.nodeid or "<session>"] = (Status.FAIL, report.longreprtext)
        elif report.skipped:
            self._collected[report.nodeid or "<session>"] = (Status.SKIP, _skip_reason(report))

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self._ids = list(self._collected)
        for item in session.items:
            items = self._items.get(item.nodeid)
            if items is None:
                self._items[item.nodeid] = [item]
                self._ids.append(item.nodeid)
            else:
                items.append(item)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        self._session = session
        self.served = True
        emit_stray_output(self._runtime)
        try:
            self._body(self)
        except _SessionStopped:
            pass  # the error control event said so; pytest finishes the session
        finally:
            self.close()
        return True

    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        now = self._runtime.clock()
        self._open = _Open(nodeid, now)
        sink = self._runtime.sink
        sink.send(status_event(nodeid, Status.INPROGRESS, now))
        sink.flush()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        current = self._open
        if current is not None and report.nodeid == current.test_id:
            current.add(report)

    def pytest_runtest_logfinish(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        current, self._open = self._open, None
        if current is None or current.test_id != nodeid:
            return
        # Sent once its protocol returns (_emit_ended): pytest's warnings plugin
        # reports the test's warnings after logfinish.
        self._ended = current

    def _emit_ended(self) -> None:
        """The final status of the test whose protocol just ended, with its files."""
        current, self._ended = self._ended, None
        if current is None:
            return
        nodeid = current.test_id
        if current.subtest_failed and OUTCOME_RANK[current.status] <= OUTCOME_RANK[Status.SUCCESS]:
            current.status = Status.FAIL
        status = current.status if current.status is not Status.NONE else Status.FAIL
        now = self._runtime.clock()
        send = self._runtime.sink.send
        for event in ending_events(nodeid, status, current.attachments(), now):
            send(event)
        self._sent += 1

    # -- the Suite protocol ---------------------------------------------------

    def test_ids(self) -> Sequence[str]:
        self._listings += 1
        return self._ids

    def current_test_id(self) -> str | None:
        return self._open.test_id if self._open is not None else None

    def run(self, ids: Sequence[str]) -> int:
        runtime = self._runtime
        self._sent = 0
        extra = 0
        items: list[pytest.Item] = []
        for test_id in ids:
            found = self._items.get(test_id)
            if found is None:
                test_id = self._as_collected(test_id)
                found = self._items.get(test_id)
            if found is not None:
                items.extend(found)
                continue
            self._run_items(items)
            items = []
            collected = self._collected.get(test_id)
            if collected is not None:
                status, text = collected
                name, mime = ("traceback", TRACEBACK_MIME_TYPE)
                if status is Status.SKIP:
                    name, mime = ("reason", TEXT_MIME_TYPE)
                emit_outcome(runtime, test_id, status, text, name=name, mime_type=mime)
            else:
                self._unknown(test_id)
            extra += 1
        self._run_items(items)
        emit_stray_output(runtime)
        runtime.sink.flush()
        return self._sent + extra

    def _unknown(self, test_id: str) -> None:
        """Fail an id not collected here, with the collection error that explains it, if any."""
        runtime = self._runtime
        holder = self._collector_of(test_id)
        if holder is None:
            text = f"No test with id {test_id!r} was found."
            emit_outcome(runtime, test_id, Status.FAIL, text)
            return
        status, text = self._collected[holder]
        if status is Status.SKIP:
            reason = (
                f"{holder} was skipped in this worker ({text}), though the worker that listed "
                f"the tests collected {test_id!r}: the suites differ between workers."
            )
            emit_outcome(runtime, test_id, Status.SKIP, reason)
            return
        trace = Attachment("traceback", text.encode("utf-8", "replace"), TRACEBACK_MIME_TYPE)
        reason = suites_differ(test_id, f"collecting {holder!r}")
        emit_outcome(runtime, test_id, Status.FAIL, reason, more=[trace])

    def _collector_of(self, test_id: str) -> str | None:
        """The deepest collector that failed (or skipped) here and would hold ``test_id``."""
        best: str | None = None
        for nodeid in self._collected:
            if nodeid == "<session>":
                continue
            if test_id.startswith((nodeid + "::", nodeid + "/")) and (
                best is None or len(nodeid) > len(best)
            ):
                best = nodeid
        return best

    def _as_collected(self, test_id: str) -> str:
        """The id as collected, for an id the results channel repaired (else unchanged)."""
        if self._aliases is None:
            self._aliases = wire_aliases(self._ids)
        return self._aliases.get(test_id, test_id)

    def _run_items(self, items: Sequence[pytest.Item]) -> None:
        if not items:
            return
        self._teardown_towards(items[0])
        last = len(items) - 1
        for index, item in enumerate(items):
            # After the batch's last test, keep what its parent needs: see the
            # module docstring. The same test twice in a row is a new test too.
            nextitem: Any = items[index + 1] if index < last else item.parent
            if nextitem is item:
                nextitem = item.parent
            try:
                item.ihook.pytest_runtest_protocol(item=item, nextitem=nextitem)
                self._emit_ended()
            except KeyboardInterrupt as interrupt:
                failed = self._fail_open_test(item, interrupt)
                self._emit_ended()
                if not failed:
                    raise  # outside the test's own protocol: pytest stops, so do we
                if not self._runtime.server:
                    self.interrupted = True
                    raise
                interrupted = True
            except pytest.exit.Exception as stop:
                reason = f"pytest.exit() in {item.nodeid}: {stop.msg}"
                self._fail_open_test(item, stop, reason + "; the worker stops.")
                self._emit_ended()
                self._stopping(item, reason)
                raise
            else:
                interrupted = False
            if interrupted:  # out of the except clause: teardowns must not see the interrupt
                self._after_interrupt(item, nextitem)
            session = self._session
            why = session and (session.shouldfail or session.shouldstop)
            if why:  # pytest's -x/--maxfail after --, or a plugin, stopped the session
                self._stopping(item, f"pytest stopped the session after {item.nodeid}: {why}")
                raise _SessionStopped

    def _fail_open_test(self, item: pytest.Item, error: BaseException, reason: str = "") -> bool:
        """Fail ``item``, under way when ``error`` escaped its protocol; False if it was not.

        pytest re-raises ``KeyboardInterrupt`` and ``pytest.exit()`` before making
        a report, so the test would otherwise never get a final status.
        """
        current = self._open
        if current is None or current.test_id != item.nodeid:
            return False
        current.traceback(_failure_text(item, error))
        if reason:
            current.reason(reason)
        current.settle(Status.FAIL)
        item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
        return True

    def _after_interrupt(self, item: pytest.Item, nextitem: Any) -> None:
        """Put pytest back in order after an interrupted test, so that the batch goes on.

        The test's own teardown never ran: what the next test does not need is
        torn down now (failures reported as ``<node id> (teardown)``), and the
        test's fixture request is dropped as pytest's ``runtestprotocol`` does.
        """
        self._teardown_towards(nextitem)
        if hasattr(item, "_request"):
            item._request = False
            item.funcargs = None  # type: ignore[attr-defined]

    def _stopping(self, item: pytest.Item, reason: str) -> None:
        """A test stopped the session: tell the controller, which gets no ``done``."""
        self.stopped = reason
        if self._runtime.server:
            self._runtime.sink.send(
                control_event(
                    "error",
                    message=f"{reason}; the worker stops",
                    test_id=item.nodeid,
                    exit=int(WorkerExit.STOPPED),
                )
            )
        self._runtime.sink.flush()

    def _note_session_fixtures(self) -> None:
        """For a watch zygote that forked this worker: the session fixtures it used."""
        if self._session is not None:
            with contextlib.suppress(Exception):  # (pytest's internals moved: none)
                LEARNED.fixtures = _session_fixtures(self._session)

    def _teardown_towards(self, nextitem: pytest.Item | None) -> None:
        """Tear down the fixtures ``nextitem`` does not need (all of them for ``None``)."""
        session = self._session
        if session is None:
            return
        state = session._setupstate
        stack = list(state.stack)
        needed = nextitem.listchain() if nextitem is not None else []
        keep = 0
        while keep < min(len(stack), len(needed)) and stack[keep] is needed[keep]:
            keep += 1
        # One level at a time, deepest first (pytest's order), so that a
        # failure is reported against the collector whose fixtures failed.
        for depth in range(len(stack) - 1, keep - 1, -1):
            self._teardown_level(state, stack, depth)

    def _teardown_level(self, state: Any, stack: list[Any], depth: int) -> None:
        """Tear down ``stack[depth]`` alone; report its failure under its id."""
        try:
            state.teardown_exact(_Chain(stack[:depth]))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as error:  # pytest outcomes are BaseExceptions too
            text = "".join(traceback.format_exception(error))
            emit_outcome(
                self._runtime,
                f"{stack[depth].nodeid or '<session>'} (teardown)",
                Status.FAIL,
                text,
                name="traceback",
                mime_type=TRACEBACK_MIME_TYPE,
                runnable=False,
            )

    def close(self) -> None:
        self._note_session_fixtures()
        self._teardown_towards(None)
        emit_stray_output(self._runtime)
        summary = self.warnings_summary()
        if summary:  # non-test output: the controller shows it; subunit tools keep it
            runtime = self._runtime
            runtime.sink.send(
                Event(
                    file_name="stdout",
                    file_bytes=summary.encode("utf-8", "replace"),
                    eof=True,
                    mime_type=TEXT_MIME_TYPE,
                    timestamp=runtime.clock(),
                )
            )
        self._runtime.sink.flush()


def _session_fixtures(session: Any) -> list[tuple[str, str]]:
    """The session-scoped fixtures set up (and not torn down) in ``session``, in
    set-up order, that a warm session could keep: not parametrized, set up without
    an error: (name, the node id of where it is defined). Read from the
    finalizers pytest's ``SetupState`` holds for the session (``FixtureDef.finish``)."""
    found: list[tuple[str, str]] = []
    entry = session._setupstate.stack.get(session)
    for finalizer in entry[0] if entry else ():
        fixturedef: Any = getattr(getattr(finalizer, "func", None), "__self__", None)
        if getattr(fixturedef, "scope", None) != "session" or fixturedef.params is not None:
            continue
        cached = fixturedef.cached_result
        if cached is None or cached[2] is not None:
            continue
        pair = (str(fixturedef.argname), str(fixturedef.baseid))
        if pair not in found:
            found.append(pair)
    return found


def _lenient(cache_set: Callable[[str, object], None]) -> Callable[[str, object], None]:
    """pytest's ``Cache.set``, skipping a value its UTF-8 file cannot hold.

    pytest writes every node id to its cache at the end of a session; one with
    a lone surrogate (an undecodable file name, or ids left unescaped) makes
    that write, and so the session, fail. The worker's cache is its own and
    temporary: such a value is simply not kept.
    """

    def set_leniently(key: str, value: object) -> None:
        with contextlib.suppress(UnicodeEncodeError):
            cache_set(key, value)

    return set_leniently


def _failure_text(item: pytest.Item, error: BaseException) -> str:
    """``error`` as pytest would show it for ``item`` (a plain traceback if that fails)."""
    tb = error.__traceback__
    try:
        if tb is None:
            raise ValueError("no traceback")
        return str(item.repr_failure(pytest.ExceptionInfo.from_exc_info((type(error), error, tb))))
    except Exception:
        return "".join(traceback.format_exception(type(error), error, tb))


class OnlyThese:
    """Collects only the test files named (a watch cycle's, ``--only``): every
    other file and every directory that holds none of them is ignored, as
    ``pytest_ignore_collect`` ignores (what pytest's own rules ignore stays so)."""

    def __init__(self, only: Sequence[str]) -> None:
        self.files = {os.path.realpath(path) for path in only}
        self.directories = {
            os.path.join(directory, "") for path in self.files for directory in _parents(path)
        }

    @pytest.hookimpl(tryfirst=True)
    def pytest_ignore_collect(self, collection_path: Any, config: pytest.Config) -> bool | None:
        path = os.path.realpath(collection_path)
        if path in self.files or os.path.join(path, "") in self.directories:
            return None
        return True


def _parents(path: str) -> list[str]:
    found: list[str] = []
    while True:
        parent = os.path.dirname(path)
        if parent == path:
            return found
        found.append(parent)
        path = parent


def run_pytest(
    runtime: Runtime,
    args: Sequence[str],
    body: SuiteBody,
    crash_file: IO[bytes] | None,
    temp_dir: str | None = None,
    only: Sequence[str] = (),
) -> tuple[int, PytestSuite]:
    """Run ``pytest.main`` with the worker's plugin; ``body`` gets the collected suite.

    Returns pytest's exit code and the plugin, which says whether ``body`` ran
    (``served``: not when pytest stops before its test loop, a usage error or a
    broken conftest), and whether a test stopped the session (``stopped``,
    ``interrupted``). pytest's cache goes in a new directory under ``temp_dir``
    (the worker's ``--capture-dir``, which the controller removes even after
    killing the worker; else the system's temporary directory).
    """
    suite = PytestSuite(runtime, body, crash_file)
    # A cache of the worker's own (see the module docstring), last so that it wins.
    cache_dir = tempfile.mkdtemp(prefix=f"proctor-pytest-cache-{os.getpid()}-", dir=temp_dir)
    full_args = [*args, "-o", f"cache_dir={cache_dir}"]
    if not runtime.capture:
        full_args.insert(0, "--capture=no")
    try:
        plugins: list[object] = [suite, _OneProcess(), _CacheChoosesNothing()]
        if only:
            plugins.append(OnlyThese(only))
        code = pytest.main(full_args, plugins=plugins)
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
    return int(code), suite
