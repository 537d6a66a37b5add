"""A test back into events: the inverse of :class:`~proctor.events.collector.RecordCollector`.

The collector assembles a test's events into a
:class:`~proctor.wire.record.TestRecord`; this module turns a test (a finished
record, or one being told as it happens) into the events that the collector
assembles into it again, in the shape python-subunit and testtools expect: an
``inprogress`` status at its start, its attachments as files, then its final
status at its stop.

Everything that tells a test as events uses it: the unittest and pytest
adapters and the worker's outcomes for tests that never ran code
(:func:`status_event` to start, :func:`ending_events` to end), the controller's
casualties (a test whose worker died under it), and ``last --subunit``,
``failing --subunit`` and ``export``, which stream stored records
(:func:`record_events`, :func:`records_to_v2`). A file event carries no tags and
the default ``runnable``; the status events carry the test's tags and
``runnable``.

The per-test functions are on the adapters' hot path (two events per passing
test): they build events with :func:`~proctor.wire.event.new_event` and take
their arguments positionally as well.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from proctor.wire.event import Event, Status, new_event
from proctor.wire.record import Attachment, TestRecord

__all__ = [
    "ending_events",
    "file_events",
    "record_events",
    "records_events",
    "records_to_v2",
    "status_event",
]

_NO_TAGS: frozenset[str] = frozenset()
_NONE = Status.NONE


def status_event(
    test_id: str,
    status: Status,
    timestamp: int | None,
    tags: frozenset[str] = _NO_TAGS,
    runnable: bool = True,
    route_code: str | None = None,
) -> Event:
    """The event saying ``test_id`` has ``status`` (``inprogress`` at its start, or final)."""
    return new_event(
        Event, (test_id, status, tags, runnable, None, b"", False, None, route_code, timestamp)
    )


def file_events(
    test_id: str | None,
    attachments: Iterable[Attachment],
    timestamp: int | None,
    route_code: str | None = None,
) -> list[Event]:
    """One complete file event (``eof``) per attachment, in order, without tags."""
    return [
        new_event(
            Event,
            (
                test_id,
                _NONE,
                _NO_TAGS,
                True,
                item.name,
                item.content,
                True,
                item.mime_type,
                route_code,
                timestamp,
            ),
        )
        for item in attachments
    ]


def ending_events(
    test_id: str,
    status: Status,
    attachments: Sequence[Attachment],
    timestamp: int | None,
    tags: frozenset[str] = _NO_TAGS,
    runnable: bool = True,
    route_code: str | None = None,
) -> list[Event]:
    """How a test ends: its attachments, then its final ``status``, all at ``timestamp``
    (as testtools does, so its duration is this time less its ``inprogress`` time)."""
    final = new_event(
        Event, (test_id, status, tags, runnable, None, b"", False, None, route_code, timestamp)
    )
    if not attachments:
        return [final]
    events = file_events(test_id, attachments, timestamp, route_code)
    events.append(final)
    return events


def record_events(record: TestRecord) -> list[Event]:
    """The events of one stored test, in stream order.

    The start event is ``inprogress`` at the start time (``NONE`` for a test that
    has no outcome, or only exists), left out for a bare listing (``exists``
    with no duration and no files); the files carry no timestamp; the final
    status comes at the stop time. A test that never finished ends with a
    ``NONE`` event at its stop time, so that the collector sees its duration.
    """
    test_id, route, tags, runnable = record.test_id, record.route_code, record.tags, record.runnable
    status, start, stop = record.status, record.start, record.stop
    events: list[Event] = []
    if start is not None:
        opening = Status.NONE if status in (Status.NONE, Status.EXISTS) else Status.INPROGRESS
        if status is not Status.EXISTS or stop != start or record.attachments:
            events.append(status_event(test_id, opening, start, tags, runnable, route))
    events.extend(file_events(test_id, record.attachments, None, route))
    if status.is_final:
        events.append(status_event(test_id, status, stop, tags, runnable, route))
    elif start is None:
        # The status and the tags must be said, and a test known only by its
        # name needs one event.
        if not events or status is Status.INPROGRESS or tags:
            events.append(status_event(test_id, status, None, tags, runnable, route))
    elif stop != start:
        events.append(status_event(test_id, Status.NONE, stop, tags, runnable, route))
    return events


def records_events(records: Iterable[TestRecord]) -> Iterator[Event]:
    """The events of several records, one test after another."""
    for record in records:
        yield from record_events(record)


def records_to_v2(records: Iterable[TestRecord]) -> bytes:
    """A subunit v2 stream of the records."""
    from proctor.wire.v2 import encode_many

    return encode_many(records_events(records))
