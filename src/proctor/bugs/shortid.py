"""Short bug ids: the shortest prefix (at least 7 hex digits) no other bug in a copy shares.

Kept apart and import-free so that ``proctor bug list`` stays fast.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from os.path import commonprefix

__all__ = ["MIN_SHORT_ID", "short_ids"]

#: Short bug ids are at least this long, and longer where needed to stay unique.
MIN_SHORT_ID = 7


def short_ids(every: Sequence[str], bugs: Iterable[str]) -> dict[str, str]:
    """For each of ``bugs``, its short id among ``every`` (the copy's sorted bug ids)."""
    out: dict[str, str] = {}
    for bug in bugs:
        index = bisect_left(every, bug)
        length = MIN_SHORT_ID
        for other in every[max(0, index - 1) : index + 2]:
            if other != bug:
                # Character by character is what is wanted here (ids, not paths).
                length = max(length, len(commonprefix((bug, other))) + 1)  # noqa: RUF071
        out[bug] = bug[:length]
    return out
