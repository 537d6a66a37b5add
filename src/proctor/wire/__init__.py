"""Codecs: bytes in, events out, no I/O."""
