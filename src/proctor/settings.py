"""Reading a project's configuration files, cheaply: the part a worker needs.

:mod:`proctor.config` gives the command line a :class:`~proctor.config.Config`;
this module does the reading underneath, and is what a worker uses directly
(it reads the configuration itself when it was started before the controller
had). It imports neither :mod:`pathlib` nor :mod:`dataclasses`, and imports
``tomllib`` only for a ``pyproject.toml`` that mentions ``proctor`` or
``stestr`` at all (a table for either must name it): together about 10 ms on
the way to a worker's first test. See :mod:`proctor.config` for where each
setting comes from.
"""

from __future__ import annotations

import os
import sys
from typing import Any

__all__ = [
    "FRAMEWORKS",
    "PARALLEL_CLASS_REGEX",
    "ROOT_MARKERS",
    "ConfigError",
    "find_project_root",
    "read_settings",
]

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


def find_project_root(start: str | None = None) -> str:
    """The project root for ``start`` (default: the working directory), resolved."""
    here = os.path.realpath(start if start is not None else os.getcwd())
    candidate = here
    while True:
        if any(os.path.exists(os.path.join(candidate, marker)) for marker in ROOT_MARKERS):
            return candidate
        parent = os.path.dirname(candidate)
        if parent == candidate:
            return here
        candidate = parent


def read_settings(root: str) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The settings of the project at ``root`` (keyword arguments of
    :class:`~proctor.config.Config`, less ``root``) and the files they came from."""
    settings: dict[str, Any] = {}
    sources: list[str] = []
    pyproject = os.path.join(root, "pyproject.toml")
    tool = _tool_tables(pyproject)
    stestr_conf = os.path.join(root, ".stestr.conf")
    if os.path.isfile(stestr_conf):
        settings.update(_read_stestr_conf(stestr_conf))
        sources.append(stestr_conf)
    elif isinstance(tool.get("stestr"), dict):
        settings.update(_stestr_settings(tool["stestr"], f"{pyproject} [tool.stestr]"))
        sources.append(f"{pyproject} [tool.stestr]")
    if "proctor" in tool:
        settings.update(_proctor_settings(tool["proctor"], f"{pyproject} [tool.proctor]"))
        sources.append(f"{pyproject} [tool.proctor]")
    return settings, tuple(sources)


def _tool_tables(pyproject: str) -> dict[str, Any]:
    """The ``[tool]`` table of ``pyproject``, when it may hold ours (else empty)."""
    try:
        with open(pyproject, "rb") as source:
            data = source.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return {}
    except OSError as error:
        raise ConfigError(f"{pyproject}: cannot be read: {error.strerror or error}") from None
    if b"proctor" not in data and b"stestr" not in data:
        return {}  # no table of ours can be spelled without the word
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    try:
        tool = tomllib.loads(data.decode("utf-8")).get("tool", {})
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{pyproject}: not valid TOML: {error}") from None
    return tool if isinstance(tool, dict) else {}


def _read_stestr_conf(path: str) -> dict[str, Any]:
    import configparser

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
