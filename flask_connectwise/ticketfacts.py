"""What ConnectWise answered to a tenant's ticket search, reused by the check before submit.

An operator picks the ticket from the widget's search (or types a number, which the widget
also searches) a moment before saving. The check before submit (company, closed, board and
status) then needs no ticket read of its own: :class:`TicketFacts` keeps, for
``CONNECTWISE_TICKET_FACTS_SECONDS`` (default 60; 0 turns it off), only the facts that check
needs (id, company, board, status, closed) and the summary (the field's label when the form
is shown again) of each ticket ConnectWise returned to a search, in
the shared cache, under a key holding the tenant, its credentials revision and its company
scope: another tenant, new credentials or another scope never see them. The time ConnectWise
answered is stored with the facts; older facts are not used (the check reads the ticket as
before). Delivery still reads the ticket when it must (time, status, a limited scope).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from .cachesafe import SafeCache
from .config import positive_seconds
from .records import Ticket


def facts_seconds(config: Mapping[str, Any]) -> float:
    """``CONNECTWISE_TICKET_FACTS_SECONDS`` (0 or less, or not a number: off)."""
    return positive_seconds(config, "CONNECTWISE_TICKET_FACTS_SECONDS")


class TicketFacts:
    """The search-answered facts of tickets, per tenant, credentials revision and scope."""

    def __init__(
        self,
        cache: SafeCache,
        config: Mapping[str, Any],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cache = cache
        self.config = config
        self.clock = clock

    @staticmethod
    def key(
        tenant_id: str, revision: int, company_ids: Sequence[int] | None, ticket_id: int
    ) -> str:
        scope = "all" if company_ids is None else ",".join(str(int(i)) for i in company_ids)
        raw = f"{tenant_id}\0{int(revision)}\0{scope}\0{int(ticket_id)}"
        return f"connectwise:ticketfacts:{hashlib.sha256(raw.encode()).hexdigest()[:40]}"

    def remember(
        self,
        tenant_id: str,
        revision: int,
        company_ids: Sequence[int] | None,
        tickets: Iterable[Ticket],
        *,
        query: str = "",
    ) -> None:
        """Keep the facts of ``tickets``, just answered by ConnectWise to a search for
        ``query``; a ticket number searched but not found forgets that ticket's facts."""
        seconds = facts_seconds(self.config)
        if not seconds:
            return
        now = self.clock()
        tickets = list(tickets)
        number = query.strip().lstrip("#").strip()
        if number.isdecimal() and int(number) not in {t.id for t in tickets}:
            self.cache.delete(self.key(tenant_id, revision, company_ids, int(number)))
        for ticket in tickets:
            facts = {
                "id": ticket.id,
                "summary": ticket.summary,  # the field's label when the form is shown again
                "companyId": ticket.company_id,
                "company": ticket.company,
                "boardId": ticket.board_id,
                "statusId": ticket.status_id,
                "status": ticket.status,
                "closed": bool(ticket.closed),
                "at": now,
            }
            key = self.key(tenant_id, revision, company_ids, ticket.id)
            self.cache.set(key, facts, timeout=int(seconds) + 1)

    def recall(
        self,
        tenant_id: str,
        revision: int,
        company_ids: Sequence[int] | None,
        ticket_id: int,
    ) -> Ticket | None:
        """The ticket's facts if a search of this tenant, revision and scope returned it within
        ``CONNECTWISE_TICKET_FACTS_SECONDS``; else ``None`` (read the ticket)."""
        seconds = facts_seconds(self.config)
        if not seconds:
            return None
        found = self.cache.get(self.key(tenant_id, revision, company_ids, ticket_id))
        if not isinstance(found, dict):
            return None
        try:
            age = self.clock() - float(found["at"])
            if not 0 <= age <= seconds or int(found["id"]) != int(ticket_id):
                return None
            return Ticket(
                id=int(ticket_id),
                summary=str(found.get("summary") or ""),
                status=found.get("status"),
                status_id=found.get("statusId"),
                company=found.get("company"),
                company_id=found.get("companyId"),
                board_id=found.get("boardId"),
                closed=bool(found.get("closed", False)),
            )
        except (KeyError, TypeError, ValueError):
            return None
