"""Who is editing: PROCTOR_AUTHOR, else git config, else a marked fallback; never a traceback."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from proctor.bugs import current_author


def _git_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An environment where git sees no user's or system's configuration."""
    for name in ("GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_DIR", "GIT_CONFIG_COUNT"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    return {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "PATH": os.environ["PATH"],
    }


def test_proctor_author_wins_and_is_cleaned(tmp_path: Path) -> None:
    author = current_author({"PROCTOR_AUTHOR": "  Ann \x1b[31m<ann@example.org>\n"}, tmp_path)
    assert author.name == "Ann [31m<ann@example.org>"
    assert author.source == "PROCTOR_AUTHOR"


@pytest.mark.slow
def test_git_config_gives_name_and_email(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _git_env(tmp_path, monkeypatch)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    subprocess.run(["git", "init", "-q", str(tmp_path / "repo")], check=True, env=env)
    repo = tmp_path / "repo"
    subprocess.run(["git", "-C", str(repo), "config", "user.name", "Bob B"], check=True, env=env)
    assert current_author({}, repo).name == "Bob B"
    subprocess.run(
        ["git", "-C", str(repo), "config", "user.email", "bob@example.org"], check=True, env=env
    )
    author = current_author({"PROCTOR_AUTHOR": "   "}, repo)
    assert (author.name, author.source) == ("Bob B <bob@example.org>", "git config")


@pytest.mark.slow
def test_without_git_config_the_fallback_is_marked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in _git_env(tmp_path, monkeypatch).items():
        monkeypatch.setenv(key, value)
    author = current_author({}, tmp_path)
    assert author.source == "fallback"
    assert "@" in author.name


def test_without_git_at_all_there_is_no_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no git here
    author = current_author({}, tmp_path)
    assert author.source == "fallback"
    assert author.name


@pytest.mark.slow
def test_a_git_that_hangs_is_given_up_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "git"
    fake.write_text("#!/bin/sh\nexec sleep 30\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    author = current_author({}, tmp_path, timeout=0.05)
    assert author.source == "fallback"
