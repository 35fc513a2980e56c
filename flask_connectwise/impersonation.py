"""Writes made as the technician: ConnectWise member impersonation tokens.

With ``CONNECTWISE_IMPERSONATE_MEMBERS`` on, the outbox sends a change's note and time entry
with keys ConnectWise issues for the change's (checked) member
(``POST system/members/{identifier}/tokens``), so ConnectWise's audit trail
(``_info.updatedBy``) names the technician instead of the API member. The status update
still goes out with the tenant's API keys.

Tokens live in this process's memory only (never in the database, the shared cache or a log
line), per tenant, credentials revision and member id, until shortly before they expire; at
most ``max_clients`` clients are kept (the least recently used is closed). A client built
from a token redacts its keys like any tenant client (``redaction.py``).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .client import ConnectWiseClient
from .errors import ConnectWiseError
from .records import Member
from .wording import aside

if TYPE_CHECKING:
    from .tenants import Tenants

log = logging.getLogger(__name__)

#: Renew a token this many seconds before it expires (at most a tenth of its lifetime).
RENEW_MARGIN = 60.0


class ImpersonationError(ConnectWiseError):
    """ConnectWise would not issue a member's impersonation token. Permanent only when the
    member is unknown (404); a 403 (the API member may not impersonate) or a failure to reach
    ConnectWise is retried later."""

    error_code = "impersonation_refused"


_Key = tuple[str, int, int]


class Impersonation:
    """Member clients for one app (``Outbox.impersonation``)."""

    def __init__(
        self,
        tenants: Tenants,
        config: Mapping[str, Any],
        *,
        clock: Callable[[], float] = time.time,
        max_clients: int = 64,
    ) -> None:
        self.tenants = tenants
        self.config = config
        #: Seconds since the epoch; tests move it forward to expire tokens.
        self.clock = clock
        self.max_clients = max_clients
        self._clients: OrderedDict[_Key, tuple[float, ConnectWiseClient]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self.config.get("CONNECTWISE_IMPERSONATE_MEMBERS", False))

    def writer(self, tenant_id: str, member: Member) -> ConnectWiseClient:
        """A client that acts as ``member`` (a token issued now, or a live one reused).

        :class:`ImpersonationError` when ConnectWise refuses the token, in plain words:
        "ConnectWise refused to issue a token for member jdoe: …"."""
        api_client, settings, revision = self.tenants.client_settings_and_revision(tenant_id)
        key = (tenant_id, revision, member.id)
        with self._lock:
            found = self._clients.get(key)
            if found is not None and self.clock() < found[0]:
                self._clients.move_to_end(key)
                return found[1]
        try:
            token = api_client.member_token(member.identifier)
        except ConnectWiseError as exc:
            text = f"ConnectWise refused to issue a token for member {member.identifier}: "
            text += (
                exc.message
                if exc.status is not None
                else f"it could not be reached {aside(exc.message)}"
            )
            log.warning("%s", text)
            raise ImpersonationError(text, status=exc.status, code=exc.code) from None
        lifetime = (token.expiration - datetime.now(UTC)).total_seconds()
        renew_at = self.clock() + lifetime - min(RENEW_MARGIN, max(lifetime, 0.0) / 10)
        client = self.tenants.build_client(
            dataclasses.replace(
                settings, public_key=token.public_key, private_key=token.private_key
            )
        )
        client.act_as_member()
        log.info(
            "ConnectWise issued an impersonation token for member %s (tenant %s), valid until %s",
            member.identifier,
            tenant_id,
            token.expiration.strftime("%Y-%m-%d %H:%M:%SZ"),
        )
        closing: list[ConnectWiseClient] = []
        with self._lock:
            old = self._clients.pop(key, None)
            if old is not None:
                closing.append(old[1])
            for other in [k for k in self._clients if k[0] == tenant_id and k[1] != revision]:
                closing.append(self._clients.pop(other)[1])  # older credentials
            self._clients[key] = (renew_at, client)
            while len(self._clients) > self.max_clients:
                closing.append(self._clients.popitem(last=False)[1][1])
        for stale in closing:
            stale.close()
        return client

    def forget(self, tenant_id: str, member: Member) -> None:
        """Drop the member's clients (ConnectWise refused their token): the next write asks
        for a new token."""
        with self._lock:
            keys = [k for k in self._clients if k[0] == tenant_id and k[2] == member.id]
            dropped = [self._clients.pop(k)[1] for k in keys]
        for client in dropped:
            client.close()
