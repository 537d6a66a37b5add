"""Failure signatures in the store, on every backend (the contract of proctor.store.failures)."""

from __future__ import annotations

from proctor.store import Store
from proctor.store.model import RunMetadata
from proctor.triage.signature import ALGORITHM, Signature
from proctor.triage.signer import RecordSigner
from proctor.wire.event import NS_PER_SECOND, TRACEBACK_MIME_TYPE, Status
from proctor.wire.record import Attachment, TestRecord
from tests.store.factory import T0, failure, record

DAY = 86_400 * NS_PER_SECOND


def _traceback(function: str, line: str, error: str = "KeyError: 'x'") -> TestRecord:
    text = (
        "Traceback (most recent call last):\n"
        f'  File "/home/me/shop/shop/config.py", line 12, in {function}\n'
        f"    {line}\n"
        f"{error}\n"
    )
    return record(
        "t", Status.FAIL, attachments=(Attachment("traceback", text.encode(), TRACEBACK_MIME_TYPE),)
    )


def _store_runs(store: Store) -> list[int]:
    store.signer = RecordSigner()
    one = _traceback("get", "return settings[name]")
    other = _traceback("put", "settings[name] = value", "TypeError: nope")
    ids = []
    for day, records in enumerate(
        [
            [one._replace(test_id="a"), one._replace(test_id="b"), record("c")],
            [one._replace(test_id="a"), other._replace(test_id="c"), record("b")],
            [record("a"), record("b"), record("c", Status.INPROGRESS, seconds=None)],
        ]
    ):
        info = store.write_run(records, RunMetadata(started_ns=T0 + day * DAY))
        ids.append(info.id)
    return ids


def test_failing_results_are_signed_as_they_are_stored(store: Store) -> None:
    first, second, third = _store_runs(store)
    rows = store.failures([first, second, third], algorithm=ALGORITHM)
    assert [(row.run, row.seq, row.test_id) for row in rows] == [
        (third, 2, "c"),
        (second, 0, "a"),
        (second, 1, "c"),
        (first, 0, "a"),
        (first, 1, "b"),
    ]
    by = {(row.run, row.test_id): row for row in rows}
    assert by[first, "a"].digest == by[first, "b"].digest == by[second, "a"].digest
    assert by[first, "a"].kind == "traceback"
    assert "KeyError @ " in by[first, "a"].key
    assert by[second, "c"].digest != by[first, "a"].digest
    assert by[third, "c"].kind == "unfinished"
    assert by[third, "c"].status is Status.INPROGRESS
    assert by[first, "a"].cluster == by[first, "a"].digest
    assert by[first, "a"].run_ns == T0
    assert store.failures([first], algorithm="other-v9") == []


def test_sightings_give_first_and_last_before(store: Store) -> None:
    first, _second, _ = _store_runs(store)
    rows = store.failures([first], algorithm=ALGORITHM)
    digest = rows[0].digest
    seen = store.sightings([digest, "0" * 16], algorithm=ALGORITHM, before_ns=T0 + DAY)
    assert seen == {digest: (T0, T0, 0)}  # runs not counted unless asked
    counted = store.sightings([digest], algorithm=ALGORITHM, before_ns=T0 + DAY, count_runs=9)
    assert counted[digest].runs == 2
    capped = store.sightings([digest], algorithm=ALGORITHM, before_ns=T0 + DAY, count_runs=1)
    assert capped[digest].runs == 1
    later = store.sightings([digest], algorithm=ALGORITHM, before_ns=T0 + 5 * DAY)
    assert later[digest] == (T0, T0 + DAY, 0)


def test_a_cluster_lists_its_failures_newest_first(store: Store) -> None:
    first, second, _ = _store_runs(store)
    cluster = store.failures([first], algorithm=ALGORITHM)[0].cluster
    rows = store.cluster_failures(cluster, algorithm=ALGORITHM)
    assert [(row.run, row.test_id) for row in rows] == [(second, "a"), (first, "a"), (first, "b")]
    assert len(store.cluster_failures(cluster, algorithm=ALGORITHM, limit=1)) == 1
    assert store.cluster_failures("nope", algorithm=ALGORITHM) == []


def test_without_a_signer_nothing_is_signed_and_recluster_chunks_find_it(store: Store) -> None:
    store.write_run([failure("a"), record("b"), failure("c")], RunMetadata(started_ns=T0))
    store.write_run([failure("a")], RunMetadata(started_ns=T0 + DAY))
    assert store.failures([1, 2], algorithm=ALGORITHM) == []
    chunk = store.unsigned_failures(algorithm=ALGORITHM, limit=2)
    assert [(run, seq, rec.test_id) for run, seq, rec in chunk] == [(1, 0, "a"), (1, 2, "c")]
    assert chunk[0][2].attachments[0].name == "traceback"
    rest = store.unsigned_failures(algorithm=ALGORITHM, after=(1, 2), limit=2)
    assert [(run, seq) for run, seq, _ in rest] == [(2, 0)]
    signer = RecordSigner()
    signed = [(run, seq, signer.sign(rec)) for run, seq, rec in chunk + rest]
    assert store.add_signatures([(r, s, sig) for r, s, sig in signed if sig is not None]) == 3
    assert store.unsigned_failures(algorithm=ALGORITHM) == []
    rows = store.failures([1, 2], algorithm=ALGORITHM)
    assert len(rows) == 3
    assert len({row.digest for row in rows}) == 1


def test_signatures_of_another_algorithm_sit_beside_and_clusters_can_be_renamed(
    store: Store,
) -> None:
    first, *_ = _store_runs(store)
    old = store.failures([first], algorithm=ALGORITHM)
    new = Signature("frames-v2", "traceback", "K", "f" * 16)
    assert store.add_signatures([(row.run, row.seq, new) for row in old]) == 2
    assert store.add_signatures([(old[0].run, old[0].seq, new)]) == 0
    assert store.failures([first], algorithm=ALGORITHM) == old
    store.set_clusters("frames-v2", {"f" * 16: old[0].cluster})
    again = store.failures([first], algorithm="frames-v2")
    assert {row.cluster for row in again} == {old[0].cluster}
    assert store.cluster_failures(old[0].cluster, algorithm="frames-v2")[0].digest == "f" * 16


def test_results_and_outcomes_for_flakiness(store: Store) -> None:
    first, second, _third = _store_runs(store)
    got = store.result(first, 0)
    assert got is not None
    assert got.test_id == "a"
    assert got.attachments
    assert store.result(first, 99) is None
    outcomes = sorted(store.outcomes([first, second]))
    # a, b and c each failed in one of the two runs: all their results in them.
    assert outcomes == sorted(
        [
            (first, "a", Status.FAIL),
            (first, "b", Status.FAIL),
            (first, "c", Status.SUCCESS),
            (second, "a", Status.FAIL),
            (second, "c", Status.FAIL),
            (second, "b", Status.SUCCESS),
        ]
    )
    assert store.outcomes([]) == []


def test_removing_a_run_removes_its_signed_failures(store: Store) -> None:
    first, second, _ = _store_runs(store)
    cluster = store.failures([first], algorithm=ALGORITHM)[0].cluster
    store.remove_runs([first])
    assert store.failures([first], algorithm=ALGORITHM) == []
    assert [row.run for row in store.cluster_failures(cluster, algorithm=ALGORITHM)] == [second]


def test_each_failure_keeps_the_type_and_message_rules_match_on(store: Store) -> None:
    first, second, third = _store_runs(store)
    rows = store.failures([first, second, third], algorithm=ALGORITHM)
    by = {(row.run, row.test_id): row for row in rows}
    assert (by[first, "a"].type, by[first, "a"].message) == ("KeyError", "'x'")
    assert (by[second, "c"].type, by[second, "c"].message) == ("TypeError", "nope")
    assert (by[third, "c"].type, by[third, "c"].message) == ("", "")  # never finished
    cluster = by[second, "c"].cluster
    (only,) = store.cluster_failures(cluster, algorithm=ALGORITHM)
    assert (only.type, only.message) == ("TypeError", "nope")


def test_failures_signed_without_a_message_are_signed_again_for_it(store: Store) -> None:
    store.write_run([failure("a"), record("b"), failure("c")], RunMetadata(started_ns=T0))
    signer = RecordSigner()
    found = store.unsigned_failures(algorithm=ALGORITHM)
    bare = [(run, seq, signer(rec)) for run, seq, rec in found]
    assert store.add_signatures([(r, s, sig) for r, s, sig in bare if sig is not None]) == 2
    rows = store.failures([1], algorithm=ALGORITHM)
    assert [(row.test_id, row.type, row.message) for row in rows] == [
        ("a", None, None),
        ("c", None, None),
    ]
    # A signature stored before messages were: still to do, for its message.
    again = store.unsigned_failures(algorithm=ALGORITHM)
    assert [(run, seq) for run, seq, _ in again] == [(1, 0), (1, 2)]
    full = [(run, seq, signer.sign(rec)) for run, seq, rec in again]
    assert store.add_signatures([(r, s, sig) for r, s, sig in full if sig is not None]) == 2
    assert store.unsigned_failures(algorithm=ALGORITHM) == []
    after = store.failures([1], algorithm=ALGORITHM)
    assert [(row.type, row.message) for row in after] == [("AssertionError", "boom")] * 2
    assert [row.digest for row in after] == [row.digest for row in rows]
    assert store.add_signatures([(r, s, sig) for r, s, sig in full if sig is not None]) == 0


def test_signing_progress_is_kept_per_algorithm(store: Store) -> None:
    assert store.signing_progress(ALGORITHM) == (0, -1)
    store.set_signing_progress(ALGORITHM, (3, 7))
    store.set_signing_progress("frames-v0", (1, 2))
    assert store.signing_progress(ALGORITHM) == (3, 7)
    store.set_signing_progress(ALGORITHM, (4, 2**62))
    assert store.signing_progress(ALGORITHM) == (4, 2**62)
    assert store.signing_progress("frames-v0") == (1, 2)
