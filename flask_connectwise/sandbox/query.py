"""List-endpoint parameters: ``conditions``, ``orderBy``, ``fields``, ``page``, ``pageSize``."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from . import conditions as cond
from .errors import bad_request

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 1000
# List parameters, matched case-insensitively (production code sends ``pagesize``, ``orderby``).
PARAMS = (
    "conditions",
    "childConditions",
    "customFieldConditions",
    "orderBy",
    "fields",
    "columns",
    "page",
    "pageSize",
)
# Keys ConnectWise keeps under ``_info`` that conditions may name at the top level.
INFO_FIELDS = ("lastUpdated", "updatedBy", "dateEntered", "enteredBy")
_SCHEMA = Path(__file__).with_name("schema.json")


@dataclass
class Page:
    """One page of a list answer and its RFC 5988 ``Link`` header (``None`` for one page)."""

    items: list[dict[str, Any]]
    link: str | None


def normalize(query: Mapping[str, str]) -> dict[str, str]:
    """``query`` with list parameter names in their canonical case (``pagesize`` → ``pageSize``)."""
    canonical = {name.lower(): name for name in PARAMS}
    return {canonical.get(key.lower(), key): value for key, value in query.items()}


@lru_cache(maxsize=1)
def schema_models() -> dict[str, Any]:
    """The published models' field lists (``schema.json``, from ConnectWise's OpenAPI schema)."""
    models: dict[str, Any] = json.loads(_SCHEMA.read_text(encoding="utf-8"))["models"]
    return models


class SchemaPaths:
    """Accepts the field paths of one published model (case-insensitive) and knows their types.

    Nested paths follow the models ``schema.json`` names (``status/name``); below ``_info`` (an
    object without a model) any name is accepted, as are top-level ``_info`` names such as
    ``lastUpdated``. Plain values and arrays have no sub-fields."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.info = {name.lower() for name in INFO_FIELDS}

    def _fields(self, name: str) -> dict[str, dict[str, Any]]:
        return {key.lower(): spec for key, spec in schema_models().get(name, {}).items()}

    def kind(self, path: str) -> str | None:
        """The JSON type of ``path`` (``boolean``, ``string``...), ``""`` if free-form, else None."""
        parts = path.lower().split("/")
        current = self._fields(self.model)
        if len(parts) == 1 and parts[0] in self.info and parts[0] not in current:
            return ""
        for i, part in enumerate(parts):
            spec = current.get(part)
            if spec is None:
                return None
            if spec.get("type") == "object" and "model" not in spec:
                return ""  # _info: free-form keys
            if "model" not in spec:
                return str(spec.get("type", "")) if i == len(parts) - 1 else None
            current = self._fields(str(spec["model"]))
        return "object"

    def __call__(self, path: str) -> bool:
        return self.kind(path) is not None


def schema_paths(model: str) -> Callable[[str], bool]:
    """The field checker of ``model`` in the published schema (a ``SchemaPaths``)."""
    return SchemaPaths(model)


def filter_records(
    records: list[dict[str, Any]], conditions: str | None, known: Callable[[str], bool]
) -> list[dict[str, Any]]:
    """Records matching ``conditions`` (all when empty)."""
    if conditions is None or not conditions.strip():
        return list(records)
    kinds = known.kind if isinstance(known, SchemaPaths) else None
    predicate = cond.compile_filter(conditions, known, kinds)
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
    query = normalize(query)
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
    known: Callable[[str], bool],
) -> Page:
    """Full list pipeline: filter, sort, paginate, trim fields. ``known``: the published
    model's field checker (:func:`schema_paths`), never the seed data's fields."""
    query = normalize(query)
    rows = filter_records(records, conditions, known)
    rows = order(rows, order_by, known)
    page = paginate(rows, query, url)
    fields = query.get("fields")
    page.items = [trim(r, fields) for r in page.items]
    return page


def count(
    records: list[dict[str, Any]],
    conditions: str | None,
    known: Callable[[str], bool],
) -> dict[str, int]:
    """``{"count": N}`` for ``{resource}/count`` (``known`` as for :func:`list_answer`)."""
    return {"count": len(filter_records(records, conditions, known))}
