"""Benchmark: the quality and cost of failure signatures, against two baselines.

Builds the labelled corpus of ``proctor.testing.triage_corpus`` (a generated
project whose pytest suite is run COMMITS x RUNS times with real pytest: line
numbers shift between commits; directories, temporary paths, values and
addresses change between runs; faults are reached through several call paths
and have look-alikes), then clusters its failures by:

* ``frames-v1``: Proctor's signature, told the project's directory;
* ``frames-v1, no roots``: the same, told nothing (paths keyed by their last
  two parts);
* ``depth=all`` and ``source=off``: the alternatives frames-v1 chose against
  (every project frame, Sentry's way; no source line);
* ``exact text``: baseline, the failure text as it is;
* ``message``: baseline, the normalised type and message alone (LUCI
  Analysis' reason clustering).

Clusters are formed within each text format (pytest's long, short, auto and
native styles; ``traceback.format_exception``) and over all formats pooled, and
scored with B-cubed precision and recall against the true faults. Then times
``signature_of`` and ``normalise_message`` per failure (median of REPEAT).

Target (issue 10): frames-v1 precision and recall both >= 0.95, and better
than each baseline on the one it loses (exact text: recall; message:
precision). The machine is shared and noisy: the times are indicative.

With ``--edits``, a second corpus whose commits after the first also rename a
failing function, reflow a failing statement over lines and reword one: what
frames-v1 is known to split (each is a new site), measured apart.

Usage:
    python bench/triage.py                      # 3 commits x 3 runs
    python bench/triage.py --edits              # and the corpus with edits
    python bench/triage.py --commits 2 --runs 2 --repeat 3
    python bench/triage.py --store [--history-runs 1000 --tests 10000 --backends sqlite,postgres]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from proctor.testing.clustering import BCubed, bcubed, exact_text_key, message_key
from proctor.testing.triage_corpus import FAULTS, FORMATS, Sample, build_corpus
from proctor.triage import Project, normalise_message, parse_failure, signature_of

Method = Callable[[Sample], str]


def methods() -> dict[str, Method]:
    def frames(sample: Sample) -> str:
        return signature_of(sample.text, project=Project(roots=(sample.root,))).digest

    def no_roots(sample: Sample) -> str:
        return signature_of(sample.text).digest

    def every_frame(sample: Sample) -> str:
        return signature_of(sample.text, project=Project(roots=(sample.root,)), depth=None).digest

    def no_source(sample: Sample) -> str:
        return signature_of(sample.text, project=Project(roots=(sample.root,)), source=False).digest

    return {
        "frames-v1": frames,
        "frames-v1, no roots": no_roots,
        "depth=all (every frame)": every_frame,
        "source=off": no_source,
        "exact text (baseline)": lambda sample: exact_text_key(sample.text),
        "message (baseline)": lambda sample: message_key(sample.text),
    }


def score(samples: list[Sample], method: Method) -> BCubed:
    # The format is part of the key: texts of different formats never share a
    # cluster unless the method gives them the same key.
    return bcubed([s.fault for s in samples], [method(s) for s in samples])


def per_call_ns(action: Callable[[], object], calls: int, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        action()
        times.append((time.perf_counter_ns() - start) / calls)
    return statistics.median(times)


def timing(samples: list[Sample], repeat: int) -> None:
    print()
    print(f"Cost per failure (median of {repeat}; ns)")
    heading = f"{'signature_of':>14}{'parse only':>12}{'normalise msg':>15}{'chars':>8}"
    print(f"  {'format':<10}{heading}")
    for style in (*FORMATS, "all"):
        chosen = [s for s in samples if style in ("all", s.format)]
        texts = [s.text for s in chosen]
        projects = [Project(roots=(s.root,)) for s in chosen]
        messages = [message_key(t) for t in texts]

        def sign(texts: list[str] = texts, projects: list[Project] = projects) -> None:
            for text, project in zip(texts, projects, strict=True):
                signature_of(text, project=project)

        def parse(texts: list[str] = texts) -> None:
            for text in texts:
                parse_failure(text)

        def normalise(messages: list[str] = messages) -> None:
            for message in messages:
                normalise_message(message)

        chars = statistics.mean(len(t) for t in texts)
        print(
            f"  {style:<10}{per_call_ns(sign, len(texts), repeat):>14,.0f}"
            f"{per_call_ns(parse, len(texts), repeat):>12,.0f}"
            f"{per_call_ns(normalise, len(texts), repeat):>15,.0f}{chars:>8,.0f}"
        )


def report(samples: list[Sample], title: str) -> None:
    faults = len(set(FAULTS.values()))
    runs = len({(s.commit, s.run) for s in samples})
    print()
    print(
        f"B-cubed precision / recall, {title}: {len(samples)} failures ({runs} runs x "
        f"{len(FAULTS)} failing tests x {len(FORMATS)} formats), {faults} faults"
    )
    columns = (*FORMATS, "pooled")
    print(f"  {'method':<26}" + "".join(f"{c:>12}" for c in columns) + f"{'pooled F1':>11}")
    for name, method in methods().items():
        cells = []
        for style in columns:
            chosen = [s for s in samples if style in ("pooled", s.format)]
            result = score(chosen, method)
            cells.append(f"{result.precision:.3f}/{result.recall:.3f}")
        pooled = score(samples, method)
        print(f"  {name:<26}" + "".join(f"{c:>12}" for c in cells) + f"{pooled.f1:>11.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the generated projects")
    parser.add_argument(
        "--edits",
        action="store_true",
        help="also measure a corpus whose later commits rename, reflow and reword failing code",
    )
    parser.add_argument(
        "--store",
        action="store_true",
        help="instead: signatures in the store at scale (bench/triage_store.py)",
    )
    parser.add_argument("--history-runs", type=int, default=1000)
    parser.add_argument("--tests", type=int, default=10_000)
    parser.add_argument("--faults", type=int, default=60)
    parser.add_argument("--compare-runs", type=int, default=20)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument(
        "--rules-before",
        action="store_true",
        help="with --store: also apply a rule the way it was done before messages were stored",
    )
    parser.add_argument(
        "--measure",
        metavar="URL",
        help="with --store: only time the commands and a re-clustering on this repository",
    )
    args = parser.parse_args()
    if args.store:
        sys.path.insert(0, str(Path(__file__).parent))
        from triage_store import bench, measure

        if args.measure:
            from proctor.triage.signer import RecordSigner

            measure(
                args.measure,
                args.tests,
                args.repeat,
                RecordSigner(depth=None),
                runs=args.history_runs,
                rules_before=args.rules_before,
            )
            return
        for backend in args.backends.split(","):
            bench(
                backend,
                args.history_runs,
                args.tests,
                args.faults,
                args.repeat,
                min(args.compare_runs, args.history_runs),
                args.rules_before,
            )
        return
    where = Path(tempfile.mkdtemp(prefix="proctor-triage-bench-"))
    try:
        size = f"{args.commits} commits x {args.runs} runs"
        print(f"building the corpus in {where}: {size}", flush=True)
        start = time.perf_counter()
        samples = build_corpus(where, commits=args.commits, runs=args.runs, seed=args.seed)
        print(f"  {len(samples)} failures in {time.perf_counter() - start:.1f}s", flush=True)
        report(samples, "the corpus")
        if args.edits:
            print(f"building the corpus with edits: {size}", flush=True)
            edited = build_corpus(
                where, commits=args.commits, runs=args.runs, seed=args.seed, edits=True
            )
            report(edited, "with edits between commits (known splits, not the target)")
        timing(samples, args.repeat)
    finally:
        if args.keep:
            print(f"\nkept {where}")
        else:
            shutil.rmtree(where, ignore_errors=True)


if __name__ == "__main__":
    main()
