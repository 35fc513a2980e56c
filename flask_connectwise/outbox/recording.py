"""A new change for the outbox: its row, its reference and the checks on what it asks for."""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

from ..models import ChangeState, Models, StepState
from ..settings import InputError

REFERENCE_PREFIX = "cwlog-"
#: The shortest time entry ConnectWise is sent: one minute.
MIN_HOURS = 1 / 60
MAX_HOURS = 24.0


def check_hours(
    hours: float | None, field: str = "hours", *, optional: bool = True
) -> float | None:
    """``hours`` if it is a time entry ConnectWise takes (one minute to 24 hours), else
    :class:`~flask_connectwise.settings.InputError` naming ``field``. With ``optional``,
    ``None`` (the tenant's default) and ``0`` (no time entry) pass too."""
    if hours is None and optional:
        return None
    if isinstance(hours, bool) or not isinstance(hours, int | float) or hours != hours:
        raise InputError(field, f"{field} must be a number")
    if hours == 0 and optional:
        return 0.0
    # A little slack: minutes are stored as hours rounded to 4 places (1 min = 0.0167 h).
    if hours * 60 < 1 - 1e-6:
        raise InputError(field, f"{field} must be at least one minute (1/60 hour)")
    if hours > MAX_HOURS:
        raise InputError(field, f"{field} must be at most {MAX_HOURS:g}")
    return float(hours)


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
) -> Any:
    """A new change-log row in state ``pending`` (not added to a session)."""
    digest = request_hash(
        ticket_id=ticket_id,
        note_text=note_text,
        member=member,
        hours=hours,
        status_id=status_id,
        internal=internal,
    )
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
        status_state=StepState.PENDING if status_id else StepState.SKIPPED,
        note_attempts=0,
        time_attempts=0,
        status_attempts=0,
    )
