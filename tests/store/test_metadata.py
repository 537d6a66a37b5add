"""Run metadata: git state, the CI job, the machine and the command line."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from proctor.store.metadata import capture_metadata, ci_job, git_state

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


@needs_git
def test_git_state_gives_commit_branch_and_dirty(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q", "-b", "trunk")
    assert git_state(tmp_path).commit is None  # no commit yet
    (tmp_path / "a.py").write_text("x = 1\n")
    _git(tmp_path, "add", "a.py")
    _git(tmp_path, "commit", "-q", "-m", "one")
    state = git_state(tmp_path)
    assert state.branch == "trunk"
    assert state.commit is not None
    assert len(state.commit) == 40
    assert state.dirty is False
    (tmp_path / "untracked.py").write_text("")
    assert git_state(tmp_path).dirty is False  # untracked files do not count
    (tmp_path / "a.py").write_text("x = 2\n")
    assert git_state(tmp_path).dirty is True
    _git(tmp_path, "checkout", "-q", "--detach")
    assert git_state(tmp_path).branch is None


def test_outside_git_nothing_is_known(tmp_path: Path) -> None:
    assert git_state(tmp_path / "missing").commit is None


@pytest.mark.parametrize(
    ("env", "provider", "job", "url", "branch", "commit"),
    [
        (
            {
                "GITHUB_ACTIONS": "true",
                "GITHUB_RUN_ID": "42",
                "GITHUB_RUN_ATTEMPT": "2",
                "GITHUB_REPOSITORY": "org/repo",
                "GITHUB_SERVER_URL": "https://github.com",
                "GITHUB_HEAD_REF": "feature",
                "GITHUB_REF_NAME": "17/merge",
                "GITHUB_SHA": "abc",
                "GITHUB_JOB": "tests",
            },
            "github-actions",
            "42/2",
            "https://github.com/org/repo/actions/runs/42/attempts/2",
            "feature",
            "abc",
        ),
        (
            {
                "GITLAB_CI": "true",
                "CI_JOB_ID": "7",
                "CI_JOB_URL": "https://gitlab.example/j/7",
                "CI_COMMIT_REF_NAME": "main",
                "CI_COMMIT_SHA": "def",
            },
            "gitlab-ci",
            "7",
            "https://gitlab.example/j/7",
            "main",
            "def",
        ),
        (
            {
                "JENKINS_URL": "https://ci/",
                "BUILD_TAG": "jenkins-proj-9",
                "BUILD_URL": "https://ci/job/proj/9/",
                "GIT_BRANCH": "origin/release",
                "GIT_COMMIT": "123",
            },
            "jenkins",
            "jenkins-proj-9",
            "https://ci/job/proj/9/",
            "release",
            "123",
        ),
        (
            {
                "CIRCLECI": "true",
                "CIRCLE_BUILD_NUM": "5",
                "CIRCLE_BUILD_URL": "https://circleci.com/gh/o/r/5",
                "CIRCLE_BRANCH": "dev",
                "CIRCLE_SHA1": "456",
            },
            "circleci",
            "5",
            "https://circleci.com/gh/o/r/5",
            "dev",
            "456",
        ),
        (
            {
                "TF_BUILD": "True",
                "BUILD_BUILDID": "88",
                "SYSTEM_COLLECTIONURI": "https://dev.azure.com/org/",
                "SYSTEM_TEAMPROJECT": "proj",
                "BUILD_SOURCEBRANCHNAME": "main",
                "BUILD_SOURCEVERSION": "789",
            },
            "azure-pipelines",
            "88",
            "https://dev.azure.com/org/proj/_build/results?buildId=88",
            "main",
            "789",
        ),
        (
            {
                "BUILDKITE": "true",
                "BUILDKITE_JOB_ID": "j1",
                "BUILDKITE_BUILD_URL": "https://buildkite.com/o/p/builds/3",
                "BUILDKITE_BRANCH": "main",
                "BUILDKITE_COMMIT": "aaa",
            },
            "buildkite",
            "j1",
            "https://buildkite.com/o/p/builds/3#j1",
            "main",
            "aaa",
        ),
        ({"CI": "true"}, "ci", None, None, None, None),
    ],
)
def test_ci_jobs_are_read_from_each_providers_variables(
    env: dict[str, str],
    provider: str,
    job: str | None,
    url: str | None,
    branch: str | None,
    commit: str | None,
) -> None:
    found = ci_job(env)
    assert found is not None
    assert (found.provider, found.job_id, found.url, found.branch, found.commit) == (
        provider,
        job,
        url,
        branch,
        commit,
    )


def test_outside_ci_there_is_no_job() -> None:
    assert ci_job({"HOME": "/root"}) is None


def test_capture_metadata_fills_every_column(tmp_path: Path) -> None:
    env = {"GITLAB_CI": "true", "CI_JOB_ID": "7", "CI_COMMIT_REF_NAME": "main", "CI_JOB_NAME": "x"}
    meta = capture_metadata(
        root=tmp_path,
        argv=["/usr/bin/proctor", "run", "-k", "a b"],
        environ=env,
        source="load",
        partial=False,
        properties={"variant": "py311"},
    )
    assert meta.command == "proctor run -k 'a b'"
    assert meta.python is not None
    assert meta.python.split()[0] in ("CPython", "PyPy")
    assert meta.platform
    assert meta.hostname
    assert (meta.ci_provider, meta.ci_job_id) == ("gitlab-ci", "7")
    assert meta.git_branch == "main"  # git knows nothing here, CI does
    assert (meta.source, meta.partial) == ("load", False)
    assert meta.properties == {"ci.job": "x", "variant": "py311"}


@needs_git
def test_a_project_inside_another_checkout_has_no_revision_of_its_own(tmp_path: Path) -> None:
    # The demo unpacks an sdist into Proctor's own checkout (.demo/, ignored):
    # Proctor's commit is not the sdist's revision.
    _git(tmp_path, "init", "-q", "-b", "trunk")
    (tmp_path / ".gitignore").write_text(".demo/\n")
    (tmp_path / "monorepo_part").mkdir()
    (tmp_path / "monorepo_part" / "pyproject.toml").write_text("[project]\nname = 'part'\n")
    _git(tmp_path, "add", ".gitignore", "monorepo_part/pyproject.toml")
    _git(tmp_path, "commit", "-q", "-m", "one")
    sdist = tmp_path / ".demo" / "more_itertools-1.0"
    sdist.mkdir(parents=True)
    (sdist / "pyproject.toml").write_text("[project]\nname = 'more-itertools'\n")
    assert git_state(sdist) == git_state(tmp_path / "missing")  # nothing known
    assert capture_metadata(root=sdist).git_commit is None
    assert capture_metadata(root=sdist).git_branch is None
    untracked = tmp_path / "scratch"  # not ignored, but not tracked either
    untracked.mkdir()
    (untracked / "setup.py").write_text("")
    assert git_state(untracked).commit is None
    part = git_state(tmp_path / "monorepo_part")  # a project the repository tracks
    assert part.branch == "trunk"
    assert part.commit == git_state(tmp_path).commit
    assert part.commit is not None
