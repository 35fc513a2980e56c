"""The ``connectwise_integration`` feature flag: the form and the view (on/off, per tenant)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from flask import flash
from flask_admin.helpers import get_form_data
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response
from wtforms import BooleanField, StringField
from wtforms.validators import InputRequired, Length

from ..models import ALL_TENANTS, FeatureFlagRow
from ..validation import InputError, check_tenant_id
from .base import (
    Formatter,
    TenantScopedView,
    add_field_error,
    list_action,
    log,
    post_route,
)
from .forms import ConnectWiseAdminForm
from .widgets import PostRowAction

__all__ = ["FeatureFlagView", "FlagForm"]


class FlagForm(ConnectWiseAdminForm):
    """The flag of one tenant, or of every tenant without a row of its own (``*``)."""

    #: The row being edited (``None`` when creating), set by :class:`FeatureFlagView`.
    _cw_row: FeatureFlagRow | None = None

    tenant_id = StringField(
        "Tenant",
        validators=[InputRequired(), Length(max=64)],
        description="A tenant id, or * for every tenant without a row of its own.",
    )
    enabled = BooleanField(
        "ConnectWise integration on",
        description="Off hides and disables the integration for the tenant; nothing is deleted.",
    )


def _on_off(view: object, context: object, model: FeatureFlagRow, name: str) -> str:
    return "on" if model.enabled else "off"


def _flag_tenant(view: object, context: object, model: FeatureFlagRow, name: str) -> str:
    return "* (all tenants)" if model.tenant_id == ALL_TENANTS else model.tenant_id


class FeatureFlagView(TenantScopedView[FeatureFlagRow]):
    """``connectwise_integration`` on or off, per tenant or for all (``*``)."""

    tenant_action = "configure"
    form = FlagForm
    list_template = "connectwise/admin/flag_list.html"
    create_template = "connectwise/admin/flag_create.html"
    edit_template = "connectwise/admin/flag_edit.html"
    can_delete = False  # turning the feature off deletes nothing; neither does this view
    can_view_details = False
    can_export = False
    column_list: ClassVar[list[str]] = ["tenant_id", "enabled", "updated_by", "updated_at"]
    column_labels: ClassVar[dict[str, str]] = {
        "tenant_id": "Tenant",
        "enabled": "Integration",
        "updated_by": "Changed by",
        "updated_at": "Changed at",
    }
    column_formatters: ClassVar[dict[str, Formatter[FeatureFlagRow]]] = {
        "enabled": _on_off,
        "tenant_id": _flag_tenant,
    }
    column_sortable_list: ClassVar[list[str]] = ["tenant_id", "enabled", "updated_at"]
    column_searchable_list: ClassVar[list[str]] = ["tenant_id"]
    column_filters: ClassVar[list[str]] = ["tenant_id", "enabled"]
    column_default_sort = "tenant_id"
    column_extra_row_actions: ClassVar[list[PostRowAction]] = [
        PostRowAction(
            ".toggle_view",
            "Turn the integration on or off for this tenant",
            "fa fa-power-off",
            label=lambda row: "Turn off" if row.enabled else "Turn on",
        ),
    ]

    def create_form(self, obj: FeatureFlagRow | None = None) -> FlagForm:
        form: FlagForm = self._create_form_class(
            get_form_data(), data={"tenant_id": self.extension.tenant() or "", "enabled": True}
        )
        form._cw_row = None
        return form

    def edit_form(self, obj: FeatureFlagRow) -> FlagForm:
        form: FlagForm = self._edit_form_class(
            get_form_data(), data={"tenant_id": obj.tenant_id, "enabled": obj.enabled}
        )
        form._cw_row = obj
        form.tenant_id.data = obj.tenant_id
        form.tenant_id.render_kw = {"readonly": True}
        return form

    def validate_form(self, form: ConnectWiseAdminForm) -> bool:
        valid = bool(super().validate_form(form))
        if not isinstance(form, FlagForm) or not valid:
            return valid
        row = form._cw_row
        tenant = row.tenant_id if row is not None else (form.tenant_id.data or "").strip()
        if row is None and tenant and tenant != ALL_TENANTS:
            try:
                check_tenant_id(tenant)  # a flag for a tenant the routes can address, or '*'
            except InputError as exc:
                add_field_error(form.tenant_id, exc.message)
                return False
        if not tenant or not self.may(tenant):
            add_field_error(form.tenant_id, "You may not configure ConnectWise for this tenant.")
            return False
        return True

    def _set(self, tenant: str, enabled: bool) -> FeatureFlagRow | None:
        if not self.may(tenant):
            flash("You may not configure ConnectWise for this tenant.", "error")
            return None
        try:
            row: FeatureFlagRow = self.tenants.set_flag(tenant, enabled, actor=self.actor())
        except SQLAlchemyError:
            self._rollback()
            log.exception("connectwise admin: saving the feature flag failed")
            flash("The feature flag could not be saved; try again.", "error")
            return None
        return row

    def create_model(self, form: FlagForm) -> FeatureFlagRow | bool:
        row = self._set((form.tenant_id.data or "").strip(), bool(form.enabled.data))
        return row if row is not None else False

    def update_model(self, form: FlagForm, model: FeatureFlagRow) -> bool:
        return self._set(model.tenant_id, bool(form.enabled.data)) is not None

    def _flash_flag(self, row: FeatureFlagRow) -> None:
        who = (
            "every tenant without its own setting"
            if row.tenant_id == ALL_TENANTS
            else row.tenant_id
        )
        state = "on" if row.enabled else "off"
        flash(f"The ConnectWise integration is now {state} for {who}.", "success")

    @post_route("/toggle/")
    def toggle_view(self) -> Response:
        row, form = self._row_from_post()
        if row is not None:
            changed = self._set(row.tenant_id, not row.enabled)
            if changed is not None:
                self._flash_flag(changed)
        return self._back(form)

    def _bulk(self, ids: Iterable[str], enabled: bool) -> None:
        rows = self.rows_for_ids(ids)
        if not rows:
            flash("No record you may configure was selected.", "error")
        for row in rows:
            changed = self._set(row.tenant_id, enabled)
            if changed is not None:
                self._flash_flag(changed)

    @list_action("turn_on", "Turn on")
    def action_turn_on(self, ids: Iterable[str]) -> None:
        self._bulk(ids, True)

    @list_action("turn_off", "Turn off")
    def action_turn_off(self, ids: Iterable[str]) -> None:
        self._bulk(ids, False)
