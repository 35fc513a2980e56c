"""Build ConnectWise ``conditions`` strings from user text without letting it change the filter.

ConnectWise has no documented escape for ``"`` inside a quoted literal, so user text is reduced
to characters that cannot end the literal or act as wildcards: double quotes, backslashes,
``%``, ``*``, ``[``, ``]``, ``_`` and control characters are replaced by spaces, whitespace is
collapsed and the result is cut to the length of a ticket summary (100 characters). The quoted
literal is then placed into a fixed template, so the filter's structure is always ours.

Searching text that contains the wildcard characters ``_ % * [ ]`` (``SRV_DC01``, ``50%``,
``[x]``) uses :func:`literal_pieces` and :func:`contains_all`: the text is split at those
characters into literal pieces, ConnectWise is asked for records whose field contains *every*
piece (``summary contains "SRV" and summary contains "DC01"``) and the caller keeps only the
records that contain the exact text (:func:`matches`). Why not escape them: whether ``contains``
treats ``_``/``%``/``[..]`` as SQL Server ``LIKE`` wildcards, and whether a bracket escape such as
``[_]`` works inside a ConnectWise literal, is documented by no public source (CONNECTWISE_API.md
§3.1 marks both uncertain). A bracket escape would search for the text ``[_]`` itself if
``contains`` is a plain substring test, and would miss; pieces without those characters mean the
same under both readings, so the split is exact whichever the server does. ``"`` and ``\\`` stay
replaced by spaces (no escape exists for them either).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime

#: ConnectWise's maximum length of a ticket summary; longer search text can never match.
MAX_TEXT_LENGTH = 100

_UNSAFE = re.compile(r"[\"\\%*\[\]_\x00-\x1f\x7f]")
_SPACES = re.compile(r"\s+")
_CONTROL = re.compile(r"[\"\\\x00-\x1f\x7f]")
_WILDCARDS = re.compile(r"[%*\[\]_]")
_FIELD = re.compile(r"^[A-Za-z][A-Za-z0-9]*(/[A-Za-z][A-Za-z0-9]*)*$")


def clean_text(text: str, *, max_length: int = MAX_TEXT_LENGTH) -> str:
    """Return ``text`` reduced to characters that are always literal inside a quoted string."""
    cleaned = _SPACES.sub(" ", _UNSAFE.sub(" ", text)).strip()
    return cleaned[:max_length].rstrip()


def search_text(text: str, *, max_length: int = MAX_TEXT_LENGTH) -> str:
    """The text a search must find: like :func:`clean_text`, but keeping ``_ % * [ ]``."""
    cleaned = _SPACES.sub(" ", _CONTROL.sub(" ", text)).strip()
    return cleaned[:max_length].rstrip()


def literal_pieces(text: str) -> list[str]:
    """:func:`search_text` split at the wildcard characters ``_ % * [ ]`` into non-empty pieces."""
    return [p for p in (clean_text(part) for part in _WILDCARDS.split(search_text(text))) if p]


def needs_exact_check(text: str) -> bool:
    """True when ``text``'s pieces do not say it all, so results must pass :func:`matches`."""
    return literal_pieces(text) != [search_text(text)]


def matches(value: str, text: str) -> bool:
    """Whether ``value`` contains :func:`search_text` of ``text``, read the same way (quotes,
    backslashes and control characters as spaces, spaces collapsed, case-insensitive)."""
    return search_text(text).casefold() in search_text(value, max_length=len(value)).casefold()


def contains_all(name: str, text: str) -> str:
    """``name contains "piece" and ...`` for every :func:`literal_pieces` piece; ``""`` if none."""
    return all_of(*(contains(name, piece) for piece in literal_pieces(text)))


def quote(text: str) -> str:
    """Quote user text as a ConnectWise string literal (see :func:`clean_text`)."""
    return f'"{clean_text(text)}"'


def field(name: str) -> str:
    """Validate a field name written by us (never user text): ``summary``, ``status/id``."""
    if not _FIELD.match(name):
        raise ValueError(f"not a ConnectWise field name: {name!r}")
    return name


def equals(name: str, value: int | bool | str) -> str:
    """``name=value`` with the value rendered as a literal of its type."""
    return f"{field(name)}={literal(value)}"


#: The most ids one ``in (..)`` list holds (keeps the query string well under URL limits).
MAX_IN_VALUES = 100


def one_of_ids(name: str, ids: Iterable[int]) -> str:
    """``name in (1,2)`` (``name=1`` for one id) from positive ints only, deduplicated and sorted.

    Anything else (text, bools, floats, zero or negatives) is a :class:`ValueError`, so
    user text can never reach the condition through this builder. No ids is an error too:
    an empty list would match nothing in one server and everything in another.
    """
    values: set[int] = set()
    for value in ids:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} ids must be positive integers, not {value!r}")
        values.add(int(value))
    if not values:
        raise ValueError(f"{name}: at least one id is needed")
    if len(values) > MAX_IN_VALUES:
        raise ValueError(f"{name}: at most {MAX_IN_VALUES} ids")
    ordered = sorted(values)
    if len(ordered) == 1:
        return equals(name, ordered[0])
    return f"{field(name)} in ({','.join(str(v) for v in ordered)})"


def later_than(name: str, moment: datetime) -> str:
    """``name>[2026-01-05T09:00:00Z]``: a date comparison (``moment`` must be timezone-aware)."""
    if moment.tzinfo is None:
        raise ValueError("a condition's date must be timezone-aware")
    stamp = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{field(name)}>[{stamp}]"


def contains(name: str, text: str) -> str:
    """``name contains "text"``: a case-insensitive substring match."""
    return f"{field(name)} contains {quote(text)}"


def literal(value: int | bool | str) -> str:
    """Render a Python value as a ConnectWise literal."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    return quote(value)


class Compound(str):
    """A condition joined from several with ``and``/``or``; grouped when nested."""

    __slots__ = ()


def all_of(*parts: str) -> str:
    """Join conditions with ``and``; nested combinations are parenthesised."""
    return _join(" and ", parts)


def any_of(parts: Iterable[str]) -> str:
    """Join conditions with ``or``; nested combinations are parenthesised."""
    return _join(" or ", tuple(parts))


def _join(operator: str, parts: tuple[str, ...]) -> str:
    present = [p for p in parts if p]
    if len(present) == 1:
        return present[0]
    return Compound(operator.join(f"({p})" if isinstance(p, Compound) else p for p in present))
