"""Attachment contents, stored once each: addressing and compression.

Every attachment (a traceback, captured output, a skip reason) is stored as a
*blob* keyed by the SHA-256 of its content, so the same traceback from a test
that fails in 500 runs takes the space of one, and a result links to it with
its own name and MIME type. Contents of :data:`COMPRESS_AT` bytes or more are
zlib-compressed when that saves space; the codec is recorded per blob so that
reading never guesses and a better codec can be added without rewriting old
blobs. zlib because it is in the standard library on every Python we support
(``compression.zstd`` arrives only in 3.14).
"""

from __future__ import annotations

import zlib

from proctor.store.errors import StoreError

__all__ = ["COMPRESS_AT", "RAW", "ZLIB", "decode_blob", "digest", "encode_blob"]

RAW = 0
ZLIB = 1
COMPRESS_AT = 128
"""Smaller contents are stored as they are: zlib's header and checksum would eat the gain."""
_LEVEL = 6


def digest(content: bytes) -> bytes:
    """The content address: SHA-256, 32 bytes."""
    import hashlib  # here, not at the top: readers never hash, and OpenSSL takes ms to load

    return hashlib.sha256(content).digest()


def encode_blob(content: bytes) -> tuple[int, bytes]:
    """``(codec, data)`` to store for ``content``."""
    if len(content) >= COMPRESS_AT:
        packed = zlib.compress(content, _LEVEL)
        if len(packed) < len(content):
            return ZLIB, packed
    return RAW, content


def decode_blob(codec: int, data: bytes) -> bytes:
    """The original content of a stored blob."""
    if codec == RAW:
        return bytes(data)
    if codec == ZLIB:
        return zlib.decompress(data)
    raise StoreError(
        f"an attachment is stored with codec {codec}, which this Proctor does not know; "
        "upgrade Proctor to read it"
    )
