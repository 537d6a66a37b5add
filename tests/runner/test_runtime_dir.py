"""The private runtime directory (proctor.runner.runtime_dir): this user's, or none."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from proctor.runner.runtime_dir import runtime_dir


def test_it_is_made_private_under_the_runtime_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    found = runtime_dir()
    assert found == str(tmp_path / "proctor")
    assert stat.S_IMODE(os.stat(found).st_mode) == 0o700
    assert runtime_dir() == found  # (again: the same one)


def test_without_a_runtime_directory_it_is_one_per_user_in_tmpdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    assert runtime_dir() == str(tmp_path / f"proctor-{os.getuid()}")


def test_a_directory_others_may_enter_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    (tmp_path / "proctor").mkdir(mode=0o700)
    os.chmod(tmp_path / "proctor", 0o777)  # (mkdir's mode is masked)
    assert runtime_dir() is None


def test_a_symbolic_link_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    (tmp_path / "proctor").symlink_to(target)
    assert runtime_dir() is None


def test_a_relative_runtime_directory_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", "relative/dir")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    assert runtime_dir() == str(tmp_path / f"proctor-{os.getuid()}")
