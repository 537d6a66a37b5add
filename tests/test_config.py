"""Project configuration: where each setting comes from, and what is refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from proctor.cli.main import main
from proctor.config import PARALLEL_CLASS_REGEX, ConfigError, find_root, load_config
from proctor.settings import find_project_root, read_settings


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_no_configuration_means_the_defaults(tmp_path: Path) -> None:
    config = load_config(root=tmp_path)
    assert config.root == tmp_path
    assert (config.framework, config.test_path, config.group_regex) == ("auto", None, None)
    assert config.sources == ()
    assert config.repository_url == str(tmp_path / ".proctor")


def test_tool_proctor_sets_every_key(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "pyproject.toml": (
                "[tool.proctor]\n"
                'test_path = "src/tests"\ntop-dir = "src"\nframework = "pytest"\n'
                'pytest_args = ["-p", "no:cacheprovider"]\nconcurrency = 3\ntimeout = 5\n'
                'repository = "postgresql://db/x"\nparallel_class = true\n'
            )
        },
    )
    config = load_config(root=tmp_path)
    assert config.test_path == "src/tests"
    assert config.top_dir == "src"
    assert config.framework == "pytest"
    assert config.pytest_args == ("-p", "no:cacheprovider")
    assert config.concurrency == 3
    assert config.timeout == 5.0
    assert config.repository_url == "postgresql://db/x"
    assert config.group_regex == PARALLEL_CLASS_REGEX
    assert config.sources == (f"{tmp_path / 'pyproject.toml'} [tool.proctor]",)


def test_stestr_conf_is_read_and_tool_proctor_wins_over_it(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            ".stestr.conf": "[DEFAULT]\ntest_path=./tests\ntop_dir=./\ngroup_regex=([^.]*)\n",
            "pyproject.toml": '[tool.proctor]\ngroup_regex = "x"\n',
        },
    )
    config = load_config(root=tmp_path)
    assert (config.test_path, config.top_dir, config.framework) == ("./tests", "./", "unittest")
    assert config.group_regex == "x"
    assert config.sources[0] == str(tmp_path / ".stestr.conf")


def test_tool_stestr_is_read_when_there_is_no_stestr_conf(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": '[tool.stestr]\ntest_path = "pkg/tests"\n'})
    config = load_config(root=tmp_path)
    assert (config.test_path, config.framework) == ("pkg/tests", "unittest")


def test_a_pyproject_that_never_names_us_is_not_parsed(tmp_path: Path) -> None:
    # Not our file to judge: other tools read it and say what is wrong with it.
    write(tmp_path, {"pyproject.toml": "[project\nname = 'broken'\n"})
    assert load_config(root=tmp_path).sources == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[tool.proctor\nconcurrency = 2\n", "not valid TOML"),
        ("[tool.proctor]\nworkers = 2\n", "unknown setting 'workers'; known settings: "),
        ('[tool.proctor]\nconcurrency = "2"\n', "concurrency = '2' should be a integer"),
        ("[tool.proctor]\nconcurrency = true\n", "should be a integer"),
        ("[tool.proctor]\nconcurrency = -1\n", "concurrency should be 0 (one per core) or more"),
        ("[tool.proctor]\ntimeout = 0\n", "timeout should be a positive number"),
        ('[tool.proctor]\nframework = "nose"\n', "expected one of auto, unittest, pytest"),
        ("[tool.proctor]\npytest_args = [1]\n", "pytest_args should be a list of strings"),
        ("[tool]\nproctor = 3\n", "expected a table of settings"),
    ],
)
def test_bad_settings_name_the_file_and_the_key(tmp_path: Path, text: str, expected: str) -> None:
    write(tmp_path, {"pyproject.toml": text})
    with pytest.raises(ConfigError) as raised:
        load_config(root=tmp_path)
    assert str(tmp_path / "pyproject.toml") in str(raised.value)
    assert expected in str(raised.value)


def test_a_broken_stestr_conf_is_an_error_naming_it(tmp_path: Path) -> None:
    write(tmp_path, {".stestr.conf": "test_path=./tests\n"})  # no section header
    with pytest.raises(ConfigError, match=r"\.stestr\.conf: cannot be read as an INI file"):
        load_config(root=tmp_path)


def test_a_bad_configuration_stops_proctor_run_with_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, {"pyproject.toml": "[tool.proctor]\nworkers = 2\n"})
    monkeypatch.chdir(tmp_path)
    assert main(["run"]) == 2
    assert "unknown setting 'workers'" in capsys.readouterr().err


def test_the_root_is_the_nearest_directory_with_a_marker(tmp_path: Path) -> None:
    write(tmp_path, {"setup.cfg": "", "pkg/sub/mod.py": ""})
    assert find_root(tmp_path / "pkg" / "sub") == tmp_path
    assert find_project_root(str(tmp_path / "pkg" / "sub")) == os.path.realpath(tmp_path)


def test_the_worker_reads_what_the_command_line_reads(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            ".stestr.conf": "[DEFAULT]\ntest_path=./t\n",
            "pyproject.toml": '[tool.proctor]\npytest_args = ["-x"]\ntimeout = 2\n',
        },
    )
    settings, sources = read_settings(str(tmp_path))
    config = load_config(root=tmp_path)
    assert config == config.override(**settings)
    assert sources == config.sources
