"""The admin's form base (CSRF, escaped descriptions) and the one-button row form."""

from __future__ import annotations

from typing import Any

from flask import current_app, g
from flask_admin.form import SecureForm
from wtforms import Field, Form, HiddenField, ValidationError
from wtforms.csrf.core import CSRF
from wtforms.form import BaseForm
from wtforms.validators import InputRequired

from ..csrf import csrf_token, csrf_valid
from .text import plain_text

__all__ = ["ConnectWiseAdminForm", "PostForm"]


class _ConnectWiseCSRF(CSRF):
    """The package's one CSRF token (:mod:`flask_connectwise.csrf`): Flask-WTF's when it is
    installed, so ``CSRFProtect`` on the host app accepts the admin's posts."""

    def generate_csrf_token(self, csrf_token_field: Field) -> str:
        return csrf_token()

    def validate_csrf_token(self, form: BaseForm, field: Field) -> None:
        if g.get("csrf_valid", False):  # CSRFProtect checked this request already
            return
        if not csrf_valid(field.data):
            raise ValidationError(
                "The form has expired or was not sent from this site; reload the page and "
                "try again."
            )


class ConnectWiseAdminForm(SecureForm):  # type: ignore[misc]  # Flask-Admin is untyped
    """Flask-Admin's ``SecureForm`` with the package's CSRF token (Flask-WTF's when Flask-WTF is
    installed, so a host running ``CSRFProtect`` accepts it), honouring ``WTF_CSRF_ENABLED``.
    Field descriptions that are not :class:`~markupsafe.Markup` are escaped (see
    :func:`~flask_connectwise.admin.text.plain_text`)."""

    class Meta:
        @property
        def csrf(self) -> bool:
            return bool(current_app.config.get("WTF_CSRF_ENABLED", True))

        def build_csrf(self, form: Form) -> CSRF:
            return _ConnectWiseCSRF()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self:
            field.description = plain_text(field.description)


class PostForm(ConnectWiseAdminForm):
    """A one-button POST (test connection, toggle, retry) for one row."""

    id = HiddenField(validators=[InputRequired()])
    url = HiddenField()
