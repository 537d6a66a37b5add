"""The sink protocol: where events go.

A sink takes events one at a time with :meth:`Sink.send` and is told the stream
ended with :meth:`Sink.close`. Sinks compose: a tee sends to several, a filter
or a tagger wraps another. Every sink in Proctor follows this protocol and
nothing else, so any of them can be put after any other.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from proctor.wire.event import Event

__all__ = ["CallbackSink", "ListSink", "NullSink", "Sink", "Tee"]


@runtime_checkable
class Sink(Protocol):
    """Consumes a stream of events."""

    def send(self, event: Event) -> None:
        """Take one event."""

    def close(self) -> None:
        """The stream has ended: flush whatever is held."""


class NullSink:
    """Discards everything."""

    def send(self, event: Event) -> None:
        pass

    def close(self) -> None:
        pass


class ListSink:
    """Keeps every event in :attr:`events` (for tests and small streams)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.closed = False

    def send(self, event: Event) -> None:
        self.events.append(event)

    def close(self) -> None:
        self.closed = True


class CallbackSink:
    """Calls a function for each event."""

    def __init__(self, callback: _EventCallback) -> None:
        self._callback = callback

    def send(self, event: Event) -> None:
        self._callback(event)

    def close(self) -> None:
        pass


class _EventCallback(Protocol):
    def __call__(self, event: Event, /) -> None: ...


class Tee:
    """Sends every event to each of several sinks, in order."""

    def __init__(self, *sinks: Sink) -> None:
        self._sinks = sinks

    def send(self, event: Event) -> None:
        for sink in self._sinks:
            sink.send(event)

    def close(self) -> None:
        for sink in self._sinks:
            sink.close()
