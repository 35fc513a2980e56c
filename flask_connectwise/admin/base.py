"""What every ConnectWise admin view shares: rows scoped to the user's tenants, the actor,
the package templates, the one-button POST handling and plain-text exports."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, cast

from flask import Blueprint, flash, g, redirect, request
from flask.sansio.app import App
from flask.sansio.blueprints import BlueprintSetupState
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.contrib.sqla import ModelView
from flask_admin.helpers import get_form_data, get_redirect_target
from flask_admin.model import typefmt
from markupsafe import Markup
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Query, Session, scoped_session
from werkzeug.wrappers import Response
from wtforms import Field

from ..models import ChangeLogRow, CredentialsRow, FeatureFlagRow
from .forms import ConnectWiseAdminForm, PostForm
from .text import csv_safe, timestamp

if TYPE_CHECKING:
    from flask_admin import Admin

    from ..current import Action
    from ..extension import ConnectWise
    from ..outbox import Outbox
    from ..service import ConnectWiseService
    from ..tenants import Tenants

__all__ = [
    "TEMPLATES_BLUEPRINT",
    "TEST_HINT",
    "Formatter",
    "TenantRow",
    "TenantScopedView",
    "add_field_error",
    "list_action",
    "post_route",
    "register_templates",
    "templates_blueprint",
]

#: One logger for the whole admin, as before it became a package.
log = logging.getLogger("flask_connectwise.admin")

TEMPLATES_BLUEPRINT = "connectwise_admin_templates"
#: Test connection is allowed while the feature flag is off (docs/admin.md: "Feature flag"): it
#: only reads ConnectWise's version with the stored credentials, so an admin can check them
#: before turning the integration on.
TEST_HINT = "works even while the integration is off"

#: Serves ``templates/connectwise/admin/*`` (a host overrides them from its own templates).
templates_blueprint = Blueprint(
    TEMPLATES_BLUEPRINT,
    __name__,
    template_folder=str(Path(__file__).resolve().parent.parent / "templates"),
)


def register_templates(app: App) -> None:
    """Make the package's admin templates findable in ``app`` (once)."""
    if TEMPLATES_BLUEPRINT not in app.blueprints:
        app.register_blueprint(templates_blueprint)


F = TypeVar("F", bound=Callable[..., object])


def post_route(url: str) -> Callable[[F], F]:
    """Flask-Admin's ``@expose(url, methods=("POST",))``, typed."""
    return cast("Callable[[F], F]", expose(url, methods=("POST",)))


def list_action(name: str, text: str) -> Callable[[F], F]:
    """Flask-Admin's ``@action(name, text)`` (a bulk action of the list view), typed."""
    return cast("Callable[[F], F]", action(name, text))


def add_field_error(field: Field, message: str) -> None:
    """Show ``message`` under ``field`` (after any errors it has already)."""
    field.errors = [*list(field.errors or []), message]


#: A row the admin shows: each has an integer ``id`` and the ``tenant_id`` it belongs to.
TenantRow = CredentialsRow | FeatureFlagRow | ChangeLogRow

RowT = TypeVar("RowT", bound=TenantRow)

#: A Flask-Admin column formatter: ``(view, Jinja context, row, column name) -> cell``.
Formatter = Callable[[object, object, RowT, str], object]


class TenantScopedView(ModelView, Generic[RowT]):  # type: ignore[misc]  # untyped base
    """A model view showing only the rows of tenants the host lets this user ``action``."""

    tenant_action: ClassVar[Action] = "configure"
    form_base_class = ConnectWiseAdminForm
    # Times to the second, with their time zone (the tables store naive UTC).
    column_type_formatters: ClassVar[dict[type, Callable[..., Any]]] = {
        **typefmt.BASE_FORMATTERS,
        datetime: lambda view, value, *args: Markup('<span class="text-nowrap">{}</span>').format(
            timestamp(value)
        ),
    }
    column_type_formatters_detail: ClassVar[dict[type, Callable[..., Any]]] = {
        **typefmt.DETAIL_FORMATTERS,
        datetime: lambda view, value, *args: timestamp(value),
    }
    column_type_formatters_export: ClassVar[dict[type, Callable[..., Any]]] = {
        **typefmt.EXPORT_FORMATTERS,
        datetime: lambda view, value, *args: timestamp(value),
    }
    can_set_page_size = True
    page_size = 20
    column_editable_list: ClassVar[list[str]] = []  # never inline editing

    def __init__(
        self,
        model: type[RowT],
        session: Any,
        *args: Any,
        extension: ConnectWise,
        **kwargs: Any,
    ) -> None:
        self.extension = extension
        super().__init__(model, session, *args, **kwargs)

    # Flask-Admin builds one blueprint per view; ours also makes the package templates findable.
    def create_blueprint(self, admin: Admin) -> Blueprint:
        blueprint: Blueprint = super().create_blueprint(admin)

        def add_templates(setup: BlueprintSetupState) -> None:
            register_templates(setup.app)

        blueprint.record_once(add_templates)
        return blueprint

    @property
    def tenants(self) -> Tenants:
        """The app's credentials, feature flag and clients."""
        return self.extension.tenants

    @property
    def outbox(self) -> Outbox:
        """The app's change log (the outbox)."""
        return self.extension.outbox

    @property
    def service(self) -> ConnectWiseService:
        """The older one-object API (compatibility; the views use ``tenants`` and ``outbox``)."""
        return self.extension.service

    @property
    def db_session(self) -> scoped_session[Session]:
        """The host's SQLAlchemy session (the view may be given ``db`` or ``db.session``)."""
        session: scoped_session[Session] = self.tenants.session
        return session

    def is_accessible(self) -> bool:
        # Rows are filtered per tenant; without an authorize hook nobody may see anything.
        return getattr(self.extension, "_authorize", None) is not None

    def actor(self) -> str | None:
        """Who is changing things: the operator's member, else the host's logged-in user."""
        member = self.extension.member()
        if member:
            return str(member)[:128]
        try:
            from flask_login import current_user
        except ImportError:  # pragma: no cover - Flask-Login is optional
            return None
        try:
            if current_user and current_user.is_authenticated:
                for name in ("email", "username", "name"):
                    value = getattr(current_user, name, None)
                    if value:
                        return str(value)[:128]
                return str(current_user.get_id())[:128]
        except Exception:
            log.debug("no logged-in user to attribute the change to")
        return None

    def may(self, tenant_id: str, action_name: Action | None = None) -> bool:
        """Whether the host lets this user ``action_name`` (default: the view's) the tenant."""
        return bool(self.extension.is_authorized(tenant_id, action_name or self.tenant_action))

    def allowed_tenants(self) -> list[str]:
        """The tenants with rows in this table that the user may see (once per request)."""
        cache: dict[tuple[str, str], list[str]] = g.setdefault("_connectwise_admin_tenants", {})
        key = (self.model.__tablename__, self.tenant_action)
        if key not in cache:
            rows = self.db_session.query(self.model.tenant_id).distinct().all()
            cache[key] = sorted(t for (t,) in rows if self.may(t))
        return list(cache[key])

    def _scope(self, query: Query[RowT]) -> Query[RowT]:
        return query.filter(self.model.tenant_id.in_(self.allowed_tenants()))

    def get_query(self) -> Query[RowT]:
        return self._scope(super().get_query())

    def get_count_query(self) -> Query[RowT]:
        return self._scope(super().get_count_query())

    def get_one(self, id: str) -> RowT | None:
        try:
            pk = int(id)
        except (TypeError, ValueError):
            return None
        row: RowT | None = self.get_query().filter(self.model.id == pk).one_or_none()
        if row is not None and not self.may(row.tenant_id):
            return None
        return row

    def rows_for_ids(self, ids: Iterable[str]) -> list[RowT]:
        wanted = []
        for value in ids:
            try:
                wanted.append(int(value))
            except (TypeError, ValueError):
                continue
        if not wanted:
            return []
        rows: list[RowT] = self.get_query().filter(self.model.id.in_(wanted)).all()
        return [row for row in rows if self.may(row.tenant_id)]

    def render(self, template: str, **kwargs: Any) -> str:
        kwargs.setdefault("cw_post_form", PostForm)
        kwargs.setdefault("cw_test_connection_hint", f"Test connection {TEST_HINT}.")
        page: str = super().render(template, **kwargs)
        return page

    def get_export_value(self, model: RowT, name: str) -> object:
        """Every exported cell, neutralised against spreadsheet formula injection."""
        return csv_safe(super().get_export_value(model, name))

    def _back(self, form: PostForm | None = None) -> Response:
        target = None
        if form is not None and form.url.data:
            candidate = str(form.url.data)
            if candidate.startswith("/") and not candidate.startswith("//"):
                target = candidate
        return redirect(target or get_redirect_target() or self.get_url(".index_view"))

    def _row_from_post(self) -> tuple[RowT | None, PostForm]:
        """The posted row (``None`` when absent or not the user's) and the form."""
        form = PostForm(get_form_data())
        if request.method != "POST" or not form.validate():
            flash(
                "The request could not be checked (the page may have expired); reload the "
                "page and try again.",
                "error",
            )
            return None, form
        row = self.get_one(form.id.data or "")
        if row is None:
            flash("Record does not exist.", "error")
        return row, form

    def _rollback(self) -> None:
        try:
            self.db_session.rollback()
        except SQLAlchemyError:  # pragma: no cover
            log.exception("connectwise admin rollback failed")
