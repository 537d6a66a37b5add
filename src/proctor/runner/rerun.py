"""``--rerun-failures N``: a failing test runs again, up to N more times, in the same run.

The controller asks :class:`Reruns` about every record. A failure (``fail`` or
``uxsuccess`` of a runnable test, a crash or a timeout included) with attempts
left is *retried*: the controller puts its id back at the front of the queue,
where any free worker takes it (a replacement, when the first attempt killed
its worker), and the record does not count in the run's outcome. The attempts
after the first carry the tag ``attempt-K`` (K = 2, 3...). Every attempt is
passed on whole (view, store): the store keeps them all as results of the same
test in the same run, which is what :mod:`proctor.triage.flaky` takes as
evidence (on one commit and variant, the test both passed and failed). The
run's outcome follows each test's final attempt; a test that failed and then
passed is *flaky* and counted apart.
"""

from __future__ import annotations

from proctor.wire.event import Status
from proctor.wire.record import TestRecord

__all__ = ["Reruns"]


class Reruns:
    """The attempts of the tests of one run (see the module docstring)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.attempts: dict[str, int] = {}  # test id -> attempts started so far (when > 1)
        self.waiting: dict[str, TestRecord] = {}  # retried, next attempt not in yet

    def tagged(self, record: TestRecord) -> TestRecord:
        """``record`` with its ``attempt-K`` tag (a rerun), else as it is."""
        attempt = self.attempts.get(record.test_id)
        if attempt is None:
            return record
        self.waiting.pop(record.test_id, None)
        return record._replace(tags=record.tags | {f"attempt-{attempt}"})

    def retry(self, record: TestRecord) -> int | None:
        """The number of the next attempt if ``record`` is a failure to run again."""
        status = record.status
        if not self.limit or not record.runnable:
            return None
        if status is not Status.FAIL and status is not Status.UXSUCCESS:
            return None
        attempt = self.attempts.get(record.test_id, 1)
        if attempt > self.limit:
            return None
        self.attempts[record.test_id] = attempt + 1
        self.waiting[record.test_id] = record
        return attempt + 1

    def passed_again(self, record: TestRecord) -> bool:
        """Whether ``record`` is a rerun that passed (the test is flaky)."""
        return record.status is Status.SUCCESS and record.test_id in self.attempts
