"""What the commands are given rather than build: the backend factory.

``proctor`` runs with the defaults; a test gives its own through click's
context object: ``main(["run"], obj=CliDeps(backend_factory=fake))`` or
``CliRunner().invoke(cli, ["run"], obj=CliDeps(...))``.
"""

from __future__ import annotations

from dataclasses import dataclass

import click

from proctor.cli.run_setup import BackendFactory, default_backend_factory

__all__ = ["CliDeps", "current_deps"]


@dataclass(frozen=True, slots=True)
class CliDeps:
    """The parts a command line run is built from."""

    backend_factory: BackendFactory = default_backend_factory
    """The workers of each run (``proctor run``, ``proctor watch``)."""


def current_deps() -> CliDeps:
    """The :class:`CliDeps` of the command being run (the defaults if none was given)."""
    context = click.get_current_context(silent=True)
    found = context.find_object(CliDeps) if context is not None else None
    return found if found is not None else CliDeps()
