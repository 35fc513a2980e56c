"""A host app with Flask-Admin for the admin-view tests and the screenshot script."""

from __future__ import annotations

import re
from typing import Any

from tests.hosts import TENANT_A, TENANT_B, make_host_app

__all__ = [
    "TENANT_A",
    "TENANT_B",
    "AdminUser",
    "credentials_form",
    "make_admin_app",
    "seed_change",
    "seed_credentials",
    "settings_of",
]


def make_admin_app(
    database_url: str, *, keys: list[str] | None = None, authorize: bool = True, **config: Any
) -> Any:
    """The host app of ``tests.hosts`` with Flask-Admin (Bootstrap 4); see ``make_host_app``.

    The test "user" says who they are in headers (X-User-Tenant, X-User-Role, X-User-Member),
    or, for a browser, in the query string once (stored in the session).
    """
    return make_host_app(database_url, keys=keys, admin=True, authorize=authorize, **config)


class AdminUser:
    """A logged-in admin (or operator) of one tenant using the admin views."""

    def __init__(self, app: Any, tenant: str, role: str = "admin", member: str = "jdoe") -> None:
        self.app = app
        self.http = app.test_client()
        self.headers = {"X-User-Tenant": tenant, "X-User-Role": role, "X-User-Member": member}
        self.tenant = tenant
        self.token = self.http.get("/csrf", headers=self.headers).get_json()["token"]

    def get(self, url: str, **kw: Any) -> Any:
        return self.http.get(url, headers=self.headers, **kw)

    def post(self, url: str, data: dict[str, Any] | None = None, **kw: Any) -> Any:
        body = {"csrf_token": self.token} | dict(data or {})
        return self.http.post(url, data=body, headers=self.headers, **kw)

    def flashes(self) -> list[tuple[str, str]]:
        with self.http.session_transaction() as sess:
            return list(sess.get("_flashes", []))


def seed_credentials(app: Any, tenant: str, sandbox: Any, **overrides: Any) -> Any:
    """Store credentials for ``tenant`` through the service (as the JSON API would)."""
    creds = sandbox.credentials
    payload = {
        "baseUrl": creds["base_url"],
        "companyId": creds["company_id"],
        "publicKey": creds["public_key"],
        "privateKey": creds["private_key"],
        "clientId": creds["client_id"],
        "defaultTimeMinutes": 15,
        "autoUpdateStatus": False,
    } | overrides
    with app.app_context():
        row = app.extensions["test_cw"].tenants.save_credentials(tenant, payload, actor="seed")
        return row.id


def settings_of(app: Any, tenant: str) -> Any:
    """The tenant's stored ConnectWise settings (``TenantSettings``)."""
    with app.app_context():
        return app.extensions["test_cw"].tenants.settings(tenant)


def credentials_form(sandbox: Any, *, secrets: bool, **overrides: Any) -> dict[str, Any]:
    """The credentials form as the browser posts it for tenant A: ``secrets`` typed in (a new
    row, or replacing them), else left blank (an edit keeps the stored ones); an override of
    ``None`` leaves that input out."""
    creds = sandbox.credentials
    body: dict[str, Any] = {
        "tenant_id": TENANT_A,
        "base_url": creds["base_url"],
        "company_id": creds["company_id"],
        "public_key": creds["public_key"] if secrets else "",
        "private_key": creds["private_key"] if secrets else "",
        "client_id": creds["client_id"] if secrets else "",
        "default_time_minutes": "15",
        "default_status_id": "",
        "companies-shown": "1",
        "board_statuses-shown": "1",
        "note_visibility": "internal",
        "ticket_policy": "refuse",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def seed_change(
    app: Any,
    *,
    tenant: str = TENANT_A,
    ticket_id: int = 12346,
    note_text: str = "DID +1 555 0100 moved to ext. 204",
    hours: float | None = 0.25,
    status_id: int | None = None,
    **columns: Any,
) -> int:
    """A change-log row by operator jdoe, with ``columns`` set as given (states, errors ...),
    committed as is without delivery; its id."""
    from flask_connectwise.delivery import new_change

    with app.app_context():
        service = app.extensions["test_cw"].service
        change = new_change(
            service.models,
            tenant_id=tenant,
            ticket_id=ticket_id,
            note_text=note_text,
            member="jdoe",
            hours=hours,
            status_id=status_id,
            operator="jdoe",
        )
        for name, value in columns.items():
            setattr(change, name, value)
        service.session.add(change)
        service.session.commit()
        return int(change.id)


def text_of(html: str) -> str:
    """The page without tags, whitespace collapsed (for 'the page says ...' checks)."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())
