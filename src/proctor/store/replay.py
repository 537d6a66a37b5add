"""Stored records back to events: for ``last --subunit``, ``failing --subunit`` and ``export``.

:func:`record_events` gives, for one record, the events a
:class:`~proctor.events.collector.RecordCollector` assembles into the same
record again, in the shape python-subunit and testtools expect of a test: an
``inprogress`` status at its start time, its attachments as files, then its
final status at its stop time. Nothing is re-parsed: the store keeps records,
and streams are produced from them on demand.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from proctor.wire.event import Event, Status
from proctor.wire.record import TestRecord

__all__ = ["record_events", "records_events", "records_to_v2"]

_NO_TAGS: frozenset[str] = frozenset()


def record_events(record: TestRecord) -> list[Event]:
    """The events of one test, in stream order (see the module docstring)."""
    test_id, route, tags = record.test_id, record.route_code, record.tags
    status, start, stop = record.status, record.start, record.stop
    events: list[Event] = []
    if start is not None:
        opening = Status.NONE if status in (Status.NONE, Status.EXISTS) else Status.INPROGRESS
        if status is not Status.EXISTS or stop != start or record.attachments:
            events.append(
                Event(test_id, opening, tags, record.runnable, route_code=route, timestamp=start)
            )
    events.extend(
        Event(test_id, Status.NONE, _NO_TAGS, True, a.name, a.content, True, a.mime_type, route)
        for a in record.attachments
    )
    if status.is_final:
        events.append(
            Event(test_id, status, tags, record.runnable, route_code=route, timestamp=stop)
        )
    elif start is None:
        # The status and the tags must be said, and a test known only by its
        # name needs one event.
        if not events or status is Status.INPROGRESS or tags:
            events.append(Event(test_id, status, tags, record.runnable, route_code=route))
    elif stop != start:
        events.append(
            Event(test_id, Status.NONE, tags, record.runnable, route_code=route, timestamp=stop)
        )
    return events


def records_events(records: Iterable[TestRecord]) -> Iterator[Event]:
    """The events of several records, one test after another."""
    for record in records:
        yield from record_events(record)


def records_to_v2(records: Iterable[TestRecord]) -> bytes:
    """A subunit v2 stream of the records."""
    from proctor.wire.v2 import encode_many

    return encode_many(records_events(records))
