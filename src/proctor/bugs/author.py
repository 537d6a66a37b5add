"""Who is editing: identity without a server.

In order: ``PROCTOR_AUTHOR``; else git's ``user.name`` and ``user.email`` (``Name
<email>``, as git writes authors); else the login name at the host name, marked as a
fallback so a command can suggest setting one of the first two. Git runs with a
timeout; if it is absent, hangs or fails, the fallback is used and nothing is raised.
"""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["Author", "current_author"]

MAX_AUTHOR = 200


@dataclass(frozen=True, slots=True)
class Author:
    name: str
    source: Literal["PROCTOR_AUTHOR", "git config", "fallback"]


def _clean(text: str) -> str:
    """One line, no control characters, at most :data:`MAX_AUTHOR` characters."""
    kept = "".join(" " if unicodedata.category(c) in ("Cc", "Cs") else c for c in text)
    return " ".join(kept.split())[:MAX_AUTHOR].strip()


def _git_config(key: str, root: Path | str | None, timeout: float) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(root or "."), "config", "--get", key],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    if done.returncode != 0:
        return ""
    return _clean(done.stdout.decode("utf-8", "replace"))


def _fallback() -> str:
    try:
        user = getpass.getuser()
    except (OSError, KeyError, ImportError):
        user = "unknown"
    return _clean(f"{user}@{socket.gethostname() or 'localhost'}") or "unknown"


def current_author(
    env: Mapping[str, str] | None = None, root: Path | str | None = None, timeout: float = 5.0
) -> Author:
    """The author for new events, and where it came from."""
    environ = os.environ if env is None else env
    given = _clean(environ.get("PROCTOR_AUTHOR", ""))
    if given:
        return Author(given, "PROCTOR_AUTHOR")
    name = _git_config("user.name", root, timeout)
    email = _git_config("user.email", root, timeout)
    if name or email:
        text = f"{name} <{email}>" if name and email else name or f"<{email}>"
        return Author(_clean(text), "git config")
    return Author(_fallback(), "fallback")
