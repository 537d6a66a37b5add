"""What a test becomes when its worker dies under it, or is killed for a timeout.

The worker cannot report such a test, so the controller does, with events of its
own on the worker's route: an ``inprogress`` (when the worker had not announced
the test), a ``traceback`` attachment saying what happened, and
then ``fail``. The traceback names the cause and carries the evidence: the exit
code or signal, the worker's last output (faulthandler's traceback of a native
crash lands there), the stack of every thread for a timeout, and whatever the
test printed, read back from the worker's capture files.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence
from typing import BinaryIO

from proctor.events.emit import ending_events, status_event
from proctor.runner.slot import Slot
from proctor.wire.event import NS_PER_SECOND, TEXT_MIME_TYPE, Event, Status
from proctor.wire.record import Attachment

__all__ = [
    "SALVAGE_HEAD",
    "SALVAGE_LIMIT",
    "crash_text",
    "describe_exit",
    "failure_events",
    "salvage_capture",
    "stuck_text",
    "teardown_text",
    "timeout_text",
]

SALVAGE_LIMIT = 64 * 1024 * 1024
"""Bytes of a dead test's capture file kept (the worker's own bound for one test's output)."""
SALVAGE_HEAD = 1024 * 1024
"""...of which the first this many, and the rest from the end, with a note of the cut between."""
TAIL = 64 * 1024
"""Bytes of a worker's own output put into a failure's traceback."""


def describe_exit(returncode: int) -> str:
    """``killed by signal 11 (SIGSEGV)`` / ``exited with code 3``."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "unknown signal"
        return f"killed by signal {-returncode} ({name})"
    return f"exited with code {returncode}"


def _pid(slot: Slot) -> str:
    return f" (pid {slot.pid})" if slot.pid is not None else ""


def crash_text(slot: Slot, test_id: str, returncode: int) -> str:
    """The traceback of a test whose worker died under it (or just before it: the
    worker had not announced it, so it died between tests, in a fixture)."""
    if slot.current == test_id:
        when = "while running this test"
    else:
        when = "before this test started (in a class or module fixture, or between tests)"
    text = (
        f"Worker {slot.worker}{_pid(slot)} {describe_exit(returncode)} {when}.\n"
        "The test was failed and the run went on without that worker.\n"
    )
    output = slot.output_since(slot.output_mark, TAIL)
    if output:
        text += "\nThe worker's last output (native crashes leave faulthandler's traceback here):\n"
        text += output.decode("utf-8", "replace")
    return text


def timeout_text(slot: Slot, timeout: float | None) -> tuple[str, bytes]:
    """The traceback of a test killed for running over ``timeout``, and what the
    worker printed (outside the test's capture) before the stack dump."""
    mark = slot.dump_mark if slot.dump_mark is not None else len(slot.output)
    dump = bytes(slot.output[mark:]).decode("utf-8", "replace")
    before = slot.output_since(slot.output_mark, TAIL, end=mark)
    limit = f"{timeout:g}s" if timeout is not None else "the time limit"
    text = (
        f"Timed out: still running after {limit} (--timeout).\n"
        f"Worker {slot.worker}{_pid(slot)} was killed; the run went on without it.\n\n"
    )
    if dump:
        text += "Stacks of all its threads at that moment:\n" + dump
    else:
        text += "The worker did not answer the request for a stack dump.\n"
    return text, before


def stuck_text(slot: Slot, *, starting: bool, wait: float) -> str:
    """Why a worker stuck starting (not ``ready`` after ``wait`` seconds) or quitting
    (alive ``wait`` seconds after ``quit``) was killed, with its stacks."""
    if starting:
        what = (
            f"worker {slot.worker}{_pid(slot)} was not ready after {wait:g}s (still importing "
            "or collecting the suite) and was killed"
        )
    else:
        what = (
            f"worker {slot.worker}{_pid(slot)} had not exited {wait:g}s after quit (a hung "
            "teardown, or a non-daemon thread a test left running) and was killed"
        )
    mark = slot.dump_mark if slot.dump_mark is not None else len(slot.output)
    dump = slot.output_since(mark, TAIL).decode("utf-8", "replace").rstrip()
    before = slot.output_since(0, 4096, end=mark).decode("utf-8", "replace").rstrip()
    if starting and before:
        what += f"; its output:\n{before}\n"
    if dump:
        return f"{what}; the stacks of its threads:\n{dump}"
    return f"{what}; it did not answer the request for a stack dump"


def teardown_text(slot: Slot, returncode: int) -> str:
    """The traceback of a worker that exited with an error after ``quit``."""
    text = (
        f"Worker {slot.worker}{_pid(slot)} {describe_exit(returncode)} while tearing down "
        "after quit (in a tearDownClass, tearDownModule or fixture teardown, an atexit "
        "handler, or the interpreter's exit).\n"
    )
    output = slot.output_since(max(slot.quit_mark, slot.output_mark), TAIL)
    if output:
        text += "\nThe worker's output after quit:\n" + output.decode("utf-8", "replace")
    return text


def failure_events(
    slot: Slot,
    test_id: str,
    text: str,
    *,
    output: bytes = b"",
    salvaged: Sequence[Attachment] = (),
    now: float,
    now_ns: int,
    runnable: bool = True,
) -> list[Event]:
    """The events that fail ``test_id`` on ``slot``'s route (see the module docstring);
    ``runnable`` False for what is not a test (a teardown)."""
    announced = slot.current == test_id
    route = slot.current_route if announced and slot.current_route else slot.route
    tags = frozenset((slot.tag,))
    events = []
    if not announced:
        started = now_ns - round((now - slot.since) * NS_PER_SECOND)
        events.append(status_event(test_id, Status.INPROGRESS, started, tags, runnable, route))
    files = [Attachment("traceback", text.encode("utf-8"), TEXT_MIME_TYPE)]
    if output:
        files.append(Attachment("worker-output", output, TEXT_MIME_TYPE))
    files.extend(salvaged)  # what the test printed before it died
    events.extend(ending_events(test_id, Status.FAIL, files, now_ns, tags, runnable, route))
    return events


def salvage_capture(paths: dict[str, str], limit: int = SALVAGE_LIMIT) -> list[Attachment]:
    """What a dead worker's capture files hold (the output of the test it was running),
    as attachments. The files are deleted: a worker deletes them itself only when
    it exits normally.

    A file over ``limit`` bytes keeps its first :data:`SALVAGE_HEAD` bytes (at most
    a quarter of ``limit``) and its last ones, with a line saying how much was cut:
    the bound the worker puts on one test's output.
    """
    found = []
    for name, path in paths.items():
        try:
            with open(path, "rb") as file:
                data = _bounded_read(file, limit)
            os.unlink(path)
        except OSError:
            continue
        if data:
            found.append(Attachment(name, data, TEXT_MIME_TYPE))
    return found


def _bounded_read(file: BinaryIO, limit: int) -> bytes:
    size = os.fstat(file.fileno()).st_size
    if size <= limit:
        return file.read()
    head = file.read(min(SALVAGE_HEAD, limit // 4))
    file.seek(size - (limit - len(head)))
    tail = file.read()
    cut = size - len(head) - len(tail)
    note = f"\n[... {cut} bytes cut by proctor: the test wrote {size} ...]\n"
    return head + note.encode() + tail
