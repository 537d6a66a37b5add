"""Leaving a process without tearing its heap down.

A worker that ran a large suite, and the controller that collected its results,
hold hundreds of thousands of objects and modules; the interpreter's final
teardown frees them one by one, which measured about 50 ms after a 5,000-test
run: time a user waits for nothing. :func:`install` registers, as the *first*
``atexit`` handler (so it runs *last*, after every handler the suite or a
library registers, and after non-daemon threads were joined), a handler that
flushes the standard streams and ends the process with :func:`os._exit` once
:func:`arm` has been told the exit status. A process that never arms it (an
unexpected exception on the way out, say) exits the ordinary way.

The interpreter joins non-daemon threads *before* it runs the atexit handlers,
so a thread a test left running (or a library's worker thread) holds an armed
process up all the same. :func:`leave` does not wait for them: it runs the
atexit handlers itself, right away, then exits, and says on stderr which
threads it did not wait for.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from typing import NoReturn

__all__ = ["arm", "install", "installed", "leave"]

_status: list[int] = []
_installed: list[bool] = []


def _exit_now() -> None:
    if not _status:
        return
    _flush(sys.stdout)
    _flush(sys.stderr)
    os._exit(_status[0])


def _flush(stream: object) -> None:
    flush = getattr(stream, "flush", None)
    if flush is not None:
        with contextlib.suppress(OSError, ValueError):  # closed, or the reader went away
            flush()


def install() -> None:
    """Register the fast exit; call it before anything else registers atexit handlers."""
    atexit.register(_exit_now)
    _installed[:] = [True]


def installed() -> bool:
    """Whether this process ends by the fast exit once its program returns (the
    console scripts; not a test calling the command line in-process): what the
    end of the process releases by itself need not be released before."""
    return bool(_installed)


def arm(status: int) -> None:
    """Exit with ``status`` right after the other atexit handlers have run."""
    _status[:] = [status]


def leave(status: int, who: str) -> NoReturn:
    """End the process now with ``status``: atexit handlers, flush, :func:`os._exit`.

    Unlike :func:`sys.exit`, it does not wait for non-daemon threads first (they
    end with the process); ``who`` names the program in the notice that lists
    them on stderr. Call it once everything of the program's own is flushed
    and closed.
    """
    stray = _stray_threads()
    if stray:
        names = ", ".join(stray)
        print(
            f"{who}: exiting without waiting for {len(stray)} non-daemon thread(s) "
            f"still running: {names}",
            file=sys.stderr,
        )
    arm(status)
    atexit._run_exitfuncs()  # the handler install() registered, last, ends the process
    _exit_now()  # when install() was not called
    os._exit(status)  # unreachable: _exit_now exits once armed


def _stray_threads() -> list[str]:
    """Names of the threads, other than this one, that an ordinary exit would wait for."""
    threading = sys.modules.get("threading")
    if threading is None:
        return []
    current = threading.current_thread()
    return [
        thread.name
        for thread in threading.enumerate()
        if thread is not current and not thread.daemon and thread.is_alive()
    ]
