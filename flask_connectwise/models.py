"""Tables: per-tenant credentials, the feature flag, and the change log (the outbox).

Each table's columns are a typed mixin (:class:`CredentialsRow`, :class:`FeatureFlagRow`,
:class:`ChangeLogRow`, SQLAlchemy 2 ``Mapped[...]``); :func:`define_models` maps them, once per
``db``, on the host's Flask-SQLAlchemy ``db`` (so they share its metadata, session and
``create_all``) and returns the classes typed as those mixins. Rows are keyed by a tenant
string, never by a foreign key into host tables. Secrets are stored only as ciphertext (see
:mod:`flask_connectwise.crypto`); the models never hold a plaintext secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, cast

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

if TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

    from .outbox.outcome import Step

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


class _Row:
    """What every mapped row has: SQLAlchemy's keyword constructor (typed for mypy only)."""

    if TYPE_CHECKING:

        def __init__(self, **columns: object) -> None: ...


class CredentialsRow(_Row):
    """One tenant's ConnectWise connection; secrets are ciphertext."""

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.String(64), nullable=False, unique=True)
    base_url: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    company_id: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    public_key: Mapped[str] = mapped_column(sa.Text, nullable=False)
    private_key: Mapped[str] = mapped_column(sa.Text, nullable=False)
    client_id: Mapped[str] = mapped_column(sa.Text, nullable=False)
    public_key_hint: Mapped[str] = mapped_column(sa.String(4), nullable=False, default="")
    client_id_hint: Mapped[str] = mapped_column(sa.String(4), nullable=False, default="")
    default_time_minutes: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=15)
    auto_update_status: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)
    default_status_id: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    revision: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=1)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime, nullable=False, default=utcnow, onupdate=utcnow
    )
    updated_by: Mapped[str | None] = mapped_column(sa.String(128), nullable=True)
    last_verified_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    # What the tenant serves and how its changes are logged (see credentials.TenantSettings);
    # the JSON columns hold ids with the names ConnectWise gave when they were chosen.
    company_scope: Mapped[str] = mapped_column(
        sa.String(8), nullable=False, default="unset", server_default="unset"
    )
    companies: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    work_type: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    work_role: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    billable_option: Mapped[str | None] = mapped_column(sa.String(16), nullable=True)
    note_visibility: Mapped[str] = mapped_column(
        sa.String(16), nullable=False, default="internal", server_default="internal"
    )
    email_contact: Mapped[bool] = mapped_column(
        sa.Boolean, nullable=False, default=False, server_default=sa.false()
    )
    board_statuses: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    ticket_policy: Mapped[str] = mapped_column(
        sa.String(8), nullable=False, default="refuse", server_default="refuse"
    )

    def __repr__(self) -> str:
        return f"<ConnectWiseCredentials tenant={self.tenant_id!r} company={self.company_id!r}>"


class FeatureFlagRow(_Row):
    """A feature flag, for one tenant or (``tenant_id='*'``) for all."""

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(64), nullable=False, default=FEATURE_KEY)
    tenant_id: Mapped[str] = mapped_column(sa.String(64), nullable=False, default=ALL_TENANTS)
    enabled: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime, nullable=False, default=utcnow, onupdate=utcnow
    )
    updated_by: Mapped[str | None] = mapped_column(sa.String(128), nullable=True)

    def __repr__(self) -> str:
        return f"<ConnectWiseFeatureFlag {self.key} tenant={self.tenant_id!r} {self.enabled}>"


@dataclass(frozen=True)
class StepColumns:
    """One delivery step's columns on a change-log row (see :meth:`ChangeLogRow.step`).

    ``remote_id`` is the created note's or time entry's id; the status step has none (its
    column is always ``None`` and writing one is ignored).
    """

    state: str
    attempts: int = 0
    error: str | None = None
    remote_id: int | None = None


class ChangeLogRow(_Row):
    """One log-change request and the delivery state of each of its steps."""

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(sa.String(16), nullable=False, unique=True)
    tenant_id: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    ticket_id: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    note_text: Mapped[str] = mapped_column(sa.Text, nullable=False)
    internal: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)
    member: Mapped[str | None] = mapped_column(sa.String(128), nullable=True)
    hours: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    status_id: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(128), nullable=True)
    request_hash: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    operator: Mapped[str | None] = mapped_column(sa.String(128), nullable=True)
    state: Mapped[str] = mapped_column(sa.String(16), nullable=False, default=ChangeState.PENDING)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime, nullable=False, default=utcnow, onupdate=utcnow
    )
    next_attempt_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)
    note_state: Mapped[str] = mapped_column(
        sa.String(16), nullable=False, default=ChangeState.PENDING
    )
    note_remote_id: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    note_attempts: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    note_error: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    time_state: Mapped[str] = mapped_column(
        sa.String(16), nullable=False, default=ChangeState.PENDING
    )
    time_remote_id: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    time_attempts: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    time_error: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    status_state: Mapped[str] = mapped_column(
        sa.String(16), nullable=False, default=StepState.SKIPPED
    )
    status_attempts: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    status_error: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    #: Note visibility (``internal``, ``discussion``, ``resolution``); ``None``: from ``internal``.
    visibility: Mapped[str | None] = mapped_column(sa.String(16), nullable=True)
    #: The status is chosen at delivery from the tenant's board → status map.
    auto_status: Mapped[bool] = mapped_column(
        sa.Boolean, nullable=False, default=False, server_default=sa.false()
    )
    #: False: the ticket was accepted unchecked (ConnectWise slow or down before submit);
    #: delivery reads it first (not found: a permanent failure; another company: refused).
    ticket_verified: Mapped[bool] = mapped_column(
        sa.Boolean, nullable=False, default=True, server_default=sa.true()
    )

    def step(self, step: Step) -> StepColumns:
        """The columns of ``step`` (attempts read as 0 before the row's first flush)."""
        return self._step_columns(step.value)

    def set_step(self, step: Step, columns: StepColumns) -> None:
        """Write ``columns`` to ``step``'s columns (an unchanged value is no change)."""
        match step.value:
            case "note":
                self.note_state, self.note_attempts = columns.state, columns.attempts
                self.note_error, self.note_remote_id = columns.error, columns.remote_id
            case "time":
                self.time_state, self.time_attempts = columns.state, columns.attempts
                self.time_error, self.time_remote_id = columns.error, columns.remote_id
            case "status":
                self.status_state, self.status_attempts = columns.state, columns.attempts
                self.status_error = columns.error

    def step_state(self, step: str) -> str:
        """The state of the step named ``step`` (``note``, ``time``, ``status``)."""
        return self._step_columns(step).state

    def _step_columns(self, name: str) -> StepColumns:
        match name:
            case "note":
                state, attempts, error = self.note_state, self.note_attempts, self.note_error
                remote_id = self.note_remote_id
            case "time":
                state, attempts, error = self.time_state, self.time_attempts, self.time_error
                remote_id = self.time_remote_id
            case "status":
                state, attempts, error = self.status_state, self.status_attempts, self.status_error
                remote_id = None
            case _:
                raise ValueError(f"no step {name!r}")
        return StepColumns(state, attempts or 0, error, remote_id)

    def __repr__(self) -> str:
        return (
            f"<ConnectWiseChangeLog {self.reference} tenant={self.tenant_id!r} "
            f"ticket={self.ticket_id} {self.state}>"
        )


@dataclass(frozen=True)
class Models:
    """The model classes bound to one ``db``."""

    Credentials: type[CredentialsRow]
    FeatureFlag: type[FeatureFlagRow]
    ChangeLog: type[ChangeLogRow]


_MODELS_ATTR = "_connectwise_models"


def define_models(db: SQLAlchemy) -> Models:
    """Define (once) and return the extension's models on the host's ``db``."""
    existing = getattr(db, _MODELS_ATTR, None)
    if existing is not None:
        return cast(Models, existing)

    # The table names and constraints are written here, per ``db``: a constraint belongs to
    # one table, so each mapping needs its own.
    class ConnectWiseCredentials(CredentialsRow, db.Model):  # type: ignore[name-defined,misc]
        __doc__ = CredentialsRow.__doc__
        __tablename__ = CREDENTIALS_TABLE

    class ConnectWiseFeatureFlag(FeatureFlagRow, db.Model):  # type: ignore[name-defined,misc]
        __doc__ = FeatureFlagRow.__doc__
        __tablename__ = FLAGS_TABLE
        __table_args__ = (sa.UniqueConstraint("key", "tenant_id", name="uq_connectwise_flag"),)

    class ConnectWiseChangeLog(ChangeLogRow, db.Model):  # type: ignore[name-defined,misc]
        __doc__ = ChangeLogRow.__doc__
        __tablename__ = CHANGE_LOG_TABLE
        __table_args__ = (
            sa.UniqueConstraint("tenant_id", "idempotency_key", name="uq_connectwise_change_key"),
            sa.Index("ix_connectwise_change_log_state", "state", "next_attempt_at"),
            sa.Index("ix_connectwise_change_log_tenant", "tenant_id", "created_at"),
        )

    models = Models(ConnectWiseCredentials, ConnectWiseFeatureFlag, ConnectWiseChangeLog)
    setattr(db, _MODELS_ATTR, models)
    return models
