"""Standard output that fails: a closed pipe (``| head -1``) or a full disk (``> /dev/full``).

No traceback, not even at interpreter shutdown; a one-line error for a full
disk; 141 for a reader that went away (as the shell reports for ``cat``); and
``proctor run`` keeps going and stores every result whatever became of its
output. Real processes, real pipes, the real ``/dev/full``.
"""

from __future__ import annotations

import errno
import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from proctor.cli.main import main
from proctor.exitcode import ExitCode
from proctor.store.opening import open_store
from proctor.wire.event import Status

from .history_streams import passing, stream
from .invoke import invoke

FULL = Path("/dev/full")
needs_dev_full = pytest.mark.skipif(not FULL.exists(), reason="no /dev/full here")


class FailingStdout(io.TextIOBase):
    """A stdout whose every write fails with ``code``."""

    def __init__(self, code: int) -> None:
        super().__init__()
        self.code = code
        self.writes = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.writes += 1
        raise OSError(self.code, os.strerror(self.code))

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"


def _main_with_stdout(stdout: io.TextIOBase, *args: str) -> tuple[int, str]:
    err = io.StringIO()
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = stdout, err  # type: ignore[assignment]
    try:
        code = main(list(args))
    finally:
        sys.stdout, sys.stderr = saved
    return code, err.getvalue()


@pytest.fixture
def repo(tmp_path: Path) -> str:
    repo = str(tmp_path / ".proctor")
    assert (
        invoke("load", "--repository", repo, stdin=stream(passing(["a.t1", "a.t2"]))).exit_code == 0
    )
    return repo


@pytest.mark.parametrize("command", ["last", "failing", "slowest", "stats", "runs", "history a.t1"])
def test_a_full_disk_is_one_line_on_stderr_and_exit_2(repo: str, command: str) -> None:
    stdout = FailingStdout(errno.ENOSPC)
    code, err = _main_with_stdout(stdout, *command.split(), "--repository", repo)
    assert code == ExitCode.ERROR
    assert err == (
        "proctor: cannot write to standard output (No space left on device); "
        "the output is incomplete\n"
    )
    assert stdout.writes == 1  # the command stopped at the first failure


def test_a_closed_pipe_ends_quietly_with_141(repo: str) -> None:
    code, err = _main_with_stdout(FailingStdout(errno.EPIPE), "last", "--repository", repo)
    assert (code, err) == (ExitCode.BROKEN_PIPE, "")


def test_the_binary_side_is_guarded_too(repo: str) -> None:
    class Raw(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, data: object) -> int:
            raise OSError(errno.EIO, "Input/output error")

    stdout = io.TextIOWrapper(io.BufferedWriter(Raw()), encoding="utf-8")
    code, err = _main_with_stdout(stdout, "last", "--subunit", "--repository", repo)
    assert code == ExitCode.ERROR
    assert "cannot write to standard output (Input/output error)" in err


# -- real processes ---------------------------------------------------------------------


def _proctor(*args: str, cwd: Path | None = None, **kwargs: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "proctor", *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        **kwargs,  # type: ignore[call-overload]
    )


def _env(*, buffered: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"
    return env


def _read_then_close(
    process: subprocess.Popen[bytes], size: int, gate: Path | None = None
) -> tuple[int, bytes]:
    """Read ``size`` bytes of the output and close the pipe, as ``head -c`` does;
    then open the gate, if any; the exit status and what was written on stderr."""
    with process:
        assert process.stdout is not None
        assert process.stderr is not None
        assert len(process.stdout.read(size)) == size
        process.stdout.close()
        if gate is not None:
            gate.touch()
        err = process.stderr.read()
        return process.wait(timeout=120), err


@pytest.fixture
def big_repo(tmp_path: Path) -> str:
    """Enough results that ``last`` writes far more than a pipe holds."""
    repo = str(tmp_path / "big")
    ids = [f"pkg.test_module.TestCase.test_number_{i}" for i in range(5000)]
    outcomes = {test_id: Status.FAIL if i % 2 else Status.SUCCESS for i, test_id in enumerate(ids)}
    assert invoke("load", "--repository", repo, stdin=stream(outcomes)).exit_code == 1
    return repo


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        ["last"],
        ["last", "--subunit"],
        ["runs", "show"],
        ["failing", "--list"],
        ["stream", "trace"],
        ["stream", "filter", "--all"],
        ["stream", "to-json"],
        ["stream", "ls"],
    ],
)
@pytest.mark.parametrize("buffered", [True, False])
def test_a_reader_that_goes_away_ends_the_command_quietly(
    big_repo: str, tmp_path: Path, command: list[str], buffered: bool
) -> None:
    if command[0] == "stream":
        data = invoke("last", "--subunit", "--repository", big_repo).stdout_bytes
        (tmp_path / "in.subunit").write_bytes(data)
        args = [*command, str(tmp_path / "in.subunit")]
    else:
        args = [*command, "--repository", big_repo]
    process = _proctor(*args, stdout=subprocess.PIPE, env=_env(buffered=buffered))
    # Unbuffered (PYTHONUNBUFFERED, common in CI images), Python's text layer would
    # drop the rest of a short write without a word.
    assert _read_then_close(process, 1) == (ExitCode.BROKEN_PIPE, b"")


@pytest.mark.slow
@needs_dev_full
@pytest.mark.parametrize("buffered", [True, False])
@pytest.mark.parametrize("command", [["last"], ["stats"], ["stream", "trace"], ["last", "--json"]])
def test_dev_full_gives_one_line_and_exit_2(
    buffered: bool, big_repo: str, tmp_path: Path, command: list[str]
) -> None:
    if command[0] == "stream":
        data = invoke("last", "--subunit", "--repository", big_repo).stdout_bytes
        (tmp_path / "in.subunit").write_bytes(data)
        args = [*command, str(tmp_path / "in.subunit")]
    else:
        args = [*command, "--repository", big_repo]
    # Buffered, a short answer fails only when the interpreter flushes it at exit.
    env = _env(buffered=buffered)
    with FULL.open("wb") as full:
        process = _proctor(*args, stdout=full, env=env)
        _, err = process.communicate(timeout=60)
    assert process.returncode == ExitCode.ERROR
    assert err.decode().count("\n") == 1
    assert b"cannot write to standard output (No space left on device)" in err
    assert b"Traceback" not in err


PROJECT = {
    ".stestr.conf": "[DEFAULT]\ntest_path=./tests\ntop_dir=./\n",
    "tests/__init__.py": "",
    "tests/test_many.py": """
        import os, time, unittest

        class Many(unittest.TestCase):
            pass

        for i in range(60):
            setattr(Many, f"test_{i}", lambda self, i=i: print("test", i, "x" * 80))

        class Gate(unittest.TestCase):
            def test_gate(self):
                # Waits until the reader has gone, so the output written after it fails.
                flag = os.environ.get("PROCTOR_TEST_GATE")
                deadline = time.monotonic() + 60
                while flag and not os.path.exists(flag) and time.monotonic() < deadline:
                    time.sleep(0.01)
    """,
}


def _project(root: Path) -> Path:
    for name, text in PROJECT.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def _stored(root: Path) -> tuple[int, int, bool]:
    store = open_store(str(root / ".proctor"), create=False)
    try:
        info = store.latest_run()
        assert info is not None
        return info.counts.ran, info.counts.passed, info.interrupted
    finally:
        store.close()


@pytest.mark.slow
@needs_dev_full
def test_run_to_dev_full_runs_and_stores_every_test(tmp_path: Path) -> None:
    root = _project(tmp_path)
    with FULL.open("wb") as full:
        process = _proctor("run", "-j", "2", cwd=root, stdout=full)
        _, err = process.communicate(timeout=120)
    assert process.returncode == ExitCode.ERROR  # every test passed; the output failed
    assert err.decode().count("\n") == 1, err
    assert b"the run goes on, and every result is stored" in err
    assert _stored(root) == (61, 61, False)
    last = subprocess.run(
        [sys.executable, "-m", "proctor", "last"], cwd=root, capture_output=True, check=False
    )
    assert last.returncode == 0
    assert b"Ran: 61 tests" in last.stdout


@pytest.mark.slow
def test_run_piped_to_a_reader_that_goes_away_stores_every_test(tmp_path: Path) -> None:
    root = _project(tmp_path)
    gate = tmp_path / "gate"
    env = {**os.environ, "PROCTOR_TEST_GATE": str(gate)}
    process = _proctor("run", "-j", "2", cwd=root, stdout=subprocess.PIPE, env=env)
    # `| head -c 10`; exit 0: the tests' verdict
    assert _read_then_close(process, 10, gate) == (0, b"")
    assert _stored(root) == (61, 61, False)


@pytest.mark.slow
def test_a_failing_run_keeps_its_status_when_the_reader_goes_away(tmp_path: Path) -> None:
    root = _project(tmp_path)
    (root / "tests" / "test_fail.py").write_text(
        "import unittest\nclass F(unittest.TestCase):\n    def test_f(self): self.fail('no')\n"
    )
    gate = tmp_path / "gate"
    env = {**os.environ, "PROCTOR_TEST_GATE": str(gate)}
    process = _proctor("run", "-j", "1", cwd=root, stdout=subprocess.PIPE, env=env)
    assert _read_then_close(process, 10, gate)[0] == 1
    ran, passed, interrupted = _stored(root)
    assert (ran, passed, interrupted) == (62, 61, False)


def _closed_stdout(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """``proctor ARGS >&-``: started with descriptor 1 closed."""
    return subprocess.run(
        ["sh", "-c", 'exec "$@" >&-', "sh", sys.executable, "-m", "proctor", *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_a_closed_stdout_is_an_error_and_never_becomes_the_repository(tmp_path: Path) -> None:
    root = _project(tmp_path)
    done = _closed_stdout("run", "-j", "2", cwd=root)
    assert done.returncode == ExitCode.ERROR
    assert done.stderr == (
        b"proctor: cannot write to standard output (it is closed); "
        b"the run goes on, and every result is stored\n"
    )
    assert _stored(root) == (61, 61, False)
    last = _closed_stdout("last", cwd=root)
    assert last.returncode == ExitCode.ERROR
    assert last.stderr.endswith(b"(it is closed); the output is incomplete\n")
    shown = subprocess.run(
        [sys.executable, "-m", "proctor", "last"], cwd=root, capture_output=True, check=False
    )
    assert shown.returncode == 0, shown.stderr  # the repository is intact
    assert b"Ran: 61 tests" in shown.stdout
