"""``Tenants``: each tenant's ConnectWise credentials, feature flag and client.

One :class:`Tenants` exists per app (``cw.tenants``). It stores and loads credentials (secrets
encrypted with the app's keyring), turns the ``connectwise_integration`` flag on and off,
remembers both for a few seconds per process (so a cached search costs no query), and keeps
one :class:`~flask_connectwise.client.ConnectWiseClient` per tenant, rebuilt when that
tenant's credentials change. Both are bounded by ``CONNECTWISE_CLIENT_CACHE_SIZE``: beyond it
the least recently used tenant's client is closed (its idle connections with it) and its
remembered settings dropped, so a process serving thousands of tenants keeps memory and open
sockets flat while a busy tenant keeps reusing one connection. It never reads Flask's request
globals.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from . import choices
from .cachesafe import SafeCache
from .client import ConnectWiseClient
from .credentials import CredentialsInput, CredentialsStore, TenantSettings
from .crypto import CryptoError, Keyring
from .errors import ConfigurationError, ConnectWiseError
from .faults import DatabaseUnavailableError, database_cause
from .models import ALL_TENANTS, FEATURE_KEY, Models, utcnow
from .retry import RetryPolicy
from .urlpolicy import GuardedAdapter, UnsafeURLError, URLPolicy

log = logging.getLogger("flask_connectwise.tenants")

#: The host's flag loader: ``fn(tenant_id) -> bool | None`` (``None``: ask the flag table).
FlagLoader = Callable[[str], "bool | None"]
#: Called with the tenant id after its credentials were saved (in the same transaction).
CredentialsListener = Callable[[str], None]

#: The warning of :meth:`Tenants.name_choices` when ConnectWise could not be asked.
_NAMES_NOT_LOOKED_UP = (
    "ConnectWise could not be reached to look up the names of the companies, work type or work"
    " role given by number: they are saved as given. Save again once ConnectWise answers."
)


def _not_found(one: str, many: str, ids: list[int]) -> str:
    """ "Company 999 was not found in ConnectWise: ..." (the ids the admin typed)."""
    numbers = ", ".join(str(i) for i in ids)
    subject = (
        f"{one.capitalize()} {numbers} was"
        if len(ids) == 1
        else f"{many.capitalize()} {numbers} were"
    )
    return (
        f"{subject} not found in ConnectWise: saved as given. Check the"
        f" {'id' if len(ids) == 1 else 'ids'}, or choose the {one} by name."
    )


class NotConfiguredError(ConnectWiseError):
    """The tenant has no ConnectWise credentials, or the feature is off."""

    http_status = 404
    error_code = "not_configured"


class IntegrationOffError(NotConfiguredError):
    """The feature flag is off for the tenant: nothing was sent to ConnectWise."""

    error_code = "feature_disabled"


class Tenants:
    """Credentials, feature flag, per-process memo and client pool of one app."""

    def __init__(
        self,
        *,
        config: Mapping[str, Any],
        db: Any,
        models: Models,
        cache: SafeCache,
        flag_loader: Callable[[], FlagLoader | None],
    ) -> None:
        self.config = config
        self.db = db
        self.models = models
        #: The app's cache behind :class:`SafeCache` (clients keep their codebase in it).
        self.cache = cache
        self.policy = URLPolicy.from_config(config)
        self._flag_loader = flag_loader
        self._keyring: Keyring | None = None
        #: Least recently used first: ``tenant -> (revision, client, settings)``.
        self._clients: OrderedDict[str, tuple[int, ConnectWiseClient, TenantSettings]] = (
            OrderedDict()
        )
        #: Least recently used first: ``tenant -> (until, flag on, revision)``.
        self._memo: OrderedDict[str, tuple[float, bool, int | None]] = OrderedDict()
        self._lock = threading.Lock()
        self._credentials_listeners: list[CredentialsListener] = []

    @property
    def max_clients(self) -> int:
        """``CONNECTWISE_CLIENT_CACHE_SIZE``: most tenants whose client and memo are kept."""
        return max(1, int(self.config.get("CONNECTWISE_CLIENT_CACHE_SIZE", 256)))

    def cached_tenants(self) -> list[str]:
        """The tenants whose client this process keeps, least recently used first."""
        with self._lock:
            return list(self._clients)

    # -- keys and credentials ----------------------------------------------------------------

    @property
    def keyring(self) -> Keyring:
        """The configured keys; :class:`KeyConfigurationError` when none are configured."""
        if self._keyring is None:
            self._keyring = Keyring.from_config(self.config.get("CONNECTWISE_ENCRYPTION_KEYS"))
        return self._keyring

    def reload_keys(self) -> None:
        """Read ``CONNECTWISE_ENCRYPTION_KEYS`` again on next use."""
        self._keyring = None

    @property
    def session(self) -> Any:
        """The host's database session."""
        return self.db.session

    def store(self) -> CredentialsStore:
        return CredentialsStore(self.session, self.models, lambda: self.keyring)

    def credentials_row(self, tenant_id: str) -> Any:
        """The tenant's stored credentials row (secrets encrypted), or ``None``."""
        return self.store().row(tenant_id)

    def settings(self, tenant_id: str) -> TenantSettings | None:
        """The tenant's decrypted settings, or ``None``."""
        return self.store().load(tenant_id)

    def on_credentials_saved(self, listener: CredentialsListener) -> None:
        """Call ``listener(tenant_id)`` after a tenant's credentials are saved, before commit
        (the outbox makes that tenant's waiting changes due at once)."""
        self._credentials_listeners.append(listener)

    def save_credentials(
        self, tenant_id: str, payload: Any, *, actor: str | None = None, commit: bool = True
    ) -> Any:
        """Validate and store credentials; blank secrets keep the stored ones."""
        data = CredentialsInput.parse(payload, self.policy)
        row = self.store().save(tenant_id, data, actor=actor)
        for listener in self._credentials_listeners:
            listener(tenant_id)
        if commit:
            self.session.commit()
        self.forget_client(tenant_id)
        return row

    def name_choices(self, tenant_id: str) -> list[str]:
        """Look up in ConnectWise the names of the tenant's companies, work type and work role
        stored by id only (``"companies": [250]``, ``"workType": 3``), and store them (a new
        revision, so every process reloads them). Called after a save has been committed.

        Returns plain-words warnings: ids ConnectWise does not know (kept as given), or that
        the names could not be looked up (ConnectWise not reached: everything kept as given).
        Nothing named by id only: no call to ConnectWise, no warning.
        """
        row = self.credentials_row(tenant_id)
        if row is None:
            return []
        companies = choices.load_companies(row.companies)
        typed = [c.id for c in companies if not (c.name or c.identifier)]
        works = {
            "work_type": choices.load_work(row.work_type),
            "work_role": choices.load_work(row.work_role),
        }
        unnamed = {column: w for column, w in works.items() if w is not None and not w.name}
        if not typed and not unnamed:
            return []
        try:
            client = self.client_for(tenant_id)
            found = {c.id: c for c in client.companies_by_id(typed)} if typed else {}
            known: dict[str, dict[int, str]] = {}
            if "work_type" in unnamed:
                known["work_type"] = {w.id: w.name for w in client.work_types()}
            if "work_role" in unnamed:
                known["work_role"] = {w.id: w.name for w in client.work_roles()}
        except (ConnectWiseError, CryptoError) as exc:
            log.info(
                "connectwise: the names of choices given by id could not be looked up",
                extra={"cw_tenant": tenant_id, "cw_error": type(exc).__name__},
            )
            return [_NAMES_NOT_LOOKED_UP]
        warnings = []
        missing = [i for i in typed if i not in found]
        if missing:
            warnings.append(_not_found("company", "companies", missing))
        for column, work in unnamed.items():
            name = known[column].get(work.id, "")[: choices.NAME_MAX]
            if name:
                setattr(row, column, choices.dump(choices.WorkChoice(work.id, name)))
            else:
                kind = "work type" if column == "work_type" else "work role"
                warnings.append(
                    f"{kind.capitalize()} {work.id} was not found among ConnectWise's active "
                    f"{kind}s: it is saved as given, and ConnectWise may refuse time entries "
                    f"with it. Check the id, or choose the {kind} from the list."
                )
        if found:
            row.companies = choices.dump(
                tuple(
                    choices.CompanyChoice(
                        c.id,
                        found[c.id].identifier[: choices.NAME_MAX],
                        found[c.id].name[: choices.NAME_MAX],
                    )
                    if c.id in found
                    else c
                    for c in companies
                )
            )
        if found or any(known[column].get(w.id) for column, w in unnamed.items()):
            row.revision = (row.revision or 0) + 1
            try:
                self.session.commit()
            except SQLAlchemyError:
                self.session.rollback()
                log.exception("connectwise: the looked-up names could not be stored")
                return [_NAMES_NOT_LOOKED_UP]
            self.forget_client(tenant_id)
        return warnings

    # -- per-tenant memo ---------------------------------------------------------------------

    def _tenant_state(self, tenant_id: str) -> tuple[bool, int | None]:
        """``(flag on in the table, credentials revision or None)``, remembered for
        ``CONNECTWISE_SETTINGS_CACHE_SECONDS`` so a cached search costs no database query."""
        ttl = float(self.config["CONNECTWISE_SETTINGS_CACHE_SECONDS"])
        now = time.monotonic()
        memo = self._memo.get(tenant_id)
        if memo and memo[0] > now:
            with self._lock:
                if tenant_id in self._memo:
                    self._memo.move_to_end(tenant_id)
            return memo[1], memo[2]
        flag = self.flag_row(tenant_id) or self.flag_row(ALL_TENANTS)
        credentials = self.models.Credentials
        revision = self.session.execute(
            sa.select(credentials.revision).where(credentials.tenant_id == tenant_id)
        ).scalar_one_or_none()
        value = (bool(flag and flag.enabled), revision)
        if ttl > 0:
            with self._lock:
                self._memo[tenant_id] = (now + ttl, *value)
                self._memo.move_to_end(tenant_id)
                while len(self._memo) > self.max_clients:
                    self._memo.popitem(last=False)
        return value

    def forget_tenant(self, tenant_id: str) -> None:
        """Drop what this process remembers of the tenant (``"*"``: of every tenant)."""
        with self._lock:
            if tenant_id == ALL_TENANTS:
                self._memo.clear()
            else:
                self._memo.pop(tenant_id, None)

    # -- feature flag ------------------------------------------------------------------------

    def flag_row(self, tenant_id: str) -> Any:
        """The tenant's own flag row (``"*"``: the row for all tenants), or ``None``."""
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

    def ensure_on(self, tenant_id: str) -> None:
        """:class:`IntegrationOffError` unless the feature flag is on for the tenant."""
        if not self.flag_on(tenant_id):
            raise IntegrationOffError(
                f"The ConnectWise integration is off for tenant {tenant_id}: nothing was sent "
                "to ConnectWise."
            )

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
        return self.client_and_revision(tenant_id)[0]

    def client_and_revision(self, tenant_id: str) -> tuple[ConnectWiseClient, int]:
        """The tenant's client and the credentials revision it was built from;
        :class:`NotConfiguredError` when the tenant has no credentials."""
        client, _, revision = self.client_settings_and_revision(tenant_id)
        return client, revision

    def client_settings_and_revision(
        self, tenant_id: str
    ) -> tuple[ConnectWiseClient, TenantSettings, int]:
        """The tenant's client, the settings it was built from (work type, board statuses...)
        and their credentials revision; :class:`NotConfiguredError` without credentials."""
        revision = self._tenant_state(tenant_id)[1]
        with self._lock:
            cached = self._clients.get(tenant_id)
            if cached:
                self._clients.move_to_end(tenant_id)
        if revision is not None and cached and cached[0] == revision:
            return cached[1], cached[2], revision
        row = self.credentials_row(tenant_id)
        if row is None:
            raise NotConfiguredError("ConnectWise is not configured for this tenant", status=None)
        with self._lock:
            cached = self._clients.get(tenant_id)
            if cached and cached[0] == row.revision:
                return cached[1], cached[2], row.revision
        settings = self.store().decrypt_row(row)
        client = self.build_client(settings)
        with self._lock:
            old = self._clients.get(tenant_id)
            self._clients[tenant_id] = (row.revision, client, settings)
            self._clients.move_to_end(tenant_id)
            closing = [old[1]] if old and old[1] is not client else []
            while len(self._clients) > self.max_clients:
                closing.append(self._clients.popitem(last=False)[1][1])
        # Outside the lock. A call already under way on an evicted client still completes: its
        # connection is closed when it comes back to the closed pool.
        for stale in closing:
            stale.close()
        return client, settings, row.revision

    def build_client(self, settings: TenantSettings) -> ConnectWiseClient:
        """A new client for ``settings`` (base URL checked against the URL policy)."""
        try:
            base_url = self.policy.check(settings.base_url)
        except UnsafeURLError as exc:
            raise ConfigurationError(str(exc)) from None
        import requests

        session = requests.Session()
        adapter = GuardedAdapter(pool_maxsize=8)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        client = ConnectWiseClient(
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
        client.tenant_id, client.owner = settings.tenant_id, self
        return client
