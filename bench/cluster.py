"""``proctor run --cluster`` against the same run local (issue 14).

A Dask ``LocalCluster`` with two worker processes (one thread each) on this
machine; the projects are bench/run.py's: (a) 5,000 trivial unittest tests,
(b) the skewed sleep suite. Each command runs ``--repeat`` times, interleaved,
after two warm-up runs (history); the cluster is started once, outside the
timings (a real cluster is up before the run), and so is the warm Dask agent
(the first warm-up run starts it: the timed runs are the everyday case of a
second run). ``--no-agent`` also times ``--cluster`` with
``PROCTOR_CLUSTER_AGENT=0`` (each run connects to the cluster itself). Wall time
of the whole ``proctor run`` process.

Usage::

    nice python bench/cluster.py                   # both, full size
    nice python bench/cluster.py --only a --repeat 3
    nice python bench/cluster.py --only a --no-agent   # and without the warm agent
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import environment, make_skewed, make_trivial, proctor, timed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["a", "b"])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tests", type=int, default=5000)
    parser.add_argument("--total", type=float, default=20.0, help="seconds of skewed tests")
    parser.add_argument(
        "--no-agent", action="store_true", help="also time --cluster without the warm agent"
    )
    args = parser.parse_args(argv)
    from distributed import LocalCluster

    env = environment(bytecode=True)
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        address = str(cluster.scheduler_address)
        for name in ("a", "b"):
            if args.only not in (None, name):
                continue
            with tempfile.TemporaryDirectory(prefix=f"proctor-bench-cluster-{name}-") as scratch:
                root = Path(scratch)
                if name == "a":
                    make_trivial(root, args.tests, 50)
                    title = f"(a) {args.tests} trivial tests"
                else:
                    total, longest = make_skewed(root, args.total)
                    title = f"(b) skewed, {total:.1f}s of tests, longest {longest:.2f}s"
                commands = {
                    "proctor run -j 2": (proctor("-j", "2"), env),
                    "proctor run --cluster (2 workers)": (proctor("--cluster", address), env),
                }
                if args.no_agent:
                    commands["  the same, no agent"] = (
                        proctor("--cluster", address),
                        {**env, "PROCTOR_CLUSTER_AGENT": "0"},
                    )
                for command, command_env in commands.values():
                    timed(command, root, command_env)
                    timed(command, root, command_env)
                times: dict[str, list[float]] = {key: [] for key in commands}
                for _ in range(args.repeat):
                    for key, (command, command_env) in commands.items():
                        times[key].append(timed(command, root, command_env)[0])
                print(f"{title}, median of {args.repeat}:")
                local = statistics.median(times["proctor run -j 2"])
                for key, values in times.items():
                    median = statistics.median(values)
                    print(f"  {key:<36} {median:8.3f} s  {median / local:6.2f} x local")
    return 0


if __name__ == "__main__":
    sys.exit(main())
