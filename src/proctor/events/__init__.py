"""The event model and the sinks that consume it.

``Event`` and ``Status`` mirror the subunit v2 packet; ``TestRecord`` is one
test assembled from its events by ``RecordCollector``. Those data types are
defined at the bottom of the layers (``proctor.wire``) so codecs can speak
them; this package is their public home.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from proctor.events.collector import RecordCollector, collect_records
    from proctor.events.emit import record_events, records_to_v2
    from proctor.events.sink import CallbackSink, ListSink, NullSink, Sink, Tee
    from proctor.events.source import detect_format, make_decoder, pump, read_events
    from proctor.events.summary import Failure, Summary
    from proctor.events.transform import Router, Selection, Tagger, TestFilter, TimestampFiller
    from proctor.wire.event import Event, Status, datetime_to_ns, ns_to_datetime
    from proctor.wire.record import Attachment, TestRecord, worker_of

__all__ = [
    "Attachment",
    "CallbackSink",
    "Event",
    "Failure",
    "ListSink",
    "NullSink",
    "RecordCollector",
    "Router",
    "Selection",
    "Sink",
    "Status",
    "Summary",
    "Tagger",
    "Tee",
    "TestFilter",
    "TestRecord",
    "TimestampFiller",
    "collect_records",
    "datetime_to_ns",
    "detect_format",
    "make_decoder",
    "ns_to_datetime",
    "pump",
    "read_events",
    "record_events",
    "records_to_v2",
    "worker_of",
]

# Names are imported on first use (PEP 562): a worker that needs only the
# unittest adapter, or a command that needs only the decoder, does not pay for
# the rest of the layer.
_HOMES = {
    "RecordCollector": "proctor.events.collector",
    "collect_records": "proctor.events.collector",
    "record_events": "proctor.events.emit",
    "records_to_v2": "proctor.events.emit",
    "CallbackSink": "proctor.events.sink",
    "ListSink": "proctor.events.sink",
    "NullSink": "proctor.events.sink",
    "Sink": "proctor.events.sink",
    "Tee": "proctor.events.sink",
    "detect_format": "proctor.events.source",
    "make_decoder": "proctor.events.source",
    "pump": "proctor.events.source",
    "read_events": "proctor.events.source",
    "Failure": "proctor.events.summary",
    "Summary": "proctor.events.summary",
    "Router": "proctor.events.transform",
    "Selection": "proctor.events.transform",
    "Tagger": "proctor.events.transform",
    "TestFilter": "proctor.events.transform",
    "TimestampFiller": "proctor.events.transform",
    "Event": "proctor.wire.event",
    "Status": "proctor.wire.event",
    "datetime_to_ns": "proctor.wire.event",
    "ns_to_datetime": "proctor.wire.event",
    "Attachment": "proctor.wire.record",
    "TestRecord": "proctor.wire.record",
    "worker_of": "proctor.wire.record",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'proctor.events' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
