"""Cycle plans: test files and filters as id regexes."""

from __future__ import annotations

import re
from pathlib import Path

from proctor.runner.watch.plan import WatchFilters, file_pattern, plan_cycle

ROOT = Path("/p")
IDS = [
    "tests/test_a.py::test_one",
    "tests/test_a.py::TestC::test_two[x.y]",
    "tests/test_a.py",
    "tests/test_ab.py::test_other",
    "tests.test_a.C.test_one",
    "tests.test_ab.C.test_one",
    "unittest.loader._FailedTest.tests.test_a",
    "unittest.loader._FailedTest.tests.test_ab",
    "tests.test_b.C.test_fails",
]


def chosen(filters: tuple[str, ...]) -> list[str]:
    compiled = [re.compile(f) for f in filters]
    return [i for i in IDS if any(c.search(i) for c in compiled)]


def test_a_file_pattern_matches_its_ids_and_no_others() -> None:
    pattern = file_pattern(ROOT / "tests/test_a.py", ROOT)
    assert chosen((pattern,)) == [
        "tests/test_a.py::test_one",
        "tests/test_a.py::TestC::test_two[x.y]",
        "tests/test_a.py",
        "tests.test_a.C.test_one",
        "unittest.loader._FailedTest.tests.test_a",
    ]


def test_unittest_ids_under_a_top_dir() -> None:
    pattern = file_pattern(ROOT / "tests/test_a.py", ROOT, [ROOT / "tests"])
    assert re.search(pattern, "test_a.C.test_one")
    assert re.search(pattern, "unittest.loader._FailedTest.test_a")


def test_no_files_means_everything() -> None:
    plan = plan_cycle("start", None, [], ROOT, WatchFilters())
    assert plan.everything
    assert not plan.filters
    assert not plan.empty


def test_failing_ids_join_the_affected_files_exactly() -> None:
    plan = plan_cycle(
        "x", [ROOT / "tests/test_ab.py"], ["tests.test_b.C.test_fails"], ROOT, WatchFilters()
    )
    assert chosen(plan.filters) == [
        "tests/test_ab.py::test_other",
        "tests.test_ab.C.test_one",
        "unittest.loader._FailedTest.tests.test_ab",
        "tests.test_b.C.test_fails",
    ]
    assert plan.failing == ("tests.test_b.C.test_fails",)


def test_nothing_affected_and_nothing_failing_is_empty() -> None:
    assert plan_cycle("x", [], [], ROOT, WatchFilters()).empty


def test_failing_only() -> None:
    plan = plan_cycle(
        "x",
        [ROOT / "tests/test_a.py"],
        ["tests.test_b.C.test_fails"],
        ROOT,
        WatchFilters(failing_only=True),
    )
    assert chosen(plan.filters) == ["tests.test_b.C.test_fails"]


def test_test_regex_narrows_every_alternative() -> None:
    plan = plan_cycle("x", None, [], ROOT, WatchFilters(test_regex="test_one"))
    assert not plan.everything
    assert chosen(plan.filters) == [
        "tests/test_a.py::test_one",
        "tests.test_a.C.test_one",
        "tests.test_ab.C.test_one",
    ]
    plan = plan_cycle("x", [ROOT / "tests/test_ab.py"], [], ROOT, WatchFilters(test_regex="one"))
    assert chosen(plan.filters) == ["tests.test_ab.C.test_one"]


def test_file_regex_keeps_matching_files() -> None:
    files = [ROOT / "tests/test_a.py", ROOT / "tests/test_ab.py"]
    plan = plan_cycle("x", files, [], ROOT, WatchFilters(file_regex="test_ab"))
    assert plan.files == (ROOT / "tests/test_ab.py",)


def test_base_filters_bound_every_cycle() -> None:
    plan = plan_cycle("start", None, [], ROOT, WatchFilters(base=("test_ab", "test_b")))
    assert chosen(plan.filters) == [
        "tests/test_ab.py::test_other",
        "tests.test_ab.C.test_one",
        "unittest.loader._FailedTest.tests.test_ab",
        "tests.test_b.C.test_fails",
    ]


def test_failing_ids_outside_the_test_regex_are_not_expected() -> None:
    plan = plan_cycle(
        "x", None, ["tests.test_b.C.test_fails"], ROOT, WatchFilters(test_regex="test_one")
    )
    assert plan.failing == ()
    assert "tests.test_b.C.test_fails" not in chosen(plan.filters)


def test_a_cycle_names_the_files_its_workers_need_to_collect(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    for name in ("test_a.py", "test_b.py", "test_c.py"):
        (tmp_path / "tests" / name).write_text("")
    plan = plan_cycle(
        "edit",
        [tmp_path / "tests/test_a.py"],
        ["tests/test_gone.py::test_x", "tests.test_b.C.test_one"],
        tmp_path,
        WatchFilters(),
    )
    assert plan.only == (  # the failing ids' files too (a deleted one as well)
        tmp_path / "tests/test_a.py",
        tmp_path / "tests/test_b.py",
        tmp_path / "tests/test_gone.py",
    )
    # unittest's id for a module that failed to import names it too
    failed = "unittest.loader._FailedTest.tests.test_c"
    assert plan_cycle("edit", [], [failed], tmp_path, WatchFilters()).only == (
        tmp_path / "tests/test_c.py",
    )


def test_a_cycle_whose_ids_could_be_anywhere_collects_everything(tmp_path: Path) -> None:
    unknown = plan_cycle(
        "edit", [tmp_path / "t/test_a.py"], ["gone.mod.C.t"], tmp_path, WatchFilters()
    )
    assert unknown.filters
    assert unknown.only == ()
    everything = plan_cycle("start", None, [], tmp_path, WatchFilters())
    assert everything.everything
    assert everything.only == ()
    by_test_regex = plan_cycle("t", None, [], tmp_path, WatchFilters(test_regex="one"))
    assert by_test_regex.filters
    assert by_test_regex.only == ()
