"""The seam between the controller and worker processes.

The controller never touches a process, a pipe or a clock directly: it starts
workers through a :class:`WorkerBackend`, talks to each through a
:class:`WorkerHandle`, and learns what happened by calling
:meth:`WorkerBackend.wait`, which returns :data:`Message` values. The real
backend (``proctor.runner.subprocess_backend``) runs ``python -m proctor.worker``
processes and multiplexes their pipes with ``selectors``; the fake one
(``proctor.testing.fake_backend``) simulates workers on a virtual clock, so the
controller's behaviour under crashes, hangs, Ctrl-C and debugger sessions is
tested in milliseconds (the pattern of httpx's ``MockTransport``).

Anything that is not a worker (the SIGINT handler, the thread reading the
terminal for a debugger) reaches the controller by :meth:`WorkerBackend.post`,
which is safe to call from another thread or a signal handler and wakes
:meth:`~WorkerBackend.wait`.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Protocol

from proctor.runner.protocol import Command

__all__ = [
    "Exited",
    "Interrupted",
    "Message",
    "Output",
    "Results",
    "StdinLine",
    "StdinSource",
    "Wake",
    "WorkerBackend",
    "WorkerHandle",
]


@dataclass(frozen=True, slots=True)
class Results:
    """Bytes a worker wrote on its results channel (part of a subunit v2 stream)."""

    worker: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Output:
    """Bytes a worker process wrote to its own stdout or stderr (not a test's captured output).

    Native crash reports (faulthandler) and stack dumps arrive this way.
    """

    worker: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Exited:
    """A worker process ended; ``returncode`` is negative for a signal (``-9``: SIGKILL)."""

    worker: int
    returncode: int


@dataclass(frozen=True, slots=True)
class Interrupted:
    """The user pressed Ctrl-C, or the controller was told to stop (posted by its
    signal handlers).

    ``signal`` is the signal received. SIGINT is Ctrl-C: the first lets running
    tests finish, the second stops them. Any other (SIGTERM, SIGHUP: a CI job
    cancelled, a terminal closed) stops every worker at once, like a second Ctrl-C.
    """

    signal: int = signal.SIGINT

    @property
    def at_once(self) -> bool:
        """Whether the workers are to be stopped now rather than after their tests."""
        return self.signal != signal.SIGINT


@dataclass(frozen=True, slots=True)
class StdinLine:
    """A line the user typed for a test's debugger; empty at end of input."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Wake:
    """Look at the work source again now (posted from another thread: a build's
    shared queue may have work again, or be finished)."""


Message = Results | Output | Exited | Interrupted | StdinLine | Wake


class WorkerHandle(Protocol):
    """One worker process, as the controller sees it."""

    @property
    def worker(self) -> int:
        """The worker's number (its route code)."""
        ...

    @property
    def pid(self) -> int | None:
        """The process id, when there is a process."""
        ...

    def send(self, command: Command) -> None:
        """Send a command; a worker that has gone away is not an error here
        (its :class:`Exited` message will follow)."""
        ...

    def dump_stacks(self) -> None:
        """Ask the worker to write the stack of every thread to its stderr, now."""
        ...

    def kill(self) -> None:
        """End the worker (and anything it started) at once."""
        ...


class WorkerBackend(Protocol):
    """Starts workers and reports what they do."""

    def prestart(self, count: int) -> None:
        """Begin starting workers 0 to ``count - 1`` ahead of :meth:`start` (may do nothing)."""
        ...

    def start(self, worker: int) -> WorkerHandle:
        """Start worker number ``worker`` (or hand over the pre-started one); its
        messages carry that number."""
        ...

    def wait(self, timeout: float | None) -> list[Message]:
        """Messages that have arrived, waiting up to ``timeout`` seconds (None: no limit)
        for the first; an empty list when the time ran out."""
        ...

    def post(self, message: Message) -> None:
        """Deliver ``message`` through :meth:`wait` (thread- and signal-safe)."""
        ...

    def now(self) -> float:
        """Monotonic seconds, the clock deadlines are measured on."""
        ...

    def time_ns(self) -> int:
        """Wall-clock nanoseconds since the epoch, for the timestamps of events
        the controller makes itself."""
        ...

    def close(self) -> None:
        """Release what the backend holds (workers must already have exited or been killed)."""
        ...


class StdinSource(Protocol):
    """Reads the controller's input for tests that read theirs, one line per request.

    Each :meth:`request` leads to exactly one :class:`StdinLine` posted to the
    backend, when the line is available (empty at end of input, and for every
    request after that).
    """

    @property
    def interactive(self) -> bool:
        """Whether a person types the input (a terminal): then a test reading it
        gets a debugging session, and its ``--timeout`` clock stops while it waits."""
        ...

    @property
    def exhausted(self) -> bool:
        """Whether it is known that no more input will come (``/dev/null``, or end
        of input reached): then a worker may be sent ``quit`` while it still runs
        tests, since a ``quit`` in its pipe is end of input for a test reading stdin."""
        ...

    def request(self) -> None: ...
