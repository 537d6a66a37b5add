"""What every job of a build must share (``proctor run --queue``): the code
revision and the environment.

The revision is the git commit of the checkout, with a digest of its
uncommitted changes, as :func:`proctor.runner.remote.identity` has it. The
environment is a digest of the Python version and of the names of the
installed distributions' metadata directories on the import path
(``name-version.dist-info``, ``.egg-info``): the same distributions and
versions that ``--cluster`` compares, read from directory listings instead of
from every distribution's parsed metadata. Every job of a build works this out
as it starts, at the same moment as the others; the parsed metadata cost about
45 ms of CPU a job (0.4 ms this way), which four jobs sharing two cores paid
on the critical path of the build.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

__all__ = ["environment_digest", "job_identity", "revision"]

_METADATA_DIRS = (".dist-info", ".egg-info")


def job_identity(root: str) -> tuple[str, str]:
    """The revision of the checkout at ``root`` and the environment of this interpreter."""
    return revision(root), environment_digest(sys.path)


def revision(root: str) -> str:
    """The git commit of ``root``, with ``+dirty:`` and a digest of its uncommitted changes."""
    commit = _git(root, "rev-parse", "HEAD")
    if commit is None:
        return "(not a git checkout)"
    found = commit.decode().strip()
    diff = _git(root, "diff", "HEAD", "--no-ext-diff", "--binary")
    if diff:
        found += "+dirty:" + hashlib.sha256(diff).hexdigest()[:12]
    return found


def environment_digest(path: list[str]) -> str:
    """A digest of the Python version and of the distributions installed on ``path``
    (where they are installed does not count: CI machines' paths differ)."""
    names = {name for entry in path for name in _metadata_dirs(entry or ".")}
    python = f"{sys.implementation.name} {'.'.join(map(str, sys.version_info[:3]))}"
    return hashlib.sha256("\n".join([python, *sorted(names)]).encode()).hexdigest()[:16]


def _metadata_dirs(directory: str) -> list[str]:
    try:
        with os.scandir(directory) as found:
            return [item.name.lower() for item in found if item.name.endswith(_METADATA_DIRS)]
    except OSError:  # not a directory (a zip), or gone
        return []


def _git(root: str, *args: str) -> bytes | None:
    try:
        done = subprocess.run(
            ["git", "--no-optional-locks", "-C", root, *args],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None
