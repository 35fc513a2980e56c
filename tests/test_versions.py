"""Supported versions (docs/versions.md): Flask-Admin 1.6 is refused at init_app in plain words."""

from __future__ import annotations

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_connectwise import ConnectWise, compat
from flask_connectwise.crypto import generate_key


def _app() -> tuple[Flask, SQLAlchemy]:
    app = Flask("versions_host")
    app.config.update(
        SECRET_KEY="test-secret-key",
        SQLALCHEMY_DATABASE_URI="sqlite://",
        CONNECTWISE_ENCRYPTION_KEYS=[generate_key("k1")],
        CONNECTWISE_SWEEP_SECONDS=0,
    )
    return app, SQLAlchemy(app)


def _admin(app: Flask) -> object:
    import flask_admin

    try:
        from flask_admin.theme import Bootstrap4Theme
    except ImportError:  # Flask-Admin 1.x
        return flask_admin.Admin(app, template_mode="bootstrap4")
    return flask_admin.Admin(app, theme=Bootstrap4Theme())


@pytest.mark.parametrize("old", ["1.6.1", "1.6.0", "1.5.8", "2.0.2"])
def test_an_old_flask_admin_is_refused_at_init_app_naming_both_versions(
    monkeypatch: pytest.MonkeyPatch, old: str
) -> None:
    real = compat.installed_version
    monkeypatch.setattr(
        compat, "installed_version", lambda name: old if name == "flask-admin" else real(name)
    )
    app, db = _app()
    admin = _admin(app)
    with pytest.raises(RuntimeError) as caught:
        ConnectWise().init_app(app, db=db, admin=admin)
    message = str(caught.value)
    assert f"Flask-Admin {old} is installed" in message
    assert "need Flask-Admin 2.1 or newer" in message
    assert "pip install 'flask-admin>=2.1'" in message
    assert "Traceback" not in message
    # Refused before anything was registered: the app is as it was.
    assert "connectwise" not in app.extensions
    assert not any(rule.endpoint.startswith("connectwise") for rule in app.url_map.iter_rules())


@pytest.mark.parametrize("new", ["2.1.0", "2.1.0rc2", "2.2.1", "10.0"])
def test_flask_admin_2_or_newer_is_accepted(monkeypatch: pytest.MonkeyPatch, new: str) -> None:
    monkeypatch.setattr(compat, "installed_version", lambda name: new)
    compat.check_flask_admin()


def test_an_app_without_flask_admin_views_is_not_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compat, "installed_version", lambda name: "1.6.1")
    app, db = _app()
    ConnectWise().init_app(app, db=db)
    assert "connectwise" in app.extensions


@pytest.mark.skipif(
    compat._release(compat.installed_version("flask-admin") or "99") >= compat.MIN_FLASK_ADMIN,
    reason="runs where a Flask-Admin older than 2.1 is really installed (nox -s flask_admin_1_6)",
)
def test_the_installed_flask_admin_1_is_refused() -> None:
    installed = compat.installed_version("flask-admin")
    app, db = _app()
    admin = _admin(app)
    with pytest.raises(RuntimeError, match=rf"Flask-Admin {installed} is installed"):
        ConnectWise().init_app(app, db=db, admin=admin)
