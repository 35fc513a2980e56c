"""Row actions for the admin's list views; the credentials form's company picker and board map."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from flask import request
from flask_admin.model.template import BaseListRowAction
from jinja2.runtime import Context
from markupsafe import Markup
from wtforms import Field

from ..choices import CompanyChoice, company_json
from .forms import PostForm

__all__ = ["BoardStatusField", "CompanyPickerField", "PostRowAction"]


class PostRowAction(BaseListRowAction):  # type: ignore[misc]  # Flask-Admin is untyped
    """A row action that POSTs the row id (with the CSRF token) to one of the view's routes.

    ``when(row)``, if given, decides whether the row shows the action at all. ``label`` is the
    button's visible text beside its icon (a string, or ``label(row)``, e.g. "Turn off" for a
    row that is on); ``title`` the longer tooltip.
    """

    def __init__(
        self,
        endpoint: str,
        title: str,
        icon_class: str,
        *,
        label: str | Callable[[Any], str] | None = None,
        when: Callable[[Any], bool] | None = None,
    ) -> None:
        super().__init__(title=title)
        self.endpoint = endpoint
        self.icon_class = icon_class
        self.label = label
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
            'class="btn btn-link p-0 cw-row-action"><span class="{icon}" aria-hidden="true">'
            '</span> <span class="cw-row-action-label">{label}</span></button></form>'
        ).format(
            url=url,
            id=row_id,
            back=request.full_path if request else "",
            token=token,
            title=self.title or "",
            icon=self.icon_class,
            label=self.label_for(row),
        )

    def label_for(self, row: object) -> str:
        """The button's visible text for ``row`` (the title when no label was given)."""
        if callable(self.label):
            return self.label(row)
        return self.label or self.title or ""


class CompanyPickerField(Field):
    """The tenant's ConnectWise companies: a checkbox per company (the stored ones, and those a
    search added), plus a text box for company ids typed by hand (works without JavaScript).

    ``data`` is the list of raw values: a JSON ``{id, identifier, name}`` per ticked box, or an
    id typed by hand; :class:`~flask_connectwise.credentials.CredentialsInput` validates them.
    ``sent`` says whether the form carried the picker at all (a post without it keeps the
    stored companies).
    """

    def __init__(self, label: str | None = None, **kwargs: Any) -> None:
        super().__init__(label, **kwargs)
        self.companies: list[CompanyChoice] = []
        self.search_url = ""
        self.sent = False
        self.data: list[str] = []

    def process(self, formdata: Any, data: Any = None, extra_filters: Any = None) -> None:
        self.process_errors = []
        self.sent = formdata is not None and f"{self.name}-shown" in formdata
        if formdata is not None and self.sent:
            values = [str(v) for v in formdata.getlist(self.name)]
            typed = str(formdata.get(f"{self.name}-ids", ""))
            values.extend(part for part in re.split(r"[\s,;]+", typed) if part)
            self.data = values
        else:
            self.data = [json.dumps(company_json(c)) for c in (data or [])]

    def raw_values(self) -> list[Any]:
        """What ``companies`` of the JSON API would carry: objects or ids."""
        result: list[Any] = []
        for value in self.data:
            try:
                item = json.loads(value)
            except ValueError:
                item = value
            result.append(item if isinstance(item, dict) else value)
        return result

    def checked_ids(self) -> set[int]:
        ids = set()
        for item in self.raw_values():
            value = item.get("id") if isinstance(item, dict) else item
            if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
                ids.add(int(value))
        return ids

    def __call__(self, **kwargs: Any) -> Markup:
        checked = self.checked_ids()
        boxes = []
        for company in self.companies:
            boxes.append(
                Markup(
                    '<div class="form-check"><label class="form-check-label">'
                    '<input class="form-check-input" type="checkbox" name="{name}" '
                    'value="{value}"{checked}> {label}</label></div>'
                ).format(
                    name=self.name,
                    value=json.dumps(company_json(company)),
                    checked=Markup(" checked") if company.id in checked else "",
                    label=_company_label(company),
                )
            )
        return Markup(
            '<div class="cw-company-picker" id="{name}-picker" data-search-url="{url}">'
            '<input type="hidden" name="{name}-shown" value="1">'
            '<div class="cw-company-choices">{boxes}</div>'
            '<div class="input-group mt-2 cw-company-search-row">'
            '<input type="search" class="form-control cw-company-search" id="{name}-search" '
            'placeholder="Search ConnectWise companies by name" aria-label="Search companies">'
            '<div class="input-group-append"><button type="button" '
            'class="btn btn-outline-secondary cw-company-search-button">Search</button></div>'
            '</div><div class="cw-company-results" aria-live="polite"></div>'
            '<label class="mt-2 d-block">Or add company ids: <input type="text" '
            'class="form-control" name="{name}-ids" id="{name}-ids" placeholder="e.g. 250, 251">'
            "</label></div>"
        ).format(name=self.name, url=self.search_url, boxes=Markup("").join(boxes))


def _company_label(company: CompanyChoice) -> str:
    if company.identifier and company.name:
        return f"{company.name} ({company.identifier})"
    return company.label


class BoardStatusField(Field):
    """For each active board, a select of its statuses (blank: leave the status as is).

    ``boards`` (set by the view) is ``[(board id, board name, [(status id, name), ...])]``;
    ``data`` maps the raw board id (text from the form) to the raw status id.
    """

    def __init__(self, label: str | None = None, **kwargs: Any) -> None:
        super().__init__(label, **kwargs)
        self.boards: list[tuple[int, str, list[tuple[int, str]]]] = []
        #: What the table says when there is no board (set by the view).
        self.empty_text = "No boards to show."
        self.sent = False
        self.data: dict[str, str] = {}

    def process(self, formdata: Any, data: Any = None, extra_filters: Any = None) -> None:
        self.process_errors = []
        prefix = f"{self.name}-"
        self.sent = formdata is not None and f"{self.name}-shown" in formdata
        if formdata is not None and self.sent:
            self.data = {
                key[len(prefix) :]: str(formdata.get(key) or "")
                for key in formdata
                if key.startswith(prefix) and key != f"{self.name}-shown"
            }
        else:
            self.data = {str(c.board_id): str(c.status_id) for c in (data or [])}

    def raw_values(self) -> list[dict[str, Any]]:
        """What ``boardStatuses`` of the JSON API would carry (names from ``boards``)."""
        names = {str(b): (name, dict(statuses)) for b, name, statuses in self.boards}
        result = []
        for board, status in self.data.items():
            if not status:
                continue
            board_name, statuses = names.get(board, ("", {}))
            status_name = statuses.get(int(status), "") if status.isdigit() else ""
            result.append(
                {
                    "boardId": board,
                    "statusId": status,
                    "boardName": board_name,
                    "statusName": status_name,
                }
            )
        return result

    def __call__(self, **kwargs: Any) -> Markup:
        rows = []
        for board_id, board_name, statuses in self.boards:
            current = self.data.get(str(board_id), "")
            options = [Markup('<option value="">— leave the status as is —</option>')]
            for status_id, status_name in statuses:
                options.append(
                    Markup('<option value="{v}"{s}>{n}</option>').format(
                        v=status_id,
                        s=Markup(" selected") if str(status_id) == current else "",
                        n=status_name,
                    )
                )
            rows.append(
                Markup(
                    '<tr><th scope="row"><label for="{name}-{b}">{board}</label></th><td>'
                    '<select class="form-control" name="{name}-{b}" id="{name}-{b}">{opts}'
                    "</select></td></tr>"
                ).format(
                    name=self.name, b=board_id, board=board_name, opts=Markup("").join(options)
                )
            )
        if not rows:
            rows.append(
                Markup('<tr><td colspan="2" class="text-muted">{}</td></tr>').format(
                    self.empty_text
                )
            )
        return Markup(
            '<input type="hidden" name="{name}-shown" value="1">'
            '<table class="table table-sm cw-board-statuses"><tbody>{rows}</tbody></table>'
        ).format(name=self.name, rows=Markup("").join(rows))
