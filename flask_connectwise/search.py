"""``TicketSearch``: ticket search answered from the shared cache.

Results are cached as the HTTP contract's JSON under a key that holds the tenant's credentials
revision and its company scope, so new credentials never see another account's results. A
tenant that lists its ConnectWise companies (``company_scope == "listed"``) searches only their
tickets: the companies are part of the ConnectWise condition (``company/id in (250,251)``), not
a filter afterwards, so the ``limit`` results are the right ones. A search whose text contains
the text of a complete cached answer ("prin" answered in full, then "printer") is answered from
that answer without ConnectWise (:mod:`flask_connectwise.refine`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from .cachesafe import SafeCache
from .choices import SCOPE_LISTED, load_companies
from .records import Ticket
from .refine import Refiner, complete
from .signals import search_answered
from .tenants import Tenants
from .ticketfacts import TicketFacts

#: The longest search text the search route accepts; the widget's input has it as maxlength.
SEARCH_MAX_LENGTH = 200


class TicketSearch:
    """The cached ticket search of one app (``cw.search``)."""

    def __init__(self, tenants: Tenants, *, cache: SafeCache, config: Mapping[str, Any]) -> None:
        self.tenants = tenants
        self.cache = cache
        self.config = config
        # (tenant, credentials revision) -> company ids; a new revision reads them again.
        self._scopes: dict[tuple[str, int], tuple[int, ...] | None] = {}
        #: What ConnectWise answered to searches, for the check before submit.
        self.facts = TicketFacts(cache, config)
        #: Answers refined from complete cached answers ("prin" -> "printer").
        self.refiner = Refiner(cache, config)

    @staticmethod
    def cache_key(
        tenant_id: str,
        revision: int,
        query: str,
        limit: int,
        company_ids: Sequence[int] | None = None,
    ) -> str:
        normal = " ".join(query.split()).casefold()
        scope = "all" if company_ids is None else ",".join(str(int(i)) for i in company_ids)
        digest = hashlib.sha256(f"{tenant_id}\0{normal}\0{limit}\0{scope}".encode()).hexdigest()[
            :32
        ]
        return f"connectwise:search:{revision}:{digest}"

    def company_ids(self, tenant_id: str, revision: int) -> tuple[int, ...] | None:
        """The companies the tenant's searches are limited to (``None``: not limited), read
        once per credentials revision (saving credentials makes a new revision)."""
        key = (tenant_id, revision)
        if key not in self._scopes:
            row = self.tenants.credentials_row(tenant_id)
            ids: tuple[int, ...] | None = None
            if row is not None and row.company_scope == SCOPE_LISTED:
                ids = tuple(c.id for c in load_companies(row.companies))
            if len(self._scopes) > 1000:
                self._scopes.clear()
            self._scopes[key] = ids
        return self._scopes[key]

    def tickets(self, tenant_id: str, query: str, *, limit: int | None = None) -> list[Ticket]:
        """Tickets matching ``query``, answered from the cache for 30 s (configurable)."""
        return [Ticket.from_json(item) for item in self.json(tenant_id, query, limit=limit)]

    def json(self, tenant_id: str, query: str, *, limit: int | None = None) -> list[dict[str, Any]]:
        """Like :meth:`tickets`, as the HTTP contract's JSON (what the cache holds)."""
        limit = int(limit or self.config["CONNECTWISE_SEARCH_LIMIT"])
        client, revision = self.tenants.client_and_revision(tenant_id)
        company_ids = self.company_ids(tenant_id, revision)
        key = self.cache_key(tenant_id, revision, query, limit, company_ids)
        cached = self.cache.get(key)
        hit = isinstance(cached, list)
        if not hit:
            cached = self.refiner.answer(tenant_id, revision, company_ids, query, limit, key)
            hit = cached is not None
        if search_answered.receivers:
            search_answered.send(self, tenant=tenant_id, hit=hit)
        if hit:
            return cached  # type: ignore[no-any-return]
        answered = client.search_tickets(query, limit=limit, company_ids=company_ids)
        self.facts.remember(tenant_id, revision, company_ids, answered, query=query)
        found = [t.to_json() for t in answered]
        timeout = int(self.config["CONNECTWISE_SEARCH_CACHE_SECONDS"])
        if timeout > 0:
            stored = self.cache.set(key, found, timeout=timeout)
            if stored and complete(answered):
                self.refiner.remember(tenant_id, revision, company_ids, query, key, found)
        return found
