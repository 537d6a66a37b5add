"""Benchmark: every dashboard page's server time on a large history, the report's
first paint, and the weight of the dashboard's JS and CSS.

Builds a SQLite repository of ``--runs`` runs x ``--tests`` tests in a
temporary directory, written through the store's bulk API
(:meth:`Store.write_run`, with the triage signer so every failure gets its
signature, as ``proctor run`` stores them). The history is a CI's: ten runs a
day ending at the dashboard's "now", three branches and two CI jobs, every
commit run twice (so flakiness can be judged), and about 20 failures a run:

* 5 broken tests failing since the middle of the history (one fault);
* 40 flaky tests failing 5% of the time (four faults);
* on 3% of runs an outage failing 300 tests at once (one fault);
* 4 tests a run failing at random with one of 200 distinct messages.

Then 30 bugs (from the biggest clusters, via the bugs layer) and 10 known-bug
rules (the repository's copy). Passing results carry no attachments.

Each page is asked through Starlette's TestClient (``--repeat`` times after
one warm-up; the median is printed): the overview and the cluster list (target
under 1 s), every other page (target under 200 ms). Then a report of one run of
``--big`` results is written and opened from disk in Chromium (when Playwright
and /usr/bin/chromium are there) for its first contentful paint (target under
1 s at 100,000 results).

Usage: python bench/ui.py [--runs 1000] [--tests 10000] [--big 100000] [--repeat 5]
Only run it at full size when asked: generation writes 10M results.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from importlib import resources
from pathlib import Path

from starlette.testclient import TestClient

from proctor.bugs.cluster import cluster_bug
from proctor.bugs.repository import BugRepository
from proctor.store.bug_tables import bug_tables
from proctor.store.contract import Store
from proctor.store.model import RunMetadata
from proctor.store.opening import open_store
from proctor.triage.algorithm import ALGORITHM
from proctor.triage.rules import StoreRuleBook, make_rule
from proctor.triage.signer import RecordSigner
from proctor.web.app import create_app
from proctor.web.report import build_report
from proctor.web.repository import ReadOnlyRepository
from proctor.wire.event import NS_PER_SECOND, Status
from proctor.wire.record import TRACEBACK_MIME_TYPE, Attachment, TestRecord

DAY = 86_400 * NS_PER_SECOND
RUNS_PER_DAY = 10
NOW = 1_760_000_000 * NS_PER_SECOND
CHROMIUM = "/usr/bin/chromium"


def test_id(n: int) -> str:
    return (
        f"project.tests.unit.test_module_{n // 100:03d}.TestClass{n // 10 % 10}.test_case_{n:05d}"
    )


def traceback(fault: str, test: str, line: int) -> Attachment:
    text = (
        "Traceback (most recent call last):\n"
        f'  File "project/tests/unit/test_x.py", line {line}, in {test.rsplit(".", 1)[1]}\n'
        "    self.check()\n"
        f'  File "project/{fault}.py", line 42, in {fault}\n'
        "    raise Failure(detail)\n"
        f"{fault.title()}Error: {fault} failed for case {line}\n"
    )
    return Attachment("traceback", text.encode(), TRACEBACK_MIME_TYPE)


class History:
    """Which tests fail in which run, and with what."""

    def __init__(self, runs: int, tests: int, seed: int = 13) -> None:
        self.rng = random.Random(seed)
        self.runs = runs
        self.tests = tests
        pick = self.rng.sample(range(tests), 45 + 300)
        self.broken = pick[:5]
        self.flaky = pick[5:45]
        self.outage = pick[45:]

    def failures(self, run: int) -> dict[int, Attachment]:
        rng = self.rng
        failed: dict[int, Attachment] = {}
        if run >= self.runs // 2:
            for n in self.broken:
                failed[n] = traceback("storage", test_id(n), 10)
        for n in self.flaky:
            if rng.random() < 0.05:
                failed[n] = traceback(
                    ("timing", "ordering", "network", "cache")[n % 4], test_id(n), 20
                )
        if rng.random() < 0.03:
            for n in self.outage:
                failed[n] = traceback("connection", test_id(n), 30)
        for _ in range(4):
            n = rng.randrange(self.tests)
            failed[n] = traceback(f"noise{rng.randrange(200)}", test_id(n), 40)
        return failed

    def records(self, run: int, start: int) -> list[TestRecord]:
        failed = self.failures(run)
        found = []
        now = start
        for n in range(self.tests):
            took = (1 + n % 17) * NS_PER_SECOND // 1000
            attachment = failed.get(n)
            found.append(
                TestRecord(
                    test_id(n),
                    Status.FAIL if attachment is not None else Status.SUCCESS,
                    str(n % 4),
                    now,
                    now + took,
                    frozenset(),
                    () if attachment is None else (attachment,),
                )
            )
            now += took // 4  # four workers
        return found


def fill(url: str, runs: int, tests: int) -> None:
    history = History(runs, tests)
    store = open_store(url)
    store.signer = RecordSigner()
    try:
        first = NOW - (runs // RUNS_PER_DAY) * DAY
        for run in range(runs):
            start = first + run * DAY // RUNS_PER_DAY
            meta = RunMetadata(
                started_ns=start,
                git_branch=("main", "main", "main", "stable", "feature")[run // 2 % 5],
                git_commit=f"{run // 2:040x}",  # every commit run twice
                python="3.11.9",
                platform="linux",
                properties={"ci.job": ("unit", "functional")[run % 2]},
            )
            store.write_run(history.records(run, start), meta)
            if run % 100 == 99:
                print(f"  {run + 1} runs written", flush=True)
        add_bugs_and_rules(store)
    finally:
        store.close()


def add_bugs_and_rules(store: Store) -> None:
    latest = [info.id for info in store.runs(limit=300)]
    counts: dict[str, int] = {}
    tests: dict[str, str] = {}
    for row in store.failures(latest, algorithm=ALGORITHM):
        counts[row.cluster] = counts.get(row.cluster, 0) + 1
        tests.setdefault(row.cluster, row.test_id)
    biggest = sorted(counts, key=lambda c: -counts[c])[:30]
    bugs = BugRepository(bug_tables(store))
    for cluster in biggest:
        title, description = cluster_bug(store, cluster, None, "")
        event = bugs.create("bench", title, description, links=[("cluster", cluster)])
        bugs.comment(event.id, "bench", "seen again in CI")
        bugs.link(event.id, "bench", "test", tests[cluster])
    rules = [
        make_rule(f"https://bugs.example/{n}", f'message ~ "noise{n} failed"') for n in range(8)
    ]
    rules.append(make_rule("https://bugs.example/storage", 'type = "StorageError"'))
    rules.append(make_rule("https://bugs.example/outage", 'type = "ConnectionError"'))
    StoreRuleBook(store).replace(rules)


def timed(client: TestClient, path: str, repeat: int) -> float:
    assert client.get(path).status_code == 200, path  # warm-up (and checked)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        answer = client.get(path)
        times.append(time.perf_counter() - start)
        assert answer.status_code == 200, (path, answer.status_code)
    return statistics.median(times)


PAINT = """() => new Promise((resolve) => {
  const seen = () => performance.getEntriesByName("first-contentful-paint")[0];
  if (seen()) { resolve(seen().startTime); return; }
  new PerformanceObserver(() => { if (seen()) resolve(seen().startTime); })
    .observe({type: "paint", buffered: true});
  setTimeout(() => resolve(null), 15000);
})"""


def first_paint(path: Path) -> float | None:
    """Milliseconds to the first contentful paint of ``path`` opened from disk
    in Chromium (median of 3), or None without Playwright or Chromium."""
    if not os.path.exists(CHROMIUM):
        return None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            paints = []
            for _ in range(3):
                page = browser.new_page()
                page.goto(path.as_uri(), wait_until="commit")
                paint = page.evaluate(PAINT)
                if paint is not None:
                    paints.append(float(paint))
                page.close()
            return statistics.median(paints) if paints else None
        finally:
            browser.close()


def assets() -> int:
    static = resources.files("proctor.web") / "static"
    return sum(len((static / name).read_bytes()) for name in ("app.css", "app.js"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--tests", type=int, default=10_000)
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"JS+CSS: {assets():,} bytes (target under 60 KB)")
    with tempfile.TemporaryDirectory() as tmp:
        url = str(Path(tmp) / "repo.sqlite")
        start = time.perf_counter()
        fill(url, args.runs, args.tests)
        took = time.perf_counter() - start
        size = os.path.getsize(url) / 1e6
        print(f"filled {args.runs} runs x {args.tests} tests in {took:.0f}s ({size:.0f} MB)")
        repo = ReadOnlyRepository(open_store(url, create=False))
        client = TestClient(create_app(repo, now_ns=lambda: NOW), base_url="http://127.0.0.1")
        last = args.runs
        clusters = client.get("/clusters.json").json()["clusters"]
        big, small = clusters[0]["id"], clusters[-1]["id"]
        bug = client.get("/bugs.json").json()["bugs"][0]["id"]
        test = test_id(History(args.runs, args.tests).broken[0])
        print("median server time (targets: overview, cluster list < 1 s; others < 200 ms)")
        for path in [
            "/",
            "/?branch=main&job=unit",
            "/?window=7d",
            "/clusters",
            "/clusters?window=7d",
            "/clusters?branch=main&job=unit",
            f"/clusters/{big}",
            f"/clusters/{small}",
            "/bugs",
            f"/bugs/{bug}",
            "/runs",
            "/runs?page=3",
            f"/runs/{last}",
            f"/runs/{last}.json",
            f"/compare?base={last - 3}&head={last}",
            f"/test?id={test}",
            f"/test?id={test}&n=1000",
            "/search?q=test_case_0000",
        ]:
            print(f"{timed(client, path, args.repeat) * 1000:8.1f} ms  {path}", flush=True)
        repo.close()
    with tempfile.TemporaryDirectory() as tmp:
        url = str(Path(tmp) / "big.sqlite")
        history = History(2, args.big)
        store = open_store(url)
        store.signer = RecordSigner()
        try:
            for run in range(2):
                meta = RunMetadata(started_ns=NOW + run * DAY, git_branch="main")
                store.write_run(history.records(run, NOW + run * DAY), meta)
        finally:
            store.close()
        repo = ReadOnlyRepository(open_store(url, create=False))
        start = time.perf_counter()
        html = build_report(repo, repo.run(2))
        took = time.perf_counter() - start
        repo.close()
        out = Path(tmp) / "report.html"
        out.write_text(html, "utf-8")
        print(f"report of {args.big} results: {out.stat().st_size / 1e6:.1f} MB in {took:.1f}s")
        paint = first_paint(out)
        if paint is None:
            print("first paint: not measured (no Playwright or no Chromium)")
        else:
            print(f"first contentful paint of that report from disk: {paint:.0f} ms")


if __name__ == "__main__":
    main()
