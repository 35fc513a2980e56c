"""The ``ConnectWise`` extension: wires the service, routes, CLI and hooks into an app."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app
from flask_caching import Cache

from .cachesafe import SafeCache
from .client import ConnectWiseClient
from .config import apply_defaults
from .crypto import KeyConfigurationError, Keyring

# Re-exported: older code imports these from here.
from .current import EXTENSION_KEY as EXTENSION_KEY
from .current import Action as Action
from .current import AppState as AppState
from .current import state as state
from .dispatch import Dispatcher, create_dispatcher
from .faults import DatabaseUnavailableError, database_cause, log_fields
from .impersonation import Impersonation
from .members import MemberCheck
from .models import Models, define_models
from .outbox import Outbox
from .records import Ticket
from .search import TicketSearch
from .service import ConnectWiseService
from .tenants import Tenants

log = logging.getLogger("flask_connectwise")

F = TypeVar("F", bound=Callable[..., Any])
#: The host hooks' types: each decorator returns the host's function unchanged.
AuthorizeHook = TypeVar("AuthorizeHook", bound=Callable[[str, Action], bool])
TenantHook = TypeVar("TenantHook", bound=Callable[[], str | None])
MemberHook = TypeVar("MemberHook", bound=Callable[[], str | None])
FlagHook = TypeVar("FlagHook", bound=Callable[[str], bool | None])
MayActAsHook = TypeVar("MayActAsHook", bound=Callable[[str, str | None, str], bool])


class ConnectWise:
    """Log operators' changes into ConnectWise Manage tickets.

    ``ConnectWise(app, db=db)`` or ``cw = ConnectWise(); cw.init_app(app, db=db)``. ``db`` is
    the host's Flask-SQLAlchemy object, ``admin`` its Flask-Admin (views are added under a
    "ConnectWise" category), ``cache`` a Flask-Caching ``Cache`` shared by the workers (Redis in
    production); without one, a per-process ``SimpleCache`` is used.

    Register the host's hooks with the decorators :meth:`authorize` (required),
    :meth:`current_tenant`, :meth:`current_member` and, optionally, :meth:`flag_loader` and
    :meth:`may_act_as`.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        db: Any = None,
        admin: Any = None,
        cache: Cache | None = None,
    ) -> None:
        self._db = db
        self._admin = admin
        self._cache = cache
        self._authorize: Callable[[str, Action], bool] | None = None
        self._current_tenant: Callable[[], str | None] | None = None
        self._current_member: Callable[[], str | None] | None = None
        self._flag_loader: Callable[[str], bool | None] | None = None
        self._may_act_as: Callable[[str, str | None, str], bool] | None = None
        self._tenant_name: Callable[[str], str | None] | None = None
        if app is not None:
            self.init_app(app, db=db, admin=admin, cache=cache)

    def init_app(
        self,
        app: Flask,
        *,
        db: Any = None,
        admin: Any = None,
        cache: Cache | None = None,
    ) -> None:
        """Set up the extension for ``app``."""
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError(
                "flask-connectwise is already initialised on this app; call init_app once per app"
            )
        if (admin if admin is not None else self._admin) is not None:
            from .compat import check_flask_admin

            check_flask_admin()
        db = db if db is not None else self._db
        if db is None:
            raise RuntimeError(
                "flask-connectwise needs the app's Flask-SQLAlchemy object: "
                "ConnectWise(app, db=db) or cw.init_app(app, db=db)"
            )
        apply_defaults(app.config)
        cache = cache if cache is not None else self._cache
        if cache is None:
            cache = Cache(config={"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 300})
            cache.init_app(app)
        models = define_models(db)
        # Every cache call goes through SafeCache: a cache error is a miss, never a failure.
        safe_cache = SafeCache.wrap(cache)
        tenants = Tenants(
            config=app.config,
            db=db,
            models=models,
            cache=safe_cache,
            flag_loader=lambda: self._flag_loader,
        )
        search = TicketSearch(tenants, cache=safe_cache, config=app.config)
        members = MemberCheck(tenants, safe_cache, app.config)
        outbox = Outbox(
            app=app,
            db=db,
            models=models,
            tenants=tenants,
            members=members,
            impersonation=Impersonation(tenants, app.config),
        )
        app_state = AppState(self, models, tenants, search, outbox, members)
        app.extensions[EXTENSION_KEY] = app_state
        # Checked now: a wrong CONNECTWISE_DELIVERY fails at start-up, not at the first save.
        app_state.dispatcher = create_dispatcher(app)
        app.before_request(app_state.dispatcher.start)  # the thread mode's sweep, once

        from .api import create_blueprint
        from .cli import connectwise_cli
        from .fields import register_static

        app.register_blueprint(create_blueprint(app.config["CONNECTWISE_URL_PREFIX"]))
        register_static(app)
        app.cli.add_command(connectwise_cli)
        admin = admin if admin is not None else self._admin
        if admin is not None:
            from .admin import register_views

            register_views(admin, self, models, db, app=app)
        # Said when the app serves its first request, not at init_app: `flask connectwise keys
        # generate` (the command that makes the keys) and other CLI runs stay quiet.
        warned: list[bool] = []

        def warn_without_keys() -> None:
            if warned:
                return
            warned.append(True)
            try:
                Keyring.from_config(app.config.get("CONNECTWISE_ENCRYPTION_KEYS"))
            except KeyConfigurationError as exc:
                log.warning("flask-connectwise cannot store or read credentials yet: %s", exc)

        app.before_request(warn_without_keys)

    # -- host hooks --------------------------------------------------------------------------

    def authorize(self, fn: AuthorizeHook) -> AuthorizeHook:
        """Register ``fn(tenant_id, action) -> bool``; ``action`` is ``"use"`` or ``"configure"``.

        Without it every route answers 403; an exception inside it denies.
        """
        self._authorize = fn
        return fn

    def current_tenant(self, fn: TenantHook) -> TenantHook:
        """Register ``fn() -> tenant_id``: the tenant a form field works for."""
        self._current_tenant = fn
        return fn

    def current_member(self, fn: MemberHook) -> MemberHook:
        """Register ``fn() -> str``: the operator's ConnectWise member identifier."""
        self._current_member = fn
        return fn

    def flag_loader(self, fn: FlagHook) -> FlagHook:
        """Register ``fn(tenant_id) -> bool | None`` deciding the feature flag (``None``: ask
        the extension's own flag table)."""
        self._flag_loader = fn
        return fn

    def tenant_name(self, fn: Callable[[str], str | None]) -> Callable[[str], str | None]:
        """Register ``fn(tenant_id) -> str``: the tenant's name as operators know it
        ("Contoso"), used in messages; without it (or when it answers nothing) the tenant id."""
        self._tenant_name = fn
        return fn

    def tenant_display_name(self, tenant_id: str) -> str:
        """The host's name for ``tenant_id`` (its ``tenant_name`` hook), else the id itself."""
        if self._tenant_name is not None:
            try:
                name = self._tenant_name(tenant_id)
            except Exception:
                log.exception("connectwise tenant_name hook failed")
                name = None
            if name:
                return str(name)
        return tenant_id

    def may_act_as(self, fn: MayActAsHook) -> MayActAsHook:
        """Register ``fn(tenant_id, operator, member) -> bool``: whether the operator (their
        ``current_member``) may log notes and time as ``member`` (a ``memberIdentifier`` sent
        in a JSON body). Without it only callers allowed ``configure`` may; an exception
        inside it denies."""
        self._may_act_as = fn
        return fn

    def can_act_as(self, tenant_id: str, operator: str | None, member: str) -> bool:
        """Ask the host's ``may_act_as`` hook; deny when there is none or it fails."""
        if self._may_act_as is None:
            return False
        try:
            return self._may_act_as(tenant_id, operator, member) is True
        except Exception:
            log.exception(
                "connectwise may_act_as hook failed; denying", extra={"cw_tenant": tenant_id}
            )
            return False

    def is_authorized(
        self, tenant_id: str, action: Action, *, raise_database_errors: bool = False
    ) -> bool:
        """Ask the host's ``authorize`` hook; deny when there is none or it fails.

        ``raise_database_errors``: when the hook failed because of the database (an outage,
        not a "no"), raise :class:`~flask_connectwise.faults.DatabaseUnavailableError` instead
        of denying, so the caller can answer "temporarily unavailable".
        """
        if self._authorize is None:
            return False
        try:
            return self._authorize(tenant_id, action) is True
        except Exception as exc:
            cause = database_cause(exc)
            if cause is not None:
                if raise_database_errors:
                    raise DatabaseUnavailableError(
                        "the authorize hook could not reach the database"
                    ) from exc
                # Type and place only: a database error's text holds SQL and parameters.
                log.error(
                    "connectwise authorize hook failed: database unavailable; denying",
                    extra=log_fields(cause, cw_tenant=tenant_id),
                )
                return False
            log.exception(
                "connectwise authorize hook failed; denying", extra={"cw_tenant": tenant_id}
            )
            return False

    def tenant(self) -> str | None:
        """The current tenant from the host's hook, or ``None``; without a hook,
        ``CONNECTWISE_DEFAULT_TENANT`` (a single-tenant app)."""
        if self._current_tenant is None:
            default = current_app.config.get("CONNECTWISE_DEFAULT_TENANT")
            return str(default) if default not in (None, "") else None
        try:
            value = self._current_tenant()
        except Exception:
            log.exception("connectwise current_tenant hook failed")
            return None
        return str(value) if value not in (None, "") else None

    def member(self) -> str | None:
        """The operator's member identifier from the host's hook, or ``None``."""
        if self._current_member is None:
            return None
        try:
            value = self._current_member()
        except Exception:
            log.exception("connectwise current_member hook failed")
            return None
        return str(value) if value else None

    # -- programmatic API --------------------------------------------------------------------

    @property
    def tenants(self) -> Tenants:
        """The current app's credentials, feature flag and clients."""
        return state().tenants

    @property
    def search(self) -> TicketSearch:
        """The current app's cached ticket search."""
        return state().search

    @property
    def members(self) -> MemberCheck:
        """The current app's cached member check (exists, active, not an API member)."""
        return state().members

    @property
    def outbox(self) -> Outbox:
        """The current app's change log: record, deliver, retry, count."""
        return state().outbox

    @property
    def service(self) -> ConnectWiseService:
        """The current app's services behind the older one-object API (compatibility)."""
        return state().service

    @property
    def dispatcher(self) -> Dispatcher:
        """The current app's delivery off the request path: ``submit(change_id).wait(t)``."""
        return state().dispatcher

    def init_celery(self, celery_app: Any, app: Flask | None = None) -> Any:
        """Use ``celery_app`` for ``CONNECTWISE_DELIVERY = "celery"``: registers the
        ``flask_connectwise.deliver_change`` task on it (call this in the Celery worker too),
        run in ``app``'s context (``None``: the current app when the task runs). Returns it."""
        from .dispatch.celery import register

        return register(celery_app, app)

    @property
    def models(self) -> Models:
        """The current app's model classes (``Credentials``, ``FeatureFlag``, ``ChangeLog``)."""
        return state().models

    def search_tickets(
        self, tenant_id: str, query: str, *, limit: int | None = None
    ) -> list[Ticket]:
        """Tickets matching ``query`` (cached)."""
        return self.search.tickets(tenant_id, query, limit=limit)

    def log_change(
        self,
        tenant_id: str,
        ticket_id: int,
        note: str,
        *,
        member: str | None = None,
        hours: float | None = None,
        status_id: int | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, object]:
        """Record a change and deliver it now; returns the per-step outcome."""
        return self.outbox.log_change(
            tenant_id,
            ticket_id,
            note,
            member=member if member is not None else self.member(),
            hours=hours,
            status_id=status_id,
            idempotency_key=idempotency_key,
        ).to_json()

    def is_enabled(self, tenant_id: str) -> bool:
        """Whether the feature is on and the tenant has credentials."""
        return self.tenants.is_enabled(tenant_id)

    def client_for(self, tenant_id: str) -> ConnectWiseClient:
        """The tenant's :class:`~flask_connectwise.client.ConnectWiseClient`."""
        return self.tenants.client_for(tenant_id)


#: The old name of :class:`~flask_connectwise.current.AppState`.
_State = AppState
