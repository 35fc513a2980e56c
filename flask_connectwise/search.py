"""``TicketSearch``: ticket search answered from the shared cache.

Results are cached as the HTTP contract's JSON under a key that holds the tenant's credentials
revision, so new credentials never see another account's results.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from .cachesafe import SafeCache
from .records import Ticket
from .tenants import Tenants


class TicketSearch:
    """The cached ticket search of one app (``cw.search``)."""

    def __init__(self, tenants: Tenants, *, cache: SafeCache, config: Mapping[str, Any]) -> None:
        self.tenants = tenants
        self.cache = cache
        self.config = config

    @staticmethod
    def cache_key(tenant_id: str, revision: int, query: str, limit: int) -> str:
        normal = " ".join(query.split()).casefold()
        digest = hashlib.sha256(f"{tenant_id}\0{normal}\0{limit}".encode()).hexdigest()[:32]
        return f"connectwise:search:{revision}:{digest}"

    def tickets(self, tenant_id: str, query: str, *, limit: int | None = None) -> list[Ticket]:
        """Tickets matching ``query``, answered from the cache for 30 s (configurable)."""
        return [Ticket.from_json(item) for item in self.json(tenant_id, query, limit=limit)]

    def json(self, tenant_id: str, query: str, *, limit: int | None = None) -> list[dict[str, Any]]:
        """Like :meth:`tickets`, as the HTTP contract's JSON (what the cache holds)."""
        limit = int(limit or self.config["CONNECTWISE_SEARCH_LIMIT"])
        client, revision = self.tenants.client_and_revision(tenant_id)
        key = self.cache_key(tenant_id, revision, query, limit)
        cached = self.cache.get(key)
        if isinstance(cached, list):
            return cached
        found = [t.to_json() for t in client.search_tickets(query, limit=limit)]
        timeout = int(self.config["CONNECTWISE_SEARCH_CACHE_SECONDS"])
        if timeout > 0:
            self.cache.set(key, found, timeout=timeout)
        return found
