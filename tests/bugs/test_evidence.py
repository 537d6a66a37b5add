"""Live evidence for a bug's links, read from real run histories on every backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from proctor.bugs.evidence import DAY_NS, evidence
from proctor.bugs.state import BugLink
from proctor.store import Store, open_store
from proctor.store.memory import MemoryStore
from proctor.store.model import RunMetadata
from proctor.wire.event import Status
from tests.store.conftest import PostgresSchemas, postgres_base_url
from tests.store.factory import T0, failure, record


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    schemas = None
    if request.param == "memory":
        opened: Store = MemoryStore()
    elif request.param == "sqlite":
        opened = open_store(str(tmp_path / "repo"))
    else:
        schemas = PostgresSchemas(postgres_base_url())
        opened = open_store(schemas.new_url())
    yield opened
    opened.close()
    if schemas is not None:
        schemas.close()


def _run(store: Store, day: int, commit: str, *records: object) -> int:
    meta = RunMetadata(started_ns=T0 + day * DAY_NS, git_commit=commit)
    with store.begin_run(meta) as writer:
        for item in records:
            writer.add(item)  # type: ignore[arg-type]
    return writer.finish().id


def test_test_links_get_failures_per_day_last_seen_runs_and_commits(store: Store) -> None:
    first = _run(store, 0, "aaaa1111", failure("t.flaky"), record("t.ok"))
    _run(store, 1, "bbbb2222", record("t.flaky"))
    third = _run(store, 2, "cccc3333", failure("t.flaky"))
    _run(store, 3, "dddd4444", record("t.flaky", Status.SUCCESS))
    links = [BugLink("test", "t.flaky"), BugLink("test", "t.never"), BugLink("cluster", "c1")]
    found = {e.link: e for e in evidence(store, links, days=4, now_ns=T0 + 3 * DAY_NS + 1)}
    flaky = found[BugLink("test", "t.flaky")]
    assert (flaky.state, flaky.executions, flaky.failures) == ("found", 4, 2)
    assert [n for _, n in flaky.per_day] == [1, 0, 1, 0]
    assert flaky.last_failed_run == third
    assert flaky.last_failed_commit == "cccc3333"
    assert flaky.last_seen_ns == T0 + 3 * DAY_NS
    assert flaky.runs == (third, first)
    assert flaky.commits == ("cccc3333", "aaaa1111")
    assert found[BugLink("test", "t.never")].state == "unknown"
    assert found[BugLink("cluster", "c1")].state == "unknown"  # no such cluster stored
    commit = evidence(store, [BugLink("commit", "cccc")])[0]
    assert (commit.state, commit.runs, commit.failures) == ("found", (third,), 1)


def test_cluster_links_get_failures_per_day_last_seen_runs_and_commits(store: Store) -> None:
    from proctor.triage.signer import RecordSigner

    store.signer = RecordSigner()
    first = _run(store, 0, "aaaa1111", failure("t.a"), failure("t.b"), record("t.ok"))
    _run(store, 1, "bbbb2222", record("t.a"))
    third = _run(store, 2, "cccc3333", failure("t.a"))
    (cluster,) = {row.cluster for row in store.failures([first, third], algorithm="frames-v1")}
    link = BugLink("cluster", cluster)
    (found,) = evidence(store, [link], days=4, now_ns=T0 + 3 * DAY_NS + 1)
    assert (found.state, found.failures, found.executions) == ("found", 3, 2)
    assert [n for _, n in found.per_day] == [2, 0, 1, 0]
    assert (found.last_failed_run, found.last_failed_commit) == (third, "cccc3333")
    assert found.last_seen_ns == T0 + 2 * DAY_NS
    assert found.runs == (third, first)
    assert found.commits == ("cccc3333", "aaaa1111")
