"""Operator feedback without a browser: a replayed submit shows the stored change's outcome,
and a ticket dropped because the feature was turned off (or the credentials removed) while the
form was open is a warning, with nothing recorded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.example_helpers import CONTOSO_OPERATOR, dispose, make_example_app, set_flag
from tests.field_app import change_rows, make_field_app
from tests.hosts import TENANT_A

TOKEN = "b" * 24


@pytest.fixture
def app(tmp_path, connectwise_sandbox):
    app = make_field_app(f"sqlite:///{tmp_path / 'host.db'}", connectwise_sandbox)
    app.config["WTF_CSRF_ENABLED"] = False
    yield app
    with app.app_context():
        app.extensions["test_db"].engine.dispose()


def flag(app: Flask, enabled: bool) -> None:
    with app.app_context():
        app.extensions["test_cw"].tenants.set_flag(TENANT_A, enabled)


def remove_credentials(app: Flask) -> None:
    with app.app_context():
        cw, db = app.extensions["test_cw"], app.extensions["test_db"]
        db.session.query(cw.models.Credentials).filter_by(tenant_id=TENANT_A).delete()
        db.session.commit()
        cw.tenants.forget_client(TENANT_A)
        cw.tenants.forget_tenant(TENANT_A)


def name_tenants(app: Flask) -> None:
    app.extensions["test_cw"].tenant_name(lambda tenant: "Contoso" if tenant == TENANT_A else None)


# -- replayed submit ---------------------------------------------------------------------------


def test_a_replayed_submit_shows_the_stored_outcome(app, connectwise_sandbox):
    """The second POST comes from a fresh session (the first response's flashes are lost, as
    when a browser drops the first response of a double click): it still says what happened."""
    before = len(connectwise_sandbox.notes(12345))
    form = {"upn": "jane@example.com", "ticket": "12345", "ticket__idempotency": TOKEN}
    assert app.test_client().post("/voice", data=form).status_code == 302
    again = app.test_client()
    assert again.post("/voice", data=form).status_code == 302
    page = again.get("/voice").get_data(as_text=True)
    assert (
        "This form was already logged to ticket #12345. "
        "Logged to ticket #12345: note added, 15 min logged." in page
    )
    assert len(connectwise_sandbox.notes(12345)) == before + 1
    assert len(change_rows(app)) == 1


def test_a_replay_of_a_change_still_being_sent_says_so(app, connectwise_sandbox):
    from flask_connectwise.fields import replay_message
    from flask_connectwise.models import ChangeState

    with app.app_context():
        cw = app.extensions["test_cw"]
        row, _ = cw.outbox.record(TENANT_A, 12345, "pending", idempotency_key=f"form-{TOKEN}")
        assert row.state == ChangeState.PENDING
        message, category = replay_message(row)
    assert (message, category) == (
        "This form was already logged to ticket #12345. Logging to ticket #12345…",
        "info",
    )


def test_a_replayed_admin_edit_shows_the_stored_outcome(app, connectwise_sandbox):
    before = len(connectwise_sandbox.notes(12345))
    form = {
        "name": "sip-02",
        "extension": "205",
        "connectwise_ticket": "12345",
        "connectwise_ticket__idempotency": TOKEN,
    }
    assert app.test_client().post("/admin/device/edit/?id=1", data=form).status_code == 302
    again = app.test_client()
    assert again.post("/admin/device/edit/?id=1", data=form).status_code == 302
    page = again.get("/admin/device/").get_data(as_text=True)
    assert "Logged to ticket #12345: note added" in page
    assert len(connectwise_sandbox.notes(12345)) == before + 1
    assert len(change_rows(app)) == 1


@pytest.fixture
def example(tmp_path: Path, connectwise_sandbox: Any) -> Iterator[Flask]:
    app = make_example_app(tmp_path, connectwise_sandbox, WTF_CSRF_ENABLED=False)
    yield app
    dispose(app)


def test_a_double_submit_on_the_dashboard_shows_the_outcome_not_nothing_changed(
    example, connectwise_sandbox
):
    from tests.test_example_app import log_in

    before = len(connectwise_sandbox.notes(12345))
    form = {
        "upn": "sam.ortiz@contoso.example",
        "phone_number": "+1 425 555 0177",
        "voice_routing_policy": "Emergency-Only",
        "dial_plan": "Global",
        "ticket": "12345",
        "ticket__idempotency": TOKEN,
    }
    first = example.test_client()
    log_in(first, CONTOSO_OPERATOR)
    assert first.post("/admin/", data=form).status_code == 302
    second = example.test_client()
    log_in(second, CONTOSO_OPERATOR)
    replay = second.post("/admin/", data=form)
    page = second.get(replay.headers["Location"]).get_data(as_text=True)
    assert "Nothing changed" not in page
    assert "Logged to ticket #12345: note added, 15 min logged, status set." in page
    assert "Voice configuration saved for sam.ortiz@contoso.example" in page
    assert len(connectwise_sandbox.notes(12345)) == before + 1


# -- feature off / credentials gone while the form was open ------------------------------------


def test_flag_turned_off_while_the_form_was_open_warns_and_records_nothing(
    app, connectwise_sandbox
):
    name_tenants(app)
    http = app.test_client()
    assert "cw-ticket-search" in http.get("/voice").get_data(as_text=True)
    flag(app, False)
    before = len(connectwise_sandbox.notes(12345))
    data = {"upn": "jane@example.com", "ticket": "12345", "ticket__idempotency": TOKEN}
    assert http.post("/voice", data=data).status_code == 302
    page = http.get("/voice").get_data(as_text=True)
    assert "Not logged to #12345: the ConnectWise integration is off for Contoso" in page
    assert page.count("Not logged to #12345") == 1
    assert change_rows(app) == [] and len(connectwise_sandbox.notes(12345)) == before


def test_credentials_removed_while_the_form_was_open_warn_with_the_tenant_id(
    app, connectwise_sandbox
):
    http = app.test_client()
    assert "cw-ticket-search" in http.get("/voice").get_data(as_text=True)
    remove_credentials(app)
    data = {"upn": "jane@example.com", "ticket": "#12345"}
    assert http.post("/voice", data=data).status_code == 302
    page = http.get("/voice").get_data(as_text=True)
    assert f"Not logged to #12345: ConnectWise is not configured for {TENANT_A}" in page
    assert change_rows(app) == []


def test_no_warning_without_a_ticket_or_when_the_form_was_shown_without_one(app):
    flag(app, False)
    http = app.test_client()
    assert http.post("/voice", data={"upn": "jane@example.com", "ticket": ""}).status_code == 302
    assert http.post("/voice", data={"upn": "jane@example.com"}).status_code == 302
    assert "Not logged" not in http.get("/voice").get_data(as_text=True)


def test_the_admin_mixin_warns_when_the_flag_was_turned_off(app, connectwise_sandbox):
    name_tenants(app)
    flag(app, False)
    http = app.test_client()
    form = {"name": "sip-03", "extension": "206", "connectwise_ticket": "12345"}
    assert http.post("/admin/device/edit/?id=1", data=form).status_code == 302
    page = http.get("/admin/device/").get_data(as_text=True)
    assert "Not logged to #12345: the ConnectWise integration is off for Contoso" in page
    assert change_rows(app) == []


def test_the_example_app_names_the_tenant(example, connectwise_sandbox):
    from tests.test_example_app import log_in

    client = example.test_client()
    log_in(client, CONTOSO_OPERATOR)
    set_flag(example, "contoso", False)
    form = {
        "upn": "sam.ortiz@contoso.example",
        "phone_number": "+1 425 555 0178",
        "voice_routing_policy": "Global",
        "dial_plan": "Global",
        "ticket": "12345",
    }
    saved = client.post("/admin/", data=form, follow_redirects=True).get_data(as_text=True)
    assert "Not logged to #12345: the ConnectWise integration is off for Contoso Ltd" in saved
