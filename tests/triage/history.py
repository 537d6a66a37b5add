"""Building stored histories for the triage tests (on any store)."""

from __future__ import annotations

from proctor.store import Store
from proctor.store.model import RunInfo, RunMetadata
from proctor.triage.signer import RecordSigner
from proctor.wire.event import NS_PER_SECOND, TRACEBACK_MIME_TYPE, Status
from proctor.wire.record import Attachment, TestRecord

DAY = 86_400 * NS_PER_SECOND
T0 = 1_700_000_000 * NS_PER_SECOND


def fault(
    test_id: str,
    site: str,
    line: int = 12,
    error: str = "KeyError: 'x'",
    source: str | None = None,
) -> TestRecord:
    """A failure of ``test_id`` in the project function ``site`` (at ``source``)."""
    text = (
        "Traceback (most recent call last):\n"
        f'  File "/home/me/shop/tests/test_x.py", line {line + 30}, in test_it\n'
        f"    {site}()\n"
        f'  File "/home/me/shop/shop/core.py", line {line}, in {site}\n'
        f"    {source or f'return settings[{site!r}]'}\n"
        f"{error}\n"
    )
    attachment = Attachment("traceback", text.encode(), TRACEBACK_MIME_TYPE)
    return TestRecord(test_id, Status.FAIL, None, T0, T0 + 1, frozenset(), (attachment,))


def ok(test_id: str) -> TestRecord:
    return TestRecord(test_id, Status.SUCCESS, None, T0, T0 + 1)


def store_run(
    store: Store,
    records: list[TestRecord],
    *,
    day: float,
    commit: str | None = "c1",
    python: str = "3.11",
    dirty: bool = False,
    job: str | None = None,
) -> RunInfo:
    if store.signer is None:
        store.signer = RecordSigner()
    return store.write_run(
        records,
        RunMetadata(
            started_ns=T0 + int(day * DAY),
            git_commit=commit,
            git_branch="main",
            git_dirty=dirty,
            python=python,
            platform="linux",
            properties={"ci.job": job} if job else {},
        ),
    )
