"""The real python-subunit, driven to encode and decode our events (the peer we must match)."""

from __future__ import annotations

import io
from typing import Any

from subunit.v2 import ByteStreamToStreamResult, StreamResultToBytes
from testtools.testresult.doubles import StreamResult

from proctor.wire.event import Event, Status, datetime_to_ns, ns_to_datetime


def subunit_kwargs(event: Event) -> dict[str, Any]:
    """The StreamResult.status() keywords for an event.

    Tags are passed as a list in our frozenset's iteration order, so
    python-subunit writes them in the same order we do and bytes can be compared.
    """
    return {
        "test_id": event.test_id,
        "test_status": event.status.wire_name,
        "test_tags": list(event.tags) or None,
        "runnable": event.runnable,
        "file_name": event.file_name,
        "file_bytes": event.file_bytes if event.file_name is not None else None,
        "eof": event.eof,
        "mime_type": event.mime_type,
        "route_code": event.route_code,
        "timestamp": None if event.timestamp is None else ns_to_datetime(event.timestamp),
    }


def subunit_encode(*events: Event) -> bytes:
    """What python-subunit writes for these events."""
    buffer = io.BytesIO()
    writer = StreamResultToBytes(buffer)
    for event in events:
        writer.status(**subunit_kwargs(event))
    return buffer.getvalue()


def subunit_decode(data: bytes) -> list[Event]:
    """What python-subunit reads from these bytes, as our events."""
    recorder = StreamResult()
    ByteStreamToStreamResult(io.BytesIO(data), non_subunit_name="stdout").run(recorder)
    decoded = []
    for item in recorder._events:
        if item[0] != "status":
            continue
        (
            _,
            test_id,
            test_status,
            tags,
            runnable,
            file_name,
            file_bytes,
            eof,
            mime_type,
            route_code,
            timestamp,
        ) = item
        decoded.append(
            Event(
                test_id=test_id,
                status=Status.from_wire_name(test_status),
                tags=frozenset(tags or ()),
                runnable=runnable,
                file_name=file_name,
                file_bytes=bytes(file_bytes) if file_bytes is not None else b"",
                eof=eof,
                mime_type=mime_type,
                route_code=route_code,
                timestamp=None if timestamp is None else datetime_to_ns(timestamp),
            )
        )
    return decoded
