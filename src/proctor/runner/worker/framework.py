"""Which framework runs a project's tests, and loading its suite.

``framework = "auto"`` (the default) decides, in this order:

1. ``.stestr.conf`` (or ``[tool.stestr]``) names a ``test_path``: unittest,
   since that is how stestr runs it (:mod:`proctor.config` already says so);
2. pytest is importable and the project configures pytest
   (:func:`proctor.settings.pytest_configuration`, which ``proctor init`` asks
   too): a ``pytest.ini``, ``.pytest.ini`` or ``conftest.py`` at the root (or in
   ``test_path``), ``[tool.pytest.ini_options]`` in ``pyproject.toml``,
   ``[tool:pytest]`` in ``setup.cfg`` or ``[pytest]`` in ``tox.ini``: pytest;
3. otherwise unittest, except that when unittest discovery finds nothing at
   all and pytest is importable, pytest gets a chance (plain ``def test_x()``
   functions with no configuration).

A project that wants certainty sets ``framework`` in ``[tool.proctor]`` or
passes ``--framework``.
"""

from __future__ import annotations

import importlib.util
import os

from proctor.settings import pytest_configuration

__all__ = ["detect_framework", "pytest_available"]


def pytest_available() -> bool:
    """Whether pytest can be imported here (without importing it)."""
    return importlib.util.find_spec("pytest") is not None


def detect_framework(framework: str, root: str | os.PathLike[str], test_path: str | None) -> str:
    """``unittest`` or ``pytest`` for a configured framework (``auto`` decides)."""
    if framework != "auto":
        return framework
    if pytest_available() and pytest_configuration(root, test_path) is not None:
        return "pytest"
    return "unittest"
