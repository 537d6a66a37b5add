"""Benchmark: signatures in the store at scale (``python bench/triage.py --store``).

Builds a history of RUNS runs x TESTS tests, 2% failing: failures drawn from
FAULTS faults (each a traceback through a shared project function, reached
from the failing test's own frame, so each test's text differs; line numbers
shift every 10 runs, as commits do) plus unique noise (10% of failures, each
its own site). Ten runs a day, the newest ending now, so `proctor triage`'s
default window (7 days) holds 70 runs and `proctor flaky`'s (14 days) 140,
whatever the length of the history. Some tests fail in only some runs of a
commit: flaky.

Measures, per backend:

* ingest rate with signatures and without (the same records, a fresh
  repository each; records built beforehand; a new signer per run, as each
  `proctor run` process has its own memo);
* `proctor triage` and `proctor flaky` as whole commands (new processes,
  median of REPEAT);
* applying a new known-bug rule to every stored failure: ``proctor rules
  test EXPR --runs RUNS`` as a whole command (the stored type and message of
  every failure read, the rule run once per distinct fault), and, with
  ``--rules-before``, the way it was done before they were stored (every
  failing run's records read and their tracebacks parsed), in process;
* re-clustering every stored failure under another algorithm version
  (``source=off``), in chunks, keeping cluster ids where the grouping holds.

Targets (issue 10): ingest with signatures >= 0.8x without and >= 100,000
results/s on SQLite; each command < 1 s on SQLite; re-clustering 200,000
failures < 60 s; applying a new rule to every stored failure < 5 s.
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from proctor.store import RunMetadata, Store, open_store
from proctor.triage.recluster import recluster
from proctor.triage.signature import ALGORITHM
from proctor.triage.signer import RecordSigner
from proctor.wire.event import NS_PER_SECOND, TRACEBACK_MIME_TYPE, Status
from proctor.wire.record import Attachment, TestRecord

BIN = Path(sys.executable).parent
POSTGRES = os.environ.get("PROCTOR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
RUNS_PER_DAY = 10


class FailureHistory:
    def __init__(self, runs: int, tests: int, faults: int, seed: int = 10) -> None:
        rng = random.Random(seed)
        self.rng = rng
        self.runs = runs
        self.ids = [
            f"project/tests/unit/test_module_{i // 100:03d}.py::TestClass{i // 10 % 10}"
            f"::test_behaviour_{i:05d}"
            for i in range(tests)
        ]
        failing = max(1, tests * 2 // 100)
        chosen = rng.sample(range(tests), failing * 2)
        # Each fault has its tests; half the candidates fail each run on average.
        self.fault_of = {test: rng.randrange(faults) for test in chosen}
        self.candidates = chosen
        self.failing = failing
        now = time.time_ns() - 60 * NS_PER_SECOND
        step = 86_400 * NS_PER_SECOND // RUNS_PER_DAY
        self.starts = [now - (runs - 1 - run) * step for run in range(runs)]

    def traceback(self, rng: random.Random, test: int, run: int, noise: bool) -> bytes:
        commit = run // 10
        fault = self.fault_of[test]
        name = self.ids[test].rsplit("::", 1)[1]
        module = self.ids[test].split("::", 1)[0]
        if noise:
            site = f"helper_{rng.randrange(10**9)}"
            error = f"ValueError: unexpected {rng.randrange(10**6)}"
        else:
            site = f"function_{fault}"
            error = f"KeyError: 'setting_{fault}_{rng.randrange(1000)}'"
        return (
            "Traceback (most recent call last):\n"
            f'  File "/home/ci/build/{module}", line {40 + commit}, in {name}\n'
            f"    result = service.{site}(config)\n"
            f'  File "/home/ci/build/project/service/module_{fault % 7}.py", '
            f"line {100 + commit * 3}, in {site}\n"
            f"    return settings[name_{fault}]\n"
            f"{error}\n"
        ).encode()

    def run(self, run: int) -> list[TestRecord]:
        """The run's records (the same every time it is asked for)."""
        rng = random.Random(run * 7919 + 1)
        start = self.starts[run]
        failing = set(rng.sample(self.candidates, self.failing))
        records = []
        for index, test_id in enumerate(self.ids):
            begin = start + index * 1000
            if index in failing:
                text = self.traceback(rng, index, run, noise=rng.random() < 0.1)
                attachment = Attachment("traceback", text, TRACEBACK_MIME_TYPE)
                records.append(
                    TestRecord(
                        test_id, Status.FAIL, None, begin, begin + 500, frozenset(), (attachment,)
                    )
                )
            else:
                records.append(TestRecord(test_id, Status.SUCCESS, None, begin, begin + 500))
        return records

    def metadata(self, run: int) -> RunMetadata:
        return RunMetadata(
            started_ns=self.starts[run],
            partial=False,
            git_commit=f"{run // 10:040x}",
            git_branch="main",
            python="CPython 3.11.7",
            platform="Linux-x86_64",
        )


def ingest(store: Store, history: FailureHistory, runs: list[int], signed: bool) -> list[float]:
    """Seconds to store each of ``runs`` (records built untimed)."""
    times = []
    for run in runs:
        records = history.run(run)
        store.signer = RecordSigner() if signed else None
        began = time.perf_counter()
        with store.begin_run(history.metadata(run)) as writer:
            writer.add_many(records)
        times.append(time.perf_counter() - began)
    return times


def command(args: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        subprocess.run([str(BIN / "proctor"), *args], check=False, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def bench(
    backend: str,
    runs: int,
    tests: int,
    faults: int,
    repeat: int,
    compare_runs: int,
    rules_before: bool = False,
) -> None:
    history = FailureHistory(runs, tests, faults)
    print(f"\n== {backend}: {runs} runs x {tests} tests, {faults} faults + noise")
    workdir = Path(tempfile.mkdtemp(prefix="proctor-triage-bench-"))
    try:
        urls = {}
        for label in ("plain", "signed"):
            if backend == "sqlite":
                urls[label] = str(workdir / label)
            else:
                import psycopg

                schema = f"triage_bench_{label}_{os.getpid()}"
                with psycopg.connect(POSTGRES, autocommit=True) as admin:
                    admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
                    admin.execute(f"CREATE SCHEMA {schema}")
                urls[label] = f"{POSTGRES}?options=-csearch_path%3D{schema}"
        # The first compare_runs runs go to both repositories in turn, run by run,
        # so that both see the same machine; then the signed one takes the rest.
        plain_times: list[float] = []
        signed_times: list[float] = []
        with (
            open_store(urls["plain"], create=True) as plain,
            open_store(urls["signed"], create=True) as signed_store,
        ):
            for run in range(runs):
                if run < compare_runs:
                    plain_times += ingest(plain, history, [run], signed=False)
                signed_times += ingest(signed_store, history, [run], signed=True)
            failures = len(signed_store.failures(range(1, runs + 1), algorithm=ALGORITHM))
        plain_rate = compare_runs * tests / sum(plain_times)
        same_rate = compare_runs * tests / sum(signed_times[:compare_runs])
        all_rate = runs * tests / sum(signed_times)
        print(f"ingest without signatures: {plain_rate:,.0f} results/s (first {compare_runs} runs)")
        print(f"ingest with signatures:    {same_rate:,.0f} results/s (the same runs)")
        print(f"ratio: {same_rate / plain_rate:.2f}")
        print(f"ingest with signatures, all {runs} runs: {all_rate:,.0f} results/s")
        print(f"stored {runs * tests:,} results, {failures:,} failures signed")
        measure(urls["signed"], tests, repeat, runs=runs, rules_before=rules_before)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if backend != "sqlite":  # the schemas made above
            import psycopg

            with psycopg.connect(POSTGRES, autocommit=True) as admin:
                for label in ("plain", "signed"):
                    schema = f"triage_bench_{label}_{os.getpid()}"
                    admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


RULE = 'type = "KeyError" and key ~ ":function_12 "'
"""A new rule: one of the faults of the history (by its message)."""


def rules_before(repo: str, runs: int) -> tuple[float, int]:
    """Seconds to apply RULE to every stored failure the way it was done before
    types and messages were stored (records read and parsed), and its matches."""
    from proctor.triage.rules import FactsReader, make_rule, preview

    rule = make_rule("LP#1", RULE)
    with open_store(repo) as store:
        began = time.perf_counter()
        reader = FactsReader()
        failures = []
        for info in reversed(store.runs(limit=runs)):
            if info.counts.failures:
                for record in store.records(info.id):
                    facts = reader(record, run=info.id)
                    if facts is not None:
                        failures.append(facts)
        found = preview(rule, failures)
        return time.perf_counter() - began, found.failures


def measure_rules(repo: str, runs: int, repeat: int, before: bool) -> None:
    """Time applying RULE to every stored failure (now, and before with ``before``)."""
    from proctor.triage.failures import load_failures
    from proctor.triage.rules import make_rule, preview

    rule = make_rule("LP#1", RULE)
    with open_store(repo) as store:
        began = time.perf_counter()
        failures = load_failures(store, runs=runs)
        loaded = time.perf_counter() - began
        found = preview(rule, failures)
        total = time.perf_counter() - began
    print(
        f"apply a new rule to all {len(failures):,} stored failures, in process: "
        f"{total:.2f} s (reading them {loaded:.2f} s; {found.failures:,} matched)"
    )
    took = command(["rules", "test", RULE, "--runs", str(runs), "--repository", repo], repeat)
    print(f"proctor rules test EXPR --runs {runs} (whole command): {took:.2f} s")
    if before:
        was, matched = rules_before(repo, runs)
        print(f"before (records read and parsed), in process: {was:.2f} s ({matched:,} matched)")


def measure(
    repo: str,
    tests: int,
    repeat: int,
    signer: RecordSigner | None = None,
    *,
    runs: int = 1000,
    rules_before: bool = False,
) -> None:
    """Time the commands on ``repo``, then re-cluster it under another algorithm."""
    triage_s = command(["triage", "--repository", repo], repeat)
    flaky_s = command(["flaky", "--repository", repo], repeat)
    last_s = command(["last", "--repository", repo], repeat)
    print(f"proctor triage (7 days, {7 * RUNS_PER_DAY} runs): {triage_s * 1000:.0f} ms")
    print(f"proctor flaky (14 days, {14 * RUNS_PER_DAY} runs): {flaky_s * 1000:.0f} ms")
    print(f"proctor last ({tests:,} tests, with its cluster notes): {last_s * 1000:.0f} ms")
    measure_rules(repo, runs, repeat, rules_before)
    with open_store(repo) as store:
        began = time.perf_counter()
        report = recluster(store, signer or RecordSigner(source=False), previous=ALGORITHM)
        took = time.perf_counter() - began
    print(
        f"recluster under {report.algorithm}: {report.signed:,} failures in {took:.1f} s "
        f"({report.signed / max(took, 1e-9):,.0f}/s; {report.kept_ids} cluster ids kept)"
    )
