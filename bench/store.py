"""Benchmark: the run-history repository against stestr's, on the same history.

Generates a history of RUNS runs x TESTS tests (2% failing with ~1 KB Python
tracebacks: most failures repeat run after run with the same traceback, a few
are flaky), then:

* ingest: stores every run through ``RunWriter.add`` into SQLite and into
  PostgreSQL, timing only the store (records are built beforehand), and
  reports results per second and database bytes per result;
* at each checkpoint (default: after 50 runs and after all of them; PostgreSQL
  vacuumed and analysed first) times the everyday questions three ways,
  median of REPEAT:
  - query: the store API call alone (``latest_run`` + ``records``,
    ``failing_records``, ``slowest``, ``test_history`` + ``test_stats``, ``runs``),
  - in process: the CLI command called in this process, output to /dev/null,
  - command: ``proctor ...`` as a new process, start to exit;
* stestr: ``stestr load``s the first STESTR_RUNS runs of the same history into
  an stestr repository and times ``stestr last / failing / slowest / history
  list`` there (stestr has no per-test history command).

Targets (issue 4): ingest >= 100,000 results/s on SQLite; each query < 50 ms in
process at 1,000 runs and flat as history grows; each whole command < 150 ms on
SQLite. The machine is shared and noisy: ratios hold, absolute times do not.

Usage:
    nice python bench/store.py                          # 1,000 runs x 10,000 tests
    python bench/store.py --runs 50 --tests 1000 --checkpoints 10,50   # minutes -> seconds
    python bench/store.py --backends sqlite --no-stestr
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from proctor.events.emit import records_to_v2
from proctor.store import RunMetadata, Store, open_store
from proctor.wire.event import NS_PER_SECOND, TRACEBACK_MIME_TYPE, Status
from proctor.wire.record import Attachment, TestRecord

BIN = Path(sys.executable).parent
T0 = 1_700_000_000 * NS_PER_SECOND
POSTGRES = os.environ.get("PROCTOR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
COMMANDS = ["last", "failing", "slowest", "history", "runs"]


# -- the history


class History:
    """A deterministic history: test ids, per-test speed, which tests fail when."""

    def __init__(self, tests: int, fail_rate: float, seed: int = 4) -> None:
        rng = random.Random(seed)
        self.ids = [
            f"project.tests.unit.module_{i // 200:03d}.TestClass{i // 20 % 10}"
            f".test_behaviour_{i:05d}"
            for i in range(tests)
        ]
        # Log-normal speeds: most tests take milliseconds, a few take seconds.
        self.speed = [min(rng.lognormvariate(-6.0, 1.5), 20.0) for _ in range(tests)]
        failing = max(1, round(tests * fail_rate))
        chosen = rng.sample(range(tests), failing)
        self.broken = set(chosen[: failing * 3 // 4])  # fail every run, same traceback
        self.flaky = chosen[failing * 3 // 4 :]  # fail now and then
        self.rng = rng

    def traceback(self, index: int, run: int, flaky: bool) -> bytes:
        test = self.ids[index]
        frames = "".join(
            f'  File "/src/project/{"/".join(test.split(".")[:4])}.py", line {40 + 13 * k}, '
            f"in helper_{k}\n    result = helper_{k + 1}(value, context)\n"
            for k in range(5)
        )
        detail = f"{index} != {index + 1}" if not flaky else f"timeout after {run % 7 + 1}s"
        return (
            f"Traceback (most recent call last):\n{frames}"
            f'  File "/src/project/tests/unit/test_behaviour.py", line {index % 900}, '
            f"in test_behaviour_{index:05d}\n    self.assertEqual(observed, expected)\n"
            f"AssertionError: {detail}\n"
        ).encode()

    def run(self, number: int) -> list[TestRecord]:
        rng = random.Random(number)
        flaky_now = {i for i in self.flaky if rng.random() < 0.4}
        records = []
        now = T0 + number * 3600 * NS_PER_SECOND
        for index, test_id in enumerate(self.ids):
            took = int(self.speed[index] * rng.uniform(0.8, 1.25) * NS_PER_SECOND) + 1000
            worker = f"worker-{index % 2}"
            if index in self.broken or index in flaky_now:
                traceback = self.traceback(index, number, index in flaky_now)
                attachment = Attachment("traceback", traceback, TRACEBACK_MIME_TYPE)
                record = TestRecord(
                    test_id, Status.FAIL, None, now, now + took, frozenset({worker}), (attachment,)
                )
            else:
                record = TestRecord(
                    test_id, Status.SUCCESS, None, now, now + took, frozenset({worker})
                )
            records.append(record)
            now += took // 2  # two workers
        return records


# -- timing helpers


def median_of(repeat: int, action: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@contextlib.contextmanager
def null_stdout() -> Iterator[None]:
    with (
        open(os.devnull, "w", encoding="utf-8") as sink,
        contextlib.redirect_stdout(sink),
        contextlib.redirect_stderr(io.StringIO()),
    ):
        yield


def command_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # a user's Python keeps its bytecode cache
    return env


def time_command(argv: list[str], repeat: int, cwd: Path | None = None) -> float:
    env = command_env()

    def once() -> None:
        subprocess.run(
            argv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            check=False,
        )

    once()  # warm: bytecode written, files in the page cache
    return median_of(repeat, once)


# -- Proctor


def queries(store: Store, test_id: str) -> dict[str, Callable[[], object]]:
    def last() -> object:
        info = store.latest_run()
        assert info is not None
        return store.records(info.id)

    return {
        "last": last,
        "failing": store.failing_records,
        "slowest": lambda: store.slowest(limit=10),
        "history": lambda: (store.test_history(test_id, limit=30), store.test_stats([test_id])),
        "runs": store.runs,
    }


def cli_args(command: str, url: str, test_id: str) -> list[str]:
    args = [command, "--repository", url]
    return [*args, test_id] if command == "history" else args


def measure(
    url: str, store: Store, test_id: str, repeat: int, whole: bool
) -> dict[str, dict[str, float]]:
    from proctor.cli.main import main

    found: dict[str, dict[str, float]] = {}
    for command, query in queries(store, test_id).items():
        row = {"query": median_of(repeat, query)}
        with null_stdout():
            argv = cli_args(command, url, test_id)
            row["in process"] = median_of(repeat, functools.partial(main, argv))
        if whole:
            row["command"] = time_command(
                [str(BIN / "proctor"), *cli_args(command, url, test_id)], repeat
            )
        found[command] = row
    return found


def settle(url: str) -> None:
    """Measure a database at rest, as it is between CI jobs: on PostgreSQL,
    vacuum and analyse what the bulk load just wrote (autovacuum would, a
    little later, and would compete with the measurement for the CPU)."""
    if not url.startswith("postgresql"):
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def ingest(
    history: History,
    url: str,
    runs: int,
    checkpoints: list[int],
    repeat: int,
    whole: bool,
    label: str,
) -> dict[str, object]:
    store = open_store(url)
    results = 0
    spent = 0.0
    report: dict[str, object] = {"checkpoints": {}}
    probe = history.ids[next(iter(history.broken))]
    for number in range(1, runs + 1):
        records = history.run(number)
        started = time.perf_counter()
        writer = store.begin_run(
            RunMetadata(
                started_ns=T0 + number * 3600 * NS_PER_SECOND,
                git_branch="main",
                git_commit=f"{number:040x}",
                partial=False,
            )
        )
        add = writer.add
        for record in records:
            add(record)
        writer.finish()
        spent += time.perf_counter() - started
        results += len(records)
        if number % max(1, runs // 20) == 0:
            print(f"  {label}: {number} runs, {results / spent:,.0f} results/s so far", flush=True)
        if number in checkpoints:
            settle(url)
            stats = store.stats()
            checkpoint: dict[str, object] = {
                "results": results,
                "bytes": stats.size_bytes,
                "bytes per result": stats.size_bytes / max(results, 1),
                "latency": measure(url, store, probe, repeat, whole),
            }
            report["checkpoints"][number] = checkpoint  # type: ignore[index]
            print(f"  {label}: measured at {number} runs", flush=True)
    report["rate"] = results / spent
    report["results"] = results
    store.close()
    return report


# -- stestr


def build_stestr(history: History, runs: int, where: Path) -> float:
    """``stestr load`` each run's v2 stream, as a CI job would; returns seconds taken."""
    if where.exists():
        shutil.rmtree(where)
    where.mkdir(parents=True)
    (where / ".stestr.conf").write_text("[DEFAULT]\ntest_path=./tests\n")
    stestr = [sys.executable, "-m", "stestr"]
    subprocess.run([*stestr, "init"], cwd=where, check=True, capture_output=True)
    spent = 0.0
    for number in range(1, runs + 1):
        data = records_to_v2(history.run(number))
        started = time.perf_counter()
        subprocess.run([*stestr, "load"], input=data, cwd=where, capture_output=True, check=False)
        spent += time.perf_counter() - started
        if number % 10 == 0:
            print(f"  stestr: loaded {number} runs", flush=True)
    return spent


def time_stestr(where: Path, repeat: int) -> dict[str, float]:
    stestr = [sys.executable, "-m", "stestr"]
    found = {
        "last": time_command([*stestr, "last"], repeat, where),
        "failing": time_command([*stestr, "failing"], repeat, where),
        "slowest": time_command([*stestr, "slowest"], repeat, where),
    }
    # `history list` takes about half a second per stored 5k-test run: once is enough.
    found["runs"] = time_command([*stestr, "history", "list"], 1, where)
    return found


# -- report


def fmt(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    return f"{seconds * 1000:8.1f} ms" if seconds < 10 else f"{seconds:8.1f} s "


def print_report(
    args: argparse.Namespace,
    reports: dict[str, dict[str, object]],
    stestr: dict[str, float] | None,
    stestr_ingest: float | None,
) -> None:
    print()
    print(
        f"History: {args.runs} runs x {args.tests} tests "
        f"({args.runs * args.tests:,} results, {args.fail_rate:.0%} failing)"
    )
    print()
    print("Ingest")
    for backend, report in reports.items():
        rate = report["rate"]
        checkpoints = report["checkpoints"]
        assert isinstance(checkpoints, dict)
        last_point = checkpoints[max(checkpoints)] if checkpoints else None
        size = f", {last_point['bytes per result']:.0f} bytes/result" if last_point else ""
        print(f"  {backend:<10} {rate:>12,.0f} results/s{size}")
    if stestr_ingest is not None:
        per_run = args.stestr_runs * args.tests / stestr_ingest
        print(f"  {'stestr':<10} {per_run:>12,.0f} results/s (stestr load, whole command)")
    for backend, report in reports.items():
        checkpoints = report["checkpoints"]
        assert isinstance(checkpoints, dict)
        print()
        points = sorted(checkpoints)
        header = f"{backend}: latency (median of {args.repeat})"
        print(header)
        columns = [(p, kind) for p in points for kind in ("query", "in process", "command")]
        print("  " + f"{'':<9}" + "".join(f"{f'{kind} @{p}':>18}" for p, kind in columns), end="")
        if stestr is not None:
            print(f"{f'stestr @{args.stestr_runs}':>16}{'ratio':>8}", end="")
        print()
        for command in COMMANDS:
            cells = []
            for point, kind in columns:
                latency = checkpoints[point]["latency"][command]
                cells.append(fmt(latency.get(kind)))
            line = "  " + f"{command:<9}" + "".join(f"{c:>18}" for c in cells)
            if stestr is not None:
                theirs = stestr.get(command)
                at = min(points, key=lambda p: abs(p - args.stestr_runs))
                ours = checkpoints[at]["latency"][command].get("command")
                ratio = f"{theirs / ours:7.1f}x" if theirs and ours else "    n/a"
                line += f"{fmt(theirs):>16}{ratio:>8}"
            print(line)
    print()
    print("ratio = stestr's whole command / Proctor's whole command at the closest checkpoint")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--tests", type=int, default=10_000)
    parser.add_argument("--fail-rate", type=float, default=0.02)
    parser.add_argument("--checkpoints", default="50,1000", help="runs after which to measure")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--stestr-runs", type=int, default=50)
    parser.add_argument("--no-stestr", action="store_true")
    parser.add_argument("--workdir", type=Path, default=Path("bench/out/store"))
    parser.add_argument("--postgres", default=POSTGRES, help="server for the PostgreSQL backend")
    args = parser.parse_args()
    checkpoints = sorted({int(c) for c in args.checkpoints.split(",") if int(c) <= args.runs})
    history = History(args.tests, args.fail_rate)
    args.workdir.mkdir(parents=True, exist_ok=True)
    reports: dict[str, dict[str, object]] = {}
    for backend in args.backends.split(","):
        print(f"{backend}: ingesting {args.runs} runs x {args.tests} tests", flush=True)
        if backend == "sqlite":
            target = args.workdir / "proctor-sqlite"
            shutil.rmtree(target, ignore_errors=True)
            reports[backend] = ingest(
                history, str(target), args.runs, checkpoints, args.repeat, True, backend
            )
        elif backend == "postgres":
            with postgres_schema(args.postgres) as url:
                reports[backend] = ingest(
                    history, url, args.runs, checkpoints, args.repeat, True, backend
                )
        else:
            parser.error(f"unknown backend {backend!r}")
    stestr = stestr_ingest = None
    if not args.no_stestr:
        where = args.workdir / "stestr"
        print(f"stestr: loading {args.stestr_runs} runs", flush=True)
        stestr_ingest = build_stestr(history, args.stestr_runs, where)
        stestr = time_stestr(where, max(1, min(args.repeat, 3)))
    print_report(args, reports, stestr, stestr_ingest)


@contextlib.contextmanager
def postgres_schema(base: str) -> Iterator[str]:
    """A fresh schema for the benchmark, dropped afterwards."""
    import psycopg

    schema = f"proctor_bench_{os.getpid()}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            sep = "&" if "?" in base else "?"
            yield f"{base}{sep}options=-csearch_path%3D{schema}"
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    main()
