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
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from flask import Blueprint, Flask, current_app, flash, g, redirect, request
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.contrib.sqla import ModelView
from flask_admin.contrib.sqla.filters import FilterEqual
from flask_admin.form import SecureForm
from flask_admin.helpers import get_form_data, get_redirect_target
from flask_admin.model.template import BaseListRowAction
from markupsafe import Markup, escape
from sqlalchemy.exc import SQLAlchemyError
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    ValidationError,
)
from wtforms.csrf.core import CSRF
from wtforms.validators import InputRequired, Length, NumberRange, Optional
from wtforms.widgets import PasswordInput

from .crypto import CryptoError, DecryptionError, KeyConfigurationError, UnknownKeyError
from .errors import ConnectWiseError
from .models import ALL_TENANTS, CONFIRMED, FAILED, SENT, SKIPPED, utcnow
from .service import IntegrationOffError
from .settings import CredentialsInput, InputError, mask

log = logging.getLogger("flask_connectwise.admin")

__all__ = [
    "ChangeLogView",
    "ConnectWiseAdminForm",
    "CredentialsView",
    "FeatureFlagView",
    "csv_safe",
    "register_views",
]

DEFAULT_CATEGORY = "ConnectWise"
VIEW_KEYS = ("credentials", "flags", "changes")
DEFAULT_NAMES = {"credentials": "Credentials", "flags": "Feature flag", "changes": "Change log"}
TEMPLATES_BLUEPRINT = "connectwise_admin_templates"
STATUS_CACHE_SECONDS = 300
MAX_STATUS_BOARDS = 10
#: Test connection is allowed while the feature flag is off (README: "Feature flag"): it
#: only reads ConnectWise's version with the stored credentials, so an admin can check them
#: before turning the integration on.
TEST_HINT = "works even while the integration is off"

#: Serves ``templates/connectwise/admin/*`` (a host overrides them from its own templates).
templates_blueprint = Blueprint(TEMPLATES_BLUEPRINT, __name__, template_folder="templates")


def _register_templates(app: Flask) -> None:
    if TEMPLATES_BLUEPRINT not in app.blueprints:
        app.register_blueprint(templates_blueprint)


# -- plain words for errors --------------------------------------------------------------------


def crypto_message(exc: CryptoError) -> str:
    """What an admin should read when the stored secrets cannot be used."""
    if isinstance(exc, KeyConfigurationError):
        return (
            "The encryption keys are not configured (CONNECTWISE_ENCRYPTION_KEYS), so "
            "credentials cannot be stored or read. Ask your operator to set them."
        )
    if isinstance(exc, UnknownKeyError | DecryptionError):
        return (
            "The stored credentials cannot be read with the configured encryption keys. "
            "Enter the keys again, or restore the encryption key they were stored with."
        )
    return "The stored credentials cannot be read. Enter the keys again."


def error_message(exc: Exception) -> str:
    if isinstance(exc, CryptoError):
        return crypto_message(exc)
    if isinstance(exc, ConnectWiseError):
        return exc.message
    return "Something went wrong; the details are in the server log."


# -- CSRF: Flask-WTF's token when it is installed, else Flask-Admin's session token ----------


class _FlaskWTFCSRF(CSRF):
    """Flask-WTF tokens, so ``CSRFProtect`` on the host app accepts the admin's posts."""

    def generate_csrf_token(self, csrf_token_field: Any) -> str:
        from flask_wtf.csrf import generate_csrf

        return str(generate_csrf())

    def validate_csrf_token(self, form: Any, field: Any) -> None:
        from flask_wtf.csrf import ValidationError as CSRFError
        from flask_wtf.csrf import validate_csrf

        if g.get("csrf_valid", False):  # CSRFProtect checked this request already
            return
        try:
            validate_csrf(field.data)
        except CSRFError:
            raise ValidationError(
                "The form has expired or was not sent from this site; reload the page and "
                "try again."
            ) from None


def _have_flask_wtf() -> bool:
    try:
        import flask_wtf.csrf  # noqa: F401
    except ImportError:  # pragma: no cover - Flask-WTF is optional
        return False
    return True


def plain_text(text: Any) -> Any:
    """``text`` escaped for HTML, unless it is already :class:`~markupsafe.Markup`.

    Flask-Admin renders field descriptions with ``|safe``: every description of our forms goes
    through this, so text from ConnectWise or a user (a board status, an error) is never HTML.
    """
    if text is None or isinstance(text, Markup):
        return text
    return escape(str(text))


class ConnectWiseAdminForm(SecureForm):
    """Flask-Admin's ``SecureForm``, using Flask-WTF's CSRF token when Flask-WTF is installed
    (so a host running ``CSRFProtect`` accepts it) and honouring ``WTF_CSRF_ENABLED``.
    Field descriptions that are not :class:`~markupsafe.Markup` are escaped (see
    :func:`plain_text`)."""

    class Meta:
        @property
        def csrf(self) -> bool:
            return bool(current_app.config.get("WTF_CSRF_ENABLED", True))

        def build_csrf(self, form: Any) -> Any:
            if _have_flask_wtf():
                return _FlaskWTFCSRF()
            return super().build_csrf(form)  # type: ignore[misc]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self:
            field.description = plain_text(field.description)


class _PostForm(ConnectWiseAdminForm):
    """A one-button POST (test connection, toggle, retry) for one row."""

    id = HiddenField(validators=[InputRequired()])
    url = HiddenField()


class PostRowAction(BaseListRowAction):
    """A row action that POSTs the row id (with the CSRF token) to one of the view's routes."""

    def __init__(self, endpoint: str, title: str, icon_class: str, *, when: Any = None) -> None:
        super().__init__(title=title)
        self.endpoint = endpoint
        self.icon_class = icon_class
        self.when = when

    def render(self, context: Any, row_id: str, row: Any) -> Any:
        view = context.resolve("admin_view")
        if self.when is not None and not self.when(row):
            return Markup("")
        form = _PostForm()
        url = view.get_url(self.endpoint)
        token = form.csrf_token() if hasattr(form, "csrf_token") else ""
        return Markup(
            '<form class="icon" method="POST" action="{url}">'
            '<input type="hidden" name="id" value="{id}"><input type="hidden" name="url" '
            'value="{back}">{token}<button type="submit" title="{title}" '
            'class="btn btn-link p-0 cw-row-action"><span class="{icon}"></span>'
            '<span class="sr-only">{title}</span></button></form>'
        ).format(
            url=url,
            id=row_id,
            back=request.full_path if request else "",
            token=token,
            title=self.title or "",
            icon=self.icon_class,
        )


# -- exports: no cell a spreadsheet runs as a formula -------------------------------------------

#: What makes a spreadsheet read a cell as a formula (OWASP "CSV injection"), fullwidth forms too.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def csv_safe(value: Any) -> Any:
    """``value`` for a CSV/spreadsheet cell: text that a spreadsheet would run as a formula
    (starting with ``= + - @``, a tab or a line break, after any leading spaces) gets a ``'``
    in front, so it is shown as text. Other values are returned unchanged."""
    if not isinstance(value, str):
        return value
    text = str(value)  # Markup too: the cell is plain text
    if text.lstrip(" ").startswith(_FORMULA_STARTS):
        return "'" + text
    return text


# -- shared behaviour: tenant filtering, the service, the actor -----------------------------


class _TenantScopedView(ModelView):
    """A model view showing only the rows of tenants the host lets this user ``action``."""

    tenant_action = "configure"
    form_base_class = ConnectWiseAdminForm
    can_set_page_size = True
    page_size = 20
    column_editable_list: ClassVar[Any] = []  # never inline editing

    def __init__(self, model: Any, session: Any, *args: Any, extension: Any, **kwargs: Any):
        self.extension = extension
        super().__init__(model, session, *args, **kwargs)

    # Flask-Admin builds one blueprint per view; ours also makes the package templates findable.
    def create_blueprint(self, admin: Any) -> Any:
        blueprint = super().create_blueprint(admin)
        blueprint.record_once(lambda setup: _register_templates(setup.app))
        return blueprint

    @property
    def service(self) -> Any:
        return self.extension.service

    @property
    def db_session(self) -> Any:
        """The host's SQLAlchemy session (the view may be given ``db`` or ``db.session``)."""
        return self.service.session

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

    def may(self, tenant_id: str, action_name: str | None = None) -> bool:
        return bool(self.extension.is_authorized(tenant_id, action_name or self.tenant_action))

    def allowed_tenants(self) -> list[str]:
        """The tenants with rows in this table that the user may see (once per request)."""
        cache = g.setdefault("_connectwise_admin_tenants", {})
        key = (self.model.__tablename__, self.tenant_action)
        if key not in cache:
            rows = self.db_session.query(self.model.tenant_id).distinct().all()
            cache[key] = sorted(t for (t,) in rows if self.may(t))
        return list(cache[key])

    def _scope(self, query: Any) -> Any:
        return query.filter(self.model.tenant_id.in_(self.allowed_tenants()))

    def get_query(self) -> Any:
        return self._scope(super().get_query())

    def get_count_query(self) -> Any:
        return self._scope(super().get_count_query())

    def get_one(self, id: Any) -> Any:
        try:
            pk = int(id)
        except (TypeError, ValueError):
            return None
        row = self.get_query().filter(self.model.id == pk).one_or_none()
        if row is not None and not self.may(row.tenant_id):
            return None
        return row

    def rows_for_ids(self, ids: Iterable[Any]) -> list[Any]:
        wanted = []
        for value in ids:
            try:
                wanted.append(int(value))
            except (TypeError, ValueError):
                continue
        if not wanted:
            return []
        rows = self.get_query().filter(self.model.id.in_(wanted)).all()
        return [row for row in rows if self.may(row.tenant_id)]

    def render(self, template: str, **kwargs: Any) -> Any:
        kwargs.setdefault("cw_post_form", _PostForm)
        kwargs.setdefault("cw_test_connection_hint", f"Test connection {TEST_HINT}.")
        return super().render(template, **kwargs)

    def get_export_value(self, model: Any, name: Any) -> Any:
        """Every exported cell, neutralised against spreadsheet formula injection."""
        return csv_safe(super().get_export_value(model, name))

    def _back(self, form: Any = None) -> Any:
        target = None
        if form is not None and getattr(form, "url", None) is not None and form.url.data:
            candidate = str(form.url.data)
            if candidate.startswith("/") and not candidate.startswith("//"):
                target = candidate
        return redirect(target or get_redirect_target() or self.get_url(".index_view"))

    def _row_from_post(self) -> tuple[Any, Any]:
        """The posted row (``None`` when absent or not the user's) and the form."""
        form = _PostForm(get_form_data())
        if request.method != "POST" or not form.validate():
            flash(
                "The request could not be checked (the page may have expired); reload the "
                "page and try again.",
                "error",
            )
            return None, form
        row = self.get_one(form.id.data)
        if row is None:
            flash("Record does not exist.", "error")
        return row, form

    def _rollback(self) -> None:
        try:
            self.db_session.rollback()
        except SQLAlchemyError:  # pragma: no cover
            log.exception("connectwise admin rollback failed")


def _tenant_field_error(field: Any, message: str) -> None:
    field.errors = [*list(field.errors or []), message]


# -- credentials ---------------------------------------------------------------------------------

_WRITE_ONLY_HELP = (
    "Write-only: the stored value is never shown. Leave blank to keep it; required when "
    "first storing credentials."
)


def _optional_int(value: Any) -> int | None:
    if value in (None, "", "None"):
        return None
    return int(value)


class CredentialsForm(ConnectWiseAdminForm):
    tenant_id = StringField(
        "Tenant",
        validators=[InputRequired(), Length(max=64)],
        description="The tenant these credentials belong to; cannot be changed later.",
    )
    base_url = StringField(
        "Base URL",
        validators=[InputRequired(), Length(max=255)],
        description="The ConnectWise API host, e.g. https://api-na.myconnectwise.net (no path).",
    )
    company_id = StringField(
        "Company id",
        validators=[InputRequired(), Length(max=64)],
        description="The company id you sign in to ConnectWise with.",
    )
    public_key = PasswordField(
        "Public key",
        widget=PasswordInput(hide_value=True),
        validators=[Optional(), Length(max=128)],
        description=_WRITE_ONLY_HELP,
        render_kw={"autocomplete": "new-password"},
    )
    private_key = PasswordField(
        "Private key",
        widget=PasswordInput(hide_value=True),
        validators=[Optional(), Length(max=128)],
        description=_WRITE_ONLY_HELP,
        render_kw={"autocomplete": "new-password"},
    )
    client_id = PasswordField(
        "Client id",
        widget=PasswordInput(hide_value=True),
        validators=[Optional(), Length(max=128)],
        description="Your integration's clientId from developer.connectwise.com. "
        + _WRITE_ONLY_HELP,
        render_kw={"autocomplete": "new-password"},
    )
    default_time_minutes = IntegerField(
        "Default time (minutes)",
        validators=[Optional(), NumberRange(min=1, max=1440)],
        default=15,
        description="Time entered on the ticket when the operator gives none.",
    )
    auto_update_status = BooleanField(
        "Update the ticket status automatically",
        description="Set the default status below on every logged change.",
    )
    default_status_id = SelectField(
        "Default status",
        coerce=_optional_int,
        choices=[],
        validate_choice=False,
        description="Statuses of the tenant's service boards (loaded once the keys work).",
    )


#: CredentialsInput's (camelCase) field names -> form fields.
_INPUT_FIELDS = {
    "baseUrl": "base_url",
    "companyId": "company_id",
    "publicKey": "public_key",
    "privateKey": "private_key",
    "clientId": "client_id",
    "defaultTimeMinutes": "default_time_minutes",
    "autoUpdateStatus": "auto_update_status",
    "defaultStatusId": "default_status_id",
}


def _configured(view: Any, context: Any, model: Any, name: str) -> Any:
    ok = bool(model.public_key and model.private_key and model.client_id)
    return "yes" if ok else "no"


def _masked(view: Any, context: Any, model: Any, name: str) -> str:
    return mask(getattr(model, name, None))


def _short_error(view: Any, context: Any, model: Any, name: str) -> str:
    value = getattr(model, name, None) or ""
    return value if len(value) <= 120 else value[:117] + "…"


class CredentialsView(_TenantScopedView):
    """Per-tenant ConnectWise credentials; secrets are write-only."""

    tenant_action = "configure"
    form = CredentialsForm
    list_template = "connectwise/admin/credentials_list.html"
    create_template = "connectwise/admin/credentials_create.html"
    edit_template = "connectwise/admin/credentials_edit.html"
    details_template = "connectwise/admin/credentials_details.html"

    can_view_details = True
    can_export = True
    export_types: ClassVar[Any] = ["csv"]

    column_list: ClassVar[Any] = [
        "tenant_id",
        "base_url",
        "company_id",
        "public_key_hint",
        "client_id_hint",
        "configured",
        "last_verified_at",
        "last_error",
    ]
    column_details_list: ClassVar[Any] = [
        "tenant_id",
        "base_url",
        "company_id",
        "public_key_hint",
        "client_id_hint",
        "configured",
        "default_time_minutes",
        "auto_update_status",
        "default_status_id",
        "revision",
        "created_at",
        "updated_at",
        "updated_by",
        "last_verified_at",
        "last_error",
    ]
    column_export_list = column_details_list
    column_labels: ClassVar[Any] = {
        "tenant_id": "Tenant",
        "base_url": "Base URL",
        "company_id": "Company",
        "public_key_hint": "Public key",
        "client_id_hint": "Client id",
        "configured": "Configured",
        "last_verified_at": "Last verified",
        "last_error": "Last error",
        "default_time_minutes": "Default time (minutes)",
        "auto_update_status": "Auto-update status",
        "default_status_id": "Default status id",
        "updated_by": "Updated by",
    }
    column_formatters: ClassVar[Any] = {
        "public_key_hint": _masked,
        "client_id_hint": _masked,
        "configured": _configured,
        "last_error": _short_error,
    }
    column_formatters_detail: ClassVar[Any] = {
        "public_key_hint": _masked,
        "client_id_hint": _masked,
        "configured": _configured,
    }
    column_formatters_export: ClassVar[Any] = {
        "public_key_hint": lambda view, context, model, name: _masked(view, context, model, name),
        "client_id_hint": lambda view, context, model, name: _masked(view, context, model, name),
        "configured": lambda view, context, model, name: _configured(view, context, model, name),
    }
    column_sortable_list: ClassVar[Any] = [
        "tenant_id",
        "base_url",
        "company_id",
        "last_verified_at",
    ]
    column_searchable_list: ClassVar[Any] = ["tenant_id", "base_url", "company_id"]
    column_filters: ClassVar[Any] = ["tenant_id", "base_url", "company_id", "last_verified_at"]
    column_default_sort = "tenant_id"
    column_extra_row_actions: ClassVar[Any] = [
        PostRowAction(".test_connection_view", f"Test connection ({TEST_HINT})", "fa fa-plug"),
    ]

    # -- forms -----------------------------------------------------------------------------

    def create_form(self, obj: Any = None) -> Any:
        form = self._create_form_class(
            get_form_data(), data={"tenant_id": self.extension.tenant() or ""}
        )
        form._cw_row = None
        self._status_choices(form, None)
        return form

    def edit_form(self, obj: Any = None) -> Any:
        # Never pass the row itself: WTForms would copy the ciphertext into the secret fields.
        data = {
            "tenant_id": obj.tenant_id,
            "base_url": obj.base_url,
            "company_id": obj.company_id,
            "default_time_minutes": obj.default_time_minutes,
            "auto_update_status": obj.auto_update_status,
            "default_status_id": obj.default_status_id,
        }
        form = self._edit_form_class(get_form_data(), data=data)
        form._cw_row = obj
        form.tenant_id.data = obj.tenant_id  # the tenant is fixed: ciphertext is bound to it
        form.tenant_id.render_kw = {"readonly": True}
        self._status_choices(form, obj)
        return form

    def _status_choices(self, form: Any, row: Any) -> None:
        field = form.default_status_id
        current = field.data
        choices: list[tuple[Any, str]] = [("", "— none —")]
        loaded: list[tuple[int, str]] = []
        if row is not None:
            try:
                loaded = self.load_statuses(row)
            except (ConnectWiseError, CryptoError) as exc:
                # ConnectWise's words: escaped, as Flask-Admin renders descriptions with |safe.
                field.description = plain_text(
                    f"The board statuses could not be loaded ({error_message(exc)}); the "
                    "current value is kept."
                )
            except Exception:
                log.exception("connectwise admin: loading board statuses failed")
                field.description = plain_text(
                    "The board statuses could not be loaded; the current value is kept."
                )
        else:
            field.description = plain_text(
                "Save working credentials first; then pick a status here."
            )
        choices.extend(loaded)
        if current and current not in {value for value, _ in loaded}:
            choices.append((current, f"Status #{current}"))
        field.choices = choices

    def load_statuses(self, row: Any) -> list[tuple[int, str]]:
        """``(status id, "Board — Status")`` of the tenant's active boards (cached 5 min)."""
        service = self.service
        key = f"connectwise:admin:statuses:{row.tenant_id}:{row.revision}"
        try:
            cached = service.cache.get(key)
        except Exception:
            cached = None
        if isinstance(cached, list):
            return [(int(i), str(label)) for i, label in cached]
        client = service.client_for(row.tenant_id)
        boards = _boards(client)
        result: list[tuple[int, str]] = []
        for board_id, board_name in boards[:MAX_STATUS_BOARDS]:
            for status in client.board_statuses(board_id):
                if status.inactive:
                    continue
                result.append((status.id, f"{board_name} — {status.name}"))
        try:
            service.cache.set(key, result, timeout=STATUS_CACHE_SECONDS)
        except Exception:
            log.debug("connectwise admin: could not cache board statuses")
        return result

    def validate_form(self, form: Any) -> bool:
        if isinstance(form, CredentialsForm):
            valid = super().validate_form(form)
            if request.method != "POST":
                return False
            return self._check_credentials(form) and valid
        return bool(super().validate_form(form))

    def _tenant_of(self, form: Any) -> str:
        row = getattr(form, "_cw_row", None)
        if row is not None:
            return str(row.tenant_id)
        return (form.tenant_id.data or "").strip()

    def _payload(self, form: Any) -> dict[str, Any]:
        return {
            "baseUrl": form.base_url.data or "",
            "companyId": form.company_id.data or "",
            "publicKey": form.public_key.data or None,
            "privateKey": form.private_key.data or None,
            "clientId": form.client_id.data or None,
            "defaultTimeMinutes": form.default_time_minutes.data,
            "autoUpdateStatus": bool(form.auto_update_status.data),
            "defaultStatusId": form.default_status_id.data,
        }

    def _input_error(self, form: Any, exc: InputError) -> None:
        name = _INPUT_FIELDS.get(exc.field)
        field = form[name] if name else None
        message = exc.message
        if field is None:
            flash(message, "error")
            return
        message = message.replace(exc.field, str(field.label.text))
        _tenant_field_error(field, message)

    def _check_credentials(self, form: Any) -> bool:
        ok = True
        creating = getattr(form, "_cw_row", None) is None
        tenant = self._tenant_of(form)
        if creating:
            if not tenant:
                return False
            if tenant == ALL_TENANTS:
                _tenant_field_error(form.tenant_id, "Credentials belong to one tenant, not '*'.")
                return False
            if not self.may(tenant):
                _tenant_field_error(
                    form.tenant_id, "You may not configure ConnectWise for this tenant."
                )
                return False
            if self.service.credentials_row(tenant) is not None:
                _tenant_field_error(
                    form.tenant_id, "This tenant already has credentials; edit them instead."
                )
                return False
            for name in ("public_key", "private_key", "client_id"):
                if not (form[name].data or "").strip():
                    _tenant_field_error(form[name], "Required when first storing credentials.")
                    ok = False
        elif not self.may(tenant):
            return False
        try:
            CredentialsInput.parse(self._payload(form), self.service.policy)
        except InputError as exc:
            self._input_error(form, exc)
            return False
        return ok

    def _save(self, form: Any) -> Any:
        tenant = self._tenant_of(form)
        if not self.may(tenant):
            flash("You may not configure ConnectWise for this tenant.", "error")
            return None
        try:
            return self.service.save_credentials(tenant, self._payload(form), actor=self.actor())
        except InputError as exc:
            self._rollback()
            self._input_error(form, exc)
        except CryptoError as exc:
            self._rollback()
            flash(crypto_message(exc), "error")
        except SQLAlchemyError:
            self._rollback()
            log.exception("connectwise admin: saving credentials failed")
            flash("The credentials could not be saved; try again.", "error")
        return None

    def create_model(self, form: Any) -> Any:
        row = self._save(form)
        return row if row is not None else False

    def update_model(self, form: Any, model: Any) -> bool:
        return self._save(form) is not None

    def delete_model(self, model: Any) -> bool:
        if not self.may(model.tenant_id):
            flash("Record does not exist.", "error")
            return False
        tenant = model.tenant_id
        ok = bool(super().delete_model(model))
        if ok:
            self.service.forget_client(tenant)
        return ok

    # -- test connection -------------------------------------------------------------------

    def test_connection(self, row: Any) -> bool:
        """Call ``system/info`` with the row's credentials; flash and record the outcome.

        Allowed while the tenant's feature flag is off (an admin checks the credentials before
        turning it on); the message then says that the integration itself is still off.
        """
        tenant = row.tenant_id
        try:
            off = not self.service.flag_on(tenant)
        except Exception:
            log.exception("connectwise admin: the flag check before a connection test failed")
            off = True
        note = (
            f" The integration is off for tenant {tenant}: nothing else is sent to ConnectWise "
            "until it is turned on (ConnectWise → Feature flag)."
            if off
            else ""
        )
        try:
            info = self.service.client_for(tenant).system_info()
        except (ConnectWiseError, CryptoError) as exc:
            message = error_message(exc)
            self._record(row, error=message)
            flash(f"Tenant {tenant}: the connection failed. {message}{note}", "error")
            return False
        except Exception:
            log.exception("connectwise admin: test connection failed unexpectedly")
            message = "The connection failed unexpectedly; the details are in the server log."
            self._record(row, error=message)
            flash(f"Tenant {tenant}: {message}{note}", "error")
            return False
        self._record(row, error=None)
        version = info.version or "unknown"
        flash(f"Tenant {tenant}: connected to ConnectWise {version}.{note}", "success")
        return True

    def _record(self, row: Any, *, error: str | None) -> None:
        try:
            if error is None:
                row.last_verified_at = utcnow()
                row.last_error = None
            else:
                row.last_error = error[:500]
            self.db_session.commit()
        except SQLAlchemyError:
            self._rollback()
            log.exception("connectwise admin: could not record the connection test")

    @expose("/test/", methods=("POST",))
    def test_connection_view(self) -> Any:
        row, form = self._row_from_post()
        if row is not None:
            self.test_connection(row)
        return self._back(form)

    @action("test_connection", f"Test connection ({TEST_HINT})")
    def action_test_connection(self, ids: Iterable[Any]) -> None:
        rows = self.rows_for_ids(ids)
        if not rows:
            flash("No record you may configure was selected.", "error")
        for row in rows:
            self.test_connection(row)

    def is_action_allowed(self, name: str) -> bool:
        return bool(super().is_action_allowed(name))


def _boards(client: Any) -> list[tuple[int, str]]:
    """The tenant's active service boards, ``(id, name)``."""
    return [(board.id, board.name or f"Board {board.id}") for board in client.boards()]


# -- feature flag -------------------------------------------------------------------------------


class FlagForm(ConnectWiseAdminForm):
    tenant_id = StringField(
        "Tenant",
        validators=[InputRequired(), Length(max=64)],
        description="A tenant id, or * for every tenant without a row of its own.",
    )
    enabled = BooleanField(
        "ConnectWise integration on",
        description="Off hides and disables the integration for the tenant; nothing is deleted.",
    )


def _on_off(view: Any, context: Any, model: Any, name: str) -> str:
    return "on" if model.enabled else "off"


def _flag_tenant(view: Any, context: Any, model: Any, name: str) -> str:
    return "* (all tenants)" if model.tenant_id == ALL_TENANTS else model.tenant_id


class FeatureFlagView(_TenantScopedView):
    """``connectwise_integration`` on or off, per tenant or for all (``*``)."""

    tenant_action = "configure"
    form = FlagForm
    list_template = "connectwise/admin/flag_list.html"
    create_template = "connectwise/admin/flag_create.html"
    edit_template = "connectwise/admin/flag_edit.html"
    can_delete = False  # turning the feature off deletes nothing; neither does this view
    can_view_details = False
    can_export = False
    column_list: ClassVar[Any] = ["tenant_id", "enabled", "updated_by", "updated_at"]
    column_labels: ClassVar[Any] = {
        "tenant_id": "Tenant",
        "enabled": "Integration",
        "updated_by": "Changed by",
        "updated_at": "Changed at",
    }
    column_formatters: ClassVar[Any] = {"enabled": _on_off, "tenant_id": _flag_tenant}
    column_sortable_list: ClassVar[Any] = ["tenant_id", "enabled", "updated_at"]
    column_searchable_list: ClassVar[Any] = ["tenant_id"]
    column_filters: ClassVar[Any] = ["tenant_id", "enabled"]
    column_default_sort = "tenant_id"
    column_extra_row_actions: ClassVar[Any] = [
        PostRowAction(".toggle_view", "Turn on or off", "fa fa-power-off"),
    ]

    def create_form(self, obj: Any = None) -> Any:
        form = self._create_form_class(
            get_form_data(), data={"tenant_id": self.extension.tenant() or "", "enabled": True}
        )
        form._cw_row = None
        return form

    def edit_form(self, obj: Any = None) -> Any:
        form = self._edit_form_class(
            get_form_data(), data={"tenant_id": obj.tenant_id, "enabled": obj.enabled}
        )
        form._cw_row = obj
        form.tenant_id.data = obj.tenant_id
        form.tenant_id.render_kw = {"readonly": True}
        return form

    def validate_form(self, form: Any) -> bool:
        valid = bool(super().validate_form(form))
        if not isinstance(form, FlagForm) or not valid:
            return valid
        row = getattr(form, "_cw_row", None)
        tenant = row.tenant_id if row is not None else (form.tenant_id.data or "").strip()
        if not tenant or not self.may(tenant):
            _tenant_field_error(
                form.tenant_id, "You may not configure ConnectWise for this tenant."
            )
            return False
        return True

    def _set(self, tenant: str, enabled: bool) -> Any:
        if not self.may(tenant):
            flash("You may not configure ConnectWise for this tenant.", "error")
            return None
        try:
            row = self.service.set_flag(tenant, enabled, actor=self.actor())
        except SQLAlchemyError:
            self._rollback()
            log.exception("connectwise admin: saving the feature flag failed")
            flash("The feature flag could not be saved; try again.", "error")
            return None
        return row

    def create_model(self, form: Any) -> Any:
        row = self._set((form.tenant_id.data or "").strip(), bool(form.enabled.data))
        return row if row is not None else False

    def update_model(self, form: Any, model: Any) -> bool:
        return self._set(model.tenant_id, bool(form.enabled.data)) is not None

    def _flash_flag(self, row: Any) -> None:
        who = (
            "every tenant without its own setting"
            if row.tenant_id == ALL_TENANTS
            else row.tenant_id
        )
        state = "on" if row.enabled else "off"
        flash(f"The ConnectWise integration is now {state} for {who}.", "success")

    @expose("/toggle/", methods=("POST",))
    def toggle_view(self) -> Any:
        row, form = self._row_from_post()
        if row is not None:
            changed = self._set(row.tenant_id, not row.enabled)
            if changed is not None:
                self._flash_flag(changed)
        return self._back(form)

    def _bulk(self, ids: Iterable[Any], enabled: bool) -> None:
        rows = self.rows_for_ids(ids)
        if not rows:
            flash("No record you may configure was selected.", "error")
        for row in rows:
            changed = self._set(row.tenant_id, enabled)
            if changed is not None:
                self._flash_flag(changed)

    @action("turn_on", "Turn on")
    def action_turn_on(self, ids: Iterable[Any]) -> None:
        self._bulk(ids, True)

    @action("turn_off", "Turn off")
    def action_turn_off(self, ids: Iterable[Any]) -> None:
        self._bulk(ids, False)


# -- change log --------------------------------------------------------------------------------

_STEP_LABELS = (("note", "Note"), ("time", "Time entry"), ("status", "Status"))


def _step_remote(model: Any, step: str) -> Any:
    if step == "status":
        return model.status_id
    return getattr(model, f"{step}_remote_id", None)


def _steps(view: Any, context: Any, model: Any, name: str) -> Any:
    parts = []
    for step, label in _STEP_LABELS:
        state = model.step_state(step)
        text = f"{label}: {state}"
        remote = _step_remote(model, step)
        if remote and state == CONFIRMED:
            text += f" #{remote}"
        attempts = getattr(model, f"{step}_attempts", 0) or 0
        if attempts:
            text += f" ({attempts} {'try' if attempts == 1 else 'tries'})"
        error = getattr(model, f"{step}_error", None)
        badge = {
            CONFIRMED: "success",
            SKIPPED: "secondary",
            FAILED: "danger",
            SENT: "warning",
        }.get(state, "info")
        item = Markup('<span class="badge badge-{}">{}</span>').format(badge, text)
        if error:
            item += Markup(' <small class="text-danger">{}</small>').format(error[:300])
        parts.append(item)
    return Markup("<br>").join(parts)


def _steps_export(view: Any, context: Any, model: Any, name: str) -> str:
    """The steps as plain text, for exports (a cell holds no HTML)."""
    parts = []
    for step, label in _STEP_LABELS:
        state, remote = model.step_state(step), _step_remote(model, step)
        parts.append(f"{label}: {state}" + (f" #{remote}" if remote and state == CONFIRMED else ""))
    return "; ".join(parts)


def _errors_text(model: Any) -> str:
    errors = []
    for step, label in _STEP_LABELS:
        error = getattr(model, f"{step}_error", None)
        if error:
            errors.append(f"{label}: {error}")
    return "; ".join(errors)


def _errors(view: Any, context: Any, model: Any, name: str) -> str:
    return _errors_text(model)


def _retryable(row: Any) -> bool:
    return row.state != "delivered"


class ChangeLogView(_TenantScopedView):
    """The change log (the outbox): read-only, with a Retry action for undelivered changes."""

    tenant_action = "use"
    list_template = "connectwise/admin/change_log_list.html"
    details_template = "connectwise/admin/change_log_details.html"
    can_create = False
    can_edit = False
    can_delete = False
    can_view_details = True
    can_export = False
    column_list: ClassVar[Any] = [
        "reference",
        "tenant_id",
        "ticket_id",
        "operator",
        "member",
        "created_at",
        "state",
        "steps",
    ]
    column_details_list: ClassVar[Any] = [
        "reference",
        "tenant_id",
        "ticket_id",
        "operator",
        "member",
        "hours",
        "status_id",
        "internal",
        "note_text",
        "created_at",
        "updated_at",
        "state",
        "steps",
        "errors",
    ]
    column_labels: ClassVar[Any] = {
        "reference": "Change",
        "tenant_id": "Tenant",
        "ticket_id": "Ticket",
        "operator": "Operator",
        "member": "Member",
        "created_at": "Time",
        "state": "State",
        "steps": "Steps",
        "errors": "Errors",
        "note_text": "Note",
        "status_id": "Status id",
    }
    column_formatters: ClassVar[Any] = {"steps": _steps, "errors": _errors}
    column_formatters_detail: ClassVar[Any] = {"steps": _steps, "errors": _errors}
    column_formatters_export: ClassVar[Any] = {"steps": _steps_export, "errors": _errors}
    column_sortable_list: ClassVar[Any] = [
        "reference",
        "tenant_id",
        "ticket_id",
        "created_at",
        "state",
    ]
    column_searchable_list: ClassVar[Any] = ["reference", "operator", "member"]
    column_default_sort = ("created_at", True)
    column_extra_row_actions: ClassVar[Any] = [
        PostRowAction(".retry_view", "Retry the steps not done", "fa fa-refresh", when=_retryable),
    ]

    def __init__(self, model: Any, session: Any, *args: Any, extension: Any, **kwargs: Any):
        self.column_filters = [
            FilterEqual(model.tenant_id, "Tenant"),
            FilterEqual(
                model.state,
                "State",
                options=[
                    ("pending", "pending"),
                    ("retrying", "retrying"),
                    ("delivered", "delivered"),
                    ("failed", "failed"),
                ],
            ),
            FilterEqual(model.ticket_id, "Ticket"),
        ]
        super().__init__(model, session, *args, extension=extension, **kwargs)

    def retry(self, row: Any) -> None:
        """Deliver the change's outstanding steps now and say what happened."""
        label = f"Change {row.reference} (ticket {row.ticket_id})"
        if not _retryable(row):
            flash(f"{label} was already delivered; nothing to retry.", "info")
            return
        try:
            outcome = self.service.deliver(row)
        except IntegrationOffError:
            self._rollback()
            flash(
                f"{label} was not retried: the ConnectWise integration is off for tenant "
                f"{row.tenant_id}, so nothing was sent. The change stays queued and is "
                "delivered once the integration is turned on (ConnectWise → Feature flag).",
                "warning",
            )
            return
        except (ConnectWiseError, CryptoError) as exc:
            self._rollback()
            flash(f"{label} could not be retried: {error_message(exc)}", "error")
            return
        except Exception:
            self._rollback()
            log.exception("connectwise admin: retry failed unexpectedly")
            flash(f"{label} could not be retried; the details are in the server log.", "error")
            return
        if outcome.get("state") == "delivered":
            flash(f"{label}: delivered; every step is done now.", "success")
            return
        names = {"note": "the note", "timeEntry": "the time entry", "status": "the status"}
        done, failing = [], []
        for key, words in names.items():
            step = outcome.get(key) or {}
            if step.get("skipped"):
                continue
            if step.get("ok"):
                done.append(words)
            else:
                reason = step.get("error") or step.get("state") or "not done"
                failing.append(f"{words} ({reason})")
        message = f"{label} is still not complete."
        if outcome.get("state") == "failed":
            message = (
                f"{label} needs attention: ConnectWise refused it, and sending it again will "
                "not help until the cause is fixed."
            )
        if done:
            message += " Done: " + ", ".join(done) + "."
        if failing:
            message += " Still failing: " + "; ".join(failing) + "."
        flash(message, "error")

    @expose("/retry/", methods=("POST",))
    def retry_view(self) -> Any:
        row, form = self._row_from_post()
        if row is not None:
            self.retry(row)
        return self._back(form)

    @action("retry", "Retry the steps not done")
    def action_retry(self, ids: Iterable[Any]) -> None:
        rows = self.rows_for_ids(ids)
        if not rows:
            flash("No change you may retry was selected.", "error")
        for row in rows:
            self.retry(row)


# -- registration ------------------------------------------------------------------------------


def _config_of(admin: Any, app: Flask | None) -> Mapping[str, Any]:
    app = app or getattr(admin, "app", None)
    return app.config if app is not None else {}


def register_views(
    admin: Any,
    extension: Any,
    models: Any,
    db: Any,
    *,
    app: Flask | None = None,
    category: str | None = None,
    enabled: bool | Iterable[str] | None = None,
    names: Mapping[str, str] | None = None,
) -> list[Any]:
    """Add the credentials, feature-flag and change-log views to ``admin``.

    ``enabled`` (default: app config ``CONNECTWISE_ADMIN_VIEWS``, else ``True``): ``False`` adds
    nothing; an iterable of ``"credentials"``, ``"flags"``, ``"changes"`` adds only those.
    ``category`` (default: ``CONNECTWISE_ADMIN_CATEGORY``, else ``"ConnectWise"``) names the
    menu category; ``names`` renames views, e.g. ``{"changes": "Ticket log"}``. The config is
    read from ``app`` or ``admin.app``; keyword arguments win. Returns the views added.
    """
    config = _config_of(admin, app)
    if enabled is None:
        enabled = config.get("CONNECTWISE_ADMIN_VIEWS", True)
    if category is None:
        category = config.get("CONNECTWISE_ADMIN_CATEGORY", DEFAULT_CATEGORY)
    if enabled is False or enabled is None:
        return []
    wanted = set(VIEW_KEYS) if enabled is True else {str(v) for v in enabled}  # type: ignore[union-attr]
    unknown = wanted - set(VIEW_KEYS)
    if unknown:
        raise ValueError(
            f"CONNECTWISE_ADMIN_VIEWS: unknown view(s) {sorted(unknown)}; use True, False or "
            f"some of {list(VIEW_KEYS)}"
        )
    labels = DEFAULT_NAMES | dict(names or {})
    target_app = app or getattr(admin, "app", None)
    if target_app is not None:
        _register_templates(target_app)
    specs = (
        ("credentials", CredentialsView, models.Credentials, "connectwise_credentials"),
        ("flags", FeatureFlagView, models.FeatureFlag, "connectwise_flags"),
        ("changes", ChangeLogView, models.ChangeLog, "connectwise_change_log"),
    )
    added = []
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
