"""Proctor's exit statuses: one table for every command.

====  ===============  ==============================================================
code  name             meaning
====  ===============  ==============================================================
0     ``OK``           Done: every test passed (``run``), the input shows no failure
                       (``stream``), the command did what was asked.
1     ``FAILED``       A test failed (``fail``, ``uxsuccess``, crashed, timed out);
                       the input shows a failure (``stream``); the stored run failed
                       or failing tests exist (``last``, ``failing``, ``runs show``);
                       ``init`` found a ``[tool.proctor]`` already there; a new rule
                       was not confirmed (``rules add``).
2     ``ERROR``        Proctor could not do what was asked: a usage error (click's
                       own exit 2 too), input it cannot read, output it cannot write,
                       a repository problem, or results it could not store (the
                       tests ran: ``run``).
3     ``RUN_ERROR``    The run could not be completed (workers would not start, the
                       cluster is unavailable).
5     ``NO_TESTS``     Nothing was run (the number pytest uses).
130   ``INTERRUPTED``  Ctrl-C (128 + SIGINT). Another stop signal gives 128 + its
                       number (SIGTERM 143, SIGHUP 129): :func:`signal_exit`.
141   ``BROKEN_PIPE``  Standard output was closed by its reader (128 + SIGPIPE), as
                       when a pipeline's ``head`` has read enough.
====  ===============  ==============================================================

A worker process has its own statuses, for its controller only
(:class:`proctor.runner.protocol.WorkerExit`).
"""

from __future__ import annotations

import enum

__all__ = ["ExitCode", "signal_exit"]


class ExitCode(enum.IntEnum):
    """The exit status of a ``proctor`` command (see the module docstring)."""

    OK = 0
    FAILED = 1
    ERROR = 2
    RUN_ERROR = 3
    NO_TESTS = 5
    INTERRUPTED = 130
    BROKEN_PIPE = 141


def signal_exit(signum: int) -> int:
    """The status of a command stopped by signal ``signum``: 128 + its number, as a shell
    reports a process the signal killed (``ExitCode.INTERRUPTED`` for SIGINT)."""
    return 128 + signum
