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
from tests.web.project import T0, fill_repository

NOW = T0 + 8 * 3600 * 1_000_000_000
"""The dashboard's clock in these tests: an hour after the last run began."""


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield fill_repository(tmp_path_factory.mktemp("dashboard"), monkeypatch)


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
