"""The watch loop: file changes and keys in, one narrowed run per cycle out.

:class:`WatchLoop` is driven by an inbox (a :class:`queue.Queue`) of
:class:`FileChanges`, :class:`Key` and :class:`Quit` items, fed by a file
watcher thread and a key reader (or by a test). Each cycle is handed to a
``run_cycle`` callable as a :class:`~proctor.runner.watch.plan.CyclePlan` and
returns a :class:`CycleResult`; the CLI's callable is a fresh ``proctor run``
of those tests (fresh worker processes), so no state survives from one cycle
to the next. Changes that arrive while a cycle runs wait in the inbox and are
merged into the next cycle.

The loop keeps the failing set of the session (seeded from the repository):
failed, crashed and timed-out tests join it, tests that pass or skip leave it,
and a failing test that its cycle should have run but did not report (its
file or the test was deleted or renamed) leaves it too.
"""

from __future__ import annotations

import queue
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO

from proctor.exitcode import ExitCode
from proctor.runner.watch.graph import CONFIG_FILES, ImportGraph
from proctor.runner.watch.plan import CyclePlan, WatchFilters, plan_cycle

__all__ = [
    "HELP",
    "CycleResult",
    "FileChanges",
    "Key",
    "Quit",
    "WatchLoop",
]

HELP = (
    "Watch: a run all, f failing only (toggle), p filter by file regex, "
    "t filter by test-id regex, Enter rerun, c clear filters, q quit, h help"
)

POLL = 0.1
"""How often :meth:`WatchLoop.serve` looks at :attr:`WatchLoop.stop_code` while idle."""

FAILED = frozenset({"fail", "uxsuccess", "crash", "timeout", "unfinished"})
CLEARED = frozenset({"success", "skip", "xfail"})


@dataclass(frozen=True, slots=True)
class FileChanges:
    paths: frozenset[Path]


@dataclass(frozen=True, slots=True)
class Key:
    key: str


@dataclass(frozen=True, slots=True)
class Quit:
    code: int = 0


InboxItem = FileChanges | Key | Quit


@dataclass(slots=True)
class CycleResult:
    """What a cycle gave: each reported id's outcome (``fail``, ``success``...),
    whether it ran to its end, and the one-line outcome the view printed."""

    outcomes: dict[str, str] = field(default_factory=dict)
    complete: bool = True
    interrupted: bool = False
    summary: str = ""


@dataclass
class WatchLoop:
    graph: ImportGraph
    run_cycle: Callable[[CyclePlan], CycleResult]
    out: TextIO
    failing: set[str] = field(default_factory=set)
    filters: WatchFilters = field(default_factory=WatchFilters)
    top_dirs: Sequence[Path] = ()
    prompt: Callable[[str], str | None] | None = None
    clock: Callable[[], float] = time.monotonic
    cycles: int = 0
    last_files: tuple[Path, ...] | None = None
    after_item: Callable[[], None] | None = None
    """Called after each inbox item is handled (the key reader re-arms)."""
    while_idle: Callable[[], None] | None = None
    """Called every :data:`POLL` seconds while no item comes (warm parents get ready)."""
    stop_code: int | None = None
    """Set (by a signal handler) to end :meth:`serve` with that exit status."""
    interrupted: bool = False
    """A cycle was interrupted (Ctrl-C): the session ends."""

    def say(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()

    # -- cycles ---------------------------------------------------------------

    def run_all(self, reason: str = "all tests") -> None:
        self.last_files = None
        self.cycle(reason, None)

    def cycle(self, reason: str, files: Iterable[Path] | None) -> CycleResult | None:
        if files is None and self.filters.file_regex is not None:
            files = self.graph.test_files  # every test file, for the file regex to choose from
        plan = plan_cycle(reason, files, self.failing, self.graph.root, self.filters, self.top_dirs)
        if plan.empty:
            self.say(f"[watch] {reason}: no tests to run. {self._waiting()}")
            return None
        self.cycles += 1
        started = self.clock()
        result = self.run_cycle(plan)
        self.interrupted = self.interrupted or result.interrupted
        self._absorb(plan, result)
        took = self.clock() - started
        what = "all tests" if plan.everything else f"{len(plan.files)} file(s)"
        if plan.failing and not plan.everything:
            what += f" + {len(plan.failing)} failing"
        self.say(
            f"[watch] cycle {self.cycles} ({reason}; {what}): {result.summary or 'done'} "
            f"[{took:.2f}s]; failing now: {len(self.failing)}. {self._waiting()}"
        )
        return result

    def _absorb(self, plan: CyclePlan, result: CycleResult) -> None:
        for test_id, outcome in result.outcomes.items():
            if outcome in FAILED:
                self.failing.add(test_id)
            elif outcome in CLEARED:
                self.failing.discard(test_id)
        if not result.complete or result.interrupted:
            return
        if plan.everything:
            gone = {i for i in self.failing if i not in result.outcomes}
        else:
            scope = [re.compile(p) for p in plan.scope]
            expected = set(plan.failing)
            gone = {
                i
                for i in self.failing
                if i not in result.outcomes and (i in expected or any(p.search(i) for p in scope))
            }
        self.failing -= gone

    def stopped(self) -> bool:
        """Whether a cycle was interrupted (Ctrl-C), which ends the session."""
        return self.interrupted

    def _waiting(self) -> str:
        mode = self.filters.describe()
        return f"Waiting ({mode}); h for help." if mode else "Waiting; h for help."

    # -- input ------------------------------------------------------------------

    def on_changes(self, paths: Iterable[Path]) -> None:
        paths = set(paths)
        if not paths:
            return
        names = sorted({p.name for p in paths})
        reason = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        reason = f"changed {reason}"
        if any(p.name in CONFIG_FILES for p in paths):
            self.graph.refresh()
            self.run_all(reason + ": configuration")
            return
        tests = self.graph.update(paths)
        self.last_files = tuple(sorted(tests))
        if not tests and not self.failing:
            self.say(f"[watch] {reason}: no test affected. {self._waiting()}")
            return
        self.cycle(reason, tests)

    def on_key(self, key: str) -> bool:
        """Act on a key; False to quit."""
        if key in ("q", "\x03", "\x04"):
            return False
        if key == "a":
            self.run_all()
        elif key == "f":
            self.filters = replace(self.filters, failing_only=not self.filters.failing_only)
            self.say(f"[watch] failing only: {'on' if self.filters.failing_only else 'off'}")
            self._rerun("failing only" if self.filters.failing_only else "rerun")
        elif key in ("p", "t"):
            self._ask_regex(key)
        elif key in ("\r", "\n"):
            self._rerun("rerun")
        elif key == "c":
            self.filters = WatchFilters(base=self.filters.base)
            self.say(f"[watch] filters cleared. {self._waiting()}")
        elif key in ("h", "w", "?"):
            self.say(HELP)
        return True

    def _rerun(self, reason: str) -> None:
        if self.last_files is None:
            self.cycle(reason, None)
        else:
            self.cycle(reason, self.last_files)

    def _ask_regex(self, key: str) -> None:
        if self.prompt is None:
            return
        what = "file" if key == "p" else "test-id"
        text = self.prompt(f"{what} regex (empty: none): ")
        if text is None:
            return
        text = text.strip()
        if text:
            try:
                re.compile(text)
            except re.error as error:
                self.say(f"[watch] not a valid regex: {text!r}: {error}; filter unchanged.")
                return
        value = text or None
        if key == "p":
            self.filters = replace(self.filters, file_regex=value)
        else:
            self.filters = replace(self.filters, test_regex=value)
        self.last_files = None
        self.run_all(f"filter {self.filters.describe() or 'cleared'}")

    def serve(self, inbox: queue.Queue[InboxItem]) -> int:
        """Handle the inbox until a quit; the exit code."""
        waiting = False
        while True:
            if self.stopped():
                return ExitCode.INTERRUPTED
            if self.stop_code is not None:
                return self.stop_code
            if self.after_item is not None and not waiting:
                self.after_item()
            try:
                # Polled, so that a signal (which sets stop_code) is seen promptly: a
                # KeyboardInterrupt can be swallowed by a finalizer that it lands in.
                item = inbox.get(timeout=POLL)
            except queue.Empty:
                waiting = True
                if self.while_idle is not None:
                    self.while_idle()
                continue
            waiting = False
            if isinstance(item, Quit):
                return item.code
            if isinstance(item, Key):
                if not self.on_key(item.key):
                    return ExitCode.OK
                continue
            paths = set(item.paths)
            # Everything that arrived meanwhile (during the last cycle) goes in this one.
            more = _drain(inbox)
            for other in more:
                if isinstance(other, FileChanges):
                    paths |= other.paths
            self.on_changes(paths)
            if self.stopped():
                return ExitCode.INTERRUPTED
            for other in more:
                if isinstance(other, Quit):
                    return other.code
                if isinstance(other, Key) and not self.on_key(other.key):
                    return ExitCode.OK


def _drain(inbox: queue.Queue[InboxItem]) -> list[InboxItem]:
    items = []
    while not inbox.empty():
        items.append(inbox.get_nowait())  # one consumer: what empty() saw is there
    return items
