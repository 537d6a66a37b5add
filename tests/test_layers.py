"""The layering of docs/architecture.md, enforced: imports point one way, top to bottom."""

from __future__ import annotations

import ast
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
