"""Cloud ConnectWise can answer bad credentials with 404: the client confirms a 404 with
``system/info`` and says "credentials", never "Ticket not found" (issue 13 item 5)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import responses

from flask_connectwise import errors
from flask_connectwise.client import ConnectWiseClient
from flask_connectwise.outbox.outcome import Step
from tests.client_doubles import API
from tests.hosts import cw_of
from tests.json_api import configure

NOT_FOUND = {"code": "NotFound", "message": "Ticket 7 not found"}


@responses.activate
def test_404_with_failing_system_info_is_an_auth_error(make_client):
    responses.get(f"{API}/service/tickets/7", status=404, json=NOT_FOUND)
    info = responses.get(f"{API}/system/info", status=404, json={"code": "NotFound"})
    with pytest.raises(errors.AuthenticationError, match="rejected the credentials") as caught:
        make_client().get_ticket(7)
    assert "not found" not in str(caught.value).split(":")[0].lower()
    assert "HTTP" not in str(caught.value)  # people read a sentence; the status goes to the log
    assert caught.value.needs_admin and not caught.value.permanent
    assert info.call_count == 1


@pytest.mark.parametrize("status", [401, 403, 404])
@pytest.mark.parametrize(
    ("method", "path", "call"),
    [
        ("GET", "service/tickets/7", lambda c: c.get_ticket(7)),
        ("POST", "service/tickets/7/notes", lambda c: c.add_note(7, "x")),
        ("POST", "time/entries", lambda c: c.add_time_entry(7, hours=1)),
        ("PATCH", "service/tickets/7", lambda c: c.update_status(7, 11, board_id=1)),
    ],
)
@responses.activate
def test_every_record_call_confirms_its_404(make_client, status, method, path, call):
    responses.add(method, f"{API}/{path}", status=404, json=NOT_FOUND)
    responses.get(
        f"{API}/service/boards/1/statuses",
        json=[{"id": 11, "name": "New", "board": {"id": 1}, "inactive": False}],
    )
    responses.get(f"{API}/system/info", status=status, json={"code": "x", "message": "no"})
    with pytest.raises(errors.AuthenticationError, match="rejected the credentials"):
        call(make_client())


@responses.activate
def test_genuine_404_stays_not_found_and_the_check_is_cached(make_client):
    missing = responses.get(f"{API}/service/tickets/7", status=404, json=NOT_FOUND)
    info = responses.get(f"{API}/system/info", json={"version": "v2025.1", "isCloud": True})
    client = make_client()
    for _ in range(3):
        with pytest.raises(errors.NotFoundError, match="Ticket 7 not found") as caught:
            client.get_ticket(7)
        assert caught.value.permanent
    assert missing.call_count == 3
    assert info.call_count == 1  # at most one confirmation a minute


@responses.activate
def test_unanswered_check_is_retried_later_not_not_found(make_client):
    responses.get(f"{API}/service/tickets/7", status=404, json=NOT_FOUND)
    responses.get(f"{API}/system/info", body=requests.exceptions.ConnectionError("refused"))
    with pytest.raises(errors.UnavailableError) as caught:
        make_client().get_ticket(7)
    assert not caught.value.permanent


@responses.activate
def test_system_info_404_is_an_auth_error(make_client):
    responses.get(f"{API}/system/info", status=404, json={"code": "NotFound"})
    with pytest.raises(errors.AuthenticationError, match="rejected the credentials"):
        make_client().system_info()


def test_auth_error_is_not_permanent_even_as_404():
    assert not errors.AuthenticationError("x", status=404).permanent


# -- the sandbox switch ---------------------------------------------------------------------


@pytest.fixture
def cloud_sandbox(connectwise_sandbox: Any) -> Iterator[Any]:
    key = connectwise_sandbox.private_key
    yield connectwise_sandbox
    connectwise_sandbox.private_key = key
    connectwise_sandbox.set_cloud_auth_404(False)


def _reject_keys(sandbox: Any) -> None:
    """The tenant's stored keys stop working (revoked in ConnectWise), on a cloud server."""
    sandbox.set_cloud_auth_404(True)
    sandbox.private_key = "revoked-" + sandbox.private_key


def test_sandbox_switch_answers_bad_credentials_with_404(cloud_sandbox):
    creds = dict(cloud_sandbox.credentials, private_key="wrong")
    with ConnectWiseClient(**creds, codebase="v2025_1/") as client:
        with pytest.raises(errors.AuthenticationError) as caught:
            client.get_ticket(12345)
        assert caught.value.status == 401  # the default stays a 401
        url = f"{cloud_sandbox.url}/_sandbox/cloud-auth-404"
        assert requests.post(url, json={"enabled": True}, timeout=5).json() == {"enabled": True}
        with pytest.raises(errors.AuthenticationError, match="rejected the credentials") as caught:
            client.get_ticket(12345)
        assert caught.value.status == 404
    answers = [(r.path, r.status) for r in cloud_sandbox.requests()]
    assert ("service/tickets/12345", 404) in answers and ("system/info", 404) in answers
    cloud_sandbox.reset()
    assert cloud_sandbox.cloud_auth_404 is False
    good = ConnectWiseClient(**cloud_sandbox.credentials, codebase="v2025_1/")
    with good, pytest.raises(errors.NotFoundError):
        good.get_ticket(999999)


def test_json_api_ticket_says_credentials_not_not_found(app, cloud_sandbox):
    api = configure(app, cloud_sandbox)
    _reject_keys(cloud_sandbox)
    answer = api.call("GET", "/tickets/12345")
    body = answer.get_json()
    assert answer.status_code != 404, body
    assert "rejected the credentials" in json.dumps(body)
    assert "not found" not in json.dumps(body).lower()
    assert ("service/tickets/12345", 404) in [(r.path, r.status) for r in cloud_sandbox.requests()]


def test_log_change_says_credentials_not_ticket_not_found(app, cloud_sandbox):
    api = configure(app, cloud_sandbox)
    _reject_keys(cloud_sandbox)
    answer = api.call("POST", "/tickets/12345/log-change", {"noteText": "x", "hours": 0.5})
    body = answer.get_json()
    text = json.dumps(body)
    assert "rejected the credentials" in text, body
    assert "was not found" not in text and "not found" not in text.lower(), body
    assert body["state"] == "retrying", body
    # The change log says the same to the admin.
    with app.app_context():
        row = cw_of(app).outbox.find(str(body["changeId"]))
        errors = [row.step(step).error or "" for step in Step]
    assert any("rejected the credentials" in e for e in errors), errors
    assert not any("not found" in e.lower() for e in errors), errors


def test_the_field_says_credentials_not_ticket_not_found(tmp_path, cloud_sandbox):
    """The operator's form: a ticket typed by number cannot be checked, and says why."""
    from flask_wtf import FlaskForm
    from werkzeug.datastructures import MultiDict

    from flask_connectwise import TicketSearchField
    from tests.field_app import make_field_app

    app = make_field_app(f"sqlite:///{tmp_path / 'host.db'}", cloud_sandbox)
    app.config["WTF_CSRF_ENABLED"] = False
    _reject_keys(cloud_sandbox)
    form_class = type("TicketForm", (FlaskForm,), {"ticket": TicketSearchField()})
    try:
        with app.test_request_context("/", method="POST"):
            form = form_class(formdata=MultiDict({"ticket": "12345"}))
            assert not form.validate()
            assert form.ticket.errors == [
                "Ticket #12345 could not be checked: ConnectWise refused this tenant's "
                "credentials. Ask an administrator to check them."
            ]
    finally:
        with app.app_context():
            app.extensions["test_db"].engine.dispose()
