"""Benchmark: what an event costs to build, for the choice recorded in wire/event.py.

The decoder builds one ``Event`` per packet, so its construction is on the hot
path. This compares the shapes an immutable, slotted event could take, built
with the same ten fields: a frozen slotted dataclass (keywords and positional),
Proctor's ``NamedTuple`` (keywords, and ``new_event``, which is ``tuple.__new__``,
as the decoder does),
and, for scale, a plain tuple.

Usage: python bench/event_construction.py [--number 1000000]
"""

from __future__ import annotations

import argparse
import timeit
from dataclasses import dataclass

from proctor.wire.event import Event, EventFields, Status, new_event


@dataclass(frozen=True, slots=True)
class FrozenEvent:
    test_id: str | None = None
    status: Status = Status.NONE
    tags: frozenset[str] = frozenset()
    runnable: bool = True
    file_name: str | None = None
    file_bytes: bytes = b""
    eof: bool = False
    mime_type: str | None = None
    route_code: str | None = None
    timestamp: int | None = None


FIELDS: EventFields = (
    "a.b.T.test_x",
    Status.SUCCESS,
    frozenset(),
    True,
    None,
    b"",
    False,
    None,
    None,
    5,
)
CASES = {
    "frozen slotted dataclass, keywords": lambda: FrozenEvent(
        test_id="a.b.T.test_x", status=Status.SUCCESS, timestamp=5
    ),
    "frozen slotted dataclass, positional": lambda: FrozenEvent(*FIELDS),
    "Event (NamedTuple), keywords": lambda: Event(
        test_id="a.b.T.test_x", status=Status.SUCCESS, timestamp=5
    ),
    "Event via new_event (the decoder)": lambda: new_event(Event, FIELDS),
    "plain tuple": lambda: tuple(FIELDS),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--number", type=int, default=1_000_000)
    args = parser.parse_args()
    baseline = None
    for name, make in CASES.items():
        best = min(timeit.repeat(make, number=args.number, repeat=5)) / args.number * 1e9
        baseline = baseline or best
        print(f"{name:<42} {best:7.0f} ns   ({baseline / best:4.1f}x the dataclass)")


if __name__ == "__main__":
    main()
