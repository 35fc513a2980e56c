"""A logged-in user of the JSON routes, and configuring a tenant through those routes."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask

from tests.hosts import TENANT_A

PREFIX = "/api/admin/tenant/{tenant}/connectwise"


class Api:
    """A logged-in user of one tenant, sending JSON with the CSRF header."""

    def __init__(self, app: Any, tenant: str, role: str = "admin", member: str = "jdoe") -> None:
        self.app = app
        self.http = app.test_client()
        self.headers = {"X-User-Tenant": tenant, "X-User-Role": role, "X-User-Member": member}
        self.tenant = tenant
        token = self.http.get("/csrf").get_json()["token"]
        self.headers["X-CSRFToken"] = token

    def url(self, path: str, tenant: str | None = None) -> str:
        return PREFIX.format(tenant=tenant or self.tenant) + path

    def call(
        self, method: str, path: str, body: Any = None, *, tenant: str | None = None, **kw: Any
    ) -> Any:
        headers = dict(self.headers) | kw.pop("headers", {})
        if body is not None and "data" not in kw:
            kw["data"] = json.dumps(body)
            kw.setdefault("content_type", "application/json")
        return self.http.open(self.url(path, tenant), method=method, headers=headers, **kw)


def configure(app: Flask, sandbox: Any, tenant: str = TENANT_A, *, enable: bool = True) -> Api:
    """Store ``sandbox``'s credentials for ``tenant`` through ``POST /credentials`` (as its
    admin) and, with ``enable``, turn the feature on; the admin's :class:`Api` back."""
    api = Api(app, tenant)
    with app.app_context():
        if enable:
            app.extensions["test_cw"].tenants.set_flag(tenant, True, actor="test")
    creds = sandbox.credentials
    answer = api.call(
        "POST",
        "/credentials",
        {
            "baseUrl": creds["base_url"],
            "companyId": creds["company_id"],
            "publicKey": creds["public_key"],
            "privateKey": creds["private_key"],
            "clientId": creds["client_id"],
            "defaultTimeMinutes": 15,
            "autoUpdateStatus": False,
        },
    )
    assert answer.status_code == 200, answer.get_json()
    return api
