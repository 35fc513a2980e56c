"""``/_sandbox/*`` control routes (no auth, not logged) for other processes (demo, benchmarks).

``GET /_sandbox/requests`` · ``DELETE /_sandbox/requests`` · ``POST /_sandbox/reset`` ·
``GET|POST|DELETE /_sandbox/faults`` (POST body: the ``inject_fault`` arguments) ·
``POST /_sandbox/text-prefix {"prefix"}`` (before every name, summary, note text and the
version) · ``POST /_sandbox/latency {"seconds"}`` · ``POST /_sandbox/rate-limit {"max_requests",
"per_seconds", "retry_after"}`` · ``POST /_sandbox/codebase {"codebase"}`` ·
``POST /_sandbox/cloud-auth-404 {"enabled"}`` (bad credentials answer 404, as on cloud) ·
``GET /_sandbox/rules`` · ``POST /_sandbox/rules {"profile"?, <rule>: value...}`` (tenant rule
switches, ``rules.py``; without ``profile`` the changes apply to the rules in force; an unknown
rule or value is a 400) ·
``GET /_sandbox/tickets/<id>`` (ticket, notes, time entries) · ``GET /_sandbox/stats``.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from .errors import CWError, bad_request, for_status, not_found
from .rules import profile

if TYPE_CHECKING:
    from .app import Outcome, SandboxApp

_TICKET = re.compile(r"^/_sandbox/tickets/(\d+)/?$")

#: Every control route (docs/sandbox.md lists the same; a 404 outside the API lists them).
CONTROL_ROUTES = (
    "GET /_sandbox/requests",
    "DELETE /_sandbox/requests",
    "POST /_sandbox/reset",
    "GET /_sandbox/faults",
    "POST /_sandbox/faults",
    "DELETE /_sandbox/faults",
    "POST /_sandbox/text-prefix",
    "POST /_sandbox/latency",
    "POST /_sandbox/rate-limit",
    "POST /_sandbox/codebase",
    "POST /_sandbox/cloud-auth-404",
    "GET /_sandbox/rules",
    "POST /_sandbox/rules",
    "GET /_sandbox/tickets/<id>",
    "GET /_sandbox/stats",
)


def with_help(app: SandboxApp, err: CWError) -> CWError:
    """``err`` (a 404 outside the API) with what the sandbox does serve: the API's base path,
    the control routes and the members (identifier and e-mail) notes and time entries take."""
    err.extra = {
        "sandbox": {
            "api": f"/{app.codebase}apis/3.0/ (Basic auth + clientId header)",
            "companyInfo": "/login/companyinfo/<company id>",
            "controlRoutes": list(CONTROL_ROUTES),
            "members": [
                f"{m['identifier']} ({m.get('primaryEmail') or 'no e-mail'})"
                + (" inactive" if m.get("inactiveFlag") else "")
                for m in app.members()
            ],
        }
    }
    return err


def _arg(body: dict[str, Any], snake: str, camel: str, default: Any = None) -> Any:
    return body.get(snake, body.get(camel, default))


def control(app: SandboxApp, method: str, path: str, body: Any) -> Outcome:
    """Answer one control request."""
    from .app import json_outcome

    method = method.upper()
    body = body if isinstance(body, dict) else {}
    route = path.rstrip("/")
    if route == "/_sandbox/requests" and method == "GET":
        return json_outcome(200, app.records_json())
    if route == "/_sandbox/requests" and method == "DELETE":
        app.clear_requests()
        return json_outcome(200, {"ok": True})
    if route == "/_sandbox/reset" and method == "POST":
        app.reset()
        return json_outcome(200, {"ok": True})
    if route == "/_sandbox/faults":
        if method == "POST":
            fault = app.inject_fault(
                str(body["path"]),
                str(body["kind"]),
                count=int(body.get("count", 1)),
                status=body.get("status"),
                method=body.get("method"),
                delay=body.get("delay"),
                retry_after=_arg(body, "retry_after", "retryAfter"),
                message=body.get("message"),
            )
            return json_outcome(201, asdict(fault))
        if method == "GET":
            return json_outcome(200, [asdict(f) for f in app.faults.pending()])
        if method == "DELETE":
            app.clear_faults()
            return json_outcome(200, {"ok": True})
    if route == "/_sandbox/text-prefix" and method == "POST":
        prefix = body["prefix"]
        app.prefix_text("" if prefix is None else str(prefix))
        return json_outcome(200, {"ok": True})
    if route == "/_sandbox/latency" and method == "POST":
        app.set_latency(float(body["seconds"]))
        return json_outcome(200, {"seconds": app.latency})
    if route == "/_sandbox/rate-limit" and method == "POST":
        limit = _arg(body, "max_requests", "maxRequests")
        app.set_rate_limit(
            int(limit) if limit is not None else None,
            float(_arg(body, "per_seconds", "perSeconds", 60.0)),
            _arg(body, "retry_after", "retryAfter"),
        )
        return json_outcome(200, {"ok": True})
    if route == "/_sandbox/codebase" and method == "POST":
        app.move_codebase(str(body["codebase"]))
        return json_outcome(200, {"codebase": app.codebase})
    if route == "/_sandbox/cloud-auth-404" and method == "POST":
        app.set_cloud_auth_404(bool(body.get("enabled", True)))
        return json_outcome(200, {"enabled": app.cloud_auth_404})
    if route == "/_sandbox/rules" and method == "GET":
        return json_outcome(200, app.rules.as_dict())
    if route == "/_sandbox/rules" and method == "POST":
        changes = dict(body)
        try:
            base = profile(str(changes.pop("profile"))) if "profile" in changes else app.rules
            new = app.set_rules(base.updated(changes))
        except (TypeError, ValueError) as exc:
            raise bad_request(str(exc)) from None
        return json_outcome(200, new.as_dict())
    if route == "/_sandbox/stats" and method == "GET":
        return json_outcome(
            200, {"connections_opened": app.connections_opened, "requests": len(app.requests)}
        )
    m = _TICKET.match(route)
    if m and method == "GET":
        ticket_id = int(m.group(1))
        try:
            ticket = app.ticket(ticket_id)
        except KeyError:
            raise not_found(f"Ticket {ticket_id} not found") from None
        return json_outcome(
            200,
            {
                "ticket": ticket,
                "notes": app.notes(ticket_id),
                "timeEntries": app.time_entries(ticket_id),
            },
        )
    raise with_help(app, for_status(404, f"Unknown sandbox control route: {method} {path}"))
