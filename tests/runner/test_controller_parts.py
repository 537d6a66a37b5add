"""The controller is composed of parts, not assembled by inheritance (issue 9)."""

from __future__ import annotations

import ast
from pathlib import Path

import proctor.runner
from proctor.runner.controller import Controller
from proctor.runner.debugging import DebugDesk
from proctor.runner.dispatch import Dispatcher
from proctor.runner.early_stop import EarlyStop
from proctor.runner.exit_judge import ExitJudge
from proctor.runner.listing import Listing
from proctor.runner.outlet import Outlet
from proctor.runner.tally import Tally
from proctor.runner.worker_pool import WorkerPool

RUNNER = Path(next(iter(proctor.runner.__path__)))


def test_the_controller_and_its_parts_inherit_nothing() -> None:
    parts = [Controller, WorkerPool, EarlyStop, ExitJudge, Listing, Dispatcher, Tally, Outlet]
    for part in [*parts, DebugDesk]:
        assert part.__mro__ == (part, object), part


def test_no_controller_module_leaves_a_method_to_a_subclass() -> None:
    offenders = [
        f"{path.name}:{node.lineno}"
        for path in sorted(RUNNER.glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Raise) and "NotImplementedError" in ast.unparse(node)
    ]
    assert not offenders
