"""Delivery right after the host's commit.

A change recorded in the host's session is remembered in ``session.info``; once that session
commits, each change is delivered in a fresh app context (the committed session may not emit
SQL any more) and its ``report`` callback is told the outcome, or the exception that stopped
the delivery. A rollback forgets them: nothing is sent for a change that was never stored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..tenants import IntegrationOffError
from .outcome import Outcome

if TYPE_CHECKING:
    from .outbox import Outbox

log = logging.getLogger("flask_connectwise.outbox")

#: ``report(ticket_id, outcome or the exception that stopped the delivery)``.
Report = Callable[[int, Outcome | Exception], None]

_PENDING = "connectwise_pending_changes"
_LISTENING = "connectwise_listening"


def schedule(outbox: Outbox, change: Any, report: Report | None) -> None:
    """Deliver ``change`` once the session it was added to commits (dropped on rollback)."""
    session = outbox.session()
    session.info.setdefault(_PENDING, []).append((outbox, change, report))
    if not session.info.get(_LISTENING):
        session.info[_LISTENING] = True
        sa.event.listen(session, "after_commit", _after_commit)
        sa.event.listen(session, "after_rollback", _after_rollback)


def _after_rollback(session: Any) -> None:
    session.info.pop(_PENDING, None)


def _after_commit(session: Any) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    due: list[tuple[Outbox, Any, int, Report | None]] = []
    for outbox, change, report in pending:
        identity = sa.inspect(change).identity
        if identity:
            due.append((outbox, identity[0], int(change.ticket_id), report))
    results: list[tuple[Report, int, Outcome | Exception]] = []
    for outbox, change_id, ticket_id, report in due:
        result = _deliver(outbox, change_id)
        if result is not None and report is not None:
            results.append((report, ticket_id, result))
    # Reported in the committing context (where the request, and so flashing, lives).
    for report, ticket_id, result in results:
        report(ticket_id, result)


def _deliver(outbox: Outbox, change_id: int) -> Outcome | Exception | None:
    with outbox.app.app_context():
        try:
            change = outbox.session.get(outbox.models.ChangeLog, change_id)
            if change is None:
                return None
            return outbox.deliver(change)
        except IntegrationOffError as exc:
            # Turned off since the form was shown: nothing sent; the change waits.
            outbox.session.rollback()
            return exc
        except Exception as exc:
            log.exception("connectwise change delivery after commit failed")
            outbox.session.rollback()
            return exc
