"""The worker's parts in-process: options, channels, stdin, capture, discovery index, suites."""

from __future__ import annotations

import contextlib
import io
import os
import sys
import unittest
from collections.abc import Iterator
from pathlib import Path

import pytest

from proctor.runner.protocol import ListTests, ProtocolError, Quit, RunTests, Stdin, encode_command
from proctor.runner.selection import Selection, parse_list, select
from proctor.runner.worker.capture import FdCapture, LogCapture, Output
from proctor.runner.worker.channels import (
    CommandReader,
    ControllerGone,
    ResultsWriter,
    wire_text,
)
from proctor.runner.worker.discovery import Hook, SuiteIndex, discover
from proctor.runner.worker.framework import detect_framework
from proctor.runner.worker.oneshot import read_load_list
from proctor.runner.worker.options import UsageError, parse_args
from proctor.runner.worker.stdin import StdinProxy
from proctor.runner.worker.suite import Runtime
from proctor.runner.worker.unittest_suite import UnittestSuite
from proctor.settings import pytest_configuration
from proctor.wire.event import Event, Status
from proctor.wire.v2 import decode
from tests.runner.projects import outcomes, write_project

# -- options -----------------------------------------------------------------------


def test_options_accept_subunit_runs_shape() -> None:
    options = parse_args(["discover", "-t", ".", "./tests", "--list"])
    assert (options.test_path, options.top_dir, options.list_only) == ("./tests", ".", True)
    options = parse_args(["--load-list", "ids.txt", "--no-capture", "--", "-k", "x"])
    assert options.load_list == "ids.txt"
    assert options.capture is False
    assert options.pytest_args == ("-k", "x")


def test_options_server_mode_needs_both_descriptors() -> None:
    assert parse_args(["--serve", "--commands-fd", "3", "--results-fd", "4"]).serve
    with pytest.raises(UsageError, match="needs --commands-fd"):
        parse_args(["--serve", "--results-fd", "4"])
    with pytest.raises(UsageError, match="one-shot"):
        parse_args(["--serve", "--commands-fd", "3", "--results-fd", "4", "--list"])
    with pytest.raises(UsageError, match="only make sense"):
        parse_args(["--results-fd", "4"])
    with pytest.raises(UsageError):
        parse_args(["--bogus"])


# -- list files --------------------------------------------------------------------


def test_list_files_keep_hashes_inside_ids_and_skip_comment_lines() -> None:
    text = "# a comment\n  # an indented one\n\ntests.P.test(hash#x)\n  a.T.t  \nb.T.t # no\n"
    assert parse_list(text) == ["tests.P.test(hash#x)", "a.T.t", "b.T.t # no"]
    # Patterns (include/exclude lists) also take stestr's trailing "  # reason".
    assert parse_list(text, patterns=True) == ["tests.P.test(hash#x)", "a.T.t", "b.T.t"]


def test_the_worker_and_proctor_run_read_a_load_list_alike(tmp_path: Path) -> None:
    listed = tmp_path / "load.txt"
    listed.write_text("# rerun these\ntests.P.test(hash#x)\ntests.P.test\n", encoding="utf-8")
    discovered = ["tests.P.test", "tests.P.test(hash#x)", "tests.P.test_other"]
    assert read_load_list(str(listed)) == ["tests.P.test(hash#x)", "tests.P.test"]
    chosen = select(discovered, Selection(load_list=listed))
    assert chosen.named == ["tests.P.test(hash#x)", "tests.P.test"]
    assert chosen.ids == ["tests.P.test", "tests.P.test(hash#x)"]  # exact ids, not regexes
    assert chosen.missing == []


# -- channels ----------------------------------------------------------------------


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read, write = os.pipe()
    yield read, write
    for fd in (read, write):
        with contextlib.suppress(OSError):
            os.close(fd)


@pytest.mark.skipif(not hasattr(__import__("fcntl"), "F_GETPIPE_SZ"), reason="Linux only")
def test_the_results_pipe_holds_thousands_of_results(tmp_path: Path) -> None:
    import fcntl

    from proctor.runner.spawn import RESULTS_PIPE_SIZE, spawn

    limit = int(Path("/proc/sys/fs/pipe-max-size").read_text())
    spawned = spawn(lambda commands, results: [sys.executable, "-c", "pass"], str(tmp_path))
    try:
        size = fcntl.fcntl(spawned.results, fcntl.F_GETPIPE_SZ)
        assert size >= min(RESULTS_PIPE_SIZE, limit)  # not the default 64 KiB
    finally:
        spawned.process.wait()
        assert spawned.process.stdout is not None
        spawned.process.stdout.close()
        os.close(spawned.commands)
        os.close(spawned.results)


def test_results_writer_holds_events_until_flush(pipe: tuple[int, int]) -> None:
    read, write = pipe
    writer = ResultsWriter(write)
    writer.send(Event(test_id="a", status=Status.INPROGRESS))
    writer.send(Event(test_id="a", status=Status.SUCCESS))
    os.set_blocking(read, False)
    with pytest.raises(BlockingIOError):
        os.read(read, 100)
    writer.flush()
    assert [e.status for e in decode(os.read(read, 1000))] == [Status.INPROGRESS, Status.SUCCESS]


def test_results_writer_repairs_ids_subunit_cannot_carry(pipe: tuple[int, int]) -> None:
    read, write = pipe
    writer = ResultsWriter(write)
    writer.send(Event(test_id="bad\udcff\x00id", status=Status.SUCCESS))
    writer.send(Event(test_id="good", status=Status.SUCCESS))
    writer.flush()
    events = decode(os.read(read, 1000))
    assert [e.test_id for e in events] == ["bad\\udcff\\x00id", "good"]


def test_results_writer_says_when_the_controller_is_gone(pipe: tuple[int, int]) -> None:
    read, write = pipe
    os.close(read)
    writer = ResultsWriter(write)
    writer.send(Event(test_id="a", status=Status.SUCCESS))
    with pytest.raises(ControllerGone):
        writer.flush()


def test_the_index_finds_a_test_by_the_id_the_results_channel_repaired() -> None:
    class Odd(unittest.TestCase):
        __test__ = False

        def id(self) -> str:
            return "odd.Odd.test(\udcff\x00)"

        def runTest(self) -> None:
            pass

    assert wire_text("odd.Odd.test(\udcff\x00)") == "odd.Odd.test(\\udcff\\x00)"
    assert wire_text("plain é #") == "plain é #"
    index = SuiteIndex(unittest.TestSuite([Odd()]))
    found = index.find("odd.Odd.test(\\udcff\\x00)")
    assert found is not None
    assert found[0] == "odd.Odd.test(\udcff\x00)"
    batch = index.batch(["odd.Odd.test(\\udcff\\x00)", "odd.Odd.test(x)"], lambda: None)
    assert [test_id for test_id, _ in batch.tests] == ["odd.Odd.test(\udcff\x00)"]
    assert batch.unknown == ("odd.Odd.test(x)",)


def test_command_reader_reads_lines_in_any_chunking(pipe: tuple[int, int]) -> None:
    read, write = pipe
    data = encode_command(ListTests()) + b"\n" + encode_command(RunTests(("a", "b")))
    data += b'{"op": "nope"}\n' + encode_command(Quit())[:-1]  # last line unterminated
    for start in range(0, len(data), 7):
        os.write(write, data[start : start + 7])
    os.close(write)
    reader = CommandReader(read)
    got = [reader.next() for _ in range(5)]
    assert got[0] == ListTests()
    assert got[1] == RunTests(("a", "b"))
    assert isinstance(got[2], ProtocolError)
    assert got[3] == Quit()
    assert got[4] is None


def test_waiting_for_stdin_queues_other_commands(pipe: tuple[int, int]) -> None:
    read, write = pipe
    os.write(write, encode_command(ListTests()) + encode_command(Stdin(b"c\n")))
    os.write(write, encode_command(Quit()))
    reader = CommandReader(read)
    assert reader.wait_for_stdin() == b"c\n"
    assert reader.wait_for_stdin() == b""  # a quit means no more input
    assert reader.next() == ListTests()
    assert reader.next() == Quit()


# -- stdin -------------------------------------------------------------------------


def test_stdin_proxy_asks_when_empty_and_names_the_test() -> None:
    answers = [b"fir", b"st\nsecond\n", b""]
    asked: list[str | None] = []

    def request(test_id: str | None) -> bytes:
        asked.append(test_id)
        return answers.pop(0)

    proxy = StdinProxy(request)
    proxy.current_test = lambda: "t1"
    assert proxy.readline() == "first\n"
    assert proxy.readline() == "second\n"
    assert proxy.readline() == ""
    assert proxy.read() == ""  # end of input is remembered for this test
    assert asked == ["t1", "t1", "t1"]
    proxy.current_test = lambda: "t2"
    answers.append(b"again")
    assert proxy.read(3) == "aga"
    assert asked[-1] == "t2"


def test_stdin_proxy_gives_end_of_input_at_once_when_it_may_not_ask() -> None:
    asked: list[str | None] = []

    def request(test_id: str | None) -> bytes:
        asked.append(test_id)
        return b"typed\n"

    proxy = StdinProxy(request)
    proxy.asking = False  # loading, between commands, after quit
    assert proxy.readline() == ""
    assert proxy.read() == ""
    proxy.feed(b"sent early\n")  # what the controller sent unasked is still read
    assert proxy.readline() == "sent early\n"
    assert asked == []
    proxy.asking = True
    assert proxy.readline() == "typed\n"
    assert asked == [None]


def test_input_reads_the_proxy() -> None:
    proxy = StdinProxy(lambda test_id: b"typed\n")
    saved = sys.stdin
    sys.stdin = proxy
    try:
        assert input() == "typed"
    finally:
        sys.stdin = saved


# -- capture -------------------------------------------------------------------------


@pytest.fixture
def fd1_stdout() -> Iterator[io.TextIOWrapper]:
    """A Python text stream on fd 1 (pytest's own sys.stdout bypasses fd 1)."""
    stream = open(1, "w", buffering=1, encoding="utf-8", closefd=False)  # noqa: SIM115
    yield stream
    stream.close()


def test_fd_capture_catches_python_and_fd_writes(
    tmp_path: Path, fd1_stdout: io.TextIOWrapper
) -> None:
    live_out, live_err = os.dup(1), os.dup(2)
    capture = FdCapture(live_out, live_err, directory=str(tmp_path), streams=(fd1_stdout, None))
    try:
        files = sorted(tmp_path.iterdir())
        assert [path.name.rsplit("-", 1)[0] for path in files] == [
            f"proctor-worker-{os.getpid()}-stderr",
            f"proctor-worker-{os.getpid()}-stdout",
        ]
        assert all(path.stat().st_mode & 0o777 == 0o600 for path in files)  # this user's only
        assert sorted(capture.paths.values()) == [str(path) for path in files]
        print("from print", file=fd1_stdout)
        os.write(1, b"from fd\n")
        os.write(2, b"to stderr\n")
        first = {a.name: a.content for a in capture.take()}
        assert capture.take() == []
        print("after", file=fd1_stdout)
        second = {a.name: a.content for a in capture.take()}
    finally:
        capture.close()
        os.close(live_out)
        os.close(live_err)
    assert first == {"stdout": b"from print\nfrom fd\n", "stderr": b"to stderr\n"}
    assert second == {"stdout": b"after\n"}
    assert not list(tmp_path.iterdir())


def test_going_live_keeps_what_was_captured(tmp_path: Path, fd1_stdout: io.TextIOWrapper) -> None:
    live_read, live_write = os.pipe()
    err = os.dup(2)
    capture = FdCapture(live_write, err, directory=str(tmp_path), streams=(fd1_stdout, None))
    try:
        print("before", end="", file=fd1_stdout)
        capture.go_live()
        print(" during", file=fd1_stdout)
        fd1_stdout.flush()
        taken = {a.name: a.content for a in capture.take()}
        print("captured again", file=fd1_stdout)
        again = capture.take()
    finally:
        capture.close()
        os.close(live_write)
        os.close(err)
    assert os.read(live_read, 100) == b"before during\n"
    os.close(live_read)
    assert taken == {"stdout": b"before"}
    assert [a.content for a in again] == [b"captured again\n"]


def test_a_test_that_closes_or_reuses_fd_1_and_2_does_not_break_the_next(
    tmp_path: Path, fd1_stdout: io.TextIOWrapper
) -> None:
    live_out, live_err = os.dup(1), os.dup(2)
    capture = FdCapture(live_out, live_err, directory=str(tmp_path), streams=(fd1_stdout, None))
    other = tmp_path / "opened-by-a-test.txt"
    try:
        os.close(1)  # one test closes fd 1 and fd 2...
        os.close(2)
        assert capture.take() == []
        print("next test", file=fd1_stdout)  # ...the next one prints as usual
        os.write(2, b"next stderr\n")
        after_close = {a.name: a.content for a in capture.take()}
        os.close(1)  # a test closes fd 1, then opens a file, which gets number 1
        reused = os.open(other, os.O_WRONLY | os.O_CREAT)
        assert reused == 1
        capture.take()  # (the file loses its descriptor, as under pytest)
        os.write(1, b"later test\n")
        after_reuse = {a.name: a.content for a in capture.take()}
    finally:
        capture.close()
        os.close(live_out)
        os.close(live_err)
    assert after_close == {"stdout": b"next test\n", "stderr": b"next stderr\n"}
    assert after_reuse == {"stdout": b"later test\n"}
    assert other.read_bytes() == b""


def test_log_records_become_a_log_attachment() -> None:
    import logging

    log = LogCapture()
    output = Output(_NoFds(), log)
    try:
        logging.getLogger("proctor.test").warning("careful %s", "now")
        (attachment,) = output.take()
    finally:
        log.uninstall()
    assert attachment.name == "log"
    assert b"WARNING" in attachment.content
    assert b"proctor.test: careful now" in attachment.content


class _NoFds:
    live = False
    paths: dict[str, str] = {}

    def take(self) -> list[object]:
        return []

    def go_live(self) -> None:
        pass

    def close(self) -> None:
        pass


# -- framework ---------------------------------------------------------------------


def test_framework_auto_prefers_pytest_only_when_configured(tmp_path: Path) -> None:
    assert detect_framework("auto", tmp_path, None) == "unittest"
    assert detect_framework("pytest", tmp_path, None) == "pytest"
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options]\naddopts = ''\n")
    assert pytest_configuration(tmp_path)
    other = tmp_path / "other"
    (other / "tests").mkdir(parents=True)
    (other / "tests" / "conftest.py").write_text("")
    assert not pytest_configuration(other)
    assert pytest_configuration(other, "tests")
    (other / "setup.cfg").write_text("[tool:pytest]\n")
    assert pytest_configuration(other)


# -- the unittest index and suite ----------------------------------------------------

FIXTURES = """
    import unittest

    LOG = []

    def setUpModule():
        LOG.append("setUpModule")

    def tearDownModule():
        LOG.append("tearDownModule")

    class A(unittest.TestCase):
        @classmethod
        def setUpClass(cls):
            LOG.append("setUpClass A")

        @classmethod
        def tearDownClass(cls):
            LOG.append("tearDownClass A")

        def test_1(self):
            pass

        def test_2(self):
            pass

    class B(unittest.TestCase):
        @classmethod
        def setUpClass(cls):
            LOG.append("setUpClass B")
            raise RuntimeError("B is broken")

        def test_1(self):
            pass

    class Skipped(unittest.TestCase):
        @classmethod
        def setUpClass(cls):
            raise unittest.SkipTest("not here")

        def test_1(self):
            pass
"""

CUSTOM_SUITE = """
    import unittest

    RUNS = []

    class Recording(unittest.TestSuite):
        def run(self, result, debug=False):
            RUNS.append([t.id() for t in self])
            return super().run(result, debug)

    class C(unittest.TestCase):
        def test_a(self):
            pass

        def test_b(self):
            pass

    def load_tests(loader, tests, pattern):
        return Recording(tests)
"""


BROKEN_MODULE = """
    import unittest

    def setUpModule():
        raise OSError("no database")

    class M(unittest.TestCase):
        def test_needs_the_module(self):
            pass
"""


class FakeSink(ResultsWriter):
    """A results writer that keeps the events (and counts flushes)."""

    def __init__(self) -> None:
        super().__init__(-1)
        self.events: list[Event] = []
        self.flushes = 0

    def send(self, event: Event) -> None:
        self.events.append(event)

    def flush(self) -> None:
        self.flushes += 1


class NoOutput:
    paths: dict[str, str] = {}

    def take(self) -> list[object]:
        return []

    def go_live(self) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project importable as the top-level package ``unitpkg`` (unique to avoid clashes)."""
    write_project(
        tmp_path,
        {
            "unitpkg/__init__.py": "",
            "unitpkg/test_fixtures.py": FIXTURES,
            "unitpkg/test_custom.py": CUSTOM_SUITE,
            "unitpkg/test_module_fixture.py": BROKEN_MODULE,
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m == "unitpkg" or m.startswith("unitpkg.")]:
        del sys.modules[name]


def load(project: Path) -> tuple[UnittestSuite, FakeSink]:
    sink = FakeSink()
    index = SuiteIndex(discover(str(project / "unitpkg"), str(project)))
    return UnittestSuite(index, Runtime(sink=sink, output=NoOutput())), sink  # type: ignore[arg-type]


def module_log() -> list[str]:
    return list(sys.modules["unitpkg.test_fixtures"].LOG)


def test_index_lists_discovery_order_and_batches_in_the_order_asked(project: Path) -> None:
    index = SuiteIndex(discover(str(project / "unitpkg"), str(project)))
    prefix = "unitpkg.test_fixtures."
    assert index.ids[:2] == ["unitpkg.test_custom.C.test_a", "unitpkg.test_custom.C.test_b"]
    assert prefix + "A.test_1" in index.ids
    batch = index.batch(
        [prefix + "A.test_2", "missing", prefix + "A.test_1", prefix + "B.test_1"], lambda: None
    )
    assert [test_id for test_id, _ in batch.tests] == [
        prefix + "A.test_2",
        prefix + "A.test_1",
        prefix + "B.test_1",
    ]
    assert batch.unknown == ("missing",)
    kinds = ["hook" if isinstance(t, Hook) else t.id() for t in batch.suite]
    assert kinds == [prefix + "A.test_2", prefix + "A.test_1", "hook", prefix + "B.test_1"]


def test_class_fixtures_stay_up_between_batches_and_fall_when_the_worker_moves_on(
    project: Path,
) -> None:
    suite, sink = load(project)
    prefix = "unitpkg.test_fixtures."
    assert suite.run([prefix + "A.test_1"]) == 1
    assert suite.run([prefix + "A.test_2"]) == 1
    assert module_log() == ["setUpModule", "setUpClass A"]
    assert suite.run([prefix + "B.test_1"]) == 1
    assert module_log() == ["setUpModule", "setUpClass A", "tearDownClass A", "setUpClass B"]
    got = outcomes(sink.events)
    assert got[prefix + "B.test_1"] == "fail"
    assert got["setUpClass (unitpkg.test_fixtures.B)"] == "fail"
    reason = [e.file_bytes for e in sink.events if e.test_id == prefix + "B.test_1" and e.file_name]
    assert reason == [
        b"Not run: setUpClass (unitpkg.test_fixtures.B) failed: RuntimeError: B is broken"
    ]
    assert suite.run([prefix + "Skipped.test_1", "unitpkg.test_custom.C.test_a"]) == 2
    assert outcomes(sink.events)[prefix + "Skipped.test_1"] == "skip"
    assert module_log()[-1] == "tearDownModule"
    suite.run([prefix + "A.test_1"])
    suite.close()
    assert module_log()[-2:] == ["tearDownClass A", "tearDownModule"]


def test_custom_suites_run_their_tests_through_a_copy(project: Path) -> None:
    suite, sink = load(project)
    suite.run(["unitpkg.test_custom.C.test_b", "unitpkg.test_custom.C.test_a"])
    runs = sys.modules["unitpkg.test_custom"].RUNS
    assert runs == [["unitpkg.test_custom.C.test_b", "unitpkg.test_custom.C.test_a"]]
    assert outcomes(sink.events) == {
        "unitpkg.test_custom.C.test_b": "success",
        "unitpkg.test_custom.C.test_a": "success",
    }
    suite.run(["unitpkg.test_custom.C.test_a"])  # the index is untouched by a run
    assert runs[-1] == ["unitpkg.test_custom.C.test_a"]


def test_unknown_ids_fail_and_duplicates_run_twice(project: Path) -> None:
    suite, sink = load(project)
    assert suite.run(["nope", "unitpkg.test_custom.C.test_a", "unitpkg.test_custom.C.test_a"]) == 3
    statuses = [(e.test_id, e.status) for e in sink.events if e.status.is_final]
    assert statuses == [
        ("nope", Status.FAIL),
        ("unitpkg.test_custom.C.test_a", Status.SUCCESS),
        ("unitpkg.test_custom.C.test_a", Status.SUCCESS),
    ]


def test_a_start_directory_that_cannot_be_imported_is_a_failing_test(tmp_path: Path) -> None:
    suite = discover(str(tmp_path / "missing"), str(tmp_path))
    (test,) = list(suite)
    assert test.id().startswith("unittest.loader._FailedTest.")
    result = unittest.TestResult()
    suite.run(result)
    assert "Failed to discover tests" in result.errors[0][1]


def test_tests_of_a_module_whose_setup_failed_fail_naming_it(project: Path) -> None:
    suite, sink = load(project)
    test_id = "unitpkg.test_module_fixture.M.test_needs_the_module"
    assert suite.run([test_id, "unitpkg.test_custom.C.test_a"]) == 2
    got = outcomes(sink.events)
    assert got["setUpModule (unitpkg.test_module_fixture)"] == "fail"
    assert got[test_id] == "fail"
    assert got["unitpkg.test_custom.C.test_a"] == "success"
    reason = [e.file_bytes for e in sink.events if e.test_id == test_id and e.file_name]
    assert reason == [
        b"Not run: setUpModule (unitpkg.test_module_fixture) failed: OSError: no database"
    ]


def test_runaway_output_keeps_its_start_and_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from proctor.runner.worker import capture as capture_module

    monkeypatch.setattr(capture_module, "MAX_CAPTURE", 100)
    monkeypatch.setattr(capture_module, "CAPTURE_HEAD", 10)
    live_out, live_err = os.dup(1), os.dup(2)
    capture = FdCapture(live_out, live_err, directory=str(tmp_path), streams=(None, None))
    try:
        os.write(1, b"S" * 10 + b"m" * 1000 + b"E" * 90)
        (taken,) = capture.take()
    finally:
        capture.close()
        os.close(live_out)
        os.close(live_err)
    assert taken.content == b"S" * 10 + b"\n[... 1000 bytes of output omitted ...]\n" + b"E" * 90


INTERRUPTED_SUITES = """
    import unittest

    class Grouped(unittest.TestCase):
        def test_a(self):
            raise KeyboardInterrupt

        def test_b(self):
            pass

    class Fixture(unittest.TestCase):
        @classmethod
        def setUpClass(cls):
            raise KeyboardInterrupt

        def test_x(self):
            pass

    def load_tests(loader, tests, pattern):
        class Custom(unittest.TestSuite):
            def run(self, result, debug=False):
                return super().run(result, debug)

        grouped = Custom(loader.loadTestsFromTestCase(Grouped))
        return unittest.TestSuite([grouped, loader.loadTestsFromTestCase(Fixture)])
"""


@pytest.fixture
def interrupted_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    write_project(tmp_path, {"intpkg/__init__.py": "", "intpkg/test_int.py": INTERRUPTED_SUITES})
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m == "intpkg" or m.startswith("intpkg.")]:
        del sys.modules[name]


def test_after_an_interrupt_the_rest_of_a_custom_suite_is_reported_not_run(
    interrupted_project: Path,
) -> None:
    sink = FakeSink()
    index = SuiteIndex(discover(str(interrupted_project / "intpkg"), str(interrupted_project)))
    runtime = Runtime(sink=sink, output=NoOutput(), server=True)  # type: ignore[arg-type]
    suite = UnittestSuite(index, runtime)
    a, b = "intpkg.test_int.Grouped.test_a", "intpkg.test_int.Grouped.test_b"
    assert suite.run([a, b]) == 2
    assert outcomes(sink.events) == {a: "fail", b: "fail"}
    reason = [e.file_bytes for e in sink.events if e.test_id == b and e.file_name == "reason"]
    assert reason == [
        b"Not run: intpkg.test_int.Grouped.test_a was interrupted (KeyboardInterrupt) "
        b"inside the custom suite that runs this test too."
    ]
    # An interrupt outside any test (a class fixture) stops the worker, server or not.
    with pytest.raises(KeyboardInterrupt):
        suite.run(["intpkg.test_int.Fixture.test_x"])
