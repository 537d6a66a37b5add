"""``proctor run`` with real workers: signals, a killed controller, stdin at end of
input, teardown crashes, a suite that cannot load, capture files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from proctor.store.opening import open_store
from proctor.wire.v2 import decode
from tests.runner.projects import PYTEST_CONF, outcomes, worker_env, write_project

pytestmark = pytest.mark.slow

PROJECT = {"pyproject.toml": '[tool.proctor]\ntest_path = "tests"\n'}


def _proctor(root: Path, *args: str) -> subprocess.Popen[bytes]:
    scratch = root / "tmp"  # a killed controller cannot remove its capture directory
    scratch.mkdir(exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "proctor", "run", *args],
        cwd=root,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=worker_env({"TMPDIR": str(scratch)}),
    )


def _run(
    root: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "proctor", "run", *args],
        cwd=root,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
        env=env or worker_env(),
        check=False,
    )


def _pids_with(root: Path) -> list[int]:
    """Processes (workers) with this project's root on their command line."""
    needle = str(root).encode()
    return [
        int(path.parent.name) for path in Path("/proc").glob("*/cmdline") if needle in _read(path)
    ]


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _wait_gone(root: Path, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not _pids_with(root):
            return True
        time.sleep(0.05)
    return False


def _wait_for_line(process: subprocess.Popen[bytes], needle: bytes) -> bytes:
    assert process.stdout is not None
    seen = b""
    while needle not in seen:
        line = process.stdout.readline()
        assert line, f"proctor run ended before {needle!r}: {seen.decode()}"
        seen += line
    return seen


HANGING = {
    **PROJECT,
    "tests/test_h.py": """
        import time, unittest
        class H(unittest.TestCase):
            def test_a_quick(self): pass
            def test_b_hangs(self): time.sleep(600)
    """,
}


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_stop_the_workers_keep_the_results_and_exit_128_plus(
    tmp_path: Path, signum: int
) -> None:
    root = write_project(tmp_path, HANGING)
    process = _proctor(root, "-j", "1")
    try:
        seen = _wait_for_line(process, b"test_a_quick")
        process.send_signal(signum)
        rest, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + signum, (seen + rest + err).decode()
    assert _wait_gone(root)
    store = open_store(str(root / ".proctor"), create=False)
    try:
        latest = store.latest_run()
        assert latest is not None
        assert latest.interrupted
        kept = {r.test_id: r.status.wire_name for r in store.records(latest.id)}
        assert kept["tests.test_h.H.test_a_quick"] == "success"
    finally:
        store.close()


def test_workers_die_with_a_controller_killed_by_sigkill(tmp_path: Path) -> None:
    root = write_project(tmp_path, HANGING)
    process = _proctor(root, "-j", "1", "--no-store")
    try:
        _wait_for_line(process, b"test_a_quick")
        assert _pids_with(root)  # its worker (with --root=...), running test_b_hangs
        process.kill()
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)
    assert _wait_gone(root), "a worker outlived its controller"


def test_stdin_at_end_of_input_leaves_the_timeout_on_and_imports_reading_stdin_go_on(
    tmp_path: Path,
) -> None:
    root = write_project(
        tmp_path,
        {
            **PROJECT,
            "tests/test_reads_at_import.py": """
                import sys, unittest
                DATA = sys.stdin.read()
                class I(unittest.TestCase):
                    def test_ok(self): self.assertEqual(DATA, "")
            """,
            "tests/test_input.py": """
                import time, unittest
                class T(unittest.TestCase):
                    def test_input_then_sleep(self):
                        try:
                            input()
                        except EOFError:
                            pass
                        time.sleep(20)
            """,
        },
    )
    started = time.monotonic()
    done = _run(root, "-j", "1", "--timeout", "1", "--no-store")
    elapsed = time.monotonic() - started
    out = done.stdout.decode()
    assert done.returncode == 1, out + done.stderr.decode()
    assert "Timed out: still running after 1s" in out
    assert "waits for input" not in out
    assert "1 passed, 1 failed" in out
    assert elapsed < 15


def test_a_teardown_crash_after_quit_fails_the_run(tmp_path: Path) -> None:
    root = write_project(
        tmp_path,
        {
            **PROJECT,
            "tests/test_td.py": """
                import os, sys, unittest
                def tearDownModule():
                    print("tearing down, then crashing", flush=True)
                    os._exit(9)
                class T(unittest.TestCase):
                    def test_ok(self): pass
            """,
        },
    )
    done = _run(root, "-j", "1", "--subunit", "--no-store")
    assert done.returncode == 1, done.stderr.decode()
    got = outcomes(decode(done.stdout))
    assert got["tests.test_td.T.test_ok"] == "success"
    assert got["worker-0 teardown"] == "fail"
    assert b"while tearing down after quit" in done.stderr
    assert b"while idle" not in done.stderr


def test_a_suite_that_cannot_load_stops_at_once_with_one_copy_of_its_output(
    tmp_path: Path,
) -> None:
    root = write_project(
        tmp_path,
        {
            **PYTEST_CONF,
            "tests/conftest.py": "import no_such_module_for_proctor\n",
            "tests/test_p.py": "def test_p():\n    pass\n",
        },
    )
    done = _run(root, "-j", "2", "--no-store")
    out = done.stdout.decode() + done.stderr.decode()
    assert done.returncode == 3, out
    assert "the suite could not be loaded" in out
    assert out.count("No module named 'no_such_module_for_proctor'") == 1
    assert "could not obey a command" not in out


def test_capture_files_are_removed_even_when_the_output_is_cut_short(tmp_path: Path) -> None:
    root = write_project(
        tmp_path / "project",
        {
            **PROJECT,
            "tests/test_many.py": "import unittest\nclass M(unittest.TestCase):\n"
            + "".join(f"    def test_{i:03d}(self): print('x' * 100)\n" for i in range(200)),
        },
    )
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = worker_env({"TMPDIR": str(scratch)})
    shell = f"{sys.executable} -m proctor run -j 2 --subunit --no-store | head -c 100 > /dev/null"
    subprocess.run(shell, shell=True, cwd=root, env=env, timeout=60, check=False)
    assert _wait_gone(root)
    assert list(scratch.iterdir()) == []
    assert os.path.isdir(root)


ARGV_PROJECT = {
    **PROJECT,
    "tests/test_argv.py": """
        import sys, unittest
        class A(unittest.TestCase):
            def test_argv(self): print("ARGV", sys.argv)
    """,
}


def _worker_argv(done: subprocess.CompletedProcess[bytes]) -> str:
    events = decode(done.stdout)
    return b"".join(e.file_bytes for e in events if e.file_name == "stdout").decode()


def test_the_first_worker_is_started_before_parsing_and_adopted(tmp_path: Path) -> None:
    root = write_project(tmp_path / "project", ARGV_PROJECT)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = worker_env({"TMPDIR": str(scratch)})
    done = _run(root, "-j", "1", "--subunit", "--no-store", env=env)
    assert done.returncode == 0, done.stderr.decode()
    argv = _worker_argv(done)
    assert "--capture-dir" in argv
    assert "--framework" not in argv  # the early worker: it read the configuration itself
    assert "--root" not in argv
    assert list(scratch.iterdir()) == []

    done = _run(root, "-j", "1", "--subunit", "--no-store", "--framework", "unittest", env=env)
    assert done.returncode == 0, done.stderr.decode()
    assert "--framework=unittest" in _worker_argv(done)  # overridden: started as usual
    assert list(scratch.iterdir()) == []


def test_an_early_worker_nobody_adopts_is_ended_at_exit(tmp_path: Path) -> None:
    root = write_project(tmp_path / "project", HANGING)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = worker_env({"TMPDIR": str(scratch)})
    done = _run(root, "--timeout", "0", env=env)  # started early, then a usage error
    assert done.returncode == 2, done.stderr.decode()
    assert _wait_gone(root)
    assert list(scratch.iterdir()) == []
