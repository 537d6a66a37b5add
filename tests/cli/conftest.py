"""Fixtures shared by the CLI tests that drive ``proctor run`` on fake workers.

The fake workers are given to ``proctor`` by parameter (click's context object,
:class:`proctor.cli.deps.CliDeps`): ``fake_suite(tests)`` chooses the suite the
workers run, and ``fake_main(argv)`` runs the command line with them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from proctor.cli.deps import CliDeps
from proctor.cli.main import main
from proctor.testing import FakeBackend, FakeTest


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project configured for two workers, as the working directory."""
    (tmp_path / "pyproject.toml").write_text("[tool.proctor]\nconcurrency = 2\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


class FakeWorkers:
    """The backend factory the CLI tests give ``proctor``: fake workers running
    the suite installed last."""

    def __init__(self) -> None:
        self.deps: CliDeps | None = None

    def install(self, tests: list[FakeTest]) -> list[FakeBackend]:
        """Fake workers running ``tests`` from now on; returns the backends made."""
        made: list[FakeBackend] = []

        def make_backend(args: object, config: object) -> FakeBackend:
            backend = FakeBackend(list(tests))
            made.append(backend)
            return backend

        self.deps = CliDeps(backend_factory=make_backend)
        return made

    def main(self, argv: list[str]) -> int:
        """``proctor ARGV`` (in-process) on the fake workers installed."""
        return main(argv, obj=self.deps)


@pytest.fixture
def fake_workers() -> FakeWorkers:
    return FakeWorkers()


@pytest.fixture
def fake_suite(fake_workers: FakeWorkers) -> Callable[[list[FakeTest]], list[FakeBackend]]:
    """Make ``fake_main`` run ``tests`` on fake workers; returns the backends made."""
    return fake_workers.install


@pytest.fixture
def fake_main(fake_workers: FakeWorkers) -> Callable[[list[str]], int]:
    """``proctor ARGV`` in-process, on the fake workers ``fake_suite`` installed."""
    return fake_workers.main
