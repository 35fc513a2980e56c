"""Parser and evaluator for the ConnectWise ``conditions`` grammar.

Supported: ``= != < <= > >=``, ``contains``, ``like`` (``%``/``*`` any run, ``_`` one character,
``[abc]`` a character class, as SQL Server), ``not contains``, ``not like``, ``in (..)``,
``not in (..)``, ``and``/``or`` (case-insensitive, ``and`` binds tighter), parentheses, literals
``"text"`` / ``'text'`` (no escapes: a quote always ends the string), integers and decimals,
``true``/``false``, ``null`` and dates in ``[...]``. Field paths use ``/`` (``status/name``) and
are matched case-insensitively; a top-level name that only exists under ``_info`` (``lastUpdated``)
resolves there. Text compares case-insensitively, like SQL Server's default collation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from .errors import CWError, bad_request

MISSING: Any = object()
_KEYWORDS = {"and", "or", "not", "contains", "like", "in", "true", "false", "null"}
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<op>!=|<=|>=|=|<|>)
  | (?P<lp>\()
  | (?P<rp>\))
  | (?P<comma>,)
  | (?P<str>"[^"]*"|'[^']*')
  | (?P<date>\[[^\]]*\])
  | (?P<num>-?\d+(?:\.\d+)?(?![A-Za-z_/]))
  | (?P<word>[A-Za-z_][A-Za-z0-9_/]*)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    """One lexical token: its kind, text and offset in the conditions string."""

    kind: str
    text: str
    pos: int


@dataclass(frozen=True)
class Literal:
    """A typed literal value (kind: str, num, bool, null, date)."""

    kind: str
    value: Any


@dataclass(frozen=True)
class Comparison:
    """``field op value`` (``value`` is a tuple of literals for ``in``)."""

    field: str
    op: str
    value: Literal | tuple[Literal, ...]
    negate: bool = False


@dataclass(frozen=True)
class BoolOp:
    """``and`` / ``or`` over two or more sub-expressions."""

    op: str
    items: tuple[Node, ...]


Node = Comparison | BoolOp


def syntax_error(message: str) -> CWError:
    """400 for a conditions string that does not parse (message shape is a guess)."""
    return bad_request(f"Invalid conditions: {message}")


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, raising a 400 on an unexpected character."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            ch = text[pos]
            if ch in "\"'":
                raise syntax_error(f"unterminated string starting at position {pos}")
            if ch == "[":
                raise syntax_error(f"unterminated date starting at position {pos}")
            raise syntax_error(f"unexpected character {ch!r} at position {pos}")
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, m.group(), pos))
        pos = m.end()
    tokens.append(Token("eof", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def is_word(self, *words: str) -> bool:
        tok = self.peek()
        return tok.kind == "word" and tok.text.lower() in words

    def expect(self, kind: str, what: str) -> Token:
        tok = self.take()
        if tok.kind != kind:
            raise syntax_error(f"expected {what} at position {tok.pos}, found {_describe(tok)}")
        return tok

    def parse(self) -> Node:
        node = self.parse_or()
        tok = self.peek()
        if tok.kind != "eof":
            raise syntax_error(f"unexpected {_describe(tok)} at position {tok.pos}")
        return node

    def parse_or(self) -> Node:
        items = [self.parse_and()]
        while self.is_word("or"):
            self.take()
            items.append(self.parse_and())
        return items[0] if len(items) == 1 else BoolOp("or", tuple(items))

    def parse_and(self) -> Node:
        items = [self.parse_primary()]
        while self.is_word("and"):
            self.take()
            items.append(self.parse_primary())
        return items[0] if len(items) == 1 else BoolOp("and", tuple(items))

    def parse_primary(self) -> Node:
        if self.peek().kind == "lp":
            self.take()
            node = self.parse_or()
            self.expect("rp", "')'")
            return node
        tok = self.take()
        if tok.kind != "word" or tok.text.lower() in _KEYWORDS:
            raise syntax_error(
                f"expected a field name at position {tok.pos}, found {_describe(tok)}"
            )
        return self.parse_comparison(tok.text)

    def parse_comparison(self, field: str) -> Comparison:
        tok = self.peek()
        if tok.kind == "op":
            self.take()
            return Comparison(field, tok.text, self.parse_literal())
        negate = False
        if self.is_word("not"):
            self.take()
            negate = True
        if self.is_word("contains", "like"):
            op = self.take().text.lower()
            return Comparison(field, op, self.parse_literal(), negate)
        if self.is_word("in"):
            self.take()
            self.expect("lp", "'(' after in")
            values = [self.parse_literal()]
            while self.peek().kind == "comma":
                self.take()
                values.append(self.parse_literal())
            self.expect("rp", "')' closing the in list")
            return Comparison(field, "in", tuple(values), negate)
        tok = self.peek()
        raise syntax_error(f"expected an operator after {field!r} at position {tok.pos}")

    def parse_literal(self) -> Literal:
        tok = self.take()
        if tok.kind == "str":
            return Literal("str", tok.text[1:-1])
        if tok.kind == "num":
            return Literal("num", float(tok.text) if "." in tok.text else int(tok.text))
        if tok.kind == "date":
            return Literal("date", _parse_date_literal(tok.text[1:-1], tok.pos))
        if tok.kind == "word" and tok.text.lower() in ("true", "false"):
            return Literal("bool", tok.text.lower() == "true")
        if tok.kind == "word" and tok.text.lower() == "null":
            return Literal("null", None)
        raise syntax_error(f"expected a value at position {tok.pos}, found {_describe(tok)}")


def _describe(tok: Token) -> str:
    return "end of conditions" if tok.kind == "eof" else repr(tok.text)


def _parse_date_literal(text: str, pos: int) -> datetime:
    value = parse_datetime(text.strip())
    if value is None:
        raise syntax_error(f"invalid date [{text}] at position {pos}")
    return value


def parse_datetime(text: str) -> datetime | None:
    """Parse an ISO date/datetime; naive values are taken as UTC. ``None`` if invalid."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@lru_cache(maxsize=512)
def parse(text: str) -> Node:
    """Parse a conditions string into a tree (cached)."""
    if not text.strip():
        raise syntax_error("empty conditions")
    return _Parser(text).parse()


def fields(node: Node) -> Iterable[str]:
    """Every field path the expression references."""
    if isinstance(node, Comparison):
        yield node.field
    else:
        for item in node.items:
            yield from fields(item)


def comparisons(node: Node) -> Iterable[Comparison]:
    """Every comparison in the expression."""
    if isinstance(node, Comparison):
        yield node
    else:
        for item in node.items:
            yield from comparisons(item)


def resolve(record: dict[str, Any], path: str) -> Any:
    """Value at ``a/b/c`` (case-insensitive keys, ``_info`` fallback), or ``MISSING``."""
    parts = path.split("/")
    value = _walk(record, parts)
    if value is MISSING and "_info" in record:
        value = _walk(record, ["_info", *parts])
    return value


def _walk(value: Any, parts: list[str]) -> Any:
    for part in parts:
        if not isinstance(value, dict):
            return MISSING
        if part in value:
            value = value[part]
            continue
        low = part.lower()
        for key in value:
            if key.lower() == low:
                value = value[key]
                break
        else:
            return MISSING
    return value


def compile_filter(
    text: str,
    known: Callable[[str], bool],
    kinds: Callable[[str], str | None] | None = None,
) -> Callable[[dict[str, Any]], bool]:
    """Parse ``text``, check its fields with ``known`` and return a record predicate.

    With ``kinds`` (a field's schema type), a boolean field compared with anything but bare
    ``true``/``false``/``null`` is refused before any record is read, as ConnectWise does."""
    node = parse(text)
    for field in fields(node):
        if not known(field):
            raise bad_request(f"Invalid conditions: unknown field '{field}'")
    if kinds is not None:
        for comparison in comparisons(node):
            if kinds(comparison.field) == "boolean":
                values = comparison.value
                for lit in values if isinstance(values, tuple) else (values,):
                    if lit.kind not in ("bool", "null"):
                        raise _boolean_error(comparison.field, lit)
    return lambda record: evaluate(node, record)


def evaluate(node: Node, record: dict[str, Any]) -> bool:
    """True when ``record`` satisfies the expression."""
    if isinstance(node, BoolOp):
        if node.op == "and":
            return all(evaluate(item, record) for item in node.items)
        return any(evaluate(item, record) for item in node.items)
    value = resolve(record, node.field)
    if value is MISSING:
        value = None
    result = _compare(node, value)
    return not result if node.negate else result


def _compare(node: Comparison, value: Any) -> bool:
    if node.op == "in":
        assert isinstance(node.value, tuple)
        return any(_binary(node.field, "=", value, lit) for lit in node.value)
    assert isinstance(node.value, Literal)
    lit = node.value
    if node.op in ("contains", "like"):
        if value is None:
            return False
        if isinstance(value, dict | list):
            raise _object_error(node.field)
        text = _text(value)
        needle = _text(lit.value)
        if node.op == "contains":
            return needle.casefold() in text.casefold()
        return like_regex(needle).fullmatch(text) is not None
    return _binary(node.field, node.op, value, lit)


def _binary(field: str, op: str, value: Any, lit: Literal) -> bool:
    if lit.kind == "null":
        if op == "=":
            return value is None
        if op == "!=":
            return value is not None
        return False
    if value is None:
        return False
    if isinstance(value, dict | list):
        raise _object_error(field)
    left, right = _coerce(field, value, lit)
    if op == "=":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if op == "<":
        return bool(left < right)
    if op == "<=":
        return bool(left <= right)
    if op == ">":
        return bool(left > right)
    return bool(left >= right)


def _coerce(field: str, value: Any, lit: Literal) -> tuple[Any, Any]:
    """Bring a record value and a literal to comparable Python values."""
    if isinstance(value, bool):
        if lit.kind == "bool":
            return value, lit.value
        raise _boolean_error(field, lit)  # booleans only as bare true/false, never 1 or "true"
    if isinstance(value, int | float):
        if lit.kind == "num":
            return value, lit.value
        if lit.kind == "str":
            try:
                return value, float(lit.value)
            except ValueError:
                raise _type_error(field, lit) from None
        raise _type_error(field, lit)
    text = str(value)
    if lit.kind == "date":
        parsed = parse_datetime(text)
        if parsed is None:
            raise _type_error(field, lit)
        return parsed, lit.value
    return text.casefold(), _text(lit.value).casefold()


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _type_error(field: str, lit: Literal) -> CWError:
    return bad_request(f"Invalid conditions: cannot compare field '{field}' with {lit.kind} value")


def _boolean_error(field: str, lit: Literal) -> CWError:
    kind = {"num": "numeric", "str": "string", "date": "date"}.get(lit.kind, lit.kind)
    message = f"Expected a boolean value, not a {kind} value, for field '{field}'."
    return bad_request(f"{message} Use true or false.")


def _object_error(field: str) -> CWError:
    return bad_request(f"Invalid conditions: '{field}' is an object; compare one of its fields")


@lru_cache(maxsize=512)
def like_regex(pattern: str) -> re.Pattern[str]:
    """Translate a SQL Server ``LIKE`` pattern (plus ``*``) to a case-insensitive regex."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch in "%*":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        elif ch == "[" and "]" in pattern[i + 1 :]:
            end = pattern.index("]", i + 1)
            body = pattern[i + 1 : end]
            neg = body.startswith("^")
            body = body[1:] if neg else body
            cls = "".join("\\" + c if c in "\\]^[" else c for c in body)
            out.append(f"[{'^' if neg else ''}{cls}]" if cls else re.escape("[]"))
            i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)
