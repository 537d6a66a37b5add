"""pytest's JUnit XML loaded into history under the ids ``proctor run`` gives the
same tests (pytest node ids), so that history joins up."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from proctor.store import open_store
from proctor.wire import junit
from proctor.wire.event import Status


def tree(files: list[str]) -> junit.PytestNodeIds:
    """A resolver over an in-memory project holding ``files``."""

    def listing(folder: str) -> tuple[set[str], set[str]]:
        prefix = folder + "/" if folder else ""
        dirs, names = set(), set()
        for path in files:
            if path.startswith(prefix):
                head, sep, _ = path[len(prefix) :].partition("/")
                (dirs if sep else names).add(head)
        return dirs, names

    return junit.PytestNodeIds(listing)


FILES = [
    "tests/test_x.py",
    "tests/unit/test_y.py",
    "tests/v1.2/test_z.py",
    "src/pkg/mod.py",
    "docs/index.rst",
    "test_top.py",
]


@pytest.mark.parametrize(
    ("classname", "name", "file", "expected"),
    [
        (
            "tests.test_x.TestC",
            "test_y[1.5-a/b::c]",
            None,
            "tests/test_x.py::TestC::test_y[1.5-a/b::c]",
        ),
        ("tests.test_x", "test_f", None, "tests/test_x.py::test_f"),
        ("tests.test_x.TestC.Inner", "test_i", None, "tests/test_x.py::TestC::Inner::test_i"),
        ("tests.unit.test_y", "test_g", None, "tests/unit/test_y.py::test_g"),
        ("tests.v1.2.test_z.T", "test_h", None, "tests/v1.2/test_z.py::T::test_h"),
        ("src.pkg.mod", "pkg.mod.func", None, "src/pkg/mod.py::pkg.mod.func"),
        ("docs.index.rst", "index.rst", None, "docs/index.rst::index.rst"),
        ("test_top", "test_t", None, "test_top.py::test_t"),
        ("tests.test_x.TestC", "test_y", "tests/test_x.py", "tests/test_x.py::TestC::test_y"),
        # No such file: the dotted id, as before (a Java suite, a moved test).
        ("com.example.FooTest", "testBar", None, "com.example.FooTest.testBar"),
        ("tests.test_gone.T", "test_a", None, "tests.test_gone.T.test_a"),
        ("", "lonely", None, "lonely"),
    ],
)
def test_classnames_map_back_to_node_ids(
    classname: str, name: str, file: str | None, expected: str
) -> None:
    assert tree(FILES)(classname, name, file) == expected


def test_split_test_id_and_the_resolver_are_inverse_on_node_ids() -> None:
    ids = tree(FILES)
    for node_id in [
        "tests/test_x.py::TestC::test_y[1.5-a/b::c]",
        "tests/unit/test_y.py::test_g",
        "tests/v1.2/test_z.py::T::test_h",
    ]:
        assert ids(*junit.split_test_id(node_id)) == node_id


PROJECT = {
    "pyproject.toml": """
        [tool.pytest.ini_options]
        addopts = "-p no:cacheprovider"
        """,
    "tests/__init__.py": "",
    "tests/test_x.py": """
        import pytest

        class TestC:
            @pytest.mark.parametrize("p", ["1.5", "a/b", "x::y", "é"])
            def test_y(self, p):
                assert p != "a/b"

            class TestInner:
                def test_i(self):
                    pass

        def test_f():
            pass

        @pytest.mark.skip(reason="not today")
        def test_skipped():
            pass
        """,
    "tests/unit/__init__.py": "",
    "tests/unit/test_deep.py": """
        def test_g():
            assert False, "boom"
        """,
}


def write(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


def env() -> dict[str, str]:
    out = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2] / "src")
    out["PYTHONPATH"] = os.pathsep.join(p for p in (src, out.get("PYTHONPATH", "")) if p)
    for name in ("PYTEST_CURRENT_TEST", "PYTEST_ADDOPTS", "PROCTOR_REPOSITORY"):
        out.pop(name, None)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("family", ["xunit2", "xunit1"])
def test_pytest_junit_loads_under_the_ids_proctor_run_gives(tmp_path: Path, family: str) -> None:
    write(tmp_path, PROJECT)
    report = tmp_path / "junit.xml"
    pytest_run = subprocess.run(
        [sys.executable, "-m", "pytest", f"--junitxml={report}", "-o", f"junit_family={family}"],
        cwd=tmp_path,
        env=env(),
        capture_output=True,
    )
    assert pytest_run.returncode == 1, pytest_run.stdout.decode()
    proctor_run = subprocess.run(
        [sys.executable, "-m", "proctor", "run", "-j", "1"],
        cwd=tmp_path,
        env=env(),
        capture_output=True,
    )
    assert proctor_run.returncode == 1, proctor_run.stderr.decode()
    load = subprocess.run(
        [sys.executable, "-m", "proctor", "load", str(report)],
        cwd=tmp_path,
        env=env(),
        capture_output=True,
    )
    assert load.returncode == 1, load.stderr.decode()
    with open_store(str(tmp_path / ".proctor")) as store:
        ran = {r.test_id: r.status for r in store.records(1)}
        loaded = {r.test_id: r.status for r in store.records(2)}
    assert loaded == ran
    assert ran["tests/test_x.py::TestC::test_y[a/b]"] is Status.FAIL
    assert ran["tests/test_x.py::TestC::TestInner::test_i"] is Status.SUCCESS
    assert ran["tests/unit/test_deep.py::test_g"] is Status.FAIL
    assert len(ran) == 8


@pytest.mark.slow
def test_a_unittest_project_keeps_dotted_ids(tmp_path: Path) -> None:
    """Where ``proctor run`` uses unittest, a JUnit case keeps ``classname.name``."""
    write(
        tmp_path,
        {
            "tests/__init__.py": "",
            "tests/test_u.py": """
                import unittest

                class U(unittest.TestCase):
                    def test_a(self):
                        pass
                """,
        },
    )
    (tmp_path / "setup.cfg").write_text("[metadata]\nname = u\n", encoding="utf-8")
    report = tmp_path / "junit.xml"
    report.write_text(
        '<testsuite name="pytest"><testcase classname="tests.test_u.U" name="test_a"/></testsuite>',
        encoding="utf-8",
    )
    proctor_run = subprocess.run(
        [sys.executable, "-m", "proctor", "run", "-j", "1"],
        cwd=tmp_path,
        env=env(),
        capture_output=True,
    )
    assert proctor_run.returncode == 0, proctor_run.stderr.decode()
    load = subprocess.run(
        [sys.executable, "-m", "proctor", "load", str(report)],
        cwd=tmp_path,
        env=env(),
        capture_output=True,
    )
    assert load.returncode == 0, load.stderr.decode()
    with open_store(str(tmp_path / ".proctor")) as store:
        assert [r.test_id for r in store.records(1)] == ["tests.test_u.U.test_a"]
        assert [r.test_id for r in store.records(2)] == ["tests.test_u.U.test_a"]
