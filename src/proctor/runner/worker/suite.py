"""What a framework adapter gives the worker, and what the worker gives it.

A :class:`Suite` is a discovered test suite, loaded once: it lists its ids and
runs any of them, in the order asked, as many times as asked, in one process.
Its promise to the controller: **every id in a run gets exactly one final
status** (unless the process dies): an id nobody knows fails with a ``reason``
saying so; a test its framework did not run because a class or module fixture
failed gets the fixture's verdict. Fixtures shared by consecutive tests stay
up between runs and are torn down when a later test no longer needs them, or
by :meth:`Suite.close`.

A :class:`Runtime` is the worker's side: the results sink, the captured output
and the clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from proctor.events.emit import ending_events, status_event
from proctor.runner.worker.channels import ResultsWriter
from proctor.wire.event import TEXT_MIME_TYPE, Event, Status
from proctor.wire.record import Attachment

__all__ = [
    "OutputControl",
    "Runtime",
    "Suite",
    "SuiteBody",
    "emit_outcome",
    "emit_stray_output",
    "suites_differ",
]


class OutputControl(Protocol):
    """The worker's output capture, as a suite sees it."""

    @property
    def paths(self) -> dict[str, str]: ...

    def take(self) -> list[Attachment]: ...

    def go_live(self) -> None: ...

    def close(self) -> None: ...


class Suite(Protocol):
    """A loaded test suite (see the module docstring)."""

    framework: str

    def test_ids(self) -> Sequence[str]:
        """Every test, in discovery order."""
        ...

    def run(self, ids: Sequence[str]) -> int:
        """Run these tests in this order; return how many final statuses were sent."""
        ...

    def current_test_id(self) -> str | None:
        """The test under way (for naming it in a stdin request), if any."""
        ...

    def close(self) -> None:
        """Tear down every fixture still up (their failures are reported)."""
        ...


SuiteBody = Callable[[Suite], None]
"""What the worker does with a loaded suite (serve commands, or run once)."""


@dataclass
class Runtime:
    """The worker's side of a suite: where events go and where output comes from."""

    sink: ResultsWriter
    output: OutputControl
    capture: bool = True
    clock: Callable[[], int] = field(default=time.time_ns)
    post_mortem: bool = False
    """``--pdb``: the debugger at each failure or error, in the failing frame."""
    server: bool = False
    """Server mode: a controller reads the results (control events may be sent).

    The worker then runs in a session of its own, so a SIGINT it gets is never
    the user's Ctrl-C: a ``KeyboardInterrupt`` raised inside a test fails that
    test and the run goes on. One-shot mode stops there, as unittest and
    pytest do.
    """


def emit_outcome(
    runtime: Runtime,
    test_id: str,
    status: Status,
    text: str,
    *,
    name: str = "reason",
    mime_type: str = TEXT_MIME_TYPE,
    runnable: bool = True,
    more: Sequence[Attachment] = (),
) -> None:
    """A final status with one attachment (and ``more``), for a test that never ran code here.

    ``inprogress`` comes first so that the test has a start time like any other.
    """
    now = runtime.clock()
    send = runtime.sink.send
    send(status_event(test_id, Status.INPROGRESS, now))
    files = [Attachment(name, text.encode("utf-8", "replace"), mime_type), *more]
    for event in ending_events(test_id, status, files, now, runnable=runnable):
        send(event)


def suites_differ(test_id: str, where: str) -> str:
    """The reason for an id this worker lacks because ``where`` failed to load here."""
    return (
        f"No test with id {test_id!r} was found in this worker: {where} failed here "
        "(the traceback is attached), though the worker that listed the tests loaded it. "
        "The suites differ between workers (an import that depends on the process, "
        "the environment or the order)."
    )


def emit_stray_output(runtime: Runtime) -> None:
    """Output captured outside any test, as non-test file events (no test id).

    python-subunit calls such events non-test output; it never counts as a test.
    """
    for item in runtime.output.take():
        runtime.sink.send(
            Event(
                file_name=item.name,
                file_bytes=item.content,
                eof=True,
                mime_type=item.mime_type,
                timestamp=runtime.clock(),
            )
        )
