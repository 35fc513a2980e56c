"""TicketSearchField and ConnectWiseChangeLogging without a browser, against the sandbox."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import g, get_flashed_messages
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms.validators import DataRequired

from flask_connectwise.changelogging import change_note, is_secret_name
from flask_connectwise.fields import (
    TicketSearchField,
    outcome_message,
    parse_ticket_number,
    register_static,
)
from flask_connectwise.testing import configure_tenant
from tests.field_app import MEMBER, change_rows, make_field_app
from tests.hosts import TENANT_A, TENANT_B, cw_of

TOKEN = "a" * 24


@pytest.fixture
def app(tmp_path, connectwise_sandbox):
    app = make_field_app(f"sqlite:///{tmp_path / 'host.db'}", connectwise_sandbox)
    app.config["WTF_CSRF_ENABLED"] = False
    yield app
    with app.app_context():
        app.extensions["test_db"].engine.dispose()


@pytest.fixture
def db(app):
    return app.extensions["test_db"]


def make_form(fields: dict[str, Any], data: dict[str, str] | None = None) -> FlaskForm:
    form_class = type("TicketForm", (FlaskForm,), dict(fields))
    return form_class(formdata=MultiDict(data) if data is not None else None)


# -- rendering -------------------------------------------------------------------------------


def test_renders_a_combobox_with_its_assets_once_per_page(app):
    with app.test_request_context("/"):
        form = make_form(
            {
                "ticket": TicketSearchField("Ticket"),
                "other": TicketSearchField("Other ticket", validators=[DataRequired()]),
            }
        )
        html = str(form.ticket()) + str(form.other())
        label = str(form.ticket.label)
    assert html.count("<script") == 1 and html.count('rel="stylesheet"') == 1
    assert 'src="/connectwise-static/connectwise/ticket-search.js?v=' in html
    assert "defer" in html
    first = re.search(r'<input [^>]*id="ticket"[^>]*>', html).group(0)
    for attribute in (
        'role="combobox"',
        'aria-autocomplete="list"',
        'aria-expanded="false"',
        'aria-controls="ticket-listbox"',
        'name="ticket"',
        'type="text"',
        'autocomplete="off"',
    ):
        assert attribute in first
    assert 'id="ticket-listbox" role="listbox"' in html
    assert 'aria-label="Matching tickets" hidden' in html
    assert 'id="ticket-status" role="status" aria-live="polite"' in html
    assert 'data-search-url="/api/admin/tenant/tenant-a/connectwise/tickets/search"' in html
    assert 'data-debounce="250"' in html
    tokens = re.findall(r'name="ticket__idempotency" type="hidden" value="([^"]+)"', html)
    assert len(tokens) == 1 and len(tokens[0]) >= 16
    other = re.search(r'<input [^>]*id="other"[^>]*>', html).group(0)
    assert " required" in other and 'aria-required="true"' in other
    assert " required" not in first
    assert label == '<label for="ticket">Ticket</label>'


def test_each_render_gets_a_new_token_and_requests_get_the_assets_again(app):
    seen = []
    for _ in range(2):
        with app.test_request_context("/"):
            html = str(make_form({"ticket": TicketSearchField()}).ticket())
            seen.append(re.search(r'__idempotency" type="hidden" value="([^"]+)"', html)[1])
            assert html.count("<script") == 1
    assert seen[0] != seen[1]


def test_static_files_are_served(app):
    register_static(app)  # a second call does nothing
    http = app.test_client()
    js = http.get("/connectwise-static/connectwise/ticket-search.js")
    css = http.get("/connectwise-static/connectwise/ticket-search.css")
    assert js.status_code == 200 and b"role" in js.data and b"AbortController" in js.data
    assert css.status_code == 200 and b".cw-ticket-search" in css.data


def test_csp_nonce_from_config_or_g(app):
    with app.test_request_context("/"):
        g.csp_nonce = "from-g"
        html = str(make_form({"ticket": TicketSearchField()}).ticket())
    assert html.count('nonce="from-g"') == 2
    app.config["CONNECTWISE_CSP_NONCE"] = lambda: "from-config"
    with app.test_request_context("/"):
        html = str(make_form({"ticket": TicketSearchField()}).ticket())
    assert html.count('nonce="from-config"') == 2


def test_renders_nothing_and_validates_empty_when_the_feature_is_off(app):
    with app.app_context():
        cw_of(app).tenants.set_flag(TENANT_A, False)
    with app.test_request_context("/"):
        form = make_form(
            {"ticket": TicketSearchField("Ticket", validators=[DataRequired()])},
            {"ticket": "not a number"},
        )
        assert str(form.ticket()) == "" and str(form.ticket.label) == ""
        assert form.validate() and form.ticket.data is None
        assert form.ticket.log_change("nothing") is None
    assert change_rows(app) == []


def test_renders_nothing_for_a_tenant_without_credentials_or_without_a_tenant(app):
    with app.app_context():
        cw_of(app).tenants.set_flag(TENANT_B, True)
    with app.test_request_context("/"):
        form = make_form({"ticket": TicketSearchField(tenant=TENANT_B)})
        assert str(form.ticket()) == ""
        form = make_form({"ticket": TicketSearchField(tenant=lambda: None)})
        assert str(form.ticket()) == ""


def test_explicit_tenant_overrides_the_hook(app, connectwise_sandbox):
    configure_tenant(app, TENANT_B, connectwise_sandbox)
    app.extensions["test_cw"].current_tenant(lambda: None)
    with app.test_request_context("/"):
        html = str(make_form({"ticket": TicketSearchField(tenant=lambda: TENANT_B)}).ticket())
        assert "/api/admin/tenant/tenant-b/connectwise/tickets/search" in html
        assert str(make_form({"ticket": TicketSearchField()}).ticket()) == ""


# -- validation ------------------------------------------------------------------------------


def test_parse_ticket_number():
    assert parse_ticket_number("12345") == 12345
    assert parse_ticket_number(" #12345 ") == 12345
    assert parse_ticket_number("#12345 — Printer offline - front desk") == 12345
    for bad in ("printer", "12a", "#", "-5"):
        with pytest.raises(ValueError, match="Enter a ticket number"):
            parse_ticket_number(bad)
    with pytest.raises(ValueError, match="positive"):
        parse_ticket_number("0")
    with pytest.raises(ValueError, match="positive"):
        parse_ticket_number("99999999999")


@pytest.mark.parametrize(
    ("value", "required", "message"),
    [
        ("#999999", False, "Ticket #999999 was not found in ConnectWise"),
        ("printer", False, "Enter a ticket number such as 12345, or pick a ticket from the list"),
        ("0", True, "The ticket number must be a positive whole number"),
        ("", True, "This field is required."),
    ],
)
def test_validation_messages(app, value, required, message):
    validators = [DataRequired()] if required else []
    with app.test_request_context("/", method="POST"):
        form = make_form({"ticket": TicketSearchField(validators=validators)}, {"ticket": value})
        assert not form.validate()
        assert form.ticket.errors == [message]
        html = str(form.ticket())
    assert 'aria-invalid="true"' in html
    assert f'value="{value}"' in html


def test_valid_ticket_and_optional_empty(app):
    with app.test_request_context("/", method="POST"):
        form = make_form({"ticket": TicketSearchField()}, {"ticket": "#12345"})
        assert form.validate(), form.errors
        assert form.ticket.data == 12345
        form = make_form({"ticket": TicketSearchField()}, {"ticket": ""})
        assert form.validate() and form.ticket.data is None


def test_a_check_connectwise_refuses_is_a_clear_message(app, connectwise_sandbox):
    # Rate limited past the check's deadline (an outage or a slow ConnectWise is accepted
    # unverified instead: tests/test_degraded_checks.py).
    connectwise_sandbox.inject_fault(
        "service/tickets/*", "status", status=429, retry_after=30, count=10
    )
    with app.test_request_context("/", method="POST"):
        form = make_form({"ticket": TicketSearchField()}, {"ticket": "12345"})
        assert not form.validate()
    [message] = form.ticket.errors
    assert message.startswith(
        "Ticket #12345 could not be checked because ConnectWise is unavailable"
    )
    assert "Traceback" not in message and "Try again" in message


def test_an_outage_accepts_the_typed_number_unverified(app, connectwise_sandbox):
    connectwise_sandbox.inject_fault("service/tickets/*", "status", status=500, count=10)
    with app.test_request_context("/", method="POST"):
        form = make_form({"ticket": TicketSearchField()}, {"ticket": "12345"})
        assert form.validate(), form.errors
    assert form.ticket.data == 12345 and form.ticket.ticket_verified is False
    assert form.ticket.warning == (
        "ConnectWise is slow to answer: ticket #12345 will be checked when the change is logged."
    )


def test_the_selected_ticket_stays_shown_after_a_failed_validation(app):
    http = app.test_client()
    page = http.post("/voice", data={"upn": "", "ticket": "12345"}).get_data(as_text=True)
    ticket = re.search(r'<input [^>]*id="ticket"[^>]*>', page).group(0)
    assert 'value="#12345 — Printer offline - front desk HP LaserJet"' in ticket
    assert 'data-selected-id="12345"' in page
    assert "Contoso" in page or 'class="cw-ts-selected">' in page


# -- log_change ------------------------------------------------------------------------------


def test_log_change_is_recorded_in_the_session_and_delivered_after_commit(
    app, db, connectwise_sandbox
):
    before = len(connectwise_sandbox.notes(12345))
    data = {"ticket": "12345", "ticket__idempotency": TOKEN}
    with app.test_request_context("/", method="POST"):
        form = make_form({"ticket": TicketSearchField()}, data)
        assert form.validate()
        row = form.ticket.log_change("DID +1 555 0100 moved to ext. 204")
        assert row is not None and row.state == "pending"
        assert row in db.session.new
        assert len(connectwise_sandbox.notes(12345)) == before  # nothing before the commit
        db.session.commit()
        messages = get_flashed_messages(with_categories=True)
    notes = connectwise_sandbox.notes(12345)
    assert len(notes) == before + 1
    assert notes[-1]["text"].startswith("DID +1 555 0100 moved to ext. 204")
    assert notes[-1]["member"]["identifier"] == MEMBER
    assert messages == [("success", "Logged to ticket #12345: note added, 15 min logged.")]
    [stored] = change_rows(app)
    assert stored.state == "delivered" and stored.idempotency_key == f"form-{TOKEN}"
    assert stored.operator == MEMBER


def test_a_rolled_back_change_is_not_delivered(app, db, connectwise_sandbox):
    before = len(connectwise_sandbox.notes(12345))
    with app.test_request_context("/", method="POST"):
        form = make_form({"ticket": TicketSearchField()}, {"ticket": "12345"})
        assert form.validate()
        form.ticket.log_change("never mind")
        db.session.rollback()
        db.session.commit()
        assert get_flashed_messages() == []
    assert len(connectwise_sandbox.notes(12345)) == before
    assert change_rows(app) == []


def test_log_change_without_a_ticket_does_nothing(app, db):
    with app.test_request_context("/", method="POST"):
        form = make_form({"ticket": TicketSearchField()}, {"ticket": ""})
        assert form.validate()
        assert form.ticket.log_change("changed") is None
        db.session.commit()
    assert change_rows(app) == []


def test_a_double_submit_logs_once(app, connectwise_sandbox):
    before = len(connectwise_sandbox.notes(12345))
    times_before = len(connectwise_sandbox.time_entries(12345))
    http = app.test_client()
    form = {"upn": "jane@example.com", "ticket": "12345", "ticket__idempotency": TOKEN}
    assert http.post("/voice", data=form).status_code == 302
    assert http.post("/voice", data=form).status_code == 302
    page = http.get("/voice").get_data(as_text=True)
    assert len(connectwise_sandbox.notes(12345)) == before + 1
    assert len(connectwise_sandbox.time_entries(12345)) == times_before + 1
    assert "Logged to ticket #12345: note added, 15 min logged." in page
    assert "This form was already logged to ticket #12345." in page
    assert len(change_rows(app)) == 1


def test_a_failed_step_is_flashed_with_a_retry_promise(app, connectwise_sandbox):
    connectwise_sandbox.inject_fault("time/entries", "status", status=403)
    http = app.test_client()
    http.post("/voice", data={"upn": "jane@example.com", "ticket": "12345"})
    page = http.get("/voice").get_data(as_text=True)
    assert "Logged to ticket #12345: note added; the time entry (" in page
    assert "failed and will be retried." in page


def test_outcome_messages():
    ok = {"ok": True, "state": "confirmed"}
    skipped = {"ok": True, "state": "skipped", "skipped": True}
    failed = {"ok": False, "state": "failed", "error": "ConnectWise is down"}
    message = outcome_message({"ticketId": 7, "note": ok, "timeEntry": ok, "status": ok}, 0.25)
    assert message == ("Logged to ticket #7: note added, 15 min logged, status set.", "success")
    message = outcome_message({"ticketId": 7, "note": ok, "timeEntry": ok, "status": ok}, 1.5)
    assert message[0] == "Logged to ticket #7: note added, 1 h 30 min logged, status set."
    message = outcome_message(
        {"ticketId": 7, "note": failed, "timeEntry": skipped, "status": skipped}, None
    )
    assert message == (
        "Could not log to ticket #7 yet: the note (ConnectWise is down) failed. It will be retried.",
        "warning",
    )


# -- the Flask-Admin mixin -------------------------------------------------------------------


def test_note_text():
    note = change_note(
        "updated",
        "Device #1",
        [("extension", "201", "204"), ("sip_password", "a", "b"), ("enabled", False, True)],
    )
    assert note == (
        'Updated Device #1\n- extension: "201" → "204"\n- sip_password: changed (hidden)\n'
        "- enabled: no → yes"
    )
    assert change_note("updated", "Device #1", []) == "Updated Device #1 (no field changed)"
    assert change_note("created", "Device #2", [("name", None, "x"), ("apiKey", None, "k")]) == (
        'Created Device #2\n- name: "x"\n- apiKey: set (hidden)'
    )
    assert change_note("deleted", "Device #2", [("name", "x", None), ("note", None, None)]) == (
        'Deleted Device #2\n- name: "x"\n- note: (empty)'
    )


@pytest.mark.parametrize(
    "name",
    ["password", "sip_password", "secret", "client_secret", "token", "api_key", "apiKey", "key",
     "private_key", "privateKey", "pin", "credentials"],
)  # fmt: skip
def test_secret_looking_names(name):
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["name", "extension", "monkey", "keyboard_layout", "spinner"])
def test_ordinary_names(name):
    assert not is_secret_name(name)


def test_admin_create_and_edit_log_what_changed(app, connectwise_sandbox):
    http = app.test_client()
    page = http.get("/admin/device/new/").get_data(as_text=True)
    assert 'role="combobox"' in page and 'id="connectwise_ticket"' in page
    before = len(connectwise_sandbox.notes(12345))
    answer = http.post(
        "/admin/device/new/",
        data={
            "name": "sip-02",
            "extension": "202",
            "sip_password": "s3cret-value",
            "connectwise_ticket": "12345",
            "connectwise_ticket__idempotency": TOKEN,
        },
    )
    assert answer.status_code == 302
    notes = connectwise_sandbox.notes(12345)
    assert len(notes) == before + 1
    created = notes[-1]["text"]
    assert created.startswith('Created Device #2\n- Name: "sip-02"\n- Extension: "202"\n')
    assert "- SIP password: set (hidden)" in created and "s3cret-value" not in created

    page = http.get("/admin/device/edit/?id=1").get_data(as_text=True)
    assert 'id="connectwise_ticket"' in page
    answer = http.post(
        "/admin/device/edit/?id=1",
        data={
            "name": "sip-01",
            "extension": "205",
            "sip_password": "new-pass",
            "connectwise_ticket": "#12345",
        },
    )
    assert answer.status_code == 302
    updated = connectwise_sandbox.notes(12345)[-1]["text"]
    assert updated.startswith(
        'Updated Device #1\n- Extension: "201" → "205"\n- SIP password: changed (hidden)\n'
    )
    assert "hunter2" not in updated and "new-pass" not in updated
    assert len(connectwise_sandbox.notes(12345)) == before + 2
    flashed = http.get("/voice").get_data(as_text=True)
    assert "Logged to ticket #12345: note added, 15 min logged." in flashed


def test_admin_edit_without_a_ticket_logs_nothing(app, connectwise_sandbox):
    before = len(connectwise_sandbox.notes(12345))
    answer = app.test_client().post(
        "/admin/device/edit/?id=1", data={"name": "sip-01", "extension": "209"}
    )
    assert answer.status_code == 302
    assert len(connectwise_sandbox.notes(12345)) == before
    assert change_rows(app) == []


def test_admin_form_has_no_ticket_field_when_the_feature_is_off(app):
    with app.app_context():
        cw_of(app).tenants.set_flag(TENANT_A, False)
    page = app.test_client().get("/admin/device/new/").get_data(as_text=True)
    assert "connectwise_ticket" not in page and "ticket-search.js" not in page


def test_admin_delete_is_logged_only_with_the_hook(app, connectwise_sandbox):
    view = next(
        v for v in app.extensions["admin"][0]._views if getattr(v, "endpoint", "") == "device"
    )
    http = app.test_client()
    before = len(connectwise_sandbox.notes(12346))
    assert http.post("/admin/device/delete/", data={"id": "1"}).status_code == 302
    assert len(connectwise_sandbox.notes(12346)) == before and change_rows(app) == []

    with app.app_context():
        db = app.extensions["test_db"]
        device = app.extensions["test_device"](name="sip-09", sip_password="pw")
        db.session.add(device)
        db.session.commit()
        device_id = device.id
    view.connectwise_ticket_for_delete = lambda model: 12346
    try:
        answer = http.post("/admin/device/delete/", data={"id": str(device_id)})
        assert answer.status_code == 302
    finally:
        del view.connectwise_ticket_for_delete
    notes = connectwise_sandbox.notes(12346)
    assert len(notes) == before + 1
    assert notes[-1]["text"].startswith(
        f'Deleted Device #{device_id}\n- Name: "sip-09"\n- SIP password: set (hidden)'
    )
    with app.app_context():
        assert (
            app.extensions["test_db"].session.get(app.extensions["test_device"], device_id) is None
        )
