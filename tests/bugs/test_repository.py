"""BugRepository on every backend: edits, listing, all-or-nothing merges, forged rows, sync."""

from __future__ import annotations

import itertools

import pytest

from proctor.bugs.errors import AmbiguousBugId, BugError, BugEventError, UnknownBug
from proctor.bugs.event import AddTag, make_event
from proctor.bugs.filters import parse_filter
from proctor.bugs.replica import Replica
from proctor.bugs.repository import BugRepository, StoredEventError
from proctor.bugs.sync import export_bundle, import_file_bytes, pull, push
from proctor.store.bug_tables import ListQuery
from tests.bugs.conftest import Repos

_ticks = itertools.count(1_700_000_000_000_000_000, 1000)


def _clock() -> int:
    return next(_ticks)


def _fill(repo: BugRepository) -> dict[str, str]:
    store = repo.create("ann", "store loses rows", "after a crash")
    repo.add_tag(store.id, "ann", "component:store")
    repo.add_tag(store.id, "ann", "flaky")
    repo.set_field(store.id, "bob", "assignee", "bob")
    repo.comment(store.id, "bob", "Seen on CI twice")
    runner = repo.create("bob", "runner hangs")
    repo.set_field(runner.id, "bob", "status", "closed")
    web = repo.create("cat", "page is blank")
    repo.add_tag(web.id, "cat", "flaky")
    return {"store": store.id, "runner": runner.id, "web": web.id}


def _titles(repo: BugRepository, query: ListQuery | None = None) -> list[str]:
    return sorted(item.row.title for item in repo.listing(query))


def test_edits_are_stored_and_listed_with_filters(repos: Repos) -> None:
    repo = repos.new()
    ids = _fill(repo)
    assert _titles(repo) == ["page is blank", "runner hangs", "store loses rows"]
    assert _titles(repo, ListQuery(tags=("flaky",))) == ["page is blank", "store loses rows"]
    assert _titles(repo, ListQuery(tags=("flaky", "component:store"))) == ["store loses rows"]
    assert _titles(repo, ListQuery(statuses=("closed",))) == ["runner hangs"]
    assert _titles(repo, ListQuery(assignee="bob")) == ["store loses rows"]
    assert _titles(repo, ListQuery(text="ON ci")) == ["store loses rows"]
    assert _titles(repo, ListQuery(tags=("flak",))) == []  # whole tags only
    state = repo.state(ids["store"][:6])
    assert state.tags == {"component:store", "flaky"}
    assert [c.text for c in state.comments] == ["Seen on CI twice"]
    repo.remove_tag(ids["store"], "ann", "flaky")
    assert _titles(repo, ListQuery(tags=("flaky",))) == ["page is blank"]
    listed = repo.listing()
    assert all(len(item.short) >= 7 and item.row.id.startswith(item.short) for item in listed)


def test_ids_resolve_by_prefix_and_say_what_is_wrong(repos: Repos) -> None:
    repo = repos.new()
    ids = _fill(repo)
    assert repo.resolve(ids["web"][:4].upper()) == ids["web"]
    with pytest.raises(UnknownBug, match="at least 4"):
        repo.resolve("ab")
    with pytest.raises(UnknownBug, match="no bug"):
        repo.resolve(
            "f" * 40 if not any(i.startswith("f" * 40) for i in ids.values()) else "0" * 40
        )
    # Ambiguity: add bugs until two share a 4-digit prefix.
    seen: dict[str, str] = {i[:4]: i for i in ids.values()}
    n = 0
    while True:
        n += 1
        event = repo.create("ann", f"bug {n}")
        if event.id[:4] in seen:
            break
        seen[event.id[:4]] = event.id
    with pytest.raises(AmbiguousBugId, match="matches several bugs"):
        repo.resolve(event.id[:4])


def test_a_bad_batch_changes_nothing(repos: Repos) -> None:
    repo = repos.new()
    ids = _fill(repo)
    before = {item.row.id: item.row for item in repo.listing()}
    other = Replica(clock=_clock)
    good = other.create("eve", "fine bug")
    orphan = make_event(
        AddTag("x"), bug="a" * 64, author="eve", lamport=2, wall=1, seen=("b" * 64,)
    )
    with pytest.raises(BugEventError, match="not in this copy or the sync"):
        repo.merge([good, orphan])
    assert {item.row.id: item.row for item in repo.listing()} == before
    assert ids["store"] in before


def test_forged_rows_in_the_database_are_refused(sql_repos: Repos) -> None:
    repo = sql_repos.new()
    ids = _fill(repo)
    store = sql_repos.stores[id(repo)]
    conn = store._conn  # type: ignore[attr-defined]
    mark = "%s" if sql_repos.backend == "postgres" else "?"
    conn.execute(
        f"UPDATE bug_events SET data = {mark} WHERE bug = {mark} AND kind = 'comment'",
        (
            b'{"author":"bob","bug":"' + ids["store"].encode() + b'","data":{"text":"forged"},'
            b'"kind":"comment","lamport":5,"seen":[],"v":1,"wall":1}',
            ids["store"],
        ),
    )
    with pytest.raises(StoredEventError, match="altered"):
        repo.state(ids["store"])
    with pytest.raises(StoredEventError):
        repo.comment(ids["store"], "ann", "more")
    # The other bugs are still readable.
    assert repo.state(ids["web"]).title == "page is blank"


def test_a_forged_row_in_the_sender_is_refused_by_the_receiver(sql_repos: Repos) -> None:
    team, laptop = sql_repos.new(), sql_repos.new()
    ids = _fill(team)
    pull(laptop, team)
    before = {item.row.id: item.row for item in laptop.listing()}
    team.comment(ids["web"], "cat", "genuine")
    store = sql_repos.stores[id(team)]
    mark = "%s" if sql_repos.backend == "postgres" else "?"
    conn = store._conn  # type: ignore[attr-defined]
    rows = conn.execute(
        f"SELECT id, data FROM bug_events WHERE bug = {mark} AND kind = 'comment'", (ids["web"],)
    ).fetchall()
    for event_id, data in rows:
        conn.execute(
            f"UPDATE bug_events SET data = {mark} WHERE id = {mark}",
            (bytes(data).replace(b"genuine", b"forged!"), event_id),
        )
    with pytest.raises(BugEventError, match="altered or forged"):
        pull(laptop, team)
    assert {item.row.id: item.row for item in laptop.listing()} == before


def test_sync_moves_only_missing_events_and_filtered_copies_know_it(repos: Repos) -> None:
    team, laptop = repos.new(), repos.new()
    ids = _fill(team)
    first = pull(laptop, team, [parse_filter("component=store")])
    assert first.bugs == (ids["store"],)
    assert [f.text for f in laptop.filters()] == ["component=store"]
    assert _titles(laptop) == ["store loses rows"]
    with pytest.raises(UnknownBug, match="partial"):
        laptop.resolve(ids["web"])
    # Nothing new: nothing travels.
    again = pull(laptop, team)
    assert (again.sent, again.added) == (0, 0)
    # One new event on the team side: only it travels.
    team.comment(ids["store"], "ann", "fixed by 1234abcd?")
    one = pull(laptop, team)
    assert (one.sent, one.added) == (1, 1)
    # A bug that comes to match arrives; one that stops matching stays and stays current.
    team.add_tag(ids["web"], "cat", "component:store")
    team.remove_tag(ids["store"], "ann", "component:store")
    team.set_field(ids["store"], "ann", "status", "fixed")
    pull(laptop, team)
    assert _titles(laptop) == ["page is blank", "store loses rows"]
    assert laptop.state(ids["store"]).status == "fixed"
    # Offline edits on both sides converge.
    laptop.comment(ids["web"], "lee", "repro attached")
    team.set_field(ids["web"], "cat", "severity", "high")
    push(laptop, team)
    pull(laptop, team)
    assert laptop.state(ids["web"]) == team.state(ids["web"])


def test_bundles_round_trip_and_bad_ones_change_nothing(repos: Repos) -> None:
    team, other = repos.new(), repos.new()
    ids = _fill(team)
    data = export_bundle(team, [parse_filter("tag=flaky")])
    result = import_file_bytes(other, data, "flaky.bundle")
    assert set(result.bugs) == {ids["store"], ids["web"]}
    assert [f.text for f in other.filters()] == ["tag=flaky"]
    lines = export_bundle(team).split(b"\n")
    where = next(n for n, line in enumerate(lines) if b"runner hangs" in line)
    lines[where] = lines[where].replace(b"runner hangs", b"runner hangz")
    forged = b"\n".join(lines)
    fresh = repos.new()
    with pytest.raises(BugError, match=f"line {where + 1}.*altered or forged"):
        import_file_bytes(fresh, forged, "forged.bundle")
    assert fresh.count() == 0
    assert fresh.filters() == ()


@pytest.mark.slow
def test_concurrent_writers_to_one_bug_lose_nothing(sql_repos: Repos) -> None:
    import threading

    from proctor.store import open_store
    from proctor.store.bug_tables import bug_tables

    first = sql_repos.new()
    bug_id = first.create("ann", "shared").id
    url = sql_repos.urls[id(first)]
    stores = [open_store(url) for _ in range(2)]
    errors: list[BaseException] = []

    def write(n: int) -> None:
        repo = BugRepository(bug_tables(stores[n]))
        try:
            for i in range(15):
                repo.comment(bug_id, f"writer{n}", f"comment {n}.{i}")
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()
    assert errors == []
    state = first.state(bug_id)
    assert len(state.comments) == 30
    (listed,) = first.listing()
    assert listed.row.events == 31
    assert first.summary().heads[bug_id] == first.replica(bug_id).heads(bug_id)
