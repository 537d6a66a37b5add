"""What a warm pytest session's set-up read, and what it did outside the process.

A session zygote (:mod:`proctor.runner.worker.warm_session`) keeps the state a
pytest session start builds (configuration, conftest modules, session fixtures)
for its children, each of which gets a pristine copy by ``fork``. That is only
the state a fresh run would build if (1) nothing it was built from changed,
and (2) it lives in the process's memory: a fixture that started a server,
opened a connection or a file, or wrote a temporary directory leaves state
outside the process, which the children would share and change for each
other. An :class:`EffectWatch` (a :func:`sys.addaudithook` hook, on only while
the zygote sets its session up) records:

* every file opened for reading, with its ``stat`` at that moment (a module's
  source for a cached ``.pyc``), so that the zygote refuses to fork once one
  changed; and, while a fixture is being set up, the directories it listed;
* anything done outside the process: a file or directory written, created,
  renamed or removed (not in a ``__pycache__``, not ``/dev/null``, not an
  anonymous ``O_TMPFILE``), a socket connected, bound or sent to, a process
  started or signalled, an SQLite database or a file mapping opened, a URL
  fetched. :func:`outside_state` adds what the audit events cannot show: new
  descriptors (other than ``/dev/null``), child processes and threads.

C code that does I/O without an audit event is seen only through what it
leaves open (descriptors, processes, threads); a fixture that writes a file
and closes it from C is not seen. docs/watch.md lists these limits.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable

__all__ = ["EffectWatch", "outside_state", "source_of"]

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_TMPFILE = getattr(os, "O_TMPFILE", 0)
_PATH_EVENTS = {
    "os.mkdir": 1,
    "os.rmdir": 1,
    "os.remove": 1,
    "os.rename": 2,
    "os.truncate": 1,
    "os.symlink": 2,
    "os.link": 2,
    "os.chmod": 1,
    "os.chown": 1,
    "os.utime": 1,
    "os.chflags": 1,
    "os.lchflags": 1,
    "os.lchmod": 1,
    "shutil.copyfile": 2,
    "shutil.copymode": 2,
    "shutil.copystat": 2,
    "shutil.copytree": 2,
    "shutil.rmtree": 1,
    "shutil.move": 2,
    "shutil.chown": 1,
    "shutil.make_archive": 1,
    "shutil.unpack_archive": 2,
}
"""Events that change the file system, and how many of their first arguments are paths."""
_OUTSIDE_EVENTS = frozenset(
    {
        "socket.connect",
        "socket.bind",
        "socket.sendto",
        "socket.sendmsg",
        "subprocess.Popen",
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "os.forkpty",
        "os.kill",
        "os.killpg",
        "pty.spawn",
        "tempfile.mkstemp",
        "tempfile.mkdtemp",
        "urllib.Request",
        "http.client.connect",
        "ftplib.connect",
        "smtplib.connect",
        "poplib.connect",
        "imaplib.open",
        "nntplib.connect",
        "telnetlib.Telnet.open",
        "webbrowser.open",
    }
)
_LIST_EVENTS = frozenset({"os.listdir", "os.scandir", "glob.glob"})
_QUIET_ROOTS = ("/proc/", "/sys/", "/dev/")


def source_of(path: str) -> str:
    """The source file of a cached module (``__pycache__/name.TAG.pyc``, pytest's
    rewritten ones too); ``path`` itself otherwise."""
    directory, name = os.path.split(path)
    if os.path.basename(directory) != "__pycache__" or not name.endswith((".pyc", ".pyo")):
        return path
    return os.path.join(os.path.dirname(directory), name.partition(".")[0] + ".py")


def _text(path: object) -> str | None:
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    elif isinstance(path, os.PathLike):
        path = os.fspath(path)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
    if not isinstance(path, str):
        return None  # a descriptor
    return os.path.abspath(path)


class EffectWatch:
    """An audit hook that records reads and outside effects while :attr:`on`."""

    def __init__(self, allowed: Iterable[str] = ()) -> None:
        self.on = False
        self.listing = False
        """Also record the directories listed (while a fixture is set up; pytest's
        own collection lists every test directory, which its children list anew)."""
        self.allowed = tuple(os.path.join(os.path.abspath(p), "") for p in allowed)
        self.reads: dict[str, tuple[int, int] | None] = {}
        """Each file read (its source, for a ``.pyc``): (mtime_ns, size) when first
        opened, None if it did not exist."""
        self.listed: dict[str, int | None] = {}
        """Each directory listed: its mtime_ns when first listed."""
        self.effects: list[str] = []
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args: tuple[object, ...]) -> None:
        if not self.on:
            return
        try:
            self._see(event, args)
        except Exception as error:  # never in the audited call's way
            self.effects.append(f"{event}: not understood ({error})")

    def _see(self, event: str, args: tuple[object, ...]) -> None:
        if event == "open":
            self._open(args)
        elif event in _PATH_EVENTS:
            for path in args[: _PATH_EVENTS[event]]:
                text = _text(path)
                if text is None or not self._harmless(text):
                    self.effects.append(f"{event} {text if text is not None else repr(path)}")
                    return
        elif event in _OUTSIDE_EVENTS:
            self.effects.append(f"{event} {_short(args)}")
        elif event == "sqlite3.connect":
            if args and args[0] not in (":memory:", "", b":memory:", b""):
                self.effects.append(f"sqlite3.connect {args[0]!r}")
        elif event == "mmap.__new__":
            if args and args[0] != -1:
                self.effects.append("mmap of a file")
        elif event in _LIST_EVENTS and self.listing:
            text = _text(args[0]) if args else None
            if text is not None and text not in self.listed:
                try:
                    self.listed[text] = os.stat(text).st_mtime_ns
                except OSError:
                    self.listed[text] = None

    def _open(self, args: tuple[object, ...]) -> None:
        path = _text(args[0]) if args else None
        mode = args[1] if len(args) > 1 else None
        flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
        if path is None:
            return  # an open descriptor: what it is was judged when it was opened
        writes = (
            any(c in mode for c in "wax+") if isinstance(mode, str) else bool(flags & _WRITE_FLAGS)
        )
        if writes:
            anonymous = _TMPFILE and (flags & _TMPFILE) == _TMPFILE
            if not anonymous and os.path.isdir(path):
                return  # io.open(directory, opener=...): the opener's os.open is judged
            if not anonymous and not self._harmless(path):
                self.effects.append(f"open {path} for writing")
            return
        if path.startswith(_QUIET_ROOTS) or path == os.devnull or path.startswith(self.allowed):
            return  # (the session's own directories: its children write there)
        path = source_of(path)
        if path not in self.reads:
            try:
                info = os.stat(path)
                self.reads[path] = (info.st_mtime_ns, info.st_size)
            except OSError:
                self.reads[path] = None

    def _harmless(self, path: str) -> bool:
        """A write that leaves nothing a test could see: a cached module, /dev/null,
        a directory of the session's own (pytest's cache)."""
        if path == os.devnull:
            return True
        if f"{os.sep}__pycache__" in path:
            return True
        return path.startswith(self.allowed) or os.path.join(path, "") in self.allowed

    def changed(self) -> str | None:
        """A file read or a directory listed that is no longer as it was (None: none)."""
        for path, seen in self.reads.items():
            try:
                info = os.stat(path)
                now: tuple[int, int] | None = (info.st_mtime_ns, info.st_size)
            except OSError:
                now = None
            if now != seen:
                return f"{path} changed"
        for path, mtime in self.listed.items():
            try:
                current: int | None = os.stat(path).st_mtime_ns
            except OSError:
                current = None
            if current != mtime:
                return f"{path} changed"
        return None


def _short(args: tuple[object, ...]) -> str:
    text = repr(args)
    return text if len(text) < 120 else text[:117] + "..."


def descriptors() -> dict[int, str]:
    """This process's open descriptors and what they are."""
    found = {}
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # (the listing's own descriptor, closed since)
            found[int(name)] = os.readlink(f"/proc/self/fd/{name}")
    return found


def outside_state(before: dict[int, str], keep: Iterable[int] = ()) -> str | None:
    """What this process holds outside itself that it did not hold ``before``
    (:func:`descriptors`): a descriptor other than /dev/null, a child process, a
    thread. None when nothing."""
    kept = set(keep)
    for fd, target in descriptors().items():
        if fd in kept or before.get(fd) == target or target == os.devnull:
            continue
        return f"descriptor {fd} ({target}) stays open"
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        tasks = []
    if len(tasks) > 1:
        return "a thread is running"
    for task in tasks:
        with contextlib.suppress(OSError), open(f"/proc/self/task/{task}/children") as children:
            if children.read().strip():
                return "a child process is running"
    return None
