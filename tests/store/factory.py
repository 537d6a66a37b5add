"""Building test records for the store tests."""

from __future__ import annotations

from proctor.wire.event import NS_PER_SECOND, TRACEBACK_MIME_TYPE, Status
from proctor.wire.record import Attachment, TestRecord

T0 = 1_700_000_000 * NS_PER_SECOND


def record(
    test_id: str,
    status: Status = Status.SUCCESS,
    *,
    start: int | None = T0,
    seconds: float | None = 0.5,
    route: str | None = None,
    tags: frozenset[str] | set[str] = frozenset(),
    attachments: tuple[Attachment, ...] = (),
    runnable: bool = True,
) -> TestRecord:
    """A record; ``seconds=None`` leaves it untimed (stop = start)."""
    stop = None
    if start is not None:
        stop = start + (0 if seconds is None else round(seconds * NS_PER_SECOND))
    return TestRecord(
        test_id,
        status,
        route,
        start,
        stop,
        frozenset(tags),
        attachments,
        runnable,
    )


def failure(test_id: str, message: str = "boom", **kwargs: object) -> TestRecord:
    """A failed record carrying a traceback."""
    text = f'Traceback (most recent call last):\n  File "t.py", line 1\nAssertionError: {message}\n'
    traceback = Attachment(
        "traceback",
        text.encode(),
        TRACEBACK_MIME_TYPE,
    )
    return record(test_id, Status.FAIL, attachments=(traceback,), **kwargs)  # type: ignore[arg-type]
