"""Save-to-last-result of ``proctor watch`` against its peers, and a leak check.

    python bench/watch.py [--only a|b] [--repeat N]
    python bench/watch.py --leak 500 [--only a|b]

For each project, one edit that affects one test module (a module-level
constant in that test module toggled), repeated; for each tool, the time from
the file write to the line that ends the results on stdout: the summary line
(``N passed, N failed, ...``) for ``proctor watch``, pytest's
``N passed`` for pytest-watcher (``ptw --delay 0``, which re-runs pytest on
the whole suite: started right after the write, as ``ptw --delay 0`` would,
since ptw's watchdog observer did not fire in our sandbox), and the process's
end for ``pytest --testmon`` (started after the write, after a warm-up run
that built its database), and, on (a), ``stestr run --failing`` (after a
whole first run; the edit makes nothing fail, so it re-runs an empty set:
its floor, not a check of the edit). Every tool has
its own copy of the project and stays up meanwhile; rounds are interleaved.
Medians, and each tool's ratio to Proctor.

(a) the 5,000-test generated unittest suite of bench/run.py (50 modules);
(b) a pytest project of 10 modules x 20 tests that import a dependency costing
0.5 s to import (``heavydep``, outside the project, on PYTHONPATH) and use a
session fixture costing 0.2 s.

``--leak N``: N edit cycles of ``proctor watch`` on a small project (a 200-test
unittest project; ``--only b``: the project of (b), whose cycles fork from a
warm pytest session); after each cycle, the watch process's resident memory,
its child processes (the warm parents), their children (session zygotes; a
worker left over would show here) and the resident memory of the warm parents
and session zygotes (summed: pages they share are counted in each).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import queue
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import environment, make_trivial

PYTHON = sys.executable
BIN = Path(PYTHON).parent
WAIT = 60.0
SUMMARY = r"^\d+ passed, \d+ failed"
"""The run's summary line, which ends a cycle's results (the ``[watch]`` line follows)."""


class Watcher:
    """A long-running tool whose stdout says when a cycle ended."""

    def __init__(self, argv: Sequence[str], root: Path, env: dict[str, str], end: str) -> None:
        self.end = re.compile(end)
        self.proc = subprocess.Popen(
            argv,
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[tuple[float, str]] = queue.Queue()
        self.argv = list(argv)
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put((time.perf_counter(), line))

    def drain(self) -> None:
        while not self.lines.empty():
            self.lines.get_nowait()

    def wait_end(self) -> float:
        deadline = time.monotonic() + WAIT
        while True:
            try:
                stamp, line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                tail = "".join(self.seen[-20:])
                raise SystemExit(f"{self.argv[:2]}: no cycle end; last output:\n{tail}") from None
            self.seen.append(line)
            if self.end.search(line):
                return stamp

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def toggle(path: Path) -> None:
    text = path.read_text()
    if "EDITED = 0" in text:
        text = text.replace("EDITED = 0", "EDITED = 1")
    elif "EDITED = 1" in text:
        text = text.replace("EDITED = 1", "EDITED = 0")
    else:
        text += "\nEDITED = 0\n"
    path.write_text(text)


def make_heavy(root: Path, site: Path) -> None:
    package = site / "heavydep"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("import time\n\ntime.sleep(0.5)  # 0.5 s of imports\n")
    tests = root / "tests"
    tests.mkdir(parents=True)
    (tests / "__init__.py").write_text("")
    (tests / "conftest.py").write_text(
        "import time\n\nimport pytest\n\n\n@pytest.fixture(scope='session')\n"
        "def expensive():\n    time.sleep(0.2)  # 0.2 s per session\n    return 1\n"
    )
    for module in range(10):
        lines = ["import heavydep", "", ""]
        lines += [f"def test_{i:02d}(expensive):\n    assert expensive == 1\n" for i in range(20)]
        (tests / f"test_mod_{module}.py").write_text("\n".join(lines))
    (root / "pyproject.toml").write_text('[tool.proctor]\nframework = "pytest"\n')
    (root / "pytest.ini").write_text("[pytest]\n")


Tool = tuple[str, Callable[[Path, dict[str, str]], Watcher | None], list[str] | None]


def project_tools(kind: str) -> list[Tool]:
    proctor: Tool = (
        "proctor watch",
        lambda root, env: Watcher(
            [str(BIN / "proctor"), "watch", "--no-store"], root, env, SUMMARY
        ),
        None,
    )
    ptw: Tool = (
        # What pytest-watcher runs on a save (``ptw --delay 0``): a new pytest process
        # on the whole suite. ptw's own watchdog observer never fired in our sandbox,
        # so the process is started right after the write (ptw's best case).
        "pytest (as pytest-watcher runs it)",
        lambda root, env: None,
        [PYTHON, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:testmon"],
    )
    testmon: Tool = (
        "pytest --testmon",
        lambda root, env: None,
        [PYTHON, "-m", "pytest", "--testmon", "-q", "-p", "no:randomly"],
    )
    if kind != "a":
        return [proctor, ptw, testmon]
    stestr: Tool = (
        # The unittest project only. ``stestr run --failing`` re-runs the failing set of
        # its last run, whatever changed: here that set is empty, so this row is its
        # floor (start, read the repository, run nothing), not a check of the edit.
        "stestr run --failing",
        lambda root, env: None,
        [str(BIN / "stestr"), "run", "--failing"],
    )
    return [proctor, ptw, testmon, stestr]


def run_project(kind: str, repeat: int) -> None:
    base = Path(tempfile.mkdtemp(prefix=f"proctor-bench-watch-{kind}-"))
    try:
        site = base / "site"
        env = environment(bytecode=True)
        if kind == "b":
            env["PYTHONPATH"] = str(site) + os.pathsep + env.get("PYTHONPATH", "")
        tools = project_tools(kind)
        roots: dict[str, Path] = {}
        watchers: dict[str, Watcher | None] = {}
        for index, (name, start, command) in enumerate(tools):
            root = base / f"p{index}"
            if kind == "a":
                make_trivial(root, 5000, 50)
            else:
                make_heavy(root, site)
            subprocess.run(["git", "init", "-q", str(root)], check=True)
            roots[name] = root
            watcher = start(root, env)
            if watcher is not None:
                watcher.wait_end()  # the first run
            elif command is not None:
                first = [c for c in command if c != "--failing"]  # stestr: a whole first run
                subprocess.run(first, cwd=root, env=env, capture_output=True, check=False)
            watchers[name] = watcher
        time.sleep(1.0)  # the watchers are watching
        target = "tests/test_mod_007.py" if kind == "a" else "tests/test_mod_3.py"
        times: dict[str, list[float]] = {name: [] for name, _, _ in tools}
        for _ in range(repeat):
            for name, _, command in tools:
                root = roots[name]
                watcher = watchers[name]
                if watcher is not None:
                    watcher.drain()
                    began = time.perf_counter()
                    toggle(root / target)
                    times[name].append(watcher.wait_end() - began)
                else:
                    assert command is not None
                    began = time.perf_counter()
                    toggle(root / target)
                    subprocess.run(command, cwd=root, env=env, capture_output=True, check=False)
                    times[name].append(time.perf_counter() - began)
                time.sleep(0.3)  # let the tool settle before the next tool's edit
        for watcher in watchers.values():
            if watcher is not None:
                watcher.stop()
        title = {
            "a": "(a) 5,000 generated unittest tests, 50 modules",
            "b": "(b) heavy dependency (0.5 s imports), 0.2 s session fixture, 200 pytest tests",
        }[kind]
        print(f"\n{title}; one test module edited; median of {repeat}")
        print("| tool | median save-to-last-result s | x proctor |")
        print("|---|---|---|")
        ours = statistics.median(times["proctor watch"])
        for name, values in times.items():
            median = statistics.median(values)
            print(f"| {name} | {median:.3f} | {median / ours:.2f} |")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def child_list(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def leak(cycles: int, kind: str) -> None:
    base = Path(tempfile.mkdtemp(prefix="proctor-bench-watch-leak-"))
    try:
        root = base / "p"
        env = environment(bytecode=True)
        if kind == "b":
            make_heavy(root, base / "site")
            env["PYTHONPATH"] = str(base / "site") + os.pathsep + env.get("PYTHONPATH", "")
            target = "tests/test_mod_3.py"
        else:
            make_trivial(root, 200, 4)
            target = "tests/test_mod_001.py"
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        watcher = Watcher(
            [str(BIN / "proctor"), "watch", "--no-store"], root, env, r"^\[watch\] cycle"
        )
        watcher.wait_end()
        time.sleep(2.0)
        samples: list[tuple[int, int, int, int]] = []
        for _ in range(cycles):
            watcher.drain()
            toggle(root / target)
            watcher.wait_end()
            parents = child_list(watcher.proc.pid)
            grandchildren = [g for p in parents for g in child_list(p)]
            warm = 0
            for pid in [*parents, *grandchildren]:
                with contextlib.suppress(OSError):
                    warm += rss_kb(pid)
            samples.append((rss_kb(watcher.proc.pid), len(parents), len(grandchildren), warm))
            time.sleep(0.05)
        watcher.stop()
        rss = [s[0] for s in samples]
        kids = [s[1] for s in samples]
        grand = [s[2] for s in samples]
        warm_rss = [s[3] for s in samples]
        print(f"\n--leak {cycles} ({kind}): after each cycle")
        marks = sorted({0, 9, 49, 99, 199, 299, 399, len(rss) - 1} & set(range(len(rss))))
        print("watch RSS KB after cycle: " + ", ".join(f"{i + 1}: {rss[i]}" for i in marks))
        print(f"watch RSS KB highest {max(rss)}")
        print(f"warm parents: first {kids[0]}, last {kids[-1]}, highest {max(kids)}")
        print(f"their children: first {grand[0]}, last {grand[-1]}, highest {max(grand)}")
        print(
            "warm parents' RSS KB (summed) after cycle: "
            + ", ".join(f"{i + 1}: {warm_rss[i]}" for i in marks)
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("a", "b"))
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--leak", type=int, metavar="N")
    options = parser.parse_args()
    if options.leak:
        leak(options.leak, options.only or "a")
        return
    for kind in ("a", "b"):
        if options.only in (None, kind):
            run_project(kind, options.repeat)


if __name__ == "__main__":
    main()
