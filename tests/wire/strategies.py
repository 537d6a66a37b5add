"""Hypothesis strategies for events and streams, shared by the wire and events tests."""

from __future__ import annotations

from hypothesis import strategies as st

from proctor.wire.event import Event, Status

# Text subunit can carry: any Unicode scalar except NUL and surrogates.
wire_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=20,
)
small_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=8,
)
# Up to 2**32 - 1 seconds, any nanosecond below 10**9.
timestamps = st.builds(
    lambda s, ns: s * 1_000_000_000 + ns,
    st.integers(0, 2**32 - 1),
    st.integers(0, 999_999_999),
)
# python-subunit writes microseconds * 1000: these survive its datetime round trip.
micro_timestamps = st.builds(
    lambda s, us: s * 1_000_000_000 + us * 1000,
    st.integers(0, 2**32 - 1),
    st.integers(0, 999_999),
)


@st.composite
def events(
    draw: st.DrawFn,
    timestamp_strategy: st.SearchStrategy[int] = timestamps,
    max_content: int = 300,
) -> Event:
    """Any event subunit v2 can carry, each optional field present or absent."""
    has_file = draw(st.booleans())
    return Event(
        test_id=draw(st.none() | wire_text),
        status=draw(st.sampled_from(Status)),
        tags=draw(st.frozensets(small_text, max_size=3)),
        runnable=draw(st.booleans()),
        file_name=draw(wire_text) if has_file else None,
        file_bytes=draw(st.binary(max_size=max_content)) if has_file else b"",
        eof=draw(st.booleans()),
        mime_type=draw(st.none() | small_text),
        route_code=draw(st.none() | wire_text),
        timestamp=draw(st.none() | timestamp_strategy),
    )


def canonical(event: Event) -> Event:
    """The event as a decoder returns it: an empty MIME type is not written."""
    if event.mime_type == "":
        return event._replace(mime_type=None)
    return event
