"""``proctor run --queue BUILD``: four CI jobs sharing one PostgreSQL queue, against
one local run of the same suite (issue 14).

The suite is bench/run.py's skewed sleep suite (``--total`` seconds, three long
tests of 20% of it discovered last). Four jobs (``--jobs``), each ``proctor run
-j W --queue BUILD`` as its own process, start together against one repository
in a fresh PostgreSQL schema; the build's wall time is from their start to the
last one's exit. The local run is ``proctor run -j (jobs x W)`` on the same
repository. Both are measured against the bound ``max(total / workers, longest
test)``; two warm-up runs first give both a history (the queue is filled
longest first from it). Each measurement is repeated ``--repeat`` times,
interleaved, and the medians are printed, with the CPU seconds each took (its
processes' user and system time: the four jobs' controllers, and what they
start, share the machine's cores as they start, where on CI each job has its own).

Usage::

    nice python bench/fleet.py                        # 60 s suite, 4 jobs x 1 worker
    python bench/fleet.py --total 20 --repeat 3
    PROCTOR_BENCH_POSTGRES=postgresql://... python bench/fleet.py
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import environment, make_skewed, proctor, timed

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def build_time(root: Path, env: dict[str, str], jobs: int, workers: int, build: str) -> float:
    """Wall time of ``jobs`` jobs of one build, started together."""
    start = time.perf_counter()
    running = [
        subprocess.Popen(
            proctor("-j", str(workers), "--queue", build),
            cwd=root,
            env={**env, "PROCTOR_JOB": f"job{n}"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for n in range(jobs)
    ]
    for job in running:
        _, err = job.communicate()
        if os.environ.get("PROCTOR_BENCH_VERBOSE"):
            sys.stderr.write(err.decode(errors="replace"))
        if job.returncode != 0:
            sys.stderr.write(f"  ! a job exited {job.returncode}: {err[-400:]!r}\n")
    return time.perf_counter() - start


def _children_cpu() -> float:
    """CPU seconds of the ended child processes so far (with their own children)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--total", type=float, default=60.0, help="seconds of skewed tests")
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1, help="workers per job")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    import psycopg

    base = os.environ.get("PROCTOR_BENCH_POSTGRES", DEFAULT_POSTGRES)
    schema = f"proctor_bench_queue_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(base, autocommit=True)
    admin.execute(f'CREATE SCHEMA "{schema}"')
    url = f"{base}{'&' if '?' in base else '?'}options={quote(f'-csearch_path={schema}', safe='')}"
    env = environment(bytecode=True)
    total_workers = args.jobs * args.workers
    try:
        with tempfile.TemporaryDirectory(prefix="proctor-bench-queue-") as scratch:
            root = Path(scratch)
            total, longest = make_skewed(root, args.total)
            (root / "pyproject.toml").write_text(f"[tool.proctor]\nrepository = {url!r}\n")
            for command in (["git", "init", "-q"], ["git", "add", "-A"]):
                subprocess.run(command, cwd=root, check=True)
            subprocess.run(
                [
                    "git",
                    "-c",
                    "user.email=b@example.org",
                    "-c",
                    "user.name=b",
                    "commit",
                    "-qm",
                    "b",
                ],
                cwd=root,
                check=True,
            )
            local = proctor("-j", str(total_workers))
            for _ in range(2):  # history for both: the queue is filled from it
                timed(local, root, env)
            times: dict[str, list[float]] = {"local": [], "queue": []}
            cpu: dict[str, list[float]] = {"local": [], "queue": []}
            for round_ in range(args.repeat):
                before = _children_cpu()
                times["local"].append(timed(local, root, env)[0])
                middle = _children_cpu()
                times["queue"].append(
                    build_time(root, env, args.jobs, args.workers, f"bench-{round_}")
                )
                cpu["local"].append(middle - before)
                cpu["queue"].append(_children_cpu() - middle)
            bound = max(total / total_workers, longest)
            print(
                f"skewed suite, {total:.1f}s of tests, longest {longest:.2f}s; "
                f"{total_workers} workers in all; bound {bound:.2f}s; median of {args.repeat}:"
            )
            labels = {
                "local": f"proctor run -j {total_workers}",
                "queue": f"{args.jobs} jobs x -j {args.workers} --queue",
            }
            local_median = statistics.median(times["local"])
            for key, values in times.items():
                median = statistics.median(values)
                print(
                    f"  {labels[key]:<32} {median:8.3f} s  {median / bound:6.3f} x bound  "
                    f"{median / local_median:6.3f} x local  "
                    f"(CPU {statistics.median(cpu[key]):.2f} s)"
                )
    finally:
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
