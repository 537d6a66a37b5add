"""Benchmark: the dashboard's page times and the report's size and speed.

Builds a SQLite repository of ``--runs`` runs of ``--tests`` tests each (about
1% failing with a traceback, every tenth test with captured output, one
branch of three for each run, two CI jobs), then asks every page through
Starlette's TestClient (median of ``--repeat``) and writes reports of the
latest run and of one run of ``--big`` results.

Usage: python bench/web.py [--runs 200] [--tests 2000] [--big 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from starlette.testclient import TestClient

from proctor.store.model import RunMetadata
from proctor.store.opening import open_store
from proctor.web.app import create_app
from proctor.web.report import build_report
from proctor.web.repository import ReadOnlyRepository
from proctor.wire.event import NS_PER_SECOND, Status
from proctor.wire.record import Attachment, TestRecord

T0 = 1_700_000_000 * NS_PER_SECOND
TRACE = "text/x-traceback; charset=utf8"


def records(run: int, tests: int) -> list[TestRecord]:
    found = []
    now = T0 + run * 3600 * NS_PER_SECOND
    for n in range(tests):
        test_id = f"pkg.module_{n // 50:04d}.TestCase.test_number_{n:06d}"
        failed = (n * 7919 + run * 104729) % 100 == 0 or (n == 5 and run > 100)
        attachments: tuple[Attachment, ...] = ()
        if failed:
            text = f"Traceback (most recent call last):\n  File x\nAssertionError: {n % 13}\n"
            attachments = (Attachment("traceback", text.encode(), TRACE),)
        elif n % 10 == 0:
            attachments = (Attachment("stdout", b"output line\n" * 8, "text/plain"),)
        took = (1 + n % 17) * NS_PER_SECOND // 1000
        found.append(
            TestRecord(
                test_id,
                Status.FAIL if failed else Status.SUCCESS,
                str(n % 4),
                now,
                now + took,
                frozenset(),
                attachments,
            )
        )
        now += took
    return found


def fill(url: str, runs: int, tests: int) -> None:
    store = open_store(url)
    try:
        for run in range(runs):
            meta = RunMetadata(
                started_ns=T0 + run * 3600 * NS_PER_SECOND,
                git_branch=("main", "stable", "feature")[run % 3],
                git_commit=f"{run:040x}",
                properties={"ci.job": ("unit", "functional")[run % 2]},
            )
            store.write_run(records(run, tests), meta)
    finally:
        store.close()


def timed(client: TestClient, path: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        answer = client.get(path)
        times.append(time.perf_counter() - start)
        assert answer.status_code == 200, (path, answer.status_code)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--tests", type=int, default=2000)
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = str(Path(tmp) / "repo.sqlite")
        start = time.perf_counter()
        fill(url, args.runs, args.tests)
        print(f"filled {args.runs} runs x {args.tests} tests in {time.perf_counter() - start:.1f}s")
        repo = ReadOnlyRepository(open_store(url, create=False))
        client = TestClient(create_app(repo, now_ns=lambda: T0), base_url="http://127.0.0.1")
        last = args.runs
        test = "pkg.module_0000.TestCase.test_number_000005"
        for path in [
            "/",
            "/?branch=main&job=unit",
            "/runs",
            "/runs?page=3",
            f"/runs/{last}",
            f"/runs/{last}.json",
            f"/compare?base={last - 3}&head={last}",
            f"/test?id={test}",
            f"/test?id={test}&n=1000",
            "/search?q=test_number_0000",
        ]:
            print(f"{timed(client, path, args.repeat) * 1000:8.1f} ms  {path}")
        for label, run_id in (("latest run", last),):
            start = time.perf_counter()
            html = build_report(repo, repo.run(run_id))
            took = time.perf_counter() - start
            size = len(html.encode())
            print(f"report of the {label} ({args.tests} results): {size / 1e6:.2f} MB, {took:.2f}s")
        repo.close()
    with tempfile.TemporaryDirectory() as tmp:
        for count in (10_000, args.big):
            url = str(Path(tmp) / f"big{count}.sqlite")
            fill(url, 2, count)
            repo = ReadOnlyRepository(open_store(url, create=False))
            start = time.perf_counter()
            html = build_report(repo, repo.run(2))
            took = time.perf_counter() - start
            size = len(html.encode())
            print(f"report of {count} results: {size / 1e6:.2f} MB, {took:.2f}s")
            repo.close()


if __name__ == "__main__":
    main()
