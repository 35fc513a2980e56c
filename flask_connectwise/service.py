"""What the routes, fields and admin views call: enable checks, cached search, log-change.

One :class:`ConnectWiseService` exists per app (in ``app.extensions["connectwise"]``). It holds
the app's configuration, the host's database session and cache, and one client per tenant,
rebuilt when that tenant's credentials change. It never reads Flask's request globals.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from .cachesafe import SafeCache
from .client import ConnectWiseClient
from .crypto import CryptoError, Keyring
from .delivery import Deliverer, check_hours, new_change, outcome_of
from .errors import (
    ConfigurationError,
    ConnectWiseError,
    CredentialsUnusableError,
    NotFoundError,
)
from .faults import (
    DatabaseUnavailableError,
    database_cause,
    log_fields,
    new_incident,
    outage_cause,
    unexpected_reason,
)
from .models import (
    ALL_TENANTS,
    CHANGE_PENDING,
    CONFIRMED,
    DELIVERED,
    FEATURE_KEY,
    GAVE_UP,
    RETRYING,
    SKIPPED,
    Models,
    utcnow,
)
from .records import BoardStatus, Note, Ticket, TimeEntry
from .retry import RetryPolicy
from .settings import CredentialsInput, SettingsStore, TenantSettings
from .signals import change_failed, change_logged
from .urlpolicy import GuardedAdapter, UnsafeURLError, URLPolicy

log = logging.getLogger("flask_connectwise.service")

FlagLoader = Callable[[str], "bool | None"]


class NotConfiguredError(ConnectWiseError):
    """The tenant has no ConnectWise credentials, or the feature is off."""

    http_status = 404
    error_code = "not_configured"


class IntegrationOffError(NotConfiguredError):
    """The feature flag is off for the tenant: nothing was sent to ConnectWise."""

    error_code = "feature_disabled"


class IdempotencyConflict(ConnectWiseError):
    """The idempotency key was used before with different content."""

    http_status = 409
    error_code = "idempotency_conflict"


class IdempotencyInProgress(ConnectWiseError):
    """The first request with this idempotency key is still being delivered."""

    http_status = 409
    error_code = "idempotency_in_progress"
    retry_after = 1.0


#: How long a repeated request waits for the first one with its idempotency key to finish.
REPLAY_WAIT_SECONDS = 10.0


class ConnectWiseService:
    """The extension's operations for one app."""

    def __init__(
        self,
        *,
        app: Any,
        config: dict[str, Any],
        db: Any,
        models: Models,
        cache: Any,
        flag_loader: Callable[[], FlagLoader | None],
    ) -> None:
        self.app = app
        self.config = config
        self.db = db
        self.models = models
        # Every cache call goes through SafeCache: a cache error is a miss, never a failure.
        self.cache = SafeCache.wrap(cache)
        self._flag_loader = flag_loader
        self._keyring: Keyring | None = None
        self._clients: dict[str, tuple[int, ConnectWiseClient]] = {}
        self._memo: dict[str, tuple[float, bool, int | None]] = {}
        self._lock = threading.Lock()
        #: Seconds a repeated idempotency key waits for the first request (see :meth:`replay`).
        self.replay_wait = REPLAY_WAIT_SECONDS
        self.policy = URLPolicy.from_config(config)

    # -- keys and settings -------------------------------------------------------------------

    @property
    def keyring(self) -> Keyring:
        """The configured keys; :class:`KeyConfigurationError` when none are configured."""
        if self._keyring is None:
            self._keyring = Keyring.from_config(self.config.get("CONNECTWISE_ENCRYPTION_KEYS"))
        return self._keyring

    def reload_keys(self) -> None:
        self._keyring = None

    @property
    def session(self) -> Any:
        return self.db.session

    def store(self) -> SettingsStore:
        return SettingsStore(self.session, self.models, lambda: self.keyring)

    def credentials_row(self, tenant_id: str) -> Any:
        return self.store().row(tenant_id)

    def settings(self, tenant_id: str) -> TenantSettings | None:
        return self.store().load(tenant_id)

    def save_credentials(
        self, tenant_id: str, payload: Any, *, actor: str | None = None, commit: bool = True
    ) -> Any:
        """Validate and store credentials; blank secrets keep the stored ones.

        The tenant's changes waiting for a retry become due at once: a failure an admin just
        fixed (refused credentials, a bad base URL) need not wait out its backoff.
        """
        data = CredentialsInput.parse(payload, self.policy)
        row = self.store().save(tenant_id, data, actor=actor)
        model = self.models.ChangeLog
        self.session.execute(
            sa.update(model)
            .where(
                model.tenant_id == tenant_id,
                model.state.in_((CHANGE_PENDING, RETRYING)),
                model.next_attempt_at.is_not(None),
            )
            .values(next_attempt_at=None)
            .execution_options(synchronize_session=False)
        )
        if commit:
            self.session.commit()
        self.forget_client(tenant_id)
        return row

    # -- per-tenant memo ---------------------------------------------------------------------

    def _tenant_state(self, tenant_id: str) -> tuple[bool, int | None]:
        """``(flag on in the table, credentials revision or None)``, remembered for
        ``CONNECTWISE_SETTINGS_CACHE_SECONDS`` so a cached search costs no database query."""
        ttl = float(self.config["CONNECTWISE_SETTINGS_CACHE_SECONDS"])
        now = time.monotonic()
        memo = self._memo.get(tenant_id)
        if memo and memo[0] > now:
            return memo[1], memo[2]
        flag = self.flag_row(tenant_id) or self.flag_row(ALL_TENANTS)
        credentials = self.models.Credentials
        revision = self.session.execute(
            sa.select(credentials.revision).where(credentials.tenant_id == tenant_id)
        ).scalar_one_or_none()
        value = (bool(flag and flag.enabled), revision)
        if ttl > 0:
            self._memo[tenant_id] = (now + ttl, *value)
        return value

    def forget_tenant(self, tenant_id: str) -> None:
        """Drop what this process remembers of the tenant (``"*"``: of every tenant)."""
        if tenant_id == ALL_TENANTS:
            self._memo.clear()
        else:
            self._memo.pop(tenant_id, None)

    # -- feature flag ------------------------------------------------------------------------

    def flag_row(self, tenant_id: str) -> Any:
        model = self.models.FeatureFlag
        return (
            self.session.query(model)
            .filter(model.key == FEATURE_KEY, model.tenant_id == tenant_id)
            .one_or_none()
        )

    def flag_on(self, tenant_id: str) -> bool:
        """Whether ``connectwise_integration`` is on for the tenant (off by default)."""
        loader = self._flag_loader()
        if loader is not None:
            try:
                decided = loader(tenant_id)
            except Exception as exc:
                if database_cause(exc) is not None:
                    # Not "off": the answer is unknown until the database is back.
                    raise DatabaseUnavailableError(
                        "the flag loader could not reach the database"
                    ) from exc
                log.exception("connectwise flag loader failed; treating the feature as off")
                return False
            if decided is not None:
                return bool(decided)
        return self._tenant_state(tenant_id)[0]

    def set_flag(
        self, tenant_id: str, enabled: bool, *, actor: str | None = None, commit: bool = True
    ) -> Any:
        """Turn the feature on or off for a tenant (``"*"``: for all). Deletes nothing."""
        row = self.flag_row(tenant_id)
        if row is None:
            row = self.models.FeatureFlag(key=FEATURE_KEY, tenant_id=tenant_id)
            self.session.add(row)
        row.enabled = bool(enabled)
        row.updated_by = actor
        row.updated_at = utcnow()
        if commit:
            self.session.commit()
        self.forget_tenant(tenant_id)
        return row

    def is_enabled(self, tenant_id: str) -> bool:
        """Flag on and credentials stored."""
        return self.flag_on(tenant_id) and self._tenant_state(tenant_id)[1] is not None

    # -- clients -----------------------------------------------------------------------------

    def forget_client(self, tenant_id: str) -> None:
        """Drop the tenant's client and memo (after its credentials changed)."""
        self.forget_tenant(tenant_id)
        with self._lock:
            old = self._clients.pop(tenant_id, None)
        if old:
            old[1].close()

    def client_for(self, tenant_id: str) -> ConnectWiseClient:
        """The tenant's client (one per tenant, rebuilt when its credentials change)."""
        return self._client_and_revision(tenant_id)[0]

    def _client_and_revision(self, tenant_id: str) -> tuple[ConnectWiseClient, int]:
        revision = self._tenant_state(tenant_id)[1]
        with self._lock:
            cached = self._clients.get(tenant_id)
        if revision is not None and cached and cached[0] == revision:
            return cached[1], revision
        row = self.credentials_row(tenant_id)
        if row is None:
            raise NotConfiguredError("ConnectWise is not configured for this tenant", status=None)
        with self._lock:
            cached = self._clients.get(tenant_id)
            if cached and cached[0] == row.revision:
                return cached[1], row.revision
        settings = self.store().decrypt_row(row)
        client = self.build_client(settings)
        with self._lock:
            old = self._clients.get(tenant_id)
            self._clients[tenant_id] = (row.revision, client)
        if old and old[1] is not client:
            old[1].close()
        return client, row.revision

    def build_client(self, settings: TenantSettings) -> ConnectWiseClient:
        try:
            base_url = self.policy.check(settings.base_url)
        except UnsafeURLError as exc:
            raise ConfigurationError(str(exc)) from None
        import requests

        session = requests.Session()
        adapter = GuardedAdapter(pool_maxsize=8)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return ConnectWiseClient(
            base_url=base_url,
            company_id=settings.company_id,
            public_key=settings.public_key,
            private_key=settings.private_key,
            client_id=settings.client_id,
            timeout=float(self.config["CONNECTWISE_TIMEOUT"]),
            connect_timeout=float(self.config["CONNECTWISE_CONNECT_TIMEOUT"]),
            api_version=str(self.config["CONNECTWISE_API_VERSION"]),
            retry=RetryPolicy(deadline=float(self.config["CONNECTWISE_TIMEOUT"]) * 2),
            codebase_cache=self.cache,
            session=session,
        )

    # -- tickets -----------------------------------------------------------------------------

    def _search_key(self, tenant_id: str, revision: int, query: str, limit: int) -> str:
        normal = " ".join(query.split()).casefold()
        digest = hashlib.sha256(f"{tenant_id}\0{normal}\0{limit}".encode()).hexdigest()[:32]
        return f"connectwise:search:{revision}:{digest}"

    def search_tickets(
        self, tenant_id: str, query: str, *, limit: int | None = None
    ) -> list[Ticket]:
        """Tickets matching ``query``, answered from the cache for 30 s (configurable)."""
        return [Ticket.from_json(item) for item in self.search_json(tenant_id, query, limit=limit)]

    def search_json(
        self, tenant_id: str, query: str, *, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Like :meth:`search_tickets`, as the HTTP contract's JSON (what the cache holds)."""
        limit = int(limit or self.config["CONNECTWISE_SEARCH_LIMIT"])
        client, revision = self._client_and_revision(tenant_id)
        key = self._search_key(tenant_id, revision, query, limit)
        cached = self.cache.get(key)
        if isinstance(cached, list):
            return cached
        found = [t.to_json() for t in client.search_tickets(query, limit=limit)]
        timeout = int(self.config["CONNECTWISE_SEARCH_CACHE_SECONDS"])
        if timeout > 0:
            self.cache.set(key, found, timeout=timeout)
        return found

    def get_ticket(self, tenant_id: str, ticket_id: int) -> Ticket:
        return self.client_for(tenant_id).get_ticket(ticket_id)

    def ticket_exists(self, tenant_id: str, ticket_id: int) -> bool:
        try:
            self.get_ticket(tenant_id, ticket_id)
        except NotFoundError:
            return False
        return True

    def add_note(self, tenant_id: str, ticket_id: int, text: str, **kwargs: Any) -> Note:
        return self.client_for(tenant_id).add_note(ticket_id, text, **kwargs)

    def add_time_entry(self, tenant_id: str, ticket_id: int, **kwargs: Any) -> TimeEntry:
        """Charge ``hours`` (one minute to 24) now; :class:`~.settings.InputError` otherwise."""
        check_hours(kwargs.get("hours"), optional=False)
        return self.client_for(tenant_id).add_time_entry(ticket_id, **kwargs)

    def update_status(self, tenant_id: str, ticket_id: int, status_id: int) -> Ticket:
        return self.client_for(tenant_id).update_status(ticket_id, status_id)

    def board_statuses(self, tenant_id: str, board_id: int) -> list[BoardStatus]:
        return self.client_for(tenant_id).board_statuses(board_id)

    # -- log-change --------------------------------------------------------------------------

    def record_change(
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
    ) -> tuple[Any, bool]:
        """Add a change to the session (the outbox); returns ``(row, created)``.

        ``hours`` defaults to the tenant's default minutes; the status defaults to the tenant's
        default status when it auto-updates status. A repeated idempotency key returns the
        first row; the same key with different content raises :class:`IdempotencyConflict`.
        ``hours=0`` logs no time entry; other ``hours`` under one minute (or over 24) raise
        :class:`~.settings.InputError`.
        """
        hours = check_hours(hours)
        row = self.credentials_row(tenant_id)
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
        )
        if idempotency_key:
            model = self.models.ChangeLog
            existing = (
                self.session.query(model)
                .filter(model.tenant_id == tenant_id, model.idempotency_key == idempotency_key)
                .one_or_none()
            )
            if existing is not None:
                if existing.request_hash != change.request_hash:
                    raise IdempotencyConflict(
                        "This Idempotency-Key was already used for a different change"
                    )
                return existing, False
        if lease_owner:
            # Leased to the caller from the start, so no worker races the first delivery.
            change.lease_owner = lease_owner
            change.lease_until = utcnow() + timedelta(seconds=120)
        self.session.add(change)
        return change, True

    def take_lease(self, change: Any, owner: str, *, seconds: float = 120.0) -> bool:
        """Lease the change to ``owner`` unless someone else holds a live lease (committed)."""
        model = self.models.ChangeLog
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
        model = self.models.ChangeLog
        self.session.execute(
            sa.update(model)
            .where(model.id == change.id, model.lease_owner == owner)
            .values(lease_owner=None, lease_until=None)
            .execution_options(synchronize_session=False)
        )
        self.session.commit()

    def deliver(self, change: Any, *, owner: str | None = None) -> dict[str, Any]:
        """Run the change's outstanding steps now and commit the result.

        The change is leased for the time of the delivery (``owner``: a lease the caller
        already holds); when a worker holds it, nothing is sent and the answer says
        ``"busy": true``. With the feature flag off for the change's tenant nothing is sent
        and nothing about the change is touched: :class:`IntegrationOffError`.
        """
        self.ensure_on(change.tenant_id)
        if owner is None or change.lease_owner != owner:
            owner = owner or f"now:{uuid.uuid4().hex[:12]}"
            if not self.take_lease(change, owner):
                self.session.refresh(change)
                return outcome_of(change) | {"busy": True}
        change_id = change.id
        try:
            outcome = self.deliver_change(change, release=owner)[0]
        except BaseException:
            self._release_after_error(change_id, owner)
            raise
        if change.lease_owner == owner:
            self.release_lease(change, owner)
        return outcome

    def _release_after_error(self, change_id: int, owner: str) -> None:
        """Give up ``owner``'s lease after a failed delivery, if the database lets us (else
        the lease simply runs out)."""
        model = self.models.ChangeLog
        try:
            self.session.rollback()
            self.session.execute(
                sa.update(model)
                .where(model.id == change_id, model.lease_owner == owner)
                .values(lease_owner=None, lease_until=None)
                .execution_options(synchronize_session=False)
            )
            self.session.commit()
        except Exception as exc:
            log.warning(
                "connectwise lease not released; it runs out by itself",
                extra=log_fields(exc, cw_change_id=change_id),
            )
            with contextlib.suppress(Exception):
                self.session.rollback()

    def deliver_change(
        self, change: Any, *, release: str | None = None, contain_errors: bool = True
    ) -> tuple[dict[str, Any], float | None]:
        """Deliver a change the caller has leased; also return the longest ``Retry-After``
        ConnectWise asked for. ``release``: the lease to give up in the final commit.

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

        if change.state == DELIVERED:
            return outcome_of(change), None
        self.ensure_on(change.tenant_id)
        try:
            client = self.client_for(change.tenant_id)
        except CredentialsUnusableError as exc:
            # No call can carry these settings: set the change aside like any poison.
            return self._unexpected(change, exc, contain=contain_errors, release=release), None
        except (ConnectWiseError, CryptoError) as exc:
            change.state = RETRYING
            change.note_error = change.note_error or str(exc)[:500]
            change.updated_at = utcnow()
            finish()
            outcome = outcome_of(change)
            self.notify(change_failed, change=change, outcome=outcome, final=False)
            return outcome, None
        except Exception as exc:
            return self._unexpected(change, exc, contain=contain_errors, release=release), None
        deliverer = Deliverer(self.session)
        try:
            deliverer.deliver(change, client)
            finish()
        except Exception as exc:
            return self._unexpected(change, exc, contain=contain_errors, release=release), None
        outcome = outcome_of(change)
        if change.state == DELIVERED:
            self.notify(change_logged, change=change, outcome=outcome)
        else:
            final = change.state == GAVE_UP
            self.notify(change_failed, change=change, outcome=outcome, final=final)
        return outcome, deliverer.retry_after

    def _unexpected(
        self, change: Any, exc: Exception, *, contain: bool, release: str | None
    ) -> dict[str, Any]:
        if not contain or outage_cause(exc) is not None:
            raise exc
        return self.set_aside(change, exc, final=False, release=release)

    def set_aside(
        self, change: Any, exc: BaseException, *, final: bool, release: str | None = None
    ) -> dict[str, Any]:
        """Record an unexpected exception while delivering ``change`` as its failure.

        The session is rolled back first: steps in flight were committed as ``sent`` before
        anything left, so they are looked up on the ticket before any repeat. The error is
        logged by type and place (never its text) under an incident id, and each step not done
        gets a plain-words reason with that id. ``final`` (the worker): the change is marked
        ``failed`` (needs attention) and ``change_failed`` fires with ``final=True``, so it is
        never claimed again; otherwise it stays queued for the worker. ``release``: the lease
        to give up. Returns the change's outcome.
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
        if change.state != DELIVERED:
            reason = unexpected_reason(exc, incident, final=final)
            for step in ("note", "time", "status"):
                if change.step_state(step) not in (CONFIRMED, SKIPPED):
                    setattr(change, f"{step}_error", reason)
            change.state = GAVE_UP if final else RETRYING
            change.next_attempt_at = None
            change.updated_at = utcnow()
        if release and change.lease_owner == release:
            change.lease_owner = change.lease_until = None
        self.session.commit()
        outcome = outcome_of(change)
        if change.state != DELIVERED:
            self.notify(change_failed, change=change, outcome=outcome, final=final)
        return outcome

    def notify(self, signal: Any, **kwargs: Any) -> None:
        """Send one of the extension's signals; a receiver's exception is logged, not raised
        (the host's bug must not fail a delivery that already happened)."""
        try:
            signal.send(self.app, **kwargs)
        except Exception as exc:
            change = kwargs.get("change")
            log.error(
                "connectwise signal receiver failed",
                extra=log_fields(
                    exc,
                    cw_signal=getattr(signal, "name", None),
                    cw_change=getattr(change, "reference", None),
                ),
            )

    def ensure_on(self, tenant_id: str) -> None:
        """:class:`IntegrationOffError` unless the feature flag is on for the tenant."""
        if not self.flag_on(tenant_id):
            raise IntegrationOffError(
                f"The ConnectWise integration is off for tenant {tenant_id}: nothing was sent "
                "to ConnectWise."
            )

    def log_change(
        self, tenant_id: str, ticket_id: int, note_text: str, **kwargs: Any
    ) -> dict[str, Any]:
        """Record the change, commit, deliver it now and return the per-step outcome.

        With the feature flag off nothing is recorded or sent: :class:`IntegrationOffError`.
        """
        self.ensure_on(tenant_id)
        owner = f"now:{uuid.uuid4().hex[:12]}"
        change, created = self.record_change(
            tenant_id, ticket_id, note_text, lease_owner=owner, **kwargs
        )
        key, digest = change.idempotency_key, change.request_hash
        try:
            self.session.commit()
        except sa.exc.IntegrityError:
            # Another request with the same key inserted it first (uq_connectwise_change_key):
            # answer as a replay of that one (see :meth:`replay`).
            self.session.rollback()
            winner = self._change_by_key(tenant_id, key) if created and key else None
            if winner is None:
                raise
            if winner.request_hash != digest:
                raise IdempotencyConflict(
                    "This Idempotency-Key was already used for a different change"
                ) from None
            change, created = winner, False
        if not created:
            return self.replay(change)
        return self.deliver(change, owner=owner)

    def _change_by_key(self, tenant_id: str, key: str) -> Any:
        model = self.models.ChangeLog
        return (
            self.session.query(model)
            .filter(model.tenant_id == tenant_id, model.idempotency_key == key)
            .one_or_none()
        )

    def replay(self, change: Any) -> dict[str, Any]:
        """The outcome of an earlier change, marked ``replayed``. While someone delivers it
        (a live lease), wait up to ``replay_wait`` seconds for the final outcome, then raise
        :class:`IdempotencyInProgress` (409, try again)."""
        deadline = time.monotonic() + self.replay_wait
        while (
            change.state != DELIVERED
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
        return outcome_of(change) | {"replayed": True}

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
        change.state = DELIVERED
        for step, record in (("note", note), ("time", time_entry)):
            if record is None:
                setattr(change, f"{step}_state", SKIPPED)
            else:
                setattr(change, f"{step}_state", CONFIRMED)
                setattr(change, f"{step}_remote_id", record.id)
                setattr(change, f"{step}_attempts", 1)
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
