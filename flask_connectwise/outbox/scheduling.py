"""Delivery right after the host's commit, off the request.

A change recorded in the host's session is remembered in ``session.info``; once that session
commits, each change is handed to the app's dispatcher (``state().dispatcher.submit``), which
delivers it off the committing thread. The commit then waits at most
``CONNECTWISE_INLINE_WAIT`` seconds in total for the outcomes, and each change's ``report``
callback is told its outcome, or :class:`Pending` when it had not finished by then (the
outbox finishes the job; :mod:`flask_connectwise.notices` tells the operator later). A
rollback forgets them: nothing is sent for a change that was never stored.

Without a dispatcher (an app state built by hand), each change is delivered in a fresh app
context before ``report`` is told the outcome or the exception that stopped the delivery.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..tenants import IntegrationOffError
from .outcome import Outcome

if TYPE_CHECKING:
    from .outbox import Outbox

log = logging.getLogger("flask_connectwise.outbox")


@dataclass(frozen=True)
class Pending:
    """A committed change whose delivery had not finished within ``CONNECTWISE_INLINE_WAIT``."""

    change_id: int
    reference: str | None
    tenant_id: str | None
    ticket_id: int


#: ``report(ticket_id, outcome, the exception that stopped the delivery, or Pending)``.
Report = Callable[[int, Outcome | Exception | Pending], None]

_PENDING = "connectwise_pending_changes"
_LISTENING = "connectwise_listening"


def schedule(outbox: Outbox, change: Any, report: Report | None) -> None:
    """Deliver ``change`` once the session it was added to commits (dropped on rollback)."""
    session = outbox.session()
    # Read now: after the commit the row's attributes may be expired.
    names = (getattr(change, "reference", None), getattr(change, "tenant_id", None))
    session.info.setdefault(_PENDING, []).append((outbox, change, names, report))
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
    due: list[tuple[Outbox, Pending, Report | None]] = []
    for outbox, change, (reference, tenant_id), report in pending:
        identity = sa.inspect(change).identity
        if identity:
            ticket_id = int(change.ticket_id)
            found = Pending(int(identity[0]), reference, tenant_id, ticket_id)
            due.append((outbox, found, report))
    if not due:
        return
    dispatcher = _dispatcher(due[0][0])
    results: list[tuple[Report, int, Outcome | Exception | Pending]] = []
    if dispatcher is None:
        for outbox, change, report in due:
            delivered = _deliver(outbox, change.change_id)
            if delivered is not None and report is not None:
                results.append((report, change.ticket_id, delivered))
    else:
        results.extend(_dispatch(dispatcher, due))
    # Reported in the committing context (where the request, and so flashing, lives).
    for tell, ticket_id, told in results:
        tell(ticket_id, told)


def _dispatcher(outbox: Outbox) -> Any:
    """The app's dispatcher, or ``None`` (then delivery runs here, as before)."""
    extension_state = outbox.app.extensions.get("connectwise")
    return getattr(extension_state, "dispatcher", None)


def inline_wait(outbox: Outbox) -> float:
    """``CONNECTWISE_INLINE_WAIT`` (seconds, at least 0)."""
    try:
        return max(0.0, float(outbox.app.config.get("CONNECTWISE_INLINE_WAIT", 1.0)))
    except (TypeError, ValueError):
        return 1.0


def _dispatch(
    dispatcher: Any, due: list[tuple[Outbox, Pending, Report | None]]
) -> list[tuple[Report, int, Outcome | Exception | Pending]]:
    """Submit every change, then wait for their outcomes: ``CONNECTWISE_INLINE_WAIT`` in all."""
    handles: list[tuple[Outbox, Pending, Report | None, Any]] = []
    for outbox, change, report in due:
        try:
            handle = dispatcher.submit(change.change_id)
        except Exception:
            # The row is committed: the sweep (or the worker) delivers it later.
            log.exception("connectwise change could not be handed to the dispatcher")
            handle = None
        handles.append((outbox, change, report, handle))
    deadline = time.monotonic() + inline_wait(due[0][0])
    answers: list[tuple[Report, int, Outcome | Exception | Pending]] = []
    for outbox, change, report, handle in handles:
        outcome: Outcome | None = None
        if handle is not None:
            try:
                outcome = handle.wait(max(0.0, deadline - time.monotonic()))
            except Exception:
                log.exception("connectwise change delivery after commit failed")
        if report is not None:
            answer = outcome if outcome is not None else _not_finished(outbox, change)
            answers.append((report, change.ticket_id, answer))
    return answers


def _not_finished(outbox: Outbox, change: Pending) -> IntegrationOffError | Pending:
    """Why ``change`` has no outcome yet: the tenant's integration is off (it waits until it is
    turned on), else it is still being delivered."""
    if not change.tenant_id:
        return change
    try:
        with outbox.app.app_context():
            outbox.tenants.ensure_on(change.tenant_id)
    except IntegrationOffError as exc:
        return exc
    except Exception:
        log.exception("connectwise: the feature flag could not be read after commit")
    return change


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
