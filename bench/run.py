"""Benchmarks of ``proctor run`` against its peers (issue 3).

(a) **Many trivial tests**: N unittest tests (default 5,000) in M modules (50),
    each test ``pass``. Wall time of ``proctor run`` against ``stestr run``,
    ``pytest -n <cores>`` (pytest-xdist) and ``python -m unittest discover``
    (serial, one process: the floor). Target: proctor at most 2x unittest.
(b) **Skewed durations**: sleep-based tests totalling T seconds (default 60):
    a few long tests (20% of the total in 3 tests) and many short ones, the long
    ones discovered last, so that a scheduler without history meets them at the
    end. Wall time of proctor, stestr and pytest-xdist against the bound,
    ``max(T / cores, longest test)``. Target: proctor within 10% of the bound.

(c) **Worker memory**: N unittest tests (default 3,000) in M modules, each
    keeping ``--state-kb`` (64) on ``self`` (fixtures, mocks, data: a real
    3,659-test OpenStack suite keeps about 70 KB a test). The peak resident
    size (``VmHWM``) of the biggest worker process of ``proctor run -j 2`` and
    of ``stestr run --concurrency 2``, printed side by side, with each
    controller's own peak. Read from ``/proc`` every 20 ms while the run goes
    (Linux). Target: proctor's workers no bigger than stestr's, and flat in N.

Each command runs ``--repeat`` times (median reported) in the same invocation,
interleaved, so every tool sees the same machine load; ratios are printed.
Proctor and stestr run twice before timing (``warm-up``): the first run of
each records durations, so the timed runs are the everyday case of a
repository with history. A first run without history is timed separately
("proctor (no history)", "stestr (no history)").

Bytecode caching: with ``PYTHONDONTWRITEBYTECODE`` set (as on our CI
machines), every worker process recompiles every test module on every run,
which penalises tools that start several processes. It is removed from the
environment of the benchmarked commands unless ``--no-bytecode`` is given.

Usage::

    nice python bench/run.py                    # both, full size
    nice python bench/run.py --only a --tests 1000 --modules 10 --repeat 3
    nice python bench/run.py --only b --total 12
    nice python bench/run.py --only c --tests 2000 --repeat 1
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def make_trivial(root: Path, tests: int, modules: int) -> None:
    """``tests`` passing unittest tests spread over ``modules`` modules."""
    package = root / "tests"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    per_module = -(-tests // modules)
    made = 0
    for module in range(modules):
        count = min(per_module, tests - made)
        if count <= 0:
            break
        lines = ["import unittest", "", "", f"class TestClass{module}(unittest.TestCase):"]
        lines += [f"    def test_{index:04d}(self):\n        pass\n" for index in range(count)]
        (package / f"test_mod_{module:03d}.py").write_text("\n".join(lines))
        made += count
    _configure(root)


def make_skewed(root: Path, total: float) -> tuple[float, float]:
    """Sleep tests totalling ``total`` s: 3 long ones (20% of the total), the rest short.

    The long tests live in the last module discovered. Returns (total, longest).
    """
    package = root / "tests"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    long_each = round(total * 0.2 / 3, 3)
    short_total = total - 3 * long_each
    short_count = 200
    short_each = round(short_total / short_count, 4)
    durations = [short_each] * short_count
    for module in range(10):
        lines = ["import time, unittest", "", "", f"class TestShort{module}(unittest.TestCase):"]
        for index in range(module, short_count, 10):
            # vary the short ones a little (0.5x to 1.5x), keeping the sum
            factor = 0.5 + (index % 11) / 10
            durations[index] = round(short_each * factor, 4)
            lines.append(
                f"    def test_{index:03d}(self):\n        time.sleep({durations[index]})\n"
            )
        (package / f"test_a{module:02d}.py").write_text("\n".join(lines))
    lines = ["import time, unittest", "", "", "class TestLong(unittest.TestCase):"]
    lines += [f"    def test_long_{i}(self):\n        time.sleep({long_each})\n" for i in range(3)]
    (package / "test_z_long.py").write_text("\n".join(lines))
    _configure(root)
    return sum(durations) + 3 * long_each, long_each


def _configure(root: Path) -> None:
    (root / ".stestr.conf").write_text("[DEFAULT]\ntest_path=./tests\ntop_dir=./\n")


def environment(bytecode: bool) -> dict[str, str]:
    env = dict(os.environ)
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTEST_ADDOPTS", None)
    return env


def timed(argv: Sequence[str], root: Path, env: dict[str, str]) -> tuple[float, int]:
    start = time.perf_counter()
    done = subprocess.run(
        list(argv),
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.stderr.write(f"  ! {' '.join(argv)} exited {done.returncode}: {done.stderr[-400:]!r}\n")
    return elapsed, done.returncode


def proctor(*args: str) -> list[str]:
    return [PYTHON, "-m", "proctor", "run", *args]


def reset(root: Path) -> None:
    for name in (".proctor", ".stestr", ".pytest_cache"):
        shutil.rmtree(root / name, ignore_errors=True)


def stestr_init(root: Path, env: dict[str, str]) -> None:
    if not (root / ".stestr").exists():
        subprocess.run(
            [PYTHON, "-m", "stestr", "init"], cwd=root, env=env, capture_output=True, check=False
        )


def measure(
    commands: dict[str, list[str]],
    root: Path,
    env: dict[str, str],
    repeat: int,
    *,
    fresh: dict[str, list[str]],
) -> dict[str, float]:
    """Median wall time per command, rounds interleaved.

    ``commands`` run in ``root``, whose proctor and stestr histories are warmed
    once first (two runs each); ``fresh`` ones run in a copy of the project
    whose histories are emptied before every run.
    """
    blank = root.parent / (root.name + "-fresh")
    shutil.copytree(root, blank, ignore=shutil.ignore_patterns(".proctor", ".stestr"))
    stestr_init(root, env)
    for argv in (
        proctor(),
        proctor(),
        [PYTHON, "-m", "stestr", "run"],
        [PYTHON, "-m", "stestr", "run"],
    ):
        timed(argv, root, env)
    times: dict[str, list[float]] = {name: [] for name in [*fresh, *commands]}
    for round_ in range(repeat):
        for name, argv in fresh.items():
            reset(blank)
            stestr_init(blank, env)
            elapsed, _ = timed(argv, blank, env)
            times[name].append(elapsed)
        for name, argv in commands.items():
            elapsed, _ = timed(argv, root, env)
            times[name].append(elapsed)
        summary = ", ".join(f"{name} {values[-1]:.2f}s" for name, values in times.items())
        print(f"  round {round_ + 1}/{repeat}: {summary}", flush=True)
    shutil.rmtree(blank, ignore_errors=True)
    return {name: statistics.median(values) for name, values in times.items()}


def report(title: str, medians: dict[str, float], reference: str, reference_value: float) -> None:
    print(f"\n{title}")
    print(f"  {'command':<34} {'median s':>9} {'x ' + reference:>16}")
    for name, value in medians.items():
        print(f"  {name:<34} {value:9.3f} {value / reference_value:16.2f}")


def bench_trivial(args: argparse.Namespace, env: dict[str, str]) -> None:
    n = cores()
    with tempfile.TemporaryDirectory(prefix="proctor-bench-a-") as scratch:
        root = Path(scratch)
        make_trivial(root, args.tests, args.modules)
        # populate __pycache__ (when allowed) and make sure everything works
        timed([PYTHON, "-m", "unittest", "discover", "-q"], root, env)
        commands = {
            "python -m unittest discover": [PYTHON, "-m", "unittest", "discover", "-q"],
            "proctor run": proctor(),
            "proctor run --subunit": proctor("--subunit"),
            "stestr run": [PYTHON, "-m", "stestr", "run"],
            f"pytest -n {n}": [
                PYTHON,
                "-m",
                "pytest",
                "-q",
                "-n",
                str(n),
                "-p",
                "no:cacheprovider",
            ],
        }
        fresh = {"proctor run (no history)": proctor()}
        print(
            f"(a) {args.tests} trivial tests in {args.modules} modules, {n} cores, "
            f"median of {args.repeat}"
        )
        medians = measure(commands, root, env, args.repeat, fresh=fresh)
        base = medians["python -m unittest discover"]
        report("(a) results", medians, "unittest", base)
        ratio = medians["proctor run"] / base
        print(f"  target: proctor run <= 2.00 x unittest; measured {ratio:.2f} x")


def bench_skewed(args: argparse.Namespace, env: dict[str, str]) -> None:
    n = cores()
    with tempfile.TemporaryDirectory(prefix="proctor-bench-b-") as scratch:
        root = Path(scratch)
        total, longest = make_skewed(root, args.total)
        bound = max(total / n, longest)
        commands = {
            "proctor run": proctor(),
            "stestr run": [PYTHON, "-m", "stestr", "run"],
            f"pytest -n {n}": [
                PYTHON,
                "-m",
                "pytest",
                "-q",
                "-n",
                str(n),
                "-p",
                "no:cacheprovider",
            ],
            f"pytest -n {n} --dist worksteal": [
                PYTHON,
                "-m",
                "pytest",
                "-q",
                "-n",
                str(n),
                "--dist",
                "worksteal",
                "-p",
                "no:cacheprovider",
            ],
        }
        fresh = {
            "proctor run (no history)": proctor(),
            "stestr run (no history)": [PYTHON, "-m", "stestr", "run"],
        }
        print(
            f"(b) skewed: {total:.1f}s of test time, longest {longest:.2f}s, {n} cores; "
            f"bound max(total/cores, longest) = {bound:.2f}s; median of {args.repeat}"
        )
        medians = measure(commands, root, env, args.repeat, fresh=fresh)
        report("(b) results", medians, "bound", bound)
        ratio = medians["proctor run"] / bound
        print(f"  target: proctor run <= 1.10 x bound; measured {ratio:.3f} x")


def make_heavy(root: Path, tests: int, modules: int, state_kb: int) -> None:
    """``tests`` passing tests over ``modules`` modules, each keeping ``state_kb`` on self."""
    package = root / "tests"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    per_module = -(-tests // modules)
    made = 0
    for module in range(modules):
        count = min(per_module, tests - made)
        if count <= 0:
            break
        lines = [
            "import unittest",
            "",
            f"SIZE = {state_kb * 1024}",
            "",
            "",
            f"class TestHeavy{module}(unittest.TestCase):",
            "    def setUp(self):",
            "        self.state = bytes([len(self.id()) % 251]) * SIZE",
            "",
        ]
        lines += [f"    def test_{index:04d}(self):\n        pass\n" for index in range(count)]
        (package / f"test_heavy_{module:03d}.py").write_text("\n".join(lines))
        made += count
    _configure(root)


def _peak_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (``/proc/PID/task/TID/children``). Kept here rather
    than imported from Proctor, so that the benchmark can measure any version of it."""
    found: list[int] = []
    queue = [pid]
    while queue:
        parent = queue.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children", "rb") as listing:
                    kids = [int(child) for child in listing.read().split()]
            except (OSError, ValueError):
                continue
            found.extend(kids)
            queue.extend(kids)
    return found


def _is_python(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return b"python" in cmdline.read().split(b"\0", 1)[0]
    except OSError:
        return False


def peak_memory(argv: Sequence[str], root: Path, env: dict[str, str]) -> tuple[int, int, float]:
    """Run ``argv``; (peak KiB of its biggest worker, of the controller itself, seconds).

    The workers are the Python processes below the controller (stestr starts
    its workers through a shell); each one's peak (``VmHWM``) is read from
    ``/proc`` every 20 ms while it lives, so its last reading is within 20 ms
    of its end.
    """
    start = time.perf_counter()
    process = subprocess.Popen(
        list(argv), cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    controller = 0
    workers: dict[int, int] = {}
    pythons: dict[int, bool] = {}
    while process.poll() is None:
        controller = max(controller, _peak_kib(process.pid) or 0)
        for pid in descendants(process.pid):
            if pythons.setdefault(pid, _is_python(pid)):
                workers[pid] = max(workers.get(pid, 0), _peak_kib(pid) or 0)
        time.sleep(0.02)
    elapsed = time.perf_counter() - start
    assert process.stderr is not None
    errors = process.stderr.read()
    process.stderr.close()
    if process.returncode != 0:
        sys.stderr.write(f"  ! {' '.join(argv)} exited {process.returncode}: {errors[-400:]!r}\n")
    return max(workers.values(), default=0), controller, elapsed


def bench_memory(args: argparse.Namespace, env: dict[str, str]) -> None:
    if not sys.platform.startswith("linux"):
        print("(c) skipped: reads /proc (Linux)")
        return
    with tempfile.TemporaryDirectory(prefix="proctor-bench-c-") as scratch:
        root = Path(scratch)
        make_heavy(root, args.tests, args.modules, args.state_kb)
        timed([PYTHON, "-m", "unittest", "discover", "-q"], root, env)  # warm __pycache__
        stestr_init(root, env)
        commands = {
            "proctor run -j 2": proctor("-j", "2"),
            "stestr run --concurrency 2": [PYTHON, "-m", "stestr", "run", "--concurrency", "2"],
        }
        print(
            f"(c) {args.tests} tests in {args.modules} modules, each keeping "
            f"{args.state_kb} KB on self; median of {args.repeat}"
        )
        for argv in commands.values():  # history, as in (a)
            timed(argv, root, env)
        samples: dict[str, list[tuple[int, int, float]]] = {name: [] for name in commands}
        for round_ in range(args.repeat):
            for name, argv in commands.items():
                samples[name].append(peak_memory(argv, root, env))
            summary = ", ".join(
                f"{name} worker {values[-1][0] / 1024:.0f} MB" for name, values in samples.items()
            )
            print(f"  round {round_ + 1}/{args.repeat}: {summary}", flush=True)
        print("\n(c) results")
        print(f"  {'command':<34} {'worker peak MB':>15} {'controller MB':>14} {'median s':>9}")
        medians: dict[str, float] = {}
        for name, values in samples.items():
            worker = statistics.median(v[0] for v in values) / 1024
            controller = statistics.median(v[1] for v in values) / 1024
            seconds = statistics.median(v[2] for v in values)
            medians[name] = worker
            print(f"  {name:<34} {worker:15.1f} {controller:14.1f} {seconds:9.3f}")
        ratio = medians["proctor run -j 2"] / max(medians["stestr run --concurrency 2"], 1e-9)
        print(f"  target: proctor's workers <= stestr's; measured {ratio:.2f} x")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=("a", "b", "c"), help="run one benchmark")
    parser.add_argument("--tests", type=int, help="(a): 5,000, (c): 3,000")
    parser.add_argument("--modules", type=int, default=50)
    parser.add_argument("--total", type=float, default=60.0, help="(b): seconds of test time")
    parser.add_argument("--state-kb", type=int, default=64, help="(c): kept by each test")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-bytecode", action="store_true", help="keep PYTHONDONTWRITEBYTECODE")
    args = parser.parse_args(argv)
    env = environment(bytecode=not args.no_bytecode)
    tests = args.tests
    if args.only in (None, "a"):
        args.tests = 5000 if tests is None else tests
        bench_trivial(args, env)
    if args.only in (None, "b"):
        bench_skewed(args, env)
    if args.only in (None, "c"):
        args.tests = 3000 if tests is None else tests
        bench_memory(args, env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
