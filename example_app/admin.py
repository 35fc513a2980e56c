"""Flask-Admin: the dashboard as its home page, the 3CX views, and the extension's views,
all for logged-in users only.

The extension's credentials and feature-flag views need ``configure`` (admins); its change
log needs ``use`` (operators too). They are added here (``CONNECTWISE_ADMIN_VIEWS`` is off)
so that they also require a login and stay out of the menu of users who may not use them.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, abort, redirect, request, url_for
from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme
from flask_login import current_user

from flask_connectwise.admin import ChangeLogView, CredentialsView, FeatureFlagView

from .extensions import cw, db

CONNECTWISE_CATEGORY = "ConnectWise"


class LoginRequired:
    """Mix into an admin view: logged-in users only (``admins_only``: admins only)."""

    admins_only = False

    def is_accessible(self) -> bool:
        if not current_user.is_authenticated:
            return False
        if self.admins_only and not current_user.is_admin:
            return False
        return bool(super().is_accessible())  # type: ignore[misc]

    def inaccessible_callback(self, name: str, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        abort(403)


class ExampleCredentialsView(LoginRequired, CredentialsView):
    """The extension's credentials view, for the tenant's admins."""

    admins_only = True


class ExampleFeatureFlagView(LoginRequired, FeatureFlagView):
    """The extension's feature-flag view, for the tenant's admins."""

    admins_only = True


class ExampleChangeLogView(LoginRequired, ChangeLogView):
    """The extension's change log (operators may retry a delivery)."""


def init_app(app: Flask) -> Admin:
    """Create the app's ``Admin`` with every view."""
    from .dashboard import DashboardView
    from .threecx import DidView, PhoneUserView

    admin = Admin(
        app,
        name="Example MSP",
        theme=Bootstrap4Theme(base_template="example/admin_master.html"),
        index_view=DashboardView(name="Dashboard", url="/admin"),
    )
    admin.add_view(
        PhoneUserView(db, name="Users", category="3CX Management", endpoint="threecx_users")
    )
    admin.add_view(DidView(db, name="DIDs", category="3CX Management", endpoint="threecx_dids"))
    with app.app_context():
        models = cw.models
    for cls, model, name, key in (
        (ExampleCredentialsView, models.Credentials, "Credentials", "credentials"),
        (ExampleFeatureFlagView, models.FeatureFlag, "Feature flag", "flags"),
        (ExampleChangeLogView, models.ChangeLog, "Change log", "change-log"),
    ):
        admin.add_view(
            cls(
                model,
                db,
                name=name,
                category=CONNECTWISE_CATEGORY,
                endpoint=f"connectwise_{key.replace('-', '_')}",
                url=f"connectwise/{key}",
                extension=cw,
            )
        )
    return admin
