"""Format detection never turns a subunit v2 stream into another format: a line
printed at import before the first packet (JSON-like, a v1 directive, XML-like)
on a pipe or in a file, whatever the read sizes; python-subunit is the reference."""

from __future__ import annotations

import io
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proctor.events.source import read_events
from proctor.wire import jsonl
from proctor.wire.event import Event, Status
from tests.wire.peer import subunit_decode, subunit_encode

# What a test module may print at import, before the runner's first packet.
HEADS = [
    b'{"level": "info", "msg": "configured"}\n',
    b"progress: 50%\n",
    b"time: 2026-12-04 10:00:00Z\n",
    b"<Figure size 640x480 with 1 Axes>\n",
    b"<?xml version='1.0'?>\n",
    b"tags: slow\n",
    b"  {\n",
]

# A failing run as python-subunit writes it.
RUN = subunit_encode(
    Event("m.T.test_a", Status.EXISTS),
    Event("m.T.test_a", Status.INPROGRESS, timestamp=10**18),
    Event("m.T.test_a", Status.SUCCESS, timestamp=10**18 + 5),
    Event("m.T.test_b", Status.INPROGRESS, timestamp=10**18 + 6),
    Event(
        "m.T.test_b",
        file_name="traceback",
        file_bytes=b"Traceback: boom\n",
        eof=True,
        mime_type="text/plain",
    ),
    Event("m.T.test_b", Status.FAIL, timestamp=10**18 + 9),
)


def outcomes(events: list[Event]) -> list[tuple[str, Status]]:
    return [(e.test_id, e.status) for e in events if e.test_id and e.status is not Status.NONE]


class Chunks(io.RawIOBase):
    """A pipe delivering ``chunks`` one read at a time."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if not self.chunks:
            return 0
        chunk = self.chunks.pop(0)
        buffer[: len(chunk)] = chunk
        return len(chunk)


def read_all(stream: io.BufferedReader) -> list[Event]:
    return [event for batch in read_events(stream) for event in batch]


def split(data: bytes, sizes: list[int]) -> list[bytes]:
    out, pos, i = [], 0, 0
    while pos < len(data):
        size = sizes[i % len(sizes)]
        out.append(data[pos : pos + size])
        pos += size
        i += 1
    return out


@pytest.mark.parametrize("head", HEADS)
def test_python_subunit_reads_these_streams_as_v2(head: bytes) -> None:
    """The reference: the printed line is passthrough, the tests are there."""
    expected = outcomes(subunit_decode(RUN))
    assert outcomes(subunit_decode(head + RUN)) == expected
    assert ("m.T.test_b", Status.FAIL) in expected


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(HEADS),
    st.integers(0, 3),
    st.lists(st.integers(1, 64), min_size=1, max_size=12),
)
def test_a_printed_line_before_v2_packets_never_changes_the_format(
    head: bytes, lines: int, sizes: list[int]
) -> None:
    data = head * (1 + lines) + RUN
    expected = subunit_decode(data)
    got = read_all(io.BufferedReader(Chunks(split(data, sizes))))
    assert outcomes(got) == outcomes(expected)
    text = b"".join(e.file_bytes for e in got if e.test_id is None and e.file_name == "stdout")
    assert text == head * (1 + lines)


@pytest.mark.parametrize("head", HEADS)
def test_the_head_alone_in_the_first_read_waits_for_the_packets(head: bytes) -> None:
    """The first read is only the printed line: nothing is decided on it."""
    got = read_all(io.BufferedReader(Chunks([head, RUN[:3], RUN[3:]])))
    assert outcomes(got) == outcomes(subunit_decode(head + RUN))


@pytest.mark.parametrize("head", HEADS)
def test_a_file_with_a_printed_line_before_v2_is_v2(head: bytes, tmp_path: Path) -> None:
    path = tmp_path / "run.subunit"
    path.write_bytes(head + RUN)
    with path.open("rb") as handle:
        assert outcomes(read_all(handle)) == outcomes(subunit_decode(head + RUN))


def test_a_v2_packet_after_a_bad_json_line_makes_the_stream_v2() -> None:
    data = b'{"key": 1}\nnot json either\n' + RUN
    assert outcomes(read_all(io.BufferedReader(Chunks([data[:11], data[11:]])))) == outcomes(
        subunit_decode(data)
    )


def test_real_json_lines_v1_and_junit_are_still_read_as_such() -> None:
    events = [Event("j.a", Status.INPROGRESS, timestamp=1), Event("j.a", Status.FAIL, timestamp=2)]
    assert outcomes(read_all(io.BufferedReader(Chunks([jsonl.encode(events)])))) == [
        ("j.a", Status.INPROGRESS),
        ("j.a", Status.FAIL),
    ]
    data = b"time: 2026-12-04 10:00:00Z\ntest: v.a\nfailure: v.a\n"
    got = read_all(io.BufferedReader(Chunks(split(data, [5]))))
    assert ("v.a", Status.FAIL) in outcomes(got)
    xml = b'<testsuite name="s"><testcase classname="c" name="t"><failure/></testcase></testsuite>'
    assert ("c.t", Status.FAIL) in outcomes(read_all(io.BufferedReader(Chunks(split(xml, [7])))))


def test_a_bad_json_stream_without_packets_still_fails_clearly() -> None:
    with pytest.raises(ValueError, match=r"line 1, field 'key': unknown field"):
        read_all(io.BufferedReader(Chunks([b'{"key": 1}\n', b"nonsense\n"])))


_WRITER = """
import os, random, sys, time
data = sys.stdin.buffer.read()
rng = random.Random(int(sys.argv[1]))
head, rest = data.split(b"\\0", 1)
os.write(1, head)
time.sleep(0.05)
pos = 0
while pos < len(rest):
    size = rng.randint(1, 40)
    os.write(1, rest[pos : pos + size])
    pos += size
    if rng.random() < 0.2:
        time.sleep(0.002)
"""


@pytest.mark.slow
@pytest.mark.parametrize("head", HEADS)
def test_a_real_pipe_from_a_process_printing_at_import(head: bytes) -> None:
    """A child process writes the line, pauses, then the run in random pieces."""
    seed = random.randrange(1 << 30)
    child = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(seed)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    child.stdin.write(head + b"\0" + RUN)
    child.stdin.close()
    try:
        with child.stdout:
            got = read_all(child.stdout)  # type: ignore[arg-type]
    finally:
        child.kill()
        child.wait()
    assert outcomes(got) == outcomes(subunit_decode(head + RUN)), seed
