"""Helpers for the v1, JUnit and JSON-lines tests: the real python-subunit peers, in process.

Not a conftest (pytest does not load it by itself): test modules import what they use.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

from proctor.wire import v2
from proctor.wire.event import Event


def coalesce(events: Iterable[Event]) -> list[Event]:
    """Events with adjacent passthrough (test-less ``stdout``) chunks joined.

    Where one reader emits one passthrough event per line and another one per
    run of lines, the bytes are what must agree, not the chunking.
    """
    out: list[Event] = []
    for event in events:
        if (
            out
            and _is_passthrough(event)
            and _is_passthrough(out[-1])
            and out[-1].file_name == event.file_name
        ):
            out[-1] = out[-1]._replace(file_bytes=out[-1].file_bytes + event.file_bytes)
        elif not (_is_passthrough(event) and not event.file_bytes):
            out.append(event)
    return out


def _is_passthrough(event: Event) -> bool:
    return (
        event.test_id is None
        and event.file_name is not None
        and event.status.wire_name is None
        and event.mime_type is None
        and not event.eof
        and event.timestamp is None
    )


def subunit_1to2(data: bytes) -> bytes:
    """What ``subunit-1to2`` writes for a v1 stream (run in this process)."""
    from subunit import StreamResultToBytes
    from subunit.filters import run_tests_from_stream
    from testtools import ExtendedToStreamDecorator

    out = io.BytesIO()
    result = ExtendedToStreamDecorator(StreamResultToBytes(out))
    run_tests_from_stream(io.BytesIO(data), result, passthrough_stream=out)
    return out.getvalue()


def subunit_1to2_events(data: bytes) -> list[Event]:
    """The events ``subunit-1to2`` writes for a v1 stream, passthrough coalesced."""
    return coalesce(v2.decode(subunit_1to2(data)))


def subunit_2to1(data: bytes) -> bytes:
    """What ``subunit-2to1`` writes for a v2 stream (run in this process)."""
    from subunit import ByteStreamToStreamResult, TestProtocolClient
    from subunit.test_results import CatFiles
    from testtools import StreamResultRouter, StreamToExtendedDecorator

    out = io.BytesIO()
    case = ByteStreamToStreamResult(io.BytesIO(data), non_subunit_name="stdout")
    result = StreamResultRouter(StreamToExtendedDecorator(TestProtocolClient(out)))
    result.add_rule(CatFiles(out), "test_id", test_id=None)
    result.startTestRun()
    case.run(result)
    result.stopTestRun()
    return out.getvalue()


def junitxml2subunit(xml: bytes, directory: Path) -> list[Event]:
    """The events python-subunit's ``junitxml2subunit`` writes for one JUnit XML document."""
    from subunit import JUnitXML2SubUnit

    path = directory / "report.xml"
    path.write_bytes(xml)
    out = io.BytesIO()
    JUnitXML2SubUnit([str(path)], out)
    return v2.decode(out.getvalue())
