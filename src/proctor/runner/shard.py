"""``--shard K/N``: a static split of the suite for CI jobs that cannot share a queue.

Each of N jobs runs ``proctor run --shard K/N`` with its own K; no job talks to
another. Every job computes the same split from the same inputs (the selected
ids and the history's durations) and keeps the K-th part, so the N parts are a
disjoint cover of the suite, balanced by time.

The split is LPT bin-packing (longest processing time first), done in integer
nanoseconds so that every machine computes exactly the same sums:

* the units are the ``group_regex`` groups (their tests must share a worker,
  so they share a shard) and every other test on its own;
* a unit's cost is the sum of its tests' recorded durations; a test the history
  does not know costs the mean of the known ones (a nominal 10 ms when nothing
  is known);
* units go, longest first (ties by a stable hash of the unit's key, then the key
  itself), to the shard with the least time so far (ties: the lowest K).

Tests of equal (or unknown) cost are therefore spread over the shards in hash
order, round-robin. No shard ends more than the longest unit after
``total / N``: the last unit placed on the fullest shard went to the emptiest
shard at the time, which held at most ``total / N``.

The precondition is "the same inputs": the same selection and the same
durations. The CLI pins the durations to the runs that finished before the
commit (:func:`proctor.cli.run_shard.pinned_history`), so that siblings storing
their results meanwhile change nothing; see docs/runner.md ("Sharding").
"""

from __future__ import annotations

import hashlib
import heapq
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Shard", "ShardError", "parse_shard", "shard_of", "split"]

_NOMINAL_NS = 10_000_000
_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


class ShardError(ValueError):
    """A ``--shard`` value that cannot be used."""


@dataclass(frozen=True, slots=True)
class Shard:
    """The ``index``-th (1-based) of ``total`` parts."""

    index: int
    total: int

    def __str__(self) -> str:
        return f"{self.index}/{self.total}"


def parse_shard(text: str) -> Shard:
    """``"K/N"`` -> ``Shard(K, N)``; :class:`ShardError` saying what is wrong otherwise."""
    match = _SHARD.fullmatch(text)
    if match is None:
        raise ShardError(
            f"{text!r} is not K/N: give this job's part and the number of parts, "
            "e.g. --shard 1/4 (K from 1 to N)"
        )
    index, total = int(match.group(1)), int(match.group(2))
    if total < 1:
        raise ShardError(f"{text!r}: N (the number of parts) must be at least 1")
    if not 1 <= index <= total:
        raise ShardError(f"{text!r}: K must be from 1 to {total} (K is 1-based: 1/{total} ...)")
    return Shard(index, total)


def _hash(key: str) -> bytes:
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()


def split(
    ids: Sequence[str],
    durations: Mapping[str, float],
    total: int,
    *,
    group_regex: str | None = None,
) -> list[list[str]]:
    """The ``total`` parts of ``ids``, each in the order of ``ids`` (see the module docstring)."""
    if total < 1:
        raise ShardError("the number of parts must be at least 1")
    known = [durations[test_id] for test_id in ids if test_id in durations]
    unknown_ns = round(sum(known) / len(known) * 1e9) if known else _NOMINAL_NS
    unknown_ns = max(unknown_ns, 1)
    grouper = re.compile(group_regex) if group_regex else None
    costs: dict[str, int] = {}
    unit_of: dict[str, str] = {}
    for test_id in dict.fromkeys(ids):
        key = test_id
        if grouper is not None:
            match = grouper.match(test_id)
            if match is not None and match.group(0):
                key = "\0group\0" + match.group(0)
        unit_of[test_id] = key
        seconds = durations.get(test_id)
        cost = max(round(seconds * 1e9), 1) if seconds is not None else unknown_ns
        costs[key] = costs.get(key, 0) + cost
    order = sorted(costs, key=lambda key: (-costs[key], _hash(key), key))
    bins: list[tuple[int, int]] = [(0, k) for k in range(total)]  # (load, part): a heap
    part_of: dict[str, int] = {}
    for key in order:
        load, part = heapq.heappop(bins)
        part_of[key] = part
        heapq.heappush(bins, (load + costs[key], part))
    parts: list[list[str]] = [[] for _ in range(total)]
    for test_id in dict.fromkeys(ids):
        parts[part_of[unit_of[test_id]]].append(test_id)
    return parts


def shard_of(
    ids: Sequence[str],
    durations: Mapping[str, float],
    shard: Shard,
    *,
    group_regex: str | None = None,
) -> list[str]:
    """The ids of ``shard`` (in the order of ``ids``)."""
    return split(ids, durations, shard.total, group_regex=group_regex)[shard.index - 1]
