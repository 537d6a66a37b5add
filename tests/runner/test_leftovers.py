"""Processes a test started are gone when the run ends.

Real ``proctor run`` processes on generated projects whose tests start
``sleep`` processes and never stop them: plain children, children in a session
of their own (``setsid``), and orphans (started in the background by a shell
that exited at once). Each records the pids it started; once ``proctor run``
has exited, none of them may still run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from proctor.runner.leftovers import children, descendants, kill_tree
from proctor.runner.spawn import remove_stale_capture_dirs
from tests.runner.projects import UNITTEST_CONF, worker_env, write_project

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="subreapers and /proc"),
]

NAP = "312.5"  # an unusual duration: its command line identifies our sleeps

LEAVERS = f"""
    import os
    import shutil
    import subprocess
    import time
    import unittest

    PIDS = os.environ["PIDS"]
    KEPT = []

    def record(*pids):
        with open(PIDS, "a") as out:
            out.write("".join("%d\\n" % pid for pid in pids))

    class Leave(unittest.TestCase):
        def test_twenty_children(self):
            for _ in range(20):
                KEPT.append(subprocess.Popen(["sleep", "{NAP}"]))
            record(*(p.pid for p in KEPT))

        def test_a_child_in_its_own_session(self):
            child = subprocess.Popen(["sleep", "{NAP}"], start_new_session=True)
            KEPT.append(child)
            record(child.pid)
            if shutil.which("setsid"):
                tool = subprocess.Popen(["setsid", "sleep", "{NAP}"])
                KEPT.append(tool)
                record(tool.pid)

        def test_an_orphan_in_its_own_session(self):
            # The shell exits at once: its background child is an orphan.
            out = subprocess.run(
                ["sh", "-c", "setsid sleep {NAP} >/dev/null 2>&1 & echo $!; "
                 "sleep {NAP} >/dev/null 2>&1 & echo $!"],
                capture_output=True, text=True, check=True,
            ).stdout
            record(*(int(pid) for pid in out.split()))
"""

HANGS = f"""
    import os
    import subprocess
    import time
    import unittest

    class Hang(unittest.TestCase):
        def test_hangs_with_a_child_in_its_own_session(self):
            child = subprocess.Popen(["sleep", "{NAP}"], start_new_session=True)
            with open(os.environ["PIDS"], "a") as out:
                out.write("%d\\n" % child.pid)
            time.sleep(60)
"""


def _ours_running(pid: int) -> bool:
    """Whether ``pid`` is still one of the sleeps (not gone, not a zombie, not reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return NAP.encode() in cmdline and state != "Z"


def _run(root: Path, pids: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "proctor", "run", *args],
        cwd=root,
        capture_output=True,
        timeout=120,
        env=worker_env({"PIDS": str(pids)}),
        check=False,
    )


def _left_running(pids: Path) -> list[int]:
    started = [int(line) for line in pids.read_text().split()]
    deadline = time.monotonic() + 5  # (init may take a moment to reap what it inherits)
    while True:
        running = [pid for pid in started if _ours_running(pid)]
        if not running or time.monotonic() > deadline:
            return running
        time.sleep(0.05)


@pytest.fixture
def pids(tmp_path: Path) -> Path:
    path = tmp_path / "pids"
    path.write_text("")
    yield path
    for pid in [int(line) for line in path.read_text().split()]:
        if _ours_running(pid):  # do not leave them to the machine if the test failed
            os.kill(pid, 9)


def test_nothing_a_test_started_outlives_a_passing_run(tmp_path: Path, pids: Path) -> None:
    root = write_project(tmp_path / "project", {**UNITTEST_CONF, "tests/test_leave.py": LEAVERS})
    done = _run(root, pids, "-j", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(pids.read_text().split()) >= 23
    assert _left_running(pids) == []
    assert b"process(es) the tests left running" in done.stdout + done.stderr


def test_nothing_a_timed_out_test_started_outlives_the_run(tmp_path: Path, pids: Path) -> None:
    root = write_project(
        tmp_path / "project",
        {**UNITTEST_CONF, "tests/test_leave.py": LEAVERS, "tests/test_hang.py": HANGS},
    )
    done = _run(root, pids, "-j", "2", "--timeout", "3")
    assert done.returncode == 1, done.stdout + done.stderr
    assert b"test_hangs_with_a_child_in_its_own_session" in done.stdout
    assert _left_running(pids) == []


def test_kill_tree_reaches_a_child_in_another_session_and_its_children() -> None:
    script = (
        "import subprocess, time\n"
        f"subprocess.Popen(['setsid', 'sh', '-c', 'sleep {NAP} & sleep {NAP}'])\n"
        f"subprocess.Popen(['sleep', '{NAP}'])\n"
        "time.sleep(60)\n"
    )
    shell = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while len(descendants(shell.pid)) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        tree = descendants(shell.pid)
        assert len(tree) == 4, tree  # sleep, setsid'd sh, and its two sleeps
        assert set(children(shell.pid)) <= set(tree)
        killed = kill_tree(shell.pid)
        assert sorted(killed) == sorted(tree)
        assert shell.poll() is None  # the root is left alone
    finally:
        shell.kill()
        shell.wait()
    deadline = time.monotonic() + 5
    while any(_ours_running(pid) for pid in tree) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_ours_running(pid) for pid in tree)


# -- capture directories of controllers killed outright -------------------------------


def test_stale_capture_dirs_go_and_a_live_runs_stay(tmp_path: Path) -> None:
    ended = subprocess.Popen(["true"])
    ended.wait()
    gone = tmp_path / f"proctor-run-{ended.pid}-0000"  # its controller is gone
    live = tmp_path / f"proctor-run-{os.getppid()}-1111"  # a run going on (started before)
    other = tmp_path / "not-proctor"
    later = subprocess.Popen(["sleep", NAP])
    try:
        reused = tmp_path / f"proctor-run-{later.pid}-2222"  # its pid now a later process's
        for path in (gone, live, reused, other):
            path.mkdir()
            (path / "stdout-1").write_bytes(b"captured")
        hour_ago = time.time() - 3600
        os.utime(reused, (hour_ago, hour_ago))
        removed = remove_stale_capture_dirs(str(tmp_path))
    finally:
        later.kill()
        later.wait()
    assert sorted(removed) == sorted([str(gone), str(reused)])
    assert not gone.exists()
    assert not reused.exists()
    assert live.exists()
    assert other.exists()


def test_the_next_run_removes_the_capture_dir_of_a_controller_killed_outright(
    tmp_path: Path,
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    root = write_project(
        tmp_path / "project",
        {
            **UNITTEST_CONF,
            "tests/test_slow.py": """
                import os, time, unittest

                class Slow(unittest.TestCase):
                    def test_slow(self):
                        open(os.environ["STARTED"], "w").close()
                        time.sleep(60)
            """,
        },
    )
    env = worker_env({"TMPDIR": str(scratch), "STARTED": str(tmp_path / "started")})
    killed = subprocess.Popen(
        [sys.executable, "-m", "proctor", "run"],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not (tmp_path / "started").exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    left = [p.name for p in scratch.iterdir() if p.name.startswith("proctor-run-")]
    assert left
    killed.kill()
    killed.wait()
    assert all((scratch / name).exists() for name in left)  # nobody could remove them
    quick = "import unittest\n\nclass Slow(unittest.TestCase):\n    def test_slow(self): pass\n"
    (root / "tests" / "test_slow.py").write_text(quick)
    done = subprocess.run(
        [sys.executable, "-m", "proctor", "run"],
        cwd=root,
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert [p.name for p in scratch.iterdir() if p.name.startswith("proctor-run-")] == []


CRASHES = f"""
    import os
    import subprocess
    import unittest

    class Crash(unittest.TestCase):
        def test_dies_leaving_a_child_in_its_own_session_and_an_orphan(self):
            child = subprocess.Popen(["sleep", "{NAP}"], start_new_session=True)
            orphan = subprocess.run(
                ["sh", "-c", "setsid sleep {NAP} >/dev/null 2>&1 & echo $!"],
                capture_output=True, text=True, check=True,
            ).stdout
            with open(os.environ["PIDS"], "a") as out:
                out.write("%d\\n%s" % (child.pid, orphan))
            os._exit(3)
"""


def test_nothing_a_test_started_outlives_its_worker_dying(tmp_path: Path, pids: Path) -> None:
    root = write_project(tmp_path / "project", {**UNITTEST_CONF, "tests/test_crash.py": CRASHES})
    done = _run(root, pids)
    assert done.returncode == 1, done.stdout + done.stderr
    assert len(pids.read_text().split()) == 2
    assert _left_running(pids) == []
