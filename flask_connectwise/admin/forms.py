"""The admin's form base (CSRF, escaped descriptions) and the one-button row form."""

from __future__ import annotations

from typing import Any

from flask import current_app, g
from flask_admin.form import SecureForm
from wtforms import Field, Form, HiddenField, ValidationError
from wtforms.csrf.core import CSRF
from wtforms.validators import InputRequired

from .text import plain_text

__all__ = ["ConnectWiseAdminForm", "PostForm"]


# -- CSRF: Flask-WTF's token when it is installed, else Flask-Admin's session token ----------


class _FlaskWTFCSRF(CSRF):  # type: ignore[misc]  # WTForms is untyped
    """Flask-WTF tokens, so ``CSRFProtect`` on the host app accepts the admin's posts."""

    def generate_csrf_token(self, csrf_token_field: Field) -> str:
        from flask_wtf.csrf import generate_csrf

        return str(generate_csrf())

    def validate_csrf_token(self, form: Form, field: Field) -> None:
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


class ConnectWiseAdminForm(SecureForm):  # type: ignore[misc]  # Flask-Admin is untyped
    """Flask-Admin's ``SecureForm``, using Flask-WTF's CSRF token when Flask-WTF is installed
    (so a host running ``CSRFProtect`` accepts it) and honouring ``WTF_CSRF_ENABLED``.
    Field descriptions that are not :class:`~markupsafe.Markup` are escaped (see
    :func:`~flask_connectwise.admin.text.plain_text`)."""

    class Meta:
        @property
        def csrf(self) -> bool:
            return bool(current_app.config.get("WTF_CSRF_ENABLED", True))

        def build_csrf(self, form: Form) -> CSRF:
            if _have_flask_wtf():
                return _FlaskWTFCSRF()
            return super().build_csrf(form)  # type: ignore[misc]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self:
            field.description = plain_text(field.description)


class PostForm(ConnectWiseAdminForm):
    """A one-button POST (test connection, toggle, retry) for one row."""

    id = HiddenField(validators=[InputRequired()])
    url = HiddenField()
