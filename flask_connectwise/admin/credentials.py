"""Per-tenant ConnectWise credentials: the form, the view, Test connection."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from flask import flash, g, jsonify, request, session
from flask_admin.babel import gettext
from flask_admin.helpers import get_form_data
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response
from wtforms import (
    BooleanField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
)
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]
from wtforms.validators import InputRequired, Length, NumberRange, Optional
from wtforms.widgets import PasswordInput

from ..choices import (
    BILLABLE_OPTIONS,
    SCOPE_ALL,
    SCOPE_LISTED,
    CompanyChoice,
    load_board_statuses,
    load_companies,
    load_work,
)
from ..client import ConnectWiseClient
from ..credentials import CredentialsInput, TenantSettings, mask, setting_warnings
from ..crypto import CryptoError
from ..csrf import csrf_valid
from ..errors import ConnectWiseError
from ..models import CredentialsRow, utcnow
from ..validation import InputError, check_tenant_id
from ..wording import aside
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
from .widgets import BoardStatusField, CompanyPickerField, PostRowAction

__all__ = ["CredentialsForm", "CredentialsView"]

STATUS_CACHE_SECONDS = 300
MAX_STATUS_BOARDS = 10

#: A secret's help on the edit form (a value is stored).
_WRITE_ONLY_HELP = "Write-only: the stored value is never shown. Leave blank to keep it."
#: A secret's help on the create form (nothing is stored yet: nothing to keep).
_WRITE_ONLY_NEW = "Required. Write-only: once saved, it is never shown."

_BILLABLE = {
    "Billable": "Billable",
    "DoNotBill": "Do not bill",
    "NoCharge": "No charge",
    "NoDefault": "No default",
}


def _optional_int(value: str | int | None) -> int | None:
    if value is None or value in ("", "None"):
        return None
    return int(value)


def _secret_field(label: str, intro: str = "") -> PasswordField:
    """A write-only secret input: never rendered with a value, blank keeps the stored one."""
    return PasswordField(
        label,
        widget=PasswordInput(hide_value=True),
        validators=[Optional(), Length(max=128)],
        description=intro + _WRITE_ONLY_HELP,
        render_kw={"autocomplete": "new-password"},
    )


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
    public_key = _secret_field("Public key")
    private_key = _secret_field("Private key")
    client_id = _secret_field(
        "Client id", "Your integration's clientId from developer.connectwise.com. "
    )
    default_time_minutes = IntegerField(
        "Default time (minutes)",
        validators=[Optional(), NumberRange(min=1, max=1440)],
        default=15,
        description="Time entered on the ticket when the operator gives none.",
    )
    auto_update_status = BooleanField(
        "Update the ticket status automatically",
        description=(
            "Set a status on every logged change: the one chosen for the ticket's board under"
            ' "Status per board"; on a board with none chosen, the default status below only'
            " when it belongs to that board. Otherwise the status is left as is."
        ),
    )
    default_status_id = SelectField(
        "Default status",
        coerce=_optional_int,
        choices=[],
        validate_choice=False,
        description="Statuses of the tenant's service boards (loaded once the keys work).",
    )
    company_scope = RadioField(
        "Companies served",
        choices=[
            SelectChoice(SCOPE_LISTED, "Only these companies"),
            SelectChoice(SCOPE_ALL, "All companies (our own internal tenant)"),
        ],
        validate_choice=False,
        description="Operators can pick only tickets of the companies chosen here.",
    )
    companies = CompanyPickerField(
        "Companies",
        description="Tick the companies this tenant serves (search ConnectWise, or type ids).",
    )
    work_type = SelectField(
        "Work type", choices=[], validate_choice=False, description="Sent on every time entry."
    )
    work_role = SelectField(
        "Work role", choices=[], validate_choice=False, description="Sent on every time entry."
    )
    billable_option = SelectField(
        "Billable option",
        choices=[SelectChoice("", "— ConnectWise decides —")]
        + [SelectChoice(o, _BILLABLE[o]) for o in BILLABLE_OPTIONS],
        validate_choice=False,
    )
    note_visibility = SelectField(
        "Note visibility",
        choices=[
            SelectChoice("internal", "Internal analysis (not shown to the customer)"),
            SelectChoice("discussion", "Discussion (visible to the customer)"),
            SelectChoice("resolution", "Resolution"),
        ],
        default="internal",
        validate_choice=False,
    )
    email_contact = BooleanField(
        "E-mail the contact about Discussion notes",
        description="ConnectWise's notification rules e-mail the ticket's contact; only for "
        "Discussion notes.",
    )
    board_statuses = BoardStatusField(
        "Status per board",
        description="The status a logged change sets, per board; blank leaves it as is.",
    )
    ticket_policy = RadioField(
        "Closed ticket, or a status that takes no time",
        choices=[
            SelectChoice("refuse", "Refuse the change"),
            SelectChoice("warn", "Accept it, skip what cannot succeed, and say so"),
        ],
        default="refuse",
        validate_choice=False,
        description="A ticket of another company is always refused.",
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
    "companyScope": "company_scope",
    "companies": "companies",
    "workType": "work_type",
    "workRole": "work_role",
    "billableOption": "billable_option",
    "noteVisibility": "note_visibility",
    "emailContact": "email_contact",
    "boardStatuses": "board_statuses",
    "ticketPolicy": "ticket_policy",
}


_LISTED_NEEDS_A_COMPANY = (
    'Choose at least one company for "Only these companies", or choose "All companies" under'
    ' "Companies served" for a tenant that serves every company.'
)

_SAVE_FIRST = (
    "Save the credentials first; the lists of work types, roles and board statuses come from"
    " ConnectWise once it can be reached."
)

#: The payload keys a client needs: the connection, none of the tenant's choices.
_CONNECTION_KEYS = frozenset({"baseUrl", "companyId", "publicKey", "privateKey", "clientId"})


def _configured(view: object, context: object, model: CredentialsRow, name: str) -> str:
    ok = bool(model.public_key and model.private_key and model.client_id)
    return "yes" if ok else "no"


def _masked(view: object, context: object, model: CredentialsRow, name: str) -> str:
    return mask(getattr(model, name, None))


def _short_error(view: object, context: object, model: CredentialsRow, name: str) -> str:
    value: str = getattr(model, name, None) or ""
    return value if len(value) <= 120 else value[:117] + "…"


#: What Flask-Admin flashes when a form does not validate (a form's Test connection neither
#: saves nor fails to: its own result says what happened).
_GENERIC_FAILURES = ("Failed to save record.", "Failed to create record.")


def _drop_flashes(messages: Iterable[str]) -> None:
    """Take Flask-Admin's generic messages (in any language) out of the pending flashes."""
    drop = {gettext(m) for m in messages} | set(messages)
    pending = session.get("_flashes")
    if pending:
        session["_flashes"] = [(kind, text) for kind, text in pending if text not in drop]


def _json_error(message: str, status: int) -> Response:
    answer = jsonify({"error": message})
    answer.status_code = status
    return answer


def _work_id(text: str | None) -> str:
    work = load_work(text)
    return str(work.id) if work is not None else ""


def _boards(client: ConnectWiseClient) -> list[tuple[int, str]]:
    """The tenant's active service boards, ``(id, name)``."""
    return [(board.id, board.name or f"Board {board.id}") for board in client.boards()]


def _companies_text(view: object, context: object, model: CredentialsRow, name: str) -> str:
    scope = model.company_scope or "unset"
    if scope == SCOPE_ALL:
        return "All companies"
    if scope == SCOPE_LISTED:
        return ", ".join(c.label for c in load_companies(model.companies)) or "none chosen"
    return "not chosen yet (every company)"


def _time_defaults_text(view: object, context: object, model: CredentialsRow, name: str) -> str:
    work_type, work_role = load_work(model.work_type), load_work(model.work_role)
    billable = _BILLABLE.get(model.billable_option or "", "ConnectWise decides")
    return (
        f"{model.default_time_minutes or 15} min; work type "
        f"{work_type.label if work_type else 'not set'}; work role "
        f"{work_role.label if work_role else 'not set'}; billable: {billable}"
    )


def _notes_text(view: object, context: object, model: CredentialsRow, name: str) -> str:
    visibility = {
        "internal": "Internal analysis",
        "discussion": "Discussion",
        "resolution": "Resolution",
    }.get(model.note_visibility or "internal", "Internal analysis")
    mail = "the contact is e-mailed" if model.email_contact else "no e-mail to the contact"
    return f"{visibility}; {mail}"


def _board_map_text(view: object, context: object, model: CredentialsRow, name: str) -> str:
    choices = load_board_statuses(model.board_statuses)
    if not choices:
        return "none (statuses are left as is)"
    return "; ".join(f"{c.board_label} → {c.status_label}" for c in choices)


def _default_status_text(view: Any, context: object, model: CredentialsRow, name: str) -> str:
    """The legacy default status by name: from the board map's stored names, else from
    ConnectWise's boards (cached); ``status #102`` only when ConnectWise cannot tell."""
    status_id = model.default_status_id
    if not status_id:
        return "none"
    for choice in load_board_statuses(model.board_statuses):
        if choice.status_id == status_id and choice.status_name:
            return f"{choice.board_label} — {choice.status_name}"
    try:
        loaded = dict(view.load_statuses(model))
    except Exception:  # unreachable, unreadable keys: the id is all there is
        loaded = {}
    return loaded.get(status_id) or f"status #{status_id}"


def _policy_text(view: object, context: object, model: CredentialsRow, name: str) -> str:
    if (model.ticket_policy or "refuse") == "warn":
        return "accept with a warning, skip what cannot succeed"
    return "refuse"


def _warnings_text(view: object, context: object, model: CredentialsRow, name: str) -> str:
    return " ".join(setting_warnings(model)) or "none"


def _on_off(view: object, context: object, model: CredentialsRow, name: str) -> str:
    """A switch in words (``on``/``off``), never ``True``/``False``."""
    return "on" if getattr(model, name, None) else "off"


_SETTING_FORMATTERS: dict[str, Formatter[CredentialsRow]] = {
    "auto_update_status": _on_off,
    "company_scope": _companies_text,
    "work_type": _time_defaults_text,
    "note_visibility": _notes_text,
    "board_statuses": _board_map_text,
    "ticket_policy": _policy_text,
    "warnings": _warnings_text,
}


class CredentialsView(TenantScopedView[CredentialsRow]):
    """Per-tenant ConnectWise credentials; secrets are write-only."""

    tenant_action = "configure"
    form = CredentialsForm
    list_template = "connectwise/admin/credentials_list.html"
    create_template = "connectwise/admin/credentials_create.html"
    edit_template = "connectwise/admin/credentials_edit.html"
    details_template = "connectwise/admin/credentials_details.html"
    # Radio lists are no text box (Flask-Admin would give them Bootstrap's form-control frame).
    form_widget_args: ClassVar[dict[str, dict[str, str]]] = {
        "company_scope": {"class": "list-unstyled mb-0 cw-radio-list"},
        "ticket_policy": {"class": "list-unstyled mb-0 cw-radio-list"},
    }

    can_view_details = True
    can_export = True
    export_types: ClassVar[list[str]] = ["csv"]

    # Fits 1280 px: the client id and the login company are on the details page.
    column_list: ClassVar[list[str]] = [
        "tenant_id",
        "base_url",
        "public_key_hint",
        "configured",
        "company_scope",
        "warnings",
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
        "company_scope",
        "work_type",
        "note_visibility",
        "board_statuses",
        "ticket_policy",
        "warnings",
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
        "company_id": "Login company",
        "public_key_hint": "Public key",
        "client_id_hint": "Client id",
        "configured": "Configured",
        "last_verified_at": "Last verified",
        "last_error": "Last error",
        "default_time_minutes": "Default time (minutes)",
        "auto_update_status": "Auto-update status",
        "default_status_id": "Default status",
        "updated_by": "Updated by",
        "company_scope": "ConnectWise companies",
        "work_type": "Time entries",
        "note_visibility": "Notes",
        "board_statuses": "Status per board",
        "ticket_policy": "Unusable ticket",
        "warnings": "Warnings",
    }
    column_formatters: ClassVar[dict[str, Formatter[CredentialsRow]]] = {
        "public_key_hint": _masked,
        "client_id_hint": _masked,
        "configured": _configured,
        "last_error": _short_error,
        **_SETTING_FORMATTERS,
    }
    column_formatters_detail: ClassVar[dict[str, Formatter[CredentialsRow]]] = {
        "public_key_hint": _masked,
        "client_id_hint": _masked,
        "configured": _configured,
        "default_status_id": _default_status_text,  # may ask ConnectWise: one row only
        **_SETTING_FORMATTERS,
    }
    column_formatters_export: ClassVar[dict[str, Formatter[CredentialsRow]]] = {
        "public_key_hint": lambda view, context, model, name: _masked(view, context, model, name),
        "client_id_hint": lambda view, context, model, name: _masked(view, context, model, name),
        "configured": lambda view, context, model, name: _configured(view, context, model, name),
        **_SETTING_FORMATTERS,
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
        PostRowAction(
            ".test_connection_view",
            f"Test connection ({TEST_HINT})",
            "fa fa-plug",
            label="Test connection",
        ),
    ]

    def render(self, template: str, **kwargs: Any) -> str:
        from ..fields import csp_nonce

        kwargs.setdefault("cw_csp_nonce", csp_nonce())
        if g.get("cw_form_tested"):
            _drop_flashes(_GENERIC_FAILURES)
        return super().render(template, **kwargs)

    # -- forms -----------------------------------------------------------------------------

    def create_form(self, obj: CredentialsRow | None = None) -> CredentialsForm:
        form: CredentialsForm = self._create_form_class(
            get_form_data(), data={"tenant_id": self.extension.tenant() or ""}
        )
        form._cw_row = None
        for secret in (form.public_key, form.private_key, form.client_id):
            secret.description = str(secret.description).replace(_WRITE_ONLY_HELP, _WRITE_ONLY_NEW)
        self._status_choices(form, None)
        self._setting_choices(form, None)
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
            "company_scope": obj.company_scope,
            "companies": load_companies(obj.companies),
            "work_type": _work_id(obj.work_type),
            "work_role": _work_id(obj.work_role),
            "billable_option": obj.billable_option or "",
            "note_visibility": obj.note_visibility or "internal",
            "email_contact": bool(obj.email_contact),
            "board_statuses": load_board_statuses(obj.board_statuses),
            "ticket_policy": obj.ticket_policy or "refuse",
        }
        form: CredentialsForm = self._edit_form_class(get_form_data(), data=data)
        form._cw_row = obj
        form.tenant_id.data = obj.tenant_id  # the tenant is fixed: ciphertext is bound to it
        form.tenant_id.render_kw = {"readonly": True}
        self._status_choices(form, obj)
        self._setting_choices(form, obj)
        return form

    def _setting_choices(self, form: CredentialsForm, row: CredentialsRow | None) -> None:
        """Fill the company, work type/role and board selects from ConnectWise; when it
        cannot be reached, the stored choices are shown by name with a plain message."""
        form.companies.search_url = (
            self.get_url(".company_search_view", id=row.id)
            if row is not None
            else self.get_url(".company_search_view")
        )
        stored_companies = load_companies(row.companies) if row is not None else ()
        form.companies.companies = list(stored_companies)
        # companies a search added (posted back with their names) stay listed
        known = {c.id for c in stored_companies}
        for item in form.companies.raw_values():
            if (
                isinstance(item, dict)
                and isinstance(item.get("id"), int)
                and item["id"] not in known
            ):
                known.add(item["id"])
                form.companies.companies.append(
                    CompanyChoice(
                        item["id"],
                        str(item.get("identifier", ""))[:100],
                        str(item.get("name", ""))[:100],
                    )
                )
        loaded: dict[str, Any] = {"work_types": [], "work_roles": [], "boards": []}
        problem = None
        if row is None:
            # Said once, at the time defaults (under Work type, the first list it empties).
            form.work_type.description = plain_text(_SAVE_FIRST)
            form.board_statuses.empty_text = "Listed once the credentials are saved."
        else:
            try:
                loaded = self.load_choices(row)
            except (ConnectWiseError, CryptoError) as exc:
                problem = (
                    f"ConnectWise's lists could not be loaded {aside(error_message(exc).rstrip('.'))}; the "
                    "stored choices are kept."
                )
            except Exception:
                log.exception("connectwise admin: loading ConnectWise's lists failed")
                problem = "ConnectWise's lists could not be loaded; the stored choices are kept."
        for name, column in (("work_type", "work_type"), ("work_role", "work_role")):
            field = form[name]
            options = [SelectChoice("", "— none —")]
            options.extend(SelectChoice(str(i), n) for i, n in loaded[f"{name}s"])
            stored = load_work(getattr(row, column, None)) if row is not None else None
            if stored is not None and str(stored.id) not in {o.value for o in options}:
                options.append(SelectChoice(str(stored.id), stored.label))
            field.choices = options
            if problem:
                field.description = plain_text(problem)
        boards: list[tuple[int, str, list[tuple[int, str]]]] = [
            (b, n, list(st)) for b, n, st in loaded["boards"]
        ]
        stored_map = load_board_statuses(row.board_statuses) if row is not None else ()
        for choice in stored_map:
            entry = next((b for b in boards if b[0] == choice.board_id), None)
            if entry is None:
                entry = (choice.board_id, choice.board_label, [])
                boards.append(entry)
            if choice.status_id not in {i for i, _ in entry[2]}:
                entry[2].append((choice.status_id, choice.status_label))
        form.board_statuses.boards = boards
        if problem:  # creating: the empty table and the work type say it
            form.board_statuses.description = plain_text(problem)

    def load_choices(self, row: CredentialsRow) -> dict[str, Any]:
        """Work types, work roles and active boards with their active statuses (5 min cache)."""
        tenants = self.tenants
        key = f"connectwise:admin:choices:{row.tenant_id}:{row.revision}"
        try:
            cached = tenants.cache.get(key)
        except Exception:
            cached = None
        if isinstance(cached, dict):
            return cached
        client = tenants.client_for(row.tenant_id)
        boards = []
        for board_id, board_name in _boards(client)[:MAX_STATUS_BOARDS]:
            statuses = [
                (s.id, s.name or f"Status {s.id}")
                for s in client.board_statuses(board_id)
                if not s.inactive
            ]
            boards.append((board_id, board_name, statuses))
        result: dict[str, Any] = {
            "work_types": [(w.id, w.name or f"#{w.id}") for w in client.work_types()],
            "work_roles": [(w.id, w.name or f"#{w.id}") for w in client.work_roles()],
            "boards": boards,
        }
        try:
            tenants.cache.set(key, result, timeout=STATUS_CACHE_SECONDS)
        except Exception:
            log.debug("connectwise admin: could not cache ConnectWise's lists")
        return result

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
                    f"The board statuses could not be loaded {aside(error_message(exc).rstrip('.'))}; the "
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
            checked = self._check_credentials(form) and bool(valid)
            if checked and request.form.get("cw_test"):
                # "Test connection" in the form: test what was typed, save nothing. Its result
                # is the only message (not Flask-Admin's "Failed to save record." as well).
                self._test_form(form)
                g.cw_form_tested = True
                return False
            return checked
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
        } | self._choices_payload(form)

    def _choices_payload(self, form: CredentialsForm) -> dict[str, object]:
        """The company, time and status choices the form carried (left out: keep stored)."""
        sent = request.form
        payload: dict[str, object] = {}
        if "company_scope" in sent:
            payload["companyScope"] = form.company_scope.data
        if form.companies.sent:
            # Kept while "All companies" is chosen (unused then): switching back restores it.
            payload["companies"] = form.companies.raw_values()
        for key, name in (("workType", "work_type"), ("workRole", "work_role")):
            if name in sent:
                payload[key] = self._work_value(form, name)
        if "billable_option" in sent:
            payload["billableOption"] = form.billable_option.data or None
        if "note_visibility" in sent:
            payload["noteVisibility"] = form.note_visibility.data
            payload["emailContact"] = bool(form.email_contact.data)
        if form.board_statuses.sent:
            payload["boardStatuses"] = form.board_statuses.raw_values()
        if "ticket_policy" in sent:
            payload["ticketPolicy"] = form.ticket_policy.data
        return payload

    @staticmethod
    def _work_value(form: CredentialsForm, name: str) -> object:
        value = form[name].data
        if value in (None, ""):
            return None
        labels = {str(o.value): str(o.label) for o in form[name].choices or []}
        label = labels.get(str(value), "")
        if label.startswith("#") or label.startswith("—"):
            label = ""
        return {"id": value, "name": label}

    def _input_error(self, form: CredentialsForm, exc: InputError) -> None:
        name = _INPUT_FIELDS.get(exc.field)
        field = form[name] if name else None
        message = exc.message
        if field is None:
            flash(message, "error")
            return
        if exc.field == "companies" and "companyScope" in message:
            message = _LISTED_NEEDS_A_COMPANY  # the form's words, not the API's field names
        else:
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
        if row is not None:
            self._verify_saved(row)
        return row if row is not None else False

    def update_model(self, form: CredentialsForm, model: CredentialsRow) -> bool:
        row = self._save(form)
        if row is not None:
            self._verify_saved(row)
        return row is not None

    def _verify_saved(self, row: CredentialsRow) -> None:
        """Saved credentials are tested at once: when ConnectWise refuses them, say so."""
        tenant = row.tenant_id
        try:
            client = self.tenants.client_for(tenant)
            client.system_info()
        except (ConnectWiseError, CryptoError) as exc:
            message = error_message(exc)
            self._record(row, error=message)
            flash(
                f"Tenant {tenant}: the credentials were saved, but the connection test failed: "
                f"{message} Check the keys and test again.",
                "warning",
            )
            return
        except Exception:
            log.exception("connectwise admin: testing saved credentials failed unexpectedly")
            flash(
                f"Tenant {tenant}: the credentials were saved, but the connection test failed "
                "unexpectedly; the details are in the server log.",
                "warning",
            )
            return
        try:
            # Choices typed by id get ConnectWise's names, as a JSON API save does.
            for warning in self.tenants.name_choices(tenant):
                flash(
                    f"Tenant {tenant}: the credentials were saved, but "
                    f"{warning[:1].lower()}{warning[1:]}",
                    "warning",
                )
        except Exception:  # the keys work; a failed look-up only leaves the ids unchecked
            log.warning("connectwise admin: the typed company ids could not be checked")
        self._record(row, error=None)

    def _form_settings(self, form: CredentialsForm) -> TenantSettings:
        """The connection the form holds (blank secrets: the stored ones), checked by
        :class:`CredentialsInput` like a save; :class:`InputError` when unusable.

        Only the connection is checked: a client built to search companies or test the keys
        must not need the companies it is about to find (nor any other choice of the form).
        """
        connection = {k: v for k, v in self._payload(form).items() if k in _CONNECTION_KEYS}
        data = CredentialsInput.parse(connection, self.tenants.policy)
        secrets = {
            "public_key": data.public_key,
            "private_key": data.private_key,
            "client_id": data.client_id,
        }
        if not all(secrets.values()):
            stored = None
            if form._cw_row is not None:
                stored = self.tenants.store().decrypt_row(form._cw_row)
            for name in secrets:
                if not secrets[name] and stored is not None:
                    secrets[name] = getattr(stored, name)
            missing = [n for n, v in secrets.items() if not v]
            if missing:
                raise InputError(
                    {"public_key": "publicKey", "private_key": "privateKey"}.get(
                        missing[0], "clientId"
                    ),
                    "Enter the keys to test them.",
                )
        return TenantSettings(
            tenant_id=self._tenant_of(form),
            base_url=data.base_url,
            company_id=data.company_id,
            public_key=str(secrets["public_key"]),
            private_key=str(secrets["private_key"]),
            client_id=str(secrets["client_id"]),
        )

    def _test_form(self, form: CredentialsForm) -> bool:
        """Test the values in the form (not the stored row); nothing is saved."""
        tenant = self._tenant_of(form)
        try:
            client = self.tenants.build_client(self._form_settings(form))
        except InputError as exc:
            self._input_error(form, exc)
            return False
        except (ConnectWiseError, CryptoError) as exc:
            flash(f"Tenant {tenant}: the connection failed. {error_message(exc)}", "error")
            return False
        try:
            info = client.system_info()
        except (ConnectWiseError, CryptoError) as exc:
            flash(
                f"Tenant {tenant}: the connection with the values in the form failed. "
                f"{error_message(exc)} Nothing was saved.",
                "error",
            )
            return False
        except Exception:
            log.exception("connectwise admin: testing the form's credentials failed")
            flash(
                f"Tenant {tenant}: the connection failed unexpectedly; the details are in the "
                "server log. Nothing was saved.",
                "error",
            )
            return False
        finally:
            client.close()
        flash(
            f"Tenant {tenant}: the values in the form connect to ConnectWise "
            f"{info.version or 'unknown'}. Save to keep them.",
            "success",
        )
        return True

    @post_route("/companies/")
    def company_search_view(self) -> Response:
        """The company picker's search (JSON): ConnectWise companies matching ``q``, with the
        form's credentials (blank secrets: the stored ones) or else the tenant's stored ones."""
        if not (g.get("csrf_valid", False) or csrf_valid(request.form.get("csrf_token"))):
            return _json_error("The page has expired; reload it and try again.", 400)
        row_id = request.form.get("id") or request.args.get("id")
        row = self.get_one(row_id) if row_id else None
        if row_id and row is None:
            return _json_error("Record does not exist.", 404)
        form: CredentialsForm = self._create_form_class(request.form)
        form._cw_row = row
        tenant = self._tenant_of(form)
        if not tenant or not self.may(tenant):
            return _json_error("You may not configure ConnectWise for this tenant.", 403)
        text = str(request.form.get("q") or "")[:100]
        client: ConnectWiseClient | None = None
        try:
            if request.form.get("base_url"):
                client = self.tenants.build_client(self._form_settings(form))
                owned = True
            elif row is not None:
                client = self.tenants.client_for(tenant)
                owned = False
            else:
                return _json_error("Enter the base URL, company id and keys first.", 400)
            try:
                found = client.companies(text, limit=25)
            finally:
                if owned:
                    client.close()
        except InputError as exc:
            return _json_error(exc.message, 400)
        except (ConnectWiseError, CryptoError) as exc:
            return _json_error(
                f"ConnectWise's companies could not be searched: {error_message(exc)}", 502
            )
        except Exception:
            log.exception("connectwise admin: company search failed")
            return _json_error(
                "ConnectWise's companies could not be searched; the details are in the server log.",
                502,
            )
        return jsonify({"companies": [c.to_json() for c in found]})

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
