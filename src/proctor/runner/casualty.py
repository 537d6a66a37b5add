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

from proctor.runner.slot import Slot
from proctor.wire.event import NS_PER_SECOND, Event, Status
from proctor.wire.record import Attachment

__all__ = ["crash_text", "describe_exit", "failure_events", "salvage_capture", "timeout_text"]

TEXT_MIME_TYPE = "text/plain; charset=utf8"


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
    output = slot.output_since(slot.output_mark)
    if output:
        text += "\nThe worker's last output (native crashes leave faulthandler's traceback here):\n"
        text += output.decode("utf-8", "replace")
    return text


def timeout_text(slot: Slot, timeout: float | None) -> tuple[str, bytes]:
    """The traceback of a test killed for running over ``timeout``, and what the
    worker printed (outside the test's capture) before the stack dump."""
    mark = slot.dump_mark if slot.dump_mark is not None else len(slot.output)
    dump = bytes(slot.output[mark:]).decode("utf-8", "replace")
    before = slot.output_since(slot.output_mark)[: max(0, mark - slot.output_mark)]
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


def failure_events(
    slot: Slot,
    test_id: str,
    text: str,
    *,
    output: bytes = b"",
    salvaged: Sequence[Attachment] = (),
    now: float,
    now_ns: int,
) -> list[Event]:
    """The events that fail ``test_id`` on ``slot``'s route (see the module docstring)."""
    announced = slot.current == test_id
    route = slot.current_route if announced and slot.current_route else slot.route
    tags = frozenset((slot.tag,))
    events = []
    if not announced:
        started = now_ns - round((now - slot.since) * NS_PER_SECOND)
        events.append(
            Event(
                test_id=test_id,
                status=Status.INPROGRESS,
                tags=tags,
                route_code=route,
                timestamp=started,
            )
        )
    files = [Attachment("traceback", text.encode("utf-8"), TEXT_MIME_TYPE)]
    if output:
        files.append(Attachment("worker-output", output, TEXT_MIME_TYPE))
    files.extend(salvaged)  # what the test printed before it died
    events.extend(
        Event(
            test_id=test_id,
            file_name=attachment.name,
            file_bytes=attachment.content,
            eof=True,
            mime_type=attachment.mime_type,
            route_code=route,
            timestamp=now_ns,
        )
        for attachment in files
    )
    events.append(
        Event(test_id=test_id, status=Status.FAIL, tags=tags, route_code=route, timestamp=now_ns)
    )
    return events


def salvage_capture(paths: dict[str, str]) -> list[Attachment]:
    """What a dead worker's capture files hold (the output of the test it was running),
    as attachments. The files are deleted: a worker deletes them itself only when
    it exits normally."""
    found = []
    for name, path in paths.items():
        try:
            with open(path, "rb") as file:
                data = file.read()
            os.unlink(path)
        except OSError:
            continue
        if data:
            found.append(Attachment(name, data, TEXT_MIME_TYPE))
    return found
