"""Test helpers: generated projects, and real worker processes driven by the protocol.

* :func:`write_project` writes a small project (files given as text, dedented)
  into a directory; :data:`UNITTEST_CONF` and friends are common config files.
* :class:`WorkerProcess` starts ``python -m proctor.worker --serve`` on such a
  project with real pipes and talks to it exactly as a controller does:
  JSON-line commands in, a subunit v2 stream out (decoded with Proctor's
  decoder), the worker's own stdout/stderr collected separately.
* :func:`run_oneshot` runs the worker in one-shot mode and decodes its stdout.
* :func:`outcomes` reduces events to ``{test id: status name}`` (last final
  status wins), the shape used to compare with stestr and pytest;
  :func:`stestr_outcomes` and :func:`pytest_outcomes` give the same shape from
  real ``stestr`` and ``pytest`` runs of a project.

Everything here has a timeout: a hung worker fails the test, never hangs it.
"""

from __future__ import annotations

import io
import json
import os
import selectors
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from proctor.runner.protocol import (
    Command,
    Control,
    ListTests,
    Quit,
    RunTests,
    Stdin,
    encode_command,
    parse_control,
)
from proctor.wire.event import Event, Status
from proctor.wire.v2 import Decoder, decode

__all__ = [
    "ODD_IDS",
    "ODD_ID_PREFIX",
    "PYTEST_CONF",
    "UNITTEST_CONF",
    "WorkerProcess",
    "collect_files",
    "fold_pytest_reports",
    "outcomes",
    "pytest_outcomes",
    "run_oneshot",
    "stestr_outcomes",
    "write_project",
]

UNITTEST_CONF = {".stestr.conf": "[DEFAULT]\ntest_path=./tests\ntop_dir=./\n"}
"""An stestr configuration: unittest discovery of ``tests/`` from the root."""

PYTEST_CONF = {"pytest.ini": "[pytest]\n"}
"""A minimal pytest configuration (makes ``framework = auto`` choose pytest)."""

ODD_IDS = """
    import unittest

    class Param(unittest.TestCase):
        def __init__(self, methodName="runTest", suffix=""):
            super().__init__(methodName)
            self.suffix = suffix

        def id(self):
            return super().id() + self.suffix

        def test(self):
            pass

    def load_tests(loader, tests, pattern):
        suffixes = ["(hash#x)", "(surrogate\\udcff)", "(nul\\x00)", "(plain)"]
        return unittest.TestSuite(Param("test", suffix) for suffix in suffixes)
"""
"""A unittest module (``tests/test_odd.py``) whose ids hold a ``#``, a lone surrogate, a NUL."""

ODD_ID_PREFIX = "tests.test_odd.Param.test"

DEFAULT_TIMEOUT = 30.0


def write_project(root: Path, files: Mapping[str, str]) -> Path:
    """Write ``files`` (relative path -> text, dedented) under ``root``; return ``root``.

    Parent directories are created; a ``tests/`` package gets an empty
    ``__init__.py`` unless one is given.
    """
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    init = root / "tests" / "__init__.py"
    if (root / "tests").is_dir() and not init.exists():
        init.write_text("", encoding="utf-8")
    return root


def worker_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a worker: this one, with Proctor importable."""
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2] / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)
    env.pop("PYTEST_CURRENT_TEST", None)
    env.pop("PYTEST_ADDOPTS", None)
    # pytest changes its output on CI (no truncated diffs when CI or BUILD_NUMBER is
    # set): the same tests must see the same pytest on a laptop and in CI.
    env.pop("CI", None)
    env.pop("BUILD_NUMBER", None)
    if extra:
        env.update(extra)
    return env


def outcomes(events: Iterable[Event]) -> dict[str, str]:
    """``{test id: final status name}`` for every test with a final status (not ``exists``)."""
    result: dict[str, str] = {}
    for event in events:
        if (
            event.test_id is not None
            and event.status.is_final
            and event.status is not Status.EXISTS
        ):
            result[event.test_id] = event.status.wire_name or ""
    return result


def collect_files(events: Iterable[Event], test_id: str) -> dict[str, bytes]:
    """The files of one test, by name (chunks joined)."""
    files: dict[str, bytes] = {}
    for event in events:
        if event.test_id == test_id and event.file_name is not None:
            files[event.file_name] = files.get(event.file_name, b"") + event.file_bytes
    return files


@dataclass
class OneShot:
    """What a one-shot worker run produced."""

    returncode: int
    events: list[Event]
    stderr: str


def run_oneshot(
    root: Path, *args: str, timeout: float = DEFAULT_TIMEOUT, stdin: bytes = b""
) -> OneShot:
    """Run ``python -m proctor.worker ARGS`` in ``root``; decode its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "proctor.worker", *args],
        cwd=root,
        input=stdin,
        capture_output=True,
        timeout=timeout,
        env=worker_env(),
        check=False,
    )
    return OneShot(done.returncode, decode(done.stdout), done.stderr.decode("utf-8", "replace"))


@dataclass
class WorkerProcess:
    """A worker in server mode, driven through real pipes (see the module docstring)."""

    root: Path
    args: Sequence[str] = ()
    env: Mapping[str, str] | None = None
    events: list[Event] = field(default_factory=list)
    controls: list[Control] = field(default_factory=list)
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)

    def __post_init__(self) -> None:
        commands_read, self._commands = os.pipe()
        self._results, results_write = os.pipe()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "proctor.worker",
                "--serve",
                f"--commands-fd={commands_read}",
                f"--results-fd={results_write}",
                *self.args,
            ],
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(commands_read, results_write),
            env=worker_env(self.env),
        )
        os.close(commands_read)
        os.close(results_write)
        self._decoder = Decoder()
        self._selector = selectors.DefaultSelector()
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        self._sources = {
            self._results: "results",
            self.process.stdout.fileno(): "stdout",
            self.process.stderr.fileno(): "stderr",
        }
        for fd in self._sources:
            os.set_blocking(fd, False)
            self._selector.register(fd, selectors.EVENT_READ)
        self._open = set(self._sources)
        self._cursor = 0  # index into controls already returned by wait_for

    # -- talking --------------------------------------------------------------

    def send(self, command: Command) -> None:
        os.write(self._commands, encode_command(command))

    def send_raw(self, line: bytes) -> None:
        os.write(self._commands, line)

    def close_results(self) -> None:
        """Stop reading the results and close them, as a controller that went away does."""
        self._selector.unregister(self._results)
        self._open.discard(self._results)
        os.close(self._results)
        self._results_closed = True

    def close_commands(self) -> None:
        os.close(self._commands)
        self._commands = -1

    def ready(self, timeout: float = DEFAULT_TIMEOUT) -> Control:
        return self.wait_for("ready", timeout=timeout)

    def list(self, timeout: float = DEFAULT_TIMEOUT) -> list[str]:
        start = len(self.events)
        self.send(ListTests())
        self.wait_for("done", timeout=timeout)
        return [e.test_id for e in self.events[start:] if e.status is Status.EXISTS and e.test_id]

    def run(self, ids: Sequence[str], timeout: float = DEFAULT_TIMEOUT) -> list[Event]:
        """Run ``ids``; return the events of this run (up to its ``done``)."""
        start = len(self.events)
        self.send(RunTests(tuple(ids)))
        self.wait_for("done", timeout=timeout)
        return self.events[start:]

    def stdin(self, data: bytes) -> None:
        self.send(Stdin(data))

    def quit(self, timeout: float = DEFAULT_TIMEOUT) -> int:
        if self._commands >= 0:
            self.send(Quit())
        return self.wait_exit(timeout)

    # -- listening ------------------------------------------------------------

    def wait_for(self, kind: str, timeout: float = DEFAULT_TIMEOUT) -> Control:
        """The next control event of ``kind`` not yet returned; AssertionError on timeout/exit."""
        deadline = time.monotonic() + timeout
        while True:
            for index in range(self._cursor, len(self.controls)):
                if self.controls[index].kind == kind:
                    self._cursor = index + 1
                    return self.controls[index]
            if not self._open:
                raise AssertionError(f"worker ended before {kind!r}: {self.diagnosis()}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {kind!r} within {timeout}s: {self.diagnosis()}")
            self.pump(min(remaining, 0.5))

    def wait_exit(self, timeout: float = DEFAULT_TIMEOUT) -> int:
        deadline = time.monotonic() + timeout
        while self._open and time.monotonic() < deadline:
            self.pump(min(0.5, max(deadline - time.monotonic(), 0.01)))
        return self.process.wait(timeout=max(deadline - time.monotonic(), 0.1))

    def pump(self, timeout: float) -> None:
        """Read whatever is available within ``timeout``."""
        for key, _ in self._selector.select(timeout):
            fd = int(key.fd)
            try:
                data = os.read(fd, 1 << 16)
            except BlockingIOError:
                continue
            if not data:
                self._selector.unregister(fd)
                self._open.discard(fd)
                if self._sources[fd] == "results":
                    self._take(self._decoder.close())
                continue
            source = self._sources[fd]
            if source == "results":
                self._take(self._decoder.feed(data))
            elif source == "stdout":
                self.stdout += data
            else:
                self.stderr += data

    def _take(self, events: list[Event]) -> None:
        for event in events:
            control = parse_control(event)
            if control is not None:
                self.controls.append(control)
            else:
                self.events.append(event)

    def diagnosis(self) -> str:
        return (
            f"exit={self.process.poll()} controls={[c.kind for c in self.controls]} "
            f"stderr={bytes(self.stderr[-2000:])!r}"
        )

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=DEFAULT_TIMEOUT)
        self.cleanup()

    def cleanup(self) -> None:
        if self._results < 0:
            return
        if self._commands >= 0:
            os.close(self._commands)
            self._commands = -1
        for fd in list(self._open):
            self._selector.unregister(fd)
        self._open.clear()
        self._selector.close()
        if not getattr(self, "_results_closed", False):
            os.close(self._results)
        self._results = -1
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        self.process.stdout.close()
        self.process.stderr.close()

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


# -- the peers, for comparison ----------------------------------------------------


def stestr_outcomes(root: Path, *args: str, timeout: float = 300) -> dict[str, str]:
    """``{test id: status}`` from a real ``stestr run --subunit`` in ``root``.

    ``args`` go before ``run`` (``--test-path``, ``--top-dir``...). The stream
    is read by python-subunit, as stestr itself reads it.
    """
    import subunit
    import testtools

    done = subprocess.run(
        [sys.executable, "-m", "stestr", *args, "run", "--subunit"],
        cwd=root,
        capture_output=True,
        env=worker_env(),
        timeout=timeout,
        check=False,
    )
    status: dict[str, str] = {}

    def on_test(test: dict[str, object]) -> None:
        if test["status"] != "exists":
            status[str(test["id"])] = str(test["status"])

    stream = testtools.StreamToDict(on_test)
    stream.startTestRun()
    source = io.BytesIO(done.stdout)
    subunit.ByteStreamToStreamResult(source, non_subunit_name="stdout").run(stream)
    stream.stopTestRun()
    return status


_RECORDER = """
import json, os

def pytest_collectreport(report):
    if not report.passed:
        _write({"id": report.nodeid, "when": "collect", "outcome": report.outcome})

def pytest_runtest_logreport(report):
    _write({
        "id": report.nodeid, "when": report.when, "outcome": report.outcome,
        "xfail": hasattr(report, "wasxfail"), "subtest": hasattr(report, "context"),
    })

def _write(record):
    with open(os.environ["PROCTOR_RECORD"], "a") as f:
        f.write(json.dumps(record) + "\\n")
"""


def fold_pytest_reports(records: Iterable[Mapping[str, object]]) -> dict[str, str]:
    """One outcome per test from pytest's reports, by the worker's documented rules.

    Any failed report (setup, call, teardown, a subtest) fails the test; a
    collector that failed or skipped is a test of its own; otherwise the
    first skipped-or-call report decides: xfail/skip, or success (a non-strict
    XPASS is pytest's "passed"; a strict one is "failed").
    """
    reports: dict[str, list[Mapping[str, object]]] = {}
    for record in records:
        reports.setdefault(str(record["id"]), []).append(record)
    result: dict[str, str] = {}
    for test_id, seen in reports.items():
        own = [r for r in seen if not r.get("subtest")]
        if any(r["outcome"] == "failed" for r in seen):
            result[test_id] = "fail"
        elif any(r["when"] == "collect" and r["outcome"] == "skipped" for r in own):
            result[test_id] = "skip"
        else:
            first = next((r for r in own if r["outcome"] == "skipped" or r["when"] == "call"), None)
            if first is None:  # never finished (pytest.exit() in it): pytest reports nothing
                continue
            if first["outcome"] == "skipped":
                result[test_id] = "xfail" if first["xfail"] else "skip"
            else:
                result[test_id] = "success"  # a non-strict XPASS passes, as in pytest
    return result


def pytest_outcomes(root: Path, scratch: Path, *args: str, timeout: float = 300) -> dict[str, str]:
    """``{test id: status}`` from a real ``python -m pytest`` run in ``root``.

    A recording plugin (written to ``scratch``) sees every report; collection
    errors do not stop the run (the worker does not stop either).
    """
    plugin_dir = scratch / "recorder"
    plugin_dir.mkdir(parents=True, exist_ok=True)
    (plugin_dir / "proctor_recorder.py").write_text(_RECORDER, encoding="utf-8")
    record = scratch / "record.jsonl"
    record.unlink(missing_ok=True)
    env = worker_env({"PROCTOR_RECORD": str(record)})
    env["PYTHONPATH"] = os.pathsep.join((str(plugin_dir), env["PYTHONPATH"]))
    subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-q", "-p", "proctor_recorder"),
            *("-p", "no:cacheprovider", "--continue-on-collection-errors", *args),
        ],
        cwd=root,
        env=env,
        capture_output=True,
        check=False,
        timeout=timeout,
    )
    lines = record.read_text(encoding="utf-8").splitlines() if record.exists() else []
    return fold_pytest_reports(json.loads(line) for line in lines)
