"""Row actions for the admin's list views."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import request
from flask_admin.model.template import BaseListRowAction
from jinja2.runtime import Context
from markupsafe import Markup

from .forms import PostForm

__all__ = ["PostRowAction"]


class PostRowAction(BaseListRowAction):  # type: ignore[misc]  # Flask-Admin is untyped
    """A row action that POSTs the row id (with the CSRF token) to one of the view's routes.

    ``when(row)``, if given, decides whether the row shows the action at all.
    """

    def __init__(
        self,
        endpoint: str,
        title: str,
        icon_class: str,
        *,
        when: Callable[[Any], bool] | None = None,
    ) -> None:
        super().__init__(title=title)
        self.endpoint = endpoint
        self.icon_class = icon_class
        self.when = when

    def render(self, context: Context, row_id: str, row: object) -> Markup:
        """The action's form, in the context of Flask-Admin's list template."""
        view = context.resolve("admin_view")
        if self.when is not None and not self.when(row):
            return Markup("")
        form = PostForm()
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
