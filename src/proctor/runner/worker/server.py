"""Server mode: obey the controller's commands until it says quit.

The loop is the whole of the worker protocol as seen from the worker (see
``docs/worker-protocol.md`` and :mod:`proctor.runner.protocol`):

* once the suite is loaded: a ``ready`` control event (pid, protocol version,
  number of tests, framework, capture files, the stack-dump signal);
* ``list``: an ``exists`` event per test in discovery order, then ``done``;
* ``run``: the tests, in the order given, then ``done`` (with ``count``, the
  number of final statuses sent);
* ``stdin``: bytes for a test waiting on its standard input (normally read by
  the :class:`~proctor.runner.worker.stdin.StdinProxy` while the test waits;
  bytes that come when nobody waits are kept for the next read). Only during a
  ``run`` does a read ask the controller; otherwise it gets end of input at once;
* ``quit``, or the end of the commands channel: leave the loop; the suite then
  tears down its fixtures and the worker exits 0;
* a line that is not a valid command: an ``error`` control event, and the
  worker goes on.
"""

from __future__ import annotations

import os

from proctor.runner.protocol import (
    DUMP_SIGNAL,
    PROTOCOL_VERSION,
    ListTests,
    ProtocolError,
    Quit,
    RunTests,
    Stdin,
    control_event,
    ids_digest,
)
from proctor.runner.worker.channels import CommandReader
from proctor.runner.worker.stdin import StdinProxy
from proctor.runner.worker.suite import Runtime, Suite
from proctor.wire.event import Event, Status

__all__ = ["serve"]


def serve(suite: Suite, runtime: Runtime, reader: CommandReader, stdin: StdinProxy) -> None:
    """Announce the suite, then obey commands until ``quit`` (see the module docstring)."""
    sink = runtime.sink
    stdin.current_test = suite.current_test_id
    ids = suite.test_ids()
    sink.send(
        control_event(
            "ready",
            pid=os.getpid(),
            protocol=PROTOCOL_VERSION,
            count=len(ids),
            framework=suite.framework,
            capture=runtime.output.paths if runtime.capture else None,
            dump_signal=DUMP_SIGNAL.name,
            digest=ids_digest(ids),
        )
    )
    sink.flush()
    while True:
        command = reader.next()
        if command is None or isinstance(command, Quit):
            return
        if isinstance(command, ProtocolError):
            sink.send(control_event("error", message=str(command)))
        elif isinstance(command, ListTests):
            for test_id in suite.test_ids():
                sink.send(Event(test_id=test_id, status=Status.EXISTS))
            sink.send(control_event("done", op="list"))
        elif isinstance(command, RunTests):
            stdin.asking = True  # tests (and their fixtures) may ask for input now
            try:
                count = suite.run(command.ids)
            finally:
                stdin.asking = False
            sink.send(control_event("done", op="run", count=count))
        elif isinstance(command, Stdin):
            stdin.feed(command.data)
        sink.flush()
