"""The store contract, run on every backend (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

import pytest

from proctor.events.collector import RecordCollector, collect_records
from proctor.store import (
    RunCounts,
    RunMetadata,
    RunWriter,
    Store,
    StoreUnavailable,
    UnknownRun,
    UnknownTest,
    WriterClosed,
)
from proctor.store.model import EWMA_WEIGHT, RETRIED_TAG
from proctor.wire.event import NS_PER_SECOND, Event, Status
from proctor.wire.record import Attachment, TestRecord

from .factory import T0, failure, record

S = NS_PER_SECOND


def test_an_empty_store_answers_every_question_with_nothing(store: Store) -> None:
    assert store.latest_run() is None
    assert store.runs() == []
    assert store.failing_ids() == []
    assert store.failing_records() == []
    assert store.durations() == {}
    assert store.slowest() == []
    assert store.find_tests("x") == []
    stats = store.stats()
    assert (stats.runs, stats.results, stats.tests, stats.failing) == (0, 0, 0, 0)


def test_records_come_back_exactly_as_stored(store: Store) -> None:
    big = ("line of captured output\n" * 400).encode()
    records = [
        record("pkg.test_a", tags={"worker-0", "smoke"}, route="0"),
        failure("pkg.test_b", route="1/2"),
        record(
            "pkg.test_c",
            Status.SKIP,
            attachments=(Attachment("reason", b"not today", "text/plain;charset=utf8"),),
        ),
        record("pkg.test_d", Status.XFAIL, start=None),
        record("pkg.test_e", Status.UXSUCCESS, runnable=False),
        record("pkg.test_f", Status.INPROGRESS, seconds=None),
        record("pkg.test_g", Status.NONE, start=None),
        record("pkg.test_h", Status.EXISTS, seconds=None),
        record(
            "pkg.test_i",
            attachments=(
                Attachment("stdout", big, "text/plain"),
                Attachment("stderr", b"", "text/plain"),
                Attachment("blob", bytes(range(256)) * 3),
                Attachment("stdout", big, "text/plain"),  # same name twice, same content
            ),
        ),
        record("pkg.test_a", Status.FAIL, route="1", tags={"tag with spaces", "t\u00e9st"}),
        record("\u00fcnicode.test[param-1]", seconds=1.25),
    ]
    info = store.write_run(records)
    assert store.records(info.id) == records
    assert store.records(info.id, attachments=False) == [
        TestRecord(r.test_id, r.status, r.route_code, r.start, r.stop, r.tags, (), r.runnable)
        for r in records
    ]


def test_long_test_ids_and_tag_sets_are_stored_like_short_ones(store: Store) -> None:
    import random

    rng = random.Random(4)
    # Incompressible text well past what a B-tree entry can hold (about 2.7 KB).
    long_id = "pkg.test_param[" + rng.randbytes(6000).hex() + "]"
    long_tag = "tag-" + rng.randbytes(3000).hex()
    records = [
        failure(long_id, tags={long_tag, "worker-0"}),
        record(long_id + "x", tags={long_tag, "worker-0"}, seconds=2.0),
    ]
    info = store.write_run(records)
    assert info.counts.total == 2
    assert store.records(info.id) == records
    store.write_run([failure(long_id, tags={long_tag, "worker-0"})])  # found again, not added
    assert store.failing_ids() == [long_id]
    assert [h.run_id for h in store.test_history(long_id)] == [info.id + 1, info.id]
    assert store.durations([long_id + "x"]) == {long_id + "x": pytest.approx(2.0)}
    assert store.test_stats([long_id])[long_id].results == 2
    assert store.find_tests("pkg.test_param") == [long_id, long_id + "x"]
    assert store.stats().tests == 2


def test_a_run_is_counted_as_it_is_stored(store: Store) -> None:
    info = store.write_run(
        [
            record("a", seconds=1.0),
            record("b", Status.FAIL, seconds=2.0),
            record("c", Status.SKIP, start=T0 + 10 * S, seconds=0.0),
            record("d", Status.XFAIL, seconds=None),
            record("e", Status.UXSUCCESS, seconds=None),
            record("f", Status.INPROGRESS, seconds=None),
            record("g", Status.EXISTS, seconds=None),
        ]
    )
    assert info.counts == RunCounts(
        total=7,
        passed=1,
        failed=1,
        skipped=1,
        xfail=1,
        uxsuccess=1,
        incomplete=1,
        exists=1,
        test_ns=3 * S,
    )
    assert info.counts.ran == 6
    assert info.counts.failures == 3
    assert (info.first_ns, info.last_ns) == (T0, T0 + 10 * S)
    assert info.finished
    assert not info.interrupted
    assert not info.succeeded
    assert store.run(info.id) == info


def test_a_retried_attempt_is_stored_but_not_among_the_runs_outcomes(store: Store) -> None:
    """--rerun-failures: the failed attempt that ran again is kept (flaky evidence)
    and counted in the total, but the run's outcome is the final attempt's."""
    info = store.write_run(
        [
            record("a", Status.FAIL, tags={RETRIED_TAG}),
            record("b"),
            record("a", tags={"attempt-2"}),
        ]
    )
    assert (info.counts.total, info.counts.passed, info.counts.failed) == (3, 2, 0)
    assert info.succeeded
    assert [r.status for r in store.records(info.id) if r.test_id == "a"] == [
        Status.FAIL,
        Status.SUCCESS,
    ]
    assert store.failing_ids() == []
    stats = store.test_stats(["a"])["a"]
    assert (stats.passed, stats.failed) == (1, 1)


def test_metadata_is_kept_with_the_run(store: Store) -> None:
    metadata = RunMetadata(
        started_ns=T0,
        git_commit="0123456789abcdef0123456789abcdef01234567",
        git_branch="main",
        git_dirty=True,
        python="CPython 3.11.7",
        platform="Linux-6.1",
        hostname="ci-7",
        ci_provider="github-actions",
        ci_job_id="42/1",
        ci_url="https://github.com/o/r/actions/runs/42/attempts/1",
        command="proctor run -k x",
        source="load",
        partial=False,
        properties={"ci.job": "tests", "variant": "py311"},
    )
    info = store.write_run([record("a")], metadata)
    assert info.metadata == metadata
    assert store.run(info.id).metadata == metadata
    assert store.runs()[0].metadata == metadata
    assert info.writer
    assert ":" in info.writer


def test_start_time_defaults_to_when_the_run_began(store: Store) -> None:
    info = store.write_run([record("a")])
    assert info.metadata.started_ns is not None
    assert info.started_ns > T0


def test_a_run_is_visible_and_interrupted_until_it_finishes(store: Store) -> None:
    writer = store.begin_run()
    writer.add(record("a"))
    writer.flush()
    seen = store.latest_run()
    assert seen is not None
    assert seen.id == writer.run_id
    assert seen.interrupted
    assert not seen.finished
    assert store.records(writer.run_id) == [record("a")]
    done = writer.finish()
    assert done.finished
    assert not done.interrupted
    assert done.succeeded
    assert writer.finish() == done
    with pytest.raises(WriterClosed):
        writer.add(record("b"))


def test_an_exception_inside_the_writer_marks_the_run_interrupted(store: Store) -> None:
    def interrupted_run() -> None:
        with store.begin_run() as writer:
            writer.add(record("a"))
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted_run()
    (last,) = store.runs()
    info = store.run(last.id)
    assert info.finished
    assert info.interrupted
    assert not info.succeeded
    assert info.counts.passed == 1


def test_a_writer_whose_write_fails_still_finishes_the_run_interrupted(store: Store) -> None:
    writer = store.begin_run()
    writer.add(record("a"))
    writer.flush()

    def broken(records: list[TestRecord]) -> None:
        raise StoreUnavailable("the repository went away")

    writer._write = broken  # type: ignore[method-assign]

    def write_more() -> None:
        with writer:
            writer.add(record("b"))
            writer.flush()

    with pytest.raises(StoreUnavailable):
        write_more()
    info = store.run(writer.run_id)
    assert info.finished
    assert info.interrupted
    assert [r.test_id for r in store.records(writer.run_id)] == ["a"]
    assert writer.written == 1


def test_records_a_collector_assembles_are_stored_as_they_complete(store: Store) -> None:
    events = [
        Event("t1", Status.INPROGRESS, timestamp=T0, route_code="0"),
        Event("t2", Status.INPROGRESS, timestamp=T0 + 1, route_code="1"),
        Event("t1", file_name="stdout", file_bytes=b"hi\n", mime_type="text/plain", route_code="0"),
        Event("t1", file_name="stdout", file_bytes=b"there\n", eof=True, route_code="0"),
        Event("t1", Status.SUCCESS, frozenset({"worker-0"}), timestamp=T0 + 5, route_code="0"),
        Event(None, file_name="stdout", file_bytes=b"between tests\n"),
        Event("t2", file_name="traceback", file_bytes=b"Traceback", eof=True, route_code="1"),
        Event("t3", Status.EXISTS),
        # t2 never finishes: closing stores it as unfinished.
    ]
    writer = store.begin_run()
    collector = RecordCollector(writer.add)
    for event in events:
        collector.send(event)
    collector.close()
    writer.finish()
    stored = store.records(writer.run_id)
    assert sorted(stored, key=lambda r: r.test_id) == sorted(
        collect_records(events), key=lambda r: r.test_id
    )
    assert store.run(writer.run_id).counts.incomplete == 1
    assert store.failing_ids() == ["t2"]


def test_a_run_can_be_resumed_and_appended_to(store: Store) -> None:
    first = store.write_run([record("a")])
    writer = store.resume_run(first.id)
    assert store.run(first.id).interrupted
    writer.add(failure("b"))
    info = writer.finish()
    assert info.id == first.id
    assert info.counts.total == 2
    assert info.counts.failed == 1
    assert [r.test_id for r in store.records(first.id)] == ["a", "b"]


def test_unknown_runs_are_reported(store: Store) -> None:
    with pytest.raises(UnknownRun, match="no run 99"):
        store.run(99)
    with pytest.raises(UnknownRun):
        store.records(99)
    with pytest.raises(UnknownRun):
        store.resume_run(99)
    with pytest.raises(UnknownRun):
        store.slowest(run_id=99)


# -- the failing set


def test_failing_merges_partial_runs_test_by_test(store: Store) -> None:
    store.write_run([failure("a"), failure("b"), record("c")])
    assert store.failing_ids() == ["a", "b"]
    store.write_run([record("a")])  # a subset: only a changes
    assert store.failing_ids() == ["b"]
    store.write_run([failure("c")])
    assert store.failing_ids() == ["b", "c"]
    store.write_run([record("c", Status.SKIP), record("b", Status.XFAIL)])
    assert store.failing_ids() == []


def test_failing_counts_unexpected_successes_and_unfinished_tests(store: Store) -> None:
    store.write_run(
        [
            record("ux", Status.UXSUCCESS),
            record("crashed", Status.INPROGRESS),
            record("never", Status.NONE),
            record("listed", Status.EXISTS),
        ]
    )
    assert store.failing_ids() == ["crashed", "never", "ux"]


def test_a_listing_does_not_change_the_failing_set(store: Store) -> None:
    store.write_run([failure("a")])
    store.write_run([record("a", Status.EXISTS)])
    assert store.failing_ids() == ["a"]


def test_the_last_result_of_a_test_in_a_run_decides(store: Store) -> None:
    store.write_run([failure("a"), record("a"), record("b"), failure("b")])
    assert store.failing_ids() == ["b"]


def test_a_complete_run_forgets_failures_of_tests_it_did_not_run(store: Store) -> None:
    store.write_run([failure("gone"), failure("kept")])
    complete = RunMetadata(partial=False)
    store.write_run([failure("kept"), record("other")], complete, interrupted=True)
    assert store.failing_ids() == ["gone", "kept"]  # interrupted: not known to be complete
    store.write_run([failure("kept"), record("other")], complete)
    assert store.failing_ids() == ["kept"]


def test_a_complete_run_that_ran_nothing_leaves_the_failing_set_alone(store: Store) -> None:
    store.write_run([failure("a"), failure("b")])
    complete = RunMetadata(partial=False)
    empty = store.write_run([], complete)
    assert not empty.interrupted
    assert store.failing_ids() == ["a", "b"]
    listing = store.write_run([record("a", Status.EXISTS), record("c", Status.EXISTS)], complete)
    assert listing.counts.total == 2
    assert store.failing_ids() == ["a", "b"]
    store.remove_runs([empty.id, listing.id])
    assert store.failing_ids() == ["a", "b"]


def _complete(store: Store) -> RunWriter:
    writer = store.begin_run(RunMetadata(partial=False))
    writer.flush_interval = 3600.0  # written when flushed
    return writer


def test_concurrent_complete_runs_replace_only_what_they_are_newer_than(store: Store) -> None:
    suite = [f"t{i}" for i in range(20)]
    with _complete(store) as older, _complete(store) as newer:
        # The newer run stores first: the older one's results, stored later,
        # are older news for every test, and leave its entries alone.
        newer.add_many(failure(t, "newer") if t in ("t1", "t2") else record(t) for t in suite)
        newer.flush()
        older.add_many(failure(t, "older") if t in ("t2", "t3") else record(t) for t in suite)
        older.flush()
        assert store.failing_ids() == ["t1", "t2"]
        older.finish()  # complete: it forgets only entries older than itself
        assert store.failing_ids() == ["t1", "t2"]
        newer.finish()
        assert store.failing_ids() == ["t1", "t2"]
    assert {r.test_id: r.attachments[0].content for r in store.failing_records()} == {
        "t1": failure("t1", "newer").attachments[0].content,
        "t2": failure("t2", "newer").attachments[0].content,
    }


def test_a_complete_run_finishing_first_keeps_a_later_runs_failures(store: Store) -> None:
    with _complete(store) as older, _complete(store) as newer:
        older.add_many([failure("a"), failure("b"), record("c")])
        older.flush()
        newer.add_many([failure("a"), record("b"), failure("c")])
        newer.flush()
        older.finish()  # used to forget every entry but its own: a and c
        assert store.failing_ids() == ["a", "c"]
        newer.finish()
        assert store.failing_ids() == ["a", "c"]


def test_a_partial_run_changes_only_tests_no_later_run_has_stored(store: Store) -> None:
    store.write_run([failure("a"), failure("b")])
    with store.begin_run() as older:
        later = store.write_run([record("a"), failure("c")])
        older.add_many([failure("a"), record("b"), record("c"), failure("d")])
    # a and c: the later run's word stands; b and d: only the older run has news.
    assert store.failing_ids() == ["c", "d"]
    store.remove_runs([later.id])  # now the older run is the newest with a and c
    assert store.failing_ids() == ["a", "d"]


def test_failing_records_carry_the_failure(store: Store) -> None:
    store.write_run([failure("a", "first"), failure("b", "old")])
    store.write_run([failure("b", "new")])
    found = store.failing_records()
    assert [r.test_id for r in found] == ["a", "b"]
    assert b"first" in found[0].attachments[0].content
    assert b"new" in found[1].attachments[0].content


# -- timings and statistics


def test_durations_are_an_exponentially_weighted_mean(store: Store) -> None:
    for seconds in (1.0, 2.0, 4.0):
        store.write_run([record("a", seconds=seconds), record("b", Status.FAIL, seconds=seconds)])
    expected = 1.0
    for seconds in (2.0, 4.0):
        expected += EWMA_WEIGHT * (seconds - expected)
    durations = store.durations()
    assert durations.keys() == {"a", "b"}
    assert durations["a"] == pytest.approx(expected)
    assert store.durations(["a", "unknown"]) == {"a": pytest.approx(expected)}
    assert store.durations([]) == {}


def test_untimed_and_unfinished_results_do_not_count_as_durations(store: Store) -> None:
    store.write_run(
        [
            record("listed", Status.EXISTS, seconds=None),
            record("crashed", Status.INPROGRESS, seconds=30.0),
            record("notime", start=None),
        ]
    )
    assert store.durations() == {}


def test_repeated_results_in_one_batch_are_weighted_in_order(store: Store) -> None:
    store.write_run([record("a", seconds=s) for s in (1.0, 3.0, 2.0)])
    expected = 1.0
    for seconds in (3.0, 2.0):
        expected += EWMA_WEIGHT * (seconds - expected)
    assert store.durations()["a"] == pytest.approx(expected)
    stats = store.test_stats(["a"])["a"]
    assert (stats.results, stats.passed, stats.timed) == (3, 3, 3)
    assert stats.total_ns == 6 * S
    assert (stats.min_ns, stats.max_ns, stats.last_ns) == (1 * S, 3 * S, 2 * S)
    assert stats.mean == pytest.approx(2.0)


def test_test_stats_count_outcomes(store: Store) -> None:
    store.write_run([record("a"), record("b", Status.SKIP)])
    store.write_run([failure("a"), record("b", Status.EXISTS)])
    store.write_run([record("a", Status.INPROGRESS)])
    stats = store.test_stats(["a", "b", "c"])
    assert stats.keys() == {"a", "b"}
    a = stats["a"]
    assert (a.results, a.passed, a.failed, a.skipped) == (3, 1, 2, 0)
    assert (stats["b"].results, stats["b"].skipped) == (1, 1)


def test_seeded_durations_fill_only_tests_without_timings(store: Store) -> None:
    store.write_run([record("a", seconds=1.0)])
    assert store.seed_durations({"a": 9.0, "b": 2.0}) == 1
    assert store.durations() == {"a": pytest.approx(1.0), "b": pytest.approx(2.0)}
    store.write_run([record("b", seconds=4.0)])
    assert store.durations()["b"] == pytest.approx(2.0 + EWMA_WEIGHT * 2.0)


def test_slowest_ranks_the_latest_run_with_history_beside(store: Store) -> None:
    store.write_run([record("a", seconds=1.0), record("b", seconds=5.0), record("c", seconds=3.0)])
    latest = store.write_run(
        [record("a", seconds=3.0), record("b", seconds=1.0), record("c", seconds=2.0)]
    )
    slow = store.slowest(limit=2)
    assert [(s.test_id, s.duration) for s in slow] == [("a", 3.0), ("c", 2.0)]
    assert slow[0].stats.mean == pytest.approx(2.0)
    assert slow[0].stats.timed == 2
    assert [s.test_id for s in store.slowest(limit=None, run_id=latest.id - 1)] == ["b", "c", "a"]
    by_mean = store.slowest(limit=None, by_mean=True)
    assert [(s.test_id, s.duration) for s in by_mean] == [("b", 3.0), ("c", 2.5), ("a", 2.0)]


# -- history and search


def test_history_of_a_test_is_newest_first(store: Store) -> None:
    first = store.write_run([record("a", seconds=1.0)], RunMetadata(git_branch="main"))
    store.write_run([record("b")])
    third = store.write_run(
        [failure("a", seconds=2.0, route="3"), record("a", Status.EXISTS)],
        RunMetadata(git_commit="abc", git_branch="dev"),
    )
    history = store.test_history("a")
    assert [(h.run_id, h.status, h.duration) for h in history] == [
        (third.id, Status.FAIL, 2.0),
        (first.id, Status.SUCCESS, 1.0),
    ]
    assert (history[0].git_commit, history[0].git_branch, history[0].route_code) == (
        "abc",
        "dev",
        "3",
    )
    assert history[0].run_started_ns == third.started_ns
    assert history[0].start_ns == T0
    assert len(store.test_history("a", limit=1)) == 1
    with pytest.raises(UnknownTest):
        store.test_history("nope")


def test_an_unfinished_execution_has_no_duration_in_history(store: Store) -> None:
    store.write_run(
        [record("a", Status.INPROGRESS, seconds=3.0), record("a", Status.NONE, seconds=1.0)]
    )
    assert [(h.status, h.duration) for h in store.test_history("a")] == [
        (Status.NONE, None),
        (Status.INPROGRESS, None),
    ]


def test_limits_are_counts_on_every_backend(store: Store) -> None:
    store.write_run([record("a", seconds=1.0)])
    store.write_run([record("a", seconds=2.0)])
    assert store.runs(limit=0) == []
    assert store.test_history("a", limit=0) == []
    assert store.slowest(limit=0) == []
    assert store.find_tests("a", limit=0) == []
    assert len(store.runs(limit=1)) == 1
    for ask in (
        lambda: store.runs(limit=-1),
        lambda: store.test_history("a", limit=-1),
        lambda: store.slowest(limit=-1),
        lambda: store.slowest(limit=-1, by_mean=True),
        lambda: store.find_tests("a", limit=-1),
    ):
        with pytest.raises(ValueError, match="not -1"):
            ask()


def test_find_tests_matches_a_fragment(store: Store) -> None:
    store.write_run([record(name) for name in ("pkg.A.test_x", "pkg.B.test_x", "pkg.B.test_y")])
    assert store.find_tests("test_x") == ["pkg.A.test_x", "pkg.B.test_x"]
    assert store.find_tests("B.", limit=1) == ["pkg.B.test_x"]
    assert store.find_tests("b.test") == []  # case matters, as in test ids


# -- runs


def test_runs_are_listed_newest_first_and_filtered(store: Store) -> None:
    infos = [
        store.write_run(
            [record("a")],
            RunMetadata(started_ns=T0 + i * S, git_branch=branch, git_commit=commit),
        )
        for i, (branch, commit) in enumerate(
            [("main", "aaa111"), ("dev", "aab222"), ("main", "bbb333"), (None, None)]
        )
    ]
    ids = [info.id for info in infos]
    assert [r.id for r in store.runs()] == ids[::-1]
    assert [r.id for r in store.runs(limit=2)] == ids[:1:-1]
    assert [r.id for r in store.runs(branch="main")] == [ids[2], ids[0]]
    assert [r.id for r in store.runs(commit="aa")] == [ids[1], ids[0]]
    assert [r.id for r in store.runs(commit="aab222")] == [ids[1]]
    assert [r.id for r in store.runs(since_ns=T0 + S)] == ids[:0:-1]
    assert [r.id for r in store.runs(until_ns=T0 + S)] == [ids[0]]
    assert [r.id for r in store.runs(branch="main", since_ns=T0 + S)] == [ids[2]]
    latest = store.latest_run()
    assert latest is not None
    assert latest.id == ids[-1]


def test_removing_runs_undoes_their_counts_and_recomputes_failing(store: Store) -> None:
    one = store.write_run([failure("a", "old"), record("b", seconds=1.0)])
    two = store.write_run([record("a"), record("b", seconds=3.0)])
    three = store.write_run([failure("a", "new"), record("c")])
    assert store.remove_runs([three.id, 12345]) == [three.id]
    assert [r.id for r in store.runs()] == [two.id, one.id]
    assert store.failing_ids() == []  # a's latest remaining result passed
    assert store.test_stats(["c"]) == {}
    assert store.remove_runs([two.id]) == [two.id]
    assert store.failing_ids() == ["a"]
    assert b"old" in store.failing_records()[0].attachments[0].content
    b = store.test_stats(["b"])["b"]
    assert (b.results, b.timed, b.total_ns) == (1, 1, 1 * S)
    assert store.stats().runs == 1
    assert store.write_run([record("d")]).id == three.id + 1  # ids are never reused


def test_removing_the_only_run_of_a_failure_forgets_it(store: Store) -> None:
    one = store.write_run([failure("a"), record("b")])
    store.write_run([record("b")])
    store.remove_runs([one.id])
    assert store.failing_ids() == []
    assert store.test_stats(["a"]) == {}
    assert store.test_stats(["b"])["b"].last_run == one.id + 1


def test_a_run_being_written_is_not_selected_for_removal(store: Store) -> None:
    old = store.write_run([record("a")])
    writer = store.begin_run()
    writer.add(record("b"))
    writer.flush()
    running = store.run(writer.run_id)
    assert store.writers_alive([old, running]) == {writer.run_id: True}
    assert [info.id for info in store.select_for_removal(keep=0)] == [old.id]
    assert [info.id for info in store.select_for_removal(keep=0, include_running=True)] == [
        old.id,
        writer.run_id,
    ]
    done = writer.finish()
    assert store.writers_alive([done]) == {}
    assert [info.id for info in store.select_for_removal(keep=0)] == [old.id, done.id]


def test_a_run_removed_while_being_written_refuses_the_rest(store: Store) -> None:
    writer = store.begin_run()
    writer.add(failure("a"))
    writer.flush()
    assert store.remove_runs([writer.run_id]) == [writer.run_id]
    writer.add(failure("b"))
    with pytest.raises(UnknownRun, match="removed"):
        writer.flush()
    assert writer.interrupt() is None
    assert store.runs() == []
    assert store.failing_ids() == []
    assert store.test_stats(["a", "b"]) == {}
    stats = store.stats()
    assert (stats.runs, stats.results, stats.attachments) == (0, 0, 0)


def test_identical_attachments_are_stored_once(store: Store) -> None:
    for _ in range(3):
        store.write_run([failure("a", "same"), failure("b", "same"), failure("c", "other")])
    stats = store.stats()
    assert stats.attachments == 9
    assert stats.blobs == 2
    assert stats.raw_attachment_bytes > stats.blob_bytes


def test_garbage_collection_removes_contents_no_result_uses(store: Store) -> None:
    one = store.write_run([failure("a", "only in one")])
    store.write_run([failure("a", "in two")])
    store.remove_runs([one.id])
    store.collect_garbage()
    assert store.stats().blobs == 1
    assert store.collect_garbage().blobs == 0
    assert b"in two" in store.failing_records()[0].attachments[0].content


def test_a_vacuum_keeps_everything_stored(store: Store) -> None:
    one = store.write_run([failure("a", "old")])
    store.write_run([failure("a", "new"), record("b")])
    store.remove_runs([one.id])
    report = store.collect_garbage(vacuum=True)
    assert report.blobs == (0 if store.backend == "memory" else 1)
    assert [r.test_id for r in store.records(one.id + 1)] == ["a", "b"]
    assert b"new" in store.failing_records()[0].attachments[0].content


def test_stats_describe_the_repository(store: Store) -> None:
    store.write_run([record("a"), failure("b")], RunMetadata(started_ns=T0))
    writer = store.begin_run(RunMetadata(started_ns=T0 + S))
    writer.add(record("a"))
    writer.flush()
    stats = store.stats()
    assert (stats.runs, stats.results, stats.tests, stats.failing) == (2, 3, 2, 1)
    assert (stats.first_started_ns, stats.last_started_ns) == (T0, T0 + S)
    assert stats.interrupted_runs == 1
    assert stats.backend == store.backend
    writer.finish()


def test_small_batches_are_written_as_they_fill(store: Store) -> None:
    writer = store.begin_run()
    writer.batch_size = 2  # as a long run would, in miniature
    for name in "abc":
        writer.add(record(name))
    assert [r.test_id for r in store.records(writer.run_id)] == ["a", "b"]
    writer.finish()
    assert [r.test_id for r in store.records(writer.run_id)] == ["a", "b", "c"]


def test_a_writable_store_says_so_and_the_check_changes_nothing(store: Store) -> None:
    store.write_run([failure("a")])
    before = (store.runs(), store.failing_ids(), store.stats().tests)
    store.check_writable()
    store.check_writable()
    assert (store.runs(), store.failing_ids(), store.stats().tests) == before
    assert store.write_run([record("a")]).id == 2  # no run id used up
