"""A pytest session kept warm for ``proctor watch``'s workers: a session zygote.

A base zygote (:mod:`proctor.runner.worker.zygote`) holds only what is not the
project's. A *session zygote*, forked from it on the watch's request, goes one
step further for a pytest suite: it runs ``pytest.main`` with the workers'
arguments up to collection (configuration, plugins, conftest.py files
imported, every test directory collected, its own test files not), sets up the
session-scoped fixtures the suite's workers used (learned from them, as the
modules are), and then, inside pytest's ``pytest_collection`` hook, serves
fork requests as a base zygote does. Each child goes on with pytest's session
where its parent stopped: it becomes a server worker (the :class:`PytestSuite`
plugin registered, its descriptors, pytest's output capture started anew),
collects the tests as a fresh worker would (reusing its parent's directory
nodes, with which pytest keeps the conftest fixtures), and runs what it is
asked to with the session fixtures already set up. So a cycle skips pytest's
start, the conftests' imports and the session fixtures' set-up.

Why the results are a fresh worker's:

* **Pristine state.** A fixture's value is a copy made by ``fork``: a test that
  changes it changes its own copy; the next cycle's child gets the value as set
  up. Only state held in the process's memory is kept so: the set-up runs
  under an :class:`~proctor.runner.worker.effects.EffectWatch`, and a fixture
  that did anything outside the process (wrote or removed a file or a
  directory, even a temporary one; connected or bound a socket; started a
  process or a thread; left a descriptor open) is not kept: the zygote tears
  what it set up down, says which fixture, and exits; the pool's next session
  zygote leaves that fixture to the workers. The same holds for pytest's own
  start and the conftests' imports: if they leave anything outside the process,
  no session is kept warm at all (the workers fork from the base zygote).
* **Never stale.** Before each fork the zygote checks, besides the files of the
  modules it holds (project modules included: a conftest, what it imports),
  every file read while its session was set up (configuration files, data a
  fixture read) and every directory a fixture listed, as they were when read;
  and that no test directory gained or lost a ``conftest.py`` or an
  ``__init__.py``. Any change, and it refuses: its session ends (the session
  fixtures torn down, in the zygote) and the worker is forked from the base
  zygote; the pool starts a new session zygote after the cycle.
* **Teardown once.** A child never runs the teardown of a fixture its parent
  set up (it drops those finalizers first thing): the zygote runs them when its
  session ends, as a fresh run would at its end. What the child set up itself
  it tears down as any worker.

Not kept (fall back to the workers' own set-up): parametrized session fixtures,
session fixtures defined in a test module, fixtures whose set-up failed.
Differences from a fresh worker that remain: what a kept fixture printed while
being set up is not shown; a fixture's value is computed once per zygote (a
timestamp, a random value); the ``faulthandler_timeout`` dump goes to the
worker's stderr, as pytest's does. Uses pytest's ``SetupState`` stack and
``FixtureDef`` finalizers (private, as :mod:`.pytest_adapter` already does);
tested with pytest 8.3.5 and 9.2.0 (:data:`TESTED_ON`: other versions keep no
session warm).
"""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import tempfile
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from proctor.runner.worker.effects import EffectWatch, descriptors, outside_state
from proctor.runner.worker.pytest_adapter import (
    OnlyThese,
    PytestSuite,
    _CacheChoosesNothing,
    _OneProcess,
)

if TYPE_CHECKING:
    from proctor.runner.worker.main import Prepared


class Zygote(Protocol):
    """What a session zygote uses of :class:`proctor.runner.worker.zygote.Zygote`
    (which imports this module: a protocol, not an import)."""

    checks: list[Callable[[], str | None]]
    rewriting: Any

    def send(self, message: dict[str, object]) -> None: ...

    def serve(self) -> Any:
        """Serve forks; in a child, what it is to become (None: the end)."""

    def private_fds(self) -> list[int]: ...

    def mark_imported(self) -> None: ...


__all__ = ["TESTED_ON", "run_session"]

TESTED_ON = ((8, 0), (10, 0))
"""The pytest versions a session is kept warm with (tested: 8.3.5, 9.2.0): it
relies on pytest 8's directory collectors and on internals (``SetupState``,
``FixtureDef`` finalizers) a later pytest may change; others fall back."""


def _version(text: str) -> tuple[int, int]:
    parts = text.split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return (0, 0)


class _Keeper:
    """The pytest plugin of a session zygote (see the module docstring)."""

    def __init__(
        self,
        zygote: Zygote,
        fixtures: Sequence[tuple[str, str]],
        watch: EffectWatch,
        before: dict[int, str],
        become_worker: Any,
    ) -> None:
        self.zygote = zygote
        self.fixtures = list(fixtures)
        self.watch = watch
        self.before = before
        self.become_worker = become_worker
        self.directories: dict[Path, Any] = {}  # path -> the Directory node collected here
        self.serving = False  # in a child: parent's directory nodes are reused
        self.prepared: Prepared | int | None = None  # in a child: the worker
        self.suite: PytestSuite | None = None
        self.session: pytest.Session | None = None
        self.kept: list[tuple[str, str]] = []
        self.cold: str | None = None
        self.impure: str | None = None
        self._conftests: dict[Path, bool] = {}
        self._inherited: list[object] = []

    # -- collecting --------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_collect_file(self, file_path: Path, parent: Any) -> Generator[None, Any, Any]:
        collected = yield
        return collected if self.serving else []  # the zygote imports no test file

    @pytest.hookimpl(tryfirst=True)
    def pytest_collect_directory(self, path: Path, parent: Any) -> Any:
        if not self.serving:
            return None
        node = self.directories.get(path)
        return node if node is not None and node.parent is parent else None

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_collection(self, session: pytest.Session) -> Generator[None, object, object]:
        """Set the session up, then serve forks from here; a child goes on with
        pytest's own collection (the hook's other implementations)."""
        self.session = session
        task = self._serve(session)
        if task is None:  # the end of this zygote: pytest ends the session (teardowns)
            raise pytest.exit.Exception("the watch session's warm parent ends", returncode=0)
        self._become_worker(session, task)
        return (yield)

    # -- the zygote --------------------------------------------------------------------

    def _serve(self, session: pytest.Session) -> Any:
        zygote = self.zygote
        self.cold = self._warm_up(session)
        self.watch.on = False
        if self.cold is not None:
            zygote.send({"op": "cold", "why": self.cold, "fixture": self.impure})
            return None
        zygote.checks.append(self._stale)
        zygote.mark_imported()  # what no audit event showed is stat-ed at the first fork
        zygote.send({"op": "warm", "fixtures": [list(pair) for pair in self.kept]})
        gc.collect()
        gc.freeze()
        return zygote.serve()

    def _warm_up(self, session: pytest.Session) -> str | None:
        """Collect the test directories and set the fixtures up; why not, if not."""
        recorder = _DirectoryRecorder(self.directories)
        session.config.pluginmanager.register(recorder, "proctor-directories")
        try:
            session.perform_collect()
        except Exception as error:
            return f"collecting the test directories failed: {error}"
        finally:
            session.config.pluginmanager.unregister(recorder)
        if session.testsfailed or session.shouldstop or session.shouldfail:
            return "collecting the test directories failed"
        capture = session.config.pluginmanager.get_plugin("capturemanager")
        if capture is not None:  # each child starts pytest's capture on its own output
            capture.stop_global_capturing()
        why = self._outside("pytest's start and the conftest files")
        if why is not None:
            return why
        state = session._setupstate
        state.stack.setdefault(session, ([session.teardown], None))
        nodes = {node.nodeid: node for node in self.directories.values()}
        nodes[""] = session
        self.watch.listing = True
        for name, nodeid in self.fixtures:
            node = nodes.get(nodeid)
            if node is None:
                continue  # a module's fixture, or a directory no longer collected
            item = pytest.Function.from_parent(node, name="proctor-warm", callobj=_nothing)
            try:
                item._request.getfixturevalue(name)
            except BaseException as error:  # (pytest's outcomes are BaseExceptions)
                self.impure = name
                return f"setting up {name} failed: {type(error).__name__}"
            why = self._outside(f"the session fixture {name!r}")
            if why is not None:
                self.impure = name
                return why
            self.kept.append((name, nodeid))
        self.watch.listing = False
        self._inherited = list(state.stack[session][0][1:])
        why = self._outside("the session")
        if why is not None:
            return why
        for path, node in self.directories.items():
            self._conftests[path] = _has_conftest_loaded(session, path)
            self._conftests[path / "__init__.py"] = isinstance(node, pytest.Package)
        return None

    def _outside(self, what: str) -> str | None:
        self.watch.on = False
        try:
            if self.watch.effects:
                return f"{what} did something outside the process: {self.watch.effects[0]}"
            held = outside_state(self.before, keep=self.zygote.private_fds())
            return None if held is None else f"{what}: {held}"
        finally:
            self.watch.on = True

    def _stale(self) -> str | None:
        """Why this session is no longer what a fresh one would be (None: it is)."""
        why = self.watch.changed()
        if why is not None:
            return why
        for path, had in self._conftests.items():
            if path.name == "__init__.py":
                if path.is_file() != had:
                    return f"{path} {'removed' if had else 'added'}"
            elif (path / "conftest.py").is_file() != had:
                return f"{path / 'conftest.py'} {'removed' if had else 'added'}"
        return None

    # -- a child -----------------------------------------------------------------------

    def _become_worker(self, session: pytest.Session, task: Any) -> None:
        state = session._setupstate
        entry = state.stack.get(session)
        if entry is not None:  # the parent's fixtures are its to tear down
            inherited = self._inherited
            entry[0][:] = [f for f in entry[0] if not any(f is g for g in inherited)]
        self.serving = True
        prepared = self.become_worker(task)
        self.prepared = prepared
        if isinstance(prepared, int):
            raise pytest.exit.Exception("the worker's command line", returncode=prepared)
        config = session.config
        _output_to(config)
        suite = PytestSuite(prepared.runtime, prepared.body, prepared.crash_file)
        self.suite = suite
        config.pluginmanager.register(suite, "proctor-worker")  # (its configure runs now)
        suite.pytest_sessionstart(session)
        if prepared.options.only:
            config.pluginmanager.register(OnlyThese(prepared.options.only), "proctor-only")


class _DirectoryRecorder:
    """Keeps the directory nodes a session zygote collects, by path."""

    def __init__(self, directories: dict[Path, Any]) -> None:
        self.directories = directories

    @pytest.hookimpl(wrapper=True)
    def pytest_collect_directory(self, path: Path, parent: Any) -> Generator[None, Any, Any]:
        node = yield
        if node is not None:
            self.directories[Path(path)] = node
        return node


def _nothing() -> None:
    """The function of the placeholder test that asks for each kept fixture."""


def _has_conftest_loaded(session: pytest.Session, directory: Path) -> bool:
    wanted = str(directory / "conftest.py")
    for plugin in session.config.pluginmanager.get_plugins():
        path = getattr(plugin, "__file__", None)
        if path is not None and os.path.abspath(path) == wanted:
            return True
    return False


def _output_to(config: pytest.Config) -> None:
    """In a child: pytest's capture and faulthandler write where the child's own
    output goes (its parent's went to /dev/null)."""
    capture = config.pluginmanager.get_plugin("capturemanager")
    if capture is not None:
        capture.start_global_capturing()
        capture.suspend_global_capture()
    with contextlib.suppress(Exception):
        from _pytest.faulthandler import fault_handler_stderr_fd_key

        fd = config.stash.get(fault_handler_stderr_fd_key, None)
        if fd is not None:
            os.dup2(2, fd)


def run_session(
    zygote: Zygote,
    argv: list[str],
    fixtures: Sequence[tuple[str, str]],
    become_worker: Any,
    report: Any,
) -> int:
    """In a session zygote: keep a pytest session for ``argv`` (a worker's command
    line) warm and serve forks from it until the controller goes; in a forked
    child, the worker's exit status once pytest's session ended.

    ``become_worker(task)`` sets a child up as a worker and returns its
    :class:`~proctor.runner.worker.main.Prepared` (or an exit status);
    ``report(code)`` sends the child's report to its zygote and returns ``code``.
    """
    from proctor.runner.worker.framework import detect_framework
    from proctor.runner.worker.main import _settings, pytest_args_of
    from proctor.runner.worker.options import parse_args

    options = parse_args(argv)
    settings = _settings(options)
    if options.post_mortem:
        return _say_cold(zygote, "--pdb reads the terminal")
    if detect_framework(settings.framework, settings.root, settings.test_path) != "pytest":
        return _say_cold(zygote, "not a pytest suite")
    if not TESTED_ON[0] <= _version(pytest.__version__) < TESTED_ON[1]:
        return _say_cold(zygote, f"pytest {pytest.__version__} is not one it was tested with")
    os.chdir(settings.root)
    cache_dir = tempfile.mkdtemp(prefix=f"proctor-pytest-cache-{os.getpid()}-")
    args = [*pytest_args_of(settings, options), "-o", f"cache_dir={cache_dir}"]
    if not options.capture:
        args.insert(0, "--capture=no")
    if zygote.rewriting is not None:
        zygote.rewriting.remove()  # pytest installs its own
    watch = EffectWatch(allowed=[cache_dir])
    keeper = _Keeper(zygote, fixtures, watch, descriptors(), become_worker)
    watch.on = True
    try:
        code = int(pytest.main(args, plugins=[keeper, _OneProcess(), _CacheChoosesNothing()]))
    finally:
        watch.on = False
    prepared = keeper.prepared
    if prepared is None:  # the zygote itself, at its end
        shutil.rmtree(cache_dir, ignore_errors=True)
        if keeper.session is None:
            _say_cold(zygote, f"pytest stopped before collecting (exit code {code})")
        return 0
    if isinstance(prepared, int):
        return int(report(prepared))
    suite = keeper.suite
    assert suite is not None
    from proctor.runner.protocol import WorkerExit
    from proctor.runner.worker.channels import ControllerGone

    try:
        try:
            status = prepared.pytest_exit(code, suite)
        finally:
            prepared.close()
    except ControllerGone:
        status = WorkerExit.CONTROLLER_GONE
    return int(report(status))


def _say_cold(zygote: Zygote, why: str) -> int:
    zygote.send({"op": "cold", "why": why, "fixture": None})
    return 0
