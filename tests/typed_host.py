"""A small host app written against the public API only, type-checked by ``test_typing.py``.

The suite never imports it: ``mypy --strict`` (with ``disallow_any_expr`` for this module) reads
it to prove an integrator's type checker sees real types for ``ConnectWise``,
``TicketSearchField``, the records and the model rows. ``assert_type`` pins each type exactly
(``Any`` would not match); values are never assigned to annotated names, which would hide an
``Any``.
"""

from __future__ import annotations

from typing import assert_type

from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from wtforms import Form, StringField

from flask_connectwise import ConnectWise, ConnectWiseClient, Ticket, TicketSearchField
from flask_connectwise.models import ChangeLogRow, CredentialsRow, StepColumns
from flask_connectwise.outbox import Step


class NumberChangeForm(Form):
    """A host form: a ticket picker beside the host's own field."""

    extension = StringField("Extension")
    ticket = TicketSearchField("ConnectWise ticket")


def create_app() -> Flask:
    app = Flask("typed-host")
    db = SQLAlchemy()
    db.init_app(app)
    cw = ConnectWise()
    cw.init_app(app, db=db)

    @cw.authorize
    def authorize(tenant_id: str, action: str) -> bool:
        return action == "use" and tenant_id == "acme"

    @cw.current_tenant
    def current_tenant() -> str | None:
        return "acme"

    @cw.current_member
    def current_member() -> str | None:
        return "jdoe"

    @cw.may_act_as
    def may_act_as(tenant_id: str, operator: str | None, member: str) -> bool:
        return operator == member

    assert_type(authorize("acme", "use"), bool)
    assert_type(may_act_as("acme", "jdoe", "jdoe"), bool)
    assert_type(current_tenant(), str | None)
    return app


def log_number_change(form: NumberChangeForm) -> int | None:
    """What a host view does after saving its own row: log the change on the ticket."""
    assert_type(form.ticket, TicketSearchField)
    row = form.ticket.log_change(f"Extension changed to {form.extension.data}", hours=0.25)
    assert_type(row, ChangeLogRow | None)
    if row is None:
        return None
    note = row.step(Step.NOTE)
    assert_type(note, StepColumns)
    assert_type(note.state, str)
    assert_type(row.step(Step.TIME).attempts, int)
    assert_type(row.hours, float | None)
    return row.ticket_id if note.state and row.reference else None


def find_tickets(cw: ConnectWise, words: str) -> list[str]:
    """Search tickets and read the records' fields."""
    tickets = cw.search_tickets("acme", words, limit=5)
    assert_type(tickets, list[Ticket])
    lines = []
    for ticket in tickets:
        assert_type(ticket.id, int)
        assert_type(ticket.summary, str)
        assert_type(ticket.company, str | None)
        assert_type(ticket.closed, bool)
        lines.append(f"#{ticket.id} {ticket.summary} ({ticket.company or 'no company'})")
    return lines


def log_directly(cw: ConnectWise, ticket_id: int) -> bool:
    """Log a change without a form; read the per-step outcome and the tenant's client."""
    outcome = cw.log_change("acme", ticket_id, "Rebooted the phone", hours=0.5)
    assert_type(outcome, dict[str, object])
    client = cw.client_for("acme")
    assert_type(client, ConnectWiseClient)
    assert_type(cw.is_enabled("acme"), bool)
    return outcome.get("state") == "delivered" and client.base_url != ""


def credentials_hint(cw: ConnectWise, db: SQLAlchemy) -> str | None:
    """Read a model row through the extension's typed model classes."""
    model = cw.models.Credentials
    assert_type(model, type[CredentialsRow])
    assert_type(cw.models.ChangeLog, type[ChangeLogRow])
    row = db.session.get(model, 1)
    assert_type(row, CredentialsRow | None)
    if row is None:
        return None
    assert_type(row.public_key_hint, str)
    assert_type(row.default_status_id, int | None)
    return row.public_key_hint
