"""Generated result streams for the history command tests."""

from __future__ import annotations

from collections.abc import Iterable

from proctor.wire import v2
from proctor.wire.event import NS_PER_SECOND, Event, Status

T0 = 1_700_000_000 * NS_PER_SECOND
TRACEBACK_MIME = 'text/x-traceback; charset="utf8"; language="python"'


def traceback_for(test_id: str, message: str = "1 != 2") -> bytes:
    return (
        "Traceback (most recent call last):\n"
        f'  File "tests/{test_id}.py", line 7, in {test_id.rsplit(".", 1)[-1]}\n'
        "    self.assertEqual(1, 2)\n"
        f"AssertionError: {message}\n"
    ).encode()


def events_for(
    outcomes: dict[str, Status],
    *,
    start: int = T0,
    seconds: dict[str, float] | None = None,
    workers: int = 2,
) -> list[Event]:
    """One test after another, ``worker-N`` tagged, failures with tracebacks."""
    events: list[Event] = []
    now = start
    for index, (test_id, status) in enumerate(outcomes.items()):
        tags = frozenset({f"worker-{index % workers}"})
        took = round((seconds or {}).get(test_id, 0.01 * (index + 1)) * NS_PER_SECOND)
        events.append(Event(test_id, Status.INPROGRESS, tags, timestamp=now))
        if status in (Status.FAIL, Status.UXSUCCESS):
            events.append(
                Event(
                    test_id,
                    file_name="traceback",
                    file_bytes=traceback_for(test_id),
                    eof=True,
                    mime_type=TRACEBACK_MIME,
                )
            )
        if status is Status.SKIP:
            events.append(
                Event(
                    test_id,
                    file_name="reason",
                    file_bytes=b"needs a network",
                    eof=True,
                    mime_type="text/plain; charset=utf8",
                )
            )
        now += took
        if status is not Status.INPROGRESS:
            events.append(Event(test_id, status, tags, timestamp=now))
    return events


def stream(outcomes: dict[str, Status], **kwargs: object) -> bytes:
    """``events_for`` as subunit v2 bytes."""
    return v2.encode_many(events_for(outcomes, **kwargs))  # type: ignore[arg-type]


def passing(names: Iterable[str]) -> dict[str, Status]:
    return dict.fromkeys(names, Status.SUCCESS)
