"""``proctor init``: write a starting ``[tool.proctor]`` table for a project.

It looks at the project to fill the table in: an ``.stestr.conf`` (then the
project is unittest and Proctor already reads its settings, so the table only
says so), pytest configuration or pytest-style tests, unittest ``TestCase``
classes, and the usual test directories. The table is appended to
``pyproject.toml``, leaving every byte already there as it was (no TOML
round-trip that could reformat the file), or written to a new
``pyproject.toml``. An existing ``[tool.proctor]`` is never overwritten.

Exit status: 0 written (or printed with ``--print``); 1 the project already has
a configuration; 2 the existing pyproject.toml is not valid TOML.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from proctor.config import find_root
from proctor.exitcode import ExitCode
from proctor.settings import pytest_configuration

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = ["Detected", "detect", "init", "render_table"]

_TEST_DIRS = ("tests", "test", "testing")
_SKIP_DIRS = {".git", ".venv", "venv", ".tox", "node_modules", "build", "dist", "__pycache__"}
_PYTEST_HINTS = re.compile(rb"^\s*(import pytest|from pytest|@pytest\.)", re.M)
_UNITTEST_HINTS = re.compile(
    rb"\b(unittest|testtools|testscenarios|testresources)\b.*TestCase|\(\s*(unittest\.)?TestCase\s*\)"
)


@dataclass(frozen=True, slots=True)
class Detected:
    """What ``proctor init`` found out about a project."""

    framework: str
    test_path: str | None
    stestr_conf: bool
    reasons: tuple[str, ...]


def _test_files(root: Path, limit: int = 200) -> list[Path]:
    found: list[Path] = []
    for path in sorted(root.rglob("test*.py")):
        if any(
            part in _SKIP_DIRS or part.startswith(".") for part in path.relative_to(root).parts[:-1]
        ):
            continue
        found.append(path)
        if len(found) >= limit:
            break
    return found


def _test_directory(root: Path, files: list[Path]) -> str | None:
    """The directory that holds the project's tests: the deepest one holding all
    the test files found (not the first file's directory, which may be a
    sandbox or data folder inside the tests that sorts before the rest)."""
    common = os.path.commonpath([str(path.parent.relative_to(root)) for path in files])
    return common or None


def detect(root: Path) -> Detected:
    """Work out the framework and test directory of the project at ``root``.

    pytest configuration is what a worker's ``framework = auto`` looks for too
    (:func:`proctor.settings.pytest_configuration`), so the two agree.
    """
    reasons: list[str] = []
    test_path = next((name for name in _TEST_DIRS if (root / name).is_dir()), None)
    if (root / ".stestr.conf").is_file():
        reasons.append(".stestr.conf exists (its test_path, top_dir and group_regex are used)")
        return Detected("unittest", None, True, tuple(reasons))
    files = _test_files(root)
    pytest_files = unittest_files = 0
    for path in files:
        try:
            head = path.read_bytes()[:65536]
        except OSError:
            continue
        if _PYTEST_HINTS.search(head) or (
            re.search(rb"^def test_", head, re.M) and not _UNITTEST_HINTS.search(head)
        ):
            pytest_files += 1
        elif _UNITTEST_HINTS.search(head):
            unittest_files += 1
    if test_path is None and files:
        test_path = _test_directory(root, files)
    configured = pytest_configuration(root, test_path)
    if configured:
        reasons.append(configured)
        framework = "pytest"
    elif pytest_files:
        reasons.append(f"{pytest_files} test files use pytest style")
        framework = "pytest"
    elif unittest_files:
        reasons.append(f"{unittest_files} test files define unittest TestCase classes")
        framework = "unittest"
    else:
        reasons.append("no tests found yet; unittest discovery is the default")
        framework = "unittest"
    return Detected(framework, test_path, False, tuple(reasons))


def render_table(found: Detected) -> str:
    """The ``[tool.proctor]`` table for what was detected."""
    lines = [
        "[tool.proctor]",
        "# Written by `proctor init`; `proctor run --help` explains each setting.",
    ]
    lines.append(f'framework = "{found.framework}"')
    if found.stestr_conf:
        lines.append("# test_path, top_dir and group_regex are read from .stestr.conf.")
    elif found.framework == "unittest":
        lines.append(f'test_path = "{found.test_path or "."}"')
        lines.append('top_dir = "."')
    else:
        args = f'"{found.test_path}"' if found.test_path else ""
        lines.append(
            f"# pytest_args = [{args}]  # arguments for pytest (default: its own configuration)"
        )
    lines += [
        "# concurrency = 0  # workers; 0 means one per core (the default)",
        "# timeout = 300  # seconds before a test is failed with every thread's stack",
        "# parallel_class = true  # keep each class's tests on one worker, in order",
        '# repository = ".proctor"  # where runs are kept: a directory or a postgresql:// URL',
    ]
    return "\n".join(lines) + "\n"


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--framework", type=click.Choice(["unittest", "pytest"]), help="Do not detect: use this."
)
@click.option("--print", "print_only", is_flag=True, help="Print the table instead of writing it.")
def init(framework: str | None, print_only: bool) -> int:
    """Write a starting [tool.proctor] configuration into pyproject.toml.

    Detects unittest or pytest and the test directory; an .stestr.conf is
    kept and used as it is. Refuses to touch an existing [tool.proctor].
    """
    root = find_root()
    pyproject_path = root / "pyproject.toml"
    original = pyproject_path.read_bytes() if pyproject_path.is_file() else None
    parsed: dict[str, object] = {}
    if original is not None:
        try:
            parsed = tomllib.loads(original.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            click.echo(f"{pyproject_path} is not valid TOML ({error}); fix it first.", err=True)
            return ExitCode.ERROR
        tool = parsed.get("tool")
        if isinstance(tool, dict) and "proctor" in tool:
            click.echo(f"{pyproject_path} already has [tool.proctor]; edit it there.", err=True)
            return ExitCode.FAILED
    found = detect(root)
    if framework is not None:
        found = Detected(
            framework, found.test_path, found.stestr_conf, (f"--framework {framework}",)
        )
    table = render_table(found)
    if print_only:
        click.echo(table, nl=False)
        return ExitCode.OK
    if original is None:
        pyproject_path.write_text(table, encoding="utf-8")
        where = f"Created {pyproject_path}"
    else:
        separator = (
            b""
            if not original or original.endswith(b"\n\n")
            else (b"\n" if original.endswith(b"\n") else b"\n\n")
        )
        pyproject_path.write_bytes(original + separator + table.encode("utf-8"))
        where = f"Added [tool.proctor] to {pyproject_path}"
    click.echo(f"{where} ({found.framework}: {'; '.join(found.reasons)}).")
    click.echo(table, nl=False)
    gitignore = root / ".gitignore"
    if gitignore.is_file() and ".proctor" not in gitignore.read_text(
        encoding="utf-8", errors="replace"
    ):
        click.echo("Runs are kept in .proctor/; you may want it in .gitignore.")
    click.echo("Next: proctor run")
    return ExitCode.OK
