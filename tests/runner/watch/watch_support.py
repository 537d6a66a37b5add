"""A real ``proctor watch`` process driven by file edits, and fresh ``proctor run``s to
compare it with. Every wait has a timeout: a stuck watch fails the test."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

__all__ = ["WatchProcess", "child_pids", "fresh_run", "is_zygote", "parse_outcome"]

_LINE = re.compile(r"^\{\d+\} (?P<id>.+) \[[^\]]*\] \.\.\. (?P<outcome>\S+)")
_CYCLE = re.compile(r"^\[watch\] cycle (?P<n>\d+) .*failing now: (?P<failing>\d+)\.")
_QUIET = re.compile(r"^\[watch\] .*(no test affected|no tests to run)")
TIMEOUT = 30.0


def parse_outcome(line: str) -> tuple[str, str] | None:
    match = _LINE.match(line)
    if match is None:
        return None
    word = match["outcome"]
    return match["id"], "ok" if word == "ok" else word.lower()


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
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


def is_zygote(pid: int) -> bool:
    """Whether ``pid`` is a watch session's warm parent."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return b"proctor.runner.worker.zygote" in cmdline.read()
    except OSError:
        return False


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTEST_ADDOPTS", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def fresh_run(root: Path, *args: str) -> dict[str, str]:
    """Outcomes of a fresh ``proctor run --no-store`` of ``root``."""
    done = subprocess.run(
        [sys.executable, "-m", "proctor", "run", "--no-store", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=_env(),
        check=False,
    )
    found = dict(filter(None, (parse_outcome(line) for line in done.stdout.splitlines())))
    assert found or done.returncode in (3, 5), done.stdout + done.stderr
    return found


class WatchProcess:
    """``proctor watch --no-store`` in a pipe (plain lines, no keys)."""

    def __init__(
        self, root: Path, *args: str, store: bool = False, env: dict[str, str] | None = None
    ) -> None:
        self.root = root
        storing = () if store else ("--no-store",)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "proctor", "watch", *storing, *args],
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**_env(), **(env or {})},
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.transcript: list[str] = []
        self.state: dict[str, str] = {}
        self.failing_now = -1
        self._pumping = threading.Thread(target=self._pump, daemon=True)
        self._pumping.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_cycle(self) -> dict[str, str]:
        """Read to the end of the next cycle (or a "nothing to run" line); that
        cycle's outcomes (also folded into :attr:`state`)."""
        deadline = time.monotonic() + TIMEOUT
        ran: dict[str, str] = {}
        while True:
            left = deadline - time.monotonic()
            assert left > 0, "no cycle ended:\n" + "\n".join(self.transcript[-40:])
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            assert line is not None, "watch ended:\n" + "\n".join(self.transcript[-40:])
            self.transcript.append(line)
            parsed = parse_outcome(line)
            if parsed is not None:
                ran[parsed[0]] = parsed[1]
            cycle = _CYCLE.match(line)
            if cycle is not None:
                self.failing_now = int(cycle["failing"])
                self.state.update(ran)
                return ran
            if _QUIET.match(line):
                return ran

    def stop(self) -> int:
        self.proc.terminate()
        try:
            code = self.proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:  # pragma: no cover - a stuck watch
            self.proc.kill()
            code = self.proc.wait()
        self._pumping.join(TIMEOUT)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return code
