"""Never stale: a real ``proctor watch`` against a project edited between cycles.

After every edit, what the watch knows (each test's latest outcome, and the
size of its failing set) equals a fresh ``proctor run`` of the project: the
tests it re-ran give the fresh results, and no test it did not re-run changed.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.runner.projects import PYTEST_CONF, UNITTEST_CONF, write_project
from tests.runner.watch.watch_support import WatchProcess, fresh_run

pytestmark = pytest.mark.slow

BASE = {
    "mylib.py": """
        LIMIT = 10

        def double(x):
            return 2 * x

        class Base:
            def kind(self):
                return "base"
    """,
    "deplib.py": """
        from mylib import double

        def quad(x):
            return double(double(x))
    """,
}

UNITTEST_TESTS = {
    "tests/test_calc.py": """
        import unittest
        import mylib

        class Calc(unittest.TestCase):
            def test_double(self):
                self.assertEqual(mylib.double(2), 4)

            def test_limit(self):
                self.assertEqual(mylib.LIMIT, 10)

            def test_gone(self):
                pass
    """,
    "tests/test_dep.py": """
        import unittest
        import deplib

        class Dep(unittest.TestCase):
            def test_quad(self):
                self.assertEqual(deplib.quad(1), 4)
    """,
    "tests/test_shapes.py": """
        import unittest
        from mylib import Base

        class Shape(Base):
            pass

        class Shapes(unittest.TestCase):
            def test_kind(self):
                self.assertEqual(Shape().kind(), "base")
    """,
    "tests/test_other.py": """
        import unittest

        class Other(unittest.TestCase):
            def test_old_name(self):
                pass
    """,
}

PYTEST_TESTS = {
    "tests/conftest.py": """
        import pytest
        import mylib

        @pytest.fixture
        def limit():
            return mylib.LIMIT

        @pytest.fixture
        def offset():
            return 0
    """,
    "tests/test_calc.py": """
        import mylib

        def test_double():
            assert mylib.double(2) == 4

        def test_limit(limit, offset):
            assert limit + offset == 10

        def test_gone():
            pass
    """,
    "tests/test_dep.py": """
        import deplib

        def test_quad():
            assert deplib.quad(1) == 4
    """,
    "tests/test_shapes.py": """
        from mylib import Base

        class Shape(Base):
            pass

        def test_kind():
            assert Shape().kind() == "base"
    """,
    "tests/test_other.py": """
        def test_old_name():
            pass
    """,
}


def edit(root: Path, name: str, text: str | None) -> None:
    path = root / name
    if text is None:
        path.unlink()
    else:
        path.write_text(textwrap.dedent(text))


def replace_in(root: Path, name: str, old: str, new: str) -> None:
    path = root / name
    source = path.read_text()
    assert old in source
    path.write_text(source.replace(old, new))


def check(watch: WatchProcess, root: Path, *, expect_run: bool = True) -> dict[str, str]:
    ran = watch.wait_cycle()
    fresh = fresh_run(root)
    if expect_run:
        assert ran, "\n".join(watch.transcript[-30:])
    for test_id, outcome in ran.items():
        assert fresh.get(test_id) == outcome, (test_id, outcome, fresh)
    known = {i: watch.state[i] for i in fresh if i in watch.state}
    assert known == fresh, "\n".join(watch.transcript[-30:])
    assert watch.failing_now == sum(1 for o in fresh.values() if o != "ok" and o != "skip")
    return ran


EDITS: list[tuple[str, list[tuple[str, str, str | None, str | None]]]] = [
    # (what, [(file, old, new) replacements or (file, None, full text) writes])
    ("changed function body", [("r", "mylib.py", "2 * x", "3 * x")]),
    ("function body restored", [("r", "mylib.py", "3 * x", "2 * x")]),
    ("changed module constant", [("r", "mylib.py", "LIMIT = 10", "LIMIT = 11")]),
    ("changed base class", [("r", "mylib.py", 'return "base"', 'return "other"')]),
    ("dependency edited, not the test", [("r", "deplib.py", "double(double(x))", "double(x)")]),
    ("renamed test", [("r", "tests/test_other.py", "test_old_name", "test_new_name")]),
    ("deleted test", [("r", "tests/test_calc.py", "test_gone", "helper_gone")]),
    (
        "new test file",
        [("w", "tests/test_new.py", None, "import deplib\n\ndef test_new():\n    pass\n")],
    ),
    ("syntax error", [("r", "deplib.py", "def quad(x):", "def quad(x:")]),
    ("syntax error fixed", [("r", "deplib.py", "def quad(x:", "def quad(x):")]),
    ("deleted module", [("d", "deplib.py", None, None)]),
]


def apply(root: Path, changes: list[tuple[str, str, str | None, str | None]]) -> None:
    for kind, name, old, new in changes:
        if kind == "r":
            assert old is not None
            assert new is not None
            replace_in(root, name, old, new)
        elif kind == "w":
            edit(root, name, new)
        else:
            edit(root, name, None)


def unittest_new_file(changes: list[tuple[str, str, str | None, str | None]]) -> list:  # type: ignore[type-arg]
    out = []
    for kind, name, old, new in changes:
        if kind == "w" and new is not None and "def test_new" in new:
            new = (
                "import unittest\nimport deplib\n\n"
                "class New(unittest.TestCase):\n    def test_new(self):\n        pass\n"
            )
        out.append((kind, name, old, new))
    return out


@pytest.mark.parametrize("framework", ["unittest", "pytest"])
def test_watch_results_equal_a_fresh_run_after_each_edit(tmp_path: Path, framework: str) -> None:
    files = dict(BASE)
    if framework == "unittest":
        files.update(UNITTEST_CONF)
        files.update(UNITTEST_TESTS)
    else:
        files.update(PYTEST_CONF)
        files["pyproject.toml"] = '[tool.proctor]\nframework = "pytest"\n'  # the root
        files.update(PYTEST_TESTS)
    root = write_project(tmp_path, files)
    watch = WatchProcess(root)
    try:
        check(watch, root)  # the first run: everything
        for what, changes in EDITS:
            if framework == "unittest":
                changes = unittest_new_file(changes)
            apply(root, changes)
            ran = check(watch, root)
            assert ran, what
        if framework == "pytest":
            replace_in(root, "tests/conftest.py", "return 0", "return 1")  # a fixture
            ran = check(watch, root)
            assert "tests/test_calc.py::test_limit" in ran
            replace_in(root, "mylib.py", "LIMIT = 11", "LIMIT = 10")
            check(watch, root)
    finally:
        watch.stop()
