"""Fixtures for the bug-repository tests: fresh repositories on every backend.

``repos`` makes empty repositories on the in-memory fake, on SQLite (files under
``tmp_path``) and on PostgreSQL (fresh schemas, dropped afterwards; marked
``postgres``). ``repos.url(repo)`` gives the URL a command would be handed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from proctor.bugs.repository import BugRepository
from proctor.store import Store, open_store
from proctor.store.bug_tables import bug_tables
from proctor.store.memory import MemoryStore
from tests.store.conftest import PostgresSchemas, postgres_base_url


class Repos:
    def __init__(self, backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
        self.backend = backend
        self._tmp = tmp_path
        self._request = request
        self._stores: list[Store] = []
        self.urls: dict[int, str] = {}
        self.stores: dict[int, Store] = {}
        self._schemas: PostgresSchemas | None = None

    def new_url(self) -> str:
        if self.backend == "postgres":
            if self._schemas is None:
                self._schemas = PostgresSchemas(postgres_base_url())
            return self._schemas.new_url()
        return str(self._tmp / f"repo{len(self._stores)}")

    def new(self) -> BugRepository:
        if self.backend == "memory":
            store: Store = MemoryStore()
            url = "memory:"
        else:
            url = self.new_url()
            store = open_store(url)
        self._stores.append(store)
        repo = BugRepository(bug_tables(store))
        self.urls[id(repo)] = url
        self.stores[id(repo)] = store
        return repo

    def close(self) -> None:
        for store in self._stores:
            store.close()
        if self._schemas is not None:
            self._schemas.close()


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def repos(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Repos]:
    made = Repos(request.param, tmp_path, request)
    yield made
    made.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def sql_repos(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Repos]:
    made = Repos(request.param, tmp_path, request)
    yield made
    made.close()
