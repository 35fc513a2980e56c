"""Checks on a change before anything is written: the chosen ticket and the change's member.

Shared by the JSON routes and :class:`~flask_connectwise.fields.TicketSearchField` (issue 14,
"before submit"). Flask-free: the callers pass the client, the tenant's settings and the
member check.

- A ticket of a company the tenant does not serve is always refused ("Ticket #12460 belongs
  to Woodgrove Bank, not Contoso Ltd").
- When the change logs time, a closed ticket, or one whose status does not allow time entries,
  is refused with the tenant's ``ticket_policy == "refuse"`` (the default); with ``"warn"`` it is
  accepted, the time step is skipped with its reason and the caller shows a warning.
- When ConnectWise cannot be reached for a check, nothing is refused (today's behaviour: the
  outbox delivers, and retries, as before).
- Degraded validation (issue 15): the callers bound the checks with
  :func:`~.client.call_deadline` (``CONNECTWISE_CHECK_DEADLINE``). When ConnectWise is slow
  (the deadline passed) or down, the ticket typed as a number is accepted *unverified*
  (``TicketVerdict.verified`` False, :func:`unverified_warning`): the change row records
  ``ticket_verified=False`` and delivery reads the ticket before writing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from .credentials import TenantSettings
from .crypto import CryptoError
from .errors import (
    ConnectWiseError,
    ConnectWiseTimeoutError,
    MemberUnusableError,
    UnavailableError,
)
from .records import Ticket

log = logging.getLogger("flask_connectwise.checks")

#: Why the time step is skipped when no member is linked (``CONNECTWISE_REQUIRE_MEMBER``).
NO_MEMBER_REASON = "no time entry: your user is not linked to a ConnectWise member"

#: Seconds the checks before submit and a search may take (``CONNECTWISE_CHECK_DEADLINE``).
DEFAULT_CHECK_DEADLINE = 2.0


def check_deadline(config: Any) -> float:
    """``CONNECTWISE_CHECK_DEADLINE`` from ``config`` (a mapping), in seconds."""
    try:
        value = float(config.get("CONNECTWISE_CHECK_DEADLINE", DEFAULT_CHECK_DEADLINE))
    except (TypeError, ValueError):
        return DEFAULT_CHECK_DEADLINE
    return value if value > 0 else DEFAULT_CHECK_DEADLINE


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` means ConnectWise is slow (timeout, deadline passed) or down (cannot be
    reached, 5xx): a ticket typed as a number is then accepted unverified."""
    return isinstance(exc, ConnectWiseTimeoutError | UnavailableError)


def unverified_warning(ticket_id: int) -> str:
    """What the operator is told when the ticket is accepted unverified."""
    return (
        f"ConnectWise is slow to answer: ticket #{ticket_id} will be checked when the change "
        "is logged."
    )


class TicketRefused(Exception):
    """The ticket cannot take this change; ``message`` is for the operator, ``code`` for JSON."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class TicketVerdict:
    """What may go on: ``time_skipped`` is the reason the time step is skipped (``None``: it
    is not), ``warning`` the sentence to show the operator."""

    time_skipped: str | None = None
    warning: str | None = None
    #: False: ConnectWise was slow or down, the ticket is accepted unchecked (see module doc).
    verified: bool = True


def company_refusal(ticket: Ticket, settings: TenantSettings) -> str | None:
    """ "Ticket #12460 belongs to Woodgrove Bank, not Contoso Ltd", or ``None`` when the tenant
    serves the ticket's company (or is not limited to companies).

    The one wording for the field, the API and the outbox: a company without a name is
    "another company" (never its id), a ticket without one "no company", and a tenant whose
    companies were stored by id only is "not one of this tenant's companies". No full stop:
    the outbox's outcome quotes it inside a sentence ("... (Ticket #12460 belongs to ...)").
    """
    if settings.serves_company(ticket.company_id):
        return None
    owner = ticket.company or ("another company" if ticket.company_id else "no company")
    if ticket.company_id and not _name_other_companies():
        owner = "another company"  # CONNECTWISE_NAME_OTHER_COMPANIES off: no customer's name
    return f"Ticket #{ticket.id} belongs to {owner}, not {settings.company_names}"


def _name_other_companies() -> bool:
    from flask import current_app, has_app_context

    return not has_app_context() or bool(
        current_app.config.get("CONNECTWISE_NAME_OTHER_COMPANIES", True)
    )


def work_defaults(settings: TenantSettings | None) -> dict[str, Any]:
    """The tenant's work type, work role and billable option as keywords of
    :meth:`~.client.ConnectWiseClient.add_time_entry` (``None`` each when unset: ConnectWise's
    own default applies)."""
    return {
        "work_type": settings.work_type.id if settings and settings.work_type else None,
        "work_role": settings.work_role.id if settings and settings.work_role else None,
        "billable_option": settings.billable_option if settings else None,
    }


def time_problem(ticket: Ticket, client: Any) -> str | None:
    """Why time cannot be logged on ``ticket`` ("ticket #12348 is closed"), or ``None``.

    The status's ``timeEntryNotAllowed`` comes from the board's statuses (cached by the
    client); a failing status lookup is no problem (nothing refused).
    """
    if ticket.closed:
        return f"ticket #{ticket.id} is closed"
    if ticket.board_id and ticket.status_id:
        try:
            statuses = client.board_statuses(ticket.board_id)
        except ConnectWiseError as exc:
            log.info(
                "connectwise: the ticket's statuses could not be checked",
                extra={"cw_ticket": ticket.id, "cw_error": type(exc).__name__},
            )
            return None
        status = next((s for s in statuses if s.id == ticket.status_id), None)
        if status is not None and status.closed:
            return f"ticket #{ticket.id} is closed"
        if status is not None and not status.time_entry_allowed:
            name = status.name or ticket.status or f"status {status.id}"
            return f"ticket #{ticket.id}'s status {name} does not allow time entries"
    return None


def check_ticket(
    ticket: Ticket, settings: TenantSettings, client: Any, *, logs_time: bool
) -> TicketVerdict:
    """Refuse (:class:`TicketRefused`) or allow ``ticket`` for a change (see the module doc)."""
    refusal = company_refusal(ticket, settings)
    if refusal:
        raise TicketRefused(refusal, "ticket_other_company")
    if not logs_time:
        return TicketVerdict()
    problem = time_problem(ticket, client)
    if problem is None:
        return TicketVerdict()
    if settings.ticket_policy != "warn":
        code = "ticket_closed" if problem.endswith("is closed") else "ticket_time_not_allowed"
        raise TicketRefused(f"{problem[0].upper()}{problem[1:]}: time cannot be logged", code)
    reason = f"no time entry: {problem}"
    return TicketVerdict(
        time_skipped=reason,
        warning=f"Logged without time: {problem[0].upper()}{problem[1:]}.",
    )


def fetch_and_check(
    ticket_id: int, settings: TenantSettings, client: Any, *, logs_time: bool
) -> TicketVerdict:
    """:func:`check_ticket` for ``ticket_id`` (as this client last saw it in a search, else
    read); when the ticket cannot be read (ConnectWise unreachable, not found, credentials
    refused) nothing is refused; unreachable (slow or down): the verdict is unverified."""
    try:
        ticket = client.known_ticket(ticket_id) or client.get_ticket(ticket_id)
    except ConnectWiseError as exc:
        log.info(
            "connectwise: the ticket could not be checked before the change",
            extra={"cw_ticket": ticket_id, "cw_error": type(exc).__name__},
        )
        if unreachable(exc):
            return TicketVerdict(warning=unverified_warning(ticket_id), verified=False)
        return TicketVerdict()
    return check_ticket(ticket, settings, client, logs_time=logs_time)


def check_member(members: Any, tenant_id: str, member: str | None) -> None:
    """Raise :class:`~.errors.MemberUnusableError` when ``member`` cannot be used; a member
    check that cannot reach ConnectWise refuses nothing."""
    if not member:
        return
    try:
        members.check(tenant_id, member)
    except MemberUnusableError:
        raise
    except (ConnectWiseError, CryptoError) as exc:
        log.info(
            "connectwise: the member could not be checked before the change",
            extra={"cw_tenant": tenant_id, "cw_error": type(exc).__name__},
        )
