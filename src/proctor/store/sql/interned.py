"""The ids of test ids and tag sets already known: a cache shared by reads and writes.

Results carry small integers for their test and tag set (interned in the
``tests`` and ``tagsets`` tables). One store's connections share this cache;
it is updated only after a commit (see ``write``), so that a rolled back
transaction never leaves ids behind that the database did not keep.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from proctor.store.sql.dialect import Dialect

__all__ = ["Interned"]


class Interned:
    """Test ids and tag sets by id, and back, as far as this process has seen them."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.test_ids: dict[str, int] = {}
        self.tagsets: dict[frozenset[str], int] = {}
        self.tagsets_by_id: dict[int, frozenset[str]] = {}

    def remember(self, tests: Mapping[str, int], tagsets: Mapping[frozenset[str], int]) -> None:
        """Add what a committed transaction interned."""
        self.test_ids.update(tests)
        self.tagsets.update(tagsets)
        for tags, tagset_id in tagsets.items():
            self.tagsets_by_id[tagset_id] = tags

    def tags(self, cur: Any, ids: Iterable[int | None]) -> dict[int, frozenset[str]]:
        """Tag sets by id, covering ``ids`` (those not known yet read on ``cur``)."""
        wanted = {tagset_id for tagset_id in ids if tagset_id is not None}
        missing = sorted(wanted - self.tagsets_by_id.keys())
        if missing:
            for tagset_id, text in self.dialect.fetch_in(
                cur, "SELECT id, tags FROM tagsets WHERE id IN ({})", missing
            ):
                tags = frozenset(json.loads(text))
                self.tagsets_by_id[tagset_id] = tags
                self.tagsets[tags] = tagset_id
        return self.tagsets_by_id
