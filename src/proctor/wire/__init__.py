"""Codecs: bytes in, events out, no I/O.

The public modules: :mod:`~proctor.wire.event` (``Event``, ``Status``, the MIME
types) and :mod:`~proctor.wire.record` (``TestRecord``), the data types every
codec speaks (``proctor.events`` re-exports them as their public home); and one
module per format, each with its decoder and encoders: :mod:`~proctor.wire.v2`
(subunit v2, with optional C fast paths), :mod:`~proctor.wire.v1` (subunit v1),
:mod:`~proctor.wire.junit` (JUnit XML) and :mod:`~proctor.wire.jsonl` (JSON
lines). The formats share names (``decode``, ``encode``), so they are reached
as modules (``proctor.wire.v2.decode``), imported on first use; the modules
named with a leading underscore are their private parts. Nothing is imported
here, not even for type checkers, so the package stays a leaf of the import
graph (``_v2_format`` imports the optional C extension, ``_speedups``, from it).
"""

from __future__ import annotations

from typing import Any

__all__ = ["event", "jsonl", "junit", "record", "v1", "v2"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'proctor.wire' has no attribute {name!r}")
    import importlib

    return importlib.import_module(f"proctor.wire.{name}")


def __dir__() -> list[str]:
    return sorted(__all__)
