"""A host app with Flask-Admin for the admin-view tests and the screenshot script."""

from __future__ import annotations

import re
from typing import Any

from tests.conftest import TENANT_A, TENANT_B

__all__ = ["TENANT_A", "TENANT_B", "AdminUser", "make_admin_app", "seed_credentials"]


def make_admin_app(database_url: str, *, keys: list[str] | None = None, **config: Any) -> Any:
    """Flask-SQLAlchemy, Flask-WTF CSRF on, Flask-Admin (Bootstrap 4) and the extension.

    The test "user" says who they are in headers (X-User-Tenant, X-User-Role, X-User-Member),
    or, for a browser, in the query string once (stored in the session).
    """
    from flask import Flask, request, session
    from flask_admin import Admin
    from flask_admin.theme import Bootstrap4Theme
    from flask_caching import Cache
    from flask_sqlalchemy import SQLAlchemy
    from flask_wtf.csrf import CSRFProtect, generate_csrf

    from flask_connectwise import ConnectWise
    from flask_connectwise.crypto import generate_key

    app = Flask("admin_host")
    app.config.update(
        SECRET_KEY="test-secret-key",
        SQLALCHEMY_DATABASE_URI=database_url,
        CONNECTWISE_ENCRYPTION_KEYS=keys or [generate_key("k1")],
        CONNECTWISE_ALLOW_LOOPBACK_HTTP=True,
        CONNECTWISE_TIMEOUT=5.0,
        TESTING=True,
    )
    app.config.update(config)
    db = SQLAlchemy()
    db.init_app(app)
    CSRFProtect(app)
    cache = Cache(config={"CACHE_TYPE": "SimpleCache"})
    cache.init_app(app)
    admin = Admin(app, name="Host admin", theme=Bootstrap4Theme())
    cw = ConnectWise(app, db=db, admin=admin, cache=cache)

    def who() -> tuple[str | None, str]:
        if "X-User-Tenant" in request.headers:
            return request.headers.get("X-User-Tenant"), request.headers.get("X-User-Role", "")
        return session.get("tenant"), session.get("role", "")

    @app.before_request
    def browser_login() -> None:
        if "as_tenant" in request.args:
            session["tenant"] = request.args["as_tenant"]
            session["role"] = request.args.get("as_role", "admin")

    @cw.authorize
    def authorize(tenant_id: str, action: str) -> bool:
        tenant, role = who()
        if role == "superadmin":
            return True
        if tenant != tenant_id:
            return False
        return role == "admin" or (role == "operator" and action == "use")

    @cw.current_member
    def member() -> str | None:
        return request.headers.get("X-User-Member") or session.get("member") or "jdoe"

    @cw.current_tenant
    def current_tenant() -> str | None:
        return who()[0]

    @app.get("/csrf")
    def csrf() -> dict[str, str]:
        return {"token": generate_csrf()}

    app.extensions["test_db"] = db
    app.extensions["test_cw"] = cw
    app.extensions["test_admin"] = admin
    with app.app_context():
        db.create_all()
    return app


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
        row = app.extensions["test_cw"].service.save_credentials(tenant, payload, actor="seed")
        return row.id


def text_of(html: str) -> str:
    """The page without tags, whitespace collapsed (for 'the page says ...' checks)."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())
