"""Build and serve the example app (example_app) for its tests and the screenshot script."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

from example_app import create_app, demo
from flask_connectwise.crypto import generate_key
from tests.serving import serve as serve  # re-exported for the tests

PASSWORD = demo.DEMO_PASSWORD
CONTOSO_ADMIN = "admin@contoso.example"
CONTOSO_OPERATOR = "operator@contoso.example"
FABRIKAM_ADMIN = "admin@fabrikam.example"
FABRIKAM_OPERATOR = "operator@fabrikam.example"


def make_example_app(directory: Path, sandbox: Any | None = None, **config: Any) -> Flask:
    """The example app on a fresh, migrated SQLite database in ``directory``, with the demo
    users and data; ``sandbox``: both tenants' credentials point at it, flag on."""
    overrides: dict[str, Any] = {
        "TESTING": True,
        "SECRET_KEY": "example-test-secret",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{directory / 'example.db'}",
        "CONNECTWISE_DEMO": False,
        "CONNECTWISE_ALLOW_LOOPBACK_HTTP": True,
        "CONNECTWISE_ENCRYPTION_KEYS": [generate_key("t1")],
        "CONNECTWISE_TIMEOUT": 5.0,
        "CONNECTWISE_SWEEP_SECONDS": 0,  # tests decide when retries are delivered
    }
    if sandbox is not None:
        overrides.update(sandbox.app_config)  # loopback URLs on the sandbox's port only
    overrides.update(config)
    app = create_app(overrides, instance_path=str(directory / "instance"))
    demo.run_migrations(app)
    with app.app_context():
        demo.seed_users()
        demo.seed_data()
        if sandbox is not None:
            demo.configure_tenants(sandbox.credentials)
    return app


def set_flag(app: Flask, tenant: str, enabled: bool) -> None:
    """Turn the ConnectWise feature on or off for ``tenant``."""
    from example_app.extensions import cw

    with app.app_context():
        cw.tenants.set_flag(tenant, enabled, actor="test")


def dispose(app: Flask) -> None:
    """Close the app's database connections."""
    from example_app.extensions import db

    with app.app_context():
        db.session.remove()
        db.engine.dispose()
