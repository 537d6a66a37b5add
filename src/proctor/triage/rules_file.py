"""``proctor-rules.toml``: the known-bug rules, versioned with the code and reviewed like it.

One ``[[rule]]`` table per rule, in the order they were added::

    [[rule]]
    id = "3f2a9c1e"
    bug = "https://bugs.example.org/123"
    where = 'type = "TimeoutError" and message ~ "connection (refused|reset)"'
    added = "2026-12-04"
    author = "Jane Doe <jane@example.org>"

Read with ``tomllib``; written by hand so that the file stays stable and
reviewable: adding a rule appends its table to the text as it is, and removing
one cuts its table out, so comments and the order of the rest survive, and a
diff shows exactly the rule that changed. Errors (:class:`RulesFileError`) name
the file, the rule and, for a ``where`` that does not parse, the position.
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from proctor.triage.rules import BugReferenceError, Rule, check_bug
from proctor.triage.rules_lang import RuleSyntaxError, parse_rule

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = ["FILE_NAME", "RulesFileError", "add_rule", "read_rules", "remove_rule", "render_rule"]

FILE_NAME = "proctor-rules.toml"
_KEYS = ("id", "bug", "where", "added", "author")
_REQUIRED = ("id", "bug", "where")
_HEADER = (
    "# Known-bug rules: which failures each bug explains (`proctor rules`).\n"
    "# Reviewed like code. The `where` language is described in docs/triage.md (Rules).\n"
)


class RulesFileError(ValueError):
    """The rules file cannot be read or written: what, where, what to do."""


def read_rules(path: Path) -> list[Rule]:
    """The rules in ``path``, in file order; none when the file does not exist."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as error:
        raise RulesFileError(f"cannot read {path}: {error.strerror or error}") from None
    return parse_rules(data, str(path))


def parse_rules(data: bytes, where: str) -> list[Rule]:
    """The rules in a file's bytes; ``where`` names the file in errors."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RulesFileError(f"{where}: not UTF-8 text (byte {error.start})") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise RulesFileError(f"{where}: not valid TOML: {error}") from None
    extra = sorted(set(document) - {"rule"})
    if extra:
        raise RulesFileError(
            f"{where}: unknown top-level key {extra[0]!r}; the file holds only [[rule]] tables"
        )
    tables = document.get("rule", [])
    if not isinstance(tables, list):
        raise RulesFileError(f"{where}: 'rule' must be written as [[rule]] tables")
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for number, table in enumerate(tables, 1):
        rule = _rule(table, f"{where}: rule {number}")
        if rule.id in seen:
            raise RulesFileError(
                f"{where}: rules {seen[rule.id]} and {number} have the same id {rule.id!r}; "
                "ids must be unique (remove or renumber one)"
            )
        seen[rule.id] = number
        rules.append(rule)
    return rules


def _rule(table: object, name: str) -> Rule:
    if not isinstance(table, dict):
        raise RulesFileError(f"{name}: must be a table")
    ident = table.get("id")
    if isinstance(ident, str):
        name += f" (id {ident!r})"
    for key in table:
        if key not in _KEYS:
            raise RulesFileError(f"{name}: unknown key {key!r}; a rule has {', '.join(_KEYS)}")
    values: dict[str, str] = {}
    for key in _KEYS:
        value = table.get(key, "")
        if key in _REQUIRED and key not in table:
            raise RulesFileError(f"{name}: {key!r} is missing")
        if not isinstance(value, str):
            raise RulesFileError(f"{name}: {key!r} must be a string")
        values[key] = value
    if not values["id"] or len(values["id"]) > 64 or not values["id"].isprintable():
        raise RulesFileError(f"{name}: 'id' must be 1 to 64 printable characters")
    try:
        check_bug(values["bug"])
    except BugReferenceError as error:
        raise RulesFileError(f"{name}: {error}") from None
    try:
        expr = parse_rule(values["where"])
    except RuleSyntaxError as error:
        raise RulesFileError(f"{name}: 'where' does not parse: {error}") from None
    return Rule(
        values["id"], values["bug"], values["where"], values["added"], values["author"], expr
    )


def _toml_string(value: str) -> str:
    """A TOML string for ``value``: literal ('...') when it can be, so a
    ``where`` full of double quotes and backslashes reads as written."""
    if "'" not in value and all(c.isprintable() for c in value):
        return f"'{value}'"
    out = ['"']
    for char in value:
        if char == '"':
            out.append('\\"')
        elif char == "\\":
            out.append("\\\\")
        elif not char.isprintable():
            out.append(f"\\u{ord(char):04x}" if ord(char) < 0x10000 else f"\\U{ord(char):08x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def render_rule(rule: Rule) -> str:
    """The ``[[rule]]`` table of one rule."""
    lines = ["[[rule]]"]
    for key, value in zip(_KEYS, rule.row, strict=True):
        if value or key in _REQUIRED:
            lines.append(f"{key} = {_toml_string(value)}")
    return "\n".join(lines) + "\n"


def add_rule(path: Path, rule: Rule) -> list[Rule]:
    """Append ``rule`` to the file (created if need be); return the file's rules.
    Refuses a rule whose id the file has already."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = _HEADER
    except (OSError, UnicodeDecodeError) as error:
        raise RulesFileError(f"cannot read {path}: {error}") from None
    rules = parse_rules(text.encode(), str(path))
    if any(existing.id == rule.id for existing in rules):
        raise RulesFileError(f"{path} already has rule {rule.id} (the same bug and condition)")
    if text and not text.endswith("\n"):
        text += "\n"
    text += "\n" + render_rule(rule)
    _write(path, text, [*rules, rule])
    return [*rules, rule]


def remove_rule(path: Path, rule_id: str) -> list[Rule]:
    """Cut the table of rule ``rule_id`` out of the file; return the rules left."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RulesFileError(f"there is no {path}: no rules to remove") from None
    except (OSError, UnicodeDecodeError) as error:
        raise RulesFileError(f"cannot read {path}: {error}") from None
    rules = parse_rules(text.encode(), str(path))
    blocks = _blocks(text)
    kept: list[str] = []
    removed = False
    for block in blocks:
        if _block_id(block) == rule_id:
            removed = True
            continue
        kept.append(block)
    if not removed:
        raise RulesFileError(f"{path} has no rule {rule_id!r}")
    left = [rule for rule in rules if rule.id != rule_id]
    _write(path, "".join(kept).rstrip("\n") + "\n", left)
    return left


def _blocks(text: str) -> list[str]:
    """The text cut before each line that opens a ``[[rule]]`` table (comment
    lines right above a table go with it; a blank line parts them)."""
    lines = text.splitlines(keepends=True)
    starts = [0]
    for number, line in enumerate(lines):
        if line.split("#", 1)[0].strip() == "[[rule]]" and number:
            start = number
            while start > starts[-1] and lines[start - 1].lstrip().startswith("#"):
                start -= 1
            starts.append(start)
    starts.append(len(lines))
    return ["".join(lines[a:b]) for a, b in itertools.pairwise(starts) if a < b]


def _block_id(block: str) -> str | None:
    try:
        tables = tomllib.loads(block).get("rule", [])
    except tomllib.TOMLDecodeError:
        return None
    if isinstance(tables, list) and len(tables) == 1 and isinstance(tables[0], dict):
        ident = tables[0].get("id")
        return ident if isinstance(ident, str) else None
    return None


def _write(path: Path, text: str, expected: Sequence[Rule]) -> None:
    """Write atomically, after checking the text reads back as ``expected``."""
    back = parse_rules(text.encode(), str(path))
    assert [rule.row for rule in back] == [rule.row for rule in expected], "rules file round trip"
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise RulesFileError(f"cannot write {path}: {error.strerror or error}") from None
