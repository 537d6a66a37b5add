"""Stored result rows back into records (the reads of ``store`` and ``failures``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from proctor.store.blobs import decode_blob
from proctor.store.sql.interned import Interned
from proctor.store.sql.rules import STATUSES
from proctor.wire.record import Attachment, TestRecord

__all__ = ["RECORD_COLUMNS", "attachments_by_key", "build_records"]

RECORD_COLUMNS = "t.test_id, r.status, r.start_ns, r.elapsed_ns, r.route, r.tagset, r.runnable"
"""What a record is built from: ``results r`` joined with ``tests t``."""


def attachments_by_key(rows: Iterable[Any]) -> dict[Any, tuple[Attachment, ...]]:
    """Rows of (key, name, mime, codec, data), in order, as attachments per key."""
    files: dict[Any, list[Attachment]] = {}
    for key, name, mime, codec, data in rows:
        files.setdefault(key, []).append(Attachment(name, decode_blob(codec, data), mime))
    return {key: tuple(attached) for key, attached in files.items()}


def build_records(
    interned: Interned, cur: Any, rows: list[Any], files: dict[Any, tuple[Attachment, ...]]
) -> list[TestRecord]:
    """Records from rows of (key, :data:`RECORD_COLUMNS`...), with the
    attachments ``files`` holds under each key. This loop is most of the
    cost of ``proctor last``: everything in it is a local or a lookup."""
    tags = interned.tags(cur, {row[6] for row in rows})
    statuses = STATUSES
    empty: frozenset[str] = frozenset()
    none: tuple[Attachment, ...] = ()
    make = TestRecord
    records: list[TestRecord] = []
    append = records.append
    get = files.get
    for key, test_id, status, start, elapsed, route, tagset, runnable in rows:
        # elapsed is stored only when both timestamps are known.
        append(
            make(
                test_id,
                statuses[status],
                route,
                start,
                None if elapsed is None else start + elapsed,
                empty if tagset is None else tags[tagset],
                get(key, none),
                runnable == 1,
            )
        )
    return records
