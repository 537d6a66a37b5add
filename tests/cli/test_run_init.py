"""``proctor init``: detection, appending without damage, refusing to overwrite."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from proctor.cli.main import main
from proctor.config import load_config

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_a_unittest_project_gets_a_new_pyproject(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(
        here,
        {
            "setup.py": "",
            "tests/__init__.py": "",
            "tests/test_x.py": (
                "import unittest\nclass T(unittest.TestCase):\n    def test_a(self): pass\n"
            ),
        },
    )
    assert main(["init"]) == 0
    config = load_config(root=here)
    assert config.framework == "unittest"
    assert config.test_path == "tests"
    assert config.top_dir == "."
    assert "unittest TestCase" in capsys.readouterr().out


def test_an_existing_pyproject_keeps_every_byte(here: Path) -> None:
    original = '[project]\nname = "x"  # keep me\n\n[tool.pytest.ini_options]\naddopts = "-q"\n'
    _write(
        here, {"pyproject.toml": original, "tests/test_y.py": "def test_y():\n    assert True\n"}
    )
    assert main(["init"]) == 0
    text = (here / "pyproject.toml").read_text()
    assert text.startswith(original)
    parsed = tomllib.loads(text)
    assert parsed["tool"]["proctor"] == {"framework": "pytest"}
    assert parsed["project"]["name"] == "x"
    assert load_config(root=here).framework == "pytest"


def test_an_stestr_project_keeps_its_conf(here: Path) -> None:
    _write(
        here,
        {
            ".stestr.conf": "[DEFAULT]\ntest_path=./mypkg/tests\ntop_dir=./\n",
            "pyproject.toml": "[project]\nname='x'\n",
        },
    )
    assert main(["init"]) == 0
    config = load_config(root=here)
    assert config.framework == "unittest"
    assert config.test_path == "./mypkg/tests"
    assert "read from .stestr.conf" in (here / "pyproject.toml").read_text()


def test_it_refuses_to_overwrite_a_configuration(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = "[tool.proctor]\ntimeout = 5\n"
    _write(here, {"pyproject.toml": original})
    assert main(["init"]) == 1
    assert (here / "pyproject.toml").read_text() == original
    assert "already has [tool.proctor]" in capsys.readouterr().err


def test_invalid_toml_is_left_alone(here: Path) -> None:
    _write(here, {"pyproject.toml": "[project\n"})
    assert main(["init"]) == 2
    assert (here / "pyproject.toml").read_text() == "[project\n"


def test_print_writes_nothing(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(here, {"pytest.ini": "[pytest]\n"})
    assert main(["init", "--print"]) == 0
    assert capsys.readouterr().out.startswith("[tool.proctor]\n")
    assert not (here / "pyproject.toml").exists()


def test_the_test_directory_is_the_one_holding_all_the_tests(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A sandbox folder inside the tests sorts before the tests' own files.
    _write(
        here,
        {
            "setup.py": "",
            "src/pkg/__init__.py": "",
            "src/pkg/tests/__init__.py": "",
            "src/pkg/tests/sandbox/test_data.py": "def test_d():\n    pass\n",
            "src/pkg/tests/test_core.py": "def test_c():\n    pass\n",
            "src/pkg/tests/unit/test_unit.py": "def test_u():\n    pass\n",
        },
    )
    assert main(["init", "--print"]) == 0
    assert '# pytest_args = ["src/pkg/tests"]' in capsys.readouterr().out
    assert main(["init", "--print", "--framework", "unittest"]) == 0
    assert 'test_path = "src/pkg/tests"' in capsys.readouterr().out
