"""The known-bug rule language: a small, documented grammar over a failure's facts.

A rule's ``where`` expression says which failures a known bug explains::

    type = "TimeoutError" and message ~ "connection (refused|reset)"
        and not test ~ "^tests\\.unit\\."

The grammar (EBNF; docs/triage.md, "Rules", is the user's copy)::

    expression = or ;
    or         = and , { "or" , and } ;
    and        = unary , { "and" , unary } ;
    unary      = "not" , unary | "(" , expression , ")" | comparison ;
    comparison = field , operator , string ;
    field      = "type" | "message" | "signature" | "key" | "kind" | "test" ;
    operator   = "=" | "!=" | "~" | "!~" ;
    string     = '"' , { character | "\\" , any character } , '"' ;

Keywords are case-insensitive; ``=``/``!=`` compare whole values, ``~``/``!~``
search with a Python regular expression (``re.search``). In a string ``\\"`` is
a quote, ``\\\\`` a backslash, ``\\n`` and ``\\t`` a newline and a tab; any
other backslash is kept as it is, so regular expressions read as they are
written (``"^tests\\.unit\\."``).

Text is parsed by a hand-written tokenizer and recursive-descent parser into
an immutable AST (:class:`Compare`, :class:`Not`, :class:`And`, :class:`Or`);
:func:`unparse` writes the canonical text back (``parse(unparse(ast)) ==
ast``). Errors are :class:`RuleSyntaxError`, carrying the position and a caret
display. Regular expressions are compiled at parse time; an invalid one is an
error pointing into its literal. :func:`compile_rule` turns an AST into a
predicate over :class:`FailureFacts`.

Regular expressions run on untrusted text. Python's ``re`` backtracks, so a
pattern like ``(a+)+$`` can take exponential time on a crafted input. Two
bounds keep that in check: an expression is at most :data:`MAX_EXPRESSION`
characters, and every fact is cut to :data:`MAX_FACT` characters before a
pattern searches it (normalised messages are short already). Rules are
reviewed like code (``proctor-rules.toml``); a nested unbounded quantifier in
a review is the thing to refuse.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

__all__ = [
    "FIELDS",
    "KINDS",
    "MAX_EXPRESSION",
    "MAX_FACT",
    "And",
    "Compare",
    "Expr",
    "FailureFacts",
    "Field",
    "Not",
    "Operator",
    "Or",
    "Predicate",
    "RuleSyntaxError",
    "compile_rule",
    "fields_of",
    "parse_rule",
    "unparse",
]

MAX_EXPRESSION = 4000
"""Characters in one ``where`` expression at most."""
MAX_FACT = 4096
"""Characters of a fact a pattern searches at most (test ids, messages)."""
_MAX_DEPTH = 50

Field = Literal["type", "message", "signature", "key", "kind", "test"]
Operator = Literal["=", "!=", "~", "!~"]
FIELDS: tuple[str, ...] = get_args(Field)
KINDS = frozenset(
    {
        "traceback",
        "message",
        "timeout",
        "crash",
        "text",
        "unexpected-success",
        "unfinished",
        "empty",
    }
)
"""The values of ``kind`` (a signature's kind, :data:`proctor.triage.Kind`)."""

_FIELD_HELP = {
    "type": "the exception type the test saw (last dotted part), '' when none",
    "message": "that exception's normalised message",
    "signature": "the signature's 16-hex-digit digest (the cluster)",
    "key": "the signature's readable key",
    "kind": "the signature's kind: " + ", ".join(sorted(KINDS)),
    "test": "the test id",
}


@dataclass(frozen=True, slots=True)
class FailureFacts:
    """What a rule can see of one failure. ``run`` is where it happened (not a
    field of the language: it is for reports)."""

    test: str
    type: str
    message: str
    signature: str
    key: str
    kind: str
    run: int = 0


class RuleSyntaxError(ValueError):
    """A rule that cannot be parsed: what is wrong, and where (0-based ``position``
    into ``text``, ``length`` characters)."""

    def __init__(self, message: str, text: str, position: int, length: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.text = text
        self.position = max(0, min(position, len(text)))
        self.length = max(1, length)

    @property
    def column(self) -> int:
        """1-based column of the error (on the line it is on)."""
        return self.position - (self.text.rfind("\n", 0, self.position) + 1) + 1

    def caret(self, indent: str = "  ") -> str:
        """The line of ``text`` with the error, and ``^`` under it."""
        start = self.text.rfind("\n", 0, self.position) + 1
        end = self.text.find("\n", self.position)
        line = self.text[start : len(self.text) if end < 0 else end]
        offset = self.position - start
        shown = _visible(line[:offset])
        width = min(self.length, max(1, len(line) - offset))
        marker = "^" * len(_visible(line[offset : offset + width]) or " ")
        return f"{indent}{_visible(line)}\n{indent}{' ' * len(shown)}{marker}"

    def __str__(self) -> str:
        return f"{self.message} (column {self.column})\n{self.caret()}"


def _visible(text: str) -> str:
    """Control characters shown as escapes, so the caret stays under its character."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


# -- the AST


@dataclass(frozen=True, slots=True)
class Compare:
    field: Field
    op: Operator
    value: str


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Expr, ...]


Expr = Compare | Not | And | Or


# -- tokens

_Kind = Literal["field", "op", "string", "and", "or", "not", "(", ")", "word", "end"]


@dataclass(frozen=True, slots=True)
class _Token:
    kind: _Kind
    text: str  # the value (a string's decoded content)
    start: int
    end: int
    offsets: tuple[int, ...] = ()  # a string's: where each decoded character came from


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}
_KEYWORDS: dict[str, _Kind] = {"and": "and", "or": "or", "not": "not"}


def _tokens(text: str) -> list[_Token]:
    found: list[_Token] = []
    at, size = 0, len(text)
    while at < size:
        char = text[at]
        if char in " \t\r\n":
            at += 1
        elif char in "()":
            found.append(_Token(char, char, at, at + 1))  # type: ignore[arg-type]
            at += 1
        elif char == "=":
            found.append(_Token("op", "=", at, at + 1))
            at += 1
        elif char == "~":
            found.append(_Token("op", "~", at, at + 1))
            at += 1
        elif char == "!":
            nxt = text[at + 1 : at + 2]
            if nxt not in ("=", "~"):
                raise RuleSyntaxError("'!' must be followed by '=' or '~' (!=, !~)", text, at)
            found.append(_Token("op", "!" + nxt, at, at + 2))
            at += 2
        elif char == '"':
            found.append(_string(text, at))
            at = found[-1].end
        elif char == "'":
            raise RuleSyntaxError('strings are written in double quotes: "..."', text, at)
        else:
            word = _WORD.match(text, at)
            if word is None:
                raise RuleSyntaxError(
                    f"unexpected character {char!r}: a rule is made of fields, operators "
                    '(= != ~ !~), "strings", and, or, not and parentheses',
                    text,
                    at,
                )
            value = word.group()
            lowered = value.lower()
            kind: _Kind = _KEYWORDS.get(lowered, "field" if value in FIELDS else "word")
            found.append(_Token(kind, value, at, word.end()))
            at = word.end()
    found.append(_Token("end", "", size, size))
    return found


def _string(text: str, start: int) -> _Token:
    chars: list[str] = []
    offsets: list[int] = []
    at = start + 1
    size = len(text)
    while at < size:
        char = text[at]
        if char == '"':
            return _Token("string", "".join(chars), start, at + 1, tuple(offsets))
        if char == "\\" and at + 1 < size:
            nxt = text[at + 1]
            decoded = _ESCAPES.get(nxt)
            if decoded is None:  # kept: regular expressions read as written
                chars += ["\\", nxt]
                offsets += [at, at + 1]
            else:
                chars.append(decoded)
                offsets.append(at)
            at += 2
            continue
        chars.append(char)
        offsets.append(at)
        at += 1
    raise RuleSyntaxError("this string is not closed: a '\"' is missing", text, start, size - start)


# -- the parser


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.at = 0
        self.depth = 0

    @property
    def token(self) -> _Token:
        return self.tokens[self.at]

    def error(self, message: str, token: _Token | None = None) -> RuleSyntaxError:
        token = token or self.token
        return RuleSyntaxError(message, self.text, token.start, token.end - token.start)

    def expression(self) -> Expr:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.error(f"the rule nests more than {_MAX_DEPTH} levels deep")
        operands = [self.conjunction()]
        while self.token.kind == "or":
            self.at += 1
            operands.append(self.conjunction())
        self.depth -= 1
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def conjunction(self) -> Expr:
        operands = [self.unary()]
        while self.token.kind == "and":
            self.at += 1
            operands.append(self.unary())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def unary(self) -> Expr:
        token = self.token
        if token.kind == "not":
            self.at += 1
            self.depth += 1
            if self.depth > _MAX_DEPTH:
                raise self.error(f"the rule nests more than {_MAX_DEPTH} levels deep", token)
            operand = self.unary()
            self.depth -= 1
            return Not(operand)
        if token.kind == "(":
            self.at += 1
            inner = self.expression()
            if self.token.kind != ")":
                raise self.error(
                    f"expected ')' to close the '(' at column {token.start + 1}, "
                    f"found {self.describe(self.token)}"
                )
            self.at += 1
            return inner
        return self.comparison()

    def comparison(self) -> Compare:
        token = self.token
        if token.kind != "field":
            raise self.error(self.expected_field(token))
        self.at += 1
        op_token = self.token
        if op_token.kind != "op":
            raise self.error(
                f"expected an operator (=, !=, ~, !~) after {token.text!r}, "
                f"found {self.describe(op_token)}"
            )
        self.at += 1
        value_token = self.token
        if value_token.kind != "string":
            raise self.error(
                f'expected a "string" after {op_token.text!r}, found {self.describe(value_token)}'
            )
        self.at += 1
        field: Field = token.text  # type: ignore[assignment]
        op: Operator = op_token.text  # type: ignore[assignment]
        self.check_value(field, op, value_token)
        return Compare(field, op, value_token.text)

    def check_value(self, field: Field, op: Operator, token: _Token) -> None:
        value = token.text
        if op in ("~", "!~"):
            try:
                re.compile(value)
            except re.error as error:
                where = error.pos if error.pos is not None else 0
                offsets = token.offsets
                at = offsets[where] if where < len(offsets) else token.end - 1
                raise RuleSyntaxError(
                    f"invalid regular expression: {error.msg}", self.text, at
                ) from None
        elif field == "kind" and value not in KINDS:
            raise self.error(
                f"{value!r} is not a kind; kinds are {', '.join(sorted(KINDS))}", token
            )

    def expected_field(self, token: _Token) -> str:
        names = ", ".join(FIELDS)
        if token.kind == "word":
            import difflib

            close = difflib.get_close_matches(token.text.lower(), FIELDS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            return f"unknown field {token.text!r}{hint}: fields are {names}"
        return f"expected a field ({names}), found {self.describe(token)}"

    @staticmethod
    def describe(token: _Token) -> str:
        if token.kind == "end":
            return "the end of the rule"
        if token.kind == "string":
            return "a string"
        return repr(token.text)


def parse_rule(text: str) -> Expr:
    """Parse a ``where`` expression; raises :class:`RuleSyntaxError`."""
    if len(text) > MAX_EXPRESSION:
        raise RuleSyntaxError(
            f"the rule is {len(text)} characters long; the limit is {MAX_EXPRESSION}",
            text,
            MAX_EXPRESSION,
        )
    if not text.strip():
        raise RuleSyntaxError(
            'the rule is empty: write a condition such as type = "TimeoutError"', text, 0
        )
    parser = _Parser(text)
    expr = parser.expression()
    if parser.token.kind != "end":
        token = parser.token
        hint = (
            " (join conditions with 'and' or 'or')" if token.kind in ("field", "not", "(") else ""
        )
        raise parser.error(f"unexpected {parser.describe(token)} after a complete rule{hint}")
    return expr


# -- writing back

_PRECEDENCE = {Or: 1, And: 2, Not: 3, Compare: 4}


_DOUBLE_BEFORE = frozenset('"\\nt\n\t')
"""A backslash before these (or at the end) must be doubled to mean itself."""


def _quote(value: str) -> str:
    out = ['"']
    for at, char in enumerate(value):
        if char == '"':
            out.append('\\"')
        elif char == "\\":
            # Doubled only where it would otherwise start an escape: a
            # regular expression's "\." stays as it was written.
            nxt = value[at + 1 : at + 2]
            out.append("\\\\" if not nxt or nxt in _DOUBLE_BEFORE else "\\")
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def unparse(expr: Expr) -> str:
    """The canonical text of ``expr``: ``parse_rule(unparse(e)) == e``."""
    if isinstance(expr, Compare):
        return f"{expr.field} {expr.op} {_quote(expr.value)}"
    if isinstance(expr, Not):
        return f"not {_wrapped(expr.operand, 3)}"
    word = " and " if isinstance(expr, And) else " or "
    level = _PRECEDENCE[type(expr)]
    # An operand of the same operator is parenthesised: it was written so (the
    # parser flattens a chain into one node), and it parses back the same.
    return word.join(_wrapped(operand, level + 1) for operand in expr.operands)


def _wrapped(expr: Expr, level: int) -> str:
    text = unparse(expr)
    return f"({text})" if _PRECEDENCE[type(expr)] < level else text


def fields_of(expr: Expr) -> frozenset[str]:
    """The fields ``expr`` mentions."""
    if isinstance(expr, Compare):
        return frozenset({expr.field})
    if isinstance(expr, Not):
        return fields_of(expr.operand)
    return frozenset().union(*(fields_of(operand) for operand in expr.operands))


# -- evaluation

Predicate = Callable[[FailureFacts], bool]


def compile_rule(expr: Expr) -> Predicate:
    """A predicate over :class:`FailureFacts` that says whether ``expr`` holds."""
    if isinstance(expr, Compare):
        return _compare(expr)
    if isinstance(expr, Not):
        inner = compile_rule(expr.operand)
        return lambda facts: not inner(facts)
    parts = tuple(compile_rule(operand) for operand in expr.operands)
    if isinstance(expr, And):
        return lambda facts: all(part(facts) for part in parts)
    return lambda facts: any(part(facts) for part in parts)


def _compare(expr: Compare) -> Predicate:
    name = expr.field
    value = expr.value
    if expr.op == "=":
        return lambda facts: getattr(facts, name) == value
    if expr.op == "!=":
        return lambda facts: getattr(facts, name) != value
    search = re.compile(value).search
    if expr.op == "~":
        return lambda facts: search(getattr(facts, name)[:MAX_FACT]) is not None
    return lambda facts: search(getattr(facts, name)[:MAX_FACT]) is None
