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
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys

__all__ = ["arm", "install"]

_status: list[int] = []


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


def arm(status: int) -> None:
    """Exit with ``status`` right after the other atexit handlers have run."""
    _status[:] = [status]
