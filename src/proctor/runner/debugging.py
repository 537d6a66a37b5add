"""Debugger sessions: a test that reads stdin gets the user's terminal.

When a test reads its standard input (``pdb.set_trace()``, ``input()``) the
worker sends a ``stdin`` control event and shows the test's output live: what
it printed so far, then everything, on the worker's own stdout, which reaches
the controller as worker output. The
:class:`DebugDesk` then hands the terminal to that test: the reporter stops its
progress display and shows the test's output, each line the user types goes
to that worker as a ``Stdin`` command, and the test's ``--timeout`` clock
stops (nobody wants a debugging session killed). When the test finishes the
terminal goes back to the progress display.

One test has the terminal at a time; another test that asks meanwhile waits
its turn (its clock stopped too). Without a terminal (no
:class:`~proctor.runner.backend.StdinSource`) a test that reads stdin gets end
of input at once, as it would under ``python -m unittest < /dev/null``.
"""

from __future__ import annotations

from collections import deque

from proctor.runner.backend import StdinSource
from proctor.runner.protocol import Stdin
from proctor.runner.report import RunReporter
from proctor.runner.slot import Slot

__all__ = ["DebugDesk"]


class DebugDesk:
    """Who has the terminal, and who waits for it (see the module docstring)."""

    def __init__(self, reporter: RunReporter, stdin: StdinSource | None) -> None:
        self._reporter = reporter
        self._stdin = stdin
        self.slot: Slot | None = None
        self.test_id: str | None = None
        self._waiting: deque[tuple[Slot, str]] = deque()
        self._line_pending = False

    def wants_input(self, slot: Slot, test_id: str | None) -> None:
        """``slot``'s test asked for a line of input."""
        test_id = test_id or slot.culprit()
        if test_id is None:
            return
        slot.debugging = True  # its clock stops while it waits or debugs
        if self.slot is None:
            self._begin(slot, test_id)
        elif self.slot is not slot:
            if all(waiting is not slot for waiting, _ in self._waiting):
                self._waiting.append((slot, test_id))
            return
        self._ask()

    def line(self, data: bytes) -> None:
        """A line the user typed (empty: end of input)."""
        self._line_pending = False
        if self.slot is not None and self.slot.alive:
            self.slot.handle.send(Stdin(data))

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
        if slot is not self.slot or (test_id is not None and test_id != self.test_id):
            self._waiting = deque(item for item in self._waiting if item[0] is not slot)
            return
        ended = self.test_id
        self.slot = None
        self.test_id = None
        slot.debugging = False
        slot.since = now
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
        slot = self.slot
        if slot is None or self._line_pending:
            return
        if self._stdin is None:
            slot.handle.send(Stdin(b""))  # no terminal: end of input
            return
        self._line_pending = True
        self._stdin.request()
