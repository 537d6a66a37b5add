"""Benchmark: applying known-bug rules to every stored failure.

Target (issue 10): applying a new rule to every stored failure takes under
5 s at 200,000 failures.

Generates FAILURES failure facts as a long history holds them: FAULTS distinct
faults (signature, type, message, key), each failing in a few of TESTS tests
(so one test fails for several faults and one fault in several tests), skewed
so that a few faults make most failures. Then times, median of REPEAT:

* parsing and compiling a rule;
* one rule over every failure, for rules that do not mention ``test``
  (evaluated once per distinct fault) and rules that do (once per distinct
  fault and test);
* ``unexplained`` with RULES rules (the classification rate and the clusters).

With ``--store N`` it also times reading N failures back from a SQLite
repository (:func:`proctor.triage.failures.load_failures`, the path ``proctor
rules`` takes): stored signed (their type and message read as columns), and
stored unsigned (every record read and signed, as before types and messages
were stored), every failure's text different (the worst case for the second:
equal texts are signed once).

Usage:
    python bench/rules.py
    python bench/rules.py --failures 200000 --repeat 5 --store 5000
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from proctor.store import Store
from proctor.triage.rules import Rule, RuleSet, make_rule, unexplained
from proctor.triage.rules_lang import FailureFacts, compile_rule, parse_rule

TYPES = ["TimeoutError", "KeyError", "ValueError", "AssertionError", "ConnectionError", "OSError"]
MESSAGES = [
    "connection refused by <ip>:<port>",
    "connection reset by peer",
    "'<str>'",
    "invalid literal for int() with base <n>: '<str>'",
    "<n> != <n>",
    "[Errno <n>] No such file or directory: '<tmp>/data.json'",
]
RULES = [
    'type = "TimeoutError" and message ~ "connection (refused|reset)"',
    'message ~ "connection" and not test ~ "^tests\\.unit\\."',
    'key ~ "shop/module_1[0-9]\\.py"',
    'kind = "crash" or kind = "timeout"',
    'signature = "00000000000000ab"',
]


def generate(failures: int, faults: int, tests: int, seed: int = 1) -> list[FailureFacts]:
    rng = random.Random(seed)
    test_ids = [
        f"tests.{'unit' if i % 3 else 'integration'}.test_m{i % 97}.T.test_{i}"
        for i in range(tests)
    ]
    made = []
    for number in range(faults):
        kind = "crash" if number % 50 == 0 else "timeout" if number % 40 == 0 else "traceback"
        type_ = TYPES[number % len(TYPES)]
        made.append(
            (
                f"{number:016x}",
                type_,
                MESSAGES[number % len(MESSAGES)],
                f"{type_} @ shop/module_{number % 300}.py:function_{number} | line_{number}()",
                kind,
                rng.sample(test_ids, k=1 + number % 5),
            )
        )
    weights = [1.0 / (rank + 1) for rank in range(faults)]  # a few faults make most failures
    chosen = rng.choices(made, weights=weights, k=failures)
    return [
        FailureFacts(rng.choice(tests_of), type_, message, digest, key, kind, run=index // 50)
        for index, (digest, type_, message, key, kind, tests_of) in enumerate(chosen)
    ]


def median_of(repeat: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _apply(rule: Rule, failures: list[FailureFacts]) -> list[list[int]]:
    return RuleSet([rule]).matches(failures)


def bench_store(count: int) -> None:
    from proctor.store import open_store
    from proctor.triage.failures import load_failures

    text = (
        "Traceback (most recent call last):\n"
        '  File "/src/shop/client.py", line {n}, in get\n'
        "    return self.session.get(url)\n"
        "TimeoutError: connection refused by 10.0.0.{n}:8080\n"
    )
    from proctor.triage.signer import RecordSigner

    for signed in (True, False):
        with tempfile.TemporaryDirectory() as directory:
            store = open_store(str(Path(directory) / "repo"))
            store.signer = RecordSigner() if signed else None
            _fill(store, count, text)
            took = median_of(3, functools.partial(load_failures, store))
            store.close()
        how = "signed at ingest (columns)" if signed else "unsigned (records read and signed)"
        print(
            f"load_failures from SQLite, {count:,} failures {how}: {took:.2f} s "
            f"({took / count * 1e6:.0f} us per failure)"
        )


def _fill(store: Store, count: int, text: str) -> None:
    from proctor.wire.event import Status
    from proctor.wire.record import Attachment, TestRecord

    per_run = 500
    for run in range(0, count, per_run):
        records = [
            TestRecord(
                f"tests.test_api.test_{run + i}",
                status=Status.FAIL,
                attachments=(
                    Attachment("traceback", text.format(n=run + i).encode(), "text/plain"),
                ),
            )
            for i in range(min(per_run, count - run))
        ]
        store.write_run(records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--failures", type=int, default=200_000)
    parser.add_argument("--faults", type=int, default=2_000)
    parser.add_argument("--tests", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--store", type=int, default=0, metavar="N")
    args = parser.parse_args()

    failures = generate(args.failures, args.faults, args.tests)
    distinct = len({(f.signature, f.type, f.message, f.key, f.kind) for f in failures})
    pairs = len({(f.signature, f.test) for f in failures})
    print(
        f"{len(failures):,} failures, {distinct:,} distinct faults, "
        f"{pairs:,} distinct (fault, test); median of {args.repeat}"
    )
    parse_time = median_of(args.repeat, lambda: [compile_rule(parse_rule(r)) for r in RULES])
    print(f"parse and compile {len(RULES)} rules: {parse_time * 1e3:.2f} ms")
    worst = 0.0
    for where in RULES:
        rule = make_rule("LP#1", where)
        matched = len(RuleSet([rule]).matches(failures)[0])
        took = median_of(args.repeat, functools.partial(_apply, rule, failures))
        worst = max(worst, took)
        print(f"  {took:6.3f} s  {matched:>7,} matched  {where}")
    rules = [make_rule(f"LP#{i}", where) for i, where in enumerate(RULES)]
    took = median_of(args.repeat, lambda: unexplained(rules, failures))
    report = unexplained(rules, failures)
    print(
        f"unexplained, {len(rules)} rules: {took:.3f} s "
        f"({report.explained / report.total:.0%} explained, {len(report.clusters):,} clusters left)"
    )
    # The worst case for a rule that mentions `test`: no two failures share a
    # (fault, test), so it runs once per failure.
    spread = [
        dataclasses.replace(facts, test=f"tests.t{index}") for index, facts in enumerate(failures)
    ]
    rule = make_rule("LP#1", RULES[1])
    took = median_of(args.repeat, functools.partial(_apply, rule, spread))
    worst = max(worst, took)
    print(f"  {took:6.3f} s  every (fault, test) distinct: {RULES[1]}")
    verdict = "meets" if worst < 5.0 else "MISSES"
    print(f"slowest single rule {worst:.3f} s: {verdict} the 5 s target")
    if args.store:
        bench_store(args.store)


if __name__ == "__main__":
    main()
