"""Project configuration: ``[tool.proctor]`` in pyproject.toml, and ``.stestr.conf``.

Where a setting comes from, highest first:

1. the command line (callers apply it with :meth:`Config.override`);
2. ``[tool.proctor]`` in ``pyproject.toml`` at the project root;
3. ``.stestr.conf`` (``[DEFAULT]`` section: ``test_path``, ``top_dir``,
   ``group_regex``, ``parallel_class``), so an stestr project works unchanged;
   failing that, ``[tool.stestr]`` in ``pyproject.toml``;
4. defaults.

The project root is the nearest directory, from the working directory upwards,
holding ``pyproject.toml``, ``.stestr.conf``, ``setup.cfg``, ``setup.py`` or
``.proctor``. The repository lives in ``<root>/.proctor`` unless ``repository``
names a path or a ``postgresql://`` URL.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proctor.settings import (
    FRAMEWORKS,
    PARALLEL_CLASS_REGEX,
    ROOT_MARKERS,
    ConfigError,
    check_regex,
    find_project_root,
    read_settings,
)

__all__ = [
    "FRAMEWORKS",
    "PARALLEL_CLASS_REGEX",
    "ROOT_MARKERS",
    "Config",
    "ConfigError",
    "check_regex",
    "find_root",
    "load_config",
]


@dataclass(frozen=True, slots=True)
class Config:
    """Everything Proctor reads from a project's configuration."""

    root: Path
    test_path: str | None = None
    top_dir: str | None = None
    group_regex: str | None = None
    framework: str = "auto"
    pytest_args: tuple[str, ...] = ()
    concurrency: int | None = None
    timeout: float | None = None
    repository: str | None = None
    triage: dict[str, Any] = field(default_factory=dict, compare=False)
    """``[tool.proctor.triage]`` as written (proctor.triage.settings reads it)."""
    triage_where: str = field(default="[tool.proctor.triage]", compare=False)
    sources: tuple[str, ...] = field(default=(), compare=False)

    @property
    def repository_url(self) -> str:
        """Where the run history lives: a ``postgresql://`` URL or a directory path."""
        if self.repository is None:
            return str(self.root / ".proctor")
        if "://" in self.repository:
            return self.repository
        path = Path(self.repository).expanduser()
        return str(path if path.is_absolute() else self.root / path)

    def override(self, **changes: Any) -> Config:
        """A copy with the given settings replaced; ``None`` values are ignored."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def find_root(start: Path | None = None) -> Path:
    """The project root for ``start`` (default: the working directory)."""
    return Path(find_project_root(None if start is None else str(start)))


def load_config(start: Path | None = None, root: Path | None = None) -> Config:
    """Read the configuration of the project at ``root`` (found from ``start``)."""
    root = root or find_root(start)
    settings, sources = read_settings(str(root))
    return Config(root=root, sources=sources, **settings)
