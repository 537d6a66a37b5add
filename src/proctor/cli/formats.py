"""How the commands write and read the values of history: local times
(:func:`format_time`, and :func:`parse_when` for ``--since``-style options),
sizes, and a run's one-line label."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from proctor.store.model import RunInfo

__all__ = ["format_size", "format_time", "parse_when", "run_label"]


def format_size(count: int) -> str:
    """Bytes in the largest binary unit that keeps the number above 1."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover


def format_time(ns: int | None) -> str:
    """Local date and time, to the second."""
    if ns is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ns // 1_000_000_000))


def run_label(info: RunInfo) -> str:
    """``run 12 (main @ 0123abcd, 2024-05-01 12:00:00)``."""
    meta = info.metadata
    where = []
    if meta.git_branch or meta.git_commit:
        revision = (meta.git_branch or "") + (
            f" @ {meta.git_commit[:10]}" if meta.git_commit else ""
        )
        if meta.git_dirty:
            revision += " (dirty)"
        where.append(revision.strip())
    where.append(format_time(info.started_ns))
    return f"run {info.id} ({', '.join(where)})"


_RELATIVE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_FORMATS = (
    "%Y-%m-%d",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
)


def parse_when(text: str, *, now: float | None = None) -> int:
    """A moment as ns since the epoch: a local date/time (``2024-05-01``,
    ``2024-05-01 12:30``) or an age (``90m``, ``12h``, ``3d``, ``2w`` ago)."""
    text = text.strip()
    relative = _RELATIVE.fullmatch(text)
    if relative:
        seconds = float(relative.group(1)) * _UNITS[relative.group(2)]
        return int(((time.time() if now is None else now) - seconds) * 1_000_000_000)
    for layout in _FORMATS:
        try:
            moment = time.mktime(time.strptime(text, layout))
        except ValueError:
            continue
        return int(moment * 1_000_000_000)
    raise click.BadParameter(
        f"{text!r} is neither a date (2024-05-01, 2024-05-01 12:30) nor an age (12h, 3d, 2w)"
    )
