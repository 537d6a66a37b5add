"""Project configuration: where each setting comes from, and what is refused."""

from __future__ import annotations

import os
import subprocess
import sys
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


@pytest.mark.parametrize("marker", ["pytest.ini", ".pytest.ini", "tox.ini", ".git"])
def test_pytests_ini_files_and_a_git_top_are_roots_too(tmp_path: Path, marker: str) -> None:
    """A pytest project with only its ini file is its own root, not the first directory
    above it holding a marker (here a repository left higher up)."""
    write(tmp_path, {".proctor/repository.sqlite": "", f"proj/{marker}": "", "proj/t/m.py": ""})
    assert find_project_root(str(tmp_path / "proj" / "t")) == os.path.realpath(tmp_path / "proj")


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


# -- .stestr.conf paths are expanded as stestr's shell expands them ------------------

SHELL_CASES = [
    "${OS_TEST_PATH:-./project/tests/unit}",
    "$SET/b",
    "${SET}c",
    "${EMPTY:-d}",
    "${EMPTY-d}",
    "${UNSET-d}",
    "${SET:-d}",
    "${UNSET:-${SET:-q}}/t",
    r"\$SET",
    "a$",
    "$1x",
    "${#SET}",
    "${SET:+plus}",
    "${EMPTY:+plus}",
    "${EMPTY+plus}",
    "${UNSET:=assigned}/$UNSET",
    '"${UNSET:-"quoted"}"',
    "${SPACED}",
    "x\\y",
    "$SET.$SET",
    "${UNSET:-'single'}",
    "${UNSET:-\\}}",
    "${UNSET:-a}b}",
]


@pytest.mark.parametrize("text", SHELL_CASES)
def test_expansion_is_what_sh_makes_of_the_value_between_double_quotes(text: str) -> None:
    from proctor.settings import expand_shell

    env = {"SET": "alpha", "EMPTY": "", "SPACED": "/x y/z", "PATH": os.environ.get("PATH", "")}
    shell = subprocess.run(
        ["sh", "-c", f'printf %s "{text}"'], env=env, capture_output=True, text=True, check=True
    )
    assert expand_shell(text, "here", env) == shell.stdout


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$(echo tests)", r"\$\(\.\.\.\) is not supported"),
        ("`echo tests`", "command substitution"),
        ("$((1 + 2))", "arithmetic"),
        ("${OS_TEST_PATH%/unit}", "is not supported"),
        ("${OS_TEST_PATH:-./tests", "missing '}'"),
        ("${OS_TEST_PATH:?set OS_TEST_PATH first}", "OS_TEST_PATH: set OS_TEST_PATH first"),
        ("${OS_TEST_PATH}", "expands to nothing"),
    ],
)
def test_what_cannot_be_expanded_is_an_error_naming_the_file_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, expected: str
) -> None:
    monkeypatch.delenv("OS_TEST_PATH", raising=False)
    write(tmp_path, {".stestr.conf": f"[DEFAULT]\ntest_path={text}\n"})
    with pytest.raises(ConfigError, match=expected) as raised:
        load_config(root=tmp_path)
    assert f"{tmp_path / '.stestr.conf'}: test_path" in str(raised.value)


def test_the_environment_overrides_the_default_in_stestr_conf_and_tool_stestr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = "[DEFAULT]\ntest_path=${OS_TEST_PATH:-./proj/tests/unit}\ntop_dir=${TOP:-./}\n"
    write(tmp_path / "a", {".stestr.conf": conf})
    write(
        tmp_path / "b",
        {"pyproject.toml": '[tool.stestr]\ntest_path = "${OS_TEST_PATH:-./proj/tests/unit}"\n'},
    )
    monkeypatch.delenv("OS_TEST_PATH", raising=False)
    monkeypatch.delenv("TOP", raising=False)
    for root in (tmp_path / "a", tmp_path / "b"):
        assert load_config(root=root).test_path == "./proj/tests/unit"
    assert load_config(root=tmp_path / "a").top_dir == "./"
    monkeypatch.setenv("OS_TEST_PATH", "./proj/tests/functional")
    for root in (tmp_path / "a", tmp_path / "b"):
        assert load_config(root=root).test_path == "./proj/tests/functional"


ENV_PROJECT = {
    ".stestr.conf": "[DEFAULT]\ntest_path=${OS_TEST_PATH:-./proj/tests/unit}\ntop_dir=./\n",
    "proj/__init__.py": "",
    "proj/tests/__init__.py": "",
    "proj/tests/unit/__init__.py": "",
    "proj/tests/unit/test_u.py": (
        "import unittest\n\nclass U(unittest.TestCase):\n"
        "    def test_a(self): pass\n    def test_b(self): pass\n"
    ),
    "proj/tests/functional/__init__.py": "",
    "proj/tests/functional/test_f.py": (
        "import unittest\n\nclass F(unittest.TestCase):\n    def test_c(self): pass\n"
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("os_test_path", [None, "./proj/tests/functional"])
def test_the_same_tests_as_stestr_are_selected_from_an_openstack_style_conf(
    tmp_path: Path, os_test_path: str | None
) -> None:
    from tests.runner.projects import worker_env

    root = write(tmp_path, ENV_PROJECT)
    env = worker_env({"OS_TEST_PATH": os_test_path} if os_test_path else None)
    if os_test_path is None:
        env.pop("OS_TEST_PATH", None)

    def listed(*command: str) -> list[str]:
        done = subprocess.run(
            [sys.executable, "-m", *command], cwd=root, env=env, capture_output=True, timeout=120
        )
        assert done.returncode == 0, done.stderr.decode()
        return sorted(done.stdout.decode().split())

    listed("stestr", "init")
    theirs = listed("stestr", "list")
    assert theirs == listed("proctor", "run", "--list", "--no-store")
    expected = "functional" if os_test_path else "unit"
    assert theirs
    assert all(f".{expected}." in test_id for test_id in theirs)


# -- a bad group_regex is a usage error wherever it comes from ----------------------


@pytest.mark.parametrize(
    ("files", "args", "where"),
    [
        ({".stestr.conf": "[DEFAULT]\ntest_path=./t\ngroup_regex=([^.]*\n"}, [], ".stestr.conf"),
        ({"pyproject.toml": '[tool.proctor]\ngroup_regex = "a[b"\n'}, [], "[tool.proctor]"),
        ({"setup.py": ""}, ["--group-regex", "(?P<x"], "--group-regex"),
    ],
)
def test_a_bad_group_regex_is_exit_2_naming_where_it_came_from(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    files: dict[str, str],
    args: list[str],
    where: str,
) -> None:
    write(tmp_path, files)
    monkeypatch.chdir(tmp_path)
    assert main(["run", *args]) == 2
    err = capsys.readouterr().err
    assert where in err
    assert "group_regex" in err or "--group-regex" in err
    assert "is not a valid regular expression" in err
    assert "column" in err
    assert "Traceback" not in err
    assert not (tmp_path / ".proctor").exists()  # no run was begun, so none is left interrupted
