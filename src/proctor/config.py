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

import configparser
import dataclasses
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = ["Config", "ConfigError", "find_root", "load_config"]

ROOT_MARKERS = ("pyproject.toml", ".stestr.conf", "setup.cfg", "setup.py", ".proctor")
FRAMEWORKS = ("auto", "unittest", "pytest")
PARALLEL_CLASS_REGEX = r"(?:[^\[(]*::|[^\[(:]*\.)"
r"""``parallel_class``: the group of a test is its class. For a unittest id, what
comes before the last dot outside the parameters (``pkg.mod.Class.``); for a
pytest node id, what comes before the last ``::`` outside the parameters
(``tests/test_a.py::TestC::``; a module-level function's group is its module).
stestr's ``([^\.]*\.)*`` groups pytest ids by the last dot anywhere: by module,
and parametrized ids with dots in their parameters apart from their class."""


class ConfigError(ValueError):
    """A configuration file Proctor cannot use; the message names the file and the key."""


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
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if any((candidate / marker).exists() for marker in ROOT_MARKERS):
            return candidate
    return here


def load_config(start: Path | None = None, root: Path | None = None) -> Config:
    """Read the configuration of the project at ``root`` (found from ``start``)."""
    root = root or find_root(start)
    settings: dict[str, Any] = {}
    sources: list[str] = []
    pyproject = root / "pyproject.toml"
    tool: dict[str, Any] = {}
    if pyproject.is_file():
        try:
            tool = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {})
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise ConfigError(f"{pyproject}: not valid TOML: {error}") from None
    stestr_conf = root / ".stestr.conf"
    if stestr_conf.is_file():
        settings.update(_read_stestr_conf(stestr_conf))
        sources.append(str(stestr_conf))
    elif isinstance(tool.get("stestr"), dict):
        settings.update(_stestr_settings(tool["stestr"], f"{pyproject} [tool.stestr]"))
        sources.append(f"{pyproject} [tool.stestr]")
    if "proctor" in tool:
        settings.update(_proctor_settings(tool["proctor"], f"{pyproject} [tool.proctor]"))
        sources.append(f"{pyproject} [tool.proctor]")
    return Config(root=root, sources=tuple(sources), **settings)


def _read_stestr_conf(path: Path) -> dict[str, Any]:
    parser = configparser.ConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot be read as an INI file: {error}") from None
    return _stestr_settings(dict(parser.defaults()), str(path))


def _stestr_settings(raw: dict[str, Any], where: str) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for key in ("test_path", "top_dir"):
        if raw.get(key):
            settings[key] = os.path.expandvars(str(raw[key]))
    if raw.get("group_regex"):
        settings["group_regex"] = str(raw["group_regex"])
    if str(raw.get("parallel_class", "")).lower() in ("1", "true", "yes", "on"):
        settings["group_regex"] = PARALLEL_CLASS_REGEX
    if "test_path" in settings:
        settings["framework"] = "unittest"
    return settings


_PROCTOR_KEYS: dict[str, type | tuple[type, ...]] = {
    "test_path": str,
    "top_dir": str,
    "group_regex": str,
    "framework": str,
    "pytest_args": list,
    "concurrency": int,
    "timeout": (int, float),
    "repository": str,
    "parallel_class": bool,
}


def _proctor_settings(raw: object, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a table of settings")
    settings: dict[str, Any] = {}
    for key, value in raw.items():
        name = key.replace("-", "_")
        expected = _PROCTOR_KEYS.get(name)
        if expected is None:
            known = ", ".join(sorted(_PROCTOR_KEYS))
            raise ConfigError(f"{where}: unknown setting {key!r}; known settings: {known}")
        if not isinstance(value, expected) or (isinstance(value, bool) and expected is not bool):
            raise ConfigError(f"{where}: {key} = {value!r} should be a {_type_name(expected)}")
        settings[name] = value
    if settings.pop("parallel_class", False):
        settings["group_regex"] = PARALLEL_CLASS_REGEX
    if "framework" in settings and settings["framework"] not in FRAMEWORKS:
        choices = ", ".join(FRAMEWORKS)
        raise ConfigError(
            f"{where}: framework = {settings['framework']!r}; expected one of {choices}"
        )
    if "pytest_args" in settings:
        args = settings["pytest_args"]
        if not all(isinstance(a, str) for a in args):
            raise ConfigError(f"{where}: pytest_args should be a list of strings")
        settings["pytest_args"] = tuple(args)
    if "concurrency" in settings and settings["concurrency"] < 0:
        raise ConfigError(f"{where}: concurrency should be 0 (one per core) or more")
    if "timeout" in settings:
        if settings["timeout"] <= 0:
            raise ConfigError(f"{where}: timeout should be a positive number of seconds")
        settings["timeout"] = float(settings["timeout"])
    return settings


def _type_name(expected: type | tuple[type, ...]) -> str:
    if isinstance(expected, tuple):
        return " or ".join(t.__name__ for t in expected)
    return {"str": "string", "list": "list", "int": "integer", "bool": "boolean"}.get(
        expected.__name__, expected.__name__
    )
