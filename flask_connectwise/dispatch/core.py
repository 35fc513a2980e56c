"""Delivering one committed change, wherever it runs, and waiting for its outcome.

:func:`deliver_change_in` is what every delivery mode runs for one change id (the thread pool,
the Celery task, the RQ job): it takes the row's lease, delivers it as the outbox worker does
(the tenant's shared rate limit, the outbox's backoff for the next attempt) and gives the lease
back. The row is the source of truth: a change already delivered, refused for good, leased by
someone else or not due yet (a retry waiting out its backoff) is left alone, so a duplicated or
late task message never writes twice.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Flask

from ..faults import log_fields, outage_cause
from ..models import ChangeState, utcnow
from ..outbox import Outcome
from ..outbox.worker import OutboxWorker, RunSummary

log = logging.getLogger("flask_connectwise.dispatch")

#: How often a :class:`PollingHandle` reads the row again, seconds.
POLL_SECONDS = 0.05


def throttle_for(app: Flask) -> Any:
    """The tenant rate limit every delivery of ``app`` in this process shares
    (:func:`flask_connectwise.ratelimit.for_app`: shared through Redis when there is one)."""
    from .. import ratelimit

    return ratelimit.for_app(app)


#: Seconds one change's job waits for its tenant's rate limit (a ``Retry-After`` pause longer
#: than this puts the change off to the sweep instead).
TOKEN_WAIT = 3.0


def new_worker(app: Flask, *, worker_id: str | None = None) -> OutboxWorker:
    """An :class:`OutboxWorker` for ``app`` (in its app context) with the shared rate limit."""
    from ..current import state

    return OutboxWorker(
        state(app).outbox,
        throttle=throttle_for(app),
        worker_id=worker_id,
        token_wait=TOKEN_WAIT,
    )


def deliver_change_in(app: Flask, change_id: int) -> Outcome | None:
    """Deliver the committed change ``change_id`` of ``app`` now, in a fresh app context.

    Returns the outcome when a delivery was attempted; ``None`` when nothing was done (no such
    change, already finished, not due yet, someone else holds it, the tenant's integration is
    off, or an error that was logged). Never raises.
    """
    try:
        with app.app_context():
            return _deliver(app, change_id)
    except Exception as exc:
        log.error(
            "connectwise change delivery failed; the change stays queued",
            extra=log_fields(exc, cw_change_id=change_id),
        )
        return None


def _deliver(app: Flask, change_id: int) -> Outcome | None:
    worker = new_worker(app)
    outbox = worker.outbox
    session = outbox.session
    row = session.get(outbox.models.ChangeLog, change_id)
    if row is None or row.state not in ChangeState.DUE:
        return None
    if row.next_attempt_at is not None and row.next_attempt_at > utcnow():
        return None  # a retry waiting out its backoff: the sweep or a worker claims it then
    if not outbox.take_lease(row, worker.worker_id, seconds=worker.lease_seconds):
        return None  # someone else is delivering it
    session.refresh(row)
    if row.state not in ChangeState.DUE:
        outbox.release_lease(row, worker.worker_id)
        return None
    summary = RunSummary()
    try:
        worker._deliver_one(row, summary)
    except Exception as exc:
        if outage_cause(exc) is not None:
            session.rollback()
            worker.release_leases()
            raise
        # The worker's rule: an unexpected error sets the change aside (needs attention).
        worker.set_aside(change_id, exc)
    if summary.paused or summary.deferred:
        return None
    session.expire_all()
    row = session.get(outbox.models.ChangeLog, change_id)
    return None if row is None else Outcome.of(row)


def finished_outcome(app: Flask, change_id: int) -> Outcome | None:
    """The change's outcome once it has left "pending" and nobody is delivering it; else
    ``None``. Read in a fresh app context (a fresh session); never raises."""
    try:
        with app.app_context():
            from ..current import state

            outbox = state(app).outbox
            row = outbox.session.get(outbox.models.ChangeLog, change_id)
            if row is None:
                return None
            if row.state == ChangeState.PENDING:
                return None
            leased = row.lease_until is not None and row.lease_until > utcnow()
            if row.state != ChangeState.DELIVERED and leased:
                return None  # being delivered (again) right now
            return Outcome.of(row)
    except Exception as exc:
        log.warning(
            "connectwise: could not read a change's state",
            extra=log_fields(exc, cw_change_id=change_id),
        )
        return None


def poll(app: Flask, change_id: int, timeout: float) -> Outcome | None:
    """:func:`finished_outcome`, read every :data:`POLL_SECONDS` for up to ``timeout`` seconds."""
    deadline = time.monotonic() + max(0.0, timeout)
    while True:
        outcome = finished_outcome(app, change_id)
        left = deadline - time.monotonic()
        if outcome is not None or left <= 0:
            return outcome
        time.sleep(min(POLL_SECONDS, left))
