"""Warm pytest sessions (session zygotes): a real watch, real processes.

The session fixture ``value`` logs, as each test sees it, the pid that set it
up and the test's own pid: a value set up by the session zygote has a pid that
is not the test's. After every edit the watch's results equal a fresh run's.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from tests.runner.projects import write_project
from tests.runner.watch.watch_support import WatchProcess, fresh_run

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux fork server"),
]

CONFTEST = """
import os

import pytest


@pytest.fixture(scope="session")
def value():
    yield {"number": NUMBER, "items": [], "pid": os.getpid()}
    with open(os.environ["TEARDOWN_LOG"], "a") as log:
        log.write(f"{os.getpid()}\\n")
"""

TEST = """
import os


def test_value(value):
    with open(os.environ["SEEN_LOG"], "a") as log:
        log.write(f"{value['pid']} {os.getpid()}\\n")
    value["items"].append(1)  # a test that changes the fixture's value
    assert value["items"] == [1]
    assert value["number"] == 1
"""


def project(tmp_path: Path, number: int = 1) -> tuple[Path, dict[str, str]]:
    root = write_project(
        tmp_path / "project",
        {
            "pytest.ini": "[pytest]\n",
            "tests/conftest.py": CONFTEST.replace("NUMBER", str(number)),
            "tests/test_value.py": TEST,
            "tests/test_other.py": "def test_other():\n    pass\n",
        },
    )
    env = {"SEEN_LOG": str(tmp_path / "seen.log"), "TEARDOWN_LOG": str(tmp_path / "down.log")}
    os.environ.update(env)  # (for the fresh runs)
    return root, env


def seen(tmp_path: Path) -> list[tuple[int, int]]:
    lines = (tmp_path / "seen.log").read_text().split("\n")
    return [(int(a), int(b)) for a, b in (line.split() for line in lines if line)]


def edit(path: Path) -> None:
    path.write_text(path.read_text() + "\n# edited\n")


def check(watch: WatchProcess, root: Path) -> dict[str, str]:
    ran = watch.wait_cycle()
    fresh = fresh_run(root)
    assert ran, "\n".join(watch.transcript[-30:])
    for test_id, outcome in ran.items():
        assert fresh.get(test_id) == outcome, (test_id, outcome, fresh)
    return ran


def warm_cycles(watch: WatchProcess, root: Path, tmp_path: Path, count: int) -> list[int]:
    """Edit the test ``count`` times (each cycle as a fresh run); the pids of the
    processes that set ``value`` up for those cycles."""
    test = root / "tests/test_value.py"
    before = len(seen(tmp_path))
    for _ in range(count):
        time.sleep(1.5)  # the session zygote sets its session up between cycles
        edit(test)
        assert check(watch, root) == {"tests/test_value.py::test_value": "ok"}
    return [setter for setter, test_pid in seen(tmp_path)[before:] if setter != test_pid]


@pytest.fixture
def clean_env() -> object:
    saved = dict(os.environ)
    yield None
    os.environ.clear()
    os.environ.update(saved)


@pytest.mark.usefixtures("clean_env")
def test_a_session_fixture_is_set_up_once_and_each_cycle_gets_it_pristine(
    tmp_path: Path,
) -> None:
    root, env = project(tmp_path)
    watch = WatchProcess(root, "--serial", env=env)
    try:
        check(watch, root)
        setters = warm_cycles(watch, root, tmp_path, 4)
        # The later cycles' tests got a value set up by another process (the
        # session zygote), the same one each time; each appended to its own copy.
        assert len(setters) >= 2, seen(tmp_path)
        assert len(set(setters[-2:])) == 1
    finally:
        watch.stop()
    time.sleep(0.5)
    down = {int(line) for line in (tmp_path / "down.log").read_text().split()}
    warm_tests = {test_pid for setter, test_pid in seen(tmp_path) if setter != test_pid}
    assert set(setters) <= down  # the zygote tore its fixture down, at its end...
    assert not warm_tests & down  # ...and no child tore it down


@pytest.mark.usefixtures("clean_env")
def test_a_changed_fixture_or_a_new_conftest_is_seen_at_once(tmp_path: Path) -> None:
    root, env = project(tmp_path)
    conftest = root / "tests/conftest.py"
    watch = WatchProcess(root, "--serial", env=env)
    try:
        check(watch, root)
        setters = warm_cycles(watch, root, tmp_path, 3)
        assert setters
        conftest.write_text(conftest.read_text().replace('"number": 1', '"number": 2'))
        ran = check(watch, root)
        assert ran["tests/test_value.py::test_value"] == "failed"
        conftest.write_text(conftest.read_text().replace('"number": 2', '"number": 1'))
        assert check(watch, root)["tests/test_value.py::test_value"] == "ok"
        setters = warm_cycles(watch, root, tmp_path, 2)
        assert setters  # warm again, from a new session zygote
        # A conftest.py added below the one the zygote loaded: it overrides the fixture.
        (root / "tests/conftest.py").rename(root / "conftest.py")
        (root / "tests/conftest.py").write_text(
            "import pytest\n\n\n@pytest.fixture(scope='session')\n"
            "def value(value):\n    return {**value, 'number': 3}\n"
        )
        assert check(watch, root)["tests/test_value.py::test_value"] == "failed"
        edit(root / "tests/test_value.py")
        time.sleep(1.5)
        assert check(watch, root)["tests/test_value.py::test_value"] == "failed"
    finally:
        watch.stop()


@pytest.mark.usefixtures("clean_env")
def test_a_fixture_that_writes_outside_the_process_is_left_to_the_workers(
    tmp_path: Path,
) -> None:
    root, env = project(tmp_path)
    (root / "tests/conftest.py").write_text(
        "import pytest\n\n\n@pytest.fixture(scope='session')\n"
        "def folder(tmp_path_factory):\n    return tmp_path_factory.mktemp('shared')\n"
    )
    test = root / "tests/test_folder.py"
    test.write_text(
        "def test_folder(folder):\n"
        "    assert not list(folder.iterdir())  # as a fresh session's\n"
        "    (folder / 'written').write_text('')\n"
    )
    (root / "tests/test_value.py").unlink()
    watch = WatchProcess(root, "--serial", env=env)
    try:
        check(watch, root)
        for _ in range(4):
            time.sleep(1.5)
            edit(test)
            assert check(watch, root) == {"tests/test_folder.py::test_folder": "ok"}
        assert any("session fixture folder" in line for line in watch.transcript)
    finally:
        watch.stop()
