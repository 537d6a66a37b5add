"""The signer a store uses to sign failing results as they are stored.

``RecordSigner`` signs a record with :func:`~proctor.triage.signature.signature_of`
from its ``traceback`` attachments (else its ``reason``), remembering the
signature of each text it has seen (a run's failures often share one
traceback text: a fault reached by many tests, a server that is down), so a
repeated text costs a dictionary look-up, not a parse.

A weak signature (no text at all: an unexpected success, a test that never
finished, a failure with no detail) says nothing about the fault, so it is
made per test: the test id joins its key, and failures of different tests
never share its cluster.

The parser and the signature algorithm are imported at the first failure to
sign: a run that passes (and a controller starting) does not pay for them.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from proctor.store.failures import SignedFailure
from proctor.triage.algorithm import algorithm_name
from proctor.triage.text import failure_text
from proctor.wire.event import Status
from proctor.wire.record import TestRecord

if TYPE_CHECKING:
    from proctor.triage.signature import Project, Signature

__all__ = ["MEMO_SIZE", "MEMO_TEXT", "RecordSigner", "failure_text", "per_test"]

MEMO_SIZE = 4096
"""Distinct texts remembered; the memory is emptied when it is full."""
MEMO_TEXT = 64 * 1024
"""Characters of a text at most for it to be remembered (and so, at most
MEMO_SIZE x MEMO_TEXT characters held)."""

_DIGEST_HEX = 16


class RecordSigner:
    """Signs failing records for a store (see the module docstring)."""

    def __init__(
        self, project: Project | None = None, *, depth: int | None = 1, source: bool = True
    ) -> None:
        self.project = project
        """Whose frames are the project's (None: no project roots known)."""
        self._options = {"depth": depth, "source": source}
        self.algorithm = algorithm_name(depth=depth, source=source)
        """The name of the algorithm this signer signs with."""
        self._memo: dict[str, tuple[Signature, str, str]] = {}
        self.computed = 0
        """Signatures computed (not remembered): for measuring the memo."""

    def __call__(self, record: TestRecord) -> Signature | None:
        """The signature of a failing record (None: it did not fail)."""
        found = self._signed(record)
        return None if found is None else found[0]

    def sign(self, record: TestRecord) -> SignedFailure | None:
        """The signature of a failing record with the exception type and
        normalised message it ends with (what rules match on; '' and '' when
        it has no text); None when it did not fail."""
        found = self._signed(record)
        return None if found is None else SignedFailure(*found)

    def _signed(self, record: TestRecord) -> tuple[Signature, str, str] | None:
        status = record.status
        if status.is_final and status not in (Status.FAIL, Status.UXSUCCESS):
            return None
        text = failure_text(record)
        if text.strip():
            known = self._memo.get(text)
            if known is None:
                known = self._of_text(text)
                self.computed += 1
                if len(text) <= MEMO_TEXT:
                    if len(self._memo) >= MEMO_SIZE:
                        self._memo.clear()
                    self._memo[text] = known
        else:
            from proctor.triage.signature import signature_of_record

            found = signature_of_record(
                record,
                project=self._project(),
                **self._options,  # type: ignore[arg-type]
            )
            if found is None:
                return None
            known = (found, "", "")
        signature, type_, message = known
        if signature.weak:
            return per_test(signature, record.test_id), type_, message
        return known

    def _project(self) -> Project:
        from proctor.triage.signature import NO_PROJECT

        return NO_PROJECT if self.project is None else self.project

    def _of_text(self, text: str) -> tuple[Signature, str, str]:
        from proctor.triage.signature import exception_of, signature_of
        from proctor.triage.traceback import parse_failure

        parsed = parse_failure(text)
        signature = signature_of(
            text,
            project=self._project(),
            parsed=parsed,
            **self._options,  # type: ignore[arg-type]
        )
        return (signature, *exception_of(parsed))


def per_test(signature: Signature, test_id: str) -> Signature:
    """A weak signature made the test's own."""
    from proctor.triage.signature import Signature

    key = f"{signature.key} | {test_id}"
    text = f"{signature.algorithm}\0{signature.kind}\0{key}"
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:_DIGEST_HEX]
    return Signature(signature.algorithm, signature.kind, key, digest)
