"""The segment filter language, parsed into a small syntax tree. Pure: text in, tree out.

    status = 'active' and (attributes.city in ('Almaty', 'Bishkek') or name contains 'Doe')
    created_at >= 2025-01-01 and attributes.age > 30 and not attributes.plan is null

Fields: ``email``, ``name``, ``status``, ``created_at``, ``updated_at``, ``attributes.<key>``.
Operators: ``= != < <= > >=``, ``contains``, ``in (…)``, ``not in (…)``, ``is null``,
``is not null``; ``and``, ``or``, ``not`` and parentheses. Literals: 'strings' ('' for a quote),
numbers (42, -1.5) and dates (2025-01-01). Keywords are case-insensitive.

A recursive-descent parser over a tokenizer: the text is never pasted into SQL (``segments``
turns the tree into bound SQLAlchemy expressions). A mistake raises ``InvalidInput`` naming
the 1-based column. Parentheses and ``not`` nest at most ``MAX_DEPTH`` deep: the parser, the
SQL builder and SQLAlchemy's compiler all recurse once per level, and Python's stack does not
go on for ever (400 nested parentheses ended in a RecursionError).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

from newsletter.errors import InvalidInput

Literal = str | Decimal | dt.date
PLAIN_FIELDS = frozenset({"email", "name", "status", "created_at", "updated_at"})
DATE_FIELDS = frozenset({"created_at", "updated_at"})
COMPARISONS = frozenset({"=", "!=", "<", "<=", ">", ">="})
KEYWORDS = frozenset({"and", "or", "not", "in", "is", "null", "contains"})
MAX_EXPRESSION_CHARS = 4_000
MAX_DEPTH = 32  # far beyond a filter a person writes

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\w.-]))
  | (?P<number>-?\d+(?:\.\d+)?(?![\w.]))
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),])
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_-]+)?)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class Field:
    name: str  # one of PLAIN_FIELDS, or "attributes"
    key: str | None = None  # the attribute's key


@dataclass(frozen=True, slots=True)
class Compare:
    field: Field
    op: str  # one of COMPARISONS
    value: Literal


@dataclass(frozen=True, slots=True)
class Contains:
    field: Field
    value: str


@dataclass(frozen=True, slots=True)
class InList:
    field: Field
    values: tuple[Literal, ...]
    negated: bool = False


@dataclass(frozen=True, slots=True)
class IsNull:
    field: Field
    negated: bool = False


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Node


Node = Compare | Contains | InList | IsNull | And | Or | Not


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # string, date, number, op, punct, word, keyword, end
    text: str
    column: int  # 1-based


def parse_expression(text: str) -> Node:
    """The tree of ``text``, or ``InvalidInput`` naming the column of the first mistake."""
    if len(text) > MAX_EXPRESSION_CHARS:
        raise InvalidInput(f"the expression is longer than {MAX_EXPRESSION_CHARS} characters")
    parser = _Parser(_tokens(text))
    node = parser.expression()
    parser.expect_end()
    return node


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            if text[position] == "'":
                raise _error(position + 1, "unterminated string (a quote inside is written '')")
            raise _error(position + 1, f"unexpected character {text[position]!r}")
        kind = match.lastgroup
        assert kind is not None
        value = match.group()
        if kind == "word" and value.lower() in KEYWORDS:
            tokens.append(_Token("keyword", value.lower(), position + 1))
        elif kind != "space":
            tokens.append(_Token(kind, value, position + 1))
        position = match.end()
    tokens.append(_Token("end", "", len(text) + 1))
    return tokens


def _error(column: int, message: str) -> InvalidInput:
    return InvalidInput(f"column {column}: {message}")


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.at = 0
        self.depth = 0  # open parentheses and ``not`` around the current token

    @property
    def token(self) -> _Token:
        return self.tokens[self.at]

    def advance(self) -> _Token:
        token = self.tokens[self.at]
        if token.kind != "end":  # the end token stays current
            self.at += 1
        return token

    def accept(self, kind: str, text: str | None = None) -> bool:
        if self.token.kind == kind and (text is None or self.token.text == text):
            self.at += 1
            return True
        return False

    def expect(self, kind: str, text: str, what: str) -> None:
        if not self.accept(kind, text):
            raise _error(self.token.column, f"expected {what}, found {self._found()}")

    def expect_end(self) -> None:
        if self.token.kind != "end":
            raise _error(
                self.token.column, f"expected 'and', 'or' or the end, found {self._found()}"
            )

    def _found(self) -> str:
        return "the end" if self.token.kind == "end" else repr(self.token.text)

    def expression(self) -> Node:
        items = [self.conjunction()]
        while self.accept("keyword", "or"):
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def conjunction(self) -> Node:
        items = [self.negation()]
        while self.accept("keyword", "and"):
            items.append(self.negation())
        return items[0] if len(items) == 1 else And(tuple(items))

    def negation(self) -> Node:
        token = self.token
        if self.accept("keyword", "not"):
            with self._nested(token):
                return Not(self.negation())
        if self.accept("punct", "("):
            with self._nested(token):
                node = self.expression()
                self.expect("punct", ")", "')'")
            return node
        return self.condition()

    @contextmanager
    def _nested(self, token: _Token) -> Iterator[None]:
        if self.depth >= MAX_DEPTH:
            raise _error(token.column, f"the expression nests deeper than {MAX_DEPTH} levels")
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1

    def condition(self) -> Node:
        field = self.field()
        token = self.token
        if token.kind == "op":
            self.advance()
            op = "!=" if token.text == "<>" else token.text
            return Compare(field, op, self.literal(field))
        if self.accept("keyword", "contains"):
            value_token = self.token
            value = self.literal(field)
            if not isinstance(value, str):
                raise _error(value_token.column, "'contains' takes a 'quoted string'")
            return Contains(field, value)
        if self.accept("keyword", "is"):
            negated = self.accept("keyword", "not")
            self.expect("keyword", "null", "'null'")
            return IsNull(field, negated)
        negated = self.accept("keyword", "not")
        if self.accept("keyword", "in"):
            self.expect("punct", "(", "'(' after 'in'")
            values = [self.literal(field)]
            while self.accept("punct", ","):
                values.append(self.literal(field))
            self.expect("punct", ")", "')'")
            return InList(field, tuple(values), negated)
        raise _error(
            token.column,
            f"expected an operator (= != < <= > >= contains in is) after the field, "
            f"found {self._found()}",
        )

    def field(self) -> Field:
        token = self.token
        if token.kind != "word":
            raise _error(token.column, f"expected a field name, found {self._found()}")
        self.advance()
        name, _, key = token.text.partition(".")
        if name == "attributes" and key:
            return Field("attributes", key)
        if name in PLAIN_FIELDS and not key:
            return Field(name)
        known = ", ".join(sorted(PLAIN_FIELDS)) + ", attributes.<key>"
        raise _error(token.column, f"unknown field {token.text!r} (known: {known})")

    def literal(self, field: Field) -> Literal:
        token = self.advance()
        if token.kind == "string":
            value: Literal = token.text[1:-1].replace("''", "'")
        elif token.kind == "number":
            value = Decimal(token.text)
        elif token.kind == "date":
            try:
                value = dt.date.fromisoformat(token.text)
            except ValueError:
                raise _error(token.column, f"{token.text} is not a date") from None
        else:
            found = "the end" if token.kind == "end" else repr(token.text)
            raise _error(token.column, f"expected a value, found {found}")
        if field.name in DATE_FIELDS and not isinstance(value, dt.date):
            raise _error(token.column, f"{field.name} is compared with a date such as 2025-01-01")
        if field.name in ("email", "name", "status") and not isinstance(value, str):
            raise _error(token.column, f"{field.name} is compared with a 'quoted string'")
        return value
