"""The test worker (the "test server"): loads a suite once, then runs tests on command.

``python -m proctor.worker`` is its entry point. It speaks the worker protocol
(:mod:`proctor.runner.protocol`, described in ``docs/worker-protocol.md``) in
server mode, or writes one subunit v2 stream to stdout in one-shot mode.

Modules, in the order a run goes through them: :mod:`.options` (command line),
:mod:`.main` (process set-up), :mod:`.channels` (results out, commands in),
:mod:`.stdin`, :mod:`.capture`, :mod:`.framework` (which framework),
:mod:`.discovery` and :mod:`.unittest_suite` (unittest), :mod:`.pytest_adapter`
(pytest), :mod:`.server` and :mod:`.oneshot` (what to do with the suite).
"""

from proctor.runner.protocol import DUMP_SIGNAL
from proctor.runner.worker.main import main

__all__ = ["DUMP_SIGNAL", "main"]


def __dir__() -> list[str]:
    return sorted(__all__)
