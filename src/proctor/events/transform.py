"""Sinks that pass events on changed, routed or selected.

* :class:`Router` sends each event to the sink for its route code's first segment.
* :class:`TestFilter` keeps or drops whole tests, deciding on the test's final
  status, tags and id. Unlike ``subunit-filter`` it forwards the original events
  untouched: start timestamps, ``exists`` events, route codes and MIME types survive.
* :class:`Tagger` adds and removes tags on every test event.
* :class:`TimestampFiller` stamps events that have no timestamp.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

from proctor.events.sink import Sink
from proctor.wire.event import INTERIM, Event, Status

__all__ = ["Router", "Selection", "Tagger", "TestFilter", "TimestampFiller"]


class Router:
    """Routes events by the first segment of their route code.

    ``routes`` maps a segment (``"0"`` for route codes ``0`` and ``0/3``) to a
    sink. With ``consume=True`` the segment is stripped before forwarding
    (``0/3`` becomes ``3``, ``0`` becomes no route code), as a demultiplexer
    does. Events with no matching route go to ``fallback``; with no fallback
    they are dropped.
    """

    def __init__(
        self, routes: dict[str, Sink], fallback: Sink | None = None, *, consume: bool = False
    ) -> None:
        self._routes = routes
        self._fallback = fallback
        self._consume = consume

    def send(self, event: Event) -> None:
        route = event.route_code
        if route is not None:
            head, _, rest = route.partition("/")
            sink = self._routes.get(head)
            if sink is not None:
                if self._consume:
                    event = event._replace(route_code=rest or None)
                sink.send(event)
                return
        if self._fallback is not None:
            self._fallback.send(event)

    def close(self) -> None:
        seen: set[int] = set()
        for sink in (*self._routes.values(), self._fallback):
            if sink is not None and id(sink) not in seen:
                seen.add(id(sink))
                sink.close()


@dataclass(frozen=True, slots=True)
class Selection:
    """Which tests to keep.

    A test is kept when its final status is in ``statuses`` (None: any), it has
    every tag in ``with_tags`` and none in ``without_tags``, its id matches
    ``include`` (if given) and does not match ``exclude`` (if given). Regexes
    are searched, not anchored, as in subunit-filter and stestr.
    """

    statuses: frozenset[Status] | None = None
    with_tags: frozenset[str] = frozenset()
    without_tags: frozenset[str] = frozenset()
    include: re.Pattern[str] | None = None
    exclude: re.Pattern[str] | None = None

    def keeps(self, test_id: str, status: Status, tags: Collection[str]) -> bool:
        if self.statuses is not None and status not in self.statuses:
            return False
        if self.with_tags and not self.with_tags.issubset(tags):
            return False
        if self.without_tags and not self.without_tags.isdisjoint(tags):
            return False
        if self.include is not None and self.include.search(test_id) is None:
            return False
        return self.exclude is None or self.exclude.search(test_id) is None


class _Pending:
    __slots__ = ("events", "tags")

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.tags: frozenset[str] = frozenset()


class TestFilter:
    """Keeps the tests a :class:`Selection` (or any predicate) accepts.

    A test's events are held until its final status and then forwarded, all of
    them and unchanged, or dropped. Tests still open at :meth:`close` are
    judged with the status they reached (``INPROGRESS`` or ``NONE``). Events
    without a test id pass through unless ``keep_other`` is False.
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        sink: Sink,
        selection: Selection | Callable[[str, Status, frozenset[str]], bool],
        *,
        keep_other: bool = True,
    ) -> None:
        self._sink = sink
        self._keeps = selection.keeps if isinstance(selection, Selection) else selection
        self._keep_other = keep_other
        self._pending: dict[tuple[str, str | None], _Pending] = {}

    def send(self, event: Event) -> None:
        test_id = event.test_id
        if test_id is None:
            if self._keep_other:
                self._sink.send(event)
            return
        key = (test_id, event.route_code)
        pending = self._pending.get(key)
        status = event.status
        if pending is None:
            if status not in INTERIM:  # a whole test in one event
                if self._keeps(test_id, status, event.tags):
                    self._sink.send(event)
                return
            pending = self._pending[key] = _Pending()
        pending.events.append(event)
        if event.tags:
            pending.tags = event.tags
        if status not in INTERIM:
            del self._pending[key]
            self._flush(test_id, status, pending)

    def _flush(self, test_id: str, status: Status, pending: _Pending) -> None:
        if self._keeps(test_id, status, pending.tags):
            send = self._sink.send
            for held in pending.events:
                send(held)

    def close(self) -> None:
        pending, self._pending = self._pending, {}
        for (test_id, _route), held in pending.items():
            reached = max((e.status for e in held.events), default=Status.NONE)
            self._flush(test_id, Status(reached), held)
        self._sink.close()


class Tagger:
    """Adds ``add`` and removes ``remove`` from the tags of every test event."""

    def __init__(self, sink: Sink, add: Iterable[str] = (), remove: Iterable[str] = ()) -> None:
        self._sink = sink
        self._add = frozenset(add)
        self._remove = frozenset(remove)

    def send(self, event: Event) -> None:
        if event.test_id is not None:
            tags = (event.tags | self._add) - self._remove
            if tags != event.tags:
                event = event._replace(tags=tags)
        self._sink.send(event)

    def close(self) -> None:
        self._sink.close()


class TimestampFiller:
    """Gives every event without a timestamp the clock's current time (ns)."""

    def __init__(self, sink: Sink, clock: Callable[[], int] = time.time_ns) -> None:
        self._sink = sink
        self._clock = clock

    def send(self, event: Event) -> None:
        if event.timestamp is None:
            event = event._replace(timestamp=self._clock())
        self._sink.send(event)

    def close(self) -> None:
        self._sink.close()
