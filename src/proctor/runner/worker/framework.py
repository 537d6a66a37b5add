"""Which framework runs a project's tests, and loading its suite.

``framework = "auto"`` (the default) decides, in this order:

1. ``.stestr.conf`` (or ``[tool.stestr]``) names a ``test_path``: unittest,
   since that is how stestr runs it (:mod:`proctor.config` already says so);
2. pytest is importable and the project configures pytest: a ``pytest.ini``,
   ``.pytest.ini`` or ``conftest.py`` at the root (or in ``test_path``),
   ``[tool.pytest.ini_options]`` in ``pyproject.toml``, ``[tool:pytest]`` in
   ``setup.cfg`` or ``[pytest]`` in ``tox.ini``: pytest;
3. otherwise unittest, except that when unittest discovery finds nothing at
   all and pytest is importable, pytest gets a chance (plain ``def test_x()``
   functions with no configuration).

A project that wants certainty sets ``framework`` in ``[tool.proctor]`` or
passes ``--framework``.
"""

from __future__ import annotations

import importlib.util
import os
import sys

__all__ = ["configures_pytest", "detect_framework", "pytest_available"]

_PYTEST_FILES = ("pytest.ini", ".pytest.ini", "conftest.py")


def pytest_available() -> bool:
    """Whether pytest can be imported here (without importing it)."""
    return importlib.util.find_spec("pytest") is not None


def configures_pytest(root: str | os.PathLike[str], test_path: str | None = None) -> bool:
    """Whether the project at ``root`` has any pytest configuration."""
    import configparser  # imported here: only ``framework = auto`` needs them

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib

    here = os.fspath(root)
    places = [here] + ([os.path.join(here, test_path)] if test_path else [])
    if any(os.path.isfile(os.path.join(place, name)) for place in places for name in _PYTEST_FILES):
        return True
    pyproject = os.path.join(here, "pyproject.toml")
    if os.path.isfile(pyproject):
        try:
            with open(pyproject, "rb") as source:
                data = source.read()
            # No [tool.pytest...] table can be spelled without the word: parse only then.
            tool = tomllib.loads(data.decode("utf-8")).get("tool", {}) if b"pytest" in data else {}
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError):
            tool = {}
        if isinstance(tool, dict) and isinstance(tool.get("pytest"), dict):
            return True
    for name, section in (("setup.cfg", "tool:pytest"), ("tox.ini", "pytest")):
        path = os.path.join(here, name)
        if os.path.isfile(path):
            parser = configparser.ConfigParser(interpolation=None)
            try:
                parser.read(path, encoding="utf-8")
            except (configparser.Error, UnicodeDecodeError):
                continue
            if parser.has_section(section):
                return True
    return False


def detect_framework(framework: str, root: str | os.PathLike[str], test_path: str | None) -> str:
    """``unittest`` or ``pytest`` for a configured framework (``auto`` decides)."""
    if framework != "auto":
        return framework
    if pytest_available() and configures_pytest(root, test_path):
        return "pytest"
    return "unittest"
