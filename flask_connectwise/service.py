"""``ConnectWiseService``: the one-object API of earlier versions, kept for compatibility.

The work is done by three services, created by the extension and reachable as ``cw.tenants``
(:class:`~flask_connectwise.tenants.Tenants`), ``cw.search``
(:class:`~flask_connectwise.search.TicketSearch`) and ``cw.outbox``
(:class:`~flask_connectwise.outbox.Outbox`). This facade delegates to them; new code should
call them directly.
"""

from __future__ import annotations

from typing import Any

from .cachesafe import SafeCache
from .client import ConnectWiseClient
from .credentials import CredentialsStore, TenantSettings
from .crypto import Keyring
from .errors import NotFoundError
from .models import Models
from .outbox import (
    REPLAY_WAIT_SECONDS,
    IdempotencyConflict,
    IdempotencyInProgress,
    Outbox,
    Outcome,
    check_hours,
)
from .records import BoardStatus, Note, Ticket, TimeEntry
from .search import TicketSearch
from .signals import change_failed, change_logged
from .tenants import FlagLoader, IntegrationOffError, NotConfiguredError, Tenants
from .urlpolicy import URLPolicy

__all__ = [
    "REPLAY_WAIT_SECONDS",
    "ConnectWiseService",
    "FlagLoader",
    "IdempotencyConflict",
    "IdempotencyInProgress",
    "IntegrationOffError",
    "NotConfiguredError",
    "change_failed",
    "change_logged",
]


class ConnectWiseService:
    """The extension's operations for one app, delegated to ``tenants``, ``search``, ``outbox``."""

    def __init__(self, tenants: Tenants, search: TicketSearch, outbox: Outbox) -> None:
        self.tenants = tenants
        self.search = search
        self.outbox = outbox

    # -- what the services share -------------------------------------------------------------

    @property
    def app(self) -> Any:
        return self.outbox.app

    @property
    def config(self) -> Any:
        return self.tenants.config

    @property
    def db(self) -> Any:
        return self.tenants.db

    @property
    def models(self) -> Models:
        return self.tenants.models

    @property
    def session(self) -> Any:
        return self.tenants.session

    @property
    def cache(self) -> SafeCache:
        return self.tenants.cache

    @property
    def policy(self) -> URLPolicy:
        return self.tenants.policy

    @policy.setter
    def policy(self, value: URLPolicy) -> None:
        self.tenants.policy = value

    @property
    def replay_wait(self) -> float:
        return self.outbox.replay_wait

    @replay_wait.setter
    def replay_wait(self, value: float) -> None:
        self.outbox.replay_wait = value

    # -- tenants -----------------------------------------------------------------------------

    @property
    def keyring(self) -> Keyring:
        return self.tenants.keyring

    def reload_keys(self) -> None:
        self.tenants.reload_keys()

    def store(self) -> CredentialsStore:
        return self.tenants.store()

    def credentials_row(self, tenant_id: str) -> Any:
        return self.tenants.credentials_row(tenant_id)

    def settings(self, tenant_id: str) -> TenantSettings | None:
        return self.tenants.settings(tenant_id)

    def save_credentials(
        self, tenant_id: str, payload: Any, *, actor: str | None = None, commit: bool = True
    ) -> Any:
        return self.tenants.save_credentials(tenant_id, payload, actor=actor, commit=commit)

    def forget_tenant(self, tenant_id: str) -> None:
        self.tenants.forget_tenant(tenant_id)

    def flag_row(self, tenant_id: str) -> Any:
        return self.tenants.flag_row(tenant_id)

    def flag_on(self, tenant_id: str) -> bool:
        return self.tenants.flag_on(tenant_id)

    def set_flag(
        self, tenant_id: str, enabled: bool, *, actor: str | None = None, commit: bool = True
    ) -> Any:
        return self.tenants.set_flag(tenant_id, enabled, actor=actor, commit=commit)

    def is_enabled(self, tenant_id: str) -> bool:
        return self.tenants.is_enabled(tenant_id)

    def ensure_on(self, tenant_id: str) -> None:
        self.tenants.ensure_on(tenant_id)

    def forget_client(self, tenant_id: str) -> None:
        self.tenants.forget_client(tenant_id)

    def client_for(self, tenant_id: str) -> ConnectWiseClient:
        return self.tenants.client_for(tenant_id)

    def build_client(self, settings: TenantSettings) -> ConnectWiseClient:
        return self.tenants.build_client(settings)

    # -- tickets -----------------------------------------------------------------------------

    def search_tickets(
        self, tenant_id: str, query: str, *, limit: int | None = None
    ) -> list[Ticket]:
        return self.search.tickets(tenant_id, query, limit=limit)

    def search_json(
        self, tenant_id: str, query: str, *, limit: int | None = None
    ) -> list[dict[str, Any]]:
        return self.search.json(tenant_id, query, limit=limit)

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

    # -- log-change (answers are the HTTP contract's JSON) -----------------------------------

    def record_change(self, tenant_id: str, ticket_id: int, note_text: str, **fields: Any) -> Any:
        """See :meth:`Outbox.record`."""
        return self.outbox.record(tenant_id, ticket_id, note_text, **fields)

    def take_lease(self, change: Any, owner: str, *, seconds: float | None = None) -> bool:
        if seconds is None:
            return self.outbox.take_lease(change, owner)
        return self.outbox.take_lease(change, owner, seconds=seconds)

    def release_lease(self, change: Any, owner: str) -> None:
        self.outbox.release_lease(change, owner)

    def deliver(self, change: Any, *, owner: str | None = None) -> dict[str, Any]:
        """See :meth:`Outbox.deliver`."""
        return self.outbox.deliver(change, owner=owner).to_json()

    def deliver_change(
        self, change: Any, *, release: str | None = None, contain_errors: bool = True
    ) -> tuple[dict[str, Any], float | None]:
        """See :meth:`Outbox.deliver_leased`."""
        outcome, retry_after = self.outbox.deliver_leased(
            change, release=release, contain_errors=contain_errors
        )
        return outcome.to_json(), retry_after

    def set_aside(
        self, change: Any, exc: BaseException, *, final: bool, release: str | None = None
    ) -> dict[str, Any]:
        return self.outbox.set_aside(change, exc, final=final, release=release).to_json()

    def notify(self, signal: Any, *, change: Any, outcome: Any, **extra: Any) -> None:
        if isinstance(outcome, dict):
            outcome = Outcome.from_json(outcome)
        self.outbox.notify(signal, change=change, outcome=outcome, **extra)

    def log_change(
        self, tenant_id: str, ticket_id: int, note_text: str, **kwargs: Any
    ) -> dict[str, Any]:
        """See :meth:`Outbox.log_change`."""
        return self.outbox.log_change(tenant_id, ticket_id, note_text, **kwargs).to_json()

    def replay(self, change: Any) -> dict[str, Any]:
        return self.outbox.replay(change).to_json()

    def record_sent(self, tenant_id: str, ticket_id: int, **kwargs: Any) -> Any:
        return self.outbox.record_sent(tenant_id, ticket_id, **kwargs)
