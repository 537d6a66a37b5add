"""The run-history repository: every run kept, every question answered from indexes.

One contract (:class:`Store`, :class:`RunWriter`), three backends: SQLite
(default, ``.proctor/repository.sqlite``), PostgreSQL (``postgresql://`` URLs,
imported only when used) and an in-memory fake (:class:`MemoryStore`) for other
layers' tests. :func:`open_store` picks one from ``Config.repository_url``;
:func:`capture_metadata` describes the current run (git, CI, platform, argv).

This package imports only ``proctor.wire``, ``proctor.events`` and the standard
library (and psycopg, lazily). docs/store.md explains the schema.
"""

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
from proctor.store.replay import record_events, records_to_v2

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
    "record_events",
    "records_to_v2",
]
