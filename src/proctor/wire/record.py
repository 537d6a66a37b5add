"""The test record: everything a stream says about one test, assembled.

Records are built from events by ``proctor.events.RecordCollector`` and are what
reporters, codecs that need whole tests (JUnit XML, subunit v1), the store and
triage consume. They live beside ``Event`` at the bottom of the layers so that
codecs can speak them; ``proctor.events`` is their public home.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from proctor.wire.event import DEFAULT_MIME_TYPE, NS_PER_SECOND, Status

__all__ = [
    "Attachment",
    "TestRecord",
    "worker_of",
]


@dataclass(frozen=True, slots=True)
class Attachment:
    """One file of a test: a traceback, a skip reason, captured output."""

    name: str
    content: bytes
    mime_type: str = DEFAULT_MIME_TYPE

    def text(self) -> str:
        """The content as text (UTF-8, undecodable bytes replaced)."""
        return self.content.decode("utf-8", "replace")


class TestRecord(NamedTuple):
    """One test's outcome: id, route, status, times, tags and attachments.

    ``status`` is the final status, or ``INPROGRESS`` / ``NONE`` for a test the
    stream started but never finished (see :attr:`finished`). ``start`` and
    ``stop`` are nanoseconds since the epoch: the first and the last timestamp
    the stream gave the test.

    Immutable and slotted like :class:`~proctor.wire.event.Event`, and a
    ``NamedTuple`` for the same reason: one is built for every test of every
    stream that is shown, converted or stored (0.25 us against 0.7 us for a
    frozen slotted dataclass). Use ``_replace`` for a changed copy.
    """

    test_id: str
    status: Status
    route_code: str | None = None
    start: int | None = None
    stop: int | None = None
    tags: frozenset[str] = frozenset()
    attachments: tuple[Attachment, ...] = ()
    runnable: bool = True

    @property
    def finished(self) -> bool:
        """Whether the stream gave this test a final status."""
        return self.status.is_final

    @property
    def duration(self) -> float | None:
        """Seconds from first to last timestamp; None when either is unknown or
        the test never finished (its real running time is unknown)."""
        if self.start is None or self.stop is None or not self.status.is_final:
            return None
        return (self.stop - self.start) / NS_PER_SECOND

    @property
    def worker(self) -> str | None:
        """Which worker ran the test (see :func:`worker_of`)."""
        return worker_of(self.route_code, self.tags)

    def attachment(self, name: str) -> Attachment | None:
        """The first attachment called ``name``, if any."""
        for item in self.attachments:
            if item.name == name:
                return item
        return None


# Not a pytest test class, despite the name (a NamedTuple cannot declare it in its body).
setattr(TestRecord, "__test__", False)  # noqa: B010


def worker_of(route_code: str | None, tags: frozenset[str]) -> str | None:
    """The worker that ran a test: the first segment of its route code, else a
    ``worker-N`` tag (stestr's convention), else None."""
    if route_code:
        return route_code.split("/", 1)[0]
    for tag in tags:
        if tag.startswith("worker-"):
            return tag[len("worker-") :]
    return None
