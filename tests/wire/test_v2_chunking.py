"""The subunit v2 decoder gives the same events whatever the read boundaries:
damaged and intact streams, fed in random chunkings, against whole-buffer
decoding, on the pure-Python and the C paths."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proctor.wire import v2
from proctor.wire.event import Event, Status
from tests.wire.strategies import events

GOOD = Event(test_id="good", status=Status.SUCCESS)
TEXT = Event(file_name=v2.NON_SUBUNIT_NAME)


def coalesce(got: list[Event]) -> list[Event]:
    """Join adjacent passthrough text: where a feed ends splits text, nothing else."""
    out: list[Event] = []
    for event in got:
        if event._replace(file_bytes=b"") == TEXT and out:
            last = out[-1]
            if last._replace(file_bytes=b"") == TEXT:
                out[-1] = last._replace(file_bytes=last.file_bytes + event.file_bytes)
                continue
        out.append(event)
    return out


def chunked(data: bytes, cuts: list[int], accelerate: bool) -> list[Event]:
    decoder = v2.Decoder(accelerate=accelerate)
    got: list[Event] = []
    pos = 0
    for size in itertools.cycle(cuts):
        if pos >= len(data):
            break
        got += decoder.feed(data[pos : pos + size])
        pos += size
    return got + decoder.close()


# Damage that a real stream meets: stray bytes, a UTF-8 lead byte whose
# character was cut, text holding 0xB3 inside characters, a cut-off packet.
_damage = st.sampled_from(
    [b"", b"\xb3", b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98", "ó ".encode(), "ó, sí\n".encode()]
) | st.binary(max_size=12)


@st.composite
def damaged_streams(draw: st.DrawFn) -> bytes:
    """Packets with damage between them, bytes flipped, and sometimes a tail cut."""
    batch = draw(st.lists(events(max_content=80), min_size=1, max_size=5))
    parts: list[bytes] = []
    for event in batch:
        parts.append(draw(_damage))
        parts.append(v2.encode(event))
    parts.append(draw(_damage))
    data = bytearray(b"".join(parts))
    for where, value in draw(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)))):
        data[where % len(data)] = value
    if draw(st.booleans()):
        del data[draw(st.integers(0, len(data))) :]
    return bytes(data)


_cuts = st.lists(st.integers(1, 40), min_size=1, max_size=30)


@settings(max_examples=150, deadline=None)
@given(damaged_streams(), _cuts, st.booleans())
def test_any_chunking_of_a_damaged_stream_decodes_as_the_whole_buffer(
    data: bytes, cuts: list[int], accelerate: bool
) -> None:
    whole = v2.decode(data, accelerate=accelerate)
    assert coalesce(chunked(data, cuts, accelerate)) == coalesce(whole)


@pytest.mark.slow
@settings(max_examples=1500, deadline=None)
@given(damaged_streams(), _cuts, st.booleans())
def test_any_chunking_of_a_damaged_stream_decodes_as_the_whole_buffer_thoroughly(
    data: bytes, cuts: list[int], accelerate: bool
) -> None:
    """The same property, ten times as many examples (the slow tier)."""
    whole = v2.decode(data, accelerate=accelerate)
    assert coalesce(chunked(data, cuts, accelerate)) == coalesce(whole)


@settings(max_examples=100, deadline=None)
@given(damaged_streams(), _cuts)
def test_c_and_python_agree_on_chunked_damaged_streams(data: bytes, cuts: list[int]) -> None:
    assert coalesce(chunked(data, cuts, True)) == coalesce(chunked(data, cuts, False))
    assert v2.decode(data, accelerate=True) == v2.decode(data, accelerate=False)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(events(), min_size=1, max_size=5),
    st.lists(st.integers(1, 64), min_size=1, max_size=40),
    st.booleans(),
)
def test_any_chunking_of_an_intact_stream_gives_its_events(
    batch: list[Event], cuts: list[int], accelerate: bool
) -> None:
    noise = Event(file_name=v2.NON_SUBUNIT_NAME, file_bytes=b"noise\n")
    trailing = noise._replace(file_bytes="trailing ó\n".encode())
    data = noise.file_bytes + v2.encode_many(batch) + trailing.file_bytes
    expected = coalesce([noise, *(v2.decode(v2.encode(e))[0] for e in batch), trailing])
    assert coalesce(chunked(data, cuts, accelerate)) == expected


@pytest.mark.parametrize("lead", [b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98", b"\xe2"])
def test_a_packet_after_a_dangling_lead_byte_survives_every_split(
    lead: bytes, accelerate: bool
) -> None:
    """The case that was read as text in 23 of 40 random chunkings."""
    data = b"caf" + lead + v2.encode(GOOD) + b"tail"
    whole = coalesce(v2.decode(data, accelerate=accelerate))
    assert [e for e in whole if e.test_id] == [GOOD]
    for cut in range(1, len(data)):
        assert coalesce(chunked(data, [cut], accelerate)) == whole, cut
        decoder = v2.Decoder(accelerate=accelerate)
        got = decoder.feed(data[:cut]) + decoder.feed(data[cut:]) + decoder.close()
        assert coalesce(got) == whole, cut
    rng = random.Random(7)
    for _ in range(40):
        cuts = [rng.randint(1, 8) for _ in range(10)]
        assert coalesce(chunked(data, cuts, accelerate)) == whole, cuts


def test_text_with_b3_inside_characters_is_not_held_back(accelerate: bool) -> None:
    """Waiting for a candidate inside a character must not stall ordinary text:
    what cannot begin a valid packet is given out in the same feed."""
    decoder = v2.Decoder(accelerate=accelerate)
    text = "Está ó, sí. Ó bien ó\n".encode()
    got = decoder.feed(text)
    assert b"".join(e.file_bytes for e in got) == text
    assert decoder.close() == []


def test_a_plausible_candidate_inside_a_character_waits_then_resolves(
    accelerate: bool,
) -> None:
    """A lead byte and then the start of a real packet: the decoder waits for
    the rest rather than turning the packet's first bytes into text."""
    packet = v2.encode(GOOD)
    decoder = v2.Decoder(accelerate=accelerate)
    first = decoder.feed(b"x\xc3" + packet[:5])
    assert b"".join(e.file_bytes for e in first) == b"x\xc3"
    rest = decoder.feed(packet[5:]) + decoder.close()
    assert rest == [GOOD]
