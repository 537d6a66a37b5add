"""The signals that stop a run, turned into messages to its controller."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

from proctor.runner.backend import Interrupted, WorkerBackend

__all__ = ["STOP_SIGNALS", "signals_post_to"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""Signals that become messages to the controller while it runs: Ctrl-C, and the
ways a CI job or a closing terminal stops a process (these stop the workers at once)."""


@contextlib.contextmanager
def signals_post_to(backend: WorkerBackend) -> Iterator[None]:
    """While running, Ctrl-C, SIGTERM and SIGHUP become messages to the controller
    (it decides what they mean: see :class:`~proctor.runner.backend.Interrupted`)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        backend.post(Interrupted(signum))

    previous = {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, action in previous.items():
            signal.signal(signum, action)
