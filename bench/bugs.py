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

Usage:
    nice python bench/bugs.py                     # 10,000 bugs / 100,000 events
    python bench/bugs.py --bugs 1000 --events 10000 --repeat 3
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


if __name__ == "__main__":
    main()
