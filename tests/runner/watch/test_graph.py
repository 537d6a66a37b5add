"""The import graph: which test files a change affects."""

from __future__ import annotations

from pathlib import Path

from proctor.runner.watch.graph import ImportGraph, is_test_file


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def names(root: Path, paths: set[Path]) -> set[str]:
    return {p.relative_to(root.resolve()).as_posix() for p in paths}


def project(tmp_path: Path) -> Path:
    write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/core.py": "VALUE = 1\n",
            "pkg/util.py": "from . import core\n",
            "pkg/sub/__init__.py": "",
            "pkg/sub/deep.py": "from ..util import core\n",
            "tests/__init__.py": "",
            "tests/helpers.py": "import pkg.sub.deep\n",
            "tests/test_direct.py": "from pkg import core\n",
            "tests/test_trans.py": "from tests import helpers\n",
            "tests/test_alone.py": "import os, json\n",
            "tests/unit/conftest.py": "import pkg.util\n",
            "tests/unit/test_fixture.py": "def test_x(thing): pass\n",
            "script.py": "import pkg.core\n",
            ".venv/lib/test_ignored.py": "import pkg.core\n",
        },
    )
    return tmp_path


def test_direct_and_transitive_importers_are_affected(tmp_path: Path) -> None:
    root = project(tmp_path)
    graph = ImportGraph(root)
    hit = graph.affected_tests([root / "pkg/core.py"])
    assert names(root, hit) == {
        "tests/test_direct.py",
        "tests/test_trans.py",
        "tests/unit/test_fixture.py",
    }


def test_a_leaf_change_affects_only_its_importers(tmp_path: Path) -> None:
    root = project(tmp_path)
    graph = ImportGraph(root)
    assert names(root, graph.affected_tests([root / "tests/helpers.py"])) == {"tests/test_trans.py"}
    assert names(root, graph.affected_tests([root / "tests/test_alone.py"])) == {
        "tests/test_alone.py"
    }


def test_conftest_affects_every_file_under_its_directory(tmp_path: Path) -> None:
    root = project(tmp_path)
    graph = ImportGraph(root)
    assert names(root, graph.affected_tests([root / "tests/unit/conftest.py"])) == {
        "tests/unit/test_fixture.py"
    }
    # and what conftest imports reaches them through it
    assert "tests/unit/test_fixture.py" in names(root, graph.affected_tests([root / "pkg/util.py"]))


def test_package_init_is_imported_by_its_modules_users(tmp_path: Path) -> None:
    root = project(tmp_path)
    graph = ImportGraph(root)
    hit = names(root, graph.affected_tests([root / "pkg/sub/__init__.py"]))
    assert hit == {"tests/test_trans.py"}


def test_ignored_directories_are_not_scanned(tmp_path: Path) -> None:
    root = project(tmp_path)
    graph = ImportGraph(root)
    assert not any(".venv" in p.parts for p in graph.files)


def test_a_deleted_module_affects_its_former_importers(tmp_path: Path) -> None:
    root = project(tmp_path)
    graph = ImportGraph(root)
    (root / "tests/helpers.py").unlink()
    assert names(root, graph.update([root / "tests/helpers.py"])) == {"tests/test_trans.py"}
    # the graph no longer holds it
    assert root.resolve() / "tests/helpers.py" not in graph.files


def test_a_new_import_counts_after_update(tmp_path: Path) -> None:
    root = project(tmp_path)
    graph = ImportGraph(root)
    write(root, {"tests/test_alone.py": "import pkg.core\n"})
    assert "tests/test_alone.py" in names(root, graph.update([root / "tests/test_alone.py"]))
    assert "tests/test_alone.py" in names(root, graph.affected_tests([root / "pkg/core.py"]))


def test_a_new_test_file_is_affected_by_itself(tmp_path: Path) -> None:
    root = project(tmp_path)
    graph = ImportGraph(root)
    write(root, {"tests/test_new.py": "import pkg.util\n"})
    assert names(root, graph.update([root / "tests/test_new.py"])) == {"tests/test_new.py"}


def test_a_syntax_error_keeps_the_file_affected(tmp_path: Path) -> None:
    root = project(tmp_path)
    graph = ImportGraph(root)
    write(root, {"pkg/core.py": "VALUE = (\n"})
    hit = names(root, graph.update([root / "pkg/core.py"]))
    assert "tests/test_direct.py" in hit  # through the graph as it was


def test_dynamic_imports_in_a_test_make_it_always_affected(tmp_path: Path) -> None:
    root = project(tmp_path)
    write(root, {"tests/test_dyn.py": "import importlib\nm = importlib.import_module('x')\n"})
    graph = ImportGraph(root)
    assert "tests/test_dyn.py" in names(root, graph.affected_tests([root / "script.py"]))


def test_pytest_plugins_strings_are_imports(tmp_path: Path) -> None:
    root = project(tmp_path)
    write(
        root,
        {
            "tests/plug/conftest.py": "pytest_plugins = ['tests.fixtures_mod']\n",
            "tests/fixtures_mod.py": "",
            "tests/plug/test_p.py": "",
        },
    )
    graph = ImportGraph(root)
    hit = names(root, graph.affected_tests([root / "tests/fixtures_mod.py"]))
    assert hit == {"tests/plug/test_p.py"}


def test_rootdir_style_imports_from_the_test_directory(tmp_path: Path) -> None:
    write(
        tmp_path,
        {"t/helper_mod.py": "", "t/test_h.py": "import helper_mod\n", "src/lib/__init__.py": ""},
    )
    write(tmp_path, {"t/test_src.py": "import lib\n"})
    graph = ImportGraph(tmp_path)
    assert names(tmp_path, graph.affected_tests([tmp_path / "t/helper_mod.py"])) == {"t/test_h.py"}
    assert names(tmp_path, graph.affected_tests([tmp_path / "src/lib/__init__.py"])) == {
        "t/test_src.py"
    }


def test_parses_are_cached_by_stamp(tmp_path: Path) -> None:
    root = project(tmp_path)
    graph = ImportGraph(root)
    before = dict(graph._parsed)
    graph.refresh()
    assert all(graph._parsed[p] is before[p] for p in before)


def test_is_test_file() -> None:
    assert is_test_file(Path("test_a.py"))
    assert is_test_file(Path("a_test.py"))
    assert is_test_file(Path("tests.py"))  # unittest's test*.py
    assert not is_test_file(Path("helpers.py"))
    assert not is_test_file(Path("test_a.pyc"))
