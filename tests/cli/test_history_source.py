"""Reading the inputs of ``proctor load``: format detection on pipes that deliver
a few bytes at a time, and JSON lines that turn bad part of the way."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from proctor.cli.main import main
from proctor.events import source
from proctor.events.collector import collect_records
from proctor.events.source import read_events
from proctor.store import open_store
from proctor.wire import jsonl, v1
from proctor.wire.event import Event, Status

from .history_streams import events_for, passing, stream


class Chunks(io.RawIOBase):
    """A pipe that delivers ``chunks`` one read at a time, as a slow writer would,
    and fails a test that reads on after the end."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)
        self.reads = 0
        self.ended = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        assert not self.ended, "read again after the end of the stream"
        self.reads += 1
        if not self.chunks:
            self.ended = True
            return 0
        chunk = self.chunks.pop(0)
        assert len(chunk) <= len(buffer)
        buffer[: len(chunk)] = chunk
        return len(chunk)


def pipe(*chunks: bytes) -> io.BufferedReader:
    return io.BufferedReader(Chunks(list(chunks)))


def records(stream: io.BufferedReader) -> dict[str, Status]:
    events = [event for batch in read_events(stream) for event in batch]
    return {record.test_id: record.status for record in collect_records(events)}


V1 = v1.encode_records(collect_records(events_for(passing(["p.a", "p.b"]))))


def test_a_banner_arriving_before_a_v1_stream_does_not_decide_its_format() -> None:
    assert records(pipe(b"Collecting tests...\n", V1)) == {
        "p.a": Status.SUCCESS,
        "p.b": Status.SUCCESS,
    }


def test_a_v1_directive_split_across_reads_is_recognised() -> None:
    assert records(pipe(V1[:2], V1[2:])) == {"p.a": Status.SUCCESS, "p.b": Status.SUCCESS}


def test_a_live_v2_stream_is_decoded_from_its_first_read() -> None:
    raw = Chunks([stream(passing(["v.a"])), b"never read before the first batch"])
    batches = read_events(io.BufferedReader(raw))
    first = next(batches)
    assert raw.reads == 1
    assert {event.test_id for event in first} == {"v.a"}


@pytest.mark.parametrize(
    ("head", "decided"),
    [
        (b"", False),
        (b"\n \r\n", False),
        (b"\xef\xbb", False),
        (b"te", False),
        (b"Collecting tests...\n", False),
        (b"Collecting tests...\ntest", False),
        (b"\xb3", True),
        (b"  {", True),
        (b"\n<", True),
        (b"test: p.a", True),
        (b"Collecting tests...\nsuccess: p.a\n", True),
        (b"output \xb3", True),
        (b"line\n" * 8, True),
        (b"line\n" * 7, False),
        (b"x" * 4096, True),
    ],
)
def test_the_format_is_decided_only_when_more_input_cannot_change_it(
    head: bytes, decided: bool
) -> None:
    assert source.format_decided(head) is decided


def test_text_that_never_decides_is_read_to_its_end_once() -> None:
    # "te" and the end: detection must stop at the end, not read again.
    events = [event for batch in read_events(pipe(b"te")) for event in batch]
    assert all(event.test_id is None for event in events)


GOOD = [
    Event("j.a", Status.INPROGRESS, timestamp=10),
    Event("j.a", Status.SUCCESS, timestamp=20),
    Event("j.b", Status.INPROGRESS, timestamp=30),
]


@pytest.mark.parametrize("chunking", ["whole", "line by line", "odd pieces"])
def test_json_lines_before_a_bad_line_are_kept(chunking: str) -> None:
    data = jsonl.encode(GOOD) + b"{broken\n" + jsonl.encode(GOOD[:1])
    if chunking == "whole":
        chunks = [data]
    elif chunking == "line by line":
        chunks = [line + b"\n" for line in data.split(b"\n")]
    else:
        chunks = [data[i : i + 7] for i in range(0, len(data), 7)]
    seen: list[Event] = []

    def read_all() -> None:
        for batch in read_events(pipe(*chunks)):
            seen.extend(batch)

    with pytest.raises(ValueError, match="line 4") as caught:
        read_all()
    assert seen == GOOD
    assert getattr(caught.value, "line", None) == 4


def _load_from_pipe(repo: str, *chunks: bytes) -> int:
    saved = sys.stdin
    sys.stdin = io.TextIOWrapper(pipe(*chunks))
    try:
        return main(["load", "--repository", repo])
    finally:
        sys.stdin = saved


def test_load_reads_a_slow_pipe_as_a_whole_file(tmp_path: Path) -> None:
    repo = str(tmp_path / ".proctor")
    assert _load_from_pipe(repo, b"Collecting tests...\n", V1) == 0
    assert _load_from_pipe(repo, V1[:2], V1[2:]) == 0
    with open_store(repo) as store:
        for run_id in (1, 2):
            assert [r.test_id for r in store.records(run_id)] == ["p.a", "p.b"]


def test_a_bad_json_line_keeps_the_events_before_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = str(tmp_path / ".proctor")
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(jsonl.encode(GOOD) + b"{broken\n")
    assert main(["load", "--repository", repo, str(bad)]) == 2
    assert "line 4" in capsys.readouterr().err
    with open_store(repo) as store:
        run = store.run(1)
        assert run.interrupted
        # j.b had started: closing the stream stored it as unfinished.
        assert {r.test_id: r.status for r in store.records(1)} == {
            "j.a": Status.SUCCESS,
            "j.b": Status.INPROGRESS,
        }
