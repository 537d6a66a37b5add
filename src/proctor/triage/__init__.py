"""Triage: failure signatures (and, later, clusters, flakiness and known-bug rules).

``signature_of(text)`` gives a failure's :class:`Signature`; see
:mod:`proctor.triage.signature` for the algorithm and docs/triage.md for the
reasons and the measured quality. This layer sits above the runner and below
the CLI; for now it imports only ``wire`` (and may import ``events``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from proctor.triage.normalise import normalise_message
    from proctor.triage.signature import (
        ALGORITHM,
        Kind,
        Project,
        Signature,
        signature_of,
        signature_of_record,
    )
    from proctor.triage.traceback import ExceptionReport, Frame, ParsedFailure, parse_failure

# Imported on first use: the commands that only read stored signatures
# (`proctor last`) need neither the parser nor hashlib.
_WHERE = {
    "normalise_message": "normalise",
    "ALGORITHM": "signature",
    "Kind": "signature",
    "Project": "signature",
    "Signature": "signature",
    "signature_of": "signature",
    "signature_of_record": "signature",
    "ExceptionReport": "traceback",
    "Frame": "traceback",
    "ParsedFailure": "traceback",
    "parse_failure": "traceback",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'proctor.triage' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"proctor.triage.{module}"), name)


__all__ = [
    "ALGORITHM",
    "ExceptionReport",
    "Frame",
    "Kind",
    "ParsedFailure",
    "Project",
    "Signature",
    "normalise_message",
    "parse_failure",
    "signature_of",
    "signature_of_record",
]


def __dir__() -> list[str]:
    return sorted(__all__)
