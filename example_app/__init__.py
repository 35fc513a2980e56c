"""An example host app for flask-connectwise: a Teams voice dashboard and 3CX management for
two tenants, whose operators log their changes to ConnectWise tickets.

    flask --app example_app run          # demo mode: sandbox, migrations, users, data

See :mod:`example_app.config` for the environment variables and :mod:`example_app.demo` for
what demo mode does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, Response

import flask_connectwise.migrate

from . import admin, auth, config, demo
from .extensions import cache, csrf, cw, db, login_manager, migrate

#: The repository's Flask-Migrate environment (this app's revisions live in its versions/).
MIGRATIONS_DIR = str(Path(__file__).resolve().parent.parent / "migrations")


def create_app(
    config_overrides: Mapping[str, Any] | None = None, *, instance_path: str | None = None
) -> Flask:
    """Build the app. ``config_overrides`` win over the environment (see :mod:`.config`);
    ``instance_path`` (or ``EXAMPLE_INSTANCE_PATH``) moves the instance folder."""
    app = Flask(
        __name__,
        instance_path=instance_path or os.environ.get("EXAMPLE_INSTANCE_PATH") or None,
        instance_relative_config=True,
    )
    config.load(app, config_overrides)

    db.init_app(app)
    flask_connectwise.migrate.register(migrate)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR)
    csrf.init_app(app)
    login_manager.init_app(app)
    cache.init_app(app)

    demo.decide(app)  # before the extension reads CONNECTWISE_ALLOW_LOOPBACK_HTTP
    cw.init_app(app, db=db, cache=cache)
    auth.init_app(app)
    admin.init_app(app)

    from . import models  # noqa: F401  (the tables, for migrations and the shell)

    demo.init_app(app)
    app.add_url_rule("/favicon.ico", "favicon", favicon)
    return app


#: The example's icon (browsers ask for /favicon.ico on every page: no 404 in the log).
FAVICON_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
    '<rect width="32" height="32" rx="6" fill="#0b5394"/>'
    '<path d="M9 16h14M16 9v14" stroke="#fff" stroke-width="4" stroke-linecap="round"/></svg>'
)


def favicon() -> Response:
    """``GET /favicon.ico``: the example's icon, cached for a day."""
    response = Response(FAVICON_SVG, mimetype="image/svg+xml")
    response.cache_control.public = True
    response.cache_control.max_age = 86400
    return response


__all__ = ["MIGRATIONS_DIR", "create_app", "favicon"]
