"""The runner: test workers, the controller that drives them, and the run session.

The public surface is small and pinned (``tests/test_public_api.py``):

* **The run session** (:mod:`proctor.runner.session`), the one API that runs
  tests: :class:`RunSession` takes :class:`SessionOptions` (each run's
  :class:`RunOptions`, ``--until-failure``, ``--isolated``), a
  :data:`BackendFactory`, a :class:`History`, and optionally a view (a
  :class:`RunReporter`, drawing on :class:`Progress`), :class:`EventSinks` and a
  :class:`RunStorage` per run; it returns a :class:`SessionResult` holding the
  :class:`RunResult`.
* **The backend protocol** (:mod:`proctor.runner.backend`): a
  :class:`WorkerBackend` starts workers, each a :class:`WorkerHandle` that is
  sent :data:`Command` values (:func:`encode_command` writes them for a real
  worker), and reports what happened as :data:`Message` values
  (:class:`Results`, :class:`Output`, :class:`Exited`, :class:`Interrupted`,
  :class:`StdinLine`). :class:`SubprocessBackend` (given a :class:`WorkerSpec`)
  runs local worker processes; ``proctor.testing.FakeBackend`` simulates them.
* **The history protocol** (:mod:`proctor.runner.history`): what a run needs
  to know of earlier ones (:class:`History`); :data:`EMPTY_HISTORY` knows
  nothing, :class:`StoreHistory` reads a store.

Everything else (the controller and its parts, scheduling, the worker, watch,
the Dask backend) lives in modules named for what they hold; docs/runner.md
lists them. Names are imported on first use (PEP 562): a worker process imports
``proctor.runner.worker`` without loading the controller or the session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from proctor.runner.backend import (
        Exited,
        Interrupted,
        Message,
        Output,
        Results,
        StdinLine,
        WorkerBackend,
        WorkerHandle,
    )
    from proctor.runner.history import EMPTY_HISTORY, History, StoreHistory
    from proctor.runner.options import RunOptions
    from proctor.runner.protocol import Command, encode_command
    from proctor.runner.report import Progress, RunReporter, RunResult
    from proctor.runner.session import (
        BackendFactory,
        EventSinks,
        RunSession,
        SessionOptions,
        SessionResult,
    )
    from proctor.runner.storing import RunStorage
    from proctor.runner.subprocess_backend import SubprocessBackend, WorkerSpec

_HOMES = {
    "Exited": "backend",
    "Interrupted": "backend",
    "Message": "backend",
    "Output": "backend",
    "Results": "backend",
    "StdinLine": "backend",
    "WorkerBackend": "backend",
    "WorkerHandle": "backend",
    "EMPTY_HISTORY": "history",
    "History": "history",
    "StoreHistory": "history",
    "RunOptions": "options",
    "Command": "protocol",
    "encode_command": "protocol",
    "Progress": "report",
    "RunReporter": "report",
    "RunResult": "report",
    "BackendFactory": "session",
    "EventSinks": "session",
    "RunSession": "session",
    "SessionOptions": "session",
    "SessionResult": "session",
    "RunStorage": "storing",
    "SubprocessBackend": "subprocess_backend",
    "WorkerSpec": "subprocess_backend",
}

__all__ = [
    "EMPTY_HISTORY",
    "BackendFactory",
    "Command",
    "EventSinks",
    "Exited",
    "History",
    "Interrupted",
    "Message",
    "Output",
    "Progress",
    "Results",
    "RunOptions",
    "RunReporter",
    "RunResult",
    "RunSession",
    "RunStorage",
    "SessionOptions",
    "SessionResult",
    "StdinLine",
    "StoreHistory",
    "SubprocessBackend",
    "WorkerBackend",
    "WorkerHandle",
    "WorkerSpec",
    "encode_command",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'proctor.runner' has no attribute {name!r}")
    import importlib  # here, so that importing a submodule does not load it

    value = getattr(importlib.import_module(f"proctor.runner.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
