"""The worker process: set up its descriptors, load the suite once, serve or run.

Order matters here, and each step says why:

1. **Protect the results channel** before any test code is imported. Server
   mode: the results and commands descriptors are made non-inheritable, so a
   subprocess a test starts cannot hold the controller's pipes open after the
   worker dies. One-shot mode: the stream goes to a private duplicate of fd 1,
   and fd 1 itself is pointed at stderr, so an import-time ``print`` cannot
   corrupt the stream.
2. **Crash evidence**: faulthandler writes to a private duplicate of the
   original stderr (never captured away) on a fatal signal, and on SIGUSR1
   dumps every thread's stack there, for the controller's ``--timeout``.
3. **stdin**: fd 0 becomes ``/dev/null`` in server mode, and ``sys.stdin`` a
   proxy that asks for input when a test reads it.
4. **Load the suite** (import and discover, once). Output during imports goes
   to the worker's own stdout/stderr: it belongs to no test.
5. **Capture** each test's output from then on (unittest; pytest captures its
   own), unless ``--no-capture``.
6. Serve commands, or run once, then tear down and exit. A server ends the
   processes its tests left running last thing before it exits
   (:func:`proctor.runner.leftovers.end_descendants`).

Exit status (:class:`~proctor.runner.protocol.WorkerExit`): 0 after a clean run
or ``quit``; 2 for a bad command line or a suite that cannot be loaded (pytest
stopped before collecting); 3 when the results channel closed under the worker
(the controller is gone); 4 when the suite stopped the session (``pytest.exit()``
in a test, which fails; pytest's internal error); 130 after a
``KeyboardInterrupt`` outside any test, or inside one in one-shot mode. SIGINT
keeps its default: a controller that wants workers out of the terminal's reach
starts them in a session of their own, and then an interrupt inside a test is
that test's failure and the worker goes on (see :mod:`.unittest_suite`).
"""

from __future__ import annotations

import atexit
import faulthandler
import os
import sys
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, NamedTuple

from proctor.runner.leftovers import MARKER, end_descendants
from proctor.runner.protocol import DUMP_SIGNAL, WorkerExit, control_event
from proctor.runner.worker.capture import FdCapture, LogCapture, Output, PassThrough
from proctor.runner.worker.channels import CommandReader, ControllerGone, ResultsWriter
from proctor.runner.worker.discovery import SuiteIndex, discover
from proctor.runner.worker.framework import detect_framework, pytest_available
from proctor.runner.worker.oneshot import oneshot_body, read_load_list
from proctor.runner.worker.options import UsageError, WorkerOptions, parse_args
from proctor.runner.worker.server import serve
from proctor.runner.worker.stdin import Request, StdinProxy
from proctor.runner.worker.suite import Runtime, Suite, SuiteBody
from proctor.runner.worker.unittest_suite import UnittestSuite

if TYPE_CHECKING:
    from proctor.runner.worker.pytest_adapter import PytestSuite

__all__ = ["Prepared", "main", "prepare", "pytest_args_of"]


class _Descriptors(NamedTuple):
    results: int
    commands: int | None
    live_out: int
    live_err: int
    stdin: int | None  # one-shot: the original stdin, read when a test asks


class _Settings(NamedTuple):
    root: str
    framework: str
    test_path: str | None
    top_dir: str | None
    pytest_args: tuple[str, ...]


def _settings(options: WorkerOptions) -> _Settings:
    """What to load, from the command line and, for what it leaves out, the project.

    With ``--root`` and an explicit ``--framework`` the command line says it
    all (the controller resolves the configuration once, for every worker) and
    the project's configuration files are not read, which saves each worker
    importing even :mod:`proctor.settings`.
    """
    if options.root is not None and options.framework not in (None, "auto"):
        framework = options.framework
        assert framework is not None
        return _Settings(
            os.path.realpath(options.root),
            framework,
            options.test_path,
            options.top_dir,
            options.pytest_args,
        )
    from proctor.settings import find_project_root, read_settings

    root = os.path.realpath(options.root) if options.root else find_project_root()
    config, _ = read_settings(root)
    return _Settings(
        root,
        options.framework or config.get("framework", "auto"),
        options.test_path or config.get("test_path"),
        options.top_dir or config.get("top_dir"),
        options.pytest_args or config.get("pytest_args", ()),
    )


def _claim_descriptors(options: WorkerOptions) -> _Descriptors:
    """Step 1 and 3 of the module docstring."""
    if options.serve:
        assert options.results_fd is not None
        assert options.commands_fd is not None
        os.set_inheritable(options.results_fd, False)
        os.set_inheritable(options.commands_fd, False)
        live_out, live_err = os.dup(1), os.dup(2)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        return _Descriptors(options.results_fd, options.commands_fd, live_out, live_err, None)
    sys.stdout.flush()
    results = os.dup(1)
    live_out, live_err = os.dup(2), os.dup(2)
    os.dup2(2, 1)
    try:
        stdin: int | None = os.dup(0)
    except OSError:  # started with stdin closed: tests get end of input
        stdin = None
    return _Descriptors(results, None, live_out, live_err, stdin)


def _enable_crash_evidence(live_err: int) -> IO[bytes]:
    """Step 2: faulthandler on fatal signals and on :data:`DUMP_SIGNAL`."""
    crash_file = open(live_err, "wb", buffering=0, closefd=False)  # noqa: SIM115 - for the process's life
    faulthandler.enable(file=crash_file, all_threads=True)
    faulthandler.register(DUMP_SIGNAL, file=crash_file, all_threads=True, chain=False)
    # SIGINT is left alone: tests may rely on its default (and whatever a test
    # sets, its subprocesses inherit). A controller that wants to decide what
    # Ctrl-C means starts workers in their own session, out of the terminal's reach.
    return crash_file


class Prepared(NamedTuple):
    """A worker process set up, its suite not loaded yet (:func:`prepare`)."""

    options: WorkerOptions
    settings: _Settings
    fds: _Descriptors
    runtime: Runtime
    sink: ResultsWriter
    body: SuiteBody
    crash_file: IO[bytes]

    def pytest_exit(self, code: int, suite: PytestSuite) -> int:
        """The worker's exit status once its pytest session returned ``code``."""
        return _pytest_exit(self.runtime, code, suite)

    def close(self) -> None:
        self.runtime.output.close()
        self.sink.close()


def prepare(argv: Sequence[str]) -> Prepared | int:
    """Steps 1 to 3 of the module docstring for this command line; the exit
    status instead for a command line the worker cannot run."""
    try:
        options = parse_args(argv)
        settings = _settings(options)
        load_list = read_load_list(options.load_list) if options.load_list else None
    except (UsageError, ValueError, OSError) as error:  # ConfigError is a ValueError
        print(f"proctor.worker: {error}", file=sys.stderr)
        return WorkerExit.USAGE
    os.chdir(settings.root)
    fds = _claim_descriptors(options)
    if options.serve:
        # Registered before the suite is imported, so it runs after the suite's
        # own handlers: what the tests left running ends with the worker. The
        # mark lets the controller find what they left if the worker dies.
        atexit.register(end_descendants)
        os.environ[MARKER] = str(os.getpid())
    crash_file = _enable_crash_evidence(fds.live_err)
    sink = ResultsWriter(fds.results)
    reader = CommandReader(fds.commands) if fds.commands is not None else None
    runtime = Runtime(
        sink=sink,
        output=PassThrough(),
        capture=options.capture,
        server=reader is not None,
        post_mortem=options.post_mortem,
    )
    stdin = StdinProxy(_stdin_request(runtime, reader, fds.stdin))
    # A server asks the controller only while it runs tests (serve() says when):
    # loading, collecting and tearing down after quit read end of input.
    stdin.asking = reader is None
    sys.stdin = stdin
    body: SuiteBody
    if reader is not None:
        commands = reader

        def serve_commands(suite: Suite) -> None:
            serve(suite, runtime, commands, stdin)

        body = serve_commands
    else:
        body = oneshot_body(runtime, list_only=options.list_only, ids=load_list)
    return Prepared(options, settings, fds, runtime, sink, body, crash_file)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the worker; return its exit status (see the module docstring)."""
    prepared = prepare(sys.argv[1:] if argv is None else argv)
    if isinstance(prepared, int):
        return prepared
    options, settings, fds, runtime, sink, body, crash_file = prepared
    root = settings.root
    framework_setting = settings.framework
    test_path = settings.test_path
    top_dir = settings.top_dir
    framework = detect_framework(framework_setting, root, test_path)
    try:
        try:
            if framework == "unittest":
                index = SuiteIndex(discover(test_path or ".", top_dir or root, only=options.only))
                if len(index) or framework_setting != "auto" or not pytest_available():
                    _run_unittest(index, runtime, body, fds, options)
                    return WorkerExit.OK
            return _run_pytest(runtime, body, settings, crash_file, options)
        finally:
            runtime.output.close()
            sink.close()
    except ControllerGone:
        return WorkerExit.CONTROLLER_GONE
    except KeyboardInterrupt:  # what finished was flushed on the way out
        import traceback

        print("proctor.worker: interrupted (KeyboardInterrupt); stopping", file=sys.stderr)
        traceback.print_exc()
        return WorkerExit.INTERRUPTED


def _run_unittest(
    index: SuiteIndex, runtime: Runtime, body: SuiteBody, fds: _Descriptors, options: WorkerOptions
) -> None:
    if options.capture:
        runtime.output = Output(
            FdCapture(fds.live_out, fds.live_err, directory=options.capture_dir), LogCapture()
        )
    suite = UnittestSuite(index, runtime)
    try:
        body(suite)
    finally:
        suite.close()


def _run_pytest(
    runtime: Runtime,
    body: SuiteBody,
    settings: _Settings,
    crash_file: IO[bytes],
    options: WorkerOptions,
) -> int:
    from proctor.runner.worker.pytest_adapter import run_pytest

    args = pytest_args_of(settings, options)
    code, suite = run_pytest(runtime, args, body, crash_file, options.capture_dir, options.only)
    return _pytest_exit(runtime, code, suite)


def pytest_args_of(settings: _Settings, options: WorkerOptions) -> list[str]:
    """The arguments the worker gives ``pytest.main`` (before its own cache options)."""
    args = list(settings.pytest_args)
    if settings.test_path and not settings.pytest_args:
        args.append(settings.test_path)
    if options.post_mortem:
        args.append("--pdb")  # pytest's own post-mortem, reading the worker's stdin
    return args


def _pytest_exit(runtime: Runtime, code: int, suite: PytestSuite) -> int:
    import pytest

    ran = pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.NO_TESTS_COLLECTED
    if not suite.served:
        message = suite.why_not_served(int(code))
        runtime.sink.send(control_event("error", message=message))
        if not runtime.server:  # a server said so in its `error` event
            print(f"proctor.worker: {message}", file=sys.stderr)
        return WorkerExit.USAGE
    if runtime.sink.gone:  # pytest turned ControllerGone into an internal error
        return WorkerExit.CONTROLLER_GONE
    if suite.stopped is not None:
        if not runtime.server:  # a server said so in its `error` event
            print(f"proctor.worker: {suite.stopped}; stopping", file=sys.stderr)
        return WorkerExit.STOPPED
    if suite.interrupted or code == pytest.ExitCode.INTERRUPTED:
        print("proctor.worker: interrupted (KeyboardInterrupt); stopping", file=sys.stderr)
        return WorkerExit.INTERRUPTED
    if code not in ran:
        print(f"proctor.worker: pytest ended with exit code {code}; stopping", file=sys.stderr)
        return WorkerExit.STOPPED
    return WorkerExit.OK


def _stdin_request(runtime: Runtime, reader: CommandReader | None, stdin_fd: int | None) -> Request:
    """How the stdin proxy gets input: from the controller, or the original stdin."""
    if reader is not None:
        commands = reader

        def from_controller(test_id: str | None) -> bytes:
            runtime.output.go_live()
            runtime.sink.send(control_event("stdin", test_id=test_id))
            runtime.sink.flush()
            return commands.wait_for_stdin()

        return from_controller

    def from_terminal(test_id: str | None) -> bytes:
        runtime.output.go_live()
        if stdin_fd is None:
            return b""
        try:
            return os.read(stdin_fd, 65536)
        except OSError:
            return b""

    return from_terminal
