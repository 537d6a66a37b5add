"""Subunit v2 constants, and the optional C fast paths shared by the encoder and decoder."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from types import ModuleType

from proctor.wire.event import Event, Status

__all__ = [
    "ACCELERATED",
    "MAX_PACKET",
    "NON_SUBUNIT_NAME",
    "PARSER_TEST_ID",
    "SIGNATURE",
    "VERSION_2",
]

SIGNATURE = 0xB3
MAX_PACKET = 4_194_303
"""The largest packet, in bytes, signature and CRC included (2**22 - 1)."""
NON_SUBUNIT_NAME = "stdout"
PARSER_TEST_ID = "subunit.parser"

FLAG_TEST_ID = 0x0800
FLAG_ROUTE_CODE = 0x0400
FLAG_TIMESTAMP = 0x0200
FLAG_RUNNABLE = 0x0100
FLAG_TAGS = 0x0080
FLAG_FILE_CONTENT = 0x0040
FLAG_MIME_TYPE = 0x0020
FLAG_EOF = 0x0010
FLAG_RESERVED = 0x0008
VERSION_2 = 0x2000

STATUSES = tuple(Status)


def _load_speedups() -> ModuleType | None:
    """The optional C fast paths (see _speedups.c), unless PROCTOR_PURE_PYTHON is set.

    ``configure`` raises ``TypeError`` when ``Event``'s fields are not those the C
    code reads and writes by position, in its order: a changed ``Event`` fails at
    import rather than decoding into the wrong fields.
    """
    if os.environ.get("PROCTOR_PURE_PYTHON", "").strip().lower() not in ("", "0", "false", "no"):
        return None
    try:
        from proctor.wire import _speedups
    except ImportError:
        return None
    _speedups.configure(Event, STATUSES)
    return _speedups  # type: ignore[no-any-return]


_speedups = _load_speedups()
ACCELERATED = _speedups is not None
"""True when the C fast paths are in use (same results, several times faster)."""
c_scan: Callable[[bytes, int, list[Event]], int] | None = (
    _speedups.scan if _speedups is not None else None
)
c_encode: Callable[[Iterable[Event], Callable[[Event], bytes]], bytes] | None = (
    _speedups.encode if _speedups is not None else None
)
