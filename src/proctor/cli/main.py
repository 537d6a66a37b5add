"""The ``proctor`` command: the entry point.

The commands themselves are in :mod:`proctor.cli.commands` (click), imported
by :func:`main`. :func:`console` first gives ``proctor run`` a head start:
it starts the first worker before click and the rest of Proctor are imported
(:mod:`proctor.cli.run_early`), so that the worker imports the suite while
the controller imports itself.
"""

from __future__ import annotations

import gc
import sys

__all__ = ["console", "main"]


def main(argv: list[str] | None = None, *, obj: object = None) -> int:
    """Run the command line; return the exit code (what tests call in-process).

    ``obj`` is click's context object: a :class:`proctor.cli.deps.CliDeps`
    gives the commands, say, fake workers.
    """
    from proctor.cli.commands import main as run_command_line

    return run_command_line(argv, obj=obj)


def console() -> None:
    """The ``proctor`` console script: :func:`main`, then exit without tearing down the heap.

    Only here, never in :func:`main`, which tests call in-process.
    """
    from proctor.cli import run_early
    from proctor.cli.output import reserve_standard_descriptors

    reserve_standard_descriptors()  # a closed stdout must not become the next file opened
    run_early.maybe_start(sys.argv[1:])  # before anything else is imported
    from proctor.runner import fastexit

    fastexit.install()
    # Proctor's streams build no reference cycles, but millions of short-lived
    # tuples; with the default threshold (700) the cyclic collector runs every
    # few tests and re-walks everything still alive: 35-40% of `stream to-junit`
    # (measured). Collect far less often instead (cycles are still collected).
    gc.set_threshold(100_000, 50, 100)
    status = main()
    run_early.finish()  # (the fast exit skips the atexit handlers registered before it)
    fastexit.arm(status)
    sys.exit(status)


def __getattr__(name: str) -> object:
    """``cli``, ``COMMANDS`` and ``LazyGroup``, for code that imported them from here."""
    if name in ("cli", "COMMANDS", "LazyGroup"):
        from proctor.cli import commands

        return getattr(commands, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":  # pragma: no cover
    console()
