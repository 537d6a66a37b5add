"""``proctor rules``: known-bug rules, kept in ``proctor-rules.toml`` and the repository.

``add`` previews a rule against history before saving it; ``list``, ``show``,
``remove``, ``test`` (preview only) and ``sync`` (the file, the reviewed source
of truth, copied into the repository). ``unexplained`` gives the failures no
rule explains, with the classification rate. The logic is in
:mod:`proctor.triage.rules`; this module parses options and prints.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from proctor.cli._show import json_option
from proctor.cli.formats import parse_when
from proctor.cli.printable import printable_id
from proctor.cli.repository import RepositoryError, open_repository, repository_option
from proctor.exitcode import ExitCode

if TYPE_CHECKING:
    from proctor.store.contract import Store
    from proctor.triage.rules import ClusterCount, Preview, Rule, Unexplained
    from proctor.triage.rules_lang import FailureFacts

__all__ = ["rules", "unexplained"]

F = TypeVar("F", bound=Callable[..., object])


def _file_option(function: F) -> F:
    return click.option(
        "--file",
        "rules_file",
        metavar="PATH",
        type=click.Path(dir_okay=False, path_type=Path),
        help="The rules file (default: proctor-rules.toml at the project root).",
    )(function)


def _window_options(function: F) -> F:
    function = click.option(
        "--since",
        metavar="WHEN",
        help="Only failures of runs begun since WHEN (a date, or an age: 12h, 3d, 2w).",
    )(function)
    return click.option(
        "--runs",
        "max_runs",
        type=click.IntRange(min=1),
        default=200,
        show_default=True,
        help="Only failures of the newest N runs.",
    )(function)


def _rules_path(rules_file: Path | None) -> Path:
    if rules_file is not None:
        return rules_file
    from proctor.config import find_root
    from proctor.triage.rules_file import FILE_NAME

    return find_root() / FILE_NAME


def _read(path: Path) -> list[Rule]:
    from proctor.triage.rules_file import RulesFileError, read_rules

    try:
        return read_rules(path)
    except RulesFileError as error:
        raise RepositoryError(str(error)) from None


@contextmanager
def _maybe_repository(repository: str | None) -> Iterator[Store | None]:
    """The repository, or None when there is none yet (the rules file works alone)."""
    from proctor.cli.repository import close_store
    from proctor.cli.repository import repository_url as _url
    from proctor.store.errors import RepositoryNotFound, StoreError
    from proctor.store.opening import open_store

    try:
        store = open_store(_url(repository), create=False)
    except RepositoryNotFound:
        yield None
        return
    except StoreError as error:
        raise RepositoryError(str(error)) from None
    try:
        yield store
    finally:
        close_store(store)


def _sync(store: Store | None, file_rules: Sequence[Rule], quiet: bool = False) -> str:
    """Copy the file's rules into the repository; say what changed."""
    if store is None:
        return "no repository yet: the rules are in the file only"
    from proctor.store.errors import StoreError
    from proctor.triage.rules import StoreRuleBook, differences

    book = StoreRuleBook(store)
    try:
        diff = differences(file_rules, book.load())
        if diff.same:
            return "the repository's copy was already in step"
        book.replace(file_rules)
    except StoreError as error:
        raise RepositoryError(str(error)) from None
    return f"the repository's copy updated ({diff.summary()})"


def _check_in_step(store: Store | None, file_rules: Sequence[Rule], path: Path) -> bool:
    """Whether the repository holds the file's rules; a note on stderr when not."""
    if store is None:
        return True
    from proctor.triage.rules import StoreRuleBook, differences

    diff = differences(file_rules, StoreRuleBook(store).load())
    if not diff.same:
        click.echo(
            f"note: the repository's rules differ from {path} ({diff.summary()}); "
            "`proctor rules sync` copies the file, the reviewed source of truth, into it",
            err=True,
        )
    return diff.same


def _history(store: Store | None, since: str | None, max_runs: int) -> list[FailureFacts]:
    if store is None:
        return []
    from proctor.store.errors import StoreError
    from proctor.triage.failures import load_failures

    since_ns = parse_when(since) if since else None
    try:
        # Keyed as the stored signatures are (without project roots).
        return load_failures(store, since_ns=since_ns, runs=max_runs)
    except StoreError as error:
        raise RepositoryError(str(error)) from None


def _parse(bug: str, where: str) -> Rule:
    from proctor.triage.rules import BugReferenceError, make_rule
    from proctor.triage.rules_lang import RuleSyntaxError

    try:
        return make_rule(
            bug, where, added=time.strftime("%Y-%m-%d", time.gmtime()), author=_author()
        )
    except RuleSyntaxError as error:
        raise RepositoryError(f"--where does not parse: {error}") from None
    except BugReferenceError as error:
        raise RepositoryError(str(error)) from None


def _author() -> str:
    def git(key: str) -> str:
        try:
            done = subprocess.run(
                ["git", "config", key], capture_output=True, text=True, timeout=5, check=False
            )
        except (OSError, subprocess.SubprocessError):
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""

    name, email = git("user.name"), git("user.email")
    if name and email:
        return f"{name} <{email}>"
    if name or email:
        return name or email
    import getpass

    try:
        return getpass.getuser()
    except Exception:
        return ""


def _cluster_lines(clusters: Sequence[ClusterCount], limit: int) -> list[str]:
    if not clusters:
        return []
    lines = [f"  {'failures':>8}  {'tests':>5}  {'signature':<16}  key\n"]
    lines += [
        f"  {cluster.failures:>8,}  {cluster.tests:>5,}  {cluster.signature:<16}  "
        f"{printable_id(cluster.key)[:120]}\n"
        for cluster in clusters[:limit]
    ]
    if len(clusters) > limit:
        lines.append(f"  ... and {len(clusters) - limit} more clusters\n")
    return lines


def _show_preview(result: Preview, history_note: str) -> None:
    out = sys.stdout
    if not result.total:
        out.write(f"No failures in history to preview against ({history_note}).\n")
        return
    out.write(
        f"Would explain {result.failures:,} of {result.total:,} failures ({history_note}): "
        f"{len(result.clusters)} cluster{'' if len(result.clusters) == 1 else 's'}, "
        f"{result.tests:,} test{'' if result.tests == 1 else 's'}, "
        f"{result.runs:,} run{'' if result.runs == 1 else 's'}.\n"
    )
    if not result.failures:
        click.echo(
            "note: the rule matches no failure in history. Messages are compared "
            "normalised (numbers <n>, addresses <addr>, paths <tmp>...): "
            "`proctor rules unexplained` shows keys and `--json` the facts.",
            err=True,
        )
    out.writelines(_cluster_lines(result.clusters, 10))
    if result.examples:
        out.write("Examples:\n")
        for facts in result.examples:
            what = f"{facts.type}: {facts.message}" if facts.type else facts.key
            out.write(
                f"  run {facts.run}  {printable_id(facts.test)[:100]}  {printable_id(what)[:100]}\n"
            )
    if result.too_broad:
        click.echo(
            f"warning: the rule matches {result.unrelated} unrelated clusters (different root "
            'causes); a rule should describe one fault. Narrow it, with `signature = "..."` '
            "or conditions on `key` or `test`.",
            err=True,
        )
    if result.total and result.failures == result.total and result.total > 1:
        click.echo("warning: the rule matches every failure in history.", err=True)


def _rule_json(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "bug": rule.bug,
        "where": rule.where,
        "added": rule.added or None,
        "author": rule.author or None,
    }


def _window_note(since: str | None, max_runs: int) -> str:
    return f"runs since {since}, newest {max_runs}" if since else f"the newest {max_runs} runs"


@click.group()
def rules() -> None:
    """Known-bug rules: which failures each bug explains.

    Rules live in proctor-rules.toml at the project root (reviewed like code)
    and in the repository; the file is the source of truth. A rule is a
    condition over a failure's type, message, signature, key, kind and test,
    such as: type = "TimeoutError" and message ~ "connection (refused|reset)".
    """


@rules.command()
@click.argument("bug")
@click.option("--where", "where", required=True, metavar="EXPR", help="The rule's condition.")
@click.option("--yes", "-y", is_flag=True, help="Save without asking (for scripts).")
@_window_options
@_file_option
@repository_option
def add(
    bug: str,
    where: str,
    yes: bool,
    since: str | None,
    max_runs: int,
    rules_file: Path | None,
    repository: str | None,
) -> int:
    """Tie the failures matching --where EXPR to BUG (a URL or a bug id).

    The rule is previewed against history first (what it would match) and
    saved to the rules file and the repository once confirmed.
    """
    from proctor.triage.rules import preview
    from proctor.triage.rules_file import RulesFileError, add_rule

    rule = _parse(bug, where)
    path = _rules_path(rules_file)
    existing = _read(path)
    if any(other.id == rule.id for other in existing):
        raise RepositoryError(f"{path} already has this rule, as {rule.id}")
    with _maybe_repository(repository) as store:
        failures = _history(store, since, max_runs)
        result = preview(rule, failures)
        sys.stdout.write(f"Rule {rule.id} for {printable_id(rule.bug)}: {rule.where}\n")
        _show_preview(result, _window_note(since, max_runs))
        _show_overlap(rule, failures, existing)
        if not yes:
            if not sys.stdin.isatty():
                raise RepositoryError(
                    "not saved: confirm on a terminal, or pass --yes to save without asking"
                )
            if not click.confirm(f"Save rule {rule.id} to {path}?", default=not result.too_broad):
                click.echo("Not saved.", err=True)
                return ExitCode.FAILED
        try:
            saved = add_rule(path, rule)
        except RulesFileError as error:
            raise RepositoryError(str(error)) from None
        note = _sync(store, saved)
    sys.stdout.write(f"Saved rule {rule.id} to {path}; {note}.\n")
    return ExitCode.OK


@rules.command(name="list")
@json_option
@_file_option
@repository_option
def list_(as_json: bool, rules_file: Path | None, repository: str | None) -> int:
    """List the rules."""
    path = _rules_path(rules_file)
    found = _read(path)
    with _maybe_repository(repository) as store:
        in_step = _check_in_step(store, found, path)
    if as_json:
        from proctor.cli.json_shapes import dump

        dump(
            {
                "file": str(path),
                "in_step": in_step,
                "rules": [_rule_json(rule) for rule in found],
            },
            sys.stdout,
        )
        return ExitCode.OK
    if not found:
        sys.stdout.write(
            f"No rules in {path}. Add one with `proctor rules add BUG --where EXPR`.\n"
        )
        return ExitCode.OK
    for rule in found:
        sys.stdout.write(f"{rule.id}  {printable_id(rule.bug)}\n    {printable_id(rule.where)}\n")
    return ExitCode.OK


def _find(found: Sequence[Rule], rule_id: str, path: Path) -> Rule:
    matches = [rule for rule in found if rule.id == rule_id] or [
        rule for rule in found if rule.id.startswith(rule_id)
    ]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise RepositoryError(
            f"{path} has no rule {printable_id(rule_id)!r}; `proctor rules list` lists them"
        )
    raise RepositoryError(
        f"{printable_id(rule_id)!r} names {len(matches)} rules "
        f"({', '.join(rule.id for rule in matches)}): give more of the id"
    )


@rules.command()
@click.argument("rule_id", metavar="ID")
@_window_options
@json_option
@_file_option
@repository_option
def show(
    rule_id: str,
    since: str | None,
    max_runs: int,
    as_json: bool,
    rules_file: Path | None,
    repository: str | None,
) -> int:
    """Show a rule and what it explains in history."""
    from proctor.triage.rules import preview

    path = _rules_path(rules_file)
    found = _read(path)
    rule = _find(found, rule_id, path)
    with _maybe_repository(repository) as store:
        _check_in_step(store, found, path)
        result = preview(rule, _history(store, since, max_runs))
    if as_json:
        from proctor.cli.json_shapes import dump

        dump({"rule": _rule_json(rule), "preview": _preview_json(result)}, sys.stdout)
        return ExitCode.OK
    sys.stdout.write(
        f"Rule {rule.id}\n  bug:    {printable_id(rule.bug)}\n"
        f"  where:  {printable_id(rule.where)}\n"
        f"  added:  {rule.added or '-'}\n  author: {printable_id(rule.author) or '-'}\n"
    )
    _show_preview(result, _window_note(since, max_runs))
    return ExitCode.OK


def _preview_json(result: Preview) -> dict[str, Any]:
    return {
        "failures": result.failures,
        "total": result.total,
        "tests": result.tests,
        "runs": result.runs,
        "unrelated_clusters": result.unrelated,
        "clusters": [_cluster_json(cluster) for cluster in result.clusters],
    }


def _cluster_json(cluster: ClusterCount) -> dict[str, Any]:
    return {
        "signature": cluster.signature,
        "key": cluster.key,
        "kind": cluster.kind,
        "failures": cluster.failures,
        "tests": cluster.tests,
        "runs": cluster.runs,
        "example_test": cluster.example_test,
    }


@rules.command()
@click.argument("rule_id", metavar="ID")
@_file_option
@repository_option
def remove(rule_id: str, rules_file: Path | None, repository: str | None) -> int:
    """Remove a rule from the rules file and the repository."""
    from proctor.triage.rules_file import RulesFileError, remove_rule

    path = _rules_path(rules_file)
    rule = _find(_read(path), rule_id, path)
    try:
        left = remove_rule(path, rule.id)
    except RulesFileError as error:
        raise RepositoryError(str(error)) from None
    with _maybe_repository(repository) as store:
        note = _sync(store, left)
    sys.stdout.write(f"Removed rule {rule.id} ({printable_id(rule.bug)}); {note}.\n")
    return ExitCode.OK


@rules.command()
@click.argument("where", metavar="EXPR")
@_window_options
@_file_option
@repository_option
def test(
    where: str,
    since: str | None,
    max_runs: int,
    rules_file: Path | None,
    repository: str | None,
) -> int:
    """Preview what a rule EXPR would match in history, without saving it."""
    from proctor.triage.rules import preview

    rule = _parse("preview", where)
    existing = _read(_rules_path(rules_file))
    with _maybe_repository(repository) as store:
        failures = _history(store, since, max_runs)
    result = preview(rule, failures)
    sys.stdout.write(f"where {rule.where}\n")
    _show_preview(result, _window_note(since, max_runs))
    _show_overlap(rule, failures, existing)
    return ExitCode.OK


def _show_overlap(rule: Rule, failures: Sequence[FailureFacts], existing: Sequence[Rule]) -> None:
    """Say how many of the failures ``rule`` matches the saved rules explain already."""
    from proctor.triage.rules import RuleSet

    if not existing:
        return
    matched = [failures[index] for index in RuleSet([rule]).matches(failures)[0]]
    saved = RuleSet(existing)
    flags = saved.explained(matched)
    if not any(flags):
        return
    overlapping = [
        other for other, hits in zip(saved.rules, saved.matches(matched), strict=True) if hits
    ]
    names = ", ".join(f"{other.id} ({printable_id(other.bug)})" for other in overlapping[:5])
    sys.stdout.write(f"{sum(flags):,} of them are explained by the rules already saved: {names}.\n")


@rules.command()
@_window_options
@_file_option
@repository_option
def sync(since: str | None, max_runs: int, rules_file: Path | None, repository: str | None) -> int:
    """Copy the rules file (the reviewed source of truth) into the repository.

    Rules that are new or changed in the file are previewed against history
    first, with a warning for any that spans unrelated clusters.
    """
    from proctor.triage.rules import StoreRuleBook, differences, preview

    path = _rules_path(rules_file)
    found = _read(path)
    with open_repository(repository) as store:
        diff = differences(found, StoreRuleBook(store).load())
        fresh = [*diff.only_in_file, *(mine for mine, _ in diff.changed)]
        if fresh:
            failures = _history(store, since, max_runs)
            for rule in fresh:
                result = preview(rule, failures)
                state = "new" if rule in diff.only_in_file else "changed"
                sys.stdout.write(
                    f"Rule {rule.id} ({state}, {printable_id(rule.bug)}) would explain "
                    f"{result.failures:,} of {result.total:,} failures in "
                    f"{len(result.clusters)} cluster{'' if len(result.clusters) == 1 else 's'}.\n"
                )
                if result.too_broad:
                    click.echo(
                        f"warning: rule {rule.id} matches {result.unrelated} unrelated clusters; "
                        "a rule should describe one fault.",
                        err=True,
                    )
        note = _sync(store, found)
    sys.stdout.write(f"{len(found)} rule{'' if len(found) == 1 else 's'} in {path}; {note}.\n")
    return ExitCode.OK


@click.command()
@_window_options
@click.option(
    "-n",
    "--top",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="How many unexplained clusters to show.",
)
@json_option
@_file_option
@repository_option
def unexplained(
    since: str | None,
    max_runs: int,
    top: int,
    as_json: bool,
    rules_file: Path | None,
    repository: str | None,
) -> int:
    """Show the failures no rule explains, by cluster, with the classification rate."""
    from proctor.triage.rules import unexplained as find_unexplained

    path = _rules_path(rules_file)
    found = _read(path)
    with open_repository(repository) as store:
        _check_in_step(store, found, path)
        report = find_unexplained(found, _history(store, since, max_runs))
    if as_json:
        from proctor.cli.json_shapes import dump

        dump(_unexplained_json(report), sys.stdout)
        return ExitCode.OK
    sys.stdout.write(_rate_line(report, len(found), _window_note(since, max_runs)) + "\n")
    sys.stdout.writelines(_cluster_lines(report.clusters, top))
    return ExitCode.OK


def _rate_line(report: Unexplained, rules_count: int, window: str) -> str:
    if not report.total:
        return f"No failures ({window})."
    rate = report.explained / report.total
    clusters = len(report.clusters)
    line = (
        f"{rate:.0%} of {report.total:,} failures explained ({window}; "
        f"{rules_count} rule{'' if rules_count == 1 else 's'})"
    )
    if report.unexplained:
        line += (
            f"; {report.unexplained:,} unexplained in {clusters} "
            f"cluster{'' if clusters == 1 else 's'}:"
        )
    return line


def _unexplained_json(report: Unexplained) -> dict[str, Any]:
    return {
        "failures": report.total,
        "explained": report.explained,
        "rate": report.rate,
        "per_rule": report.per_rule,
        "clusters": [_cluster_json(cluster) for cluster in report.clusters],
    }


rules.add_command(unexplained)
