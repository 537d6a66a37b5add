"""Bug records as event timelines: offline edits, conflict-free merges, filtered sync.

A bug is a log of immutable, content-addressed events (:mod:`proctor.bugs.event`);
its state is a pure fold of them (:mod:`proctor.bugs.state`); a
:class:`~proctor.bugs.replica.Replica` is one copy that takes local edits and merges
others' events; bundle and summary files (:mod:`proctor.bugs.bundle`) carry events
between copies; :func:`~proctor.bugs.author.current_author` says who is editing.
docs/bugs.md explains the model.

This layer sits beside ``proctor.triage``: above the store, below the CLI. It
imports only the standard library for now; persistent storage of events will come
through the store contract.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from proctor.bugs.author import Author, current_author
    from proctor.bugs.bundle import (
        Bundle,
        decode_bundle,
        decode_summary,
        encode_bundle,
        encode_summary,
        import_bundle,
    )
    from proctor.bugs.errors import (
        AmbiguousBugId,
        BugError,
        BugEventError,
        BundleError,
        FilterError,
        UnknownBug,
    )
    from proctor.bugs.event import BugEvent, make_event, parse_event
    from proctor.bugs.filters import BugFilter, parse_filter
    from proctor.bugs.replica import MergeResult, Replica, Summary
    from proctor.bugs.state import BugComment, BugLink, BugState, fold

__all__ = [
    "AmbiguousBugId",
    "Author",
    "BugComment",
    "BugError",
    "BugEvent",
    "BugEventError",
    "BugFilter",
    "BugLink",
    "BugState",
    "Bundle",
    "BundleError",
    "FilterError",
    "MergeResult",
    "Replica",
    "Summary",
    "UnknownBug",
    "current_author",
    "decode_bundle",
    "decode_summary",
    "encode_bundle",
    "encode_summary",
    "fold",
    "import_bundle",
    "make_event",
    "parse_event",
    "parse_filter",
]

_HOME = {
    "Author": "author",
    "current_author": "author",
    "Bundle": "bundle",
    "decode_bundle": "bundle",
    "decode_summary": "bundle",
    "encode_bundle": "bundle",
    "encode_summary": "bundle",
    "import_bundle": "bundle",
    "AmbiguousBugId": "errors",
    "BugError": "errors",
    "BugEventError": "errors",
    "BundleError": "errors",
    "FilterError": "errors",
    "UnknownBug": "errors",
    "BugEvent": "event",
    "make_event": "event",
    "parse_event": "event",
    "BugFilter": "filters",
    "parse_filter": "filters",
    "MergeResult": "replica",
    "Replica": "replica",
    "Summary": "replica",
    "BugComment": "state",
    "BugLink": "state",
    "BugState": "state",
    "fold": "state",
}


def __getattr__(name: str) -> object:
    # Imported on first use, so that a command needing one module (``bug list``
    # needs almost none) does not pay for all of them.
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"proctor.bugs.{home}"), name)


def __dir__() -> list[str]:
    return sorted(__all__)
