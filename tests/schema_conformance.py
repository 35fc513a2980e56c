"""The conformance tests' own map of the ConnectWise API (independent of the sandbox's) and
the check of one request/answer exchange against the published field lists."""

from __future__ import annotations

import re
from typing import Any

from flask_connectwise.sandbox import schema

# This test's own map of the API (independent of the sandbox's): (method, path) -> the model
# of the answer items and the model of the body. "patch:M" = PATCH operations on model M.
N = r"\d+"
ROUTES: list[tuple[str, str, str | None, str | None]] = [
    ("GET", "service/tickets", "Ticket", None),
    ("POST", "service/tickets/search", "Ticket", None),
    ("GET", f"service/tickets/{N}", "Ticket", None),
    ("PATCH", f"service/tickets/{N}", "Ticket", "patch:Ticket"),
    ("GET", f"service/tickets/{N}/notes", "ServiceNote", None),
    ("POST", f"service/tickets/{N}/notes", "ServiceNote", "ServiceNote"),
    ("GET", f"service/tickets/{N}/notes/{N}", "ServiceNote", None),
    ("GET", f"service/tickets/{N}/allNotes", "ServiceTicketNote", None),
    ("GET", "time/entries", "TimeEntry", None),
    ("POST", "time/entries", "TimeEntry", "TimeEntry"),
    ("GET", f"time/entries/{N}", "TimeEntry", None),
    ("GET", "service/boards", "Board", None),
    ("GET", f"service/boards/{N}", "Board", None),
    ("GET", f"service/boards/{N}/statuses", "BoardStatus", None),
    ("GET", f"service/boards/{N}/statuses/{N}", "BoardStatus", None),
    ("GET", "system/members", "Member", None),
    ("GET", f"system/members/{N}", "Member", None),
    ("GET", "system/info", "Info", None),
    ("GET", "company/companies", "Company", None),
    ("GET", f"company/companies/{N}", "Company", None),
    ("GET", "time/workTypes", "WorkType", None),
    ("GET", f"time/workTypes/{N}", "WorkType", None),
    ("GET", "time/workRoles", "WorkRole", None),
    ("GET", f"time/workRoles/{N}", "WorkRole", None),
    ("POST", r"system/members/[^/]+/tokens", "Token", None),
    ("GET", r"[A-Za-z0-9/]+/count", "Count", None),
]
SEARCH_BODY = {"conditions", "orderBy", "childConditions", "customFieldConditions"}


def route_models(method: str, path: str) -> tuple[str | None, str | None] | None:
    for m, pattern, answer, body in ROUTES:
        if m == method and re.fullmatch(pattern, path, re.IGNORECASE):
            return answer, body
    return None


def check_exchange(method: str, path: str, sent: Any, answer: Any, status: int) -> list[str]:
    """Problems with one request/answer pair (unmodelled routes are problems too)."""
    models = route_models(method, path)
    if models is None:
        return [f"{method} {path}: route not in the conformance map"]
    answer_model, body_model = models
    where = f"{method} {path}"
    found: list[str] = []
    if body_model is not None and body_model.startswith("patch:"):
        found += [f"{where} body{p}" for p in schema.problems("PatchOperation", sent, "")]
        ticket_fields = {f.lower() for f in schema.fields(body_model.removeprefix("patch:"))}
        for op in sent:
            head = str(op.get("path", "")).strip("/").split("/")[0]
            if head.lower() not in ticket_fields:
                found.append(f"{where} body: patch path '{head}' is not a Ticket field")
    elif body_model is not None:
        found += [f"{where} body: {p}" for p in schema.problems(body_model, sent)]
    elif sent is not None and method == "POST":
        found += [f"{where} body: unknown member {k}" for k in set(sent) - SEARCH_BODY]
    if answer_model is not None and status < 300:
        found += [f"{where} answer: {p}" for p in schema.problems(answer_model, answer)]
    if status >= 400:
        found += [f"{where} error: {p}" for p in schema.problems("ErrorResponseMessage", answer)]
    return found
