"""The ConnectWise REST resources the sandbox serves (paths after ``apis/3.0/``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from . import query as q
from . import schema
from .errors import CWError, bad_request, for_status, not_found
from .store import SYSTEM_VERSION, Store


@dataclass
class Ctx:
    """What a resource handler sees: the store, query, parsed body and path ids."""

    store: Store
    query: dict[str, str]
    url: str
    body: Any = None
    ids: tuple[int, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        self.query = q.normalize(self.query)  # parameter names are case-insensitive


@dataclass
class Answer:
    """A handler's result before serialisation."""

    status: int
    payload: Any
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Ctx], Answer]
_ROUTES: list[tuple[re.Pattern[str], dict[str, Handler]]] = []


# The published model each route answers with (schema.py); routes not listed answer as they are.
ANSWER_MODELS = {
    "service/tickets": "Ticket",
    "service/tickets/search": "Ticket",
    "service/tickets/{id}": "Ticket",
    "service/tickets/{id}/notes": "ServiceNote",
    "service/tickets/{id}/notes/{id}": "ServiceNote",
    "service/tickets/{id}/allNotes": "ServiceTicketNote",
    "time/entries": "TimeEntry",
    "time/entries/{id}": "TimeEntry",
    "service/boards": "Board",
    "service/boards/{id}": "Board",
    "service/boards/{id}/statuses": "BoardStatus",
    "service/boards/{id}/statuses/{id}": "BoardStatus",
    "system/members": "Member",
    "system/members/{id}": "Member",
    "system/info": "Info",
    "company/companies": "Company",
    "company/companies/{id}": "Company",
    "time/workTypes": "WorkType",
    "time/workTypes/{id}": "WorkType",
    "time/workRoles": "WorkRole",
    "time/workRoles/{id}": "WorkRole",
    "system/members/{identifier}/tokens": "Token",
}
# The published model a write's body must fit ("patch:" = PATCH operations on that model).
BODY_MODELS = {
    ("POST", "service/tickets/{id}/notes"): "ServiceNote",
    ("POST", "time/entries"): "TimeEntry",
    ("PATCH", "service/tickets/{id}"): "patch:Ticket",
}


def _schema_checked(pattern: str, method: str, handler: Handler) -> Handler:
    """``handler`` refusing unknown body members and answering only published fields."""
    answer_model = ANSWER_MODELS.get(pattern, "Count" if pattern.endswith("/count") else None)
    body_model = BODY_MODELS.get((method, pattern))
    if answer_model is None and body_model is None:
        return handler

    def checked(ctx: Ctx) -> Answer:
        if body_model is not None and body_model.startswith("patch:"):
            schema.check_patch(body_model.removeprefix("patch:"), ctx.body)
        elif body_model is not None:
            schema.check_body(body_model, ctx.body)
        answer = handler(ctx)
        if answer_model is not None and answer.status < 300:
            answer = Answer(
                answer.status, schema.conform(answer_model, answer.payload), answer.headers
            )
        return answer

    return checked


def route(pattern: str, **methods: Handler) -> None:
    """Register ``pattern`` (``{id}`` = integer segment, ``{identifier}`` = any one segment, read
    by the handler from ``Ctx.url``) for the given methods."""
    regex = re.escape(pattern).replace(r"\{id\}", r"(\d+)").replace(r"\{identifier\}", "[^/]+")
    regex = "^" + regex + "/?$"
    checked = {m: _schema_checked(pattern, m, h) for m, h in methods.items()}
    _ROUTES.append((re.compile(regex, re.IGNORECASE), checked))


def find(method: str, path: str) -> tuple[Handler, tuple[int, ...]]:
    """Resolve a route: 404 for an unknown path, 405 for a known path with another method."""
    for regex, methods in _ROUTES:
        m = regex.match(path)
        if m:
            handler = methods.get(method.upper())
            if handler is None:
                raise for_status(
                    405, f"The requested resource does not support http method '{method}'."
                )
            return handler, tuple(int(g) for g in m.groups())
    raise not_found(f"The requested resource was not found: apis/3.0/{path}")


def _list(
    records: list[dict[str, Any]],
    ctx: Ctx,
    model: str,
    conditions: str | None = None,
    order_by: str | None = None,
) -> Answer:
    """List ``records``; conditions and orderBy name the published ``model``'s fields (and their
    JSON types), never whatever the seed data happens to fill (issue 13)."""
    page = q.list_answer(
        records,
        ctx.query,
        ctx.url,
        conditions=ctx.query.get("conditions") if conditions is None else conditions,
        order_by=ctx.query.get("orderBy") if order_by is None else order_by,
        known=q.schema_paths(model),
    )
    return Answer(200, page.items, {"Link": page.link} if page.link else {})


def _count(records: list[dict[str, Any]], ctx: Ctx, model: str) -> Answer:
    return Answer(200, q.count(records, ctx.query.get("conditions"), q.schema_paths(model)))


def _one(record: dict[str, Any], ctx: Ctx) -> Answer:
    return Answer(200, q.trim(record, ctx.query.get("fields")))


def _search(ctx: Ctx) -> Answer:
    body = ctx.body if ctx.body is not None else {}
    if not isinstance(body, dict):
        raise bad_request("The request body must be an object with conditions and orderBy.")
    for key in ("conditions", "orderBy"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise bad_request(f"{key} must be a string.")
    return _list(
        list(ctx.store.data.tickets.values()),
        ctx,
        "Ticket",
        conditions=body.get("conditions") or ctx.query.get("conditions") or "",
        order_by=body.get("orderBy") or ctx.query.get("orderBy") or "",
    )


def _note(ctx: Ctx) -> Answer:
    ticket_id, note_id = ctx.ids
    note = next((n for n in ctx.store.notes(ticket_id) if n["id"] == note_id), None)
    if note is None:
        raise not_found(f"Note {note_id} not found on Ticket {ticket_id}")
    return _one(note, ctx)


def _time_entry(ctx: Ctx) -> Answer:
    entry = ctx.store.data.time_entries.get(ctx.ids[0])
    if entry is None:
        raise not_found(f"TimeEntry {ctx.ids[0]} not found")
    return _one(entry, ctx)


def _status(ctx: Ctx) -> Answer:
    board_id, status_id = ctx.ids
    status = next((s for s in ctx.store.board_statuses(board_id) if s["id"] == status_id), None)
    if status is None:
        raise not_found(f"Service Status {status_id} not found for Service Board {board_id}")
    return _one(status, ctx)


def _by_id(kind: str, label: str) -> Handler:
    def handler(ctx: Ctx) -> Answer:
        record = getattr(ctx.store.data, kind).get(ctx.ids[0])
        if record is None:
            raise not_found(f"{label} {ctx.ids[0]} not found")
        return _one(record, ctx)

    return handler


def _all(kind: str, model: str) -> Handler:
    """List every ``kind`` record; conditions and orderBy name ``model``'s published fields."""
    return lambda ctx: _list(list(getattr(ctx.store.data, kind).values()), ctx, model)


def _all_count(kind: str, model: str) -> Handler:
    return lambda ctx: _count(list(getattr(ctx.store.data, kind).values()), ctx, model)


def member_tokens(ctx: Ctx) -> Answer:
    """``POST system/members/{identifier}/tokens``: impersonation keys for that member (a member
    with ``x-cw-usertype: member`` then acts as them, DeskDirector/UserVoice#539). The member is
    found by identifier (case-insensitive) or numeric id; the keys are random, are accepted
    as ``company+publicKey:privateKey`` until they expire (``Store.token_lifetime``, an hour
    by default: the lifetime is a guess), and writes made with them name that member in
    ``_info.updatedBy``."""
    raw = unquote(ctx.url.rstrip("/").split("/")[-2])
    member = next(
        (
            m
            for m in ctx.store.data.members.values()
            if str(m["identifier"]).lower() == raw.lower() or str(m["id"]) == raw
        ),
        None,
    )
    if member is None:
        raise not_found(f"Member {raw} not found")
    token = ctx.store.issue_token(member)
    return Answer(
        200,
        {
            "publicKey": token.public_key,
            "privateKey": token.private_key,
            "expiration": token.expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    )


def system_info(ctx: Ctx) -> Answer:
    """``GET system/info``."""
    return Answer(
        200,
        {
            "version": f"{ctx.store.text_prefix}{SYSTEM_VERSION}",
            "isCloud": False,
            "serverTimeZone": "Eastern Standard Time",
            "cloudRegion": "NA",
        },
    )


route("service/tickets", GET=_all("tickets", "Ticket"))
route("service/tickets/count", GET=_all_count("tickets", "Ticket"))
route("service/tickets/search", POST=_search)
route(
    "service/tickets/{id}",
    GET=lambda c: _one(c.store.ticket(c.ids[0]), c),
    PATCH=lambda c: Answer(200, c.store.patch_ticket(c.ids[0], c.body)),
)
route(
    "service/tickets/{id}/notes",
    GET=lambda c: _list(c.store.notes(c.ids[0]), c, "ServiceNote"),
    POST=lambda c: Answer(201, c.store.add_note(c.ids[0], c.body)),
)
route(
    "service/tickets/{id}/notes/count",
    GET=lambda c: _count(c.store.notes(c.ids[0]), c, "ServiceNote"),
)
route("service/tickets/{id}/notes/{id}", GET=_note)
route(
    "service/tickets/{id}/allNotes",
    GET=lambda c: _list(c.store.all_notes(c.ids[0]), c, "ServiceTicketNote"),
)
route(
    "time/entries",
    GET=_all("time_entries", "TimeEntry"),
    POST=lambda c: Answer(201, c.store.add_time_entry(c.body)),
)
route("time/entries/count", GET=_all_count("time_entries", "TimeEntry"))
route("time/entries/{id}", GET=_time_entry)
route("service/boards", GET=_all("boards", "Board"))
route("service/boards/count", GET=_all_count("boards", "Board"))
route("service/boards/{id}", GET=lambda c: _one(c.store.board(c.ids[0]), c))
route(
    "service/boards/{id}/statuses",
    GET=lambda c: _list(c.store.board_statuses(c.ids[0]), c, "BoardStatus"),
)
route(
    "service/boards/{id}/statuses/count",
    GET=lambda c: _count(c.store.board_statuses(c.ids[0]), c, "BoardStatus"),
)
route("service/boards/{id}/statuses/{id}", GET=_status)
route("system/members", GET=_all("members", "Member"))
route("system/members/count", GET=_all_count("members", "Member"))
route("system/members/{id}", GET=_by_id("members", "Member"))
route("system/info", GET=system_info)
route("system/members/{identifier}/tokens", POST=member_tokens)
route("company/companies", GET=_all("companies", "Company"))
route("company/companies/count", GET=_all_count("companies", "Company"))
route("company/companies/{id}", GET=_by_id("companies", "Company"))
route("time/workTypes", GET=_all("work_types", "WorkType"))
route("time/workTypes/count", GET=_all_count("work_types", "WorkType"))
route("time/workTypes/{id}", GET=_by_id("work_types", "WorkType"))
route("time/workRoles", GET=_all("work_roles", "WorkRole"))
route("time/workRoles/count", GET=_all_count("work_roles", "WorkRole"))
route("time/workRoles/{id}", GET=_by_id("work_roles", "WorkRole"))

__all__ = ["Answer", "CWError", "Ctx", "find"]
