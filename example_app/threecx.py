"""3CX Management: users (extensions) and DIDs as Flask-Admin views that log to ConnectWise.

Each view shows, changes and deletes only rows of the logged-in user's tenant and stamps that
tenant on the rows it creates. ``ConnectWiseChangeLogging`` adds the ticket field to the create
and edit forms and logs a note listing the changed fields by their labels ("Outbound caller ID:
… → …", from ``column_labels`` and ``form_args``). A deletion is logged ("Deleted 3CX user ext.
202 (Sam Ortiz)" and its last values) when the delete request carries ``connectwise_ticket``;
the list page (``templates/example/threecx_list.html``) shows a "ConnectWise ticket for
deletions" field above the list whose ticket goes with each row's delete button and with "With
selected → Delete"; a delete without a ticket is not logged.
"""

from __future__ import annotations

from typing import Any, ClassVar

from flask_admin.contrib.sqla import ModelView
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import SelectChoice, SelectField, ValidationError
from wtforms.validators import Regexp

from flask_connectwise.changelogging import ConnectWiseChangeLogging

from .admin import LoginRequired
from .extensions import db
from .models import Did, PhoneUser

PHONE_RE = r"^\+?[0-9][0-9 ]{2,30}$"


class TenantScopedView(LoginRequired, ModelView):
    """A model view over rows that carry ``tenant_id``: the current user's tenant only."""

    form_base_class = FlaskForm
    list_template = "example/threecx_list.html"
    column_exclude_list: ClassVar[Any] = ("tenant_id",)
    form_excluded_columns: ClassVar[Any] = ("tenant_id",)
    can_view_details = False
    page_size = 50

    @staticmethod
    def tenant() -> str:
        return str(current_user.tenant_id)

    def get_query(self) -> Any:
        return super().get_query().filter(self.model.tenant_id == self.tenant())

    def get_count_query(self) -> Any:
        return super().get_count_query().filter(self.model.tenant_id == self.tenant())

    def get_one(self, id: Any) -> Any:
        row = super().get_one(id)
        if row is None or row.tenant_id != self.tenant():
            return None
        return row

    def on_model_change(self, form: Any, model: Any, is_created: bool) -> None:
        if is_created:
            model.tenant_id = self.tenant()
        elif model.tenant_id != self.tenant():  # get_one() makes this unreachable; belt and braces
            raise ValidationError("This record belongs to another tenant.")
        with db.session.no_autoflush:
            self.check_unique(model)
        super().on_model_change(form, model, is_created)

    def check_unique(self, model: Any) -> None:
        """Raise :class:`ValidationError` when ``model`` duplicates a row of its tenant."""


class PhoneUserView(ConnectWiseChangeLogging, TenantScopedView):
    """3CX users."""

    column_list: ClassVar[Any] = (
        "extension",
        "first_name",
        "last_name",
        "email",
        "outbound_caller_id",
    )
    form_columns: ClassVar[Any] = column_list
    column_labels: ClassVar[Any] = {"outbound_caller_id": "Outbound caller ID"}
    column_default_sort = "extension"
    column_searchable_list: ClassVar[Any] = ("extension", "first_name", "last_name", "email")
    form_args: ClassVar[Any] = {
        "extension": {"validators": [Regexp(r"^[0-9]{2,6}$", message="2 to 6 digits")]},
        "outbound_caller_id": {
            "validators": [Regexp(PHONE_RE, message="A phone number, e.g. +1 425 555 0100")]
        },
    }
    connectwise_ignored_fields = ("tenant_id",)

    def __init__(self, session: Any, **kwargs: Any) -> None:
        super().__init__(PhoneUser, session, **kwargs)

    def connectwise_subject(self, model: Any) -> str:
        return f"3CX user ext. {model.extension} ({model.first_name} {model.last_name})"

    def check_unique(self, model: Any) -> None:
        clash = db.session.execute(
            db.select(PhoneUser.id).filter(
                PhoneUser.tenant_id == model.tenant_id,
                PhoneUser.extension == model.extension,
                PhoneUser.id != (model.id or 0),
            )
        ).first()
        if clash:
            raise ValidationError(f"Extension {model.extension} already exists.")


class DidView(ConnectWiseChangeLogging, TenantScopedView):
    """3CX DIDs and the extension each one rings."""

    column_list: ClassVar[Any] = ("number", "description", "destination_extension")
    form_columns: ClassVar[Any] = column_list
    column_labels: ClassVar[Any] = {"number": "DID", "destination_extension": "Destination"}
    column_default_sort = "number"
    column_searchable_list: ClassVar[Any] = ("number", "description", "destination_extension")
    form_overrides: ClassVar[Any] = {"destination_extension": SelectField}
    form_args: ClassVar[Any] = {
        "number": {
            "validators": [Regexp(PHONE_RE, message="A phone number, e.g. +1 425 555 0100")]
        },
        "destination_extension": {"choices": [], "label": "Destination extension"},
    }
    connectwise_ignored_fields = ("tenant_id",)

    def __init__(self, session: Any, **kwargs: Any) -> None:
        super().__init__(Did, session, **kwargs)

    def connectwise_subject(self, model: Any) -> str:
        return f"DID {model.number}"

    def _with_extensions(self, form: Any) -> Any:
        users = db.session.execute(
            db.select(PhoneUser).filter_by(tenant_id=self.tenant()).order_by(PhoneUser.extension)
        ).scalars()
        form.destination_extension.choices = [SelectChoice("", "— not routed —")] + [
            SelectChoice(u.extension, str(u)) for u in users
        ]
        return form

    def create_form(self, obj: Any = None) -> Any:
        return self._with_extensions(super().create_form(obj))

    def edit_form(self, obj: Any = None) -> Any:
        return self._with_extensions(super().edit_form(obj))

    def on_model_change(self, form: Any, model: Any, is_created: bool) -> None:
        model.destination_extension = model.destination_extension or None
        super().on_model_change(form, model, is_created)

    def check_unique(self, model: Any) -> None:
        clash = db.session.execute(
            db.select(Did.id).filter(
                Did.tenant_id == model.tenant_id,
                Did.number == model.number,
                Did.id != (model.id or 0),
            )
        ).first()
        if clash:
            raise ValidationError(f"DID {model.number} already exists.")
