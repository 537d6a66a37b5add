"""Signing at ingest (RecordSigner) and re-clustering (proctor.triage.recluster)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from proctor.store import Store, open_store
from proctor.store.memory import MemoryStore
from proctor.triage.recluster import recluster
from proctor.triage.signature import ALGORITHM, signature_of_record
from proctor.triage.signer import MEMO_TEXT, RecordSigner
from proctor.wire.event import Status
from proctor.wire.record import TestRecord

from .history import T0, fault, ok


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened = MemoryStore() if request.param == "memory" else open_store(str(tmp_path / "r"))
    yield opened
    opened.close()


def test_the_signer_agrees_with_signature_of_record_and_remembers_texts() -> None:
    signer = RecordSigner()
    one = fault("a", "get")
    assert signer(one) == signature_of_record(one)
    assert signer(one._replace(test_id="b")) == signature_of_record(one)
    assert signer.computed == 1  # the same text again: remembered
    assert signer(ok("a")) is None
    assert signer(TestRecord("a", Status.SKIP, None, T0, T0)) is None


def test_the_parser_is_imported_at_the_first_failure_not_with_the_signer() -> None:
    # A store is given its signer as a run starts; a run that passes never
    # needs the parser or the algorithm.
    code = (
        "import sys\n"
        "from proctor.triage.signer import RecordSigner\n"
        "from proctor.triage.algorithm import algorithm_name\n"
        "from tests.triage.history import fault, ok\n"
        "parts = ('proctor.triage.signature', 'proctor.triage.traceback')\n"
        "signer = RecordSigner(depth=None)\n"
        "assert signer.algorithm == algorithm_name(depth=None), signer.algorithm\n"
        "assert signer(ok('a')) is None\n"
        "print(sorted(m for m in parts if m in sys.modules))\n"
        "signed = signer(fault('a', 'get'))\n"
        "assert signed is not None and signed.algorithm == signer.algorithm\n"
        "print(sorted(m for m in parts if m in sys.modules))\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "[]",
        "['proctor.triage.signature', 'proctor.triage.traceback']",
    ]


def test_the_memory_holds_only_short_texts_and_a_bounded_number(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("proctor.triage.signer.MEMO_SIZE", 8)
    signer = RecordSigner()
    huge = fault("a", "get", error="KeyError: '" + "x" * (MEMO_TEXT + 1) + "'")
    signer(huge)
    signer(huge)
    assert signer.computed == 2  # too long to remember: computed each time
    for number in range(20):
        signer(fault("a", "get", error=f"KeyError: {number}"))
    assert 0 < len(signer._memo) <= 8


def test_weak_signatures_are_made_per_test() -> None:
    signer = RecordSigner()
    a = signer(TestRecord("a", Status.INPROGRESS, None, T0, None))
    b = signer(TestRecord("b", Status.INPROGRESS, None, T0, None))
    ux = signer(TestRecord("a", Status.UXSUCCESS, None, T0, T0))
    assert a is not None
    assert b is not None
    assert ux is not None
    assert a.kind == b.kind == "unfinished"
    assert a.digest != b.digest
    assert a.key == "never finished | a"
    assert ux.kind == "unexpected-success"


def _unsigned_history(store: Store) -> None:
    store.signer = None
    store_run_unsigned = [
        [fault("a", "get"), fault("b", "get"), fault("c", "put"), ok("d")],
        [fault("a", "get"), fault("c", "put", error="TypeError: t"), ok("b"), ok("d")],
    ]
    for day, records in enumerate(store_run_unsigned):
        from proctor.store.model import RunMetadata

        store.write_run(records, RunMetadata(started_ns=T0 + day))


def test_recluster_signs_what_was_stored_unsigned_in_resumable_chunks(store: Store) -> None:
    _unsigned_history(store)
    runs = [info.id for info in store.runs()]
    assert store.failures(runs, algorithm=ALGORITHM) == []
    progress: list[int] = []
    report = recluster(store, chunk=2, progress=progress.append)
    assert (report.algorithm, report.signed, report.chunks) == (ALGORITHM, 5, 3)
    assert progress == [2, 4, 5]
    rows = store.failures(runs, algorithm=ALGORITHM)
    assert len(rows) == 5
    assert len({row.cluster for row in rows}) == 3
    again = recluster(store)
    assert (again.signed, again.chunks) == (0, 0)


def test_a_new_algorithm_keeps_cluster_ids_where_the_grouping_holds(store: Store) -> None:
    _unsigned_history(store)
    recluster(store)
    runs = [info.id for info in store.runs()]
    old = {(row.run, row.seq): row.cluster for row in store.failures(runs, algorithm=ALGORITHM)}
    # Without source lines "c"'s KeyError and TypeError in `put` stay apart (their
    # types differ) and "get" is unchanged: every cluster keeps its id.
    new_signer = RecordSigner(source=False)
    report = recluster(store, new_signer, previous=ALGORITHM)
    assert report.algorithm == "frames-v1;depth=1;source=off"
    assert report.signed == 5
    new = store.failures(runs, algorithm=report.algorithm)
    assert {(row.run, row.seq): row.cluster for row in new} == old
    assert report.kept_ids == 3
    assert all(row.cluster != row.digest for row in new)


def test_ids_are_not_kept_when_clusters_merge(store: Store) -> None:
    store.signer = None
    from proctor.store.model import RunMetadata

    store.write_run(
        [
            fault("a", "get", source="return settings[name]"),
            fault("b", "get", source="return defaults[name]"),
            fault("c", "put"),
        ],
        RunMetadata(started_ns=T0),
    )
    recluster(store)
    runs = [info.id for info in store.runs()]
    old = {row.test_id: row.cluster for row in store.failures(runs, algorithm=ALGORITHM)}
    assert len(set(old.values())) == 3
    # Without the source line, a's and b's KeyError in `get` are one signature:
    # the merged cluster keeps neither old id; `put`'s keeps its own.
    report = recluster(store, RecordSigner(source=False), previous=ALGORITHM)
    new = {row.test_id: row for row in store.failures(runs, algorithm=report.algorithm)}
    assert new["a"].cluster == new["b"].cluster == new["a"].digest
    assert new["a"].cluster not in (old["a"], old["b"])
    assert new["c"].cluster == old["c"]
    assert report.kept_ids == 1


def _old_algorithm_history(store: Store) -> list[int]:
    """Two runs stored unsigned; each failure signed under an older algorithm
    (as an older Proctor left them), without its type and message."""
    from proctor.triage.signature import Signature

    _unsigned_history(store)
    found = store.unsigned_failures(algorithm="frames-v0")
    old = Signature("frames-v0", "traceback", "old key", "0" * 16)
    assert store.add_signatures([(run, seq, old) for run, seq, _ in found]) == 5
    return [info.id for info in store.runs()]


class Ticks:
    """A clock that advances one second each time it is read."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_catch_up_signs_a_bounded_chunk_per_call_resuming_where_it_stopped(
    store: Store,
) -> None:
    from proctor.triage.recluster import catch_up

    runs = _old_algorithm_history(store)
    assert store.signing_progress(ALGORITHM) == (0, -1)
    reports = []
    while not reports or not reports[-1].done:
        # One chunk of 2 per call: the clock passes the budget after the first.
        reports.append(catch_up(store, chunk=2, budget=0.5, clock=Ticks()))
        assert len(reports) < 10
    assert [(r.signed, r.done) for r in reports] == [
        (2, False),
        (2, False),
        (1, False),
        (0, True),
    ]
    assert {r.algorithm for r in reports} == {ALGORITHM}
    rows = store.failures(runs, algorithm=ALGORITHM)
    assert len(rows) == 5
    assert {row.type for row in rows} == {"KeyError", "TypeError"}
    assert len(store.failures(runs, algorithm="frames-v0")) == 5  # the old ones stay
    # Converged: nothing left, and runs stored since (signed as they are) cost nothing.
    newest = max(runs)
    assert store.signing_progress(ALGORITHM)[0] == newest
    store.signer = RecordSigner()
    from proctor.store.model import RunMetadata

    store.write_run([fault("e", "get")], RunMetadata(started_ns=T0 + 5))
    after = catch_up(store, chunk=2, budget=0.5, clock=Ticks())
    assert (after.signed, after.done) == (0, True)
    assert store.signing_progress(ALGORITHM)[0] == newest + 1


def test_catch_up_gives_failures_signed_without_a_message_their_message(store: Store) -> None:
    from proctor.triage.recluster import catch_up

    _unsigned_history(store)
    runs = [info.id for info in store.runs()]
    signer = RecordSigner()
    found = store.unsigned_failures(algorithm=ALGORITHM)
    store.add_signatures([(run, seq, signer(record)) for run, seq, record in found])  # type: ignore[misc]
    assert {row.message for row in store.failures(runs, algorithm=ALGORITHM)} == {None}
    report = catch_up(store)
    assert (report.signed, report.done) == (5, True)
    rows = store.failures(runs, algorithm=ALGORITHM)
    assert None not in {row.message for row in rows}
    assert recluster(store).signed == 0
