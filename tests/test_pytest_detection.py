"""Is a project configured for pytest? One answer, for ``proctor init`` and the worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from proctor.cli.init import detect
from proctor.runner.worker.framework import detect_framework, pytest_available
from proctor.settings import pytest_configuration

CONFIGURED = [
    ({"pytest.ini": "[pytest]\n"}, "pytest.ini exists"),
    ({".pytest.ini": "[pytest]\n"}, ".pytest.ini exists"),
    (
        {"tox.ini": "[tox]\nenvlist = py\n\n[pytest]\naddopts = -q\n"},
        "tox.ini has a [pytest] section",
    ),
    (
        {"setup.cfg": "[metadata]\nname = x\n\n[tool:pytest]\ntestpaths = t\n"},
        "setup.cfg has a [tool:pytest] section",
    ),
    (
        {"pyproject.toml": '[project]\nname = "x"\n\n[tool.pytest.ini_options]\naddopts = "-q"\n'},
        "pyproject.toml has [tool.pytest]",
    ),
    ({"conftest.py": ""}, "conftest.py exists"),
]

NOT_CONFIGURED = [
    {},
    {"pyproject.toml": '[project]\nname = "pytest-like"\n'},  # the word, not the table
    {"tox.ini": "[tox]\n# [pytest] is only mentioned here\n"},
    {"setup.cfg": "[tool:pytest\n"},  # not an INI file: configures nothing
    {"pyproject.toml": "[tool.pytest.ini_options\n"},  # not TOML
    {"tests/test_a.py": "def test_a():\n    pass\n"},
]


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.mark.parametrize(("files", "reason"), CONFIGURED, ids=lambda v: str(v)[:30])
def test_each_kind_of_pytest_configuration_is_found(
    tmp_path: Path, files: dict[str, str], reason: str
) -> None:
    assert pytest_configuration(_write(tmp_path, files)) == reason


@pytest.mark.parametrize("files", NOT_CONFIGURED, ids=lambda v: str(v)[:30])
def test_no_pytest_configuration(tmp_path: Path, files: dict[str, str]) -> None:
    assert pytest_configuration(_write(tmp_path, files)) is None


def test_a_conftest_in_the_test_path_counts(tmp_path: Path) -> None:
    _write(tmp_path, {"tests/conftest.py": ""})
    assert pytest_configuration(tmp_path) is None
    assert pytest_configuration(tmp_path, "tests") == "tests/conftest.py exists"


@pytest.mark.parametrize(("files", "reason"), CONFIGURED, ids=lambda v: str(v)[:30])
def test_init_and_the_worker_agree(tmp_path: Path, files: dict[str, str], reason: str) -> None:
    # They disagreed on .pytest.ini: init said unittest, the worker pytest.
    root = _write(
        tmp_path,
        {
            **files,
            "tests/test_a.py": "import unittest\n\n\nclass T(unittest.TestCase):\n    pass\n",
        },
    )
    found = detect(root)
    assert found.framework == "pytest"
    assert reason in found.reasons
    if pytest_available():
        assert detect_framework("auto", root, found.test_path) == "pytest"


def test_init_and_the_worker_agree_on_a_plain_unittest_project(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        {"tests/test_a.py": "import unittest\n\n\nclass T(unittest.TestCase):\n    pass\n"},
    )
    found = detect(root)
    assert found.framework == "unittest"
    assert detect_framework("auto", root, found.test_path) == "unittest"
