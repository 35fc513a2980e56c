"""Refining a ticket search from a complete cached answer, without asking ConnectWise.

Typing "printer" after "prin" was answered: every ticket whose summary contains "printer" also
contains "prin", so when ConnectWise's answer to "prin" was *complete* (it sent fewer rows than
the page asked for, :attr:`TicketAnswer.complete`), the answer to "printer" is the part of it
that matches "printer". :class:`Refiner` keeps, per tenant, credentials revision and company
scope (the key holds all three: another tenant, new credentials or another scope never see
them), which cached answers were complete and when ConnectWise gave them. A search that misses
the cache is answered from such an answer when its text contains the answer's text (a prefix or
any substring, compared without case), within ``CONNECTWISE_SEARCH_CACHE_SECONDS`` of
ConnectWise's answer; the refined answer is cached only for what is left of that time. A
truncated answer (a full page) is never refined: older matches may lie beyond it.

The local filter applies ConnectWise's own rules as the client asks for them
(:meth:`~flask_connectwise.client.ConnectWiseClient.search_tickets`, ``open_only``): open
tickets whose summary contains every literal piece of the text (``contains`` without case, as
the sandbox evaluates it), and, for text with ``_ % * [ ]``, the client's exact check
(:func:`~flask_connectwise.conditions.matches`). An all-digits text of up to 9 digits also
finds the ticket with that number, whatever its state: it is answered locally only when the
complete answer says whether that ticket exists (it holds it, or it was the same number's
answer); otherwise ConnectWise is asked. Newest first, the number's own ticket first, cut to the
limit, as the client does.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import conditions as cond
from .cachesafe import SafeCache
from .config import positive_seconds
from .records import Ticket

#: How many complete answers of one tenant, revision and scope are remembered for refinement.
KEPT = 32
#: How many remembered answers one search tries before asking ConnectWise.
TRIED = 3
#: The client's bounds of a search's limit (``MAX_SEARCH_LIMIT``).
MAX_LIMIT = 100


class TicketAnswer(list[Ticket]):
    """What :meth:`search_tickets` returns: the tickets, and whether the answer was complete
    (ConnectWise sent fewer rows than the page asked for, so no match was left out)."""

    complete: bool = False

    @classmethod
    def of(cls, tickets: Sequence[Ticket], *, complete: bool) -> TicketAnswer:
        answer = cls(tickets)
        answer.complete = bool(complete)
        return answer


@dataclass(frozen=True)
class Rule:
    """What a ticket search for one text matches (open tickets only)."""

    text: str
    folded: str
    pieces: tuple[str, ...]
    exact: bool
    exact_id: int | None

    @classmethod
    def of(cls, query: str) -> Rule | None:
        """The rule of ``query`` as the client reads it; ``None`` when nothing is searchable."""
        text = cond.search_text(str(query or ""))
        pieces = tuple(cond.literal_pieces(text))
        if not text or not pieces or not text.isascii():
            return None  # beyond ASCII, the server's collation may fold case otherwise
        digits = text.isascii() and text.isdigit() and len(text) <= 9
        return cls(
            text=text,
            folded=text.casefold(),
            pieces=tuple(p.casefold() for p in pieces),
            exact=cond.needs_exact_check(text),
            exact_id=(int(text) or None) if digits else None,
        )

    def covers(self, other: Rule) -> bool:
        """Whether every ticket ``other`` finds by its summary is one this rule finds too.

        This text inside the other's (without case) is enough: each of this rule's pieces, a
        run without ``_ % * [ ]``, then lies inside one of the other's pieces, so a summary
        holding every piece of the other's holds every piece of this one (and, with the exact
        check, the other's whole text holds this one's)."""
        return self.folded in other.folded

    def finds(self, ticket: Mapping[str, Any]) -> bool:
        """Whether ConnectWise's answer to this rule holds ``ticket`` (one of the tenant's)."""
        if self.exact_id is not None and ticket["id"] == self.exact_id:
            return True
        if ticket["closed"]:
            return False
        summary = ticket["summary"]
        folded = summary.casefold()
        if not all(piece in folded for piece in self.pieces):
            return False
        return not self.exact or cond.matches(summary, self.text)


def _digest(tickets: Sequence[Mapping[str, Any]]) -> str:
    raw = json.dumps(list(tickets), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def _valid(tickets: Any) -> bool:
    return isinstance(tickets, list) and all(
        isinstance(t, dict)
        and isinstance(t.get("id"), int)
        and not isinstance(t.get("id"), bool)
        and isinstance(t.get("summary"), str)
        and isinstance(t.get("closed"), bool)
        for t in tickets
    )


class Refiner:
    """Answers a search from a complete cached answer of the same tenant, revision and scope."""

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

    def seconds(self) -> float:
        """``CONNECTWISE_SEARCH_CACHE_SECONDS`` (0 or less: no cache, no refinement)."""
        return positive_seconds(self.config, "CONNECTWISE_SEARCH_CACHE_SECONDS")

    @staticmethod
    def index_key(tenant_id: str, revision: int, company_ids: Sequence[int] | None) -> str:
        scope = "all" if company_ids is None else ",".join(str(int(i)) for i in company_ids)
        raw = f"{tenant_id}\0{int(revision)}\0{scope}"
        return f"connectwise:search-complete:{hashlib.sha256(raw.encode()).hexdigest()[:40]}"

    def _entries(self, index: str) -> list[dict[str, Any]]:
        found = self.cache.get(index)
        if not isinstance(found, list):
            return []
        return [
            e
            for e in found
            if isinstance(e, dict)
            and isinstance(e.get("q"), str)
            and isinstance(e.get("key"), str)
            and isinstance(e.get("digest"), str)
            and isinstance(e.get("at"), int | float)
        ]

    def remember(
        self,
        tenant_id: str,
        revision: int,
        company_ids: Sequence[int] | None,
        query: str,
        key: str,
        tickets: Sequence[Mapping[str, Any]],
        *,
        at: float | None = None,
    ) -> None:
        """Note that ``tickets``, cached under ``key``, is the complete answer to ``query``,
        given by ConnectWise at ``at`` (now by default)."""
        seconds = self.seconds()
        rule = Rule.of(query)
        if not seconds or rule is None:
            return
        now = self.clock()
        at = now if at is None else at
        index = self.index_key(tenant_id, revision, company_ids)
        entries = [
            e for e in self._entries(index) if e["key"] != key and 0 <= now - e["at"] < seconds
        ]
        entries.append(
            {"q": rule.text, "f": rule.folded, "key": key, "at": at, "digest": _digest(tickets)}
        )
        self.cache.set(index, entries[-KEPT:], timeout=math.ceil(seconds))

    def answer(
        self,
        tenant_id: str,
        revision: int,
        company_ids: Sequence[int] | None,
        query: str,
        limit: int,
        key: str,
    ) -> list[dict[str, Any]] | None:
        """The answer to ``query`` refined from a complete cached answer (then also cached
        under ``key`` for what is left of the cache time), or ``None``: ask ConnectWise."""
        seconds = self.seconds()
        target = Rule.of(query)
        if not seconds or target is None:
            return None
        now = self.clock()
        candidates: list[tuple[Rule, dict[str, Any]]] = []
        for entry in self._entries(self.index_key(tenant_id, revision, company_ids)):
            folded = entry.get("f")
            if isinstance(folded, str) and folded not in target.folded:
                continue  # cannot cover the target: skip parsing its rule
            source = Rule.of(entry["q"])
            if (
                source is not None
                and 0 <= now - entry["at"] < seconds
                and entry["key"] != key
                and source.covers(target)
            ):
                candidates.append((source, entry))
        # The longest text first (the fewest tickets to filter), then the newest answer.
        candidates.sort(key=lambda c: (-len(c[0].text), -c[1]["at"]))
        for source, entry in candidates[:TRIED]:
            tickets = self.cache.get(entry["key"])
            if not _valid(tickets) or _digest(tickets) != entry["digest"]:
                continue  # gone, or no longer the complete answer it was
            if not all(t["summary"].isascii() for t in tickets):
                continue  # ConnectWise's collation may match "ß" to "ss": ask it
            wanted = target.exact_id
            if (
                wanted is not None
                and source.exact_id != wanted
                and all(t["id"] != wanted for t in tickets)
            ):
                continue  # whether that ticket exists is not known here
            matched = [t for t in tickets if target.finds(t)]
            matched.sort(key=lambda t: (t["id"] != wanted, -t["id"]))
            found = matched[: max(1, min(int(limit), MAX_LIMIT))]
            left = math.floor(seconds - (now - entry["at"]))
            if left >= 1 and self.cache.set(key, found, timeout=left) and found == matched:
                # Nothing was cut: this answer is complete too.
                self.remember(tenant_id, revision, company_ids, query, key, found, at=entry["at"])
            return found
        return None


def complete(answer: Sequence[Ticket]) -> bool:
    """Whether ``answer`` (from :meth:`search_tickets`) says it was complete."""
    return bool(getattr(answer, "complete", False))
