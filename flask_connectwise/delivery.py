"""Old home of log-change delivery, kept importable: see :mod:`flask_connectwise.outbox`."""

from .outbox.delivery import Deliverer, failure_text
from .outbox.outcome import Outcome, Step, StepResult, outcome_of
from .outbox.recording import (
    MAX_HOURS,
    MIN_HOURS,
    REFERENCE_PREFIX,
    check_hours,
    new_change,
    new_reference,
    reference_line,
    request_hash,
)

__all__ = [
    "MAX_HOURS",
    "MIN_HOURS",
    "REFERENCE_PREFIX",
    "Deliverer",
    "Outcome",
    "Step",
    "StepResult",
    "check_hours",
    "failure_text",
    "new_change",
    "new_reference",
    "outcome_of",
    "reference_line",
    "request_hash",
]
