"""Links from a ticket number to the ticket in ConnectWise Manage's own web UI.

The API documentation we build on (docs/connectwise-api.md) does not define the UI's ticket
address. The default template is the address ConnectWise Manage's web client has long used for a
service ticket (``.../services/system_io/Service/fv_sr100_request.rsp?service_recid=<id>``); it
is a setting, ``CONNECTWISE_TICKET_URL``, so a tenant on another codebase or an on-premises
server can change it, and ``None`` turns the links off.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

__all__ = ["DEFAULT_TICKET_URL", "site_url", "ticket_url"]

#: ``{site}``: the tenant's ConnectWise site (its API base URL without the cloud ``api-``
#: prefix), ``{company}``: its company id, ``{ticket}``: the ticket number.
DEFAULT_TICKET_URL = (
    "{site}/v4_6_release/services/system_io/Service/fv_sr100_request.rsp"
    "?companyName={company}&service_recid={ticket}"
)


def site_url(base_url: str) -> str:
    """The web site of a tenant's ConnectWise from its API base URL: cloud API hosts
    (``api-na.myconnectwise.net``) serve the UI without the ``api-`` prefix."""
    parts = urlsplit(base_url.strip())
    host = parts.netloc
    if host.lower().startswith("api-"):
        host = host[4:]
    return f"{parts.scheme or 'https'}://{host}"


def ticket_url(
    config: Mapping[str, Any], base_url: str | None, company_id: str | None, ticket_id: int
) -> str | None:
    """The ticket's address in ConnectWise, or ``None`` (links off, or no site known)."""
    template = config.get("CONNECTWISE_TICKET_URL", DEFAULT_TICKET_URL)
    if not template or not base_url:
        return None
    try:
        return str(template).format(
            site=site_url(base_url),
            company=quote(company_id or "", safe=""),
            ticket=int(ticket_id),
        )
    except (KeyError, IndexError, ValueError):
        return None  # a template naming other fields: no link rather than an error page
