"""Start ``proctor run``'s first worker before the command is even parsed.

A worker spends its first ~0.1 s importing and discovering the suite; the
controller spends its own first ~0.05 s importing click, its configuration
and the run module before it could start one. :func:`maybe_start` overlaps
the two: called by the console script before anything else is imported, it
starts worker 0 when the command line is ``run`` with options that cannot
change that worker's command line (the worker reads the project's
configuration itself, as the controller will). The backend adopts it
(:func:`proctor.runner.spawn.take_early`); if nobody does (a usage error,
``--help``), it is killed at exit.

Nothing here imports click or the rest of Proctor: that is the point.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["finish", "maybe_start", "starts_early"]

_WITH_VALUE = frozenset(
    {
        "-j",
        "--concurrency",
        "--timeout",
        "--seed",
        "--random-seed",
        "--max-runs",
        "-E",
        "--exclude-regex",
        "--load-list",
        "-i",
        "--include-list",
        "-e",
        "--exclude-list",
        "--junit",
        "-g",
        "--group-regex",
        "--max-worker-restarts",
        "--repository",
        "--maxfail",
        "--shard",
        "--queue",
    }
)
"""Options of ``proctor run`` that take a value and do not concern the workers."""
_FLAGS = frozenset(
    {
        "--serial",
        "--random",
        "--failing",
        "--until-failure",
        "--combine",
        "--abbreviate",
        "--isolated",
        "--list",
        "--subunit",
        "--parallel-class",
        "--no-store",
        "--color",
        "--no-color",
        "-s",
        "--no-capture",
        "-x",
        "--exitfirst",
        "--ff",
        "--failed-first",
    }
)
"""Flags of ``proctor run`` that do not concern the workers (``-s`` is passed on)."""


def starts_early(argv: Sequence[str]) -> bool | None:
    """Whether ``proctor ARGV`` may start its first worker now: None if not, else
    whether that worker captures output (False with ``-s``/``--no-capture``).

    Anything not known to leave the worker's command line alone (``--framework``,
    ``--test-path``, ``--top-dir``, ``--isolate``, ``--help``, an unknown or
    combined option) means no.
    """
    if not argv or argv[0] != "run":
        return None
    capture = True
    args = iter(argv[1:])
    for arg in args:
        if arg == "--":  # what follows goes to pytest: the worker's command line changes
            return None if next(args, None) is not None else capture
        if not arg.startswith("-") or arg == "-":
            continue  # a filter
        name, has_value, _ = arg.partition("=")
        if name in _WITH_VALUE:
            if not has_value and next(args, None) is None:
                return None
        elif name in _FLAGS and not has_value:
            if name in ("-s", "--no-capture"):
                capture = False
        else:
            return None
    return capture


def maybe_start(argv: Sequence[str]) -> None:
    """Start worker 0 now if ``proctor ARGV`` will want it (see the module docstring)."""
    capture = starts_early(argv)
    if capture is None:
        return
    import contextlib

    from proctor.runner.spawn import start_early

    with contextlib.suppress(OSError):  # the backend will start it, and report what fails
        start_early(capture=capture)


def finish() -> None:
    """End the early worker if nobody adopted it (also done at exit, unless the
    process leaves by :mod:`proctor.runner.fastexit`, which skips that handler)."""
    import sys

    spawn = sys.modules.get("proctor.runner.spawn")
    if spawn is not None:
        spawn.discard_early()
