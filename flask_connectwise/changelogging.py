"""``ConnectWiseChangeLogging``: a mixin that logs a host Flask-Admin view's changes to a ticket.

::

    class DeviceView(ConnectWiseChangeLogging, ModelView):
        pass

adds a ticket field (``connectwise_ticket``) at the end of the create and edit forms and, when
the operator picked a ticket, records a note such as::

    Updated Device #7
    - Name: "sip-01" → "sip-02"
    - SIP password: changed (hidden)

Each line names the field as the operator saw it: the form field's label (``form_args`` or
``column_labels``), else the column name made readable (``outbound_caller_id`` → "Outbound
caller ID"; common acronyms such as ID, DID, URL, UPN, PIN stay upper-case). Override
:meth:`connectwise_labels` to choose other words, :meth:`connectwise_subject` to name the record.

The note is recorded in ``on_model_change`` (``on_model_delete`` for deletions), so it commits
in the same transaction as the change itself, and it is delivered to ConnectWise right after
that commit. Old values are taken when the edit form is built (before the form fills the
model), falling back to SQLAlchemy's attribute history. Fields whose names look secret
(password, secret, token, key, …) are never shown.

Deletions are logged as ``Deleted <subject>`` with the record's last values when a ticket is
given. Flask-Admin's delete form (``POST …/delete/``, the list's row button) and action form
(``POST …/action/``, the list's bulk "Delete" action) gain the same optional ticket field: a
request carrying ``connectwise_ticket=<ticket number>`` (and optionally the
``connectwise_ticket__idempotency`` token) logs one note per deleted record to that ticket; the
ticket is checked like on the edit form, and a refused ticket stops the deletion with a
message. Flask-Admin's stock list template does not render that field: render
``delete_form.connectwise_ticket`` (resp. ``action_form.connectwise_ticket``) in your list
template, or return a ticket from :meth:`connectwise_ticket_for_delete` (used when the request
names none). Without a ticket a deletion is not logged. ``fast_mass_delete = True`` skips
``on_model_delete`` and therefore logs nothing.

Put the mixin before ``ModelView`` and, if you override ``on_model_change``/``on_model_delete``,
``edit_form``, ``scaffold_form``, ``get_delete_form``/``delete_form`` or
``get_action_form``/``action_form``, call ``super()``. With form rules, list
``connectwise_ticket``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from flask import g
from wtforms.fields.core import UnboundField

from .current import state
from .fields import TicketSearchField, report_to_operator

__all__ = ["ConnectWiseChangeLogging", "change_note", "field_label", "is_secret_name"]

#: How a hidden (secret-looking) field's update reads in a note.
HIDDEN_CHANGE = "changed (hidden)"
MASK = HIDDEN_CHANGE  # the old name
_SECRET_RE = re.compile(
    r"pass(word|wd|phrase)?|secret|token|credential|api_?key|private_?key|(^|_)(key|pin|pwd)s?($|_)",
    re.IGNORECASE,
)
_SNAPSHOTS = "_connectwise_snapshots"
_DELETE_FORM = "_connectwise_delete_form"
#: Words a readable column name keeps upper-case (``did_number`` → "DID number").
ACRONYMS = frozenset(
    {"id", "did", "url", "uri", "upn", "pin", "sip", "ip", "api", "mac", "dns", "uuid", "uid",
     "sms", "pbx", "ssid", "vlan", "cli", "sku", "vat", "iban", "cw", "csv", "pdf", "utc"}
)  # fmt: skip
_MAX_VALUE = 200


def is_secret_name(name: str) -> bool:
    """Whether a field called ``name`` probably holds a secret (its values are never shown)."""
    snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name)
    return bool(_SECRET_RE.search(snake))


def field_label(name: str) -> str:
    """A column name made readable: ``outbound_caller_id`` → ``"Outbound caller ID"``."""
    snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name)
    words = [w for w in re.split(r"[_\W]+", snake) if w]
    if not words:
        return name
    shown = [w.upper() if w.lower() in ACRONYMS else w.lower() for w in words]
    if not shown[0].isupper():
        shown[0] = shown[0].capitalize()
    return " ".join(shown)


def _show(value: Any) -> str:
    if value is None or value == "":
        return "(empty)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple | set | frozenset):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    text = str(value)
    if len(text) > _MAX_VALUE:
        text = text[: _MAX_VALUE - 1] + "…"
    if isinstance(value, str):
        return '"' + text.replace("\n", " ") + '"'
    return text


def change_note(
    action: str,
    subject: str,
    changes: Iterable[tuple[str, Any, Any]],
    *,
    masked: Iterable[str] = (),
    labels: Mapping[str, str] | None = None,
) -> str:
    """The note text: ``"Updated Device #7"`` then one line per field, ``old → new``.

    ``action`` is ``created``, ``updated`` or ``deleted``; for ``created`` and ``deleted`` each
    line shows the one value (new, resp. last). Names in ``masked`` or that look secret are
    shown as changed without their values. ``labels`` maps names to the words a line uses
    (a name without a label is shown as is).
    """
    hidden = set(masked)
    labels = labels or {}
    lines = [f"{action.capitalize()} {subject}"]
    for key, old, new in changes:
        name = labels.get(key) or key
        if key in hidden or is_secret_name(key):
            lines.append(f"- {name}: {'set (hidden)' if action != 'updated' else HIDDEN_CHANGE}")
        elif action == "created":
            lines.append(f"- {name}: {_show(new)}")
        elif action == "deleted":
            lines.append(f"- {name}: {_show(old)}")
        else:
            lines.append(f"- {name}: {_show(old)} → {_show(new)}")
    if len(lines) == 1 and action == "updated":
        lines[0] += " (no field changed)"
    return "\n".join(lines)


def _scalar(values: Any, collection: bool) -> Any:
    values = list(values or ())
    if collection:
        return values
    return values[0] if values else None


class ConnectWiseChangeLogging:
    """Mix into a Flask-Admin SQLAlchemy ``ModelView`` to log its changes to a ticket."""

    #: Name of the ticket field added to the create and edit forms.
    connectwise_ticket_field = "connectwise_ticket"
    #: Its label.
    connectwise_ticket_label = "ConnectWise ticket (optional)"
    #: Its validators (e.g. ``[DataRequired()]`` to make a ticket mandatory).
    connectwise_ticket_validators: tuple[Any, ...] = ()
    #: The tenant (a string or callable); ``None``: the extension's ``current_tenant`` hook.
    connectwise_tenant: Any = None
    #: Hours of the time entry; ``None``: the tenant's default minutes.
    connectwise_hours: float | None = None
    #: Status to set on the ticket; ``None``: the tenant's auto-update setting decides.
    connectwise_status_id: int | None = None
    #: Fields whose values are never shown (on top of secret-looking names).
    connectwise_masked_fields: tuple[str, ...] = ()
    #: Fields never listed (e.g. ``("updated_at",)``).
    connectwise_ignored_fields: tuple[str, ...] = ()

    # -- form --------------------------------------------------------------------------------

    def scaffold_form(self) -> Any:
        form_class = super().scaffold_form()  # type: ignore[misc]
        tenant = self.connectwise_tenant
        setattr(
            form_class,
            self.connectwise_ticket_field,
            TicketSearchField(
                self.connectwise_ticket_label,
                validators=list(self.connectwise_ticket_validators),
                tenant=tenant,
            ),
        )
        return form_class

    def edit_form(self, obj: Any = None) -> Any:
        form = super().edit_form(obj)  # type: ignore[misc]
        if obj is not None:
            g.setdefault(_SNAPSHOTS, {})[id(obj)] = self.connectwise_values(obj)
        return self._connectwise_hide_if_off(form)

    def create_form(self, obj: Any = None) -> Any:
        form = super().create_form(obj)  # type: ignore[misc]
        return self._connectwise_hide_if_off(form)

    def _connectwise_hide_if_off(self, form: Any) -> Any:
        field = getattr(form, self.connectwise_ticket_field, None)
        if isinstance(field, TicketSearchField) and not field.enabled:
            field.warn_if_dropped()  # turned off (or credentials gone) since the form was shown
            del form[self.connectwise_ticket_field]
        return form

    # -- what changed ------------------------------------------------------------------------

    def connectwise_subject(self, model: Any) -> str:
        """How the note names the record: ``Device #7``."""
        identity = sa.inspect(model).identity
        key = ", ".join(str(v) for v in identity) if identity else "?"
        return f"{type(model).__name__} #{key}"

    def connectwise_labels(self, model: Any, form: Any = None) -> dict[str, str]:
        """The words each note line uses for ``model``'s fields, by attribute name.

        The form field's label (``form`` when given, else the edit form's class), unless it is
        only Flask-Admin's automatic one ("Outbound Caller Id"); then ``column_labels``; then
        :func:`field_label` ("Outbound caller ID").
        """
        column_labels = getattr(self, "column_labels", None) or {}
        prettify = getattr(self, "_prettify_name", None)
        form_class = getattr(self, "_edit_form_class", None)
        labels: dict[str, str] = {}
        for key, _collection in self._connectwise_attrs(model):
            text: Any = None
            if form is not None and key in form:
                text = form[key].label.text
            elif form_class is not None:
                unbound = getattr(form_class, key, None)
                if isinstance(unbound, UnboundField):
                    text = unbound.kwargs.get("label") or (
                        unbound.args[0] if unbound.args else None
                    )
            text = str(text).strip() if text is not None and not isinstance(text, list) else ""
            if text and callable(prettify) and text == prettify(key):
                text = ""
            labels[key] = text or str(column_labels.get(key) or "") or field_label(key)
        return labels

    def _connectwise_attrs(self, model: Any) -> list[tuple[str, bool]]:
        mapper = sa.inspect(type(model))
        skip = {self.connectwise_ticket_field, *self.connectwise_ignored_fields}
        primary = {c.key for c in mapper.primary_key}
        attrs: list[tuple[str, bool]] = []
        for prop in mapper.column_attrs:
            if prop.key not in skip and prop.key not in primary:
                attrs.append((prop.key, False))
        for rel in mapper.relationships:
            if rel.key not in skip:
                attrs.append((rel.key, bool(rel.uselist)))
        return attrs

    def connectwise_values(self, model: Any) -> dict[str, Any]:
        """The model's current values (collections as lists), by attribute name."""
        values: dict[str, Any] = {}
        for key, collection in self._connectwise_attrs(model):
            value = getattr(model, key, None)
            values[key] = list(value) if collection and value is not None else value
        return values

    def connectwise_changes(
        self, model: Any, *, before: Mapping[str, Any] | None = None
    ) -> list[tuple[str, Any, Any]]:
        """``(name, old, new)`` for each changed attribute of ``model``."""
        state_ = sa.inspect(model)
        changes: list[tuple[str, Any, Any]] = []
        for key, collection in self._connectwise_attrs(model):
            if before is not None and key in before:
                old = before[key]
                new = getattr(model, key, None)
                if collection and new is not None:
                    new = list(new)
                if old != new:
                    changes.append((key, old, new))
                continue
            history = state_.attrs[key].history
            if history.has_changes():
                old = _scalar(list(history.unchanged) + list(history.deleted), collection)
                new = _scalar(list(history.unchanged) + list(history.added), collection)
                changes.append((key, old, new))
        return changes

    # -- Flask-Admin hooks -------------------------------------------------------------------

    def on_model_change(self, form: Any, model: Any, is_created: bool) -> None:
        super().on_model_change(form, model, is_created)  # type: ignore[misc]
        field = getattr(form, self.connectwise_ticket_field, None)
        if not isinstance(field, TicketSearchField) or field.data is None:
            return
        before = g.get(_SNAPSHOTS, {}).pop(id(model), None)
        if is_created:
            # Flask-Admin 2 takes the db object or (deprecated) its session.
            session = getattr(self.session, "session", self.session)  # type: ignore[attr-defined]
            session.flush()  # type: ignore[union-attr]  # the new id, and column defaults
            changes = [(k, None, v) for k, v in self.connectwise_values(model).items()]
            changes = [c for c in changes if c[2] not in (None, "", [])]
            action = "created"
        else:
            changes = self.connectwise_changes(model, before=before)
            action = "updated"
        note = change_note(
            action,
            self.connectwise_subject(model),
            changes,
            masked=self.connectwise_masked_fields,
            labels=self.connectwise_labels(model, form),
        )
        field.log_change(note, hours=self.connectwise_hours, status_id=self.connectwise_status_id)

    # -- deletions -----------------------------------------------------------------------------

    def _connectwise_with_ticket(self, form_class: Any) -> Any:
        """``form_class`` plus an optional ticket field (never required: a delete must work)."""
        field = TicketSearchField(self.connectwise_ticket_label, tenant=self.connectwise_tenant)
        return type(form_class.__name__, (form_class,), {self.connectwise_ticket_field: field})

    def get_delete_form(self) -> Any:
        return self._connectwise_with_ticket(super().get_delete_form())  # type: ignore[misc]

    def get_action_form(self) -> Any:
        return self._connectwise_with_ticket(super().get_action_form())  # type: ignore[misc]

    def delete_form(self) -> Any:
        form = super().delete_form()  # type: ignore[misc]
        g.setdefault(_DELETE_FORM, form)
        return form

    def action_form(self, obj: Any = None) -> Any:
        form = super().action_form(obj)  # type: ignore[misc]
        g.setdefault(_DELETE_FORM, form)
        return form

    def connectwise_ticket_for_delete(self, model: Any) -> int | None:
        """The ticket a deletion is logged to when the request names none.

        ``None`` (the default): a deletion without ``connectwise_ticket`` is not logged.
        """
        return None

    def on_model_delete(self, model: Any) -> None:
        super().on_model_delete(model)  # type: ignore[misc]
        values = self.connectwise_values(model)
        form = g.get(_DELETE_FORM)
        field = getattr(form, self.connectwise_ticket_field, None) if form is not None else None
        if isinstance(field, TicketSearchField) and field.data is not None:
            note = self._connectwise_delete_note(model, values)
            token = field.submitted_token
            if token:  # one note per record of a bulk delete, each with its own key
                identity = repr(sa.inspect(model).identity).encode()
                field.submitted_token = f"{token}-{hashlib.sha256(identity).hexdigest()[:16]}"
            try:
                field.log_change(
                    note, hours=self.connectwise_hours, status_id=self.connectwise_status_id
                )
            finally:
                field.submitted_token = token
            return
        ticket_id = self.connectwise_ticket_for_delete(model)
        if not ticket_id:
            return
        tenant: Any = self.connectwise_tenant
        st = state()
        tenant = tenant() if callable(tenant) else tenant
        tenant = tenant if tenant is not None else st.extension.tenant()
        if not tenant or not st.tenants.is_enabled(str(tenant)):
            return
        note = self._connectwise_delete_note(model, values)
        member = st.extension.member()
        row, created = st.outbox.record(
            str(tenant),
            int(ticket_id),
            note,
            member=member,
            hours=self.connectwise_hours,
            status_id=self.connectwise_status_id,
            operator=member,
        )
        if created:
            st.outbox.deliver_after_commit(row, report_to_operator)

    def _connectwise_delete_note(self, model: Any, values: Mapping[str, Any]) -> str:
        return change_note(
            "deleted",
            self.connectwise_subject(model),
            [(k, v, None) for k, v in values.items() if v not in (None, "", [])],
            masked=self.connectwise_masked_fields,
            labels=self.connectwise_labels(model),
        )
