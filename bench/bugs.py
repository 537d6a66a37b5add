"""Benchmark: bug records in memory at 10,000 bugs / 100,000 events.

Builds BUGS bugs with EVENTS events in all (a create each, then tags, removals,
status and assignee changes, comments and test links spread at random), made on
two copies that each edit offline, then times, median of REPEAT:

* make: the local edits themselves (event construction, canonical JSON, SHA-256);
* fold: the state of every bug from its events (cache cleared first);
* merge: every event into an empty copy, each id re-verified and each event checked
  against its bug (parents, clocks, removals), all-or-nothing;
* encode / decode: the whole log as a bundle file and back (parsing and verifying
  every line);
* sync: summary of one copy, the events the other lacks, merge them (the two
  copies having edited offline since they last met).

Target (docs/reference triage.md, section 6): sync of 10k bugs / 100k events in
< 5 s locally (git-bug: ~40 s to read 10k bugs without a cache). The machine is
shared and noisy: absolute times do not hold, ratios do.

With ``--store``, the same records in SQLite repositories instead (the
``proctor bug`` commands' path), median of REPEAT:

* full sync: ``pull`` from a repository holding everything into an empty one
  (summary, every row sent, each parsed and verified, merged, stored, snapshots built);
* small sync: ``pull`` then ``push`` between two repositories that differ by 100
  events (50 made on each side);
* filtered sync: ``pull --filter 'component=store'`` into an empty repository, with
  the bytes moved against the bytes of the matching bugs' events;
* list: ``proctor bug list --status open --tag component:store`` as a whole command
  (a new process: interpreter start-up included).

Usage:
    nice python bench/bugs.py                     # 10,000 bugs / 100,000 events
    python bench/bugs.py --bugs 1000 --events 10000 --repeat 3
    nice python bench/bugs.py --store --repeat 3  # SQLite repositories
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import time
from collections.abc import Callable

from proctor.bugs import Replica, decode_bundle, encode_bundle, encode_summary, import_bundle

AUTHORS = ("Ann <ann@example.org>", "Bob <bob@example.org>", "Cat <cat@example.org>")
TAGS = ("flaky", "component:store", "component:runner", "regression", "ci")


def median_of(repeat: int, action: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def edit(copy: Replica, bugs: list[str], count: int, rng: random.Random) -> None:
    for _ in range(count):
        bug = rng.choice(bugs)
        author = rng.choice(AUTHORS)
        roll = rng.random()
        if roll < 0.3:
            copy.add_tag(bug, author, rng.choice(TAGS))
        elif roll < 0.4 and copy.state(bug).tags:
            copy.remove_tag(bug, author, sorted(copy.state(bug).tags)[0])
        elif roll < 0.55:
            copy.set_field(bug, author, "status", rng.choice(("open", "fixed", "closed")))
        elif roll < 0.65:
            copy.set_field(bug, author, "assignee", rng.choice(AUTHORS))
        elif roll < 0.85:
            copy.comment(bug, author, f"Seen again on CI job {rng.randrange(10**6)}.\n" * 3)
        else:
            copy.link(bug, author, "test", f"tests.mod{rng.randrange(500)}.Test.test_{bug[:6]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bugs", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--store", action="store_true", help="time SQLite repositories")
    args = parser.parse_args()
    rng = random.Random(42)
    clock = itertools.count(1_700_000_000 * 10**9, 10**6).__next__

    start = time.perf_counter()
    first = Replica(clock=clock)
    bugs = [
        first.create(rng.choice(AUTHORS), f"Bug {n}", "A description.").id for n in range(args.bugs)
    ]
    edits = args.events - args.bugs
    edit(first, bugs, edits * 9 // 10, rng)
    second = Replica.clone(first, clock=clock)
    offline = edits // 20  # each copy makes 5% of the edits offline
    edit(first, bugs, offline, rng)
    edit(second, bugs, offline, rng)
    made = time.perf_counter() - start
    if args.store:
        store_bench(first, bugs, args.repeat, rng)
        return
    events = first.events()
    total = len(first.event_ids() | second.event_ids())
    print(f"{args.bugs} bugs, {total} events; {len(events)} on one copy, built in {made:.2f} s")
    print(f"make: {made / (len(events) + offline) * 1e6:.1f} us per local edit (incl. fold cache)")

    def fold_all() -> None:
        first._states.clear()
        first.states()

    def merge_all() -> None:
        Replica().merge(events)

    data = encode_bundle(events)

    def sync() -> None:
        left, right = Replica(), Replica()
        left.merge(events)
        right.merge(second.events())
        begin = time.perf_counter()
        missing = right.events_for(left.summary())
        left.merge(missing)
        timings["sync"].append(time.perf_counter() - begin)
        timings["sent"].append(len(missing))

    timings: dict[str, list[float]] = {"sync": [], "sent": []}
    rows = {
        "fold every bug": median_of(args.repeat, fold_all),
        "merge every event (verified)": median_of(args.repeat, merge_all),
        "encode bundle": median_of(args.repeat, lambda: encode_bundle(events)),
        "decode bundle (parse + verify)": median_of(args.repeat, lambda: decode_bundle(data)),
    }
    for _ in range(args.repeat):
        sync()
    rows["sync after offline edits"] = statistics.median(timings["sync"])
    loaded = Replica()
    rows["import bundle into empty copy"] = median_of(
        args.repeat, lambda: import_bundle(Replica(), data)
    )
    import_bundle(loaded, data)
    assert loaded.states() == first.states()
    print(f"median of {args.repeat}:")
    for name, seconds in rows.items():
        print(f"  {name:32} {seconds:8.3f} s  {seconds / total * 1e6:6.1f} us/event")
    summary_size = len(encode_summary(second.summary()))
    print(f"  bundle size {len(data) / 1e6:.1f} MB; summary size {summary_size / 1e6:.1f} MB")
    print(f"  the sync sent {int(timings['sent'][0])} events")
    print("  (us/event: divided by every event; the sync moves only the ones sent)")


def store_bench(first: Replica, bugs: list[str], repeat: int, rng: random.Random) -> None:
    import os
    import shutil
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from proctor.bugs.filters import parse_filter
    from proctor.bugs.repository import BugRepository
    from proctor.bugs.sync import pull, push
    from proctor.store.bug_tables import bug_tables
    from proctor.store.opening import open_store

    root = Path(tempfile.mkdtemp(prefix="proctor-bugs-bench-"))
    try:
        counter = itertools.count()

        def new_repo() -> tuple[BugRepository, str]:
            path = str(root / f"repo{next(counter)}")
            return BugRepository(bug_tables(open_store(path))), path

        source, source_path = new_repo()
        begin = time.perf_counter()
        source.merge(first.events())
        print(
            f"stored {len(first.event_ids())} events in SQLite "
            f"in {time.perf_counter() - begin:.2f} s"
        )

        full: list[float] = []
        full_cpu: list[float] = []
        for _ in range(repeat):
            target, _path = new_repo()
            begin, cpu = time.perf_counter(), time.process_time()
            result = pull(target, source)
            full.append(time.perf_counter() - begin)
            full_cpu.append(time.process_time() - cpu)
            assert result.added == len(first.event_ids()), result.added
        print(
            f"  full sync into an empty repository  {statistics.median(full):8.3f} s "
            f"(CPU {statistics.median(full_cpu):.3f} s)"
        )

        small: list[float] = []
        small_cpu: list[float] = []
        left, _ = new_repo()
        pull(left, source)
        for _ in range(repeat):
            mine, theirs = Replica(), Replica()
            chosen = rng.sample(bugs, 50)
            for replica, repo in ((mine, source), (theirs, left)):
                replica.merge([e for b in chosen for e in repo.replica(b).events()])
                edit(replica, chosen, 50, rng)
                new = [e for e in replica.events() if e.id not in first.event_ids()]
                repo.merge(new)
                first.merge(new)
            begin, cpu = time.perf_counter(), time.process_time()
            got = pull(left, source)
            gave = push(left, source)
            small.append(time.perf_counter() - begin)
            small_cpu.append(time.process_time() - cpu)
            assert got.added == 50, got
            assert gave.added == 50, gave
        print(
            f"  sync differing by 100 events        {statistics.median(small) * 1000:8.1f} ms "
            f"(CPU {statistics.median(small_cpu) * 1000:.1f} ms)"
        )

        flt = [parse_filter("component=store")]
        moved: list[float] = []
        moved_cpu: list[float] = []
        for _ in range(repeat):
            partial, _ = new_repo()
            begin, cpu = time.perf_counter(), time.process_time()
            result = pull(partial, source, flt)
            moved.append(time.perf_counter() - begin)
            moved_cpu.append(time.process_time() - cpu)
        matching = source.export_rows(flt)
        every = source.export_rows()
        assert result.sent == len(matching)
        print(
            f"  filtered sync (component=store)     {statistics.median(moved):8.3f} s "
            f"(CPU {statistics.median(moved_cpu):.3f} s): "
            f"{result.sent} of {len(every)} events, {result.bytes / 1e6:.1f} MB of "
            f"{sum(len(r.data) for r in every) / 1e6:.1f} MB (the matching bugs' events: "
            f"{sum(len(r.data) for r in matching) / 1e6:.1f} MB)"
        )

        command = [
            sys.executable, "-m", "proctor", "bug", "list", "--status", "open",
            "--tag", "component:store", "--repository", source_path,
        ]  # fmt: skip
        env = {**os.environ, "PROCTOR_AUTHOR": "bench"}
        import resource

        lists: list[float] = []
        list_cpu: list[float] = []
        for _ in range(repeat + 1):
            used = resource.getrusage(resource.RUSAGE_CHILDREN)
            begin = time.perf_counter()
            done = subprocess.run(command, capture_output=True, env=env, check=True)
            lists.append(time.perf_counter() - begin)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            list_cpu.append(after.ru_utime + after.ru_stime - used.ru_utime - used.ru_stime)
        shown = done.stdout.count(b"\n")
        print(
            f"  proctor bug list (filtered, {shown} bugs) "
            f"{statistics.median(lists[1:]) * 1000:6.1f} ms"
            f" (CPU {statistics.median(list_cpu[1:]) * 1000:.1f} ms; whole command, median)"
        )

    finally:
        shutil.rmtree(root, ignore_errors=True)  # some GB of repositories


if __name__ == "__main__":
    main()
