"""The repository's copy of the known-bug rules, on every backend."""

from __future__ import annotations

from collections.abc import Callable

from proctor.store import Store
from proctor.store.rules_table import load_rules, replace_rules

ROWS = [
    ("b2", "https://bugs.example.org/2", 'test ~ "x"', "2026-01-02", ""),
    ("a1", "LP#1", 'type = "it\'s \\"quoted\\""', "2026-01-01", "Ann <ann@example.org>"),
]


def test_a_repository_that_never_held_rules_has_none(store: Store) -> None:
    assert load_rules(store) == []


def test_replace_then_load_gives_the_rows_sorted_by_id(store: Store) -> None:
    replace_rules(store, ROWS)
    assert load_rules(store) == sorted(ROWS)
    replace_rules(store, ROWS[:1])
    assert load_rules(store) == ROWS[:1]
    replace_rules(store, [])
    assert load_rules(store) == []


def test_the_rules_survive_reopening(reopen: Callable[[], Store]) -> None:
    first = reopen()
    assert load_rules(first) == []  # reading creates nothing
    replace_rules(first, ROWS)
    first.close()
    assert load_rules(reopen()) == sorted(ROWS)
