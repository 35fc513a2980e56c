"""The outbox: every log-change, from the host's transaction to the ticket.

:class:`Outbox` records a change in the host's session, delivers it after the commit, at once,
or through the :class:`OutboxWorker`, step by step and at most once per step; :class:`Outcome`
says how it went, in the HTTP contract's JSON and in plain words (:meth:`Outcome.summary`).
"""

from .delivery import Deliverer, failure_text
from .outbox import (
    LEASE_SECONDS,
    REPLAY_WAIT_SECONDS,
    IdempotencyConflict,
    IdempotencyInProgress,
    Outbox,
)
from .outcome import Outcome, Step, StepResult, outcome_of
from .recording import check_hours, new_change, new_reference, reference_line, request_hash
from .scheduling import Pending, Report
from .worker import OutboxWorker, RunSummary, TenantThrottle

__all__ = [
    "LEASE_SECONDS",
    "REPLAY_WAIT_SECONDS",
    "Deliverer",
    "IdempotencyConflict",
    "IdempotencyInProgress",
    "Outbox",
    "OutboxWorker",
    "Outcome",
    "Pending",
    "Report",
    "RunSummary",
    "Step",
    "StepResult",
    "TenantThrottle",
    "check_hours",
    "failure_text",
    "new_change",
    "new_reference",
    "outcome_of",
    "reference_line",
    "request_hash",
]
