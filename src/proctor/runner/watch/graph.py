"""Which test files a change can affect: a static import graph of the project.

Every ``.py`` file under the project root (outside ignored directories) is
parsed with :mod:`ast` for its imports (``import a.b``, ``from a import b``,
relative imports, ``pytest_plugins`` strings); the parse is cached by
``(mtime_ns, size)``, so a cycle re-reads only what changed. An import is
resolved to project files: the module itself, every package ``__init__.py``
above it, and ``from pkg import name`` where ``name`` is a submodule. Names are
tried against the root, ``src/`` and each directory of the importer and its
ancestors (pytest's ``rootdir``-insertion imports); a name that resolves to no
project file is a third-party or standard module and is not followed.

A file is *affected* by a set of changed files when it is one of them or
imports one of them, directly or transitively. A ``conftest.py`` counts as
imported by every file under its directory. A test file that imports
dynamically (``importlib.import_module``, ``__import__``) depends on
everything. Changes to a project's configuration files (``pyproject.toml``,
``setup.cfg``, ``pytest.ini``, ``tox.ini``, ``.stestr.conf``) affect every
test. Deleted files are looked up in the graph as it was before the change, so
the importers of a deleted module still run (and fail to import it).
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "CONFIG_FILES",
    "IGNORED_DIRS",
    "ImportGraph",
    "is_test_file",
    "scan_python_files",
]

IGNORED_DIRS = frozenset(
    {
        ".proctor",
        ".stestr",
        ".testrepository",
        ".git",
        ".hg",
        ".svn",
        ".tox",
        ".nox",
        ".venv",
        "venv",
        ".idea",
        ".vscode",
        "node_modules",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".hypothesis",
        "build",
        "dist",
        ".eggs",
    }
)
"""Directories never scanned or watched (caches, environments, version control)."""

CONFIG_FILES = frozenset({"pyproject.toml", "setup.cfg", "pytest.ini", "tox.ini", ".stestr.conf"})
"""Files whose change may change any test's outcome or the selection itself."""

_DYNAMIC = ("import_module", "__import__")


def is_test_file(path: Path) -> bool:
    """A file unittest's (``test*.py``) or pytest's (``test_*.py``, ``*_test.py``)
    default patterns collect."""
    name = path.name
    return name.endswith(".py") and (name.startswith("test") or name.endswith("_test.py"))


def scan_python_files(root: Path, ignored: Iterable[str] = ()) -> Iterator[Path]:
    """Every ``.py`` file under ``root``, outside ignored directories (and ``ignored``
    names, e.g. from ``.gitignore``)."""
    skip = IGNORED_DIRS | frozenset(ignored)
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(
            d for d in dirs if d not in skip and not d.endswith(".egg-info") and d[:1] != "."
        )
        for name in sorted(files):
            if name.endswith(".py") and name not in skip:
                yield Path(directory, name)


@dataclass(slots=True)
class _Parsed:
    stamp: tuple[int, int]
    imports: tuple[tuple[str, tuple[str, ...], int], ...]
    """(module, names imported from it, relative level) per import statement."""
    dynamic: bool


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size)


def _parse(path: Path, stamp: tuple[int, int]) -> _Parsed:
    try:
        source = path.read_bytes()
        tree = ast.parse(source, filename=str(path))
    except (OSError, SyntaxError, ValueError):
        # A file that does not parse imports what it imported before, as far as we
        # know; its importers are affected through it anyway (it changed).
        return _Parsed(stamp, (), False)
    imports: list[tuple[str, tuple[str, ...], int]] = []
    dynamic = False
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imports.extend((alias.name, (), 0) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names = tuple(alias.name for alias in node.names)
            imports.append((node.module or "", names, node.level))
        elif isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytest_plugins" for t in node.targets
        ):
            imports.extend(
                (const.value, (), 0)
                for const in ast.walk(node.value)
                if isinstance(const, ast.Constant) and isinstance(const.value, str)
            )
        elif isinstance(node, ast.Attribute | ast.Name):
            name = node.attr if isinstance(node, ast.Attribute) else node.id
            dynamic = dynamic or name in _DYNAMIC
    return _Parsed(stamp, tuple(imports), dynamic)


@dataclass
class ImportGraph:
    """The project's files and who imports whom; :meth:`refresh` re-reads changes."""

    root: Path
    ignored: frozenset[str] = frozenset()
    _parsed: dict[Path, _Parsed] = field(default_factory=dict)
    _importers: dict[Path, set[Path]] = field(default_factory=dict)
    _files: set[Path] = field(default_factory=set)
    _dynamic: set[Path] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.root = self.root.resolve()
        self.refresh()

    @property
    def files(self) -> frozenset[Path]:
        return frozenset(self._files)

    @property
    def test_files(self) -> list[Path]:
        return sorted(p for p in self._files if is_test_file(p))

    def refresh(self) -> None:
        """Re-scan the tree and re-parse the files whose mtime or size changed."""
        files = set(scan_python_files(self.root, self.ignored))
        parsed: dict[Path, _Parsed] = {}
        for path in files:
            stamp = _stamp(path)
            if stamp is None:
                continue
            known = self._parsed.get(path)
            parsed[path] = (
                known if known is not None and known.stamp == stamp else _parse(path, stamp)
            )
        self._parsed = parsed
        self._files = set(parsed)
        self._dynamic = {p for p, info in parsed.items() if info.dynamic and is_test_file(p)}
        importers: dict[Path, set[Path]] = {}
        for path, info in parsed.items():
            for target in self._resolve_all(path, info):
                if target != path:
                    importers.setdefault(target, set()).add(path)
        for path in self._files:
            if path.name == "conftest.py":
                folder = path.parent
                for other in self._files:
                    if other != path and folder in other.parents:
                        importers.setdefault(path, set()).add(other)
        self._importers = importers

    def affected(self, changed: Iterable[Path]) -> set[Path]:
        """The files that are, or import (transitively), one of ``changed``."""
        seen: set[Path] = set()
        todo = [self._normal(p) for p in changed]
        while todo:
            path = todo.pop()
            if path in seen:
                continue
            seen.add(path)
            todo.extend(self._importers.get(path, ()))
        return seen

    def affected_tests(self, changed: Iterable[Path]) -> set[Path]:
        """The test files among :meth:`affected`, plus those that import dynamically
        (when anything changed)."""
        changed = list(changed)
        hit = {p for p in self.affected(changed) if is_test_file(p)}
        if changed:
            hit |= self._dynamic
        return hit

    def update(self, changed: Iterable[Path]) -> set[Path]:
        """Re-read the tree after ``changed`` changed; the test files affected, in the
        graph as it was (deleted modules' importers) and as it is (new imports)."""
        changed = list(changed)
        before = self.affected_tests(changed)
        self.refresh()
        return before | self.affected_tests(changed)

    def _normal(self, path: Path) -> Path:
        path = Path(os.path.abspath(path))
        try:
            return path.resolve()
        except OSError:  # pragma: no cover - a loop of links
            return path

    # -- resolving imports to files ------------------------------------------

    def _bases(self, importer: Path) -> list[Path]:
        bases = [self.root, self.root / "src"]
        folder = importer.parent
        while folder != self.root and self.root in folder.parents:
            bases.append(folder)
            folder = folder.parent
        return bases

    def _resolve_all(self, importer: Path, info: _Parsed) -> set[Path]:
        found: set[Path] = set()
        for module, names, level in info.imports:
            if level:
                base = importer.parent
                for _ in range(level - 1):
                    base = base.parent
                parts = module.split(".") if module else []
                found |= self._chain(base, parts, names)
            else:
                for base in self._bases(importer):
                    hit = self._chain(base, module.split("."), names)
                    if hit:
                        found |= hit
                        break
        return found

    def _chain(self, base: Path, parts: list[str], names: tuple[str, ...]) -> set[Path]:
        """The files ``import base/parts...`` executes (package ``__init__`` files on
        the way), plus submodules named in ``from ... import names``."""
        found: set[Path] = set()
        folder = base
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            module_file = folder / f"{part}.py"
            package = folder / part
            init = package / "__init__.py"
            if init in self._files:
                found.add(init)
                folder = package
            elif last and module_file in self._files:
                found.add(module_file)
                return found
            elif (package.is_dir() and not last) or (last and package.is_dir()):
                folder = package  # a namespace package
            else:
                return set() if index == 0 else found
        for name in names:
            for candidate in (folder / f"{name}.py", folder / name / "__init__.py"):
                if candidate in self._files:
                    found.add(candidate)
        return found
