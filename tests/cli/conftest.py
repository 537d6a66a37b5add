"""Fixtures shared by the CLI tests that drive ``proctor run`` on fake workers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from proctor.cli import run as run_module
from proctor.runner.fake import FakeBackend, FakeTest


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project configured for two workers, as the working directory."""
    (tmp_path / "pyproject.toml").write_text("[tool.proctor]\nconcurrency = 2\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def fake_suite(monkeypatch: pytest.MonkeyPatch) -> Callable[[list[FakeTest]], list[FakeBackend]]:
    """Make ``proctor run`` use fake workers running ``tests``; returns the backends made."""

    def install(tests: list[FakeTest]) -> list[FakeBackend]:
        made: list[FakeBackend] = []

        def make_backend(args: object, config: object) -> FakeBackend:
            backend = FakeBackend(list(tests))
            made.append(backend)
            return backend

        monkeypatch.setattr(run_module, "make_backend", make_backend)
        return made

    return install
