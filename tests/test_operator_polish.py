"""Issue 16's operator polish (item 8): what an operator reads in the admin views and messages."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from flask_connectwise.admin.text import timestamp
from flask_connectwise.errors import ConnectWiseError
from flask_connectwise.outbox.outcome import Outcome
from flask_connectwise.ticketlinks import DEFAULT_TICKET_URL, site_url, ticket_url
from flask_connectwise.wording import aside
from tests.admin_helpers import TENANT_A, AdminUser, make_admin_app, seed_credentials, text_of
from tests.json_api import configure

CHANGES = "/admin/connectwise/change-log/"
FLAGS = "/admin/connectwise/flags/"
#: A time with microseconds, as the tables hold them (naive UTC).
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"


def nesting(text: str) -> int:
    """How deep the parentheses in ``text`` go."""
    depth = deepest = 0
    for char in text:
        if char == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif char == ")":
            depth -= 1
    return deepest


@pytest.fixture
def admin_app(tmp_path: Path) -> Any:
    app = make_admin_app(f"sqlite:///{tmp_path / 'admin.db'}")
    yield app
    with app.app_context():
        app.extensions["test_db"].engine.dispose()


@pytest.fixture
def logged(admin_app: Any, connectwise_sandbox: Any) -> Any:
    """Tenant A on the sandbox, the flag on, one change delivered by member jdoe (John Doe)."""
    seed_credentials(admin_app, TENANT_A, connectwise_sandbox)
    with admin_app.app_context():
        service = admin_app.extensions["test_cw"].service
        service.set_flag(TENANT_A, True, actor="jdoe")
        service.log_change(TENANT_A, 12345, "DID moved", member="jdoe", hours=0.25, operator="jdoe")
    return admin_app


def test_timestamps_are_to_the_second_with_a_time_zone(logged: Any) -> None:
    user = AdminUser(logged, TENANT_A)
    for url in (CHANGES, FLAGS):
        page = text_of(user.get(url).get_data(as_text=True))
        assert re.search(STAMP, page), (url, page)
        assert not re.search(r"\d\d:\d\d:\d\d\.\d+", page), url  # no microseconds
    change_id = re.search(r"details/\?id=(\d+)", user.get(CHANGES).get_data(as_text=True))
    assert change_id is not None
    details = text_of(user.get(f"{CHANGES}details/?id={change_id.group(1)}").get_data(as_text=True))
    assert len(re.findall(STAMP, details)) == 2  # created and updated
    assert not re.search(r"\d\d:\d\d:\d\d\.\d+", details)
    assert timestamp(datetime(2026, 11, 25, 15, 13, 30, 70885)) == "2026-11-25 15:13:30 UTC"


def test_the_change_log_names_the_member(logged: Any) -> None:
    page = AdminUser(logged, TENANT_A).get(CHANGES).get_data(as_text=True)
    assert "John Doe" in text_of(page)
    assert "John Doe (jdoe)" in text_of(page)  # the identifier it was logged as, beside


def test_the_member_name_degrades_to_the_identifier(logged: Any, connectwise_sandbox: Any) -> None:
    with logged.app_context():
        members = logged.extensions["test_cw"].members
        assert members.display_name(TENANT_A, "nosuchmember") is None  # unknown to ConnectWise
        connectwise_sandbox.inject_fault("system/members", "status", status=503, count=50)
        assert members.display_name(TENANT_A, "asmith", deadline=0.5) is None  # down
        assert members.display_name(TENANT_A, "jdoe") == "John Doe"  # remembered


def test_row_actions_say_what_they_do_in_words(logged: Any, connectwise_sandbox: Any) -> None:
    with logged.app_context():
        service = logged.extensions["test_cw"].service
        service.log_change(TENANT_A, 999999, "fails", member="jdoe", hours=0.25, operator="jdoe")
    user = AdminUser(logged, TENANT_A)
    changes = user.get(CHANGES).get_data(as_text=True)
    labels = re.findall(r'<span class="cw-row-action-label">([^<]*)</span>', changes)
    assert labels == ["Retry"]  # only the undelivered change, in words
    flags = user.get(FLAGS).get_data(as_text=True)
    assert re.findall(r'<span class="cw-row-action-label">([^<]*)</span>', flags) == ["Turn off"]
    user.post(f"{FLAGS}toggle/", {"id": re.search(r'name="id" value="(\d+)"', flags).group(1)})
    flags = user.get(FLAGS).get_data(as_text=True)
    assert re.findall(r'<span class="cw-row-action-label">([^<]*)</span>', flags) == ["Turn on"]


def test_ticket_numbers_link_to_the_ticket_in_connectwise(
    logged: Any, connectwise_sandbox: Any
) -> None:
    page = AdminUser(logged, TENANT_A).get(CHANGES).get_data(as_text=True)
    site = site_url(connectwise_sandbox.credentials["base_url"])
    company = connectwise_sandbox.credentials["company_id"]
    expected = (
        f"{site}/v4_6_release/services/system_io/Service/fv_sr100_request.rsp"
        f"?companyName={company}&amp;service_recid=12345"
    )
    assert f'href="{expected}"' in page
    assert ">#12345</a>" in page
    logged.config["CONNECTWISE_TICKET_URL"] = None
    page = AdminUser(logged, TENANT_A).get(CHANGES).get_data(as_text=True)
    assert "fv_sr100_request" not in page


def test_ticket_url_template() -> None:
    config = {"CONNECTWISE_TICKET_URL": DEFAULT_TICKET_URL}
    assert ticket_url(config, "https://api-na.myconnectwise.net", "acme co", 7) == (
        "https://na.myconnectwise.net/v4_6_release/services/system_io/Service/"
        "fv_sr100_request.rsp?companyName=acme%20co&service_recid=7"
    )
    assert site_url("https://cw.example.com/") == "https://cw.example.com"
    assert ticket_url({"CONNECTWISE_TICKET_URL": "{site}/t/{ticket}"}, "https://h", "c", 3) == (
        "https://h/t/3"
    )
    assert ticket_url({"CONNECTWISE_TICKET_URL": "{nope}"}, "https://h", "c", 3) is None
    assert ticket_url({"CONNECTWISE_TICKET_URL": None}, "https://h", "c", 3) is None


def test_error_texts_have_no_nested_parentheses(app: Any, connectwise_sandbox: Any) -> None:
    """The issue's example: a 503 on the time entry read '(ConnectWise failed (HTTP 503))'."""
    api = configure(app, connectwise_sandbox)
    connectwise_sandbox.inject_fault("time/entries", "status", status=503, count=20)
    body = api.call("POST", "/tickets/12345/log-change", {"noteText": "x", "hours": 0.5})
    outcome = body.get_json()
    assert outcome["timeEntry"]["ok"] is False
    with app.app_context():
        change = app.extensions["test_cw"].outbox.find(outcome["changeId"])
        words = Outcome.of(change).failed_words()
        summary = Outcome.of(change).retry_summary("Change x")
    assert words and "HTTP 503" in words[0]
    assert nesting(words[0]) == 1, words
    assert nesting(summary) == 1, summary
    assert aside(ConnectWiseError("ConnectWise failed (HTTP 503)").message) == (
        "(ConnectWise failed: HTTP 503)"
    )
    assert aside("plain") == "(plain)"
    assert nesting(aside("a (b (c)) d")) == 1


def test_radio_choices_are_a_plain_list_not_a_text_box(
    admin_app: Any, connectwise_sandbox: Any
) -> None:
    row_id = seed_credentials(admin_app, TENANT_A, connectwise_sandbox)
    page = AdminUser(admin_app, TENANT_A).get(f"/admin/connectwise/credentials/edit/?id={row_id}")
    html = page.get_data(as_text=True)
    for name in ("company_scope", "ticket_policy"):
        tag = re.search(rf'<ul[^>]*id="{name}"[^>]*>', html)
        assert tag is not None, name
        assert "list-unstyled" in tag.group(0) and "form-control" not in tag.group(0)
