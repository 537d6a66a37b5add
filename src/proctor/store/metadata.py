"""What a run was: the source revision, the machine, the CI job, the command line.

Captured once when a run begins, stored as indexed columns on the run (commit,
branch and start time are what queries filter on; see triage.md 7.1 on why
these must not live in a key/value side table) plus free-form properties.

* git: one ``git status --porcelain=v2 --branch`` gives commit, branch and the
  dirty flag in a single process (``--no-optional-locks`` so it never writes
  the index of a repository another process is using). Untracked files do not
  make a tree dirty: they cannot change what a test imports unless added.
* CI: the providers' documented environment variables (table below). On CI the
  checkout is often a detached HEAD, so the provider's branch name fills in
  what git cannot say.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from proctor.store.model import RunMetadata

__all__ = ["CiJob", "GitState", "capture_metadata", "ci_job", "git_state"]


@dataclass(frozen=True, slots=True)
class GitState:
    commit: str | None
    branch: str | None
    dirty: bool | None


@dataclass(frozen=True, slots=True)
class CiJob:
    provider: str
    job_id: str | None
    url: str | None
    branch: str | None
    commit: str | None
    properties: Mapping[str, str]


def git_state(root: Path | str | None = None, timeout: float = 5.0) -> GitState:
    """Commit, branch and dirty flag of the checkout at ``root`` (all None outside git).

    A ``root`` inside another repository's work tree that the repository does
    not track (a project unpacked under someone else's checkout, like the demo's
    sdist in Proctor's own ``.demo/``) is outside git too: that checkout's
    revision says nothing about the project's code.
    """
    if root is not None and not _tracked_by_enclosing_repository(str(root), timeout):
        return GitState(None, None, None)
    try:
        done = subprocess.run(
            [
                "git",
                "--no-optional-locks",
                "-C",
                str(root or "."),
                "status",
                "--porcelain=v2",
                "--branch",
                "--untracked-files=no",
            ],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return GitState(None, None, None)
    if done.returncode != 0:
        return GitState(None, None, None)
    commit = branch = None
    dirty = False
    for line in done.stdout.decode("utf-8", "replace").splitlines():
        if line.startswith("# branch.oid "):
            value = line[len("# branch.oid ") :]
            commit = None if value == "(initial)" else value
        elif line.startswith("# branch.head "):
            value = line[len("# branch.head ") :]
            branch = None if value == "(detached)" else value
        elif line and not line.startswith("#"):
            dirty = True
    return GitState(commit, branch, dirty)


_LS_FILES = ("ls-files", "-z", "--")


def _tracked_by_enclosing_repository(root: str, timeout: float) -> bool:
    """Whether the git repository that ``root`` lies in is the project's own: it
    is rooted at ``root``, or it tracks a file at ``root`` (a project in a
    monorepo). True when no ``.git`` is found above (git decides, as before)."""
    root = os.path.abspath(root)
    here = root
    while not os.path.exists(os.path.join(here, ".git")):
        parent = os.path.dirname(here)
        if parent == here:
            return True
        here = parent
    if here == root:
        return True  # the common case: no extra process
    try:
        names = sorted(
            name for name in os.listdir(root) if os.path.isfile(os.path.join(root, name))
        )
    except OSError:
        return False
    if not names:
        return False
    try:
        done = subprocess.run(
            ["git", "--no-optional-locks", "--literal-pathspecs", "-C", root, *_LS_FILES, *names],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0 and bool(done.stdout)


_Env = Mapping[str, str]


def _github(env: _Env) -> CiJob:
    run_id = env.get("GITHUB_RUN_ID")
    attempt = env.get("GITHUB_RUN_ATTEMPT")
    url = None
    if run_id and env.get("GITHUB_REPOSITORY"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com")
        url = f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{run_id}"
        if attempt:
            url += f"/attempts/{attempt}"
    job = f"{run_id}/{attempt}" if run_id and attempt else run_id
    props = {"ci.job": env.get("GITHUB_JOB", ""), "ci.workflow": env.get("GITHUB_WORKFLOW", "")}
    return CiJob(
        "github-actions",
        job,
        url,
        env.get("GITHUB_HEAD_REF") or env.get("GITHUB_REF_NAME"),
        env.get("GITHUB_SHA"),
        props,
    )


def _gitlab(env: _Env) -> CiJob:
    return CiJob(
        "gitlab-ci",
        env.get("CI_JOB_ID"),
        env.get("CI_JOB_URL"),
        env.get("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME") or env.get("CI_COMMIT_REF_NAME"),
        env.get("CI_COMMIT_SHA"),
        {"ci.job": env.get("CI_JOB_NAME", ""), "ci.pipeline": env.get("CI_PIPELINE_ID", "")},
    )


def _jenkins(env: _Env) -> CiJob:
    branch = env.get("BRANCH_NAME") or env.get("GIT_BRANCH")
    if branch and branch.startswith("origin/"):
        branch = branch[len("origin/") :]
    return CiJob(
        "jenkins",
        env.get("BUILD_TAG") or env.get("BUILD_NUMBER"),
        env.get("BUILD_URL"),
        branch,
        env.get("GIT_COMMIT"),
        {"ci.job": env.get("JOB_NAME", "")},
    )


def _circleci(env: _Env) -> CiJob:
    return CiJob(
        "circleci",
        env.get("CIRCLE_WORKFLOW_JOB_ID") or env.get("CIRCLE_BUILD_NUM"),
        env.get("CIRCLE_BUILD_URL"),
        env.get("CIRCLE_BRANCH"),
        env.get("CIRCLE_SHA1"),
        {"ci.job": env.get("CIRCLE_JOB", "")},
    )


def _travis(env: _Env) -> CiJob:
    return CiJob(
        "travis",
        env.get("TRAVIS_JOB_ID"),
        env.get("TRAVIS_JOB_WEB_URL"),
        env.get("TRAVIS_PULL_REQUEST_BRANCH") or env.get("TRAVIS_BRANCH"),
        env.get("TRAVIS_COMMIT"),
        {"ci.job": env.get("TRAVIS_JOB_NAME", "")},
    )


def _azure(env: _Env) -> CiJob:
    build = env.get("BUILD_BUILDID")
    url = None
    if build and env.get("SYSTEM_COLLECTIONURI") and env.get("SYSTEM_TEAMPROJECT"):
        url = (
            f"{env['SYSTEM_COLLECTIONURI'].rstrip('/')}/{env['SYSTEM_TEAMPROJECT']}"
            f"/_build/results?buildId={build}"
        )
    return CiJob(
        "azure-pipelines",
        build,
        url,
        env.get("SYSTEM_PULLREQUEST_SOURCEBRANCH") or env.get("BUILD_SOURCEBRANCHNAME"),
        env.get("BUILD_SOURCEVERSION"),
        {"ci.job": env.get("SYSTEM_JOBDISPLAYNAME", "")},
    )


def _buildkite(env: _Env) -> CiJob:
    job = env.get("BUILDKITE_JOB_ID")
    url = env.get("BUILDKITE_BUILD_URL")
    return CiJob(
        "buildkite",
        job,
        f"{url}#{job}" if url and job else url,
        env.get("BUILDKITE_BRANCH"),
        env.get("BUILDKITE_COMMIT"),
        {"ci.job": env.get("BUILDKITE_LABEL", "")},
    )


def _bitbucket(env: _Env) -> CiJob:
    build = env.get("BITBUCKET_BUILD_NUMBER")
    origin = env.get("BITBUCKET_GIT_HTTP_ORIGIN")
    return CiJob(
        "bitbucket-pipelines",
        build,
        f"{origin}/pipelines/results/{build}" if origin and build else None,
        env.get("BITBUCKET_BRANCH"),
        env.get("BITBUCKET_COMMIT"),
        {},
    )


def _generic(env: _Env) -> CiJob:
    return CiJob("ci", None, None, None, None, {})


# (how a provider is recognised, how its job is read), first match wins.
_PROVIDERS: tuple[tuple[Callable[[_Env], bool], Callable[[_Env], CiJob]], ...] = (
    (lambda env: env.get("GITHUB_ACTIONS") == "true", _github),
    (lambda env: env.get("GITLAB_CI") == "true", _gitlab),
    (lambda env: bool(env.get("JENKINS_URL")), _jenkins),
    (lambda env: env.get("CIRCLECI") == "true", _circleci),
    (lambda env: env.get("TRAVIS") == "true", _travis),
    (lambda env: env.get("TF_BUILD", "").lower() == "true", _azure),
    (lambda env: env.get("BUILDKITE") == "true", _buildkite),
    (lambda env: bool(env.get("BITBUCKET_BUILD_NUMBER")), _bitbucket),
    (lambda env: env.get("CI", "").lower() in ("true", "1"), _generic),
)


def ci_job(environ: Mapping[str, str] | None = None) -> CiJob | None:
    """The CI job this process runs in, from the environment; None outside CI."""
    env = os.environ if environ is None else environ
    for recognise, read in _PROVIDERS:
        if recognise(env):
            job = read(env)
            props = {key: value for key, value in job.properties.items() if value}
            return CiJob(job.provider, job.job_id, job.url, job.branch, job.commit, props)
    return None


def capture_metadata(
    *,
    root: Path | str | None = None,
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    source: str = "run",
    partial: bool = True,
    properties: Mapping[str, str] | None = None,
    git: bool = True,
) -> RunMetadata:
    """Describe the run about to be stored: git state of ``root``, CI job, Python,
    platform, host and command line (``argv``, default ``sys.argv``)."""
    import platform

    state = git_state(root) if git else GitState(None, None, None)
    job = ci_job(environ)
    args = list(sys.argv if argv is None else argv)
    if args:
        args[0] = os.path.basename(args[0])
    props = dict(job.properties) if job else {}
    props.update(properties or {})
    return RunMetadata(
        git_commit=state.commit or (job.commit if job else None),
        git_branch=state.branch or (job.branch if job else None),
        git_dirty=state.dirty,
        python=f"{platform.python_implementation()} {platform.python_version()}",
        platform=platform.platform(terse=True),
        hostname=socket.gethostname(),
        ci_provider=job.provider if job else None,
        ci_job_id=job.job_id if job else None,
        ci_url=job.url if job else None,
        command=shlex.join(args) if args else None,
        source=source,
        partial=partial,
        properties=props,
    )
