"""The run-history repository: every run kept, every question answered from indexes.

One contract (:class:`Store`, :class:`RunWriter`), three backends: SQLite
(default, ``.proctor/repository.sqlite``), PostgreSQL (``postgresql://`` URLs,
imported only when used) and an in-memory fake (:class:`MemoryStore`) for other
layers' tests. :func:`open_store` picks one from ``Config.repository_url``;
:func:`capture_metadata` describes the current run (git, CI, platform, argv).

This package imports only ``proctor.wire``, ``proctor.events`` and the standard
library (and psycopg, lazily). docs/store.md explains the schema.

Names are imported on first use (PEP 562), so that a short command importing
one submodule does not pay for the others (metadata capture pulls in
``subprocess``, the fake a second implementation).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from proctor.store.contract import RunWriter, Store
    from proctor.store.errors import (
        RepositoryNotFound,
        SchemaTooNew,
        StoreError,
        StoreUnavailable,
        UnknownRun,
        UnknownTest,
        WriterClosed,
    )
    from proctor.store.memory import MemoryStore
    from proctor.store.metadata import capture_metadata
    from proctor.store.model import (
        GarbageReport,
        HistoryEntry,
        RunCounts,
        RunInfo,
        RunMetadata,
        SlowTest,
        StoreStats,
        TestStats,
    )
    from proctor.store.opening import open_store

_HOMES = {
    "RunWriter": "contract",
    "Store": "contract",
    "RepositoryNotFound": "errors",
    "SchemaTooNew": "errors",
    "StoreError": "errors",
    "StoreUnavailable": "errors",
    "UnknownRun": "errors",
    "UnknownTest": "errors",
    "WriterClosed": "errors",
    "MemoryStore": "memory",
    "capture_metadata": "metadata",
    "GarbageReport": "model",
    "HistoryEntry": "model",
    "RunCounts": "model",
    "RunInfo": "model",
    "RunMetadata": "model",
    "SlowTest": "model",
    "StoreStats": "model",
    "TestStats": "model",
    "open_store": "opening",
}

__all__ = [
    "GarbageReport",
    "HistoryEntry",
    "MemoryStore",
    "RepositoryNotFound",
    "RunCounts",
    "RunInfo",
    "RunMetadata",
    "RunWriter",
    "SchemaTooNew",
    "SlowTest",
    "Store",
    "StoreError",
    "StoreStats",
    "StoreUnavailable",
    "TestStats",
    "UnknownRun",
    "UnknownTest",
    "WriterClosed",
    "capture_metadata",
    "open_store",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'proctor.store' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"proctor.store.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
