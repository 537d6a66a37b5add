"""A real ``proctor watch``: stored cycles, --timeout, crashes, keys and a debugger
through a terminal (pty)."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.runner.projects import UNITTEST_CONF, write_project
from tests.runner.watch.watch_support import TIMEOUT, WatchProcess, child_pids, is_zygote

pytestmark = pytest.mark.slow

TESTS = {
    "tests/test_a.py": """
        import unittest

        class A(unittest.TestCase):
            def test_a(self):
                self.assertEqual(1, 2)
    """,
    "tests/test_b.py": """
        import unittest

        class B(unittest.TestCase):
            def test_b(self):
                pass
    """,
}


def project(tmp_path: Path, extra: dict[str, str] | None = None) -> Path:
    return write_project(tmp_path, {**UNITTEST_CONF, **TESTS, **(extra or {})})


def proctor(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "proctor", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def test_cycles_are_stored_and_proctor_failing_sees_them(tmp_path: Path) -> None:
    root = project(tmp_path)
    watch = WatchProcess(root, store=True)
    try:
        assert watch.wait_cycle()["tests.test_a.A.test_a"] == "failed"
        failing = proctor(root, "failing")
        assert failing.returncode == 1
        assert "tests.test_a.A.test_a" in failing.stdout
        path = root / "tests/test_a.py"
        path.write_text(path.read_text().replace("(1, 2)", "(1, 1)"))
        assert watch.wait_cycle() == {"tests.test_a.A.test_a": "ok"}
        failing = proctor(root, "failing")
        assert failing.returncode == 0, failing.stdout
        runs = proctor(root, "runs", "--json")
        assert runs.returncode == 0, runs.stderr
        assert runs.stdout.count('"watch"') >= 2  # one stored run per cycle, source watch
    finally:
        watch.stop()


def test_a_hung_test_is_stopped_by_timeout_and_a_crash_replaces_the_worker(
    tmp_path: Path,
) -> None:
    root = project(
        tmp_path,
        {
            "tests/test_hang.py": """
                import os, time, unittest

                class H(unittest.TestCase):
                    def test_hang(self):
                        time.sleep(120)

                    def test_crash(self):
                        os._exit(7)
            """
        },
    )
    watch = WatchProcess(root, "--timeout", "2")
    try:
        first = watch.wait_cycle()
        assert first["tests.test_hang.H.test_hang"] == "failed"
        assert first["tests.test_hang.H.test_crash"] == "failed"
        assert first["tests.test_b.B.test_b"] == "ok"
        path = root / "tests/test_hang.py"
        path.write_text(
            path.read_text().replace("time.sleep(120)", "pass").replace("os._exit(7)", "pass")
        )
        again = watch.wait_cycle()
        assert again["tests.test_hang.H.test_hang"] == "ok"
        assert again["tests.test_hang.H.test_crash"] == "ok"
    finally:
        watch.stop()


class Terminal:
    """``proctor watch`` on a pseudo-terminal."""

    def __init__(self, root: Path) -> None:
        self.master, slave = os.openpty()
        env = dict(os.environ, TERM="xterm", COLUMNS="120", LINES="40")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "proctor", "watch", "--no-store", "--no-color"],
            cwd=root,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
        )
        os.close(slave)
        self.seen = ""

    def expect(self, pattern: str) -> str:
        deadline = time.monotonic() + TIMEOUT
        regex = re.compile(pattern)
        while True:
            match = regex.search(self.seen)
            if match is not None:
                self.seen = self.seen[match.end() :]
                return match.group(0)
            left = deadline - time.monotonic()
            assert left > 0, f"never saw {pattern!r} in:\n{self.seen[-3000:]}"
            ready, _, _ = select.select([self.master], [], [], min(left, 1.0))
            if ready:
                try:
                    data = os.read(self.master, 65536)
                except OSError:
                    data = b""
                assert data, f"ended before {pattern!r}:\n{self.seen[-3000:]}"
                self.seen += data.decode("utf-8", "replace")

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def close(self) -> int:
        try:
            return self.proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            ready, _, _ = select.select([self.master], [], [], 0)
            tail = os.read(self.master, 65536).decode("utf-8", "replace") if ready else ""
            raise AssertionError(f"still running after:\n{(self.seen + tail)[-3000:]}") from None
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            os.close(self.master)


def test_keys_through_a_terminal(tmp_path: Path) -> None:
    root = project(tmp_path)
    term = Terminal(root)
    try:
        term.expect(r"a run all")  # the help line
        term.expect(r"\[watch\] cycle 1 \(start; all tests\)")
        term.send("t")
        term.expect(r"test-id regex")
        term.send("test_b\n")
        line = term.expect(r"\[watch\] cycle 2 [^\n]*")
        assert "1 passed, 0 failed" in line
        assert "tests /test_b/" in line
        term.send("c")
        term.expect(r"filters cleared")
        term.send("f")
        line = term.expect(r"\[watch\] cycle 3 [^\n]*")
        assert "0 passed, 1 failed" in line  # test_a, the one failing
        term.send("f")
        term.expect(r"\[watch\] cycle 4 ")
        term.send("p")
        term.expect(r"file regex")
        term.send("test_a\n")
        line = term.expect(r"\[watch\] cycle 5 [^\n]*")
        assert "0 passed, 1 failed" in line
        term.send("a")
        line = term.expect(r"\[watch\] cycle 6 [^\n]*")
        assert "0 passed, 1 failed" in line  # `a` keeps the file filter, as Jest's does
        term.send("c")
        term.expect(r"filters cleared")
        term.send("\r")
        line = term.expect(r"\[watch\] cycle 7 [^\n]*")
        assert "1 passed, 1 failed" in line
    finally:
        term.send("q")
        code = term.close()
    assert code == 0


def test_a_debugger_works_inside_a_watched_test(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        {
            "tests/test_pdb.py": """
                import unittest

                class P(unittest.TestCase):
                    def test_pdb(self):
                        value = 41
                        breakpoint()
                        self.assertEqual(value, 42)
            """
        },
    )
    term = Terminal(root)
    try:
        term.expect(r"\(Pdb\) ")
        term.send("value = 42\n")
        term.expect(r"\(Pdb\) ")
        term.send("c\n")
        line = term.expect(r"\[watch\] cycle 1 [^\n]*")
        assert "2 passed, 1 failed" in line  # test_a fails, test_pdb passed
    finally:
        term.send("q")
        code = term.close()
    assert code == 0


def test_a_debugger_works_in_a_test_forked_from_a_warm_pytest_session(tmp_path: Path) -> None:
    """The second cycle's worker is forked from a warm pytest session (its session
    fixture set up before the edit): ``breakpoint()`` still reaches the terminal,
    and what is typed at the prompt reaches the test."""
    root = write_project(
        tmp_path,
        {
            "pytest.ini": "[pytest]\n",
            "tests/conftest.py": """
                import os

                import pytest

                @pytest.fixture(scope="session")
                def base():
                    return 40, os.getpid()
            """,
            "tests/test_pdb.py": """
                import os

                def test_pdb(base):
                    number, set_up_by = base
                    value = number + 1
                    assert value == 42
            """,
        },
    )
    term = Terminal(root)
    try:
        line = term.expect(r"\[watch\] cycle 1 [^\n]*")
        assert "1 failed" in line
        time.sleep(2)  # the warm session sets itself up between cycles
        test = root / "tests/test_pdb.py"
        test.write_text(test.read_text().replace("    assert", "    breakpoint()\n    assert"))
        term.expect(r"\(Pdb\) ")
        term.send("p ('warm', set_up_by != os.getpid())\n")
        term.expect(r"\('warm', True\)")  # the fixture was set up by the warm session
        term.expect(r"\(Pdb\) ")
        term.send("value = 42\n")
        term.expect(r"\(Pdb\) ")
        term.send("c\n")
        line = term.expect(r"\[watch\] cycle 2 [^\n]*")
        assert "1 passed" in line, line
    finally:
        term.send("q")
        code = term.close()
    assert code == 0


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def children(pid: int) -> int:
    return len(child_pids(pid))


def workers(pid: int) -> tuple[int, int]:
    """(worker processes, warm parents) under the watch process ``pid``: its
    children and its warm parents' children are workers."""
    found = zygotes = 0
    for child in child_pids(pid):
        if is_zygote(child):
            zygotes += 1
            found += children(child)
        else:
            found += 1
    return found, zygotes


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")
def test_memory_and_workers_stay_flat_over_cycles(tmp_path: Path) -> None:
    """Each cycle's controller leaves reference cycles behind, and the console
    script raises gc's thresholds: without a collection between cycles the watch
    grew ~53 KB a cycle (bench/watch.py --leak). 40 cycles must not add 1 MB."""
    many = "".join(f"    def test_{i}(self):\n        pass\n" for i in range(200))
    root = project(
        tmp_path, {"tests/test_many.py": f"import unittest\n\nclass M(unittest.TestCase):\n{many}"}
    )
    watch = WatchProcess(root)
    path = root / "tests/test_many.py"
    try:
        watch.wait_cycle()
        samples = []
        for index in range(45):
            path.write_text(path.read_text() + f"\nEDIT_{index} = 0\n")
            watch.wait_cycle()
            samples.append((rss_kb(watch.proc.pid), workers(watch.proc.pid)))
        assert all(kids == 0 for _, (kids, _) in samples)  # no worker outlives its cycle
        assert len({zygotes for _, (_, zygotes) in samples}) == 1  # nor do warm parents pile up
        assert samples[-1][0] - samples[4][0] < 1024, samples
    finally:
        watch.stop()


def test_the_failing_tests_run_first(tmp_path: Path) -> None:
    root = write_project(
        tmp_path,
        {
            **UNITTEST_CONF,
            "lib.py": "VALUE = 1\n",
            "tests/test_a.py": """
                import unittest
                import lib

                class A(unittest.TestCase):
                    def test_a(self):
                        self.assertEqual(lib.VALUE, 1)
            """,
            "tests/test_z.py": """
                import unittest
                import lib

                class Z(unittest.TestCase):
                    def test_z(self):
                        self.assertEqual(lib.VALUE, 2)
            """,
        },
    )
    watch = WatchProcess(root, "--serial")
    try:
        first = watch.wait_cycle()
        assert list(first) == ["tests.test_a.A.test_a", "tests.test_z.Z.test_z"]  # discovery
        (root / "lib.py").write_text("VALUE = 1  # edited\n")
        again = watch.wait_cycle()
        assert list(again) == ["tests.test_z.Z.test_z", "tests.test_a.A.test_a"]
    finally:
        watch.stop()


def test_ctrl_c_ends_the_watch_between_and_during_cycles(tmp_path: Path) -> None:
    import signal

    root = project(
        tmp_path,
        {
            "tests/test_slow.py": """
                import time, unittest

                class S(unittest.TestCase):
                    def test_slow(self):
                        time.sleep(0.1)
            """
        },
    )
    watch = WatchProcess(root)
    try:
        watch.wait_cycle()
        watch.proc.send_signal(signal.SIGINT)  # waiting for changes
        assert watch.proc.wait(TIMEOUT) == 130
    finally:
        watch.stop()
    path = root / "tests/test_slow.py"
    path.write_text(path.read_text().replace("0.1", "120"))
    watch = WatchProcess(root)
    try:
        line = watch.lines.get(timeout=TIMEOUT)
        while line is not None and "test_slow" not in line and "Running" not in line:
            line = watch.lines.get(timeout=TIMEOUT)
        time.sleep(0.5)  # let the slow test start (not a timing assertion)
        watch.proc.send_signal(signal.SIGINT)  # the first lets the running test finish
        time.sleep(0.5)  # two signals sent at once can arrive as one
        watch.proc.send_signal(signal.SIGINT)  # the second kills the workers
        try:
            code = watch.proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            rest = []
            while not watch.lines.empty():
                rest.append(str(watch.lines.get_nowait()))
            raise AssertionError("\n".join(rest)) from None
        assert code == 130
    finally:
        watch.stop()
