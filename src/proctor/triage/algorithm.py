"""The name of the current signature algorithm, on its own so that reading
stored signatures (`proctor last`) does not import the algorithm itself."""

from __future__ import annotations

__all__ = ["ALGORITHM"]

ALGORITHM = "frames-v1"
"""Stored with every signature; a change to what a key hashes to needs a new name."""
