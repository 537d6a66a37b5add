"""The project's known-bug rules, for the commands that name what explains a
failure (`triage`, `triage failures`, `last`, `run`): ``proctor-rules.toml``
at the project root, the reviewed source of truth, as `proctor rules` reads it.

Without the file nothing of the rules is imported, so `proctor last` costs
what it did before rules existed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

import click

from proctor.cli.repository import RepositoryError

if TYPE_CHECKING:
    from proctor.store.contract import Store
    from proctor.triage.explain import Explainer
    from proctor.triage.rules import Rule

__all__ = ["RULES_FILE", "closed_bugs", "project_explainer", "project_rules"]

RULES_FILE = "proctor-rules.toml"
"""``proctor.triage.rules_file.FILE_NAME``, not imported: that imports the rules."""


def project_rules(*, strict: bool = True) -> list[Rule] | None:
    """The rules of the project's ``proctor-rules.toml``; None when there is no
    such file (or, not ``strict``, when it cannot be read). A rules file that
    cannot be read is an error (:class:`RepositoryError`) when ``strict``,
    else a note on stderr."""
    from proctor.settings import find_project_root

    path = os.path.join(find_project_root(), RULES_FILE)
    if not os.path.isfile(path):
        return None
    from pathlib import Path

    from proctor.triage.rules_file import RulesFileError, read_rules

    try:
        return read_rules(Path(path))
    except RulesFileError as error:
        if strict:
            raise RepositoryError(str(error)) from None
        click.echo(f"note: known-bug rules not applied: {error}", err=True)
        return None


def project_explainer(store: Store, *, strict: bool = True) -> Explainer | None:
    """An :class:`~proctor.triage.explain.Explainer` for the project's rules;
    None when it has none (see :func:`project_rules`)."""
    rules = project_rules(strict=strict)
    if not rules:
        return None
    from proctor.triage.explain import Explainer

    return Explainer(store, rules)


def closed_bugs(store: Store, references: Iterable[str | None]) -> dict[str, int]:
    """Of the bug references given (as rules name them), those that are closed
    ``proctor bug`` records of ``store``, with the time each was closed
    (:mod:`proctor.bugs.regression`). Bug records that cannot be read are a
    note on stderr, not an error: triage still shows its clusters."""
    wanted = {reference for reference in references if reference}
    if not wanted:
        return {}
    from proctor.bugs.errors import BugError
    from proctor.bugs.regression import closing_times
    from proctor.bugs.repository import BugRepository
    from proctor.store.bug_tables import bug_tables

    try:
        return closing_times(BugRepository(bug_tables(store)), wanted)
    except BugError as error:
        click.echo(f"note: bug records not read, closed bugs not checked: {error}", err=True)
        return {}
