"""What the file watcher keeps: Python and configuration files, not caches,
environments, editors' temporary files or what git ignores."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from proctor.runner.watch.sources import git_ignored, watch_filter


def test_the_filter_keeps_python_and_configuration_files(tmp_path: Path) -> None:
    keep = watch_filter(tmp_path, frozenset())
    for name in ("a.py", "tests/test_a.py", "pyproject.toml", "setup.cfg", "tests/conftest.py"):
        assert keep(None, str(tmp_path / name)), name
    for name in (
        ".proctor/x.py",
        "__pycache__/a.py",
        ".venv/lib/a.py",
        ".mypy_cache/a.py",
        "pkg.egg-info/a.py",
        ".#a.py",
        "a.py~",
        "a.py.swp",
        "notes.txt",
        "data.json",
    ):
        assert not keep(None, str(tmp_path / name)), name
    assert not keep(None, "/elsewhere/a.py")


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_what_git_ignores_is_not_watched(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("generated/\nscratch_*.py\n")
    (tmp_path / "generated").mkdir()
    (tmp_path / "generated/out.py").write_text("")
    (tmp_path / "scratch_1.py").write_text("")
    (tmp_path / "real.py").write_text("")
    keep = watch_filter(tmp_path, git_ignored(tmp_path))
    assert not keep(None, str(tmp_path / "generated/out.py"))
    assert not keep(None, str(tmp_path / "scratch_1.py"))
    assert keep(None, str(tmp_path / "real.py"))


def test_outside_git_nothing_is_ignored_by_git(tmp_path: Path) -> None:
    assert git_ignored(tmp_path / "missing") == frozenset()
