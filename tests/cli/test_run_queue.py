"""``proctor run --queue BUILD``: several CI jobs share one build's tests through a
real PostgreSQL repository, as real processes; ``last --build`` and ``runs show
--build`` show the build as one run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.runner.projects import UNITTEST_CONF, worker_env, write_project
from tests.store.conftest import (  # noqa: F401 - the fixtures a PostgreSQL URL needs
    postgres_schemas,
    postgres_url,
)


@pytest.fixture
def url(request: pytest.FixtureRequest) -> str:
    """A fresh PostgreSQL schema's URL: the repository every job of a build shares."""
    return str(request.getfixturevalue("postgres_url"))


pytestmark = [pytest.mark.postgres, pytest.mark.slow]

MODULES, PER_MODULE = 4, 10
ALL_IDS = {f"tests.test_m{m}.T.test_{n}" for m in range(MODULES) for n in range(PER_MODULE)}


def _project(root: Path, url: str, *, sleep: float = 0.02, failing: str | None = None) -> Path:
    files = dict(UNITTEST_CONF)
    files["pyproject.toml"] = f"[tool.proctor]\nconcurrency = 2\nrepository = {url!r}\n"
    for m in range(MODULES):
        body = "".join(
            f"    def test_{n}(self):\n        time.sleep({sleep})\n"
            + (
                "        self.fail('broken on purpose')\n"
                if failing == f"tests.test_m{m}.T.test_{n}"
                else ""
            )
            for n in range(PER_MODULE)
        )
        files[f"tests/test_m{m}.py"] = (
            f"import time, unittest\n\nclass T(unittest.TestCase):\n{body}"
        )
    write_project(root, files)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(
        ["git", "-c", "user.email=ci@example.org", "-c", "user.name=CI", "commit", "-qm", "x"],
        cwd=root,
        check=True,
    )
    return root


def _job(root: Path, name: str, *args: str, lease: float = 60.0) -> subprocess.Popen[bytes]:
    env = worker_env({"PROCTOR_JOB": name, "PROCTOR_LEASE_SECONDS": str(lease)})
    return subprocess.Popen(
        [sys.executable, "-m", "proctor", "run", *args],
        cwd=root,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def _proctor(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "proctor", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env=worker_env(),
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _build(root: Path, build: str) -> dict[str, object]:
    shown = _proctor(root, "last", "--build", build, "--json")
    assert shown.returncode in (0, 1), shown.stderr
    return dict(json.loads(shown.stdout))


def _ids_of(document: dict[str, object]) -> list[str]:
    return [str(result["id"]) for result in document["results"]]  # type: ignore[attr-defined]


def test_three_jobs_share_one_build_and_each_test_runs_once(tmp_path: Path, url: str) -> None:
    root = _project(tmp_path / "p", url)
    jobs = [_job(root, f"job-{n}", "--queue", "B1") for n in range(3)]
    outputs = [job.communicate(timeout=120) for job in jobs]
    for job, (out, err) in zip(jobs, outputs, strict=True):
        assert job.returncode == 0, (out.decode(), err.decode())
        assert b"Traceback" not in err
        # Each job's view counts its share, not the build's 40 as its own.
        assert b"Running a share of the build's 40 tests on 2 workers\n" in out, out.decode()
    document = _build(root, "B1")
    ids = _ids_of(document)
    assert sorted(ids) == sorted(ALL_IDS)  # each exactly once, none lost
    run = document["run"]
    assert run["counts"]["passed"] == len(ALL_IDS)  # type: ignore[index]
    assert run["partial"] is False  # type: ignore[index]  # the jobs ran the whole suite
    # Each job stored its own share; together they are the build. A job that
    # started after the others had taken everything (a loaded machine) stores
    # nothing and says so.
    runs = json.loads(_proctor(root, "runs", "--json").stdout)["runs"]
    idle = [out for out, _ in outputs if b"took every test; none left for this one" in out]
    assert len(runs) + len(idle) == 3, [out.decode()[-300:] for out, _ in outputs]
    assert sum(r["counts"]["ran"] for r in runs) == len(ALL_IDS)
    text = _proctor(root, "runs", "show", "--build", "B1")
    assert text.returncode == 0, text.stderr
    assert "build:" in text.stdout
    assert "Jobs:" in text.stdout
    assert "Worker job1 (" in text.stdout  # the balance is by job
    # A test that failed in the build is failing, whichever job ran it.
    assert _proctor(root, "failing", "--list").stdout == ""


def test_each_job_exits_with_the_verdict_of_its_share(tmp_path: Path, url: str) -> None:
    broken = "tests.test_m2.T.test_7"
    root = _project(tmp_path / "p", url, failing=broken)
    jobs = [_job(root, f"job-{n}", "--queue", "B2") for n in range(2)]
    for job in jobs:
        job.communicate(timeout=120)
    document = _build(root, "B2")
    assert sorted(job.returncode for job in jobs) == [0, 1]  # only the one that ran it failed
    assert _proctor(root, "last", "--build", "B2").returncode == 1
    assert document["run"]["counts"]["failed"] == 1  # type: ignore[index]
    assert _proctor(root, "failing", "--list").stdout.split() == [broken]


def test_a_job_killed_mid_run_gives_its_tests_back_to_the_others(tmp_path: Path, url: str) -> None:
    root = _project(tmp_path / "p", url, sleep=0.15)
    doomed = _job(root, "doomed", "--queue", "B3", lease=1.0)
    # Let it claim its first batches, then kill it without a chance to give them back.
    deadline = time.monotonic() + 60
    assert doomed.stdout is not None
    seen = b""
    while b" ... ok" not in seen and time.monotonic() < deadline:
        seen += os.read(doomed.stdout.fileno(), 4096)
    doomed.send_signal(signal.SIGKILL)
    doomed.communicate(timeout=30)  # and close its pipes
    survivor = _job(root, "survivor", "--queue", "B3", lease=1.0)
    out, err = survivor.communicate(timeout=120)
    assert survivor.returncode == 0, (out.decode(), err.decode())
    ids = _ids_of(_build(root, "B3"))
    assert set(ids) == ALL_IDS  # nothing lost: the dead job's leases ran out, its tests ran
    assert len(ids) == len(ALL_IDS)  # and the build shows each once


def test_bad_queue_use_is_a_clear_error(tmp_path: Path, url: str) -> None:
    root = _project(tmp_path / "p", url)
    first = _job(root, "first", "--queue", "B4")
    first.communicate(timeout=120)
    assert first.returncode == 0
    # The same build id with another selection of tests.
    other = _proctor(root, "run", "--queue", "B4", "test_m1")
    assert other.returncode == 2, other.stderr
    assert "another selection of tests" in other.stderr
    assert "Traceback" not in other.stderr
    both = _proctor(root, "run", "--queue", "B5", "--shard", "1/2")
    assert both.returncode == 2
    assert "--shard does not fit" in both.stderr
    sqlite = _proctor(root, "run", "--queue", "B6", "--repository", str(tmp_path / "repo"))
    assert sqlite.returncode == 2
    assert "needs a PostgreSQL repository" in sqlite.stderr
    # A hostile build id or job name (an 8-bit CSI; a byte that is not UTF-8, as
    # an environment variable can hold) is refused before anything is stored.
    for build, job in (("B7\x9b2J", "ok"), ("B8", "job\udcff")):
        env = worker_env({"PROCTOR_JOB": job})
        hostile = subprocess.run(
            [sys.executable, "-m", "proctor", "run", "--queue", build],
            cwd=root,
            capture_output=True,
            env={k: os.fsencode(v) for k, v in env.items()},  # type: ignore[misc]
            timeout=120,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        err = hostile.stderr.decode(errors="replace")
        assert hostile.returncode == 2, err
        assert "printable characters" in err
        assert "Traceback" not in err
        assert b"\x9b" not in hostile.stderr  # (nor, so, its UTF-8 form)
    missing = _proctor(root, "last", "--build", "no-such-build")
    assert missing.returncode == 2
    assert "no run of build no-such-build" in missing.stderr


def test_triage_counts_a_build_as_one_run(tmp_path: Path, url: str) -> None:
    root = _project(tmp_path / "p", url, failing="tests.test_m1.T.test_3")
    jobs = [_job(root, f"job-{n}", "--queue", "B7") for n in range(2)]
    for job in jobs:
        job.communicate(timeout=120)
    assert len(json.loads(_proctor(root, "runs", "--json").stdout)["runs"]) == 2
    shown = _proctor(root, "triage", "--json", "--since", "1d")
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    assert len(document["window"]["runs"]) == 1  # two jobs, one build
    (cluster,) = document["clusters"]
    assert (cluster["failures"], cluster["runs"]) == (1, 1)
