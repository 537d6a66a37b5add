"""The worker protocol: what the controller and a test worker say to each other.

A worker in server mode (``python -m proctor.worker --serve``) has three channels
besides its own stdout and stderr:

* **commands** (controller -> worker): a pipe whose file descriptor is given with
  ``--commands-fd``. One JSON object per line, made by :func:`encode_command`.
* **results** (worker -> controller): a pipe given with ``--results-fd``, carrying
  a plain subunit v2 stream. Test code never holds this descriptor's number in
  ``sys.stdout``/``sys.stderr``, so printing cannot corrupt it. Replies to
  commands travel on the same stream as *control events*: file events with no
  test id, file name :data:`CONTROL_FILE` and MIME type :data:`CONTROL_MIME`,
  whose content is one JSON object (:func:`control_event` / :func:`parse_control`).
  Being ordinary v2 packets, they keep the stream readable by any subunit tool.
* **stdin**: debugger input for the test under way reaches the worker as
  :class:`Stdin` commands, after the worker asked with a ``stdin`` control event.

The full description, with the sequence of a run, a crash, a timeout and a
debugger session, lives in docs/worker-protocol.md.
"""

from __future__ import annotations

import base64
import enum
import json
import signal
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from proctor.wire.event import Event

__all__ = [
    "CONTROL_FILE",
    "CONTROL_MIME",
    "DUMP_SIGNAL",
    "PROTOCOL_VERSION",
    "Command",
    "Control",
    "ListTests",
    "ProtocolError",
    "Quit",
    "RunTests",
    "Stdin",
    "WorkerExit",
    "control_event",
    "decode_command",
    "encode_command",
    "ids_digest",
    "parse_control",
]

PROTOCOL_VERSION = 1
CONTROL_FILE = "proctor.control"
CONTROL_MIME = "application/vnd.proctor.control+json"
DUMP_SIGNAL = signal.SIGUSR1
"""Sending this to a worker writes every thread's stack to its stderr (faulthandler).

A worker names it in its ``ready`` event (``dump_signal``); this is the one
definition, for the worker and the controller.
"""


class WorkerExit(enum.IntEnum):
    """A worker's exit statuses (``docs/worker-protocol.md``, "Command line")."""

    OK = 0
    """A complete run or ``quit``, whatever the tests' outcomes."""
    USAGE = 2
    """A bad command line, or a suite that cannot be loaded (pytest stopped before collecting)."""
    CONTROLLER_GONE = 3
    """The results channel closed under the worker."""
    STOPPED = 4
    """The suite stopped the session after it was loaded: ``pytest.exit()`` (the
    ``error`` control event says where), or pytest's internal error."""
    INTERRUPTED = 130
    """A ``KeyboardInterrupt`` outside any test (server mode), or any (one-shot mode)."""


class ProtocolError(ValueError):
    """A message that does not follow the worker protocol."""


@dataclass(frozen=True, slots=True)
class ListTests:
    """Emit an ``exists`` event for every test, in discovery order, then ``done``."""


@dataclass(frozen=True, slots=True)
class RunTests:
    """Run these tests in this order, then reply ``done``."""

    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Stdin:
    """Bytes for the standard input of the test under way (empty means end of input)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Quit:
    """Finish the current command, tear down and exit 0."""


Command = ListTests | RunTests | Stdin | Quit


def encode_command(command: Command) -> bytes:
    """One command as a JSON line."""
    if isinstance(command, ListTests):
        message: dict[str, Any] = {"op": "list"}
    elif isinstance(command, RunTests):
        message = {"op": "run", "ids": list(command.ids)}
    elif isinstance(command, Stdin):
        message = {"op": "stdin", "data": base64.b64encode(command.data).decode("ascii")}
    else:
        message = {"op": "quit"}
    return json.dumps(message, separators=(",", ":")).encode("utf-8") + b"\n"


def decode_command(line: bytes) -> Command:
    """Parse one command line; raise :class:`ProtocolError` saying what is wrong."""
    try:
        message = json.loads(line)
    except ValueError as error:
        raise ProtocolError(f"command is not JSON: {line[:80]!r}: {error}") from None
    if not isinstance(message, dict):
        raise ProtocolError(f"command is not a JSON object: {line[:80]!r}")
    op = message.get("op")
    if op == "list":
        return ListTests()
    if op == "run":
        ids = message.get("ids")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ProtocolError("run command needs 'ids', a list of strings")
        return RunTests(tuple(ids))
    if op == "stdin":
        data = message.get("data")
        if not isinstance(data, str):
            raise ProtocolError("stdin command needs 'data', base64 text")
        try:
            return Stdin(base64.b64decode(data, validate=True))
        except ValueError as error:
            raise ProtocolError(f"stdin data is not base64: {error}") from None
    if op == "quit":
        return Quit()
    raise ProtocolError(f"unknown command op {op!r}; expected list, run, stdin or quit")


@dataclass(frozen=True, slots=True)
class Control:
    """A reply or notice from the worker.

    ``kind`` is one of:

    * ``ready``: the suite is imported (``pid``, ``protocol``, ``count`` of tests;
      since the first worker also ``framework``: ``unittest`` or ``pytest``,
      ``capture``: the files holding the running test's captured output by name
      (``stdout``, ``stderr``; empty when the framework captures, null with
      ``--no-capture``), ``dump_signal``: the signal name that makes the worker
      write every thread's stack to its stderr; ``digest``: :func:`ids_digest` of
      its test ids, which the controller compares between workers);
    * ``done``: the last command finished (``op``: ``list`` or ``run``; for a
      run also ``count``, the final statuses sent);
    * ``stdin``: the test ``test_id`` is waiting for input;
    * ``error``: the worker could not obey a command (``message``), or could not
      load the suite at all (sent instead of ``ready``; the worker then exits 2).
      During a ``run`` it ends the run instead of ``done``: ids without a final
      status were not run. With ``exit`` (an int, :class:`WorkerExit`) the worker
      is stopping on its own (``test_id`` names the test that asked, e.g. with
      ``pytest.exit()``): it obeys no further command and exits with that status.

    Readers must ignore fields they do not know: later versions add fields.
    """

    kind: str
    fields: dict[str, Any]


def ids_digest(ids: Sequence[str]) -> str:
    """A digest of a worker's test ids in order (its ``ready`` event's ``digest``):
    workers whose digests differ may have collected different tests.

    Not cryptographic (zlib's checksums, already imported by every worker):
    it tells honest differences apart. Ids with lone surrogates count as written.
    """
    data = "\n".join(ids).encode("utf-8", "surrogatepass")
    return f"{len(ids)}:{zlib.crc32(data):08x}"


def control_event(kind: str, **fields: Any) -> Event:
    """The control event for a reply."""
    payload = json.dumps({"kind": kind, **fields}, separators=(",", ":")).encode("utf-8")
    return Event(file_name=CONTROL_FILE, file_bytes=payload, eof=True, mime_type=CONTROL_MIME)


def parse_control(event: Event) -> Control | None:
    """The reply an event carries, or None for an ordinary event."""
    if event.test_id is not None or event.file_name != CONTROL_FILE:
        return None
    try:
        message = json.loads(event.file_bytes)
    except ValueError as error:
        raise ProtocolError(f"control event is not JSON: {error}") from None
    if not isinstance(message, dict) or not isinstance(message.get("kind"), str):
        raise ProtocolError("control event needs a JSON object with a 'kind'")
    kind = message.pop("kind")
    return Control(kind, message)
