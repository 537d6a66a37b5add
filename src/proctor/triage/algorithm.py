"""The name of the current signature algorithm, on its own so that reading
stored signatures (`proctor last`) and starting a run that stores them do not
import the algorithm itself."""

from __future__ import annotations

__all__ = ["ALGORITHM", "algorithm_name"]

ALGORITHM = "frames-v1"
"""Stored with every signature; a change to what a key hashes to needs a new name."""


def algorithm_name(*, depth: int | None = 1, source: bool = True) -> str:
    """The algorithm's name with these options: anything but the defaults
    (one project frame per site, keyed by its source line) is named in it."""
    if depth == 1 and source:
        return ALGORITHM
    shown = "all" if depth is None else depth
    return f"{ALGORITHM};depth={shown};source={'on' if source else 'off'}"
