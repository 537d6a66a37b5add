"""Triage: failure signatures (and, later, clusters, flakiness and known-bug rules).

``signature_of(text)`` gives a failure's :class:`Signature`; see
:mod:`proctor.triage.signature` for the algorithm and docs/triage.md for the
reasons and the measured quality. This layer sits above the runner and below
the CLI; for now it imports only ``wire`` (and may import ``events``).
"""

from __future__ import annotations

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
