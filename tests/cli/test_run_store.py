"""What ``proctor run`` and ``proctor load`` keep, tested with real processes:
concurrent complete runs in one repository (SQLite and PostgreSQL), a
controller killed with SIGKILL, runs in which nothing ran, repositories that
cannot be opened or written."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from proctor.store.opening import open_store
from proctor.wire.event import Status
from tests.runner.projects import UNITTEST_CONF, worker_env, write_project
from tests.store.conftest import (  # noqa: F401 - the fixtures a PostgreSQL URL needs
    SQL_BACKENDS,
    _url_for,
    postgres_schemas,
    postgres_url,
)

from .history_streams import events_for

pytestmark = pytest.mark.slow


@pytest.fixture(params=SQL_BACKENDS)
def repository_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty repository's URL on each persistent backend (as in tests/store)."""
    return _url_for(request.param, request, tmp_path / "repository")


def _proctor(
    root: Path, *args: str, stdin: bytes = b"", timeout: float = 120
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "proctor", *args],
        cwd=root,
        input=stdin,
        capture_output=True,
        timeout=timeout,
        env=worker_env(),
        check=False,
    )


def _spawn(root: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "proctor", *args],
        cwd=root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=worker_env(),
    )


# -- concurrent complete runs


def test_concurrent_complete_loads_keep_every_failure(repository_url: str, tmp_path: Path) -> None:
    """8 (PostgreSQL) or 4 (SQLite) ``load --complete`` at once, twice: each
    run has the same 10 failures, and ``failing`` lists all 10 after each round
    (finishing "forget every test but mine" used to leave a few, or none)."""
    from proctor.wire import v2

    tests = 10_000
    failing = {f"pkg.test_{i:05d}" for i in range(0, tests, tests // 10)}
    outcomes = {
        f"pkg.test_{i:05d}": Status.FAIL if f"pkg.test_{i:05d}" in failing else Status.SUCCESS
        for i in range(tests)
    }
    stream = tmp_path / "run.v2"
    stream.write_bytes(v2.encode_many(events_for(outcomes, seconds=dict.fromkeys(outcomes, 0.001))))
    loaders = 8 if repository_url.startswith("postgresql") else 4
    open_store(repository_url).close()
    for _ in range(2):
        children = [
            _spawn(tmp_path, "load", "--complete", "--repository", repository_url, str(stream))
            for _ in range(loaders)
        ]
        for child in children:
            _, err = child.communicate(timeout=300)
            assert child.returncode == 1, err.decode()  # 1: the run it stored failed
        listed = _proctor(tmp_path, "failing", "--list", "--repository", repository_url)
        assert sorted(listed.stdout.decode().split()) == sorted(failing)
    with open_store(repository_url) as store:
        runs = store.runs()
        assert len(runs) == 2 * loaders
        assert all(run.finished and not run.interrupted for run in runs)


def test_two_runs_at_once_in_one_project_keep_every_failure(tmp_path: Path) -> None:
    body = "\n".join(
        f"    def test_{i:04d}(self): self.assertTrue({i % 100 != 7})" for i in range(1000)
    )
    root = write_project(
        tmp_path,
        {
            **UNITTEST_CONF,
            "tests/test_many.py": f"import unittest\n\nclass Many(unittest.TestCase):\n{body}\n",
        },
    )
    failing = sorted(f"tests.test_many.Many.test_{i:04d}" for i in range(7, 1000, 100))
    for _ in range(2):
        children = [_spawn(root, "run", "-j", "1") for _ in range(2)]
        for child in children:
            _, err = child.communicate(timeout=300)
            assert child.returncode == 1, err.decode()
        listed = _proctor(root, "failing", "--list")
        assert listed.stdout.decode().split() == failing


# -- kill -9: a result shown is a result stored


def test_a_controller_killed_with_sigkill_stored_every_result_it_showed(tmp_path: Path) -> None:
    import os
    import re
    import signal

    body = "\n".join(
        f"    def test_{i:04d}(self): time.sleep(0.004); self.assertTrue({i % 40 != 3})"
        for i in range(1500)
    )
    root = write_project(
        tmp_path,
        {
            **UNITTEST_CONF,
            "tests/test_slowish.py": "import time, unittest\n\n"
            f"class Slowish(unittest.TestCase):\n{body}\n",
        },
    )
    controller = subprocess.Popen(
        [sys.executable, "-m", "proctor", "run", "-j", "2"],
        cwd=root,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=worker_env(),
        start_new_session=True,
    )
    shown: set[str] = set()
    finished = re.compile(r"^(?:\{\d+\} )?(tests\.\S+) \[[^\]]*\] \.\.\. (?:ok|FAIL)", re.M)
    try:
        assert controller.stdout is not None
        seen = b""
        while len(finished.findall(seen.decode())) < 300:
            chunk = os.read(controller.stdout.fileno(), 65536)
            assert chunk, controller.communicate()[1].decode()
            seen += chunk
        controller.send_signal(signal.SIGKILL)  # the controller alone, mid-run
        seen += controller.stdout.read()  # everything it had written before it died
        controller.wait(timeout=60)
    finally:
        if controller.poll() is None:
            controller.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(controller.pid, signal.SIGKILL)  # its workers, if still alive
        controller.communicate()
    shown = set(finished.findall(seen.decode()))
    assert len(shown) >= 300
    with open_store(str(root / ".proctor")) as store:
        latest = store.latest_run()
        assert latest is not None
        assert latest.interrupted
        assert not latest.finished
        stored = {r.test_id for r in store.records(latest.id) if r.status.is_final}
    assert shown - stored == set()  # used to miss the last few shown (42 shown, 39 stored)
    assert len(stored) < 1500  # it was killed mid-run


# -- repositories that cannot be written or read


def _make_read_only(path: Path) -> Callable[[], None]:
    """Make ``path`` (a directory) and its files unwritable, even for root
    (``chattr +i``); return the undo."""
    import os

    paths = [path, *path.iterdir()]
    if os.geteuid() != 0:
        for item in paths:
            item.chmod(0o555 if item.is_dir() else 0o444)

        def writable() -> None:
            for item in paths:
                item.chmod(0o755 if item.is_dir() else 0o644)

        return writable
    done = subprocess.run(["chattr", "+i", *map(str, paths)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot make files immutable here: {done.stderr.decode().strip()}")

    def mutable() -> None:
        subprocess.run(["chattr", "-i", *map(str, paths)], check=True)

    return mutable


def _small_project(tmp_path: Path) -> Path:
    body = "\n".join(
        f"    def test_{i:03d}(self): self.assertTrue({i % 50 != 7})" for i in range(200)
    )
    return write_project(
        tmp_path,
        {
            **UNITTEST_CONF,
            "tests/test_a.py": f"import unittest\n\nclass A(unittest.TestCase):\n{body}\n",
        },
    )


def test_a_read_only_repository_fails_the_run_before_it_starts(tmp_path: Path) -> None:
    root = _small_project(tmp_path)
    assert _proctor(root, "run").returncode == 1
    repository = root / ".proctor"
    before = {item.name: item.read_bytes() for item in repository.iterdir()}
    undo = _make_read_only(repository)
    try:
        done = _proctor(root, "run")
        assert done.returncode == 2
        err = done.stderr.decode()
        assert "cannot store this run" in err
        assert "read-only" in err
        assert "Traceback" not in err
        assert b" ... ok" not in done.stdout  # nothing ran
        # Reading commands still work on it.
        assert len(_proctor(root, "failing", "--list").stdout.decode().splitlines()) == 4
        assert _proctor(root, "run", "--no-store").returncode == 1
    finally:
        undo()
    assert {item.name: item.read_bytes() for item in repository.iterdir()} == before


@pytest.mark.parametrize("pages", [(3,), (5, 6), (10, 11), (15, 16, 17, 18), (28, 29, 30, 31)])
def test_corrupt_pages_are_a_clear_error_never_a_traceback(
    tmp_path: Path, pages: tuple[int, ...]
) -> None:
    import os
    import sqlite3

    root = _small_project(tmp_path)
    assert _proctor(root, "run").returncode == 1
    database = root / ".proctor" / "repository.sqlite"
    conn = sqlite3.connect(database)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    size = database.stat().st_size
    with open(database, "r+b") as handle:
        for page in pages:
            handle.seek(page * 4096 % size)
            handle.write(os.urandom(4096))
    done = _proctor(root, "run")
    out, err = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 2, (out, err)
    assert "Traceback" not in err
    assert "proctor/store" not in out + err
    assert "sqlite3." not in out + err
    assert "is not a readable Proctor repository" in out + err


# -- runs in which nothing ran


def test_a_suite_that_fails_to_load_stores_no_run(tmp_path: Path) -> None:
    from tests.runner.projects import PYTEST_CONF

    root = write_project(
        tmp_path,
        {
            **PYTEST_CONF,
            "tests/test_p.py": "def test_p():\n    pass\n\ndef test_q():\n    assert 0\n",
        },
    )
    assert _proctor(root, "run").returncode == 1
    (root / "tests" / "conftest.py").write_text("import no_such_module_for_proctor\n")
    for _ in range(2):
        done = _proctor(root, "run", "-j", "2")
        assert done.returncode == 3, (done.stdout + done.stderr).decode()
    last = _proctor(root, "last")
    assert last.returncode == 1
    assert "tests/test_p.py::test_q" in last.stdout.decode()
    assert "interrupted" not in last.stdout.decode()
    with open_store(str(root / ".proctor")) as store:
        assert [run.id for run in store.runs()] == [1]
