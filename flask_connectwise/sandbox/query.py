"""List-endpoint parameters: ``conditions``, ``orderBy``, ``fields``, ``page``, ``pageSize``."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from . import conditions as cond
from .errors import bad_request

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 1000


@dataclass
class Page:
    """One page of a list answer and its RFC 5988 ``Link`` header (``None`` for one page)."""

    items: list[dict[str, Any]]
    link: str | None


def known_paths(records: list[dict[str, Any]]) -> Callable[[str], bool]:
    """A checker accepting any field path present in at least one record (case-insensitive)."""
    paths: set[str] = set()

    def collect(value: Any, prefix: str) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                path = f"{prefix}{key.lower()}"
                paths.add(path)
                collect(sub, path + "/")

    for record in records:
        collect(record, "")
        collect(record.get("_info"), "")
    return lambda field: field.lower() in paths


def filter_records(
    records: list[dict[str, Any]], conditions: str | None, known: Callable[[str], bool]
) -> list[dict[str, Any]]:
    """Records matching ``conditions`` (all when empty)."""
    if conditions is None or not conditions.strip():
        return list(records)
    predicate = cond.compile_filter(conditions, known)
    return [r for r in records if predicate(r)]


def order(
    records: list[dict[str, Any]], order_by: str | None, known: Callable[[str], bool]
) -> list[dict[str, Any]]:
    """Sort by ``orderBy`` (``"id desc, summary asc"``); default is by ``id`` ascending."""
    keys: list[tuple[str, bool]] = []
    for part in (order_by or "").split(","):
        words = part.split()
        if not words:
            continue
        if len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise bad_request(f"Invalid orderBy: {part.strip()!r}")
        if not known(words[0]):
            raise bad_request(f"Invalid orderBy: unknown field '{words[0]}'")
        keys.append((words[0], len(words) == 2 and words[1].lower() == "desc"))
    out = sorted(records, key=lambda r: _sort_key(r.get("id")))
    for field, desc in reversed(keys):
        out.sort(key=lambda r, f=field: _sort_key(cond.resolve(r, f)), reverse=desc)  # type: ignore[misc]
    return out


def _sort_key(value: Any) -> tuple[int, Any]:
    """Nulls first (SQL Server), then numbers, then case-insensitive text."""
    if value is None or value is cond.MISSING:
        return (0, 0)
    if isinstance(value, bool | int | float):
        return (1, float(value))
    if isinstance(value, dict | list):
        return (2, "")
    return (2, str(value).casefold())


def trim(record: dict[str, Any], fields: str | None) -> dict[str, Any]:
    """Keep only the ``fields`` paths (``status/name`` keeps ``{"status": {"name": ..}}``)."""
    if not fields or not fields.strip():
        return record
    out: dict[str, Any] = {}
    for raw in fields.split(","):
        parts = [p for p in raw.strip().split("/") if p]
        if parts:
            _copy_path(record, out, parts)
    return out


def _copy_path(src: dict[str, Any], dst: dict[str, Any], parts: list[str]) -> None:
    key = next((k for k in src if k.lower() == parts[0].lower()), None)
    if key is None:
        return  # unknown fields are ignored (guess)
    value = src[key]
    if len(parts) == 1:
        dst[key] = value
    elif isinstance(value, dict):
        child = dst.get(key)
        if not isinstance(child, dict):
            child = dst[key] = {}
        _copy_path(value, child, parts[1:])
    elif value is None:
        dst.setdefault(key, None)


def int_param(query: Mapping[str, str], name: str, default: int) -> int:
    """An integer query parameter; 400 if it is not an integer."""
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise bad_request(f"Invalid {name}: {raw!r} is not an integer") from None


def paginate(records: list[dict[str, Any]], query: Mapping[str, str], url: str) -> Page:
    """Slice one page and build the ``Link`` header with absolute URLs."""
    size = int_param(query, "pageSize", DEFAULT_PAGE_SIZE)
    size = DEFAULT_PAGE_SIZE if size < 1 else min(size, MAX_PAGE_SIZE)
    page = max(int_param(query, "page", 1), 1)
    last = max(math.ceil(len(records) / size), 1)
    items = records[(page - 1) * size : page * size]
    if last <= 1:
        return Page(items, None)

    def href(number: int) -> str:
        params = {k: v for k, v in query.items() if k != "page"}
        params["page"] = str(number)
        return f"<{url}?{urlencode(params)}>"

    links = []
    if page > 1:
        links += [f'{href(1)}; rel="first"', f'{href(min(page - 1, last))}; rel="prev"']
    if page < last:
        links += [f'{href(page + 1)}; rel="next"', f'{href(last)}; rel="last"']
    return Page(items, ", ".join(links) if links else None)


def list_answer(
    records: list[dict[str, Any]],
    query: Mapping[str, str],
    url: str,
    *,
    conditions: str | None = None,
    order_by: str | None = None,
    known: Callable[[str], bool] | None = None,
) -> Page:
    """Full list pipeline: filter, sort, paginate, trim fields."""
    known = known or known_paths(records)
    rows = filter_records(records, conditions, known)
    rows = order(rows, order_by, known)
    page = paginate(rows, query, url)
    fields = query.get("fields")
    page.items = [trim(r, fields) for r in page.items]
    return page


def count(
    records: list[dict[str, Any]],
    conditions: str | None,
    known: Callable[[str], bool] | None = None,
) -> dict[str, int]:
    """``{"count": N}`` for ``{resource}/count``."""
    return {"count": len(filter_records(records, conditions, known or known_paths(records)))}
