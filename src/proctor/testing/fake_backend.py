"""An in-process fake of worker processes on a virtual clock.

:class:`FakeBackend` implements :class:`~proctor.runner.backend.WorkerBackend`
for tests of the controller: each fake worker speaks the real worker protocol
(it decodes the commands it is sent and answers with subunit v2 bytes), but its
tests are :class:`FakeTest` descriptions that pass, fail, take a given time,
crash the worker, hang, or wait for debugger input. Time is virtual: when the
controller waits, the clock jumps to the next thing that would happen, so a
suite of hour-long tests with timeouts runs in milliseconds and every run is
deterministic.

Like the real worker, a fake one writes a test's result together with the next
test's ``inprogress`` (or the batch's ``done``) in one message, so a controller
sees "this test finished and that one started" in a single read.
"""

from __future__ import annotations

import heapq
import itertools
import signal
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from proctor.runner.backend import Exited, Interrupted, Message, Output, Results, StdinLine
from proctor.runner.protocol import (
    Command,
    ListTests,
    Quit,
    RunTests,
    Stdin,
    control_event,
    decode_command,
    encode_command,
)
from proctor.wire import v2
from proctor.wire.event import NS_PER_SECOND, TEXT_MIME_TYPE, TRACEBACK_MIME_TYPE, Event, Status

__all__ = ["EPOCH_NS", "FakeBackend", "FakeStdin", "FakeSuite", "FakeTest", "FakeWorker"]

EPOCH_NS = 1_700_000_000 * NS_PER_SECOND
"""Wall time of virtual time zero."""


@dataclass(frozen=True, slots=True)
class FakeTest:
    """One test of a fake suite.

    ``outcome`` is a final status name (``success``, ``fail``, ``skip``,
    ``xfail``, ``uxsuccess``) or ``crash`` (the worker dies ``duration`` seconds
    in, with ``exit_code`` and ``output`` written to its stderr), ``hang`` (it
    never finishes), or ``stdin`` (it asks for ``reads`` lines of input, then
    runs ``after_input`` seconds more and succeeds if the last line was ``c``,
    fails otherwise). ``output`` of a test that finishes is its captured
    stdout, or, when the suite does not capture, what it writes to the worker's
    stdout as it starts.
    """

    test_id: str
    outcome: str = "success"
    duration: float = 0.001
    output: bytes = b""
    exit_code: int = -11
    reads: int = 1
    after_input: float = 0.0
    answers_dump: bool = True
    """Whether the worker writes a stack dump when asked (False: stuck beyond that too)."""
    fails_after: frozenset[str] = frozenset()
    """Fail instead of passing when all of these ran earlier in the same worker
    (an order dependency, for isolation tests)."""
    then: str | None = None
    """The outcome of its runs after the first, in any worker (a flaky test); None:
    ``outcome`` every time."""


@dataclass(slots=True)
class FakeSuite:
    """What fake workers know: their tests and how they start."""

    tests: list[FakeTest]
    startup: float = 0.05
    startup_for: dict[int, float] = field(default_factory=dict)
    """Worker number -> its own start-up seconds (default: ``startup``)."""
    startup_failures: int = 0
    """This many worker starts die before ``ready`` (exit 1), then starts succeed."""
    startup_output: bytes = b"Traceback (most recent call last):\nImportError: boom\n"
    list_extra: list[Event] = field(default_factory=list)
    """Events a worker adds to its listing (an import error reported as a failure)."""
    startup_error: str | None = None
    """Every start sends an ``error`` control event with this message instead of
    ``ready`` (a suite that cannot be loaded), writes ``startup_output``, exits 2."""
    startup_hangs: bool = False
    """Workers never become ready (an import that blocks)."""
    import_reads_stdin: bool = False
    """Loading the suite reads stdin: a ``stdin`` request naming no test before ``ready``."""
    capture: bool = True
    """False: like ``--no-capture``, tests' output goes to the worker's own stdout, live."""
    ready_counts: dict[int, int] = field(default_factory=dict)
    """Worker number -> the test count its ``ready`` announces (default: all the tests)."""
    quit_exit_code: int = 0
    """How a worker exits after ``quit`` (non-zero: a teardown that crashed)."""
    quit_output: bytes = b""
    """What a worker writes while it tears down after ``quit``."""
    quit_hangs: bool = False
    """A worker never exits after ``quit`` (a thread a test left running)."""
    results_lag: float = 0.0
    """Seconds a worker's results spend in the pipe before the controller reads
    them; what is still in the pipe when the worker dies is read with its exit."""

    def by_id(self) -> dict[str, FakeTest]:
        return {test.test_id: test for test in self.tests}


class FakeWorker:
    """One simulated worker process (see :class:`FakeBackend`)."""

    def __init__(self, backend: FakeBackend, worker: int, fails_on_start: bool) -> None:
        self._backend = backend
        self.worker = worker
        self.pid: int | None = 10_000 + worker
        self.alive = True
        self.commands: list[Command] = []
        self.ran: list[str] = []
        self._queue: deque[tuple[str, ...]] = deque()
        self._batch: deque[str] | None = None
        self._current: FakeTest | None = None
        self._reads_left = 0
        self._last_line = b""
        self._busy = True  # starting up
        self._loading = True
        self._unread: list[Command] = []  # commands sent before it was ready
        self._quitting = False
        self._generation = 0  # steps scheduled before a kill are ignored
        self.dumps = 0  # stack dumps asked for
        self._in_pipe: deque[bytes] = deque()  # results written, not read yet (results_lag)
        self.killed = False
        suite = backend.suite
        if fails_on_start:
            self._after(suite.startup, self._die_on_start)
        elif suite.startup_error is not None:
            self._after(suite.startup, self._fail_to_load)
        elif suite.startup_hangs:
            pass
        elif suite.import_reads_stdin:
            self._after(suite.startup, lambda: self._emit(control_event("stdin", test_id=None)))
        else:
            self._after(suite.startup_for.get(worker, suite.startup), self._ready)

    # -- the WorkerHandle protocol --------------------------------------------------------

    def send(self, command: Command) -> None:
        command = decode_command(encode_command(command))  # what the pipe would carry
        self.commands.append(command)
        if not self.alive:
            return
        if self._loading and not isinstance(command, Stdin):
            self._unread.append(command)  # like the real worker: read once it is ready
            return
        self._obey(command)

    def _obey(self, command: Command) -> None:
        if isinstance(command, Stdin):
            if self._loading and self._backend.suite.import_reads_stdin:
                self._after(0.0, self._ready)  # the import got its answer and goes on
                return
            self._stdin(command.data)
        elif isinstance(command, ListTests):
            self._after(0.001, self._list)
        elif isinstance(command, RunTests):
            self._queue.append(command.ids)
            if not self._busy:
                self._busy = True
                self._after(0.0, self._next)
        elif isinstance(command, Quit):
            self._quitting = True
            if self._reads_left > 0:
                self._stdin(b"")  # like the real worker: quit is end of input
            if not self._busy:
                self._after(0.001, self._quit)

    def dump_stacks(self) -> None:
        self.dumps += 1
        if self.alive and (self._current is None or self._current.answers_dump):
            name = self._current.test_id if self._current else "<idle>"
            dump = f"Thread 0x00007f (most recent call first):\n  File fake.py in {name}\n"
            self._backend.deliver(Output(self.worker, dump.encode()))

    def kill(self) -> None:
        self.killed = True
        if self.alive:
            self._generation += 1
            self._after(0.0, lambda: self._exit(-9))

    # -- simulation -------------------------------------------------------------------------

    def _after(self, delay: float, step: Callable[[], None]) -> None:
        generation = self._generation

        def guarded() -> None:
            if self.alive and generation == self._generation:
                step()

        self._backend.schedule(delay, guarded)

    def _emit(self, *events: Event) -> None:
        data = v2.encode_many(events)
        lag = self._backend.suite.results_lag
        if not lag:
            self._backend.deliver(Results(self.worker, data))
            return
        self._in_pipe.append(data)

        def arrive() -> None:  # not undone by a kill: it was written
            if self._in_pipe:
                self._backend.deliver(Results(self.worker, self._in_pipe.popleft()))

        self._backend.schedule(lag, arrive)

    def _ts(self) -> int:
        return self._backend.time_ns()

    def _ready(self) -> None:
        self._busy = False
        self._loading = False
        suite = self._backend.suite
        count = suite.ready_counts.get(self.worker, len(suite.tests))
        capture: dict[str, str] | None = {} if suite.capture else None
        self._emit(control_event("ready", pid=self.pid, protocol=1, count=count, capture=capture))
        unread, self._unread = self._unread, []
        for command in unread:
            self._obey(command)
        if self._queue:
            self._busy = True
            self._after(0.0, self._next)

    def _die_on_start(self) -> None:
        self._backend.deliver(Output(self.worker, self._backend.suite.startup_output))
        self._exit(1)

    def _fail_to_load(self) -> None:
        suite = self._backend.suite
        self._backend.deliver(Output(self.worker, suite.startup_output))
        self._emit(control_event("error", message=suite.startup_error))
        self._after(0.001, lambda: self._exit(2))

    def _quit(self) -> None:
        suite = self._backend.suite
        if suite.quit_output:
            self._backend.deliver(Output(self.worker, suite.quit_output))
        if not suite.quit_hangs:
            self._exit(suite.quit_exit_code)

    def _list(self) -> None:
        ts = self._ts()
        events = [
            Event(test_id=t.test_id, status=Status.EXISTS, timestamp=ts)
            for t in self._backend.suite.tests
        ]
        events.extend(self._backend.suite.list_extra)
        events.append(control_event("done", op="list"))
        self._emit(*events)

    def _next(self, held: tuple[Event, ...] = ()) -> None:
        """Start the next test; ``held`` (the last test's result) leaves with its
        ``inprogress`` or with the ``done`` of the batch, in one write."""
        if self._batch is None:
            if not self._queue:
                if held:
                    self._emit(*held)
                self._busy = False
                if self._quitting:
                    self._quit()
                return
            self._batch = deque(self._queue.popleft())
        if not self._batch:
            self._batch = None
            self._emit(*held, control_event("done", op="run"))
            self._after(0.0, self._next)
            return
        test_id = self._batch.popleft()
        test = self._backend.tests.get(test_id)
        if test is None:
            unknown = Event(test_id=test_id, status=Status.FAIL, timestamp=self._ts())
            self._next((*held, unknown))
            return
        runs = self._backend.runs
        runs[test_id] = runs.get(test_id, 0) + 1
        if test.then is not None and runs[test_id] > 1:
            test = replace(test, outcome=test.then)
        self._current = test
        self.ran.append(test_id)
        self._emit(*held, Event(test_id=test_id, status=Status.INPROGRESS, timestamp=self._ts()))
        if test.output and not self._backend.suite.capture and test.outcome != "crash":
            self._backend.deliver(Output(self.worker, test.output))
        if test.outcome == "crash":
            self._after(test.duration, self._crash)
        elif test.outcome == "hang":
            pass
        elif test.outcome == "stdin":
            self._after(test.duration, self._ask)
        else:
            self._after(test.duration, self._finish)

    def _crash(self) -> None:
        assert self._current is not None
        if self._current.output:
            self._backend.deliver(Output(self.worker, self._current.output))
        self._exit(self._current.exit_code)

    def _ask(self) -> None:
        assert self._current is not None
        self._reads_left = self._current.reads
        self._prompt()

    def _prompt(self) -> None:
        assert self._current is not None
        test_id = self._current.test_id
        # Like the real worker: an interactive test's output goes live to the
        # worker's own stdout, then the request for input on the results channel.
        self._backend.deliver(Output(self.worker, b"(Pdb) "))
        self._emit(control_event("stdin", test_id=test_id))

    def _stdin(self, data: bytes) -> None:
        if self._current is None or self._reads_left <= 0:
            return
        self._last_line = data
        self._reads_left -= 1
        if self._reads_left and data:
            self._after(0.0, self._prompt)
        else:
            self._after(self._current.after_input, self._finish)

    def _finish(self) -> None:
        test = self._current
        assert test is not None
        self._current = None
        outcome = test.outcome
        if outcome == "stdin":
            outcome = "success" if self._last_line.strip() == b"c" else "fail"
        if outcome == "success" and test.fails_after and test.fails_after <= set(self.ran[:-1]):
            outcome = "fail"
        status = Status.from_wire_name(outcome)
        events = []
        if test.output and self._backend.suite.capture:
            events.append(
                Event(
                    test_id=test.test_id,
                    file_name="stdout",
                    file_bytes=test.output,
                    eof=True,
                    mime_type=TEXT_MIME_TYPE,
                )
            )
        if status is Status.FAIL:
            events.append(
                Event(
                    test_id=test.test_id,
                    file_name="traceback",
                    file_bytes=f"AssertionError: {test.test_id} failed\n".encode(),
                    eof=True,
                    mime_type=TRACEBACK_MIME_TYPE,
                )
            )
        events.append(Event(test_id=test.test_id, status=status, timestamp=self._ts()))
        self._next(tuple(events))

    def _exit(self, code: int) -> None:
        if not self.alive:
            return
        self.alive = False
        if self._in_pipe:  # the controller drains the pipe when the process ends
            self._backend.deliver(Results(self.worker, b"".join(self._in_pipe)))
            self._in_pipe.clear()
        self._backend.deliver(Exited(self.worker, code))


class FakeBackend:
    """Fake workers on a virtual clock (see the module docstring)."""

    def __init__(self, suite: FakeSuite | Iterable[FakeTest]) -> None:
        self.suite = suite if isinstance(suite, FakeSuite) else FakeSuite(list(suite))
        self.tests = self.suite.by_id()
        self.workers: dict[int, FakeWorker] = {}
        self._now = 0.0
        self._steps: list[tuple[float, int, Callable[[], None]]] = []
        self._sequence = itertools.count()
        self._inbox: deque[Message] = deque()
        self._interrupts: list[float] = []
        self._starts = 0
        self.closed = False
        self.runs: dict[str, int] = {}  # test id -> times a worker started it

    # -- WorkerBackend --------------------------------------------------------------------

    def prestart(self, count: int) -> None:
        pass  # fake workers start instantly anyway

    def start(self, worker: int) -> FakeWorker:
        fails = self._starts < self.suite.startup_failures
        self._starts += 1
        handle = FakeWorker(self, worker, fails)
        self.workers[worker] = handle
        return handle

    def wait(self, timeout: float | None) -> list[Message]:
        if not self._inbox:
            self._advance(timeout)
        messages = list(self._inbox)
        self._inbox.clear()
        return messages

    def post(self, message: Message) -> None:
        self._inbox.append(message)

    def now(self) -> float:
        return self._now

    def time_ns(self) -> int:
        return EPOCH_NS + round(self._now * NS_PER_SECOND)

    def close(self) -> None:
        self.closed = True

    # -- for the fake workers and for tests ------------------------------------------------

    def schedule(self, delay: float, step: Callable[[], None]) -> None:
        heapq.heappush(self._steps, (self._now + delay, next(self._sequence), step))

    def deliver(self, message: Message) -> None:
        self._inbox.append(message)

    def interrupt_at(self, when: float, signum: int = signal.SIGINT) -> None:
        """Press Ctrl-C (or send ``signum``) at virtual time ``when``."""
        self.schedule(when - self._now, lambda: self.deliver(Interrupted(signum)))

    def _advance(self, timeout: float | None) -> None:
        deadline = None if timeout is None else self._now + max(timeout, 0.0)
        while not self._inbox:
            if not self._steps:
                if deadline is None:
                    raise RuntimeError("fake backend: the controller waits for nothing, forever")
                self._now = deadline
                return
            when = self._steps[0][0]
            if deadline is not None and when > deadline:
                self._now = deadline
                return
            _, _, step = heapq.heappop(self._steps)
            self._now = max(self._now, when)
            step()


class FakeStdin:
    """Answers each input request with the next of ``lines`` (then end of input);
    ``interactive``: as if a person typed them at a terminal."""

    def __init__(
        self, backend: FakeBackend, lines: Iterable[bytes], *, interactive: bool = True
    ) -> None:
        self._backend = backend
        self._lines = deque(lines)
        self._interactive = interactive
        self.requests = 0

    @property
    def interactive(self) -> bool:
        return self._interactive

    @property
    def exhausted(self) -> bool:
        return False  # like a terminal or a pipe: input may always come

    def request(self) -> None:
        self.requests += 1
        line = self._lines.popleft() if self._lines else b""
        self._backend.post(StdinLine(line))
