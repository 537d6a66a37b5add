"""What a failing record is signed from (light: `proctor last` shows it without
importing the algorithm)."""

from __future__ import annotations

from proctor.wire.record import TestRecord

__all__ = ["failure_text"]


def failure_text(record: TestRecord) -> str:
    """What a failing record is signed from: its tracebacks (subtests' too),
    else its reason; empty when it has neither."""
    texts = [a for a in record.attachments if a.name.split(" ", 1)[0].startswith("traceback")]
    if not texts:
        texts = [a for a in record.attachments if a.name == "reason"]
    return "\n".join(a.text() for a in texts)
