"""The one host-app factory of the tests: a minimal Flask app using only the public API.

Flask-SQLAlchemy, Flask-WTF CSRF, Flask-Caching and the extension; optionally Flask-Admin. The
test "user" says who they are in headers (``X-User-Tenant``, ``X-User-Role``,
``X-User-Member``); with ``admin=True`` a browser may also log in once through the query string
(``?as_tenant=…&as_role=…``, kept in the session).

``app.extensions`` holds what the tests reach for: ``"test_db"``, ``"test_cw"`` and, with an
admin, ``"test_admin"`` (the conftest fixtures ``db``, ``cw`` and ``admin`` read them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Flask, request, session

if TYPE_CHECKING:
    from flask_connectwise import ConnectWise

TENANT_A = "tenant-a"
TENANT_B = "tenant-b"

__all__ = [
    "TENANT_A",
    "TENANT_B",
    "authorize_from_headers",
    "cw_of",
    "make_host_app",
]


def _who() -> tuple[str | None, str]:
    """The test user's tenant and role: headers first, then the browser's session."""
    if "X-User-Tenant" in request.headers:
        return request.headers.get("X-User-Tenant"), request.headers.get("X-User-Role", "")
    return session.get("tenant"), session.get("role", "")


def authorize_from_headers(tenant_id: str, action: str) -> bool:
    """The plain host's rule: admins of the tenant may do everything, operators may "use".

    ``X-Explode`` makes it raise (a failing hook must deny).
    """
    if request.headers.get("X-Explode"):
        raise RuntimeError("hook failure")
    role = request.headers.get("X-User-Role", "")
    if request.headers.get("X-User-Tenant") != tenant_id:
        return False
    return role == "admin" or (role == "operator" and action == "use")


def authorize_admin_user(tenant_id: str, action: str) -> bool:
    """The admin host's rule: as above from headers or the session; ``superadmin`` may all."""
    tenant, role = _who()
    if role == "superadmin":
        return True
    if tenant != tenant_id:
        return False
    return role == "admin" or (role == "operator" and action == "use")


def make_host_app(
    database_url: str,
    *,
    cache_config: dict[str, Any] | None = None,
    keys: list[str] | None = None,
    admin: bool = False,
    authorize: bool = True,
    **config: Any,
) -> Flask:
    """The host app on ``database_url``, its tables created.

    ``cache_config``: Flask-Caching's config (default ``SimpleCache``); ``keys``: the encryption
    keys (default one fresh key); ``admin``: add Flask-Admin (Bootstrap 4), the browser log-in
    and a ``current_tenant`` hook; ``authorize=False``: register no ``authorize`` hook (every
    route and view must then refuse); ``config``: more Flask settings, applied before the
    extensions are set up.
    """
    from flask_caching import Cache
    from flask_sqlalchemy import SQLAlchemy
    from flask_wtf.csrf import CSRFProtect, generate_csrf

    from flask_connectwise import ConnectWise
    from flask_connectwise.crypto import generate_key

    app = Flask("admin_host" if admin else "host")
    app.config.update(
        SECRET_KEY="test-secret-key",
        SQLALCHEMY_DATABASE_URI=database_url,
        CONNECTWISE_ENCRYPTION_KEYS=keys or [generate_key("k1")],
        CONNECTWISE_ALLOW_LOOPBACK_HTTP=True,
        CONNECTWISE_TIMEOUT=5.0,
        # No background sweep of due retries: a test decides when a change is delivered
        # (tests/test_dispatch.py turns it on where it is the subject).
        CONNECTWISE_SWEEP_SECONDS=0,
        TESTING=True,
    )
    app.config.update(config)
    db = SQLAlchemy()
    db.init_app(app)
    CSRFProtect(app)
    cache = Cache(config=cache_config or {"CACHE_TYPE": "SimpleCache"})
    cache.init_app(app)
    host_admin = None
    if admin:
        from flask_admin import Admin
        from flask_admin.theme import Bootstrap4Theme

        host_admin = Admin(app, name="Host admin", theme=Bootstrap4Theme())
    cw = ConnectWise(app, db=db, admin=host_admin, cache=cache)

    if admin:

        @app.before_request
        def browser_login() -> None:
            if "as_tenant" in request.args:
                session["tenant"] = request.args["as_tenant"]
                session["role"] = request.args.get("as_role", "admin")

        if authorize:
            cw.authorize(authorize_admin_user)

        @cw.current_member
        def admin_member() -> str | None:
            return request.headers.get("X-User-Member") or session.get("member") or "jdoe"

        @cw.current_tenant
        def current_tenant() -> str | None:
            return _who()[0]

    else:
        if authorize:
            cw.authorize(authorize_from_headers)

        @cw.current_member
        def member() -> str | None:
            return request.headers.get("X-User-Member")

    @app.get("/csrf")
    def csrf() -> dict[str, str]:
        return {"token": generate_csrf()}

    app.extensions["test_db"] = db
    app.extensions["test_cw"] = cw
    if host_admin is not None:
        app.extensions["test_admin"] = host_admin
    with app.app_context():
        db.create_all()
    return app


def cw_of(app: Flask) -> ConnectWise:
    """The extension ``app`` was set up with (its public ``tenants``, ``search``, ``outbox``)."""
    extension: ConnectWise = app.extensions["test_cw"]
    return extension


def dispose(app: Flask) -> None:
    """Finish the app's background deliveries (so none reaches the shared sandbox during a
    later test), then close its database session and connections."""
    from flask_connectwise.current import state

    state(app).dispatcher.close(wait=True)
    with app.app_context():
        app.extensions["test_db"].session.remove()
        app.extensions["test_db"].engine.dispose()
