"""Subunit v2: an encoder and an incremental decoder, bytes in and events out, no I/O.

The packet layout, flag bits and python-subunit's behaviour are described in
docs/architecture.md ("The wire layer"). In short::

    0xB3 | flags (u16 BE) | length (varint, whole packet) | timestamp? | test id?
         | tags? | MIME type? | file (name, length, bytes)? | route code? | CRC-32 (u32 BE)

The encoder produces exactly python-subunit's bytes for every event that
python-subunit can encode, validates strings (UTF-8, no NUL) before writing, and
splits file content too large for one packet into several packets.

The decoder accepts any chunking of its input. Bytes that are not packets become
``stdout`` file events, one per contiguous run (never one per byte). A bad packet
(bad CRC, length under 8, fields overrunning the packet, invalid UTF-8 or NUL in
a string, a version other than 2, bit 3 set, a truncated packet at the end of the
stream) becomes the two ``subunit.parser`` diagnostic events python-subunit emits,
and the decoder rescans from the byte after the bad signature, so a stray 0xB3 in
text never swallows the good packet that follows it.
"""

from __future__ import annotations

from proctor.wire._v2_decode import Decoder, decode
from proctor.wire._v2_encode import EncodeError, encode, encode_many
from proctor.wire._v2_format import (
    ACCELERATED,
    MAX_PACKET,
    NON_SUBUNIT_NAME,
    PARSER_TEST_ID,
    SIGNATURE,
)

__all__ = [
    "ACCELERATED",
    "MAX_PACKET",
    "NON_SUBUNIT_NAME",
    "PARSER_TEST_ID",
    "SIGNATURE",
    "Decoder",
    "EncodeError",
    "decode",
    "encode",
    "encode_many",
]
