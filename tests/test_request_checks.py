"""Issue 14, request side: company-scoped search, per-change time, member rules and the checks
on the chosen ticket before anything is written (JSON API and ``TicketSearchField``), against
the sandbox over loopback."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import get_flashed_messages
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict

from flask_connectwise import ticketchecks
from flask_connectwise.choices import CompanyChoice
from flask_connectwise.credentials import TenantSettings
from flask_connectwise.current import state
from flask_connectwise.fields import TicketSearchField
from flask_connectwise.records import Ticket
from flask_connectwise.search import TicketSearch
from tests.field_app import change_rows, make_field_app
from tests.hosts import TENANT_A
from tests.json_api import Api, configure

CONTOSO = {"id": 250, "identifier": "Contoso", "name": "Contoso Ltd"}
WOODGROVE_TICKET = 12460
CLOSED_CONTOSO_TICKET = 12348
MINUTES_ERROR = "minutes must be between 1 and 480"


def settle(app: Any, sandbox: Any, tenant: str = TENANT_A, **choices: Any) -> None:
    """Store the sandbox's credentials for ``tenant`` with the tenant ``choices`` (camelCase)."""
    creds = sandbox.credentials
    payload = {
        "baseUrl": creds["base_url"],
        "companyId": creds["company_id"],
        "publicKey": creds["public_key"],
        "privateKey": creds["private_key"],
        "clientId": creds["client_id"],
        "defaultTimeMinutes": 15,
    } | choices
    with app.app_context():
        state(app).tenants.save_credentials(tenant, payload, actor="test")


def contoso(app: Any, sandbox: Any, **choices: Any) -> Api:
    api = configure(app, sandbox)
    settle(app, sandbox, companyScope="listed", companies=[CONTOSO], **choices)
    return api


def writes(sandbox: Any) -> list[Any]:
    return list(sandbox.writes())


def ticket_searches(sandbox: Any) -> list[str]:
    return [
        r.query["conditions"]
        for r in sandbox.requests
        if r.method == "GET" and r.path.endswith("service/tickets") and "conditions" in r.query
    ]


def _cond(value: Any) -> str:
    return value[0] if isinstance(value, list) else str(value)


def test_the_anchor_tickets_are_what_these_tests_assume(connectwise_sandbox):
    assert connectwise_sandbox.ticket(WOODGROVE_TICKET)["company"]["name"] == "Woodgrove Bank"
    closed = connectwise_sandbox.ticket(CLOSED_CONTOSO_TICKET)
    assert closed["company"]["id"] == 250 and closed["closedFlag"] is True


# -- search ----------------------------------------------------------------------------------


def test_search_scoped_to_contoso_lists_only_contoso_tickets(app, connectwise_sandbox):
    api = contoso(app, connectwise_sandbox)
    unscoped = [t for t in connectwise_sandbox.tickets() if "printer" in t["summary"].lower()]
    assert {t["company"]["id"] for t in unscoped} - {250}, "the seed has other companies' hits"
    connectwise_sandbox.clear_requests()
    found = api.call("GET", "/tickets/search?q=printer").get_json()
    assert found and {t["company"] for t in found} == {"Contoso Ltd"}
    [condition] = [_cond(c) for c in ticket_searches(connectwise_sandbox)]
    assert "company/id=250" in condition.replace(" ", "") or "company/idin(250)" in (
        condition.replace(" ", "")
    )
    by_number = api.call("GET", f"/tickets/search?q={WOODGROVE_TICKET}").get_json()
    assert WOODGROVE_TICKET not in [t["id"] for t in by_number]


def test_hostile_search_text_cannot_widen_the_company_condition(app, connectwise_sandbox):
    api = contoso(app, connectwise_sandbox)
    connectwise_sandbox.clear_requests()
    hostile = 'printer" or company/id=255 or summary like "%'
    answer = api.call("GET", "/tickets/search", query_string={"q": hostile})
    assert answer.status_code == 200
    assert all(t["company"] == "Contoso Ltd" for t in answer.get_json())
    for condition in map(_cond, ticket_searches(connectwise_sandbox)):
        # The company clause closes the condition, outside every quoted string.
        assert condition.endswith("company/id=250") or condition.endswith("company/id in (250)")
        outside_quotes = re.sub(r'"(?:[^"\\]|\\.)*"', '""', condition)
        assert outside_quotes == '(summary contains "" and closedFlag=false) and company/id=250'
        assert "company/id=255" in condition  # the hostile text stays inside its string


def test_the_search_cache_key_holds_the_company_scope():
    keys = {
        TicketSearch.cache_key("t", 3, "printer", 25, None),
        TicketSearch.cache_key("t", 3, "printer", 25, (250,)),
        TicketSearch.cache_key("t", 3, "printer", 25, (250, 251)),
    }
    assert len(keys) == 3


# -- per-change time -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"minutes": 481}, "minutes", MINUTES_ERROR),
        ({"minutes": 0}, "minutes", MINUTES_ERROR),
        ({"minutes": 0.5}, "minutes", MINUTES_ERROR),
        ({"hours": 8.5}, "hours", "hours must be between 0.01667 and 8 (1 to 480 minutes)"),
        ({"hours": 1, "minutes": 60}, "hours", "Send hours or minutes, not both"),
        ({"minutes": "30"}, "minutes", "minutes must be a number"),
    ],
)
def test_time_out_of_bounds_is_a_field_named_400(app, connectwise_sandbox, body, field, message):
    api = configure(app, connectwise_sandbox)
    connectwise_sandbox.clear_requests()
    answer = api.call("POST", "/tickets/12345/log-change", {"noteText": "x"} | body)
    assert answer.status_code == 400
    got = answer.get_json()
    assert got["field"] == field and got["message"] == message
    assert writes(connectwise_sandbox) == [] and change_rows(app) == []


@pytest.mark.parametrize(("body", "hours"), [({"minutes": 45}, 0.75), ({"minutes": 480}, 8.0)])
def test_minutes_reach_the_time_entry(app, connectwise_sandbox, body, hours):
    api = configure(app, connectwise_sandbox)
    answer = api.call("POST", "/tickets/12345/log-change", {"noteText": "x"} | body)
    assert answer.status_code == 200, answer.get_json()
    assert connectwise_sandbox.time_entries(12345)[-1]["actualHours"] == hours


def test_the_time_route_keeps_the_bounds(app, connectwise_sandbox):
    api = configure(app, connectwise_sandbox)
    answer = api.call("POST", "/tickets/12345/time", {"minutes": 481})
    assert answer.status_code == 400 and answer.get_json()["message"] == MINUTES_ERROR


# -- member ----------------------------------------------------------------------------------


def _no_member(app: Any) -> Api:
    api = Api(app, TENANT_A)
    api.headers.pop("X-User-Member")
    return api


def test_time_asked_without_a_member_is_member_required(app, connectwise_sandbox):
    configure(app, connectwise_sandbox)
    api = _no_member(app)
    notes_before = len(connectwise_sandbox.notes(12345))
    for path, body in (
        ("/tickets/12345/log-change", {"noteText": "x", "minutes": 30}),
        ("/tickets/12345/log-change", {"noteText": "x", "hours": 0.5}),
        ("/tickets/12345/time", {"hours": 0.5}),
    ):
        answer = api.call("POST", path, body)
        assert answer.status_code == 400, answer.get_json()
        assert answer.get_json()["error"] == "member_required"
    assert len(connectwise_sandbox.notes(12345)) == notes_before
    assert writes(connectwise_sandbox) == [] and change_rows(app) == []


def test_the_tenant_default_without_a_member_logs_the_note_only(app, connectwise_sandbox):
    configure(app, connectwise_sandbox)
    times_before = len(connectwise_sandbox.time_entries(12345))
    answer = _no_member(app).call("POST", "/tickets/12345/log-change", {"noteText": "x"})
    body = answer.get_json()
    assert answer.status_code == 200, body
    assert body["note"]["ok"] is True and body["timeEntry"]["state"] == "skipped"
    assert body["warnings"] == [
        "Logged without time: your user is not linked to a ConnectWise member."
    ]
    assert len(connectwise_sandbox.time_entries(12345)) == times_before
    [row] = change_rows(app)
    assert row.hours is None
    assert row.time_error == "no time entry: your user is not linked to a ConnectWise member"


def test_member_not_required_keeps_the_old_behaviour(app, connectwise_sandbox):
    configure(app, connectwise_sandbox)
    app.config["CONNECTWISE_REQUIRE_MEMBER"] = False
    answer = _no_member(app).call(
        "POST", "/tickets/12345/log-change", {"noteText": "x", "minutes": 30}
    )
    assert answer.status_code == 200, answer.get_json()
    assert connectwise_sandbox.time_entries(12345)[-1]["actualHours"] == 0.5


def test_an_unusable_member_is_refused_before_anything_is_written(app, connectwise_sandbox):
    configure(app, connectwise_sandbox)
    api = Api(app, TENANT_A, member="rbrown")  # inactive in the sandbox
    connectwise_sandbox.clear_requests()
    answer = api.call("POST", "/tickets/12345/log-change", {"noteText": "x"})
    assert answer.status_code == 400
    assert answer.get_json()["error"] == "member_unusable"
    assert "rbrown" in answer.get_json()["message"]
    assert writes(connectwise_sandbox) == [] and change_rows(app) == []


# -- the chosen ticket -------------------------------------------------------------------------


def test_a_ticket_of_another_company_is_refused_with_both_names(app, connectwise_sandbox):
    api = contoso(app, connectwise_sandbox)
    connectwise_sandbox.clear_requests()
    for path, body in (
        (f"/tickets/{WOODGROVE_TICKET}/log-change", {"noteText": "x"}),
        (f"/tickets/{WOODGROVE_TICKET}/notes", {"text": "x"}),
        (f"/tickets/{WOODGROVE_TICKET}/time", {"minutes": 15}),
    ):
        answer = api.call("POST", path, body)
        assert answer.status_code == 400
        assert answer.get_json() == {
            "error": "ticket_other_company",
            "message": "Ticket #12460 belongs to Woodgrove Bank, not Contoso Ltd",
            "field": "ticketId",
        } | {k: v for k, v in answer.get_json().items() if k not in ("error", "message", "field")}
    assert writes(connectwise_sandbox) == [] and change_rows(app) == []


def test_another_customers_name_can_be_kept_from_operators(app, connectwise_sandbox):
    """CONNECTWISE_NAME_OTHER_COMPANIES off: typing ticket numbers tells no customer's name."""
    app.config["CONNECTWISE_NAME_OTHER_COMPANIES"] = False
    api = contoso(app, connectwise_sandbox)
    answer = api.call("POST", f"/tickets/{WOODGROVE_TICKET}/log-change", {"noteText": "x"})
    assert answer.status_code == 400
    assert answer.get_json()["message"] == (
        "Ticket #12460 belongs to another company, not Contoso Ltd"
    )
    assert "Woodgrove" not in answer.get_data(as_text=True)
    assert change_rows(app) == []


def test_a_closed_ticket_is_refused_by_default(app, connectwise_sandbox):
    api = contoso(app, connectwise_sandbox)
    connectwise_sandbox.clear_requests()
    answer = api.call("POST", f"/tickets/{CLOSED_CONTOSO_TICKET}/log-change", {"noteText": "x"})
    assert answer.status_code == 400
    body = answer.get_json()
    assert body["error"] == "ticket_closed" and body["field"] == "ticketId"
    assert body["message"] == "Ticket #12348 is closed: time cannot be logged"
    assert writes(connectwise_sandbox) == [] and change_rows(app) == []


def test_warn_policy_logs_the_note_and_skips_the_time(app, connectwise_sandbox):
    api = contoso(app, connectwise_sandbox, ticketPolicy="warn")
    times_before = len(connectwise_sandbox.time_entries(CLOSED_CONTOSO_TICKET))
    answer = api.call(
        "POST", f"/tickets/{CLOSED_CONTOSO_TICKET}/log-change", {"noteText": "x", "minutes": 30}
    )
    body = answer.get_json()
    assert answer.status_code == 200, body
    assert body["note"]["ok"] is True and body["timeEntry"]["state"] == "skipped"
    assert body["warnings"] == ["Logged without time: Ticket #12348 is closed."]
    assert len(connectwise_sandbox.time_entries(CLOSED_CONTOSO_TICKET)) == times_before
    [row] = change_rows(app)
    assert row.hours is None and row.time_error == "no time entry: ticket #12348 is closed"


def test_a_note_only_change_on_a_closed_ticket_is_not_refused(app, connectwise_sandbox):
    api = contoso(app, connectwise_sandbox)
    answer = api.call("POST", f"/tickets/{CLOSED_CONTOSO_TICKET}/notes", {"text": "closing remark"})
    assert answer.status_code == 201, answer.get_json()


def test_an_unreachable_connectwise_keeps_todays_behaviour(app, connectwise_sandbox):
    api = contoso(app, connectwise_sandbox)
    connectwise_sandbox.inject_fault(
        f"service/tickets/{WOODGROVE_TICKET}", "status", status=503, count=10, method="GET"
    )
    answer = api.call("POST", f"/tickets/{WOODGROVE_TICKET}/log-change", {"noteText": "x"})
    assert answer.status_code == 200, answer.get_json()
    assert len(change_rows(app)) == 1


# -- visibility and automatic status ---------------------------------------------------------


def test_visibility_and_auto_status_are_recorded(app, connectwise_sandbox):
    api = configure(app, connectwise_sandbox)
    settle(app, connectwise_sandbox, noteVisibility="discussion", autoUpdateStatus=True)
    for body in (
        {"noteText": "a"},
        {"noteText": "b", "internal": True},
        {"noteText": "c", "visibility": "resolution", "internal": True},
        {"noteText": "d", "statusId": 102},
    ):
        answer = api.call("POST", "/tickets/12345/log-change", body)
        assert answer.status_code == 200, answer.get_json()
    got = [(r.note_text, r.visibility, r.auto_status, r.status_id) for r in change_rows(app)]
    assert [g[:3] for g in got] == [
        ("a", "discussion", True),
        ("b", "internal", True),
        ("c", "resolution", True),
        ("d", "discussion", False),
    ]
    assert got[-1][3] == 102
    bad = api.call("POST", "/tickets/12345/log-change", {"noteText": "e", "visibility": "all"})
    assert bad.status_code == 400 and bad.get_json()["field"] == "visibility"


def test_a_board_map_with_the_switch_off_sets_no_status(app, connectwise_sandbox):
    """``autoUpdateStatus: false`` keeps its meaning (the README's flow) even with a board map."""
    api = configure(app, connectwise_sandbox)
    board_map = [{"boardId": 1, "boardName": "Help Desk", "statusId": 102}]
    settle(app, connectwise_sandbox, autoUpdateStatus=False, boardStatuses=board_map)
    answer = api.call("POST", "/tickets/12345/log-change", {"noteText": "a"})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["status"]["state"] == "skipped"
    settle(app, connectwise_sandbox, autoUpdateStatus=True, boardStatuses=board_map)
    assert api.call("POST", "/tickets/12345/log-change", {"noteText": "b"}).status_code == 200
    assert [(r.note_text, r.auto_status) for r in change_rows(app)] == [("a", False), ("b", True)]


# -- the field -------------------------------------------------------------------------------


@pytest.fixture
def field_app(tmp_path, connectwise_sandbox):
    app = make_field_app(f"sqlite:///{tmp_path / 'host.db'}", connectwise_sandbox)
    app.config["WTF_CSRF_ENABLED"] = False
    yield app
    with app.app_context():
        app.extensions["test_db"].engine.dispose()


def form(data: dict[str, str] | None = None) -> FlaskForm:
    form_class = type("TicketForm", (FlaskForm,), {"ticket": TicketSearchField()})
    return form_class(formdata=MultiDict(data) if data is not None else None)


def test_the_field_renders_a_labelled_minutes_input(field_app):
    with field_app.test_request_context("/"):
        html = str(form().ticket())
    assert '<label for="ticket-minutes">Minutes</label>' in html
    assert 'name="ticket-minutes"' in html and 'type="number"' in html
    assert 'min="1"' in html and 'max="480"' in html and 'placeholder="15"' in html
    assert 'aria-describedby="ticket-minutes-hint"' in html


@pytest.mark.parametrize("minutes", ["0", "481", "abc", "1.5", "-3"])
def test_the_field_refuses_minutes_out_of_bounds(field_app, minutes):
    with field_app.test_request_context("/", method="POST"):
        f = form({"ticket": "12345", "ticket-minutes": minutes})
        assert not f.validate()
        assert f.ticket.errors == ["Minutes must be a whole number between 1 and 480"]
        html = str(f.ticket())
        [minutes_tag] = re.findall(r'<input[^>]*name="ticket-minutes"[^>]*>', html)
        [ticket_tag] = re.findall(r'<input[^>]*name="ticket"[^>]*>', html)
        assert 'aria-invalid="true"' in minutes_tag
        # Only the minutes are wrong: the ticket stays selected and is not marked invalid.
        assert 'data-selected-id="12345"' in html
        assert 'aria-invalid="true"' not in ticket_tag


def test_the_fields_minutes_reach_the_change(field_app, connectwise_sandbox):
    db = field_app.extensions["test_db"]
    with field_app.test_request_context("/", method="POST"):
        f = form({"ticket": "12345", "ticket-minutes": "45"})
        assert f.validate(), f.errors
        row = f.ticket.log_change("changed")
        db.session.commit()
        assert row is not None and row.hours == 0.75
    assert connectwise_sandbox.time_entries(12345)[-1]["actualHours"] == 0.75


def test_the_field_refuses_a_ticket_of_another_company(field_app, connectwise_sandbox):
    settle(field_app, connectwise_sandbox, companyScope="listed", companies=[CONTOSO])
    with field_app.test_request_context("/", method="POST"):
        f = form({"ticket": str(WOODGROVE_TICKET)})
        assert not f.validate()
        assert f.ticket.errors == ["Ticket #12460 belongs to Woodgrove Bank, not Contoso Ltd"]


def test_the_field_warns_and_skips_time_on_a_closed_ticket(field_app, connectwise_sandbox):
    settle(
        field_app,
        connectwise_sandbox,
        companyScope="listed",
        companies=[CONTOSO],
        ticketPolicy="warn",
    )
    db = field_app.extensions["test_db"]
    with field_app.test_request_context("/", method="POST"):
        f = form({"ticket": str(CLOSED_CONTOSO_TICKET)})
        assert f.validate(), f.errors
        row = f.ticket.log_change("changed")
        db.session.commit()
        flashed = get_flashed_messages(with_categories=True)
        assert row is not None and row.hours is None
        assert row.time_error == "no time entry: ticket #12348 is closed"
    # Said once, by the outcome (it was also flashed as "Logged without time: Ticket #12348
    # is closed.", a second message saying the same).
    assert [m for _, m in flashed if "closed" in m] == [
        "Logged to ticket #12348: note added. No time entry: ticket #12348 is closed."
    ], flashed


def test_the_field_refuses_a_closed_ticket_by_default(field_app, connectwise_sandbox):
    with field_app.test_request_context("/", method="POST"):
        f = form({"ticket": str(CLOSED_CONTOSO_TICKET)})
        assert not f.validate()
        assert f.ticket.errors == ["Ticket #12348 is closed: time cannot be logged"]


def test_the_field_without_a_member_logs_the_note_and_says_why(field_app, connectwise_sandbox):
    field_app.extensions["test_cw"].current_member(lambda: None)
    db = field_app.extensions["test_db"]
    times_before = len(connectwise_sandbox.time_entries(12345))
    with field_app.test_request_context("/", method="POST"):
        f = form({"ticket": "12345", "ticket-minutes": "30"})
        assert f.validate(), f.errors
        row = f.ticket.log_change("changed")
        db.session.commit()
        flashed = get_flashed_messages(with_categories=True)
        assert row is not None and row.hours is None
        assert row.time_error == ("no time entry: your user is not linked to a ConnectWise member")
    # Said once, by the outcome, with what to do (it was also flashed as "Logged without
    # time: your user is not linked…", a second message saying the same).
    assert flashed == [
        (
            "success",
            "Logged to ticket #12345: note added. No time entry: your user is not linked to a "
            "ConnectWise member. Ask an administrator to link one.",
        )
    ], flashed
    assert len(connectwise_sandbox.time_entries(12345)) == times_before


def test_the_field_refuses_an_unusable_member(field_app, connectwise_sandbox):
    field_app.extensions["test_cw"].current_member(lambda: "rbrown")
    with field_app.test_request_context("/", method="POST"):
        f = form({"ticket": "12345"})
        assert not f.validate()
        [error] = f.ticket.errors
        assert "rbrown" in error and "Ask an administrator" in error


# -- statuses that forbid time, and each "closed" check on its own ------------------------------

PARTS_TICKET = 12347  # Help Desk, "Waiting on Parts" (timeEntryNotAllowed), Northwind
PARTS_REFUSAL = (
    "Ticket #12347's status Waiting on Parts does not allow time entries: time cannot be logged"
)


def _edit_ticket(sandbox: Any, ticket_id: int, **fields: Any) -> None:
    """Change the sandbox's stored ticket (as ConnectWise would show it after an edit there)."""
    with sandbox.store.lock:
        sandbox.store.data.tickets[ticket_id].update(fields)


def _set_status(sandbox: Any, ticket_id: int, name: str) -> None:
    with sandbox.store.lock:
        ticket = sandbox.store.data.tickets[ticket_id]
        board = ticket["board"]["id"]
        status = next(
            s
            for s in sandbox.store.data.statuses.values()
            if s["board"]["id"] == board and s["name"] == name
        )
        ticket["status"] = {"id": status["id"], "name": name}


def test_the_parts_ticket_is_what_these_tests_assume(connectwise_sandbox):
    ticket = connectwise_sandbox.ticket(PARTS_TICKET)
    assert ticket["status"]["name"] == "Waiting on Parts" and ticket["closedFlag"] is False
    [status] = [
        s for s in connectwise_sandbox.board_statuses(1) if s["id"] == ticket["status"]["id"]
    ]
    assert status["timeEntryNotAllowed"] is True and status["closedStatus"] is False


def test_a_status_that_forbids_time_is_refused_by_the_api(app, connectwise_sandbox):
    api = configure(app, connectwise_sandbox)
    connectwise_sandbox.clear_requests()
    for path, body in (
        (f"/tickets/{PARTS_TICKET}/log-change", {"noteText": "x"}),
        (f"/tickets/{PARTS_TICKET}/time", {"minutes": 15}),
    ):
        answer = api.call("POST", path, body)
        assert answer.status_code == 400, answer.get_json()
        assert answer.get_json()["error"] == "ticket_time_not_allowed"
        assert answer.get_json()["message"] == PARTS_REFUSAL
        assert answer.get_json()["field"] == "ticketId"
    assert writes(connectwise_sandbox) == [] and change_rows(app) == []


def test_a_status_that_forbids_time_is_refused_by_the_field(field_app, connectwise_sandbox):
    with field_app.test_request_context("/", method="POST"):
        f = form({"ticket": str(PARTS_TICKET)})
        assert not f.validate()
        assert f.ticket.errors == [PARTS_REFUSAL]


def test_warn_policy_logs_the_note_and_skips_the_time_the_status_forbids(app, connectwise_sandbox):
    api = configure(app, connectwise_sandbox)
    settle(app, connectwise_sandbox, ticketPolicy="warn")
    times_before = len(connectwise_sandbox.time_entries(PARTS_TICKET))
    answer = api.call(
        "POST", f"/tickets/{PARTS_TICKET}/log-change", {"noteText": "x", "minutes": 30}
    )
    body = answer.get_json()
    assert answer.status_code == 200, body
    assert body["note"]["ok"] is True and body["timeEntry"]["state"] == "skipped"
    assert body["warnings"] == [
        "Logged without time: Ticket #12347's status Waiting on Parts does not allow time entries."
    ]
    assert len(connectwise_sandbox.time_entries(PARTS_TICKET)) == times_before
    [row] = change_rows(app)
    assert row.hours is None
    assert row.time_error == (
        "no time entry: ticket #12347's status Waiting on Parts does not allow time entries"
    )


def test_the_field_under_warn_skips_the_time_the_status_forbids(field_app, connectwise_sandbox):
    settle(field_app, connectwise_sandbox, ticketPolicy="warn")
    db = field_app.extensions["test_db"]
    with field_app.test_request_context("/", method="POST"):
        f = form({"ticket": str(PARTS_TICKET), "ticket-minutes": "30"})
        assert f.validate(), f.errors
        row = f.ticket.log_change("changed")
        db.session.commit()
        assert row is not None and row.hours is None
        assert row.time_error == (
            "no time entry: ticket #12347's status Waiting on Parts does not allow time entries"
        )


def test_a_closed_ticket_whose_status_is_open_is_refused(app, connectwise_sandbox):
    """ConnectWise keeps ``closedFlag`` and the status's ``closedStatus`` apart (a ticket can
    be closed while its status still reads New): the ticket's own flag is enough."""
    _edit_ticket(connectwise_sandbox, 12345, closedFlag=True)  # status stays "New"
    api = configure(app, connectwise_sandbox)
    answer = api.call("POST", "/tickets/12345/log-change", {"noteText": "x"})
    assert answer.status_code == 400, answer.get_json()
    assert answer.get_json()["error"] == "ticket_closed"
    assert answer.get_json()["message"] == "Ticket #12345 is closed: time cannot be logged"
    assert change_rows(app) == []


def test_an_open_ticket_with_a_closed_status_is_refused(app, connectwise_sandbox):
    """The other way round: ``closedFlag`` false, the status "Completed" (a closed status)."""
    _set_status(connectwise_sandbox, 12345, "Completed")
    assert connectwise_sandbox.ticket(12345)["closedFlag"] is False
    api = configure(app, connectwise_sandbox)
    answer = api.call("POST", "/tickets/12345/log-change", {"noteText": "x"})
    assert answer.status_code == 400, answer.get_json()
    assert answer.get_json()["error"] == "ticket_closed"
    assert answer.get_json()["message"] == "Ticket #12345 is closed: time cannot be logged"
    assert change_rows(app) == []


def test_the_field_refuses_each_kind_of_closed_ticket(field_app, connectwise_sandbox):
    _edit_ticket(connectwise_sandbox, 12345, closedFlag=True)  # status stays "New"
    _set_status(connectwise_sandbox, 12346, "Completed")  # closedFlag stays false
    for number in (12345, 12346):
        with field_app.test_request_context("/", method="POST"):
            f = form({"ticket": str(number)})
            assert not f.validate()
            assert f.ticket.errors == [f"Ticket #{number} is closed: time cannot be logged"]


# -- the company refusal's one wording ---------------------------------------------------------


def test_a_ticket_with_no_company_is_refused_in_plain_words(app, connectwise_sandbox):
    _edit_ticket(connectwise_sandbox, 12345, company=None)
    api = contoso(app, connectwise_sandbox)
    answer = api.call("POST", "/tickets/12345/log-change", {"noteText": "x"})
    assert answer.status_code == 400, answer.get_json()
    assert answer.get_json()["error"] == "ticket_other_company"
    assert answer.get_json()["message"] == "Ticket #12345 belongs to no company, not Contoso Ltd"


def test_the_company_refusal_never_names_a_bare_company_id():
    """One function words the refusal for the field, the API and the outbox: a company with
    no name is "another company" (never "company 255"), a ticket with none "no company"."""
    limited = TenantSettings(
        tenant_id=TENANT_A,
        base_url="https://cw.example.com",
        company_id="x",
        public_key="p",
        private_key="k",
        client_id="c",
        company_scope="listed",
        companies=(CompanyChoice(id=250, identifier="Contoso", name="Contoso Ltd"),),
    )
    unnamed = Ticket(id=12460, summary="s", company=None, company_id=255)
    nameless = Ticket(id=12461, summary="s", company=None, company_id=None)
    assert ticketchecks.company_refusal(unnamed, limited) == (
        "Ticket #12460 belongs to another company, not Contoso Ltd"
    )
    assert ticketchecks.company_refusal(nameless, limited) == (
        "Ticket #12461 belongs to no company, not Contoso Ltd"
    )
