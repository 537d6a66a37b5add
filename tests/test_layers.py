"""The layering of docs/architecture.md, enforced: imports point one way, top to bottom."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import proctor

SRC = Path(proctor.__file__).parent

# Lower number = lower layer. A module may import its own layer or lower ones.
RANKS = {
    "wire": 0,
    "exitcode": 0,
    "events": 1,
    "config": 1,
    "settings": 1,
    "store": 2,
    "runner": 3,
    "worker": 3,
    "triage": 4,
    "bugs": 4,
    "cli": 5,
    "web": 5,
    "testing": 5,  # generated inputs for tests and benchmarks; nothing imports it
    "__main__": 5,
}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "proctor" or len(parts) < 2:
        return None
    return parts[1]


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def test_imports_point_down_the_layers() -> None:
    violations = []
    for path in sorted(SRC.rglob("*.py")):
        module = "proctor." + ".".join(path.relative_to(SRC).with_suffix("").parts)
        own = _layer(module)
        if own is None or own == "__init__":
            continue
        assert own in RANKS, f"{module}: layer {own!r} is not in docs/architecture.md"
        for line, imported in _imports(path):
            target = _layer(imported)
            if target is None or target == "__init__":
                continue
            if RANKS[target] > RANKS[own]:
                violations.append(f"{path.relative_to(SRC)}:{line} ({own}) imports {imported}")
    assert not violations, "upward imports:\n" + "\n".join(violations)


def test_nothing_of_proctor_imports_the_testing_package() -> None:
    # proctor.testing holds the fakes and generated inputs for tests and benchmarks;
    # a module that needed one would ship test code into a run.
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path.relative_to(SRC).parts[0] == "testing":
            continue
        for line, imported in _imports(path):
            if _layer(imported) == "testing":
                offenders.append(f"{path.relative_to(SRC)}:{line} imports {imported}")
    assert not offenders, "\n".join(offenders)


def test_triage_imports_only_wire_events_config_and_store() -> None:
    # Signatures are computed from records; clusters and flakiness read the
    # store (issue 10), which is given its signer from above (store.signer).
    offenders = []
    for path in sorted((SRC / "triage").glob("*.py")):
        for line, imported in _imports(path):
            target = _layer(imported)
            if target not in (None, "__init__", "wire", "events", "config", "store", "triage"):
                offenders.append(f"triage/{path.name}:{line} imports {imported}")
    assert not offenders, "\n".join(offenders)


def test_the_wire_layer_does_no_io() -> None:
    banned = {"os", "io", "sys", "subprocess", "socket", "select", "pathlib", "tempfile", "shutil"}
    offenders = []
    for path in sorted((SRC / "wire").glob("*.py")):
        for line, imported in _imports(path):
            if imported.split(".")[0] in banned and not (
                path.name == "_v2_format.py" and imported == "os"
            ):
                offenders.append(f"wire/{path.name}:{line} imports {imported}")
    # _v2_format.py reads one environment variable (PROCTOR_PURE_PYTHON) at import; nothing else.
    assert not offenders, "\n".join(offenders)


def test_events_exports_are_pinned() -> None:
    import proctor.events as events

    assert sorted(events.__all__) == events.__all__
    for name in events.__all__:
        assert hasattr(events, name), name


def _module_name(path: Path, root: Path = SRC) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((root.name, *parts))


def _import_graph(root: Path = SRC) -> dict[str, dict[str, int]]:
    """Every module of the package -> the package modules it imports (and a line
    that does it): module-level, function-level and ``TYPE_CHECKING`` imports,
    absolute and relative. ``from package import name`` counts as importing the
    submodule ``package.name`` when there is one, else the package."""
    paths = {_module_name(path, root): path for path in sorted(root.rglob("*.py"))}
    graph: dict[str, dict[str, int]] = {}
    for module, path in paths.items():
        is_package = path.name == "__init__.py"
        edges: dict[str, int] = {}
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = module.split(".")
                    anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    targets.append(submodule if submodule in paths else base)
            for target in targets:
                while target and target not in paths:  # proctor.x.y.attr -> proctor.x.y
                    target = target.rpartition(".")[0]
                if target and target != module:
                    edges.setdefault(target, node.lineno)
        graph[module] = edges
    return graph


def _cycles(graph: dict[str, dict[str, int]]) -> list[tuple[list[str], list[str]]]:
    """The strongly connected components with more than one module (Tarjan), each
    with one cycle through it spelled out."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    cycles = []
    for component in components:
        members = set(component)
        start = component[0]
        # a shortest way back to start, within the component (breadth first)
        previous: dict[str, str] = {}
        frontier = [start]
        while frontier and start not in previous:
            following = []
            for node in frontier:
                for target in sorted(graph[node]):
                    if target in members and target not in previous:
                        previous[target] = node
                        following.append(target)
            frontier = following
        cycle = [start]
        node = previous[start]
        while node != start:
            cycle.append(node)
            node = previous[node]
        cycles.append([start, *reversed(cycle[1:]), start])
    return list(zip(components, cycles, strict=True))


KNOWN_CYCLES: tuple[str, ...] = ()
"""Cycles tolerated: none. (Issue 9 removed the last ones, inside ``proctor.store``:
the in-memory store's failures part is now given the runs it reads, rather than
being a base class that imports its subclass.) A prefix here would excuse the
cycles entirely inside that package."""


def test_no_import_cycles() -> None:
    graph = _import_graph()
    found = []
    for component, cycle in _cycles(graph):
        if any(all(m.startswith(known) for m in component) for known in KNOWN_CYCLES):
            continue
        steps = [f"{a} (line {graph[a][b]}) -> {b}" for a, b in itertools.pairwise(cycle)]
        found.append(f"{', '.join(component)}; for example:\n    " + "\n    ".join(steps))
    assert not found, "import cycles:\n" + "\n".join(f"- {text}" for text in found)


def test_the_cycle_check_finds_and_spells_out_a_cycle() -> None:
    graph = {
        "proctor.a": {"proctor.b": 3},
        "proctor.b": {"proctor.c": 5},
        "proctor.c": {"proctor.a": 7, "proctor.d": 8},
        "proctor.d": {},
    }
    assert _cycles(graph) == [
        (
            ["proctor.a", "proctor.b", "proctor.c"],
            ["proctor.a", "proctor.b", "proctor.c", "proctor.a"],
        )
    ]
    del graph["proctor.c"]["proctor.a"]
    assert _cycles(graph) == []


def test_the_import_graph_sees_function_level_type_checking_and_relative_imports(
    tmp_path: Path,
) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from pkg.sub import b\n")
    (package / "sub" / "__init__.py").write_text("from . import b\n")
    (package / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..a import f\n"
    )
    (package / "sub" / "c.py").write_text("from .b import x\nimport pkg.a\n")
    graph = _import_graph(package)
    assert graph["pkg.a"] == {"pkg.sub.b": 2}
    assert graph["pkg.sub"] == {"pkg.sub.b": 1}
    assert graph["pkg.sub.b"] == {"pkg.a": 3}
    assert graph["pkg.sub.c"] == {"pkg.sub.b": 1, "pkg.a": 2}
    assert [component for component, _ in _cycles(graph)] == [["pkg.a", "pkg.sub.b"]]
