"""Per-tenant ConnectWise credentials: the form, the view, Test connection."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from flask import flash, request
from flask_admin.helpers import get_form_data
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response
from wtforms import BooleanField, IntegerField, PasswordField, SelectField, StringField
from wtforms.validators import InputRequired, Length, NumberRange, Optional
from wtforms.widgets import PasswordInput

from ..client import ConnectWiseClient
from ..credentials import CredentialsInput, mask
from ..crypto import CryptoError
from ..errors import ConnectWiseError
from ..models import CredentialsRow, utcnow
from ..validation import InputError, check_tenant_id
from .base import (
    TEST_HINT,
    Formatter,
    TenantScopedView,
    add_field_error,
    list_action,
    log,
    post_route,
)
from .forms import ConnectWiseAdminForm
from .text import crypto_message, error_message, plain_text
from .widgets import PostRowAction

__all__ = ["CredentialsForm", "CredentialsView"]

STATUS_CACHE_SECONDS = 300
MAX_STATUS_BOARDS = 10

_WRITE_ONLY_HELP = (
    "Write-only: the stored value is never shown. Leave blank to keep it; required when "
    "first storing credentials."
)


def _optional_int(value: str | int | None) -> int | None:
    if value is None or value in ("", "None"):
        return None
    return int(value)


class CredentialsForm(ConnectWiseAdminForm):
    """The credentials of one tenant; the secret fields never show a stored value."""

    #: The row being edited (``None`` when creating), set by :class:`CredentialsView`.
    _cw_row: CredentialsRow | None = None

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


def _configured(view: object, context: object, model: CredentialsRow, name: str) -> str:
    ok = bool(model.public_key and model.private_key and model.client_id)
    return "yes" if ok else "no"


def _masked(view: object, context: object, model: CredentialsRow, name: str) -> str:
    return mask(getattr(model, name, None))


def _short_error(view: object, context: object, model: CredentialsRow, name: str) -> str:
    value: str = getattr(model, name, None) or ""
    return value if len(value) <= 120 else value[:117] + "…"


def _boards(client: ConnectWiseClient) -> list[tuple[int, str]]:
    """The tenant's active service boards, ``(id, name)``."""
    return [(board.id, board.name or f"Board {board.id}") for board in client.boards()]


class CredentialsView(TenantScopedView[CredentialsRow]):
    """Per-tenant ConnectWise credentials; secrets are write-only."""

    tenant_action = "configure"
    form = CredentialsForm
    list_template = "connectwise/admin/credentials_list.html"
    create_template = "connectwise/admin/credentials_create.html"
    edit_template = "connectwise/admin/credentials_edit.html"
    details_template = "connectwise/admin/credentials_details.html"

    can_view_details = True
    can_export = True
    export_types: ClassVar[list[str]] = ["csv"]

    column_list: ClassVar[list[str]] = [
        "tenant_id",
        "base_url",
        "company_id",
        "public_key_hint",
        "client_id_hint",
        "configured",
        "last_verified_at",
        "last_error",
    ]
    column_details_list: ClassVar[list[str]] = [
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
    column_labels: ClassVar[dict[str, str]] = {
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
    column_formatters: ClassVar[dict[str, Formatter[CredentialsRow]]] = {
        "public_key_hint": _masked,
        "client_id_hint": _masked,
        "configured": _configured,
        "last_error": _short_error,
    }
    column_formatters_detail: ClassVar[dict[str, Formatter[CredentialsRow]]] = {
        "public_key_hint": _masked,
        "client_id_hint": _masked,
        "configured": _configured,
    }
    column_formatters_export: ClassVar[dict[str, Formatter[CredentialsRow]]] = {
        "public_key_hint": lambda view, context, model, name: _masked(view, context, model, name),
        "client_id_hint": lambda view, context, model, name: _masked(view, context, model, name),
        "configured": lambda view, context, model, name: _configured(view, context, model, name),
    }
    column_sortable_list: ClassVar[list[str]] = [
        "tenant_id",
        "base_url",
        "company_id",
        "last_verified_at",
    ]
    column_searchable_list: ClassVar[list[str]] = ["tenant_id", "base_url", "company_id"]
    column_filters: ClassVar[list[str]] = [
        "tenant_id",
        "base_url",
        "company_id",
        "last_verified_at",
    ]
    column_default_sort = "tenant_id"
    column_extra_row_actions: ClassVar[list[PostRowAction]] = [
        PostRowAction(".test_connection_view", f"Test connection ({TEST_HINT})", "fa fa-plug"),
    ]

    # -- forms -----------------------------------------------------------------------------

    def create_form(self, obj: CredentialsRow | None = None) -> CredentialsForm:
        form: CredentialsForm = self._create_form_class(
            get_form_data(), data={"tenant_id": self.extension.tenant() or ""}
        )
        form._cw_row = None
        self._status_choices(form, None)
        return form

    def edit_form(self, obj: CredentialsRow) -> CredentialsForm:
        # Never pass the row itself: WTForms would copy the ciphertext into the secret fields.
        data = {
            "tenant_id": obj.tenant_id,
            "base_url": obj.base_url,
            "company_id": obj.company_id,
            "default_time_minutes": obj.default_time_minutes,
            "auto_update_status": obj.auto_update_status,
            "default_status_id": obj.default_status_id,
        }
        form: CredentialsForm = self._edit_form_class(get_form_data(), data=data)
        form._cw_row = obj
        form.tenant_id.data = obj.tenant_id  # the tenant is fixed: ciphertext is bound to it
        form.tenant_id.render_kw = {"readonly": True}
        self._status_choices(form, obj)
        return form

    def _status_choices(self, form: CredentialsForm, row: CredentialsRow | None) -> None:
        field = form.default_status_id
        current = field.data
        choices: list[tuple[object, str]] = [("", "— none —")]
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

    def load_statuses(self, row: CredentialsRow) -> list[tuple[int, str]]:
        """``(status id, "Board — Status")`` of the tenant's active boards (cached 5 min)."""
        tenants = self.tenants
        key = f"connectwise:admin:statuses:{row.tenant_id}:{row.revision}"
        try:
            cached = tenants.cache.get(key)
        except Exception:
            cached = None
        if isinstance(cached, list):
            return [(int(i), str(label)) for i, label in cached]
        client = tenants.client_for(row.tenant_id)
        boards = _boards(client)
        result: list[tuple[int, str]] = []
        for board_id, board_name in boards[:MAX_STATUS_BOARDS]:
            for status in client.board_statuses(board_id):
                if status.inactive:
                    continue
                result.append((status.id, f"{board_name} — {status.name}"))
        try:
            tenants.cache.set(key, result, timeout=STATUS_CACHE_SECONDS)
        except Exception:
            log.debug("connectwise admin: could not cache board statuses")
        return result

    def validate_form(self, form: ConnectWiseAdminForm) -> bool:
        if isinstance(form, CredentialsForm):
            valid = super().validate_form(form)
            if request.method != "POST":
                return False
            return self._check_credentials(form) and bool(valid)
        return bool(super().validate_form(form))

    def _tenant_of(self, form: CredentialsForm) -> str:
        row = form._cw_row
        if row is not None:
            return str(row.tenant_id)
        return (form.tenant_id.data or "").strip()

    def _payload(self, form: CredentialsForm) -> dict[str, object]:
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

    def _input_error(self, form: CredentialsForm, exc: InputError) -> None:
        name = _INPUT_FIELDS.get(exc.field)
        field = form[name] if name else None
        message = exc.message
        if field is None:
            flash(message, "error")
            return
        message = message.replace(exc.field, str(field.label.text))
        add_field_error(field, message)

    def _check_credentials(self, form: CredentialsForm) -> bool:
        ok = True
        creating = form._cw_row is None
        tenant = self._tenant_of(form)
        if creating:
            if not tenant:
                return False
            try:
                check_tenant_id(tenant)  # one tenant the routes can address: never '*'
            except InputError as exc:
                add_field_error(form.tenant_id, exc.message)
                return False
            if not self.may(tenant):
                add_field_error(
                    form.tenant_id, "You may not configure ConnectWise for this tenant."
                )
                return False
            if self.tenants.credentials_row(tenant) is not None:
                add_field_error(
                    form.tenant_id, "This tenant already has credentials; edit them instead."
                )
                return False
            for name in ("public_key", "private_key", "client_id"):
                if not (form[name].data or "").strip():
                    add_field_error(form[name], "Required when first storing credentials.")
                    ok = False
        elif not self.may(tenant):
            return False
        try:
            CredentialsInput.parse(self._payload(form), self.tenants.policy)
        except InputError as exc:
            self._input_error(form, exc)
            return False
        return ok

    def _save(self, form: CredentialsForm) -> CredentialsRow | None:
        tenant = self._tenant_of(form)
        if not self.may(tenant):
            flash("You may not configure ConnectWise for this tenant.", "error")
            return None
        try:
            row: CredentialsRow = self.tenants.save_credentials(
                tenant, self._payload(form), actor=self.actor()
            )
            return row
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

    def create_model(self, form: CredentialsForm) -> CredentialsRow | bool:
        row = self._save(form)
        return row if row is not None else False

    def update_model(self, form: CredentialsForm, model: CredentialsRow) -> bool:
        return self._save(form) is not None

    def delete_model(self, model: CredentialsRow) -> bool:
        if not self.may(model.tenant_id):
            flash("Record does not exist.", "error")
            return False
        tenant = model.tenant_id
        ok = bool(super().delete_model(model))
        if ok:
            self.tenants.forget_client(tenant)
        return ok

    # -- test connection -------------------------------------------------------------------

    def test_connection(self, row: CredentialsRow) -> bool:
        """Call ``system/info`` with the row's credentials; flash and record the outcome.

        Allowed while the tenant's feature flag is off (an admin checks the credentials before
        turning it on); the message then says that the integration itself is still off.
        """
        tenant = row.tenant_id
        try:
            off = not self.tenants.flag_on(tenant)
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
            info = self.tenants.client_for(tenant).system_info()
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

    def _record(self, row: CredentialsRow, *, error: str | None) -> None:
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

    @post_route("/test/")
    def test_connection_view(self) -> Response:
        row, form = self._row_from_post()
        if row is not None:
            self.test_connection(row)
        return self._back(form)

    @list_action("test_connection", f"Test connection ({TEST_HINT})")
    def action_test_connection(self, ids: Iterable[str]) -> None:
        rows = self.rows_for_ids(ids)
        if not rows:
            flash("No record you may configure was selected.", "error")
        for row in rows:
            self.test_connection(row)

    def is_action_allowed(self, name: str) -> bool:
        return bool(super().is_action_allowed(name))
