"""Tables: per-tenant credentials, the feature flag, and the change log (the outbox).

The models are defined on the host's Flask-SQLAlchemy ``db`` (so they share its metadata,
session and ``create_all``) by :func:`define_models`, once per ``db``. Rows are keyed by a
tenant string, never by a foreign key into host tables. Secrets are stored only as ciphertext
(see :mod:`flask_connectwise.crypto`); the models never hold a plaintext secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import sqlalchemy as sa

CREDENTIALS_TABLE = "connectwise_credentials"
FLAGS_TABLE = "connectwise_feature_flags"
CHANGE_LOG_TABLE = "connectwise_change_log"
#: Columns of the credentials table that hold ciphertext.
SECRET_COLUMNS = ("public_key", "private_key", "client_id")
#: The feature flag's key.
FEATURE_KEY = "connectwise_integration"
#: ``tenant_id`` of the flag row that applies to every tenant without a row of its own.
ALL_TENANTS = "*"


class StepState:
    """States of one delivery step (note, time entry, status)."""

    #: Not sent yet.
    PENDING: Final = "pending"
    #: Sent, outcome unknown: looked up on the ticket before it is sent again.
    SENT: Final = "sent"
    #: Done; the remote id is stored.
    CONFIRMED: Final = "confirmed"
    #: Refused or not reached; the step's error says why.
    FAILED: Final = "failed"
    #: Nothing to do (no time entry or no status asked for).
    SKIPPED: Final = "skipped"
    #: Done or nothing to do.
    FINISHED: Final = frozenset({CONFIRMED, SKIPPED})


class ChangeState:
    """States of a whole change (one outbox row)."""

    #: Waiting for its first delivery.
    PENDING: Final = "pending"
    #: Every step done.
    DELIVERED: Final = "delivered"
    #: A step failed in a way that may pass; the worker tries again.
    RETRYING: Final = "retrying"
    #: Refused for good or too old: needs attention, never claimed again (an admin may retry).
    FAILED: Final = "failed"
    #: Every state, in display order.
    ALL: Final = (PENDING, DELIVERED, RETRYING, FAILED)
    #: States the worker claims.
    DUE: Final = (PENDING, RETRYING)


# The names before StepState / ChangeState, kept for integrators (GAVE_UP is ChangeState.FAILED).
PENDING, SENT, CONFIRMED, FAILED, SKIPPED = (
    StepState.PENDING,
    StepState.SENT,
    StepState.CONFIRMED,
    StepState.FAILED,
    StepState.SKIPPED,
)
CHANGE_PENDING, DELIVERED, RETRYING, GAVE_UP = ChangeState.ALL
CHANGE_STATES = ChangeState.ALL


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Models:
    """The model classes bound to one ``db``."""

    Credentials: Any
    FeatureFlag: Any
    ChangeLog: Any


_MODELS_ATTR = "_connectwise_models"


def define_models(db: Any) -> Models:
    """Define (once) and return the extension's models on the host's ``db``."""
    existing = getattr(db, _MODELS_ATTR, None)
    if existing is not None:
        return existing

    class ConnectWiseCredentials(db.Model):  # type: ignore[name-defined,misc]
        """One tenant's ConnectWise connection; secrets are ciphertext."""

        __tablename__ = CREDENTIALS_TABLE

        id = sa.Column(sa.Integer, primary_key=True)
        tenant_id = sa.Column(sa.String(64), nullable=False, unique=True)
        base_url = sa.Column(sa.String(255), nullable=False)
        company_id = sa.Column(sa.String(64), nullable=False)
        public_key = sa.Column(sa.Text, nullable=False)
        private_key = sa.Column(sa.Text, nullable=False)
        client_id = sa.Column(sa.Text, nullable=False)
        public_key_hint = sa.Column(sa.String(4), nullable=False, default="")
        client_id_hint = sa.Column(sa.String(4), nullable=False, default="")
        default_time_minutes = sa.Column(sa.Integer, nullable=False, default=15)
        auto_update_status = sa.Column(sa.Boolean, nullable=False, default=False)
        default_status_id = sa.Column(sa.Integer, nullable=True)
        revision = sa.Column(sa.Integer, nullable=False, default=1)
        created_at = sa.Column(sa.DateTime, nullable=False, default=utcnow)
        updated_at = sa.Column(sa.DateTime, nullable=False, default=utcnow, onupdate=utcnow)
        updated_by = sa.Column(sa.String(128), nullable=True)
        last_verified_at = sa.Column(sa.DateTime, nullable=True)
        last_error = sa.Column(sa.Text, nullable=True)

        def __repr__(self) -> str:
            return f"<ConnectWiseCredentials tenant={self.tenant_id!r} company={self.company_id!r}>"

    class ConnectWiseFeatureFlag(db.Model):  # type: ignore[name-defined,misc]
        """A feature flag, for one tenant or (``tenant_id='*'``) for all."""

        __tablename__ = FLAGS_TABLE
        __table_args__ = (sa.UniqueConstraint("key", "tenant_id", name="uq_connectwise_flag"),)

        id = sa.Column(sa.Integer, primary_key=True)
        key = sa.Column(sa.String(64), nullable=False, default=FEATURE_KEY)
        tenant_id = sa.Column(sa.String(64), nullable=False, default=ALL_TENANTS)
        enabled = sa.Column(sa.Boolean, nullable=False, default=False)
        updated_at = sa.Column(sa.DateTime, nullable=False, default=utcnow, onupdate=utcnow)
        updated_by = sa.Column(sa.String(128), nullable=True)

        def __repr__(self) -> str:
            return f"<ConnectWiseFeatureFlag {self.key} tenant={self.tenant_id!r} {self.enabled}>"

    class ConnectWiseChangeLog(db.Model):  # type: ignore[name-defined,misc]
        """One log-change request and the delivery state of each of its steps."""

        __tablename__ = CHANGE_LOG_TABLE
        __table_args__ = (
            sa.UniqueConstraint("tenant_id", "idempotency_key", name="uq_connectwise_change_key"),
            sa.Index("ix_connectwise_change_log_state", "state", "next_attempt_at"),
            sa.Index("ix_connectwise_change_log_tenant", "tenant_id", "created_at"),
        )

        id = sa.Column(sa.Integer, primary_key=True)
        reference = sa.Column(sa.String(16), nullable=False, unique=True)
        tenant_id = sa.Column(sa.String(64), nullable=False)
        ticket_id = sa.Column(sa.Integer, nullable=False)
        note_text = sa.Column(sa.Text, nullable=False)
        internal = sa.Column(sa.Boolean, nullable=False, default=False)
        member = sa.Column(sa.String(128), nullable=True)
        hours = sa.Column(sa.Float, nullable=True)
        status_id = sa.Column(sa.Integer, nullable=True)
        idempotency_key = sa.Column(sa.String(128), nullable=True)
        request_hash = sa.Column(sa.String(64), nullable=False)
        operator = sa.Column(sa.String(128), nullable=True)
        state = sa.Column(sa.String(16), nullable=False, default=ChangeState.PENDING)
        created_at = sa.Column(sa.DateTime, nullable=False, default=utcnow)
        updated_at = sa.Column(sa.DateTime, nullable=False, default=utcnow, onupdate=utcnow)
        next_attempt_at = sa.Column(sa.DateTime, nullable=True)
        lease_owner = sa.Column(sa.String(64), nullable=True)
        lease_until = sa.Column(sa.DateTime, nullable=True)
        note_state = sa.Column(sa.String(16), nullable=False, default=ChangeState.PENDING)
        note_remote_id = sa.Column(sa.Integer, nullable=True)
        note_attempts = sa.Column(sa.Integer, nullable=False, default=0)
        note_error = sa.Column(sa.Text, nullable=True)
        time_state = sa.Column(sa.String(16), nullable=False, default=ChangeState.PENDING)
        time_remote_id = sa.Column(sa.Integer, nullable=True)
        time_attempts = sa.Column(sa.Integer, nullable=False, default=0)
        time_error = sa.Column(sa.Text, nullable=True)
        status_state = sa.Column(sa.String(16), nullable=False, default=StepState.SKIPPED)
        status_attempts = sa.Column(sa.Integer, nullable=False, default=0)
        status_error = sa.Column(sa.Text, nullable=True)

        def step_state(self, step: str) -> str:
            return str(getattr(self, f"{step}_state"))

        def __repr__(self) -> str:
            return (
                f"<ConnectWiseChangeLog {self.reference} tenant={self.tenant_id!r} "
                f"ticket={self.ticket_id} {self.state}>"
            )

    models = Models(ConnectWiseCredentials, ConnectWiseFeatureFlag, ConnectWiseChangeLog)
    setattr(db, _MODELS_ATTR, models)
    return models
