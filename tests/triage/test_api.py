"""The public names of proctor.triage, pinned."""

from __future__ import annotations

import dataclasses

import pytest

import proctor.triage as triage


def test_triage_exports_are_pinned() -> None:
    assert triage.__all__ == [
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
    for name in triage.__all__:
        assert hasattr(triage, name), name


def test_signatures_are_frozen_values() -> None:
    signature = triage.signature_of("ValueError: x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        signature.key = "other"  # type: ignore[misc]
    assert {signature, triage.signature_of("ValueError: x")} == {signature}  # hashable, equal
    assert signature != triage.signature_of("ValueError: y")
