"""Fixtures for the store tests: one ``store`` fixture over every backend.

Every test that takes ``store`` runs on the in-memory fake, on SQLite (a fresh
file per test) and on PostgreSQL (a fresh schema per test, dropped afterwards,
at ``PROCTOR_TEST_POSTGRES``, default ``postgresql://postgres@127.0.0.1:5432/test``).
PostgreSQL cases carry the ``postgres`` marker: deselect them with
``-m "not postgres"`` on a machine without a server. When the server cannot be
reached they fail rather than skip, so CI cannot go green without running them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from proctor.store import Store, open_store
from proctor.store.memory import MemoryStore

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_base_url() -> str:
    return os.environ.get("PROCTOR_TEST_POSTGRES", DEFAULT_POSTGRES)


def schema_url(base: str, schema: str) -> str:
    """``base`` with a search_path option selecting ``schema``."""
    option = quote(f"-csearch_path={schema}", safe="")
    return f"{base}{'&' if '?' in base else '?'}options={option}"


class PostgresSchemas:
    """Creates uniquely named schemas and drops every one of them at the end."""

    def __init__(self, base: str) -> None:
        import psycopg

        self.base = base
        self.prefix = f"proctor_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        self.count = 0
        try:
            self._admin = psycopg.connect(base, autocommit=True, connect_timeout=5)
        except psycopg.Error as error:
            pytest.fail(
                f"PostgreSQL at {base} is not reachable ({error}); start it, set "
                "PROCTOR_TEST_POSTGRES, or deselect these tests with -m 'not postgres'"
            )

    def new_url(self) -> str:
        self.count += 1
        schema = f"{self.prefix}_{self.count}"
        self._admin.execute(f'CREATE SCHEMA "{schema}"')
        return schema_url(self.base, schema)

    def drop(self, url: str) -> None:
        schema = url.rsplit("%3D", 1)[1]
        self._admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    def close(self) -> None:
        rows = self._admin.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (self.prefix + "%",)
        ).fetchall()
        for (schema,) in rows:
            self._admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        self._admin.close()


@pytest.fixture(scope="session")
def postgres_schemas() -> Iterator[PostgresSchemas]:
    schemas = PostgresSchemas(postgres_base_url())
    yield schemas
    schemas.close()


@pytest.fixture
def postgres_url(postgres_schemas: PostgresSchemas) -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL schema (dropped after the test)."""
    url = postgres_schemas.new_url()
    yield url
    postgres_schemas.drop(url)


BACKENDS = [
    "memory",
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
]
SQL_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _url_for(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "sqlite":
        return str(tmp_path / "repo")
    if backend == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return "memory:"


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty repository on each backend."""
    backend = request.param
    opened = (
        MemoryStore() if backend == "memory" else open_store(_url_for(backend, request, tmp_path))
    )
    yield opened
    opened.close()


@pytest.fixture(params=SQL_BACKENDS)
def repository_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty repository on each persistent backend."""
    return _url_for(request.param, request, tmp_path)


@pytest.fixture
def reopen(repository_url: str) -> Iterator[Callable[[], Store]]:
    """Opens (another connection to) the repository at ``repository_url``."""
    opened: list[Store] = []

    def open_again() -> Store:
        store = open_store(repository_url)
        opened.append(store)
        return store

    yield open_again
    for store in opened:
        store.close()
