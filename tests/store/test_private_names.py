"""No module of the store reaches into another object's private names.

A name with a leading underscore belongs to the object (or module) that
defines it: the SQL store's parts talk through public attributes and methods,
so that each can change its insides alone (issue 9). ``self._x`` and
``cls._x`` are a class using its own; dunder names are the language's. The
named-tuple methods (``_replace``, ``_asdict``, ``_fields``, ``_make``) are
public API spelled with an underscore so as not to clash with field names.
"""

from __future__ import annotations

import ast
from pathlib import Path

import proctor.store

STORE = Path(proctor.store.__file__).parent
NAMED_TUPLE_API = frozenset({"_replace", "_asdict", "_fields", "_make", "_field_defaults"})


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_accesses(source: str) -> list[tuple[int, str]]:
    """(line, expression) of each ``x._name`` where ``x`` is not ``self`` or
    ``cls``, and of each ``from module import _name``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            found += [
                (node.lineno, f"from {node.module} import {alias.name}")
                for alias in node.names
                if _private(alias.name)
            ]
            continue
        if not isinstance(node, ast.Attribute):
            continue
        name = node.attr
        if not _private(name) or name in NAMED_TUPLE_API:
            continue
        if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            continue
        found.append((node.lineno, ast.unparse(node)))
    return found


def test_the_check_finds_what_it_should() -> None:
    source = (
        "self._mine\ncls._ours\nstore._conn\nself._store._q('x')\nx.__class__\n"
        "row._replace(a=1)\nimport os\nos._exit(0)\nfrom m import _hidden, shown\n"
    )
    assert sorted(private_accesses(source)) == [
        (3, "store._conn"),
        (4, "self._store._q"),
        (8, "os._exit"),
        (9, "from m import _hidden"),
    ]


def test_no_store_module_uses_another_objects_private_names() -> None:
    offenders = []
    for path in sorted(STORE.rglob("*.py")):
        for line, expression in private_accesses(path.read_text(encoding="utf-8")):
            offenders.append(f"{path.relative_to(STORE.parent)}:{line}: {expression}")
    assert not offenders, "private names used from outside their object:\n" + "\n".join(offenders)
