"""Where what a run produces goes: events to the sink and the record collector,
a worker's own output to the sink (as ``stderr`` on its route) and the reporter."""

from __future__ import annotations

from collections.abc import Callable

from proctor.events.collector import RecordCollector
from proctor.events.sink import Sink
from proctor.runner.report import RunReporter
from proctor.runner.slot import Slot
from proctor.wire.event import TEXT_MIME_TYPE, Event

__all__ = ["Outlet"]


class Outlet:
    """The run's event sink, record collector and reporter, for the events and
    output the controller passes on (see the module docstring)."""

    def __init__(
        self,
        sink: Sink,
        collector: RecordCollector,
        reporter: RunReporter,
        time_ns: Callable[[], int],
    ) -> None:
        self.sink = sink
        self.collector = collector
        self._reporter = reporter
        self._time_ns = time_ns

    def send(self, event: Event) -> None:
        """An event the controller made or routed: to the collector and the sink."""
        self.collector.send(event)
        self.sink.send(event)

    def flush_output(self, slot: Slot, end: int | None = None, more: bytes = b"") -> None:
        """Pass on what the worker wrote (outside its tests' capture) that was not
        passed on yet, up to offset ``end``, then ``more`` (just arrived, not kept
        yet): to the sink as ``stderr`` on its route, and to the reporter."""
        stop = len(slot.output) if end is None else end
        data = more
        if stop > slot.shown:
            data = bytes(slot.output[slot.shown : stop]) + more
            slot.shown = stop
        if not data:
            return
        self.sink.send(
            Event(
                file_name="stderr",
                file_bytes=data,
                mime_type=TEXT_MIME_TYPE,
                route_code=slot.route,
                timestamp=self._time_ns(),
            )
        )
        self._reporter.output(slot.worker, data)
