"""Fixtures of the dashboard's tests: one repository filled by ``proctor load``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("starlette")

from starlette.testclient import TestClient

from proctor.store.opening import open_store
from proctor.web.app import create_app
from proctor.web.repository import ReadOnlyRepository
from tests.web.project import T0, add_known_bugs, fill_repository

NOW = T0 + 8 * 3600 * 1_000_000_000
"""The dashboard's clock in these tests: an hour after the last run began."""


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        url = fill_repository(tmp_path_factory.mktemp("dashboard"), monkeypatch)
        yield url, add_known_bugs(url)


@pytest.fixture(scope="module")
def repository(filled: tuple[str, dict[str, str]]) -> str:
    """The repository's URL: the history, its bugs and a known-bug rule."""
    return filled[0]


@pytest.fixture(scope="module")
def known(filled: tuple[str, dict[str, str]]) -> dict[str, str]:
    """The ids :func:`add_known_bugs` wrote (bugs, clusters, the rule)."""
    return filled[1]


@pytest.fixture(scope="module")
def repo(repository: str) -> Iterator[ReadOnlyRepository]:
    readonly = ReadOnlyRepository(open_store(repository, create=False))
    yield readonly
    readonly.close()


@pytest.fixture(scope="module")
def client(repo: ReadOnlyRepository) -> TestClient:
    return TestClient(create_app(repo, now_ns=lambda: NOW), base_url="http://127.0.0.1:8765")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path
