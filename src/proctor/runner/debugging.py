"""Tests that read stdin: a debugger gets the user's terminal; anything else gets the input.

When a test reads its standard input (``pdb.set_trace()``, ``input()``) the
worker sends a ``stdin`` control event and shows the test's output live: what
it printed so far, then everything, on the worker's own stdout, which reaches
the controller as worker output. What the :class:`DebugDesk` does with the
request depends on where the controller's own stdin comes from:

* **a terminal** (:attr:`~proctor.runner.backend.StdinSource.interactive`):
  a debugging session. The reporter stops its progress display and shows the
  test's output; each line the user types goes to that worker as a ``Stdin``
  command. The test's ``--timeout`` clock stops while its request for a line
  is outstanding (nobody wants a session killed while they think) and starts
  again from zero when the line is sent. When the test finishes the terminal
  goes back to the progress display. One test has the terminal at a time;
  another that asks meanwhile waits its turn (its clock stopped too).
* **anything else** (a pipe, a file, ``/dev/null``): no session. Each request
  is answered with the next line of input, in the order the requests came,
  and the clock keeps running: nobody is typing, and a test must not escape
  ``--timeout`` by reading a pipe that never ends.

While a test has the terminal, **what the other workers report waits**: their
results, their output and the controller's notices are held by the desk's
:class:`HeldReporter` (the reporter every part of the controller talks to)
and passed on, in order, when the session ends. Printed at once they would
land in the middle of the debugger's output and over its ``(Pdb)`` prompt.
The test under the debugger keeps its own live output. Held reports are the
run's reports anyway (the views print them, the store already has them), so
what waits is bounded by the run.

Once the controller's stdin is at end of input (or there is none), every
request is answered at once with end of input (an empty ``Stdin``), as under
``python -m unittest < /dev/null``. So is a request that names no test and
comes from a worker that runs none (a module reading stdin as it is
imported, a conftest at collection, ``tearDownModule`` after ``quit``): there
is no test to hand the terminal to, and nothing may wait on it forever.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from proctor.runner.backend import StdinSource
from proctor.runner.protocol import Stdin
from proctor.runner.report import Progress, RunReporter, RunResult
from proctor.runner.slot import Slot
from proctor.wire.record import TestRecord

__all__ = ["DebugDesk", "HeldReporter"]


class HeldReporter:
    """A :class:`~proctor.runner.report.RunReporter` that holds what is reported
    while a debugging session is on (see the module docstring)."""

    def __init__(self, reporter: RunReporter) -> None:
        self._reporter = reporter
        self.tick_interval = reporter.tick_interval
        self._held: list[Callable[[], None]] | None = None  # None: not holding

    @property
    def holding(self) -> bool:
        return self._held is not None

    def planned(self, progress: Progress) -> None:
        self._reporter.planned(progress)

    def record(self, record: TestRecord) -> None:
        if self._held is None:
            self._reporter.record(record)
        else:
            self._held.append(lambda: self._reporter.record(record))

    def output(self, worker: int | None, data: bytes) -> None:
        if self._held is None:
            self._reporter.output(worker, data)
        else:
            self._held.append(lambda: self._reporter.output(worker, data))

    def notice(self, text: str) -> None:
        if self._held is None:
            self._reporter.notice(text)
        else:
            self._held.append(lambda: self._reporter.notice(text))

    def tick(self) -> None:
        if self._held is None:
            self._reporter.tick()

    def debug_start(self, test_id: str, worker: int, so_far: bytes) -> None:
        if self._held is None:
            self._held = []
        self._reporter.debug_start(test_id, worker, so_far)

    def debug_output(self, data: bytes) -> None:
        self._reporter.debug_output(data)

    def debug_end(self, test_id: str) -> None:
        self._reporter.debug_end(test_id)
        self._release()

    def finished(self, result: RunResult) -> None:
        self._release()
        self._reporter.finished(result)

    def _release(self) -> None:
        held, self._held = self._held, None
        for report in held or ():
            report()


class DebugDesk:
    """Who gets the input, and who waits for it (see the module docstring)."""

    def __init__(self, reporter: RunReporter, stdin: StdinSource | None) -> None:
        self.reporter = HeldReporter(reporter)
        """The reporter the controller reports through: it holds reports during a session."""
        self._reporter = self.reporter
        self._stdin = stdin
        self._interactive = stdin is not None and stdin.interactive
        self._ended = stdin is None  # end of input reached: answer every request at once
        self.slot: Slot | None = None  # the test that has the terminal (interactive)
        self.test_id: str | None = None
        self._waiting: deque[tuple[Slot, str]] = deque()
        self._line_pending = False
        self._readers: deque[Slot] = deque()  # not interactive: requests, oldest first

    @property
    def input_over(self) -> bool:
        """No input will come: every request gets end of input at once."""
        if not self._ended and self._stdin is not None and self._stdin.exhausted:
            self._ended = True
        return self._ended

    def wants_input(self, slot: Slot, test_id: str | None) -> None:
        """``slot``'s test (or, ``test_id`` None, whatever the worker runs) asked for input."""
        if test_id is None and slot.busy:
            test_id = slot.culprit()  # a class or module fixture of its batch
        if test_id is None or self.input_over:
            slot.handle.send(Stdin(b""))  # end of input, now
            return
        if not self._interactive:
            assert self._stdin is not None
            self._readers.append(slot)
            self._stdin.request()
            return
        slot.waiting_input = True  # its clock stops while it waits for a line
        slot.at_desk = True
        if self.slot is None:
            self._begin(slot, test_id)
        elif self.slot is not slot:
            if all(waiting is not slot for waiting, _ in self._waiting):
                self._waiting.append((slot, test_id))
            return
        self._ask()

    def line(self, data: bytes, now: float) -> None:
        """A line of the controller's stdin (empty: end of input)."""
        if not data:
            self._ended = True
        if not self._interactive:
            slot = self._readers.popleft() if self._readers else None
            if slot is not None and slot.alive:
                slot.handle.send(Stdin(data))
            if self._ended:
                while self._readers:  # their lines will not come: end of input for them
                    waiting = self._readers.popleft()
                    if waiting.alive:
                        waiting.handle.send(Stdin(b""))
            return
        self._line_pending = False
        slot = self.slot
        if slot is not None and slot.alive:
            slot.handle.send(Stdin(data))
            slot.waiting_input = False
            slot.since = now  # the clock starts again from the line it got
        if self._ended:
            for waiting, _ in self._waiting:
                if waiting.alive:
                    waiting.handle.send(Stdin(b""))
                    waiting.waiting_input = False
                    waiting.since = now
            self._waiting.clear()

    def output(self, slot: Slot, data: bytes) -> bool:
        """Show what ``slot``'s process wrote if its test has the terminal; True when shown.

        Only the worker's own (live) output is shown: the test's captured output
        also arrives later as its attachments, which would show it twice.
        """
        if slot is not self.slot:
            return False
        self._reporter.debug_output(data)
        return True

    def finished(self, slot: Slot, test_id: str | None, now: float) -> None:
        """``slot``'s test ended (``test_id`` None: the worker died): the terminal moves on."""
        if test_id is None:
            self._readers = deque(reader for reader in self._readers if reader is not slot)
        if slot is not self.slot or (test_id is not None and test_id != self.test_id):
            self._waiting = deque(item for item in self._waiting if item[0] is not slot)
            slot.at_desk = False
            return
        ended = self.test_id
        self.slot = None
        self.test_id = None
        slot.waiting_input = False
        slot.at_desk = False
        assert ended is not None
        self._reporter.debug_end(ended)
        while self._waiting:
            waiting, waiting_test = self._waiting.popleft()
            if waiting.alive and waiting_test in waiting.pending:
                self._begin(waiting, waiting_test)
                self._ask()
                break

    def _begin(self, slot: Slot, test_id: str) -> None:
        self.slot = slot
        self.test_id = test_id
        so_far = bytes(slot.output[slot.shown :])  # the worker's live output not shown yet
        slot.shown = len(slot.output)
        self._reporter.debug_start(test_id, slot.worker, so_far)

    def _ask(self) -> None:
        if self.slot is None or self._line_pending:
            return
        assert self._stdin is not None
        self._line_pending = True
        self._stdin.request()
