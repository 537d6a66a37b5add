"""pytest node ids back from pytest's JUnit XML, using the files of the project.

pytest's JUnit writer turns the node id ``tests/test_x.py::TestC::test_y[p]``
into classname ``tests.test_x.TestC`` and name ``test_y[p]``: the path loses
its slashes and its ``.py``, so ``classname.name`` is not the id ``proctor run``
gives the same test in a pytest project, and history would not join up.
:class:`PytestNodeIds` maps a (classname, name) pair back to the node id by
finding, under the project root, the file the leading parts of the classname
name (directories and file names may hold dots themselves). A ``file``
attribute (pytest's ``xunit1`` family writes one) names the file directly.
A test case whose file cannot be found keeps ``classname.name``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

__all__ = ["Listing", "PytestNodeIds", "dotted_id"]

Listing = Callable[[str], tuple[Collection[str], Collection[str]]]
"""(subdirectory names, file names) of a directory given relative to the
project root (``""`` for the root, ``tests/unit`` below it); empty when it
cannot be read. The wire layer does no I/O: the caller lists."""


def dotted_id(classname: str, name: str, file: str | None = None) -> str:
    """The id of a JUnit test case as a dotted Python id: ``classname.name``."""
    return f"{classname}.{name}" if classname and name else name or classname or "unnamed"


class PytestNodeIds:
    """Maps JUnit (classname, name) pairs to pytest node ids of a project whose
    directories ``listing`` reads.

    Called with ``(classname, name, file)``, as :class:`~proctor.wire.junit.JUnitDecoder`
    does; ``file`` is the test case's ``file`` attribute, or None.
    """

    def __init__(self, listing: Listing) -> None:
        self._list = listing
        self._prefixes: dict[tuple[str, str | None], str | None] = {}
        self._listings: dict[str, tuple[Collection[str], Collection[str]]] = {}

    def __call__(self, classname: str, name: str, file: str | None = None) -> str:
        key = (classname, file)
        if key in self._prefixes:
            prefix = self._prefixes[key]
        else:
            prefix = self._prefixes[key] = self._prefix(classname, file)
        if prefix is None or not name:
            return dotted_id(classname, name)
        return f"{prefix}::{name}"

    def _prefix(self, classname: str, file: str | None) -> str | None:
        """``path.py::Class::Inner`` for a classname, or None when no file fits."""
        if not classname:
            return None
        parts = classname.split(".")
        if file:
            path = file.replace("\\", "/")
            module = path[:-3] if path.endswith(".py") else path
            dotted = module.replace("/", ".").split(".")
            folder, _, base = path.rpartition("/")
            if parts[: len(dotted)] == dotted and base in self._listing(folder)[1]:
                return "::".join([path, *parts[len(dotted) :]])
        found = self._find("", parts, 0)
        if found is None:
            return None
        path, used = found
        return "::".join([path, *parts[used:]])

    def _listing(self, folder: str) -> tuple[Collection[str], Collection[str]]:
        listing = self._listings.get(folder)
        if listing is None:
            listing = self._listings[folder] = self._list(folder)
        return listing

    def _find(self, folder: str, parts: list[str], at: int) -> tuple[str, int] | None:
        """The file that parts ``at:`` begin with, under ``folder``: (its path
        relative to the root, how many parts it used). Files before directories,
        shorter names before longer ones."""
        dirs, files = self._listing(folder)
        prefix = folder + "/" if folder else ""
        for end in range(at + 1, len(parts) + 1):
            name = ".".join(parts[at:end])
            if name + ".py" in files:
                return prefix + name + ".py", end
            if end == len(parts) and name in files:
                return prefix + name, end  # a non-Python file (a text doctest)
        for end in range(at + 1, len(parts)):
            name = ".".join(parts[at:end])
            if name in dirs:
                found = self._find(prefix + name, parts, end)
                if found is not None:
                    return found
        return None
