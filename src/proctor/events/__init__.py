"""The event model and the sinks that consume it.

``Event`` and ``Status`` mirror the subunit v2 packet; ``TestRecord`` is one
test assembled from its events by ``RecordCollector``. Those data types are
defined at the bottom of the layers (``proctor.wire``) so codecs can speak
them; this package is their public home.
"""

from proctor.events.collector import RecordCollector, collect_records
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
    "worker_of",
]
