"""Outcomes that arrive after the response: told to the operator on their next page.

When a change is still being delivered once ``CONNECTWISE_INLINE_WAIT`` has passed, the
operator is told "Logging to ticket #12345…" (with a link to "My recent ConnectWise logs") and
the change's reference is remembered in the Flask session (the last :data:`REMEMBERED`). On the
operator's next page, :func:`flash_finished` reads those changes in one query and flashes the
outcome of each finished one, with the same words as when it arrives in time, once: a flashed
change is forgotten.

:func:`my_changes` lists the operator's recent changes of a tenant (the JSON route
``GET {prefix}/changes/mine`` and its HTML page).
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from flask import flash, has_request_context, request, session, url_for
from markupsafe import Markup

from .current import state
from .models import ChangeState
from .outbox import Outcome, Pending

log = logging.getLogger("flask_connectwise.notices")

#: The Flask session key holding the references of changes still being delivered.
SESSION_KEY = "connectwise_waiting"
#: How many changes one operator's session remembers (the oldest are dropped).
REMEMBERED = 20
#: How many changes "My recent ConnectWise logs" lists.
RECENT = 50
#: Blueprints whose requests never flash (JSON routes, static files).
_QUIET_BLUEPRINTS = frozenset({"connectwise_api", "connectwise_static"})
_LIST_ENDPOINT = "connectwise_api.changes_mine_page"


def tell_pending(change: Pending) -> None:
    """Flash "Logging to ticket #12345…" and remember the change for the next page."""
    if not has_request_context():
        return
    message = Markup("Logging to ticket #{}…").format(change.ticket_id)
    link = _list_url(change.tenant_id)
    if link:
        message += Markup(' <a href="{}">My recent ConnectWise logs</a>').format(link)
    flash(message, "info")
    if change.reference:
        remember(change.reference)


def _list_url(tenant_id: str | None) -> str | None:
    if not tenant_id:
        return None
    try:
        return url_for(_LIST_ENDPOINT, tenant_id=tenant_id)
    except Exception:  # the routes' blueprint is not registered
        return None


def remember(reference: str) -> None:
    """Remember ``reference`` in the operator's session (the last :data:`REMEMBERED`)."""
    waiting = [r for r in _waiting() if r != reference]
    waiting.append(reference)
    session[SESSION_KEY] = waiting[-REMEMBERED:]


def _waiting() -> list[str]:
    found = session.get(SESSION_KEY)
    if not isinstance(found, list):
        return []
    return [r for r in found if isinstance(r, str) and r][-REMEMBERED:]


def flash_finished() -> None:
    """Flash the outcome of each remembered change that finished, once (a ``before_request``
    hook; nothing is read while no change is remembered)."""
    if not has_request_context() or SESSION_KEY not in session:
        return
    if request.blueprint in _QUIET_BLUEPRINTS or request.endpoint in (None, "static"):
        return
    waiting = _waiting()
    if not waiting:
        session.pop(SESSION_KEY, None)
        return
    st = state()
    model = st.models.ChangeLog
    db_session = st.outbox.session
    try:
        rows = db_session.execute(sa.select(model).where(model.reference.in_(waiting))).scalars()
        found = {row.reference: row for row in rows}
    except Exception:
        log.exception("connectwise: the outcomes of recent changes could not be read")
        db_session.rollback()
        return
    still: list[str] = []
    for reference in waiting:
        row = found.get(reference)
        if row is None:
            continue  # gone (purged): nothing left to tell
        if row.state == ChangeState.PENDING:
            still.append(reference)
            continue
        outcome = Outcome.of(row)
        flash(outcome.summary(), outcome.severity)
    if still:
        session[SESSION_KEY] = still
    else:
        session.pop(SESSION_KEY, None)


def my_changes(tenant_id: str, operator: str | None, limit: int = RECENT) -> list[dict[str, Any]]:
    """The operator's last ``limit`` changes of ``tenant_id``, newest first (none without an
    operator)."""
    if not operator:
        return []
    st = state()
    model = st.models.ChangeLog
    query = (
        sa.select(model)
        .where(model.tenant_id == tenant_id, model.operator == operator)
        .order_by(model.created_at.desc(), model.id.desc())
        .limit(limit)
    )
    answer: list[dict[str, Any]] = []
    for row in st.outbox.session.execute(query).scalars():
        outcome = Outcome.of(row)
        steps = outcome.to_json()
        answer.append(
            {
                "reference": row.reference,
                "ticketId": row.ticket_id,
                "state": row.state,
                "steps": {k: v for k, v in steps.items() if k in ("note", "timeEntry", "status")},
                "created": row.created_at.isoformat() if row.created_at else None,
                "summary": _summary(outcome),
                "note": row.note_text,
            }
        )
    return answer


def _summary(outcome: Outcome) -> str:
    if outcome.state == ChangeState.PENDING:
        return f"Logging to ticket #{outcome.ticket_id}…"
    return outcome.summary()
