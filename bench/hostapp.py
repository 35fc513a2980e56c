"""A small host app for the benchmarks: SQLAlchemy, the extension, tenants on the sandbox."""

from __future__ import annotations

import secrets
from typing import Any

from flask import Flask, jsonify
from flask_caching import Cache
from flask_sqlalchemy import SQLAlchemy

from flask_connectwise import ConnectWise
from flask_connectwise.crypto import generate_key


def make_app(
    database_url: str,
    sandbox: Any,
    *,
    tenants: tuple[str, ...] = ("bench",),
    cache_config: dict[str, Any] | None = None,
    keys: list[str] | None = None,
    create: bool = True,
    config: dict[str, Any] | None = None,
) -> Flask:
    """The app, its tables, and each tenant's credentials pointing at ``sandbox``, flag on.

    ``config``: more Flask settings, applied before the extensions are set up (for example
    ``SQLALCHEMY_ENGINE_OPTIONS``). With ``create=False`` nothing is created and ``sandbox`` is
    not used (a server worker of an app whose tables another process created).
    """
    app = Flask("bench-host")
    app.config.update(
        SECRET_KEY=secrets.token_hex(16),
        SQLALCHEMY_DATABASE_URI=database_url,
        CONNECTWISE_ENCRYPTION_KEYS=keys or [generate_key("bench")],
        CONNECTWISE_ALLOW_LOOPBACK_HTTP=True,
        CONNECTWISE_REQUIRE_CSRF=False,
    )
    app.config.update(config or {})
    db = SQLAlchemy(app)
    cache = Cache(config=cache_config or {"CACHE_TYPE": "SimpleCache"})
    cache.init_app(app)
    cw = ConnectWise(app, db=db, cache=cache)
    cw.authorize(lambda tenant_id, action: True)  # benchmarks only: everyone may do everything

    @app.get("/bench/floor")
    def floor() -> Any:
        """The baseline: a bare JSON route of the same app on the same server."""
        return jsonify([{"id": 1, "summary": "floor"}])

    if create:
        with app.app_context():
            db.create_all()
            store = cw.tenants  # credentials and flags
            creds = sandbox.credentials
            for tenant in tenants:
                store.set_flag(tenant, True, actor="bench")
                store.save_credentials(
                    tenant,
                    {
                        "baseUrl": creds["base_url"],
                        "companyId": creds["company_id"],
                        "publicKey": creds["public_key"],
                        "privateKey": creds["private_key"],
                        "clientId": creds["client_id"],
                    },
                    actor="bench",
                )
    return app
