"""Processes tests leave behind: finding a worker's descendants and ending them.

A test may start processes and not stop them (a server a fixture forgot, a
``subprocess.Popen`` never waited for, a daemon that double-forked, a child
that called ``setsid``). They must not outlive the run. Killing a worker's
process group reaches the ones that stayed in it, not one that called
``setsid`` (or ``setpgid``), and once its parent has exited an orphan is
re-parented to init, out of any tree walk.

The mechanism (Linux): each worker is made a **child subreaper**
(``PR_SET_CHILD_SUBREAPER``, set by :func:`proctor.runner.spawn.lifeline`
between fork and exec; it survives ``exec``). Every orphan among its
descendants is then re-parented to the worker, not to init, so while the worker
lives, *every* process its tests started, whatever session or group it moved
to, is in the worker's tree (``/proc/PID/task/TID/children``). So:

* a worker that exits normally ends its tree itself, last thing before it
  exits (:func:`end_descendants`, an ``atexit`` handler registered before the
  suite is imported, so it runs after the suite's own handlers):
  multiprocessing's resource tracker and forkserver are asked to stop first
  (they clean up after the suite when their pipe closes), the rest get
  SIGTERM, and SIGKILL if still there after a second; the worker reaps them
  and says on its stderr what it ended;
* a worker the controller kills (``--timeout``, a second Ctrl-C, the end of a
  run) has its tree frozen and killed first (:func:`kill_tree`: SIGSTOP to each
  process found, again until no new one appears, then SIGKILL), so nothing can
  fork out of reach meanwhile;
* when any worker has exited, its process group is killed before the
  controller reaps it (the unreaped worker holds its pid, so the group id
  cannot have been reused).

What a test can notice of its worker being a subreaper: an orphan it made
(a double-forked daemon) has the worker as its parent, not init (``getppid()``
is not 1), and becomes the worker's zombie when it ends (reaped when the worker
exits; a test calling ``os.wait()`` for any child may get it).

The tree of a worker that dies on its own (a segfault, ``os._exit`` in a
test) is re-parented to init at that moment. The process group kill reaches
what stayed in the group; for the rest, each worker puts its pid in its
environment (:data:`MARKER`, inherited by whatever its tests start), and when a
worker exits with a failure status the controller kills every process of the
user's whose environment carries that worker's mark (:func:`kill_marked`), before
it reaps the worker (so no other worker can have that pid). What is left: a
process that both left the group and was started with an environment of its
own, by a worker that died. Elsewhere than Linux there is no subreaper and no
``/proc``: the process group kill alone.

Only ``os`` and ``signal``: the worker imports this before the suite.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time

__all__ = ["MARKER", "children", "descendants", "end_descendants", "kill_marked", "kill_tree"]

MARKER = "PROCTOR_WORKER_PID"
"""The environment variable a server worker sets to its pid, for its tests' processes to inherit."""

GRACE = 1.0
"""Seconds leftover processes get between SIGTERM and SIGKILL when a worker exits."""


def children(pid: int) -> list[int]:
    """The children of ``pid`` (of any of its threads), from ``/proc``; [] if unknown."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        found.extend(_read_pids(f"/proc/{pid}/task/{task}/children"))
    return found


def _read_pids(path: str) -> list[int]:
    try:
        with open(path, "rb") as listing:
            return [int(child) for child in listing.read().split()]
    except (OSError, ValueError):  # the task ended meanwhile
        return []


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, parents before their children."""
    found: list[int] = []
    seen = {pid}
    queue = [pid]
    while queue:
        for child in children(queue.pop(0)):
            if child not in seen:
                seen.add(child)
                found.append(child)
                queue.append(child)
    return found


def kill_tree(pid: int) -> list[int]:
    """Freeze every descendant of ``pid`` (SIGSTOP, again until no new one
    appears), then SIGKILL them all; ``pid`` itself is left alone. The killed pids."""
    frozen: list[int] = []
    seen: set[int] = set()
    for _ in range(100):  # a fork bomb cannot keep this going forever
        new = [child for child in descendants(pid) if child not in seen]
        if not new:
            break
        for child in new:
            seen.add(child)
            frozen.append(child)
            _signal(child, signal.SIGSTOP)
    for child in frozen:
        _signal(child, signal.SIGKILL)
    return frozen


def kill_marked(worker: int) -> list[int]:
    """SIGKILL every process of this user whose environment carries ``worker``'s
    :data:`MARKER` (call it before reaping ``worker``). The killed pids."""
    mark = f"{MARKER}={worker}".encode()
    killed: list[int] = []
    try:
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return killed
    for pid in pids:
        if pid == worker or not _carries(pid, mark):
            continue
        _signal(pid, signal.SIGKILL)
        killed.append(pid)
    return killed


def _carries(pid: int, mark: bytes) -> bool:
    """Whether ``pid``'s environment holds ``mark`` (another user's cannot be read)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as environ:
            return mark in environ.read().split(b"\0")
    except OSError:
        return False


def end_descendants(who: str = "proctor.worker") -> None:
    """End what this process's children and their descendants left running (see the
    module docstring); meant for a subreaper's exit. Says on stderr what it ended."""
    me = os.getpid()
    if not children(me):
        return
    _stop_multiprocessing_helpers()
    running = [(pid, name) for pid, name, state in map(_status, descendants(me)) if state != "Z"]
    for child, _ in running:
        _signal(child, signal.SIGTERM)
    deadline = time.monotonic() + GRACE
    while _reap(me) and time.monotonic() < deadline:
        time.sleep(0.01)
    for _ in range(100):
        left = descendants(me)
        if not left:
            break
        for child in left:
            _signal(child, signal.SIGKILL)
        _reap(me, wait=True)
    if not running:
        return  # only children that had ended, which nobody waited for: reaped
    shown = ", ".join(f"{pid} ({name})" for pid, name in running[:10])
    more = f" and {len(running) - 10} more" if len(running) > 10 else ""
    print(
        f"{who}: ended {len(running)} process(es) the tests left running: {shown}{more}",
        file=sys.stderr,
    )


def _stop_multiprocessing_helpers() -> None:
    """Let multiprocessing's resource tracker and forkserver end as they would at
    exit (their pipe closed: the tracker then unlinks what the suite leaked)."""
    for module_name, attribute in (
        ("multiprocessing.resource_tracker", "_resource_tracker"),
        ("multiprocessing.forkserver", "_forkserver"),
    ):
        helper = getattr(sys.modules.get(module_name), attribute, None)
        stop = getattr(helper, "_stop", None)
        if stop is not None:
            with contextlib.suppress(Exception):
                stop()


def _reap(pid: int, *, wait: bool = False) -> bool:
    """Reap the children of this process that have ended (all of them, ``wait``:
    waiting for each). True while some are still alive."""
    alive = False
    for child in children(pid):
        try:
            done, _ = os.waitpid(child, 0 if wait else os.WNOHANG)
        except ChildProcessError:
            continue
        alive = alive or done == 0
    return alive


def _status(pid: int) -> tuple[int, str, str]:
    """``pid``, its command name and its state letter (``Z``: a zombie), from ``/proc``."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read().decode("utf-8", "replace")
    except OSError:
        return pid, "?", "?"
    name = text[text.find("(") + 1 : text.rfind(")")]
    fields = text[text.rfind(")") + 1 :].split()
    return pid, name, fields[0] if fields else "?"


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)
