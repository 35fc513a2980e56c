"""A new change for the outbox: its row, its reference and the checks on what it asks for."""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

from ..models import ChangeState, Models, StepState

# The hours rule lives in validation; re-exported here for the outbox.
from ..validation import MAX_HOURS as MAX_HOURS
from ..validation import MIN_HOURS as MIN_HOURS
from ..validation import check_hours as check_hours

REFERENCE_PREFIX = "cwlog-"


def new_reference() -> str:
    """A short random change reference, e.g. ``cwlog-3f9a1c2b``."""
    return REFERENCE_PREFIX + secrets.token_hex(4)


def reference_line(reference: str) -> str:
    """The line the note and the time entry carry, by which a step in doubt is found again."""
    return f"[flask-connectwise ref {reference}]"


def request_hash(**fields: Any) -> str:
    """A stable digest of a request's content, to tell a replay from a different request."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


def new_change(
    models: Models,
    *,
    tenant_id: str,
    ticket_id: int,
    note_text: str,
    member: str | None,
    hours: float | None,
    status_id: int | None,
    internal: bool = False,
    idempotency_key: str | None = None,
    operator: str | None = None,
    visibility: str | None = None,
    auto_status: bool = False,
    time_skipped: str | None = None,
    ticket_verified: bool = True,
) -> Any:
    """A new change-log row in state ``pending`` (not added to a session).

    ``visibility``: the note's visibility (``internal``/``discussion``/``resolution``; ``None``:
    from ``internal``). ``auto_status``: the status is chosen at delivery from the tenant's
    board map. ``time_skipped``: why no time entry is made (e.g. "no time entry: ticket #12348
    is closed"); the time step is recorded ``skipped`` with that reason as its error. It is
    not part of the request hash: it comes from the ticket's state, not from the request.
    ``ticket_verified=False``: the ticket was accepted unchecked (ConnectWise slow or down
    before submit); delivery reads it first. Not hashed either.
    """
    digest = request_hash(
        ticket_id=ticket_id,
        note_text=note_text,
        member=member,
        hours=hours,
        status_id=status_id,
        internal=internal,
        visibility=visibility,
        auto_status=auto_status,
    )
    if time_skipped:
        hours = None
    return models.ChangeLog(
        reference=new_reference(),
        tenant_id=tenant_id,
        ticket_id=ticket_id,
        note_text=note_text,
        internal=internal,
        member=member,
        hours=hours,
        status_id=status_id,
        idempotency_key=idempotency_key,
        request_hash=digest,
        operator=operator,
        state=ChangeState.PENDING,
        note_state=StepState.PENDING,
        time_state=StepState.PENDING if hours else StepState.SKIPPED,
        time_error=time_skipped or None,
        status_state=StepState.PENDING if status_id or auto_status else StepState.SKIPPED,
        visibility=visibility,
        auto_status=bool(auto_status),
        ticket_verified=bool(ticket_verified),
        note_attempts=0,
        time_attempts=0,
        status_attempts=0,
    )
