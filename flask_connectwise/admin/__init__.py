"""Flask-Admin views: per-tenant credentials, the feature flag and the change log.

``ConnectWise(app, db=db, admin=admin)`` adds the three views under a "ConnectWise" menu
category through :func:`register_views`. Hosts that add views themselves import the classes::

    from flask_connectwise.admin import CredentialsView, FeatureFlagView, ChangeLogView

    admin.add_view(CredentialsView(cw.models.Credentials, db, extension=cw))

Every view shows and changes only the rows of tenants the host's ``authorize(tenant, action)``
hook allows: ``configure`` for credentials and flags (the ``*`` flag row needs ``configure`` on
tenant ``*``), ``use`` for the change log (an operator may retry the delivery of a change).

Secrets are write-only: the forms never render a stored value, a blank secret keeps the stored
one, and the secret columns appear in no list, details page, export, search or filter. Saving
goes through :meth:`ConnectWiseService.save_credentials`, so the values are validated and
encrypted exactly as the JSON API does.

One module per view (:mod:`.credentials`, :mod:`.flags`, :mod:`.changelog`) over the shared
pieces: :mod:`.base` (the tenant-scoped view), :mod:`.forms` (form base and CSRF),
:mod:`.widgets` (row actions) and :mod:`.text` (error words, HTML and CSV safety).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from flask import Flask

from .base import (
    TEMPLATES_BLUEPRINT,
    TEST_HINT,
    TenantScopedView,
    register_templates,
    templates_blueprint,
)
from .changelog import ChangeLogView
from .credentials import MAX_STATUS_BOARDS, STATUS_CACHE_SECONDS, CredentialsForm, CredentialsView
from .flags import FeatureFlagView, FlagForm
from .forms import ConnectWiseAdminForm, PostForm
from .text import crypto_message, csv_safe, error_message, plain_text
from .widgets import PostRowAction

if TYPE_CHECKING:
    from flask_admin import Admin

    from ..extension import ConnectWise
    from ..models import Models

__all__ = [
    "DEFAULT_CATEGORY",
    "DEFAULT_NAMES",
    "MAX_STATUS_BOARDS",
    "STATUS_CACHE_SECONDS",
    "TEMPLATES_BLUEPRINT",
    "TEST_HINT",
    "VIEW_KEYS",
    "ChangeLogView",
    "ConnectWiseAdminForm",
    "CredentialsForm",
    "CredentialsView",
    "FeatureFlagView",
    "FlagForm",
    "PostForm",
    "PostRowAction",
    "TenantScopedView",
    "crypto_message",
    "csv_safe",
    "error_message",
    "plain_text",
    "register_views",
    "templates_blueprint",
]

DEFAULT_CATEGORY = "ConnectWise"
VIEW_KEYS = ("credentials", "flags", "changes")
DEFAULT_NAMES = {"credentials": "Credentials", "flags": "Feature flag", "changes": "Change log"}


def _config_of(admin: Admin, app: Flask | None) -> Mapping[str, Any]:
    app = app or getattr(admin, "app", None)
    return app.config if app is not None else {}


def register_views(
    admin: Admin,
    extension: ConnectWise,
    models: Models,
    db: Any,
    *,
    app: Flask | None = None,
    category: str | None = None,
    enabled: bool | Iterable[str] | None = None,
    names: Mapping[str, str] | None = None,
) -> list[TenantScopedView[Any]]:
    """Add the credentials, feature-flag and change-log views to ``admin``.

    ``enabled`` (default: app config ``CONNECTWISE_ADMIN_VIEWS``, else ``True``): ``False`` adds
    nothing; an iterable of ``"credentials"``, ``"flags"``, ``"changes"`` adds only those.
    ``category`` (default: ``CONNECTWISE_ADMIN_CATEGORY``, else ``"ConnectWise"``) names the
    menu category; ``names`` renames views, e.g. ``{"changes": "Ticket log"}``. The config is
    read from ``app`` or ``admin.app``; keyword arguments win. ``db`` is the host's
    Flask-SQLAlchemy object (or its session). Returns the views added.
    """
    config = _config_of(admin, app)
    if enabled is None:
        enabled = config.get("CONNECTWISE_ADMIN_VIEWS", True)
    if category is None:
        category = config.get("CONNECTWISE_ADMIN_CATEGORY", DEFAULT_CATEGORY)
    if enabled is False or enabled is None:
        return []
    wanted = set(VIEW_KEYS) if enabled is True else {str(v) for v in enabled}
    unknown = wanted - set(VIEW_KEYS)
    if unknown:
        raise ValueError(
            f"CONNECTWISE_ADMIN_VIEWS: unknown view(s) {sorted(unknown)}; use True, False or "
            f"some of {list(VIEW_KEYS)}"
        )
    labels = DEFAULT_NAMES | dict(names or {})
    target_app = app or getattr(admin, "app", None)
    if target_app is not None:
        register_templates(target_app)
    specs: tuple[tuple[str, type[TenantScopedView[Any]], type[Any], str], ...] = (
        ("credentials", CredentialsView, models.Credentials, "connectwise_credentials"),
        ("flags", FeatureFlagView, models.FeatureFlag, "connectwise_flags"),
        ("changes", ChangeLogView, models.ChangeLog, "connectwise_change_log"),
    )
    added: list[TenantScopedView[Any]] = []
    for key, cls, model, endpoint in specs:
        if key not in wanted:
            continue
        view = cls(
            model,
            db,
            name=labels[key],
            category=category or None,
            endpoint=endpoint,
            url=f"connectwise/{key.replace('changes', 'change-log')}",
            extension=extension,
        )
        admin.add_view(view)
        added.append(view)
    return added
