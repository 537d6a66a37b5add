"""What every job of a build must share: the revision of the checkout and the
installed distributions (proctor.runner.job_identity)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from proctor.runner.job_identity import environment_digest, revision


def _site(root: Path, *names: str) -> str:
    root.mkdir(parents=True)
    for name in names:
        (root / name).mkdir()
    (root / "some_module.py").write_text("")
    return str(root)


def test_the_environment_is_the_distributions_and_their_versions_wherever_installed(
    tmp_path: Path,
) -> None:
    here = _site(tmp_path / "a", "attrs-23.2.0.dist-info", "six-1.16.0.dist-info", "six")
    there = _site(tmp_path / "b" / "venv", "six-1.16.0.dist-info", "attrs-23.2.0.dist-info")
    newer = _site(tmp_path / "c", "attrs-24.1.0.dist-info", "six-1.16.0.dist-info")
    old = _site(tmp_path / "d", "legacy-1.0-py3.11.egg-info")
    missing = str(tmp_path / "no-such-dir")
    zipped = str(tmp_path / "a" / "some_module.py")  # a file on the path, as a zip is
    assert environment_digest([here, missing, zipped]) == environment_digest([there])
    assert environment_digest([here]) != environment_digest([newer])
    assert environment_digest([here]) != environment_digest([here, old])


def test_the_revision_is_the_commit_and_a_digest_of_what_is_not_committed(
    tmp_path: Path,
) -> None:
    assert revision(str(tmp_path)) == "(not a git checkout)"
    (tmp_path / "a.py").write_text("x = 1\n")
    git = ["git", "-c", "user.email=ci@example.org", "-c", "user.name=CI"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*git, "add", "-A"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "x"], cwd=tmp_path, check=True)
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert revision(str(tmp_path)) == commit
    (tmp_path / "a.py").write_text("x = 2\n")
    dirty = revision(str(tmp_path))
    assert dirty.startswith(commit + "+dirty:")
    (tmp_path / "a.py").write_text("x = 3\n")
    assert revision(str(tmp_path)) not in (commit, dirty)
