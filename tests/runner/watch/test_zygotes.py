"""The warm parents (zygotes) of ``proctor watch``: a real watch, real processes.

The project's tests import ``thirdparty``, a module outside the project (on
PYTHONPATH) that appends the importing process's pid to a log: after the first
cycle it is imported by a zygote, not by each cycle's worker.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from proctor.runner.worker.zygote import warm_modules
from tests.runner.projects import UNITTEST_CONF, write_project
from tests.runner.watch.watch_support import WatchProcess, child_pids, is_zygote

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux fork server"),
]

THIRD_PARTY = """
import os
import signal

VALUE = {value}
with open(os.environ["THIRDPARTY_LOG"], "a") as log:
    log.write(f"{{os.getpid()}}\\n")
"""

TESTS = {
    "tests/test_uses.py": """
        import unittest

        import thirdparty

        class Uses(unittest.TestCase):
            def test_value(self):
                self.assertEqual(thirdparty.VALUE, 1)
    """,
    "tests/test_other.py": """
        import os
        import unittest

        class Other(unittest.TestCase):
            def test_other(self):
                pass

            def test_crash(self):
                if os.environ.get("CRASH_FILE") and os.path.exists(os.environ["CRASH_FILE"]):
                    os.abort()
    """,
}


def setup(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    root = write_project(tmp_path / "project", {**UNITTEST_CONF, **TESTS})
    site = tmp_path / "site"
    site.mkdir()
    (site / "thirdparty.py").write_text(THIRD_PARTY.format(value=1))
    env = {
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
        "THIRDPARTY_LOG": str(tmp_path / "imports.log"),
        "CRASH_FILE": str(tmp_path / "crash"),
    }
    return root, site, env


def importers(tmp_path: Path) -> list[int]:
    return [int(line) for line in (tmp_path / "imports.log").read_text().split()]


def zygotes(pid: int) -> set[int]:
    return {child for child in child_pids(pid) if is_zygote(child)}


def edit(path: Path) -> None:
    path.write_text(path.read_text() + "\n# edited\n")


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_third_party_modules_stay_warm_and_a_change_to_one_restarts_the_zygote(
    tmp_path: Path,
) -> None:
    root, site, env = setup(tmp_path)
    watch = WatchProcess(root, "--serial", env=env)
    test = root / "tests/test_uses.py"
    try:
        assert watch.wait_cycle()["tests.test_uses.Uses.test_value"] == "ok"
        time.sleep(0.5)  # the zygote imports what its first child reported
        parents = zygotes(watch.proc.pid)
        assert len(parents) == 1
        for _ in range(3):
            edit(test)
            assert watch.wait_cycle() == {"tests.test_uses.Uses.test_value": "ok"}
        assert zygotes(watch.proc.pid) == parents  # the same warm parent served every cycle
        pids = importers(tmp_path)
        assert pids[-1] in parents  # the zygote imported it once...
        assert len(pids) == 2  # ...after the first worker did: no later worker imported it

        # A change outside the project (the watcher does not see it): the zygote
        # is stale, so the next cycle's worker comes from a new one.
        (site / "thirdparty.py").write_text(THIRD_PARTY.format(value=2))
        edit(test)
        assert watch.wait_cycle() == {"tests.test_uses.Uses.test_value": "failed"}
        assert not zygotes(watch.proc.pid) & parents
        assert not any(alive(pid) for pid in parents)
    finally:
        watch.stop()


def test_a_crash_replaces_the_worker_not_the_zygote_and_nothing_is_left_after_quit(
    tmp_path: Path,
) -> None:
    root, _, env = setup(tmp_path)
    watch = WatchProcess(root, "--serial", env=env)
    other = root / "tests/test_other.py"
    fds = []
    try:
        watch.wait_cycle()
        time.sleep(0.5)
        edit(other)
        watch.wait_cycle()
        parents = zygotes(watch.proc.pid)
        fds.append(len(os.listdir(f"/proc/{watch.proc.pid}/fd")))
        (tmp_path / "crash").write_text("")
        edit(other)
        ran = watch.wait_cycle()
        assert ran["tests.test_other.Other.test_crash"] == "failed"
        assert "Fatal Python error: Aborted" in watch.transcript  # the worker crashed
        assert ran["tests.test_other.Other.test_other"] == "ok"  # on the replacement
        assert zygotes(watch.proc.pid) == parents
        (tmp_path / "crash").unlink()
        for _ in range(3):
            edit(other)
            assert set(watch.wait_cycle().values()) == {"ok"}
            fds.append(len(os.listdir(f"/proc/{watch.proc.pid}/fd")))
        assert len(set(fds)) == 1, fds  # no descriptor leaks from cycle to cycle
        for parent in parents:
            assert not child_pids(parent)  # no worker outlives its cycle
            assert len(os.listdir(f"/proc/{parent}/fd")) < 10
    finally:
        assert watch.stop() in (0, -15, 143)
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in parents) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in parents)


def test_a_module_that_starts_a_thread_is_left_to_the_workers(tmp_path: Path) -> None:
    root, site, env = setup(tmp_path)
    (site / "threaded.py").write_text(
        "import os, threading, time\n"
        "threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()\n"
        "with open(os.environ['THIRDPARTY_LOG'], 'a') as log:\n"
        "    log.write(f'{os.getpid()}\\n')\n"
    )
    (root / "tests/test_uses.py").write_text(
        (root / "tests/test_uses.py")
        .read_text()
        .replace("import thirdparty", "import threaded")
        .replace("thirdparty.VALUE, 1", "1, 1")
    )
    watch = WatchProcess(root, "--serial", env=env)
    test = root / "tests/test_uses.py"
    try:
        watch.wait_cycle()
        time.sleep(0.5)
        for _ in range(4):
            edit(test)
            assert watch.wait_cycle() == {"tests.test_uses.Uses.test_value": "ok"}
        parents = zygotes(watch.proc.pid)
        assert len(parents) == 1
        for parent in parents:  # the zygote that serves has one thread
            assert os.listdir(f"/proc/{parent}/task") == [str(parent)]
        last = importers(tmp_path)[-2:]
        assert not set(last) & parents  # each worker imports it itself
    finally:
        watch.stop()


def test_warm_modules_are_those_outside_the_project_or_installed_in_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = tmp_path / "mine.py"
    mine.write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    __import__("mine")
    try:
        names = warm_modules(str(tmp_path))
        assert "mine" not in names
        assert {"os", "sys", "pytest"} <= set(names)
        assert "mine" in warm_modules(str(tmp_path / "elsewhere"))
    finally:
        sys.modules.pop("mine", None)


@pytest.mark.parametrize("how", [(), ("--fresh-workers",)], ids=["forked", "spawned"])
def test_ctrl_c_during_a_cycle_ends_the_workers_and_the_zygotes(
    tmp_path: Path, how: tuple[str, ...]
) -> None:
    root, _, env = setup(tmp_path)
    slow = root / "tests/test_slow.py"
    watch = WatchProcess(root, "--serial", *how, env=env)
    try:
        watch.wait_cycle()
        time.sleep(0.5)
        slow.write_text(
            "import time, unittest\n\nclass S(unittest.TestCase):\n"
            "    def test_slow(self):\n        time.sleep(30)\n"
        )
        deadline = time.monotonic() + 10
        running: list[int] = []
        while not running and time.monotonic() < deadline:  # the cycle's worker is up
            running = [  # a zygote's children, or the watch's own (spawned)
                worker
                for child in child_pids(watch.proc.pid)
                for worker in (child_pids(child) if is_zygote(child) else [child])
            ]
            time.sleep(0.05)
        assert running
        parents = zygotes(watch.proc.pid)
        time.sleep(0.5)
        watch.proc.send_signal(signal.SIGINT)  # the first waits for the running test...
        time.sleep(0.3)
        watch.proc.send_signal(signal.SIGINT)  # ...the second kills the workers
        assert watch.proc.wait(10) == 130
    finally:
        watch.stop()
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in [*parents, *running]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in [*parents, *running])


PLUGIN = """
import os

with open(os.environ["THIRDPARTY_LOG"], "a") as log:
    log.write(f"{os.getpid()}\\n")


def check(value):
    assert value == 1
"""


def test_pytest_plugins_are_preloaded_rewritten_as_pytest_would(tmp_path: Path) -> None:
    """An autoloaded plugin's distribution is imported by the zygote through
    pytest's rewriter: its asserts stay rewritten and pytest does not warn that it
    was imported already (an error under ``filterwarnings = error``)."""
    root = write_project(
        tmp_path / "project",
        {
            "pytest.ini": "[pytest]\nfilterwarnings = error\n",
            "tests/test_plug.py": """
                import myplug

                def test_fails():
                    myplug.check(2)

                def test_passes():
                    myplug.check(1)
            """,
        },
    )
    site = tmp_path / "site"
    (site / "myplug-1.0.dist-info").mkdir(parents=True)
    (site / "myplug.py").write_text(PLUGIN)
    info = site / "myplug-1.0.dist-info"
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: myplug\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[pytest11]\nmyplug = myplug\n")
    (info / "RECORD").write_text("myplug.py,,\nmyplug-1.0.dist-info/METADATA,,\n")
    env = {
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
        "THIRDPARTY_LOG": str(tmp_path / "imports.log"),
    }
    expected = {"tests/test_plug.py::test_fails": "failed", "tests/test_plug.py::test_passes": "ok"}
    watch = WatchProcess(root, "--serial", env=env)
    test = root / "tests/test_plug.py"
    try:
        assert watch.wait_cycle() == expected
        time.sleep(1.0)  # the zygote imports what its first child reported
        parents = zygotes(watch.proc.pid)
        for _ in range(3):
            shown = len(watch.transcript)
            edit(test)
            assert watch.wait_cycle() == expected
            assert "assert 2 == 1" in "\n".join(watch.transcript[shown:])  # rewritten
        assert zygotes(watch.proc.pid) == parents
        pids = importers(tmp_path)
        assert pids[-1] in parents  # the zygote imported it...
        assert len(pids) == 2  # ...after the first worker did: no later worker imported it
    finally:
        watch.stop()
