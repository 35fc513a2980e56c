"""The change log (the outbox) as an admin view: read-only, with Retry for undelivered changes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from flask import current_app, flash, g
from flask_admin.contrib.sqla.filters import FilterEqual
from markupsafe import Markup
from werkzeug.wrappers import Response

from ..choices import load_board_statuses
from ..crypto import CryptoError
from ..errors import ConnectWiseError
from ..models import CONFIRMED, FAILED, SENT, SKIPPED, ChangeLogRow
from ..outbox import Step
from ..outbox.outcome import Outcome, refused_as_other_company
from ..tenants import IntegrationOffError
from ..ticketlinks import ticket_url
from ..wording import aside
from .base import Formatter, TenantScopedView, list_action, log, post_route
from .text import error_message
from .widgets import PostRowAction

__all__ = ["ChangeLogView"]

_STEP_LABELS = tuple((step, step.label.capitalize()) for step in Step)  # ("Time entry", ...)


def _step_remote(model: ChangeLogRow, step: Step) -> int | None:
    if step is Step.STATUS:
        return model.status_id
    return model.step(step).remote_id


def _status_name(view: Any, model: ChangeLogRow) -> str | None:
    """The change's status by the name the tenant's board map stored (``In Progress (Help
    Desk)``), or ``None`` when no name is known (reading ConnectWise here would slow every
    page)."""
    status_id = model.status_id
    if not status_id or view is None:
        return None
    names: dict[str, dict[int, str]] = g.setdefault("_cw_status_names", {})
    if model.tenant_id not in names:
        try:
            row = view.extension.tenants.credentials_row(model.tenant_id)
        except Exception:
            row = None
        names[model.tenant_id] = {
            choice.status_id: f"{choice.status_name} ({choice.board_label})"
            for choice in load_board_statuses(row.board_statuses if row is not None else None)
            if choice.status_name
        }
    return names[model.tenant_id].get(status_id)


def _done_as(view: Any, model: ChangeLogRow, step: Step) -> str:
    """What a confirmed step made: `` #901`` (the note's id), `` — In Progress (Help Desk)``
    (the status set, by name; ``#102`` only when no name is known)."""
    remote = _step_remote(model, step)
    if not remote:
        return ""
    if step is Step.STATUS:
        name = _status_name(view, model)
        if name:
            return f" — {name}"
    return f" #{remote}"


def clip(text: str, limit: int = 300) -> str:
    """``text`` cut to at most ``limit`` characters at a word boundary, ending with ``…``."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-—") + "…"


def _steps_html(view: Any, model: ChangeLogRow, limit: int | None) -> Markup:
    parts = []
    for step, label in _STEP_LABELS:
        columns = model.step(step)
        state = columns.state
        text = f"{label}: {state}"
        if state == CONFIRMED:
            text += _done_as(view, model, step)
        attempts = columns.attempts
        if attempts:
            text += f" ({attempts} {'try' if attempts == 1 else 'tries'})"
        error = columns.error
        if error and limit is not None:
            error = clip(error, limit)
        badge = {
            CONFIRMED: "success",
            SKIPPED: "secondary",
            FAILED: "danger",
            SENT: "warning",
        }.get(state, "info")
        item = Markup('<span class="badge badge-{}">{}</span>').format(badge, text)
        if error and state == SKIPPED:
            # Why the step was left out: information, not a failure (e.g. "status left as
            # is: no status set for board Voice Services").
            item += Markup(' <small class="text-muted cw-skipped">Skipped: {}</small>').format(
                error
            )
        elif error and state == CONFIRMED:
            # Done, with a word on how (e.g. where an overlapping time entry was placed).
            item += Markup(' <small class="text-muted cw-detail">{}</small>').format(error)
        elif error:
            item += Markup(' <small class="text-danger">{}</small>').format(error)
        parts.append(item)
    return Markup("<br>").join(parts)


def _steps(view: Any, context: object, model: ChangeLogRow, name: str) -> Markup:
    """The steps for the list: each error cut at a word boundary."""
    return _steps_html(view, model, 300)


def _steps_details(view: Any, context: object, model: ChangeLogRow, name: str) -> Markup:
    """The steps for the details page: each error whole (at most 500 characters)."""
    return _steps_html(view, model, None)


def _steps_export(view: Any, context: object, model: ChangeLogRow, name: str) -> str:
    """The steps as plain text, for exports (a cell holds no HTML)."""
    parts = []
    for step, label in _STEP_LABELS:
        columns = model.step(step)
        state = columns.state
        text = f"{label}: {state}" + (_done_as(view, model, step) if state == CONFIRMED else "")
        if state in (SKIPPED, CONFIRMED) and columns.error:
            text += f" {aside(columns.error)}"
        parts.append(text)
    return "; ".join(parts)


def _errors_text(model: ChangeLogRow) -> str:
    """The steps' errors; a skipped step's reason and a done step's detail are no error (the
    steps cell says them)."""
    errors = []
    for step, label in _STEP_LABELS:
        columns = model.step(step)
        if columns.error and columns.state not in (SKIPPED, CONFIRMED):
            errors.append(f"{label}: {columns.error}")
    return "; ".join(errors)


def _errors(view: object, context: object, model: ChangeLogRow, name: str) -> str:
    return _errors_text(model)


def _ticket(view: Any, context: object, model: ChangeLogRow, name: str) -> Markup | int:
    """The ticket number, linked to the ticket in ConnectWise (``CONNECTWISE_TICKET_URL``)."""
    sites: dict[str, tuple[str | None, str | None]] = g.setdefault("_cw_ticket_sites", {})
    if model.tenant_id not in sites:
        try:
            row = view.extension.tenants.credentials_row(model.tenant_id)
        except Exception:
            row = None
        sites[model.tenant_id] = (row.base_url, row.company_id) if row is not None else (None, None)
    base_url, company = sites[model.tenant_id]
    url = ticket_url(current_app.config, base_url, company, model.ticket_id)
    if url is None:
        return model.ticket_id
    return Markup(
        '<a href="{}" target="_blank" rel="noopener noreferrer" '
        'title="Open ticket #{} in ConnectWise">#{}</a>'
    ).format(url, model.ticket_id, model.ticket_id)


def _member(view: Any, context: object, model: ChangeLogRow, name: str) -> Markup | str:
    """The ConnectWise member's name, with the identifier the change was logged as."""
    identifier = model.member
    if not identifier:
        return ""
    names: dict[tuple[str, str], str | None] = g.setdefault("_cw_member_names", {})
    key = (model.tenant_id, identifier)
    if key not in names:
        # Nothing is sent to ConnectWise while the integration is off for the tenant.
        on = view.extension.tenants.is_enabled(model.tenant_id)
        names[key] = (
            view.extension.members.display_name(model.tenant_id, identifier) if on else None
        )
    shown = names[key]
    if not shown:
        return identifier
    return Markup('{} <small class="text-muted">({})</small>').format(shown, identifier)


def _status_text(view: Any, context: object, model: ChangeLogRow, name: str) -> str:
    """What happened to the ticket's status: the status set (by the name the tenant's board
    map stored, ``#102`` when no name is known), ``left as is: <reason>``, ``not set: <why>``,
    or the status still to be set."""
    columns = model.step(Step.STATUS)
    status = _status_name(view, model) or (f"#{model.status_id}" if model.status_id else None)
    if columns.state == CONFIRMED:
        return f"set to {status}" if status else "set"
    if columns.state == SKIPPED:
        if not columns.error:
            return "none"
        reason = columns.error.removeprefix("status left as is: ")
        return f"left as is: {reason}"
    if columns.state == FAILED:
        why = columns.error or "see Errors"
        return f"not set: {why}"
    if status:
        return f"{status}, not set yet"
    if getattr(model, "auto_status", False) is True:
        return "the status mapped to the ticket's board, not set yet"
    return "none"


def _time_text(view: object, context: object, model: ChangeLogRow, name: str) -> str:
    """``20 min`` (stored as hours: 0.3333)."""
    if not model.hours:
        return "none"
    minutes = round(model.hours * 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def _visibility_text(view: object, context: object, model: ChangeLogRow, name: str) -> str:
    visibility = model.visibility or ("internal" if model.internal else "discussion")
    return {
        "internal": "internal",
        "discussion": "discussion (visible to the customer)",
        "resolution": "resolution",
    }.get(visibility, visibility)


def _retryable(row: ChangeLogRow) -> bool:
    """Undelivered and not refused by our own company check (sending it again cannot help)."""
    return row.state != "delivered" and not refused_as_other_company(row)


class ChangeLogView(TenantScopedView[ChangeLogRow]):
    """The change log (the outbox): read-only, with a Retry action for undelivered changes."""

    tenant_action = "use"
    list_template = "connectwise/admin/change_log_list.html"
    details_template = "connectwise/admin/change_log_details.html"
    can_create = False
    can_edit = False
    can_delete = False
    can_view_details = True
    can_export = False
    column_list: ClassVar[list[str]] = [
        "reference",
        "tenant_id",
        "ticket_id",
        "operator",
        "member",
        "created_at",
        "state",
        "steps",
    ]
    column_details_list: ClassVar[list[str]] = [
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
    column_labels: ClassVar[dict[str, str]] = {
        "reference": "Change",
        "tenant_id": "Tenant",
        "ticket_id": "Ticket",
        "operator": "Operator",
        "member": "Member",
        "created_at": "Logged at",
        "state": "State",
        "steps": "Steps",
        "errors": "Errors",
        "note_text": "Note",
        "status_id": "Status",
        "hours": "Time",
        "internal": "Visibility",
    }
    column_formatters: ClassVar[dict[str, Formatter[ChangeLogRow]]] = {
        "steps": _steps,
        "errors": _errors,
        "ticket_id": _ticket,
        "member": _member,
    }
    column_formatters_detail: ClassVar[dict[str, Formatter[ChangeLogRow]]] = {
        "status_id": _status_text,
        "hours": _time_text,
        "internal": _visibility_text,
        "steps": _steps_details,
        "errors": _errors,
        "ticket_id": _ticket,
        "member": _member,
    }
    column_formatters_export: ClassVar[dict[str, Formatter[ChangeLogRow]]] = {
        "steps": _steps_export,
        "errors": _errors,
    }
    column_sortable_list: ClassVar[list[str]] = [
        "reference",
        "tenant_id",
        "ticket_id",
        "created_at",
        "state",
    ]
    column_searchable_list: ClassVar[list[str]] = ["reference", "operator", "member"]
    column_default_sort = ("created_at", True)
    column_extra_row_actions: ClassVar[list[PostRowAction]] = [
        PostRowAction(
            ".retry_view",
            "Retry the steps not done",
            "fa fa-refresh",
            label="Retry",
            when=_retryable,
        ),
    ]

    def __init__(self, model: type[ChangeLogRow], session: Any, *args: Any, **kwargs: Any) -> None:
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
        super().__init__(model, session, *args, **kwargs)

    def render(self, template: str, **kwargs: Any) -> str:
        model = kwargs.get("model")
        if isinstance(model, self.model):
            # The details page offers Retry by the list's rule (never for a change our own
            # company check refused for good).
            kwargs.setdefault("cw_retryable", _retryable(model))
        return super().render(template, **kwargs)

    def retry(self, row: ChangeLogRow) -> None:
        """Deliver the change's outstanding steps now and say what happened."""
        label = f"Change {row.reference} (ticket {row.ticket_id})"
        if not _retryable(row):
            if row.state == "delivered":
                flash(f"{label} was already delivered; nothing to retry.", "info")
            else:
                flash(Outcome.of(row).retry_summary(label), "error")
            return
        try:
            outcome = self.outbox.deliver(row)
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
        flash(outcome.retry_summary(label), "success" if outcome.delivered else "error")

    @post_route("/retry/")
    def retry_view(self) -> Response:
        row, form = self._row_from_post()
        if row is not None:
            self.retry(row)
        return self._back(form)

    @list_action("retry", "Retry the steps not done")
    def action_retry(self, ids: Iterable[str]) -> None:
        rows = self.rows_for_ids(ids)
        if not rows:
            flash("No change you may retry was selected.", "error")
        for row in rows:
            self.retry(row)
