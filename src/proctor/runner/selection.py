"""Which of the discovered tests a run runs.

The rules follow stestr's, so an stestr user's habits and files keep working:

* positional *filters* are regular expressions; a test is kept when any of them
  is found in its id (``re.search``); no filters keeps everything;
* an *include list* file adds its lines to the filters; an *exclude list* file
  and ``--exclude-regex`` remove tests any of whose patterns is found in the id;
* a *load list* file names exact ids: only those run;
* ``--failing`` keeps the tests that failed last time.

List files hold one entry per line, parsed by :func:`parse_list` (the worker's
one-shot ``--load-list`` uses the same function): blank lines are ignored, and
a line whose first non-blank character is ``#`` is a comment. A ``#`` anywhere
else in a load list is part of the id (``tests.test_x.P.test(hash#x)``). In an
include or exclude list (patterns), a ``#`` after whitespace also starts a
trailing comment, as stestr's exclude lists write reasons (``regex  # flaky``);
a ``#`` not preceded by whitespace stays in the pattern. (stestr itself treats
no ``#`` in a load list as a comment, and every ``#`` in an include or exclude
list as one, which makes ids containing ``#`` unusable there.) A list line that
is an exact id matches that id literally too, so ids with brackets or
parentheses (pytest parameters, testscenarios) can be listed as they are. A
line that is not a valid regular expression is an error naming the file, the
line and the column (stestr exits 5 with "Invalid regex"; matching nothing in
silence would quietly run or skip the wrong tests); escape it, or name exact
ids in a load list.

The result keeps discovery order; reordering is the scheduler's job.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Selected", "Selection", "SelectionError", "parse_list", "read_id_file", "select"]


class SelectionError(ValueError):
    """A selection option that cannot be used (bad regex, unreadable file)."""


@dataclass(frozen=True, slots=True)
class Selection:
    """The selection options of one run."""

    filters: tuple[str, ...] = ()
    exclude_regex: tuple[str, ...] = ()
    include_list: Path | None = None
    exclude_list: Path | None = None
    load_list: Path | None = None
    failing: bool = False

    @property
    def narrows(self) -> bool:
        """Whether any option removes tests (a partial run)."""
        return bool(
            self.filters
            or self.exclude_regex
            or self.include_list
            or self.exclude_list
            or self.load_list
            or self.failing
        )


@dataclass(frozen=True, slots=True)
class Selected:
    """The tests chosen, in discovery order, and what could not be found."""

    ids: list[str]
    missing: list[str]
    """Ids named by the load list or the failing set that were not discovered."""
    named: list[str]
    """The ids the load list (or else the failing set) named, in its order."""


def parse_list(text: str, *, patterns: bool = False) -> list[str]:
    """The entries of a list file's text, in order (see the module docstring).

    ``patterns=False`` (a load list: ids): only whole-line comments. ``True``
    (an include or exclude list): a ``#`` after whitespace starts a comment too.
    """
    entries = []
    for line in text.splitlines():
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        if patterns:
            comment = _TRAILING_COMMENT.search(entry)
            if comment is not None:
                entry = entry[: comment.start()].rstrip()
        entries.append(entry)
    return entries


_TRAILING_COMMENT = re.compile(r"\s#")


def read_id_file(path: Path | str, *, patterns: bool = False) -> list[str]:
    """The entries of a list file (:func:`parse_list`); :class:`SelectionError` if unreadable."""
    return parse_list(_read_text(path), patterns=patterns)


def _read_text(path: Path | str) -> str:
    try:
        with open(path, encoding="utf-8") as source:
            return source.read()
    except OSError as error:
        raise SelectionError(f"cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise SelectionError(f"{path} is not UTF-8 text: {error}") from None


def _pattern_file(path: Path) -> _Matcher:
    """The matcher of an include or exclude list; a line that is not a regex is an
    error naming the file, line and column."""
    text = _read_text(path)
    patterns = []
    for number, line in enumerate(text.splitlines(), 1):
        entries = parse_list(line, patterns=True)
        if not entries:
            continue
        pattern = entries[0]
        try:
            re.compile(pattern)
        except re.error as error:
            column = line.index(pattern) + (error.pos or 0) + 1
            raise SelectionError(
                f"{path}:{number}:{column}: {pattern!r} is not a regex: {error.msg}; "
                "escape it (\\[ \\( \\.) to match it literally, or name exact ids "
                "with --load-list"
            ) from None
        patterns.append(pattern)
    return _Matcher(patterns, str(path))


class _Matcher:
    """Patterns that each match by ``re.search`` or, being the id itself, literally."""

    def __init__(self, patterns: Iterable[str], where: str) -> None:
        self._regexes: list[re.Pattern[str]] = []
        self._literals: set[str] = set()
        for pattern in patterns:
            self._literals.add(pattern)
            try:
                self._regexes.append(re.compile(pattern))
            except re.error as error:
                at = f" (at column {error.pos + 1})" if error.pos is not None else ""
                raise SelectionError(
                    f"{where}: {pattern!r} is not a regex: {error.msg}{at}"
                ) from None

    def __bool__(self) -> bool:
        return bool(self._literals)

    def matches(self, test_id: str) -> bool:
        if test_id in self._literals:
            return True
        return any(regex.search(test_id) for regex in self._regexes)


def select(
    discovered: Sequence[str],
    selection: Selection,
    failing: Sequence[str] = (),
) -> Selected:
    """Apply ``selection`` to the ``discovered`` ids (``failing``: the failing set)."""
    if not selection.narrows:
        return Selected(list(discovered), [], [])  # the usual run: nothing to match
    include = _Matcher(selection.filters, "filter")
    listed_include = _pattern_file(selection.include_list) if selection.include_list else None
    exclude = _Matcher(selection.exclude_regex, "--exclude-regex")
    listed_exclude = _pattern_file(selection.exclude_list) if selection.exclude_list else None
    wanted: set[str] | None = None
    named: list[str] = []
    if selection.load_list is not None:
        named = read_id_file(selection.load_list)
        wanted = set(named)
    if selection.failing:
        failing_set = set(failing)
        wanted = failing_set if wanted is None else wanted & failing_set
        if selection.load_list is None:
            named = list(failing)
    has_include = bool(include) or listed_include is not None
    ids = []
    for test_id in discovered:
        if wanted is not None and test_id not in wanted:
            continue
        if has_include and not (
            include.matches(test_id)
            or (listed_include is not None and listed_include.matches(test_id))
        ):
            continue
        if exclude.matches(test_id) or (
            listed_exclude is not None and listed_exclude.matches(test_id)
        ):
            continue
        ids.append(test_id)
    known = set(discovered)
    missing = [test_id for test_id in dict.fromkeys(named) if test_id not in known]
    return Selected(ids, missing, named)
