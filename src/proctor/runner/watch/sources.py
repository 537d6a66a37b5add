"""What feeds the watch loop's inbox: file changes (watchfiles) and keys.

:class:`FileWatcher` runs :func:`watchfiles.watch` in a daemon thread over the
project root, keeping Python files and configuration files
(:data:`~proctor.runner.watch.graph.CONFIG_FILES`) outside ignored directories,
editors' temporary files and what git ignores (``.gitignore``, read once with
``git ls-files``), and posts each debounced batch as
:class:`~proctor.runner.watch.loop.FileChanges`.

:class:`KeyReader` reads single keys from a terminal between cycles only: while
a cycle runs the terminal is back in its normal mode and untouched, so a
debugger inside a test gets its lines (through ``proctor run``'s own stdin
routing). Without a terminal there is no key reader.
"""

from __future__ import annotations

import os
import queue
import select
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from proctor.runner.watch.graph import CONFIG_FILES, IGNORED_DIRS
from proctor.runner.watch.loop import FileChanges, InboxItem, Key

__all__ = ["DEBOUNCE_MS", "FileWatcher", "KeyReader", "git_ignored", "watch_filter"]

DEBOUNCE_MS = 15
"""Quiet time that ends a batch of file events (watchfiles' ``step``). watchfiles
yields a batch once a whole step passed without a new event, so a save is seen
one to two steps after it: 15-30 ms, the bound of Jest's watcher (which sends
what arrived every 30 ms). A save's events (write, rename, chmod) come within
microseconds of each other; a formatter that rewrites the file later gives a
second cycle, as in Jest."""


def git_ignored(root: Path) -> frozenset[Path]:
    """The files and directories git ignores under ``root`` (empty outside git)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--others", "--ignored", "--exclude-standard", "--directory"],
            cwd=root,
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    if listed.returncode != 0:
        return frozenset()
    names = listed.stdout.decode("utf-8", "surrogateescape").splitlines()
    return frozenset((root / name.rstrip("/")).resolve() for name in names if name)


def watch_filter(root: Path, ignored: frozenset[Path]) -> Callable[[Any, str], bool]:
    """The watchfiles filter: Python and configuration files outside ignored places."""
    root = root.resolve()

    def keep(change: Any, path: str) -> bool:
        name = os.path.basename(path)
        if name.startswith((".#", "~")) or name.endswith("~"):
            return False
        if not (name.endswith(".py") or name in CONFIG_FILES):
            return False
        candidate = Path(path)
        try:
            parts = candidate.relative_to(root).parts
        except ValueError:
            return False
        if any(p in IGNORED_DIRS or p.endswith(".egg-info") for p in parts[:-1]):
            return False
        if ignored:
            current = root
            for part in parts:
                current = current / part
                if current in ignored:
                    return False
        return True

    return keep


class FileWatcher:
    """Posts debounced batches of changed files under ``root`` to ``inbox``."""

    def __init__(self, root: Path, inbox: queue.Queue[InboxItem]) -> None:
        self.root = root.resolve()
        self._inbox = inbox
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True, name="proctor-watch")

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(5)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)

    def _watch(self) -> None:
        import watchfiles

        keep = watch_filter(self.root, git_ignored(self.root))
        self._ready.set()
        for changes in watchfiles.watch(
            self.root,
            watch_filter=keep,
            debounce=1600,
            step=DEBOUNCE_MS,
            stop_event=self._stop,
            raise_interrupt=False,
            yield_on_timeout=False,
        ):
            paths = frozenset(Path(path) for _, path in changes)
            if paths:
                self._inbox.put(FileChanges(paths))


class KeyReader:
    """Single keys from a terminal, read only while :meth:`armed` (between cycles)."""

    def __init__(self, inbox: queue.Queue[InboxItem], fd: int | None = None) -> None:
        self._inbox = inbox
        self._fd = sys.stdin.fileno() if fd is None else fd
        self._armed = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._stop = threading.Event()
        self._saved: Any = None
        self._thread = threading.Thread(target=self._read, daemon=True, name="proctor-keys")

    def start(self) -> None:
        self._thread.start()

    def arm(self) -> None:
        """Single keys, no echo (between cycles)."""
        import termios
        import tty

        if self._saved is None:
            self._saved = termios.tcgetattr(self._fd)
        # TCSANOW: the default (TCSAFLUSH) would drop a key typed just before.
        tty.setcbreak(self._fd, termios.TCSANOW)
        self._armed.set()

    def disarm(self) -> None:
        """The terminal as it was (a cycle runs: tests and debuggers read lines)."""
        import termios

        self._armed.clear()
        self._idle.wait(1)
        if self._saved is not None:
            termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)

    def stop(self) -> None:
        self._stop.set()
        self.disarm()

    def read_line(self, prompt: str, out: Any) -> str | None:
        """A line typed in the terminal's normal mode (for ``p`` and ``t``)."""
        self.disarm()
        out.write(prompt)
        out.flush()
        data = b""
        while not data.endswith(b"\n"):
            chunk = os.read(self._fd, 1024)
            if not chunk:
                return None
            data += chunk
        return data.decode("utf-8", "replace").rstrip("\r\n")

    def _read(self) -> None:
        while not self._stop.is_set():
            if not self._armed.wait(0.1):
                continue
            self._idle.clear()
            try:
                ready, _, _ = select.select([self._fd], [], [], 0.05)
                if ready and self._armed.is_set():
                    data = os.read(self._fd, 1)
                    if not data:
                        self._inbox.put(Key("\x04"))
                        return
                    self._armed.clear()  # one key per cycle: the loop re-arms after acting
                    self._inbox.put(Key(data.decode("latin-1")))
            except OSError:
                return
            finally:
                self._idle.set()
