"""What one watch cycle runs: test files and the user's filters, as id regexes.

A cycle is a ``proctor run`` narrowed by positional filters (regexes searched in
each id, any may match), so its results are by construction those of a fresh
``proctor run`` of the same tests. Each test file becomes one regex matching
the ids it can produce: pytest's node ids (``tests/test_a.py::...``, and the
file's own id for a collection error) and unittest's dotted ids under each
possible top-level directory (``tests.test_a.Class.test``, and
``unittest.loader._FailedTest.tests.test_a`` for an import error). The
previously failing tests are matched exactly. The ``t`` key's regex narrows every
alternative (a look-ahead), so it ANDs with the rest, as Jest's does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CyclePlan", "WatchFilters", "file_pattern", "plan_cycle"]


def file_pattern(path: Path, root: Path, top_dirs: Sequence[Path] = ()) -> str:
    """One regex (to be searched) matching every id a test file can give."""
    rel = path.relative_to(root).as_posix()
    alternatives = [re.escape(rel) + r"(?:::|$)"]
    bases = [root, *top_dirs]
    seen: set[str] = set()
    for base in bases:
        try:
            dotted = path.relative_to(base).with_suffix("").as_posix().replace("/", ".")
        except ValueError:
            continue
        if dotted in seen:
            continue
        seen.add(dotted)
        escaped = re.escape(dotted)
        alternatives.append(escaped + r"\.")
        alternatives.append(r"unittest\.loader\._FailedTest\." + escaped + "$")
    return "^(?:" + "|".join(alternatives) + ")"


@dataclass(frozen=True, slots=True)
class WatchFilters:
    """The filters the keys set: ``p`` (file regex), ``t`` (test-id regex), ``f``."""

    file_regex: str | None = None
    test_regex: str | None = None
    failing_only: bool = False
    base: tuple[str, ...] = ()
    """The command line's FILTERs: every cycle stays inside them (any may match)."""

    def lookahead(self) -> str:
        """A prefix that ANDs the base filters and the test regex with a pattern."""
        ahead = ""
        if self.base:
            ahead += "(?=.*(?:" + "|".join(self.base) + "))"
        if self.test_regex is not None:
            ahead += "(?=.*(?:" + self.test_regex + "))"
        return ahead

    def describe(self) -> str:
        parts = []
        if self.failing_only:
            parts.append("failing only")
        if self.file_regex is not None:
            parts.append(f"files /{self.file_regex}/")
        if self.test_regex is not None:
            parts.append(f"tests /{self.test_regex}/")
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class CyclePlan:
    """What a cycle runs: ``filters`` for ``proctor run`` (empty: everything), the
    files and failing ids they came from, and why."""

    reason: str
    filters: tuple[str, ...] = ()
    files: tuple[Path, ...] = ()
    failing: tuple[str, ...] = ()
    everything: bool = False
    scope: tuple[str, ...] = field(default=())
    """Regexes of the ids this cycle stands for (a test they match that the cycle did
    not report no longer exists); empty with :attr:`everything`."""
    only: tuple[Path, ...] = ()
    """The files the workers need to collect for this cycle (its test files and
    those of its failing ids); empty: every file (the ids may be anywhere)."""

    @property
    def empty(self) -> bool:
        return not self.everything and not self.filters


def plan_cycle(
    reason: str,
    files: Iterable[Path] | None,
    failing: Iterable[str],
    root: Path,
    watch_filters: WatchFilters,
    top_dirs: Sequence[Path] = (),
) -> CyclePlan:
    """The cycle for ``files`` (``None``: every test file) and the failing ids.

    With ``failing_only``, only failing ids run. The file regex keeps the files
    whose path (relative to ``root``) it matches, and the failing ids that
    contain a match; the test regex keeps the ids it matches.
    """
    file_re = re.compile(watch_filters.file_regex) if watch_filters.file_regex else None
    failing_ids = sorted(set(failing))
    if file_re is not None:
        failing_ids = [i for i in failing_ids if file_re.search(i.replace(".", "/"))]
    narrowing = [re.compile(p) for p in (*watch_filters.base, watch_filters.test_regex) if p]
    # Only the failing tests this cycle will run count as expected in it (the loop
    # drops an expected one that is not reported: it was deleted or renamed).
    failing_ids = [i for i in failing_ids if all(n.search(i) for n in narrowing)]
    chosen: list[Path] = []
    if not watch_filters.failing_only and files is not None:
        chosen = [
            path
            for path in sorted(set(files))
            if file_re is None or file_re.search(path.relative_to(root).as_posix())
        ]
    ahead = watch_filters.lookahead()
    everything = files is None and not watch_filters.failing_only and file_re is None and not ahead
    if everything:
        return CyclePlan(reason, (), (), tuple(failing_ids), everything=True)
    patterns = [file_pattern(p, root, top_dirs) for p in chosen]
    if files is None and not watch_filters.failing_only and file_re is None:
        patterns = [""]  # every test, narrowed by the test regex below
    exact = ["^" + re.escape(i) + "$" for i in failing_ids]
    scope = tuple(patterns)
    alternatives = patterns + exact
    if ahead and alternatives:
        alternatives = ["^" + ahead + (a[1:] if a.startswith("^") else a) for a in alternatives]
        scope = tuple(alternatives[: len(patterns)])
    only: tuple[Path, ...] = ()
    if patterns != [""]:
        found = [_file_of(i, root, top_dirs) for i in failing_ids]
        if all(path is not None for path in found):
            only = tuple(sorted({*chosen, *(p for p in found if p is not None)}))
    return CyclePlan(
        reason,
        tuple(alternatives),
        tuple(chosen),
        tuple(failing_ids),
        everything=False,
        scope=scope,
        only=only,
    )


def _file_of(test_id: str, root: Path, top_dirs: Sequence[Path]) -> Path | None:
    """The file a test id comes from (None if it cannot be told): pytest's
    ``path.py::...`` (the file need not exist any more), or unittest's dotted id
    (``unittest.loader._FailedTest.`` stripped) of a module under the root,
    ``src/``, ``test_path`` or ``top_dir``."""
    head = test_id.split("::", 1)[0]
    if "::" in test_id or head.endswith(".py"):
        return root / head
    dotted = test_id.removeprefix("unittest.loader._FailedTest.").split("(")[0]
    parts = dotted.split(".")
    for base in (root, *top_dirs):
        for end in range(len(parts), 0, -1):
            candidate = base.joinpath(*parts[:end]).with_suffix(".py")
            if candidate.is_file():
                return candidate
    return None
