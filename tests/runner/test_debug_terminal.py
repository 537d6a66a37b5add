"""A real ``pdb`` session at a terminal while another worker reports results.

``proctor run`` runs with a pseudo-terminal as its stdin, stdout and stderr,
so its input is a debugging session. One worker stops in ``pdb``; the other
fails a test meanwhile. That failure may not be printed while the session is
on (it would land on the ``(Pdb)`` prompt); it is printed once the test under
the debugger continues.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.runner.projects import UNITTEST_CONF, worker_env, write_project

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a Linux pseudo-terminal"),
]

MARK = "B-FAILURE-MARK"

PROJECT = {
    **UNITTEST_CONF,
    # Six tests, sent as one unit under --parallel-class: worker 0 holds all of A.
    "tests/test_a.py": """
        import os
        import pdb
        import unittest

        FLAGS = os.environ["FLAGS"]

        class A(unittest.TestCase):
            def test_0_debug(self):
                open(os.path.join(FLAGS, "debugging"), "w").close()
                value = 41
                pdb.set_trace()
                value += 1
                self.assertEqual(value, 42)

            def test_1(self): pass
            def test_2(self): pass
            def test_3(self): pass
            def test_4(self): pass
            def test_5(self): pass
    """,
    "tests/test_b.py": f"""
        import os
        import time
        import unittest

        FLAGS = os.environ["FLAGS"]

        class B(unittest.TestCase):
            def test_1_fails(self):
                deadline = time.monotonic() + 60
                while not os.path.exists(os.path.join(FLAGS, "debugging")):
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.01)
                self.fail("{MARK}")

            def test_2_after(self):
                # test_1_fails's result went out as this test started.
                open(os.path.join(FLAGS, "reported"), "w").close()
    """,
}


class Terminal:
    """The controlling side of a pseudo-terminal, read with a deadline."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.seen = bytearray()

    def read_until(self, needle: bytes, timeout: float = 60.0, start: int = 0) -> int:
        deadline = time.monotonic() + timeout
        while True:
            found = self.seen.find(needle, start)
            if found >= 0:
                return found
            left = deadline - time.monotonic()
            assert left > 0, f"no {needle!r} in {bytes(self.seen[-3000:])!r}"
            if select.select([self.fd], [], [], min(left, 0.5))[0]:
                try:
                    data = os.read(self.fd, 65536)
                except OSError:  # the other side closed (EIO)
                    data = b""
                assert data, f"terminal closed before {needle!r}: {bytes(self.seen[-3000:])!r}"
                self.seen += data

    def drain(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if select.select([self.fd], [], [], 0.5)[0]:
                try:
                    data = os.read(self.fd, 65536)
                except OSError:
                    return
                if not data:
                    return
                self.seen += data

    def type(self, line: bytes) -> None:
        os.write(self.fd, line)


def _wait_for_file(path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_other_workers_results_wait_until_the_debugger_session_ends(tmp_path: Path) -> None:
    root = write_project(tmp_path / "project", PROJECT)
    flags = tmp_path / "flags"
    flags.mkdir()
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "proctor", "run", "-j", "2", "--parallel-class"],
        cwd=root,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=worker_env({"FLAGS": str(flags), "COLUMNS": "200", "TERM": "dumb"}),
    )
    os.close(slave)
    terminal = Terminal(master)
    try:
        prompt = terminal.read_until(b"(Pdb) ")
        _wait_for_file(flags / "reported")  # the other worker has reported its failure
        terminal.type(b"p 'probe' + '-reply'\n")  # a round trip through the controller
        reply = terminal.read_until(b"probe-reply", start=prompt)
        assert MARK.encode() not in terminal.seen[:reply], bytes(terminal.seen)
        terminal.type(b"c\n")
        terminal.drain()
        assert process.wait(timeout=60) == 1
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
    after = bytes(terminal.seen[reply:])
    assert MARK.encode() in after  # printed, once the session was over
