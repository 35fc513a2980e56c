"""``Outbox``: record changes in the host's transaction, then deliver them with a lease.

One :class:`Outbox` exists per app (``cw.outbox``). A change is recorded in the host's session
(:meth:`Outbox.record`) so it commits with the host's own change; it is delivered right after
that commit (:meth:`Outbox.deliver_after_commit`), at once (:meth:`Outbox.log_change`), or by
a worker (:meth:`Outbox.claim` then :meth:`Outbox.deliver_leased`). Whoever delivers holds a
lease on the row (``lease_owner``/``lease_until``, :data:`LEASE_SECONDS`), so two deliveries
never run at once. It never reads Flask's request globals.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from blinker import NamedSignal

from ..crypto import CryptoError
from ..errors import ConnectWiseError, CredentialsUnusableError
from ..faults import log_fields, new_incident, outage_cause, unexpected_reason
from ..impersonation import Impersonation
from ..members import MemberCheck
from ..models import ChangeLogRow, ChangeState, Models, StepState, utcnow
from ..records import Note, TimeEntry
from ..signals import change_failed, change_logged
from ..tenants import NotConfiguredError, Tenants
from .delivery import Deliverer
from .outcome import Outcome, Step
from .recording import check_hours, new_change
from .scheduling import Report, schedule

log = logging.getLogger("flask_connectwise.outbox")

#: How long a claim or a delivery holds a change (seconds); a holder that dies frees it then.
LEASE_SECONDS = 120.0
#: How long a repeated request waits for the first one with its idempotency key to finish.
REPLAY_WAIT_SECONDS = 10.0


class IdempotencyConflict(ConnectWiseError):
    """The idempotency key was used before with different content."""

    http_status = 409
    error_code = "idempotency_conflict"


class IdempotencyInProgress(ConnectWiseError):
    """The first request with this idempotency key is still being delivered."""

    http_status = 409
    error_code = "idempotency_in_progress"
    retry_after = 1.0


def new_lease_owner() -> str:
    """A lease owner for a delivery made now (not by a worker)."""
    return f"now:{uuid.uuid4().hex[:12]}"


class Outbox:
    """The change log of one app: record, claim, deliver, retry, count, find."""

    def __init__(
        self,
        *,
        app: Any,
        db: Any,
        models: Models,
        tenants: Tenants,
        members: MemberCheck | None = None,
        impersonation: Impersonation | None = None,
    ) -> None:
        #: The Flask app: the sender of the signals, and the context of after-commit deliveries.
        self.app = app
        self.db = db
        self.models = models
        self.tenants = tenants
        #: Checks each change's member before anything is written (``None``: not checked).
        self.members = members
        #: Member tokens for writes as the technician (CONNECTWISE_IMPERSONATE_MEMBERS).
        self.impersonation = impersonation
        #: Seconds a repeated idempotency key waits for the first request (see :meth:`replay`).
        self.replay_wait = REPLAY_WAIT_SECONDS
        tenants.on_credentials_saved(self.make_due)

    @property
    def session(self) -> Any:
        """The host's database session."""
        return self.db.session

    @property
    def _model(self) -> Any:
        return self.models.ChangeLog

    # -- finding and counting ----------------------------------------------------------------

    def find(self, change: int | str) -> Any:
        """The change with this id (an ``int`` or a string of digits) or reference, or ``None``."""
        model, query = self._model, self.session.query(self._model)
        if isinstance(change, int) or change.isdigit():
            return query.filter(model.id == int(change)).one_or_none()
        return query.filter(model.reference == change).one_or_none()

    def find_by_key(self, tenant_id: str, key: str) -> Any:
        """The tenant's change recorded with this idempotency key, or ``None``."""
        model = self._model
        return (
            self.session.query(model)
            .filter(model.tenant_id == tenant_id, model.idempotency_key == key)
            .one_or_none()
        )

    def counts(self) -> dict[str, int]:
        """Changes per state."""
        model = self._model
        rows = self.session.execute(
            sa.select(model.state, sa.func.count()).group_by(model.state)
        ).all()
        return {state: count for state, count in rows}

    # -- recording ---------------------------------------------------------------------------

    def record(
        self,
        tenant_id: str,
        ticket_id: int,
        note_text: str,
        *,
        member: str | None = None,
        hours: float | None = None,
        status_id: int | None = None,
        internal: bool = False,
        idempotency_key: str | None = None,
        operator: str | None = None,
        lease_owner: str | None = None,
        visibility: str | None = None,
        auto_status: bool = False,
        time_skipped: str | None = None,
        ticket_verified: bool = True,
    ) -> tuple[ChangeLogRow, bool]:
        """Add a change to the session (not committed); returns ``(row, created)``.

        ``hours`` defaults to the tenant's default minutes; the status defaults to the tenant's
        default status when it auto-updates status. A repeated idempotency key returns the
        first row; the same key with different content raises :class:`IdempotencyConflict`.
        ``hours=0`` logs no time entry; other ``hours`` under one minute (or over 24) raise
        :class:`~.settings.InputError`. ``lease_owner``: leased to the caller from the start,
        so no worker races its first delivery. ``visibility``, ``auto_status`` and
        ``time_skipped`` (why the time step is skipped) go to the row as they are
        (:func:`~.recording.new_change`). ``ticket_verified=False``: the ticket was accepted
        unchecked; delivery reads it first.
        """
        hours = check_hours(hours)
        row = self.tenants.credentials_row(tenant_id)
        if row is None:
            raise NotConfiguredError("ConnectWise is not configured for this tenant")
        if hours is None:
            hours = round(row.default_time_minutes / 60, 4) if row.default_time_minutes else None
        if status_id is None and row.auto_update_status and row.default_status_id:
            status_id = row.default_status_id
        change = new_change(
            self.models,
            tenant_id=tenant_id,
            ticket_id=ticket_id,
            note_text=note_text,
            member=member,
            hours=hours,
            status_id=status_id,
            internal=internal,
            idempotency_key=idempotency_key,
            operator=operator,
            visibility=visibility,
            auto_status=auto_status,
            time_skipped=time_skipped,
            ticket_verified=ticket_verified,
        )
        if idempotency_key:
            existing = self.find_by_key(tenant_id, idempotency_key)
            if existing is not None:
                if existing.request_hash != change.request_hash:
                    raise IdempotencyConflict(
                        "This Idempotency-Key was already used for a different change"
                    )
                return existing, False
        if lease_owner:
            change.lease_owner = lease_owner
            change.lease_until = utcnow() + timedelta(seconds=LEASE_SECONDS)
        self.session.add(change)
        return change, True

    def deliver_after_commit(self, change: Any, report: Report | None = None) -> None:
        """Deliver ``change`` once the session it was added to commits (dropped on rollback);
        then call ``report(ticket_id, outcome or exception)`` in the committing context."""
        schedule(self, change, report)

    def record_sent(
        self,
        tenant_id: str,
        ticket_id: int,
        *,
        note_text: str,
        member: str | None,
        operator: str | None,
        note: Note | None = None,
        time_entry: TimeEntry | None = None,
        hours: float | None = None,
        internal: bool = False,
    ) -> Any:
        """Leave a change-log row (state ``delivered``) for a note or time entry the JSON API
        has just written directly: who sent it (``operator``) and as whom (``member``).

        The write to ConnectWise has happened, so a database failure here is logged (never
        the text) and not raised: answering an error would only invite a duplicate.
        """
        change = new_change(
            self.models,
            tenant_id=tenant_id,
            ticket_id=ticket_id,
            note_text=note_text,
            member=member,
            hours=hours if time_entry is not None else None,
            status_id=None,
            internal=internal,
            operator=operator,
        )
        change.state = ChangeState.DELIVERED
        for step, record in ((Step.NOTE, note), (Step.TIME, time_entry)):
            if record is None:
                step.set_state(change, StepState.SKIPPED)
            else:
                step.set_state(change, StepState.CONFIRMED)
                step.set_remote_id(change, record.id)
                step.count_attempt(change)
        try:
            self.session.add(change)
            self.session.commit()
        except sa.exc.SQLAlchemyError as exc:
            self.session.rollback()
            log.error(
                "connectwise: the change log row of a direct write could not be stored",
                extra={
                    "cw_tenant": tenant_id,
                    "cw_ticket": ticket_id,
                    "cw_reference": change.reference,
                    "cw_error": type(exc).__name__,
                },
            )
        return change

    def make_due(self, tenant_id: str) -> None:
        """Make the tenant's changes waiting for a retry due at once (not committed): a failure
        an admin just fixed (refused credentials, a bad base URL) need not wait out its backoff."""
        model = self._model
        self.session.execute(
            sa.update(model)
            .where(
                model.tenant_id == tenant_id,
                model.state.in_(ChangeState.DUE),
                model.next_attempt_at.is_not(None),
            )
            .values(next_attempt_at=None)
            .execution_options(synchronize_session=False)
        )

    # -- log-change now ----------------------------------------------------------------------

    def log_change(self, tenant_id: str, ticket_id: int, note_text: str, **fields: Any) -> Outcome:
        """Record the change, commit, deliver it now and return the outcome.

        ``fields`` are :meth:`record`'s (``member``, ``hours``, ``status_id``, ``internal``,
        ``visibility``, ``auto_status``, ``time_skipped``, ``ticket_verified``, ``idempotency_key``,
        ``operator``).

        With the feature flag off nothing is recorded or sent: :class:`IntegrationOffError`.
        A repeated idempotency key answers the first change's outcome (:meth:`replay`).
        """
        self.tenants.ensure_on(tenant_id)
        owner = new_lease_owner()
        change, created = self.record(tenant_id, ticket_id, note_text, lease_owner=owner, **fields)
        if created:
            # One commit before the writes: the steps to send are recorded "sent" with the
            # change itself (a crash from here on leaves them to be looked for on the ticket).
            for step in (Step.NOTE, Step.TIME):
                if step.state_of(change) == StepState.PENDING:
                    step.set_state(change, StepState.SENT)
        key, digest = change.idempotency_key, change.request_hash
        try:
            self.session.commit()
        except sa.exc.IntegrityError:
            # Another request with the same key inserted it first (uq_connectwise_change_key):
            # answer as a replay of that one.
            self.session.rollback()
            winner = self.find_by_key(tenant_id, key) if created and key else None
            if winner is None:
                raise
            if winner.request_hash != digest:
                raise IdempotencyConflict(
                    "This Idempotency-Key was already used for a different change"
                ) from None
            change, created = winner, False
        if not created:
            return self.replay(change)
        return self.deliver(change, owner=owner, nothing_sent=True)

    def replay(self, change: Any) -> Outcome:
        """The outcome of an earlier change, marked ``replayed``. While someone delivers it
        (a live lease), wait up to ``replay_wait`` seconds for the final outcome, then raise
        :class:`IdempotencyInProgress` (409, try again)."""
        deadline = time.monotonic() + self.replay_wait
        while (
            change.state != ChangeState.DELIVERED
            and change.lease_owner
            and change.lease_until is not None
            and change.lease_until > utcnow()
        ):
            if time.monotonic() >= deadline:
                raise IdempotencyInProgress(
                    "The first request with this Idempotency-Key is still being delivered; "
                    "try again in a moment"
                )
            time.sleep(0.05)
            self.session.commit()  # a fresh read sees the other request's commits
            self.session.refresh(change)
        return replace(Outcome.of(change), replayed=True)

    # -- leases ------------------------------------------------------------------------------

    def _due(self, now: datetime) -> Any:
        model = self._model
        return sa.and_(
            model.state.in_(ChangeState.DUE),
            sa.or_(model.next_attempt_at.is_(None), model.next_attempt_at <= now),
            sa.or_(model.lease_until.is_(None), model.lease_until < now),
        )

    def due_ids(self, limit: int = 500) -> list[int]:
        """Ids of changes due now (pending or retrying, past ``next_attempt_at``, not leased),
        oldest first, leaving out tenants whose feature flag is off. Nothing is claimed: the
        queue modes' sweep enqueues them, and the task takes the lease."""
        model = self._model
        now = utcnow()
        off = self.tenants_off(now)
        query = sa.select(model.id).where(self._due(now))
        if off:
            query = query.where(model.tenant_id.not_in(off))
        return list(self.session.execute(query.order_by(model.id).limit(limit)).scalars())

    def tenants_off(self, now: datetime | None = None) -> list[str]:
        """Tenants with changes due whose feature flag is off (their changes are not claimed)."""
        model = self._model
        tenants = self.session.execute(
            sa.select(model.tenant_id).where(self._due(now or utcnow())).distinct()
        ).scalars()
        return [tenant for tenant in tenants if not self.tenants.flag_on(tenant)]

    def claim(
        self,
        owner: str,
        limit: int,
        *,
        seconds: float = LEASE_SECONDS,
        skip_tenants: list[str] | None = None,
    ) -> list[int]:
        """Lease up to ``limit`` due changes to ``owner`` (committed); return their ids.

        ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL, a conditional UPDATE elsewhere.
        Changes of tenants whose feature flag is off (``skip_tenants``, by default
        :meth:`tenants_off`) are left alone, untouched.
        """
        model, session = self._model, self.session
        now = utcnow()
        until = now + timedelta(seconds=seconds)
        off = self.tenants_off(now) if skip_tenants is None else skip_tenants
        due = sa.and_(self._due(now), model.tenant_id.not_in(off)) if off else self._due(now)
        candidates = sa.select(model.id).where(due).order_by(model.id)
        if session.get_bind().dialect.name == "postgresql":
            ids = list(
                session.execute(candidates.limit(limit).with_for_update(skip_locked=True)).scalars()
            )
            if ids:
                session.execute(
                    sa.update(model)
                    .where(model.id.in_(ids))
                    .values(lease_owner=owner, lease_until=until)
                )
        else:
            subquery = candidates.limit(limit).scalar_subquery()
            session.execute(
                sa.update(model)
                .where(model.id.in_(subquery), due)
                .values(lease_owner=owner, lease_until=until)
                .execution_options(synchronize_session=False)
            )
            ids = list(
                session.execute(
                    sa.select(model.id).where(
                        model.lease_owner == owner, model.lease_until == until
                    )
                ).scalars()
            )
        session.commit()
        return ids

    def take_lease(self, change: Any, owner: str, *, seconds: float = LEASE_SECONDS) -> bool:
        """Lease the change to ``owner`` unless someone else holds a live lease (committed)."""
        model = self._model
        now = utcnow()
        result = self.session.execute(
            sa.update(model)
            .where(
                model.id == change.id,
                sa.or_(
                    model.lease_until.is_(None),
                    model.lease_until < now,
                    model.lease_owner == owner,
                ),
            )
            .values(lease_owner=owner, lease_until=now + timedelta(seconds=seconds))
            .execution_options(synchronize_session=False)
        )
        self.session.commit()
        return bool(result.rowcount == 1)

    def release_lease(self, change: Any, owner: str) -> None:
        """Give up ``owner``'s lease on the change (committed)."""
        self._release(change.id, owner)

    def release_leases(self, owner: str) -> int:
        """Give up every lease ``owner`` holds (committed); return how many."""
        return self._release(None, owner)

    def _release(self, change_id: int | None, owner: str) -> int:
        model = self._model
        where = [model.lease_owner == owner]
        if change_id is not None:
            where.append(model.id == change_id)
        result = self.session.execute(
            sa.update(model)
            .where(*where)
            .values(lease_owner=None, lease_until=None)
            .execution_options(synchronize_session=False)
        )
        self.session.commit()
        return int(result.rowcount or 0)

    # -- delivering --------------------------------------------------------------------------

    def retry(self, change: int | str) -> Outcome | None:
        """Deliver the outstanding steps of the change with this id or reference now (``None``:
        no such change). See :meth:`deliver`."""
        row = self.find(change)
        return None if row is None else self.deliver(row)

    def deliver(
        self, change: Any, *, owner: str | None = None, nothing_sent: bool = False
    ) -> Outcome:
        """Take a lease on the change, run its outstanding steps now and commit the result.

        ``owner``: a lease the caller already holds. When someone else holds it, nothing is
        sent and the outcome says ``busy``. ``nothing_sent``: the caller recorded the change
        with its steps ``sent`` and holds its lease since (:meth:`log_change`); see
        :meth:`deliver_leased`. With the feature flag off for the change's tenant
        nothing is sent and nothing about the change is touched: :class:`IntegrationOffError`.
        """
        self.tenants.ensure_on(change.tenant_id)
        if owner is None or change.lease_owner != owner:
            owner = owner or new_lease_owner()
            if not self.take_lease(change, owner):
                self.session.refresh(change)
                return replace(Outcome.of(change), busy=True)
        change_id = change.id
        try:
            outcome = self.deliver_leased(
                change, release=owner, nothing_sent=nothing_sent and change.lease_owner == owner
            )[0]
        except BaseException:
            self._release_after_error(change_id, owner)
            raise
        if change.lease_owner == owner:
            self.release_lease(change, owner)
        return outcome

    def _release_after_error(self, change_id: int, owner: str) -> None:
        """Give up ``owner``'s lease after a failed delivery, if the database lets us (else
        the lease simply runs out)."""
        try:
            self.session.rollback()
            self._release(change_id, owner)
        except Exception as exc:
            log.warning(
                "connectwise lease not released; it runs out by itself",
                extra=log_fields(exc, cw_change_id=change_id),
            )
            with contextlib.suppress(Exception):
                self.session.rollback()

    def deliver_leased(
        self,
        change: Any,
        *,
        release: str | None = None,
        contain_errors: bool = True,
        nothing_sent: bool = False,
    ) -> tuple[Outcome, float | None]:
        """Deliver a change the caller has leased; also return the longest ``Retry-After``
        ConnectWise asked for. ``release``: the lease to give up in the final commit.
        ``nothing_sent``: its ``sent`` steps were committed so with the change, before any call
        (no look-up first, no commit of their own before they go out; see
        :meth:`.Deliverer.deliver`).

        An unexpected exception (a bug, settings no request can carry) is the change's
        failure: it stays queued for the worker, with the reason on its steps (see
        :meth:`set_aside`). ``contain_errors=False`` raises it instead (the worker sets the
        change aside). A database outage is always raised.

        :class:`IntegrationOffError` (the row untouched) while the tenant's flag is off. A
        change a step of which ConnectWise refused for good ends ``failed`` and
        ``change_failed`` fires with ``final=True``.
        """

        def finish() -> None:
            if release and change.lease_owner == release:
                change.lease_owner = change.lease_until = None
            self.session.commit()

        if change.state == ChangeState.DELIVERED:
            return Outcome.of(change), None
        self.tenants.ensure_on(change.tenant_id)
        try:
            client, settings, _ = self.tenants.client_settings_and_revision(change.tenant_id)
        except CredentialsUnusableError as exc:
            # No call can carry these settings: set the change aside like any poison.
            return self._unexpected(change, exc, contain=contain_errors, release=release), None
        except (ConnectWiseError, CryptoError) as exc:
            if nothing_sent:
                # Nothing went out: the steps recorded "sent" with the change are pending.
                for step in Step:
                    if step.state_of(change) == StepState.SENT:
                        step.set_state(change, StepState.PENDING)
            change.state = ChangeState.RETRYING
            change.note_error = change.note_error or str(exc)[:500]
            change.updated_at = utcnow()
            finish()
            outcome = Outcome.of(change)
            self.notify(change_failed, change=change, outcome=outcome, final=False)
            return outcome, None
        except Exception as exc:
            return self._unexpected(change, exc, contain=contain_errors, release=release), None
        deliverer = Deliverer(
            self.session,
            members=self.members,
            require_member=bool(self.tenants.config.get("CONNECTWISE_REQUIRE_MEMBER", True)),
            impersonation=(
                self.impersonation
                if self.impersonation is not None and self.impersonation.enabled
                else None
            ),
        )
        try:
            deliverer.deliver(change, client, settings=settings, nothing_sent=nothing_sent)
            finish()
        except Exception as exc:
            return self._unexpected(change, exc, contain=contain_errors, release=release), None
        outcome = Outcome.of(change)
        if change.state == ChangeState.DELIVERED:
            self.notify(change_logged, change=change, outcome=outcome)
        else:
            final = change.state == ChangeState.FAILED
            self.notify(change_failed, change=change, outcome=outcome, final=final)
        return outcome, deliverer.retry_after

    def _unexpected(
        self, change: Any, exc: Exception, *, contain: bool, release: str | None
    ) -> Outcome:
        if not contain or outage_cause(exc) is not None:
            raise exc
        return self.set_aside(change, exc, final=False, release=release)

    def set_aside(
        self, change: Any, exc: BaseException, *, final: bool, release: str | None = None
    ) -> Outcome:
        """Record an unexpected exception while delivering ``change`` as its failure.

        The session is rolled back first: steps in flight were committed as ``sent`` before
        anything left, so they are looked up on the ticket before any repeat. The error is
        logged by type and place (never its text) under an incident id, and each step not done
        gets a plain-words reason with that id. ``final`` (the worker): the change is marked
        ``failed`` (needs attention) and ``change_failed`` fires with ``final=True``, so it is
        never claimed again; otherwise it stays queued for the worker. ``release``: the lease
        to give up.
        """
        incident = new_incident()
        self.session.rollback()
        self.session.refresh(change)
        log.error(
            "connectwise change set aside after an unexpected error"
            if final
            else "connectwise change not delivered: unexpected error; left for the worker",
            extra=log_fields(
                exc,
                cw_change=change.reference,
                cw_tenant=change.tenant_id,
                cw_incident=incident,
                cw_final=final,
            ),
        )
        if change.state != ChangeState.DELIVERED:
            reason = unexpected_reason(exc, incident, final=final)
            for step in Step:
                if step.state_of(change) not in StepState.FINISHED:
                    step.set_error(change, reason)
            change.state = ChangeState.FAILED if final else ChangeState.RETRYING
            change.next_attempt_at = None
            change.updated_at = utcnow()
        if release and change.lease_owner == release:
            change.lease_owner = change.lease_until = None
        self.session.commit()
        outcome = Outcome.of(change)
        if change.state != ChangeState.DELIVERED:
            self.notify(change_failed, change=change, outcome=outcome, final=final)
        return outcome

    def give_up(self, change: Any) -> Outcome:
        """Mark a change nobody delivered in time ``failed`` (needs attention), free its lease,
        commit, and send ``change_failed`` with ``final=True``."""
        change.state = ChangeState.FAILED
        change.lease_owner = change.lease_until = None
        self.session.commit()
        log.error(
            "connectwise change given up",
            extra={"cw_change": change.reference, "cw_tenant": change.tenant_id},
        )
        outcome = Outcome.of(change)
        self.notify(change_failed, change=change, outcome=outcome, final=True)
        return outcome

    # -- signals -----------------------------------------------------------------------------

    def notify(self, signal: NamedSignal, *, change: Any, outcome: Outcome, **extra: Any) -> None:
        """Send one of the extension's signals (the outcome as the HTTP contract's JSON); a
        receiver's exception is logged, not raised (the host's bug must not fail a delivery
        that already happened)."""
        try:
            signal.send(self.app, change=change, outcome=outcome.to_json(), **extra)
        except Exception as exc:
            log.error(
                "connectwise signal receiver failed",
                extra=log_fields(
                    exc,
                    cw_signal=getattr(signal, "name", None),
                    cw_change=getattr(change, "reference", None),
                ),
            )
