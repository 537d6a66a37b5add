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
    "check_regex",
    "expand_shell",
    "find_project_root",
    "pytest_configuration",
    "read_settings",
]

ROOT_MARKERS = (
    "pyproject.toml",
    ".stestr.conf",
    "setup.cfg",
    "setup.py",
    "pytest.ini",
    ".pytest.ini",
    "tox.ini",
    ".proctor",
    ".git",
)
"""What makes a directory a project root, searched upward from the working directory.
pytest's own ini files count (a pytest project may have nothing else), and so does a git
work tree's top: without them the search climbed past the project to whatever directory
above it held a marker (a stray ``/tmp/.proctor`` made every project under ``/tmp`` one)."""
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


_PYTEST_FILES = ("pytest.ini", ".pytest.ini", "conftest.py")
_PYTEST_SECTIONS = (("tox.ini", "pytest"), ("setup.cfg", "tool:pytest"))


def pytest_configuration(root: str | os.PathLike[str], test_path: str | None = None) -> str | None:
    """What configures pytest in the project at ``root``, for a person to read
    (``"pytest.ini exists"``), or ``None`` when nothing does.

    The one answer to "is this project configured for pytest?", for ``proctor
    init`` and for a worker's ``framework = auto``: a ``pytest.ini``,
    ``.pytest.ini`` or ``conftest.py`` at the root or in ``test_path``, a
    ``[tool.pytest...]`` table in ``pyproject.toml`` (``[tool.pytest.ini_options]``),
    a ``[pytest]`` section in ``tox.ini`` or ``[tool:pytest]`` in ``setup.cfg``.
    A file that cannot be read or parsed configures nothing.
    """
    here = os.fspath(root)
    if _pyproject_has_pytest(os.path.join(here, "pyproject.toml")):
        return "pyproject.toml has [tool.pytest]"
    places = [here] + ([os.path.join(here, test_path)] if test_path else [])
    for place in places:
        for name in _PYTEST_FILES:
            if os.path.isfile(os.path.join(place, name)):
                return f"{os.path.relpath(os.path.join(place, name), here)} exists"
    for name, section in _PYTEST_SECTIONS:
        path = os.path.join(here, name)
        if os.path.isfile(path) and _ini_has_section(path, section):
            return f"{name} has a [{section}] section"
    return None


def _pyproject_has_pytest(path: str) -> bool:
    try:
        with open(path, "rb") as source:
            data = source.read()
    except OSError:
        return False
    if b"pytest" not in data:
        return False  # no [tool.pytest...] table can be spelled without the word
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    try:
        tool = tomllib.loads(data.decode("utf-8")).get("tool", {})
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return False
    return isinstance(tool, dict) and isinstance(tool.get("pytest"), dict)


def _ini_has_section(path: str, section: str) -> bool:
    import configparser

    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return False
    return parser.has_section(section)


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
            value = expand_shell(str(raw[key]), f"{where}: {key}")
            if not value:
                raise ConfigError(
                    f"{where}: {key} = {raw[key]} expands to nothing in this environment; "
                    "set the variables it names, or give a default (${VAR:-path})"
                )
            settings[key] = value
    if raw.get("group_regex"):
        settings["group_regex"] = check_regex(str(raw["group_regex"]), f"{where}: group_regex")
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
    "triage": dict,  # [tool.proctor.triage]: checked by proctor.triage.settings
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
    elif "group_regex" in settings:
        settings["group_regex"] = check_regex(settings["group_regex"], f"{where}: group_regex")
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
    if "triage" in settings:
        settings["triage_where"] = f"{where[:-1]}.triage]"
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


def check_regex(pattern: str, where: str) -> str:
    """``pattern`` if it compiles; else a :class:`ConfigError` naming ``where``
    and the position of the fault (so a bad ``group_regex`` is a usage error,
    not a traceback in the middle of a run)."""
    import re

    try:
        re.compile(pattern)
    except re.error as error:
        raise ConfigError(f"{where}: {regex_problem(pattern, error)}") from None
    return pattern


def regex_problem(pattern: str, error: Exception) -> str:
    """``'pattern' is not a valid regular expression: <why> at column N``."""
    message = getattr(error, "msg", str(error))
    position = getattr(error, "pos", None)
    at = f" (at column {position + 1})" if isinstance(position, int) else ""
    return f"{pattern!r} is not a valid regular expression: {message}{at}"


# -- shell expansion of .stestr.conf paths ------------------------------------------
#
# stestr puts test_path and top_dir into a shell command, inside double quotes
# (``... discover -t "<top_dir>" "<test_path>"``), so /bin/sh expands them; most
# OpenStack projects write ``test_path=${OS_TEST_PATH:-./project/tests/unit}``.
# This is that expansion, without a shell: parameters and their POSIX operators.
# Command substitution and arithmetic are refused rather than run.

_NAME_START = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_"
_NAME_CHARS = _NAME_START + "0123456789"
_ESCAPABLE = '$`"\\\n'


def expand_shell(
    text: str, where: str, environ: dict[str, str] | os._Environ[str] | None = None
) -> str:
    """``text`` expanded as ``sh`` expands it between double quotes.

    ``$VAR``, ``${VAR}``, ``${VAR:-default}`` / ``${VAR-default}`` (the
    environment wins over the default), ``${VAR:=default}``, ``${VAR:+other}``,
    ``${VAR:?message}`` and ``${#VAR}``; words nest (``${A:-${B:-x}}``);
    ``\\$`` is a literal dollar; quotes are removed. An unset variable is
    empty, as in the shell. Anything else (``$(...)``, backquotes,
    ``$((...))``, pattern operators such as ``${VAR%x}``) is a
    :class:`ConfigError` naming ``where``.
    """
    env = dict(os.environ if environ is None else environ)
    return _expand(text, 0, env, where, closing=None)[0]


def _expand(
    text: str, index: int, env: dict[str, str], where: str, closing: str | None
) -> tuple[str, int]:
    """Expand from ``index`` up to ``closing`` (``}``) or the end; the result and
    the index after what was consumed."""
    out: list[str] = []
    length = len(text)
    while index < length:
        char = text[index]
        if closing is not None and char == closing:
            return "".join(out), index + 1
        if char == "\\" and index + 1 < length and text[index + 1] in (closing or "") + _ESCAPABLE:
            if text[index + 1] != "\n":
                out.append(text[index + 1])
            index += 2
        elif char == '"':
            index += 1  # quote removal
        elif char == "`":
            raise ConfigError(
                f"{where}: command substitution (`...`) is not supported; "
                "set the value, or an environment variable it names, instead"
            )
        elif char == "$":
            piece, index = _dollar(text, index + 1, env, where)
            out.append(piece)
        else:
            out.append(char)
            index += 1
    if closing is not None:
        raise ConfigError(f"{where}: {text!r}: missing '}}' (bad substitution)")
    return "".join(out), index


def _dollar(text: str, index: int, env: dict[str, str], where: str) -> tuple[str, int]:
    """Expand what follows a ``$`` at ``index``."""
    char = text[index : index + 1]
    if char == "{":
        return _braced(text, index + 1, env, where)
    if char == "(":
        kind = "arithmetic ($((...)))" if text[index : index + 2] == "((" else "$(...)"
        raise ConfigError(
            f"{where}: {kind} is not supported; set the value, "
            "or an environment variable it names, instead"
        )
    if char and char in _NAME_START:
        end = index
        while end < len(text) and text[end] in _NAME_CHARS:
            end += 1
        return env.get(text[index:end], ""), end
    if char.isdigit():
        return "", index + 1  # a positional parameter: the shell has none here
    if char and char in "@*#?$!-":
        raise ConfigError(f"{where}: the special parameter ${char} is not supported")
    return "$", index  # a lone dollar is itself, as in the shell


def _braced(text: str, index: int, env: dict[str, str], where: str) -> tuple[str, int]:
    """Expand ``${...}`` whose name starts at ``index``."""
    length_of = text[index : index + 1] == "#" and text[index + 1 : index + 2] in _NAME_START
    if length_of:
        index += 1
    end = index
    while end < len(text) and text[end] in _NAME_CHARS:
        end += 1
    name = text[index:end]
    if not name or name[0] not in _NAME_START:
        raise ConfigError(f"{where}: {text!r}: bad substitution (a variable name must follow ${{)")
    value = env.get(name)
    if length_of:
        if text[end : end + 1] != "}":
            raise ConfigError(f"{where}: {text!r}: bad substitution after ${{#{name}")
        return str(len(value or "")), end + 1
    operator = text[end : end + 1]
    if operator == "}":
        return value or "", end + 1
    colon = operator == ":"
    if colon:
        operator = text[end + 1 : end + 2]
    start = end + (2 if colon else 1)
    if operator not in ("-", "=", "+", "?"):
        raise ConfigError(
            f"{where}: {text!r}: ${{{name}{':' if colon else ''}{operator}...}} is not "
            "supported (only -, =, + and ? with or without ':')"
        )
    word, after = _expand(text, start, env, where, closing="}")
    missing = value is None or (colon and value == "")
    if operator == "-":
        return (word if missing else value or ""), after
    if operator == "=":
        if missing:
            env[name] = word
            return word, after
        return value or "", after
    if operator == "+":
        return ("" if missing else word), after
    if missing:
        reason = word or ("parameter null or not set" if colon else "parameter not set")
        raise ConfigError(f"{where}: {name}: {reason}")
    return value or "", after
