"""subunit v1: the reader against subunit-1to2, the writer against subunit-2to1, and fuzzing."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proctor.events.collector import RecordCollector, collect_records
from proctor.wire import v1, v2
from proctor.wire._isotime import format_ns
from proctor.wire.event import TRACEBACK_MIME_TYPE, Event, Status
from proctor.wire.record import Attachment, TestRecord
from tests.wire.conftest_formats import coalesce, subunit_1to2, subunit_1to2_events, subunit_2to1

T0 = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z
TIME0 = b"time: 2024-01-01 00:00:00Z\n"
SIMPLE_TB = 'text/x-traceback; charset="utf8"'


def read(data: bytes) -> list[Event]:
    return coalesce(v1.decode(data))


def lost(test_id: str, where: str = "") -> bytes:
    return f"{v1.LOST_CONNECTION_PREFIX}lost connection during {where}test '{test_id}'\n".encode()


# ---------------------------------------------------------------------------
# The reader, directive by directive


def test_a_passing_test_is_inprogress_then_success() -> None:
    assert read(TIME0 + b"test: a\nsuccess: a\n") == [
        Event(test_id="a", status=Status.INPROGRESS, timestamp=T0),
        Event(test_id="a", status=Status.SUCCESS, timestamp=T0),
    ]


@pytest.mark.parametrize(
    ("word", "status"),
    [
        (b"success", Status.SUCCESS),
        (b"successful", Status.SUCCESS),
        (b"failure", Status.FAIL),
        (b"error", Status.FAIL),
        (b"skip", Status.SKIP),
        (b"xfail", Status.XFAIL),
        (b"uxsuccess", Status.UXSUCCESS),
    ],
)
@pytest.mark.parametrize("colon", [b":", b""])
@pytest.mark.parametrize("start", [b"test", b"testing"])
def test_every_outcome_word_with_and_without_colon(
    word: bytes, status: Status, colon: bytes, start: bytes
) -> None:
    events = read(start + colon + b" t\n" + word + colon + b" t\n")
    assert [e.status for e in events] == [Status.INPROGRESS, status]


def test_without_time_lines_events_carry_no_timestamp() -> None:
    events = read(b"test: a\nsuccess: a\n")
    assert [e.timestamp for e in events] == [None, None]


def test_time_lines_stamp_the_following_events_with_nanoseconds() -> None:
    events = read(
        b"time: 2024-01-01 00:00:00Z\ntest: a\ntime: 2024-01-01 00:00:01.123456789Z\nsuccess: a\n"
    )
    assert [e.timestamp for e in events] == [T0, T0 + 1_123_456_789]


@pytest.mark.parametrize(
    "line",
    [
        b"time: yesterday\n",
        b"time: 2024-13-01 00:00:00Z\n",
        b"time: 1969-12-31 23:59:59Z\n",  # before what v2 can carry
        b"time: 2200-01-01 00:00:00Z\n",  # after what v2 can carry
    ],
)
def test_an_unusable_time_line_is_passed_through(line: bytes) -> None:
    events = read(line + b"test: a\nsuccess: a\n")
    assert events[0] == Event(file_name="stdout", file_bytes=line)
    assert events[1].timestamp is None


def test_failure_and_error_are_both_fail_with_a_traceback_file() -> None:
    data = TIME0 + b"test: a\nerror: a [\nboom\n]\ntest: b\nfailure: b [\nbang\n]\n"
    assert read(data) == [
        Event(test_id="a", status=Status.INPROGRESS, timestamp=T0),
        Event(
            test_id="a",
            file_name="traceback",
            file_bytes=b"boom\n",
            eof=True,
            mime_type=SIMPLE_TB,
            timestamp=T0,
        ),
        Event(test_id="a", status=Status.FAIL, timestamp=T0),
        Event(test_id="b", status=Status.INPROGRESS, timestamp=T0),
        Event(
            test_id="b",
            file_name="traceback",
            file_bytes=b"bang\n",
            eof=True,
            mime_type=SIMPLE_TB,
            timestamp=T0,
        ),
        Event(test_id="b", status=Status.FAIL, timestamp=T0),
    ]


@pytest.mark.parametrize(
    ("word", "name", "mime_type"),
    [
        (b"skip", "reason", "text/plain"),
        (b"success", "message", "text/plain"),
        (b"xfail", "traceback", SIMPLE_TB),
        (b"uxsuccess", "traceback", SIMPLE_TB),
    ],
)
def test_bracketed_details_are_named_after_the_outcome(
    word: bytes, name: str, mime_type: str
) -> None:
    events = read(b"test: a\n" + word + b": a [\nwhy\n]\n")
    assert events[1] == Event(
        test_id="a", file_name=name, file_bytes=b"why\n", eof=True, mime_type=mime_type
    )


def test_a_quoted_bracket_loses_its_leading_space() -> None:
    events = read(b"test: a\nfailure: a [\n ]x\n ]\n  ]\n]\n")
    assert events[1].file_bytes == b"]x\n]\n  ]\n"  # only " ]" is a quote


def test_an_empty_bracketed_block_still_gives_a_file() -> None:
    events = read(b"test: a\nfailure: a [\n]\n")
    assert events[1].file_name == "traceback"
    assert events[1].file_bytes == b""


def test_multipart_details_give_one_file_per_part_with_its_mime_type() -> None:
    data = (
        b"test: a\nfailure: a [ multipart\n"
        b"Content-Type: text/x-traceback;charset=utf8,language=python\ntraceback\n"
        b"4\r\nab\nc3\r\nde\n0\r\n"
        b"Content-Type: text/plain\nlog\n0\r\n"
        b"]\n"
    )
    events = read(data)
    assert events[1:] == [
        Event(
            test_id="a",
            file_name="traceback",
            file_bytes=b"ab\ncde\n",
            eof=True,
            mime_type="text/x-traceback;charset=utf8,language=python",
        ),
        Event(test_id="a", file_name="log", file_bytes=b"", eof=True, mime_type="text/plain"),
        Event(test_id="a", status=Status.FAIL),
    ]


def test_parts_with_the_same_name_are_all_kept() -> None:
    data = (
        b"test: a\nfailure: a [ multipart\n"
        b"Content-Type: text/plain\nlog\n1\r\n10\r\nContent-Type: text/plain\nlog\n1\r\n20\r\n]\n"
    )
    assert [(e.file_name, e.file_bytes, e.eof) for e in read(data)[1:3]] == [
        ("log", b"1", True),
        ("log", b"2", True),
    ]  # python-subunit keeps only the second


def test_chunk_bodies_may_hold_newlines_brackets_and_binary() -> None:
    body = b"]\n\x00\xff\r\n0\r\n"
    data = (
        b"test: a\nsuccess: a [ multipart\nContent-Type: application/octet-stream\nblob\n"
        + b"%X\r\n" % len(body)
        + body
        + b"0\r\n]\n"
    )
    assert read(data)[1].file_bytes == body


def test_a_malformed_multipart_block_is_read_on_as_a_bracketed_one() -> None:
    data = b"test: a\nfailure: a [ multipart\nTraceback\n  boom\n]\ntest: b\nsuccess: b\n"
    events = read(data)
    assert events[1] == Event(
        test_id="a", file_name="traceback", file_bytes=b"Traceback\n  boom\n", eof=True,
        mime_type=SIMPLE_TB,
    )  # fmt: skip
    assert [e.status for e in events[2:]] == [Status.FAIL, Status.INPROGRESS, Status.SUCCESS]


def test_a_bad_chunk_header_ends_the_part_and_the_rest_is_bracketed() -> None:
    data = (
        b"test: a\nfailure: a [ multipart\nContent-Type: text/plain\nlog\n3\r\nabcxyz\n"
        b"more\n]\nafter\n"
    )
    events = read(data)
    assert [(e.file_name, e.file_bytes) for e in events[1:3]] == [
        ("log", b"abc"),
        ("traceback", b"xyz\nmore\n"),
    ]
    assert events[3].status is Status.FAIL
    assert events[4] == Event(file_name="stdout", file_bytes=b"after\n")


def test_tags_outside_a_test_are_global_inside_only_for_that_test() -> None:
    data = (
        b"tags: g1 g2\ntest: a\ntags: local -g2\nsuccess: a\n"
        b"test: b\nsuccess: b\ntags: -g1\ntest: c\nsuccess: c\n"
    )
    finals = [e for e in read(data) if e.status is Status.SUCCESS]
    assert [e.tags for e in finals] == [
        frozenset({"g1", "local"}),
        frozenset({"g1", "g2"}),
        frozenset({"g2"}),
    ]
    assert all(not e.tags for e in read(data) if e.status is Status.INPROGRESS)


def test_a_tag_added_and_removed_on_one_line_is_removed() -> None:
    events = read(b"tags: a -a\ntest: t\nsuccess: t\n")
    assert events[-1].tags == frozenset()


@pytest.mark.parametrize(
    "line", [b"progress: 5\n", b"progress: +3\n", b"progress: -2\n", b"progress: push\n",
             b"progress: pop\n", b"progress  7\n"],
)  # fmt: skip
def test_progress_is_dropped(line: bytes) -> None:
    assert read(line + b"test: a\n" + line + b"success: a\n" + line) == read(
        b"test: a\nsuccess: a\n"
    )


def test_a_malformed_progress_line_is_passed_through() -> None:
    assert read(b"progress: lots\n") == [Event(file_name="stdout", file_bytes=b"progress: lots\n")]


def test_other_lines_are_stdout_coalesced_into_one_event() -> None:
    data = b"hello\nworld\ntest: a\nin test\nsuccess: a\nbye\n"
    assert read(data) == [
        Event(file_name="stdout", file_bytes=b"hello\nworld\n"),
        Event(test_id="a", status=Status.INPROGRESS),
        Event(file_name="stdout", file_bytes=b"in test\n"),
        Event(test_id="a", status=Status.SUCCESS),
        Event(file_name="stdout", file_bytes=b"bye\n"),
    ]
    raw = v1.decode(data)
    assert sum(1 for e in raw if e.file_name == "stdout") == 3  # not one per line


@pytest.mark.parametrize(
    "line",
    [
        b"success: other\n",  # not the running test
        b"test: nested\n",  # a test cannot start inside a test
        b" success: a\n",  # leading whitespace
        b"success:\n",  # no label
        b"success: \n",
        b"successes: a\n",
        b"sk: a\n",  # python-subunit takes any substring of "skip" as skip; we do not
        b": a\n",
    ],
)
def test_near_directives_inside_a_test_are_stdout(line: bytes) -> None:
    events = read(b"test: a\n" + line + b"success: a\n")
    assert events[1] == Event(file_name="stdout", file_bytes=line)
    assert events[2].status is Status.SUCCESS


def test_labels_keep_inner_whitespace_and_carriage_returns() -> None:
    events = read(b"test:  two\nfailure:  two\ntest:\tt\r\nxfail:\tt\r\n")
    assert [(e.test_id, e.status) for e in events] == [
        (" two", Status.INPROGRESS),
        (" two", Status.FAIL),
        ("t\r", Status.INPROGRESS),
        ("t\r", Status.XFAIL),
    ]


def test_undecodable_labels_and_nul_become_replacement_characters() -> None:
    events = read(b"test: a\xff\x00b\nsuccess: a\xff\x00b\ntags: x\xfe\n")
    assert events[0].test_id == "a\ufffd\ufffdb"
    assert events[1].status is Status.SUCCESS
    assert v2.encode_many(events)  # every event can be written as v2


def test_a_test_left_open_is_lost_with_python_subunits_message() -> None:
    events = read(TIME0 + b"tags: g\ntest: a\n")
    assert events[1:] == [
        Event(
            test_id="a",
            file_name="traceback",
            file_bytes=lost("a"),
            eof=True,
            mime_type=TRACEBACK_MIME_TYPE,
            timestamp=T0,
        ),
        Event(test_id="a", status=Status.FAIL, tags=frozenset({"g"}), timestamp=T0),
    ]


@pytest.mark.parametrize(
    ("word", "where"),
    [(b"failure", "failure"), (b"error", "error"), (b"skip", "skip"),
     (b"successful", "success"), (b"xfail", "xfail"), (b"uxsuccess", "uxsuccess")],
)  # fmt: skip
def test_a_stream_ending_inside_details_names_the_outcome(word: bytes, where: str) -> None:
    events = read(b"test: a\n" + word + b": a [\n")
    assert events[-2].file_bytes == lost("a", f"{where} report of ")
    assert events[-1].status is Status.FAIL


def test_details_that_arrived_before_a_stream_broke_off_are_kept() -> None:
    events = read(b"test: a\nfailure: a [\nTraceback\n  frame\n")
    assert [(e.file_name, e.file_bytes) for e in events[1:3]] == [
        ("traceback", b"Traceback\n  frame\n"),
        ("traceback", lost("a", "failure report of ")),
    ]


def test_the_last_line_needs_no_newline() -> None:
    assert [e.status for e in read(b"test: abc\nsuccess: abc")] == [
        Status.INPROGRESS,
        Status.SUCCESS,
    ]
    assert read(b"tail") == [Event(file_name="stdout", file_bytes=b"tail")]


def test_the_non_subunit_name_can_be_changed() -> None:
    assert v1.decode(b"x\n", non_subunit_name="console") == [
        Event(file_name="console", file_bytes=b"x\n")
    ]


def test_feed_after_close_is_an_error() -> None:
    decoder = v1.V1Decoder()
    decoder.close()
    assert decoder.close() == []
    with pytest.raises(ValueError, match="after close"):
        decoder.feed(b"x")


# ---------------------------------------------------------------------------
# Incremental reading and bounded memory


def test_text_without_a_newline_is_passed_on_at_once_when_it_cannot_be_a_directive() -> None:
    decoder = v1.V1Decoder()
    assert decoder.feed(b"Password: ") == [Event(file_name="stdout", file_bytes=b"Password: ")]
    assert decoder.feed(b"\ntes") == [Event(file_name="stdout", file_bytes=b"\n")]
    assert decoder.feed(b"") == []  # "tes" could still become "test: ..."
    assert decoder.feed(b"t: a\n") == [Event(test_id="a", status=Status.INPROGRESS)]


def test_a_huge_line_is_streamed_as_text_not_held() -> None:
    decoder = v1.V1Decoder()
    first = decoder.feed(b"test: " + b"x" * (v1.MAX_DIRECTIVE_LINE + 10))
    assert first[0].file_name == "stdout"
    assert len(first[0].file_bytes) > v1.MAX_DIRECTIVE_LINE
    assert decoder.feed(b"y\n") == [Event(file_name="stdout", file_bytes=b"y\n")]


def test_a_huge_detail_is_passed_on_in_chunks() -> None:
    decoder = v1.V1Decoder()
    decoder.feed(b"test: a\nfailure: a [\n")
    line = b"z" * 1000 + b"\n"
    chunks: list[Event] = []
    for _ in range(2 * v1.FLUSH_AT // len(line) + 1):
        chunks += decoder.feed(line)
    assert len(chunks) == 2
    assert all(not e.eof and e.file_name == "traceback" for e in chunks)
    rest = decoder.feed(b"]\n")
    assert rest[0].eof
    assert sum(len(e.file_bytes) for e in [*chunks, rest[0]]) == len(line) * (
        2 * v1.FLUSH_AT // len(line) + 1
    )


def test_a_long_partial_content_line_in_a_bracketed_block_is_consumed() -> None:
    decoder = v1.V1Decoder()
    decoder.feed(b"test: a\nfailure: a [\n ]" + b"q" * 5000)
    decoder.feed(b"q" * 5000)
    events = decoder.feed(b"\n]\n")
    assert events[0].file_bytes == b"]" + b"q" * 10000 + b"\n"


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_any_chunking_gives_the_same_events(data: st.DataObject) -> None:
    stream = data.draw(v1_streams())
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    decoder = v1.V1Decoder()
    events: list[Event] = []
    previous = 0
    for cut in [*cuts, len(stream)]:
        events += decoder.feed(stream[previous:cut])
        previous = cut
    events += decoder.close()
    assert coalesce(events) == read(stream)


# ---------------------------------------------------------------------------
# Against the real subunit-1to2


def _known_differences(events: list[Event]) -> list[Event]:
    """Our events minus what we keep and python-subunit drops: details already read
    when the stream broke off (python-subunit reports only the lost connection)."""
    out: list[Event] = []
    for event in events:
        if event.file_bytes.startswith(v1.LOST_CONNECTION_PREFIX.encode()):
            while out and out[-1].test_id == event.test_id and out[-1].file_name is not None:
                out.pop()
        out.append(event)
    return out


CURATED = [
    b"",
    b"hello\n",
    TIME0 + b"test: a\nsuccess: a\n",
    TIME0 + b"hello\ntest: foo\nout in test\ntags: a -b\ntime: 2024-01-01 00:00:01.5Z\n"
    b"failure: foo [\nline1\n ]quoted\n]\ntags: g1\ntest: bar\nskip: bar [\nwhy\n]\n"
    b"test: baz\nsuccess: baz [\nmsg\n]\n",
    TIME0 + b"test: q\nerror: q [ multipart\n"
    b"Content-Type: text/x-traceback;charset=utf8,language=python\ntraceback\n4\r\nabc\n0\r\n"
    b"Content-Type: text/plain\nother\n0\r\n]\n",
    TIME0 + b"testing bar\nsuccess: other\nprogress: +3\nprogress: push\nsuccessful bar\n"
    b"test foo\nskip: foo\ntest:  two\nfailure: two\nfailure:  two\ntest: x\r\nxfail: x\r\n",
    TIME0 + b"test: y\nuxsuccess: y [\nabc\n",
    TIME0 + b"test: z\nfailure: z [ multipart\nContent-Type: text/plain\nn\n5\r\nab",
    TIME0 + b"tags: early -x\ntest: a\ntags: x l1\nsuccess: a\ntags: -early g\ntest: b\n"
    b"uxsuccess: b [\ntb\n]\n",
    TIME0 + b"test: e\nfailure: e [\n]\ntest: f\nsuccess: f [ multipart\n]\n",
    TIME0 + b"test: lost\n",
    TIME0 + b"test: a\ntest: b\nsuccess: b\nsuccess: a\n",
    TIME0 + b"test: a\nxfail: a [ multipart\nContent-Type: text/plain\ntb\n3\r\n]\n\n0\r\n]\n",
]


@pytest.mark.parametrize("data", CURATED)
def test_curated_streams_read_as_subunit_1to2_reads_them(data: bytes) -> None:
    assert _known_differences(read(data)) == subunit_1to2_events(data)


_label_chars = st.characters(
    codec="utf-8", categories=("L", "N", "P", "S", "Zs"), exclude_characters="\n\x85\u2028\u2029"
)
labels = st.text(_label_chars, min_size=1, max_size=12).filter(lambda s: bool(s.strip()))
tag_names = st.text(st.sampled_from("abcxyz-_é1"), min_size=1, max_size=4).filter(
    lambda s: not s.startswith("-")
)
text_lines = st.text(st.characters(codec="utf-8", exclude_characters="\n"), max_size=20)
micro_times = st.integers(0, 2**31).map(lambda s: s * 1_000_000 + 123)  # microseconds
MIME_TYPES = [
    "text/plain",
    "text/plain;charset=utf8",
    "text/x-traceback;charset=utf8,language=python",
]
WORDS = ["success", "successful", "failure", "error", "skip", "xfail", "uxsuccess"]


def _time_line(us: int) -> bytes:
    text = format_ns(us * 1000, sep=" ", digits=6)
    assert text is not None
    return b"time: " + text.encode() + b"\n"


def _quirk(line: str) -> bool:
    """Lines python-subunit misreads (any substring of "skip", or only colons, as a word)."""
    first = line.split(None, 1)[0] if line.split() else ""
    return line[:1] not in ("", " ") and first.rstrip(":") in "skip"


@st.composite
def noise(draw: st.DrawFn, label: str = "") -> bytes:
    options = [
        "hello world",
        "test",
        "test:",
        " test: x",
        "testx: a",
        "tags",
        "failure:",
        f"success: {label}x",
        f"failure: {label} [ other",
        "# " + draw(text_lines),
        "out " + draw(text_lines),
    ]
    line = draw(st.sampled_from(options))
    assert not _quirk(line)
    return line.encode() + b"\n"


@st.composite
def details(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    """(suffix of the outcome line, the block that follows in pieces a stream may end between)."""
    kind = draw(st.sampled_from(["none", "simple", "multipart"]))
    if kind == "none":
        return b"", []
    if kind == "simple":
        lines = draw(st.lists(text_lines, max_size=4))
        body = [
            (b" " + line.encode() if line.startswith("]") else line.encode()) + b"\n"
            for line in lines
        ]
        return b" [", [*body, b"]\n"]
    parts: list[bytes] = []
    names = draw(
        st.lists(st.sampled_from(["traceback", "log", "x y", "é"]), unique=True, max_size=3)
    )
    for name in names:
        # Text: python-subunit decodes text parts and crashes on bad UTF-8.
        content = draw(st.text(st.characters(codec="utf-8"), max_size=30)).encode()
        cuts = sorted(draw(st.lists(st.integers(0, len(content)), max_size=3)))
        chunked = b""
        previous = 0
        for cut in [*cuts, len(content)]:
            piece = content[previous:cut]
            previous = cut
            if piece:
                chunked += b"%x\r\n" % len(piece) + piece
        mime = draw(st.sampled_from(MIME_TYPES))
        parts += [b"Content-Type: " + mime.encode() + b"\n", name.encode() + b"\n", chunked]
        parts.append(b"0\r\n")
    return b" [ multipart", [*parts, b"]\n"]


@st.composite
def v1_streams(draw: st.DrawFn) -> bytes:
    out = [_time_line(draw(micro_times))]
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["test", "test", "noise", "time", "tags", "progress"]))
        if kind == "noise":
            out.append(draw(noise()))
        elif kind == "time":
            out.append(_time_line(draw(micro_times)))
        elif kind == "tags":
            tags = draw(st.lists(tag_names, min_size=1, max_size=3))
            signs = draw(st.lists(st.booleans(), min_size=len(tags), max_size=len(tags)))
            out.append(
                (
                    "tags: "
                    + " ".join(("-" if s else "") + t for t, s in zip(tags, signs, strict=True))
                ).encode()
                + b"\n"
            )
        elif kind == "progress":
            out.append(
                draw(st.sampled_from([b"progress: 3\n", b"progress: +1\n", b"progress: pop\n"]))
            )
        else:
            label = draw(labels)
            start = draw(st.sampled_from(["test: ", "testing ", "test:"]))
            if start == "test:":
                start = "test:\t"
            out.append(start.encode() + label.encode() + b"\n")
            for _ in range(draw(st.integers(0, 2))):
                inner = draw(st.sampled_from(["noise", "time", "tags"]))
                if inner == "noise":
                    out.append(draw(noise(label)))
                elif inner == "time":
                    out.append(_time_line(draw(micro_times)))
                else:
                    out.append(
                        ("tags: " + draw(tag_names) + " -" + draw(tag_names)).encode() + b"\n"
                    )
            word = draw(st.sampled_from(WORDS)) + draw(st.sampled_from([":", ""]))
            suffix, block = draw(details())
            out.append(word.encode() + b" " + label.encode() + suffix + b"\n")
            out += block
    if draw(st.booleans()):  # the stream breaks off (between lines, parts or chunks)
        out = out[: draw(st.integers(0, len(out)))]
    return b"".join(out)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(v1_streams())
@pytest.mark.slow
def test_generated_streams_read_as_subunit_1to2_reads_them(stream: bytes) -> None:
    assert _known_differences(read(stream)) == subunit_1to2_events(stream)


@pytest.mark.slow
def test_the_subunit_1to2_console_script_agrees(tmp_path: Path) -> None:
    data = b"".join(CURATED[2:6])
    script = Path(sys.executable).with_name("subunit-1to2")
    done = subprocess.run([str(script)], input=data, capture_output=True, check=True)
    assert _known_differences(read(data)) == coalesce(v2.decode(done.stdout))


# ---------------------------------------------------------------------------
# Fuzzing: any bytes, never an error, always events v2 can write


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise_and_always_encode_as_v2(data: bytes) -> None:
    v2.encode_many(v1.decode(data))


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_streams_never_raise_and_always_encode_as_v2(data: st.DataObject) -> None:
    stream = bytearray(data.draw(v1_streams()))
    for _ in range(data.draw(st.integers(1, 4))):
        if not stream:
            break
        at = data.draw(st.integers(0, len(stream) - 1))
        action = data.draw(st.sampled_from(["flip", "drop", "dup", "insert"]))
        if action == "flip":
            stream[at] = data.draw(st.integers(0, 255))
        elif action == "drop":
            del stream[at]
        elif action == "dup":
            stream[at:at] = stream[at : at + 10]
        else:
            stream[at:at] = data.draw(
                st.sampled_from([b"\n", b"]\n", b" [", b"0\r\n", b"FFFF\r\n"])
            )
    events = v1.decode(bytes(stream))
    v2.encode_many(events)
    open_tests = 0
    for event in events:
        if event.status is Status.INPROGRESS:
            open_tests += 1
        elif event.status.is_final:
            open_tests -= 1
    assert open_tests == 0  # every test started is finished, even in a broken stream


def test_passthrough_bytes_survive_exactly() -> None:
    data = b"\x00\xff\xfe binary \xb3\n\rhalf"
    assert b"".join(e.file_bytes for e in v1.decode(data)) == data


# ---------------------------------------------------------------------------
# The writer, against the real subunit-2to1


def _records_from_v2(data: bytes) -> tuple[list[TestRecord], list[bytes], list[object]]:
    """Records and passthrough in the order a converter sees them."""
    order: list[object] = []
    records: list[TestRecord] = []
    passthrough: list[bytes] = []

    def on_record(record: TestRecord) -> None:
        records.append(record)
        order.append(record)

    def on_other(event: Event) -> None:
        if event.file_name is not None:
            passthrough.append(event.file_bytes)
            order.append(event.file_bytes)

    collector = RecordCollector(on_record, on_other)
    for event in v2.decode(data):
        collector.send(event)
    collector.close()
    return records, passthrough, order


def ours_2to1(data: bytes) -> bytes:
    encoder = v1.V1Encoder()
    _, _, order = _records_from_v2(data)
    out = []
    for item in order:
        if isinstance(item, TestRecord):
            out.append(encoder.record(item))
        else:
            assert isinstance(item, bytes)
            out.append(encoder.passthrough(item))
    return b"".join(out)


def _sorted_tag_lines(text: bytes) -> bytes:
    """subunit-2to1 writes tags in set order; sort them to compare."""
    return re.sub(rb"(?m)^tags: (.*)$", lambda m: b"tags: " + b" ".join(sorted(m[1].split())), text)


def test_the_writer_matches_subunit_2to1_on_a_mixed_stream() -> None:
    events = [
        Event(file_name="stdout", file_bytes=b"hello\n"),
        Event(test_id="a", status=Status.INPROGRESS, timestamp=T0),
        Event(
            test_id="a",
            file_name="traceback",
            file_bytes=b"tb\n]\n",
            eof=True,
            mime_type=TRACEBACK_MIME_TYPE,
            timestamp=T0 + 5,
        ),
        Event(test_id="a", file_name="stdout", file_bytes=b"printed", eof=True, timestamp=T0 + 5),
        Event(test_id="a", status=Status.FAIL, tags=frozenset({"t1", "t2"}), timestamp=T0 + 10**9),
        Event(test_id="b", status=Status.SUCCESS, timestamp=T0 + 2 * 10**9),
        Event(test_id="c", status=Status.INPROGRESS, timestamp=T0 + 3 * 10**9),
        Event(test_id="e", status=Status.EXISTS),
        Event(test_id="d", file_name="reason", file_bytes=b"why", eof=True,
              mime_type="text/plain; charset=utf8"),
        Event(test_id="d", status=Status.SKIP),
        Event(test_id="x", status=Status.XFAIL, route_code="0", runnable=False),
        Event(test_id="u", status=Status.UXSUCCESS, timestamp=T0),
    ]  # fmt: skip
    data = v2.encode_many(events)
    ours = ours_2to1(data)
    assert ours == _sorted_tag_lines(subunit_2to1(data))
    assert b"time: 2024-01-01 00:00:00.000000Z\ntags: t1 t2\ntest: a\n" in ours
    assert b"successful: b [ multipart\n]\n" in ours
    assert b"failure: c [ multipart\n]\n" in ours  # never finished
    assert b"test: e" not in ours  # exists is not a result


ATTACHMENT_TYPES = [None, TRACEBACK_MIME_TYPE, "text/plain; charset=utf8"]
ids = st.text(_label_chars, min_size=1, max_size=10).filter(lambda s: bool(s.strip()))


@st.composite
def v2_runs(draw: st.DrawFn) -> bytes:
    """v2 streams of whole tests the way testtools writes them, plus passthrough."""
    events: list[Event] = []
    timed = draw(st.booleans())
    clock = T0
    unfinished = 0
    for test_id in draw(st.lists(ids, unique=True, max_size=5)):
        if draw(st.booleans()):
            events.append(Event(file_name="stdout", file_bytes=draw(text_lines).encode() + b"\n"))
        events.append(
            Event(test_id=test_id, status=Status.INPROGRESS, timestamp=clock if timed else None)
        )
        clock += draw(st.integers(0, 10**12)) // 1000 * 1000
        now = clock if timed else None
        names = draw(st.lists(st.sampled_from(["traceback", "stdout", "log"]), max_size=3))
        events += [
            Event(
                test_id=test_id,
                file_name=name,
                file_bytes=draw(st.binary(min_size=1, max_size=30)),
                eof=True,
                mime_type=draw(st.sampled_from(ATTACHMENT_TYPES)),
                timestamp=now,
            )
            for name in names
        ]
        status = draw(
            st.sampled_from(
                [s for s in Status if s.is_final and s is not Status.EXISTS] + [Status.INPROGRESS]
            )
        )
        if status is Status.INPROGRESS:
            if unfinished:
                status = Status.SUCCESS
            unfinished += 1
        tags = draw(st.frozensets(tag_names, max_size=3))
        events.append(Event(test_id=test_id, status=status, tags=tags, timestamp=now))
    return v2.encode_many(events)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(v2_runs())
@pytest.mark.slow
def test_the_writer_matches_subunit_2to1_on_generated_streams(data: bytes) -> None:
    assert ours_2to1(data) == _sorted_tag_lines(subunit_2to1(data))


def test_a_directive_is_never_glued_to_output_without_a_newline() -> None:
    encoder = v1.V1Encoder()
    out = encoder.passthrough(b"no newline") + encoder.record(TestRecord("a", Status.SUCCESS))
    assert out == b"no newline\ntest: a\nsuccessful: a [ multipart\n]\n"
    assert read(out)[1] == Event(test_id="a", status=Status.INPROGRESS)


def test_exists_records_write_nothing() -> None:
    assert v1.encode_records([TestRecord("a", Status.EXISTS)]) == b""


def test_nanosecond_times_are_kept_and_microsecond_ones_written_as_python_subunit_does() -> None:
    out = v1.encode_records(
        [TestRecord("a", Status.SUCCESS, start=T0 + 1_000, stop=T0 + 1_000_000_001)]
    )
    assert b"time: 2024-01-01 00:00:00.000001Z\n" in out
    assert b"time: 2024-01-01 00:00:01.000000001Z\n" in out


@pytest.mark.parametrize(
    ("mime_type", "written"),
    [
        (TRACEBACK_MIME_TYPE, "text/x-traceback;charset=utf8,language=python"),
        ("text/plain; charset=utf8", "text/plain;charset=utf8"),
        (
            "text/x-traceback;charset=utf8,language=python",
            "text/x-traceback;charset=utf8,language=python",
        ),
        ("Text/Plain; B=2; a=1", "text/plain;a=1,b=2"),
        ("application/octet-stream", "application/octet-stream"),
        ("multipart/mixed; boundary=a/b", "multipart/mixed"),  # a value v1 cannot hold
        ("not a mime type", "application/octet-stream"),
        ("text/plain\nContent-Type: evil/x", "application/octet-stream"),
    ],
)  # fmt: skip
def test_mime_types_are_written_in_v1_form(mime_type: str, written: str) -> None:
    record = TestRecord("a", Status.SUCCESS, attachments=(Attachment("f", b"x", mime_type),))
    assert f"Content-Type: {written}\nf\n".encode() in v1.encode_records([record])


def test_what_v1_cannot_say_is_mended() -> None:
    record = TestRecord(
        "a\nb",
        Status.FAIL,
        tags=frozenset({"two words", "-neg", ""}),
        attachments=(Attachment("n\nm", b"1"), Attachment("n\nm", b"2")),
    )
    out = v1.encode_records([record])
    assert b"test: a\xe2\x90\xa4b\n" in out
    assert b"tags: _neg two_words\n" in out
    assert b"n\xe2\x90\xa4m\n2\r\n120\r\n" in out  # one part: same-named attachments join
    assert v1.encode_records([TestRecord("  ", Status.SUCCESS)]).startswith(b"test: '  '\n")


# ---------------------------------------------------------------------------
# Round trips


record_strategy = st.builds(
    TestRecord,
    test_id=ids,
    status=st.sampled_from([s for s in Status if s.is_final and s is not Status.EXISTS]),
    start=st.just(T0),
    stop=st.integers(T0, T0 + 10**12).map(lambda ns: ns // 1000 * 1000),
    tags=st.frozensets(tag_names, max_size=3),
    attachments=st.lists(
        st.builds(
            Attachment,
            name=st.sampled_from(["traceback", "log", "stdout"]),
            # Text: python-subunit decodes text attachments and crashes on bad UTF-8.
            content=st.text(st.characters(codec="utf-8"), max_size=30).map(str.encode),
            mime_type=st.sampled_from(["text/plain", "text/plain;charset=utf8"]),
        ),
        unique_by=lambda a: a.name,
        max_size=3,
    ).map(lambda items: tuple(sorted(items, key=lambda a: a.name))),
)


def _expected(record: TestRecord) -> TestRecord:
    """What survives v1: error and failure are one, route codes and runnable are lost."""
    return TestRecord(
        test_id=record.test_id,
        status=record.status,
        start=record.start,
        stop=record.stop,
        tags=record.tags,
        attachments=record.attachments,
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(record_strategy, max_size=4))
@pytest.mark.slow
def test_records_survive_our_writer_and_python_subunits_reader(records: list[TestRecord]) -> None:
    text = v1.encode_records(records)
    back = collect_records(v2.decode(subunit_1to2(text)))
    assert back == [_expected(r) for r in records]


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(st.lists(record_strategy, max_size=4))
def test_records_survive_our_writer_and_our_reader(records: list[TestRecord]) -> None:
    back = collect_records(v1.decode(v1.encode_records(records)))
    assert back == [_expected(r) for r in records]
