"""``proctor stream`` conversions: to and from JSON lines, subunit v1 and JUnit XML."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from proctor.events import Event, Status, collect_records
from proctor.wire import v2
from proctor.wire.event import TRACEBACK_MIME_TYPE
from tests.cli.invoke import invoke
from tests.wire.peer import subunit_decode
from tests.wire.test_junit import junit_schema, validate

__all__ = ["junit_schema"]  # the session fixture, shared with the wire tests

BIN = Path(sys.executable).parent

RUN = [
    Event(test_id="pkg.T.test_ok", status=Status.EXISTS),
    Event(test_id="pkg.T.test_ok", status=Status.INPROGRESS, timestamp=1_700_000_000_000_000_000),
    Event(
        test_id="pkg.T.test_ok",
        status=Status.SUCCESS,
        tags=frozenset({"worker-0"}),
        timestamp=1_700_000_000_250_000_000,
    ),
    Event(test_id="pkg.T.test_bad", status=Status.INPROGRESS, timestamp=1_700_000_001_000_000_000),
    Event(
        test_id="pkg.T.test_bad",
        file_name="traceback",
        file_bytes=b"Traceback (most recent call last):\nAssertionError: 1 != 2\n",
        eof=True,
        mime_type=TRACEBACK_MIME_TYPE,
        timestamp=1_700_000_001_500_000_000,
    ),
    Event(test_id="pkg.T.test_bad", status=Status.FAIL, timestamp=1_700_000_001_500_000_000),
    Event(file_name="stdout", file_bytes=b"chatter outside tests\n"),
]


def _records(events: list[Event]) -> list[tuple[str, Status, float | None]]:
    return sorted(
        (r.test_id, r.status, r.duration)
        for r in collect_records(events)
        if r.status is not Status.EXISTS
    )


def test_json_lines_round_trip_is_byte_identical() -> None:
    data = v2.encode_many(RUN)
    json_lines = invoke("stream", "to-json", stdin=data)
    assert json_lines.exit_code == 1
    assert json_lines.stdout.count("\n") == len(RUN)
    back = invoke("stream", "from-json", stdin=json_lines.stdout_bytes)
    assert back.stdout_bytes == data
    assert invoke("stream", "stats", stdin=json_lines.stdout_bytes).exit_code == 1  # autodetected


def test_v1_conversion_agrees_with_python_subunit() -> None:
    data = v2.encode_many(RUN)
    ours = invoke("stream", "to-v1", stdin=data)
    assert b"failure: pkg.T.test_bad [ multipart" in ours.stdout_bytes
    assert b"chatter outside tests" in ours.stdout_bytes
    # python-subunit's own 1to2 reads our v1 as the same tests.
    peer = subprocess.run(
        [str(BIN / "subunit-1to2")], input=ours.stdout_bytes, capture_output=True, check=True
    )
    assert _records(subunit_decode(peer.stdout)) == _records(RUN)
    # And we read python-subunit's v1 (from its 2to1) as the same tests.
    peer_v1 = subprocess.run(
        [str(BIN / "subunit-2to1")], input=data, capture_output=True, check=True
    ).stdout
    back = invoke("stream", "from-v1", stdin=peer_v1)
    assert _records(v2.decode(back.stdout_bytes)) == _records(RUN)


def test_junit_report_validates_and_reads_back(junit_schema: Any, tmp_path: Path) -> None:
    report = tmp_path / "report.xml"
    result = invoke("stream", "to-junit", "-o", str(report), stdin=v2.encode_many(RUN))
    assert result.exit_code == 1
    xml = report.read_bytes()
    validate(junit_schema, xml)
    assert b'tests="2" failures="1"' in xml
    assert b"AssertionError: 1 != 2" in xml
    back = invoke("stream", "from-junit", str(report))
    records = {r.test_id: r for r in collect_records(v2.decode(back.stdout_bytes))}
    assert records["pkg.T.test_ok"].status is Status.SUCCESS
    assert records["pkg.T.test_bad"].status is Status.FAIL
    assert records["pkg.T.test_ok"].duration == pytest.approx(0.25, abs=1e-3)


def test_junit_to_an_unwritable_place_is_a_clear_error(tmp_path: Path) -> None:
    target = tmp_path / "missing-dir" / "report.xml"
    result = invoke("stream", "to-junit", "-o", str(target), stdin=v2.encode_many(RUN))
    assert result.exit_code == 2
    assert "cannot write" in result.stderr
    assert not target.exists()


def test_bad_json_lines_name_the_line() -> None:
    result = invoke("stream", "from-json", stdin=b'{"test_id": "a", "status": "success"}\n{oops\n')
    assert result.exit_code == 2
    assert "line 2" in result.stderr


def test_bad_xml_names_the_place(tmp_path: Path) -> None:
    path = tmp_path / "broken.xml"
    path.write_bytes(b"<testsuite>\n  <testcase name='a'>\n</testsuite>\n")
    result = invoke("stream", "from-junit", str(path))
    assert result.exit_code == 2
    assert "broken.xml" in result.stderr
    assert "line 3" in result.stderr
