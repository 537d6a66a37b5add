"""The dashboard over a PostgreSQL repository answers as over SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from proctor.store.opening import open_store
from proctor.web.app import create_app
from proctor.web.repository import ReadOnlyRepository
from tests.store.conftest import PostgresSchemas, postgres_base_url
from tests.web.conftest import NOW
from tests.web.project import add_known_bugs, fill_repository

PAGES = [
    "/index.json?branch=main&job=unit",
    "/compare.json?base=3&head=6",
    "/test.json?id=pkg.test_a.T.test_flip",
    "/search.json?q=hostile",
    "/clusters.json?branch=main",
    "/clusters/8ab61b2546f77315.json",
    "/bugs.json",
    "/runs/6.json",
]


def _comparable(document: object) -> object:
    """A page's JSON without what differs by where it was loaded from."""
    if isinstance(document, dict):
        return {
            key: _comparable(value)
            for key, value in document.items()
            if key not in ("command", "host", "finished_ns")
        }
    if isinstance(document, list):
        return [_comparable(item) for item in document]
    return document


@pytest.mark.postgres
def test_postgres_pages_match_sqlite_pages(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    schemas = PostgresSchemas(postgres_base_url())
    try:
        url = fill_repository(tmp_path, monkeypatch, schemas.new_url())
        add_known_bugs(url)
        repo = ReadOnlyRepository(open_store(url, create=False))
        try:
            pg = TestClient(create_app(repo, now_ns=lambda: NOW), base_url="http://127.0.0.1")
            for path in PAGES:
                assert _comparable(pg.get(path).json()) == _comparable(client.get(path).json())
            assert pg.get("/runs/6").status_code == 200
        finally:
            repo.close()
    finally:
        schemas.close()
