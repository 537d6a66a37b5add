"""This user's private directory for Proctor's sockets and caches on this machine.

``$XDG_RUNTIME_DIR/proctor`` where the system provides a runtime directory,
else ``proctor-UID`` in ``$TMPDIR`` (or ``/tmp``). It is made with mode 0700
and used only while it is this user's and nobody else may enter it: the
socket of a warm Dask agent (:mod:`proctor.runner.dask_agent`) in it accepts
requests to start processes on the cluster, so a directory another user could
write to, or that is a symbolic link, is never used (callers then do without).
"""

from __future__ import annotations

import os
import stat

__all__ = ["runtime_dir"]


def runtime_dir() -> str | None:
    """The directory (made if needed), or None where there is none to trust."""
    if not hasattr(os, "getuid"):  # pragma: no cover - not POSIX
        return None
    uid = os.getuid()
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base and os.path.isabs(base):
        path = os.path.join(base, "proctor")
    else:
        temporary = os.environ.get("TMPDIR") or "/tmp"
        path = os.path.join(temporary, f"proctor-{uid}")
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    try:
        info = os.lstat(path)
    except OSError:
        return None
    private = stat.S_ISDIR(info.st_mode) and info.st_uid == uid
    if not private or info.st_mode & 0o077:
        return None
    return path
