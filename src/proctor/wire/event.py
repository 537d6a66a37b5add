"""The event: one fact about a test run, mirroring one subunit v2 packet.

Every field of a v2 packet has a field here and nothing else does, so any event
can be written, read, filtered, routed and stored without loss.

``Event`` is an immutable, slotted ``NamedTuple`` rather than a frozen dataclass
because its construction is on the decoder's hot path. Measured on the
development machine (Python 3.11, ``bench/event_construction.py``):
a frozen slotted dataclass costs about 880 ns to build with keywords, a
NamedTuple about 290 ns with keywords and about 80 ns through ``tuple.__new__``
(what the decoder uses). The decoder's whole budget is under 2 us per event.

The price is tuple behaviour (indexing, equality with plain tuples), and Proctor
uses it on purpose, on the hot paths only: :func:`new_event` builds an event
from its ten fields in order (the decoders, the unittest adapter, the
controller's routing), the collector and the controller unpack an event in one
statement, and the C codec reads and writes the fields by position. The field
order is therefore a contract: ``tests/wire/test_event.py`` pins it, and the C
codec checks ``Event._fields`` when it is configured.

The outcome ranking and the MIME types of the attachments Proctor writes live
here too, beside :class:`Status`, so every adapter agrees on them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple, TypeAlias

__all__ = [
    "DEFAULT_MIME_TYPE",
    "INTERIM",
    "NS_PER_SECOND",
    "OUTCOME_RANK",
    "SIMPLE_TRACEBACK_MIME_TYPE",
    "TEXT_MIME_TYPE",
    "TRACEBACK_MIME_TYPE",
    "Event",
    "EventFields",
    "Status",
    "datetime_to_ns",
    "new_event",
    "ns_to_datetime",
    "worse_outcome",
]

NS_PER_SECOND = 1_000_000_000
if TYPE_CHECKING:
    import datetime as _dt


class Status(enum.IntEnum):
    """The eight test statuses of subunit v2, with their wire values."""

    NONE = 0
    EXISTS = 1
    INPROGRESS = 2
    SUCCESS = 3
    UXSUCCESS = 4
    SKIP = 5
    FAIL = 6
    XFAIL = 7

    @property
    def wire_name(self) -> str | None:
        """The StreamResult spelling (``'success'``...), ``None`` for NONE."""
        return _WIRE_NAMES[self]

    @property
    def is_final(self) -> bool:
        """True for a status that ends a test (everything but NONE and INPROGRESS)."""
        return self not in INTERIM

    @property
    def is_failure(self) -> bool:
        """True when the status fails a run: ``fail`` and ``uxsuccess``."""
        return self is Status.FAIL or self is Status.UXSUCCESS

    @classmethod
    def from_wire_name(cls, name: str | None) -> Status:
        """The status for a StreamResult spelling; ``None`` gives NONE.

        Raises ``ValueError`` naming the accepted spellings for anything else.
        """
        try:
            return _BY_WIRE_NAME[name]
        except KeyError:
            accepted = ", ".join(n for n in _BY_WIRE_NAME if n)
            raise ValueError(f"unknown test status {name!r}; expected one of {accepted}") from None


INTERIM: frozenset[Status] = frozenset({Status.NONE, Status.INPROGRESS})
"""The statuses that do not end a test; every other status is final."""

_WIRE_NAMES: dict[Status, str | None] = {
    Status.NONE: None,
    Status.EXISTS: "exists",
    Status.INPROGRESS: "inprogress",
    Status.SUCCESS: "success",
    Status.UXSUCCESS: "uxsuccess",
    Status.SKIP: "skip",
    Status.FAIL: "fail",
    Status.XFAIL: "xfail",
}
_BY_WIRE_NAME: dict[str | None, Status] = {v: k for k, v in _WIRE_NAMES.items()}

OUTCOME_RANK: Mapping[Status, int] = {
    Status.NONE: 0,
    Status.SUCCESS: 1,
    Status.SKIP: 2,
    Status.XFAIL: 3,
    Status.UXSUCCESS: 4,
    Status.FAIL: 5,
}
"""How bad an outcome is: a test with several gets the worst (fail > uxsuccess > xfail > skip >
success > none). Shared by everything that folds a test's outcomes into one final status (the
unittest and pytest adapters, the JUnit reader). ``EXISTS`` and ``INPROGRESS`` are no outcome."""


def worse_outcome(current: Status, new: Status) -> Status:
    """The worse of two outcomes by :data:`OUTCOME_RANK` (``current`` when they rank equal)."""
    return new if OUTCOME_RANK[new] > OUTCOME_RANK[current] else current


DEFAULT_MIME_TYPE = "application/octet-stream"
"""The MIME type of a file that was given none (subunit's default)."""
TRACEBACK_MIME_TYPE = 'text/x-traceback; charset="utf8"; language="python"'
"""What python-subunit/testtools label a Python traceback attachment with."""
TEXT_MIME_TYPE = "text/plain; charset=utf8"
"""What python-subunit/testtools label text (a skip reason, captured output) with."""
SIMPLE_TRACEBACK_MIME_TYPE = 'text/x-traceback; charset="utf8"'
"""A traceback whose language is not known (subunit-1to2's label for a v1 ``[`` block's
traceback; also what a JUnit XML failure's text becomes)."""


class Event(NamedTuple):
    """One subunit v2 packet as a value.

    ``file_name`` is not None exactly when the packet carries file content
    (``file_bytes``, possibly empty). ``timestamp`` is integer nanoseconds since
    the Unix epoch (UTC): the wire carries nanoseconds, and a ``datetime`` would
    drop the last three digits and cost more to build. ``tags`` empty means the
    packet carries no tags. ``runnable`` defaults to True, as in python-subunit.
    """

    test_id: str | None = None
    status: Status = Status.NONE
    tags: frozenset[str] = frozenset()
    runnable: bool = True
    file_name: str | None = None
    file_bytes: bytes = b""
    eof: bool = False
    mime_type: str | None = None
    route_code: str | None = None
    timestamp: int | None = None

    @property
    def datetime(self) -> _dt.datetime | None:
        """The timestamp as an aware UTC datetime (microsecond precision)."""
        return None if self.timestamp is None else ns_to_datetime(self.timestamp)


EventFields: TypeAlias = tuple[
    str | None,  # test_id
    Status,  # status
    frozenset[str],  # tags
    bool,  # runnable
    str | None,  # file_name
    bytes,  # file_bytes
    bool,  # eof
    str | None,  # mime_type
    str | None,  # route_code
    int | None,  # timestamp
]
""":class:`Event`'s ten fields, in order: what :func:`new_event` takes."""

if TYPE_CHECKING:

    def new_event(cls: type[Event], fields: EventFields, /) -> Event:
        """An :class:`Event` from its ten fields in order, built fast (see the module docstring).

        ``new_event(Event, (test_id, status, tags, runnable, file_name, file_bytes, eof,
        mime_type, route_code, timestamp))``: ``tuple.__new__`` itself, typed, so mypy
        checks the count and the types of the fields. About 80 ns, against 290 ns for
        ``Event(...)`` with keywords.
        """
        ...

else:
    new_event = tuple.__new__


def _epoch() -> _dt.datetime:
    # datetime is imported on first use: a worker or a stream command rarely needs it.
    import datetime

    return datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def datetime_to_ns(moment: _dt.datetime) -> int:
    """Nanoseconds since the epoch for an aware datetime.

    Raises ``ValueError`` for a naive datetime rather than guessing its zone.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"timestamp {moment!r} has no time zone; pass an aware datetime")
    delta = moment - _epoch()
    return (delta.days * 86_400 + delta.seconds) * NS_PER_SECOND + delta.microseconds * 1000


def ns_to_datetime(ns: int) -> _dt.datetime:
    """The aware UTC datetime for nanoseconds since the epoch, to the nearest
    microsecond (rounded as python-subunit rounds what it reads)."""
    seconds, nanos = divmod(ns, NS_PER_SECOND)
    import datetime

    return _epoch() + datetime.timedelta(seconds=seconds, microseconds=nanos / 1000)
