"""Sync between two repositories' bug records, and bundle files for the ones that cannot meet.

``pull(local, remote)`` asks the remote for what ``local`` lacks: ``local`` sends
its summary (heads and a few older ids per bug, and its filters: not the log),
the remote answers with the events that are missing, and ``local`` checks the
whole answer and stores all of it or none. ``push`` is the same the other way;
``sync`` is a pull then a push.

Filters select whole bugs. A copy records the filters it was made with: an
empty copy that pulls (or imports a bundle) with filters records them, and a
copy that is already partial adds new ones to its own (it now wants the union).
A copy that holds every bug of its own and pulls with a filter stays a whole copy
of its own bugs. A bug that comes to match a copy's filters arrives at the next
sync; one that stops matching stays and keeps receiving its new events.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from proctor.bugs.bundle import BUNDLE_VERSION, decode_bundle
from proctor.bugs.filters import BugFilter
from proctor.bugs.repository import BugRepository, row_line

__all__ = ["SyncResult", "encode_rows", "export_bundle", "import_file_bytes", "pull", "push"]


@dataclass(frozen=True, slots=True)
class SyncResult:
    sent: int  # events that travelled
    added: int  # of which new to the receiver
    bytes: int  # canonical bytes that travelled
    bugs: tuple[str, ...]  # bugs that changed in the receiver
    filters: tuple[BugFilter, ...]  # the receiver's filters after the sync


def _adopt(receiver: BugRepository, given: Sequence[BugFilter]) -> tuple[BugFilter, ...]:
    """The filters the receiver records after taking a copy made with ``given``."""
    mine = receiver.filters()
    if not given:
        return mine
    if mine:
        merged = {f.text: f for f in mine}
        merged.update({f.text: f for f in given})
        return tuple(merged.values())
    if receiver.count() == 0:
        return tuple(given)
    return mine


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause CPython's cyclic garbage collector for one transfer (Mercurial's ``nogc``).

    A transfer makes a few objects per event (rows, events, their changes) that all
    live until it ends, and no reference cycles; reference counting frees them as
    usual. The collector, though, runs every 700 net allocations and walks the whole
    heap each time it grows by a quarter: in a full sync of 100,000 events that was a
    fifth of the time, for nothing to collect. Left as it was if already paused; a
    collection may run when it resumes.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _transfer(
    sender: BugRepository, receiver: BugRepository, filters: Sequence[BugFilter]
) -> SyncResult:
    with _collector_paused():
        return _transfer_rows(sender, receiver, filters)


def _transfer_rows(
    sender: BugRepository, receiver: BugRepository, filters: Sequence[BugFilter]
) -> SyncResult:
    recorded = _adopt(receiver, filters)
    asked = tuple(filters) if filters else recorded
    # Round one: heads per bug, as strings; round two: heads and older ids of the
    # bugs that differ. Then only the events the receiver lacks travel.
    theirs = receiver.head_texts()
    mine = sender.head_texts()
    differ = [bug for bug, text in mine.items() if bug in theirs and theirs[bug] != text]
    rows = sender.events_for(receiver.summary(asked, differ), theirs, mine)
    result = receiver.merge_rows(rows, sender.location)
    if recorded != receiver.filters():
        receiver.record_filters(recorded)
    return SyncResult(
        len(rows), result.added, sum(len(r.data) for r in rows), result.bugs, recorded
    )


def pull(
    local: BugRepository, remote: BugRepository, filters: Sequence[BugFilter] = ()
) -> SyncResult:
    """Take from ``remote`` what ``local`` lacks (the bugs ``filters`` or its own select)."""
    return _transfer(remote, local, filters)


def push(
    local: BugRepository, remote: BugRepository, filters: Sequence[BugFilter] = ()
) -> SyncResult:
    """Give ``remote`` what it lacks of ``local`` (the bugs ``filters`` or its own select)."""
    return _transfer(local, remote, filters)


def encode_rows(repository: BugRepository, filters: Sequence[BugFilter] = ()) -> bytes:
    """A bundle of every event of the bugs ``filters`` select (or every bug)."""
    import json

    rows = repository.export_rows(filters)
    header = {
        "proctor": "bug-bundle",
        "version": BUNDLE_VERSION,
        "filters": [f.text for f in filters],
        "events": len(rows),
    }
    head = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return b"\n".join([head, *(row_line(row) for row in rows)]) + b"\n"


def export_bundle(repository: BugRepository, filters: Sequence[BugFilter] = ()) -> bytes:
    return encode_rows(repository, filters)


def import_file_bytes(repository: BugRepository, data: bytes, name: str) -> SyncResult:
    """Merge a bundle's events: the file is checked whole, then stored whole, or not at all."""
    with _collector_paused():
        bundle = decode_bundle(data, name)
        recorded = _adopt(repository, bundle.filters)
        result = repository.merge(
            bundle.events, where=lambda i: f"{name} line {bundle.lines[i]}", ids_verified=True
        )
    if recorded != repository.filters():
        repository.record_filters(recorded)
    return SyncResult(len(bundle.events), result.added, len(data), result.bugs, recorded)
