"""The subunit v2 codec: exact bytes, python-subunit compatibility in both directions,
every flag combination, size classes, chunking, validation, and any chunking of input."""

from __future__ import annotations

import itertools
import re
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proctor.wire import v2
from proctor.wire.event import Event, Status
from tests.wire.peer import subunit_decode, subunit_encode
from tests.wire.strategies import canonical, events, micro_timestamps

TRACEBACK_MIME = 'text/x-traceback; charset="utf8"; language="python"'

# Hand-worked packets from python-subunit 1.4.6 (reference/subunit.md 1.11).
KNOWN_PACKETS = [
    (Event(test_id="foo", status=Status.EXISTS), "b329010c03666f6f08555f1b"),
    (
        Event(
            test_id="pkg.mod.Test.test_a",
            status=Status.INPROGRESS,
            timestamp=1704164645 * 10**9 + 678901000,
        ),
        "b32b022465937d25e877350813706b672e6d6f642e546573742e746573745f6138e75954",
    ),
    (
        Event(test_id="t1", status=Status.FAIL, tags=frozenset({"slow"}), route_code="0/1"),
        "b32d86150274310104736c6f7703302f313c4d678f",
    ),
    (
        Event(
            test_id="t1",
            file_name="traceback",
            file_bytes=b"Boom\n",
            eof=True,
            mime_type=TRACEBACK_MIME,
        ),
        "b32970405002743133746578742f782d74726163656261636b3b20636861727365743d2275746638223b20"
        "6c616e67756167653d22707974686f6e220974726163656261636b05426f6f6d0ab28f457b",
    ),
    (Event(file_name="stdout", file_bytes=b"hi\n"), "b3214013067374646f75740368690af4132d4a"),
    (Event(), "b321000819d79a8d"),
    (Event(test_id="x", runnable=False), "b328000a0178967fe924"),
]


@pytest.mark.parametrize(("event", "hexdata"), KNOWN_PACKETS)
def test_known_packets_encode_to_python_subunits_bytes(
    event: Event, hexdata: str, accelerate: bool
) -> None:
    assert v2.encode(event, accelerate=accelerate).hex() == hexdata


@pytest.mark.parametrize(("event", "hexdata"), KNOWN_PACKETS)
def test_known_packets_decode_to_the_event(event: Event, hexdata: str, accelerate: bool) -> None:
    assert v2.decode(bytes.fromhex(hexdata), accelerate=accelerate) == [event]


def test_speedups_are_built() -> None:
    """CI builds the C fast paths; a silent fall-back to Python would hide a slow install."""
    import os

    if os.environ.get("PROCTOR_PURE_PYTHON", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.skip("pure Python requested")
    assert v2.ACCELERATED, "proctor.wire._speedups did not build: check the C compiler"


@pytest.mark.parametrize(
    ("content", "packet_size", "head"),
    [
        (40, 53, "b329403501 78"),
        (100, 115, "b329404073 01"),
        (20_000, 20_017, "b32940804e31 01"),
    ],
)
def test_length_field_size_classes(
    content: int, packet_size: int, head: str, accelerate: bool
) -> None:
    event = Event(test_id="x", file_name="f", file_bytes=b"a" * content)
    data = v2.encode(event, accelerate=accelerate)
    assert len(data) == packet_size
    assert data.hex().startswith(head.replace(" ", ""))
    assert data == subunit_encode(event)


@pytest.mark.parametrize("total", range(55, 75))
def test_length_boundary_matches_python_subunit(total: int, accelerate: bool) -> None:
    """Around 63/64 bytes the length field widens; python-subunit never makes a 64-byte packet."""
    event = Event(test_id="x", file_name="f", file_bytes=b"z" * (total - 13))
    data = v2.encode(event, accelerate=accelerate)
    assert data == subunit_encode(event)
    assert len(data) != 64


# Every combination of optional fields and boolean flags, with every status.
FIELD_CHOICES = {
    "test_id": [None, "pkg.Test.test_ü"],
    "tags": [frozenset(), frozenset({"a"})],
    "runnable": [True, False],
    "file": [None, ("log", b"\x00\xb3binary\n")],
    "eof": [False, True],
    "mime_type": [None, "text/plain; charset=utf8"],
    "route_code": [None, "0/3"],
    "timestamp": [None, 1_700_000_000_123_456_000],
}


def _all_flag_combinations() -> list[Event]:
    combos = []
    for values in itertools.product(*FIELD_CHOICES.values()):
        fields = dict(zip(FIELD_CHOICES, values, strict=True))
        file = fields.pop("file")
        if file is not None:
            fields["file_name"], fields["file_bytes"] = file
        combos.extend(Event(status=status, **fields) for status in Status)  # type: ignore[arg-type]
    return combos


def test_every_flag_combination_matches_python_subunit_both_ways() -> None:
    combos = _all_flag_combinations()
    assert len(combos) == 2**8 * 8
    for accelerate in (True, False):
        ours = v2.encode_many(combos, accelerate=accelerate)
        assert ours == subunit_encode(*combos)
        assert v2.decode(ours, accelerate=accelerate) == combos
    assert subunit_decode(ours) == combos


@settings(max_examples=300)
@given(st.lists(events(micro_timestamps), max_size=6))
def test_our_bytes_equal_python_subunits(batch: list[Event]) -> None:
    expected = subunit_encode(*batch)
    assert v2.encode_many(batch, accelerate=True) == expected
    assert v2.encode_many(batch, accelerate=False) == expected


@settings(max_examples=300)
@given(st.lists(events(micro_timestamps), max_size=6))
def test_python_subunit_reads_what_we_write(batch: list[Event]) -> None:
    assert subunit_decode(v2.encode_many(batch)) == [canonical(e) for e in batch]


@settings(max_examples=300)
@given(st.lists(events(micro_timestamps), max_size=6))
def test_we_read_what_python_subunit_writes(batch: list[Event]) -> None:
    data = subunit_encode(*batch)
    expected = [canonical(e) for e in batch]
    assert v2.decode(data, accelerate=True) == expected
    assert v2.decode(data, accelerate=False) == expected


@settings(max_examples=200)
@given(st.lists(events(), max_size=6))
def test_round_trip_keeps_nanoseconds(batch: list[Event]) -> None:
    """The wire carries nanoseconds; python-subunit drops the last three digits, we do not."""
    data = v2.encode_many(batch)
    assert v2.decode(data) == [canonical(e) for e in batch]


def test_large_attachments_are_split_into_packets_python_subunit_reads(accelerate: bool) -> None:
    content = bytes(range(256)) * (5 * 4096 + 7)  # a little over 5 MiB
    event = Event(
        test_id="t",
        status=Status.FAIL,
        tags=frozenset({"big"}),
        file_name="dump",
        file_bytes=content,
        eof=True,
        mime_type="application/octet-stream",
        route_code="1",
        timestamp=1_700_000_000_000_000_000,
    )
    data = v2.encode(event, accelerate=accelerate)
    packets = v2.decode(data, accelerate=accelerate)
    assert len(packets) == 2
    assert all(len(v2.encode(p)) <= v2.MAX_PACKET for p in packets)
    assert b"".join(p.file_bytes for p in packets) == content
    first, last = packets
    assert (first.status, first.eof) == (Status.NONE, False)
    assert (last.status, last.eof) == (Status.FAIL, True)
    for packet in packets:
        assert (packet.test_id, packet.route_code, packet.tags) == ("t", "1", frozenset({"big"}))
    assert subunit_decode(data) == packets


def test_largest_single_packet_matches_python_subunit() -> None:
    """4,194,286 content bytes with 1-character names is exactly the 4,194,303-byte limit."""
    event = Event(test_id="x", file_name="f", file_bytes=b"q" * 4_194_286)
    data = v2.encode(event)
    assert len(data) == v2.MAX_PACKET
    assert data == subunit_encode(event)
    assert len(v2.decode(v2.encode(event._replace(file_bytes=b"q" * 4_194_287)))) == 2


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (Event(test_id="a\x00b"), "test id 'a\\x00b' contains a NUL"),
        (Event(test_id="\udc80"), "test id '\\udc80' is not valid UTF-8"),
        (Event(tags=frozenset({"x\x00"})), "tag 'x\\x00' contains a NUL"),
        (Event(file_name="f\x00", file_bytes=b""), "file name 'f\\x00' contains a NUL"),
        (Event(mime_type="t\x00"), "MIME type 't\\x00' contains a NUL"),
        (Event(route_code="\x00"), "route code '\\x00' contains a NUL"),
        (Event(timestamp=-1), "outside subunit's range"),
        (Event(timestamp=2**32 * 10**9), "outside subunit's range"),
        (Event(test_id="x" * v2.MAX_PACKET), "exceeds subunit's 4194303-byte limit"),
    ],
)
def test_encoding_rejects_what_subunit_cannot_carry(
    event: Event, message: str, accelerate: bool
) -> None:
    with pytest.raises(v2.EncodeError, match=re.escape(message)):
        v2.encode(event, accelerate=accelerate)


# ---------------------------------------------------------------- damaged input


def _stdout(events: list[Event]) -> bytes:
    return b"".join(e.file_bytes for e in events if e.test_id is None and e.file_name == "stdout")


def _tests(events: list[Event]) -> list[Event]:
    return [e for e in events if e.test_id is not None and e.test_id != v2.PARSER_TEST_ID]


def _errors(events: list[Event]) -> list[str]:
    return [
        e.file_bytes.decode()
        for e in events
        if e.test_id == v2.PARSER_TEST_ID and e.file_name == "Parser Error"
    ]


GOOD = Event(test_id="good", status=Status.SUCCESS)


def test_text_between_packets_is_coalesced_passthrough(accelerate: bool) -> None:
    data = b"hello\nworld\n" + v2.encode(GOOD) + b"more text" * 1000
    got = v2.decode(data, accelerate=accelerate)
    assert [e.file_bytes for e in got if e.test_id is None] == [
        b"hello\nworld\n",
        b"more text" * 1000,
    ]
    assert _tests(got) == [GOOD]


def test_a_stray_signature_does_not_swallow_the_next_packet(accelerate: bool) -> None:
    """python-subunit reads b3 0a b3 as flags 0x0ab3 and loses the packet; we rescan."""
    data = b"text \xb3\n" + v2.encode(GOOD)
    got = v2.decode(data, accelerate=accelerate)
    assert _tests(got) == [GOOD]
    assert _errors(got) == [
        "Unsupported subunit version 0x0 in flags 0x0ab3 (packet at stream offset 5)"
    ]
    assert _stdout(got) == b"text \xb3\n"


def _corrupt_crc(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0xFF])


def _with_crc(body: bytes) -> bytes:
    return body + zlib.crc32(body).to_bytes(4, "big")


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (_corrupt_crc(v2.encode(Event(test_id="bad"))), "Bad checksum"),
        (_with_crc(bytes([0xB3, 0x21, 0x00, 0x05])), "Packet length 5 is too short"),
        (_with_crc(bytes([0xB3, 0x29, 0x00, 0x0A, 0x05, 0x61])), "extends past end of packet"),
        (_with_crc(bytes([0xB3, 0x29, 0x00, 0x0B, 0x02, 0xFF, 0xFE])), "is not UTF8"),
        (_with_crc(bytes([0xB3, 0x29, 0x00, 0x0B, 0x02, 0x61, 0x00])), "contains NUL byte"),
        (_with_crc(bytes([0xB3, 0x31, 0x00, 0x08])), "Unsupported subunit version 0x3"),
        (_with_crc(bytes([0xB3, 0x21, 0x08, 0x08])), "Reserved flag bit"),
        (_with_crc(bytes([0xB3, 0x21, 0x00, 0xC0, 0x00, 0x00, 0x0B])), "4 byte value"),
        (
            _with_crc(bytes([0xB3, 0x21, 0x40, 0x0E, 0x01, 0x66, 0x3F]) + b"abc"),
            "File content extends past end of packet",
        ),
    ],
)
def test_bad_packets_are_reported_and_the_next_packet_survives(
    bad: bytes, message: str, accelerate: bool
) -> None:
    got = v2.decode(bad + v2.encode(GOOD), accelerate=accelerate)
    assert _tests(got) == [GOOD]
    errors = _errors(got)
    assert errors, got
    assert message in errors[0]
    diagnostic = [e for e in got if e.test_id == v2.PARSER_TEST_ID]
    assert diagnostic[0].file_name == "Packet data"
    assert diagnostic[0].mime_type == "application/octet-stream"
    assert diagnostic[1].status is Status.FAIL
    assert diagnostic[1].mime_type == "text/plain;charset=utf8"


def test_a_packet_cut_off_at_the_end_is_reported(accelerate: bool) -> None:
    data = v2.encode(GOOD) + v2.encode(Event(test_id="cut", status=Status.FAIL))[:-3]
    got = v2.decode(data, accelerate=accelerate)
    assert _tests(got) == [GOOD]
    assert "Short read" in _errors(got)[0]


def test_utf8_text_with_b3_stays_text_without_noise(accelerate: bool) -> None:
    """ó is c3 b3: the b3 is inside a character, so it is text, as in python-subunit."""
    text = "Tú óyes ³ó\n".encode()
    got = v2.decode(text.replace("³".encode(), b"") + v2.encode(GOOD), accelerate=accelerate)
    assert _errors(got) == []
    assert _tests(got) == [GOOD]


def test_a_packet_after_a_dangling_utf8_lead_byte_is_kept(accelerate: bool) -> None:
    got = v2.decode(b"caf\xc3" + v2.encode(GOOD), accelerate=accelerate)
    assert _tests(got) == [GOOD]
    assert _stdout(got) == b"caf\xc3"


@settings(max_examples=300)
@given(st.binary(max_size=400), st.booleans())
def test_fuzz_random_bytes_never_raise_and_keep_every_byte_accounted(
    data: bytes, accelerate: bool
) -> None:
    got = v2.decode(data, accelerate=accelerate)
    assert all(isinstance(e, Event) for e in got)


@settings(max_examples=300)
@given(
    st.lists(events(), min_size=1, max_size=4),
    st.binary(max_size=60),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4),
    st.booleans(),
)
def test_fuzz_garbage_before_good_packets_never_loses_them(
    good: list[Event], garbage: bytes, flips: list[tuple[int, int]], accelerate: bool
) -> None:
    """Mutated packets and random bytes, then well-formed packets: every one comes out."""
    damaged = bytearray(v2.encode_many(good) + garbage)
    for where, value in flips:
        if damaged:
            damaged[where % len(damaged)] = value
    tail = [e._replace(test_id=f"tail-{i}") for i, e in enumerate(good)]
    data = bytes(damaged) + v2.encode_many(tail)
    got = v2.decode(data, accelerate=accelerate)
    found = [e for e in got if e.test_id and e.test_id.startswith("tail-")]
    assert found[-len(tail) :] == [canonical(e) for e in tail]


@settings(max_examples=100)
@given(st.binary(max_size=2000), st.integers(1, 50))
def test_c_and_python_decoders_agree_on_anything(data: bytes, chunk: int) -> None:
    results = []
    for accelerate in (True, False):
        decoder = v2.Decoder(accelerate=accelerate)
        got: list[Event] = []
        for pos in range(0, len(data), chunk):
            got += decoder.feed(data[pos : pos + chunk])
        got += decoder.close()
        results.append(got)
    assert results[0] == results[1]


def test_decoder_refuses_input_after_close() -> None:
    decoder = v2.Decoder()
    decoder.close()
    with pytest.raises(ValueError, match="after close"):
        decoder.feed(b"x")


def test_a_huge_claimed_length_waits_for_data_then_resolves_at_close(accelerate: bool) -> None:
    """A stray signature claiming 4 MB holds the rest until the stream ends, never hangs."""
    decoder = v2.Decoder(accelerate=accelerate)
    head = bytes([0xB3, 0x29, 0x40, 0xBF, 0xFF, 0xFF])
    got = decoder.feed(head + v2.encode(GOOD))
    assert _tests(got) == []
    got += decoder.close()
    assert _tests(got) == [GOOD]


def test_work_and_diagnostics_stay_linear_on_adversarial_headers(accelerate: bool) -> None:
    """Each of these claims 4 MiB and never completes; python-subunit reads the
    file in 0.3 s, and a decoder that copied each claim would need gigabytes."""
    data = bytes.fromhex("b32000bfffff") * 20_000
    got = v2.decode(data, accelerate=accelerate)
    assert len(got) < 3 * 20_000
    assert sum(len(e.file_bytes) for e in got) < 4 * len(data)
    assert len(_errors(got)) == 1  # one truncated candidate reported, not 20,000


def test_a_bad_checksum_keeps_the_packet_in_its_diagnostic(accelerate: bool) -> None:
    bad = _corrupt_crc(v2.encode(Event(test_id="bad", status=Status.FAIL)))
    got = v2.decode(bad, accelerate=accelerate)
    data = [e.file_bytes for e in got if e.file_name == "Packet data"]
    assert data == [bad]


def test_bytes_between_the_fields_and_the_crc_are_refused(accelerate: bool) -> None:
    """python-subunit ignores them; no writer makes them, and refusing them lets a
    stray 0xB3 be rejected before its claimed bytes are checksummed."""
    padded = _with_crc(bytes([0xB3, 0x29, 0x00, 0x0C, 0x02]) + b"ab" + b"\x00")
    got = v2.decode(padded + v2.encode(GOOD), accelerate=accelerate)
    assert _tests(got) == [GOOD]
    assert "1 bytes between the last field and the CRC" in _errors(got)[0]


class _TagSet(frozenset[str]):
    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter([str(t) + "" for t in frozenset.__iter__(self)])


class _Truthy:
    def __bool__(self) -> bool:
        return True


def test_unusual_field_objects_take_the_python_encoder() -> None:
    """The C encoder borrows UTF-8 buffers; objects that could run Python code
    while they are borrowed (a frozenset subclass, a non-bool flag) go to Python."""
    plain = Event(test_id="t", tags=frozenset({"a", "b"}), runnable=True, eof=True)
    odd = plain._replace(tags=_TagSet({"a", "b"}), runnable=_Truthy(), eof=1)  # type: ignore[arg-type]
    assert v2.decode(v2.encode(odd, accelerate=True)) == [plain]
    assert v2.decode(v2.encode(odd, accelerate=False)) == [plain]


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (Event(status=9), "status 9"),  # type: ignore[arg-type]
        (Event(timestamp=1.5), "timestamp 1.5"),  # type: ignore[arg-type]
    ],
)
def test_encoding_rejects_malformed_fields(event: Event, message: str, accelerate: bool) -> None:
    with pytest.raises(v2.EncodeError, match=re.escape(message)):
        v2.encode(event, accelerate=accelerate)
