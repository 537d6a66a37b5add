"""Signing at ingest (RecordSigner) and re-clustering (proctor.triage.recluster)."""

from __future__ import annotations

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
