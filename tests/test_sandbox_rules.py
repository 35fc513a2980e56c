"""Tenant rule switches (issue 13 item 3): each rule refuses when on and not when off; settable
from Python, the command line, ``/_sandbox/rules`` and the testing fixture; the JSON API's
log-change flow under the strict profile."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from flask_connectwise.sandbox import LENIENT, STRICT, Sandbox, SandboxRules
from flask_connectwise.sandbox.__main__ import build_parser, parse_rules
from tests.json_api import configure
from tests.sandbox_client import CW

TICKET = 12345
# A member with a full licence (the strict profile refuses the API member's time).
TECH = {"identifier": "tech"}


def _entry(ticket: int = TICKET, start: str = "2024-01-01T10:00:00Z", **extra: Any) -> dict:
    body = {
        "chargeToId": ticket,
        "chargeToType": "ServiceTicket",
        "member": TECH,
        "timeStart": start,
        "actualHours": 0.5,
    }
    return body | extra


WORK = {"workType": {"id": 3}, "workRole": {"id": 11}}


def _post(sb: Sandbox, body: dict) -> requests.Response:
    return CW(sb).post("time/entries", body)


def _error(answer: requests.Response) -> dict:
    assert answer.status_code == 400, answer.text
    return answer.json()["errors"][0]


def test_lenient_default_accepts_everything_the_strict_profile_refuses(connectwise_sandbox):
    sb = connectwise_sandbox
    assert sb.rules == LENIENT
    assert _post(sb, _entry()).status_code == 201
    assert _post(sb, _entry()).status_code == 201  # same slot again: overlap allowed
    assert _post(sb, _entry(member=None) | {"member": {"identifier": "SandboxAPI"}}).ok
    assert sb.time_entries(TICKET)[-1]["billableOption"] == "Billable"


def test_work_role_required(connectwise_sandbox):
    sb = connectwise_sandbox
    sb.set_rules({"work_role_required": True})
    err = _error(_post(sb, _entry(workType={"id": 3})))
    assert err["field"] == "workRole"
    assert err["message"] == "The default Work Role is not valid for the selected location."
    assert _post(sb, _entry(workRole={"id": 11})).status_code == 201


def test_work_type_required(connectwise_sandbox):
    sb = connectwise_sandbox
    sb.set_rules({"work_type_required": True})
    err = _error(_post(sb, _entry()))
    assert err["field"] == "workType" and err["code"] == "MissingRequiredField"
    assert _post(sb, _entry(workType={"id": 3})).status_code == 201


def test_billable_default(connectwise_sandbox):
    sb = connectwise_sandbox
    sb.set_rules({"billable_default": "DoNotBill"})
    assert _post(sb, _entry()).json()["billableOption"] == "DoNotBill"
    assert (
        _post(sb, _entry(billableOption="Billable", start="2024-02-01T10:00:00Z")).json()[
            "billableOption"
        ]
        == "Billable"
    )
    with pytest.raises(ValueError, match="billable_default"):
        SandboxRules(billable_default="Sometimes")


def test_overlapping_time_refused_for_the_same_member_only(connectwise_sandbox):
    sb = connectwise_sandbox
    sb.set_rules({"overlapping_time": True})
    assert _post(sb, _entry(start="2030-01-01T10:00:00Z")).status_code == 201
    err = _error(_post(sb, _entry(start="2030-01-01T10:15:00Z")))
    assert err["field"] == "timeStart" and "overlaps" in err["message"]
    assert _post(sb, _entry(start="2030-01-01T10:30:00Z")).status_code == 201  # touching is fine
    other = next(
        m["identifier"]
        for m in sb.members()
        if m["identifier"].lower() != "tech" and not m["inactiveFlag"] and m["id"] != 176
    )
    body = _entry(start="2030-01-01T10:15:00Z", member={"identifier": other})
    assert _post(sb, body).status_code == 201  # another member may overlap


def _close(sb: Sandbox, ticket_id: int) -> None:
    with sb.store.lock:
        sb.store.data.tickets[ticket_id]["closedFlag"] = True


def test_time_on_closed_tickets_refused(connectwise_sandbox):
    sb = connectwise_sandbox
    _close(sb, TICKET)
    assert _post(sb, _entry()).status_code == 201  # lenient
    sb.set_rules({"closed_ticket_time": True})
    err = _error(_post(sb, _entry(start="2031-01-01T10:00:00Z")))
    assert err["field"] == "chargeToId" and "closed" in err["message"]


def test_time_entry_not_allowed_status_is_a_switch(connectwise_sandbox):
    sb = connectwise_sandbox
    with sb.store.lock:
        status_id = sb.store.data.tickets[TICKET]["status"]["id"]
        sb.store.data.statuses[status_id]["timeEntryNotAllowed"] = True
    assert "not allowed" in _error(_post(sb, _entry()))["message"]  # on by default
    sb.set_rules({"time_entry_not_allowed": False})
    assert _post(sb, _entry()).status_code == 201


def test_time_for_api_members_refused(connectwise_sandbox):
    sb = connectwise_sandbox
    sb.set_rules({"api_member_time": True})
    err = _error(_post(sb, _entry(member={"identifier": "SandboxAPI"})))
    assert err["field"] == "member" and "API member" in err["message"]
    no_member = _entry()
    del no_member["member"]  # the API member by default
    assert _error(_post(sb, no_member))["field"] == "member"
    assert _post(sb, _entry()).status_code == 201


def test_strict_profile_turns_every_rule_on_including_cloud_auth_404(connectwise_sandbox):
    sb = connectwise_sandbox
    sb.set_rules(STRICT)
    assert sb.cloud_auth_404 is True
    bad = requests.get(f"{sb.url}/{sb.codebase}apis/3.0/system/info", timeout=5)
    assert bad.status_code == 404
    assert _post(sb, _entry()).status_code == 400
    created = _post(sb, _entry(**WORK))
    assert created.status_code == 201 and created.json()["billableOption"] == "DoNotBill"
    assert all(getattr(STRICT, name) for name in ("closed_ticket_time", "overlapping_time"))


def test_reset_restores_the_starting_rules():
    with Sandbox(rules="strict") as sb:
        assert sb.rules == STRICT and sb.cloud_auth_404
        sb.set_rules(LENIENT)
        assert sb.rules == LENIENT and not sb.cloud_auth_404
        sb.reset()
        assert sb.rules == STRICT and sb.cloud_auth_404


def test_control_route(connectwise_sandbox):
    sb = connectwise_sandbox
    url = f"{sb.url}/_sandbox/rules"
    assert requests.get(url, timeout=5).json() == LENIENT.as_dict()
    answer = requests.post(url, json={"profile": "strict", "overlapping_time": False}, timeout=5)
    assert answer.status_code == 200
    assert answer.json()["work_role_required"] is True and not answer.json()["overlapping_time"]
    assert sb.rules.work_role_required and sb.cloud_auth_404
    answer = requests.post(url, json={"billable_default": "NoCharge"}, timeout=5)
    assert answer.json()["work_role_required"] is True  # changes apply to the rules in force
    assert sb.rules.billable_default == "NoCharge"
    for bad in ({"no_such_rule": True}, {"overlapping_time": "yes"}, {"profile": "mild"}):
        refused = requests.post(url, json=bad, timeout=5)
        assert refused.status_code == 400, bad
    assert requests.post(f"{sb.url}/_sandbox/reset", timeout=5).ok
    assert sb.rules == LENIENT


def test_command_line_rules():
    assert parse_rules([]) == LENIENT
    assert parse_rules(["strict"]) == STRICT
    rules = parse_rules(["strict", "no-overlapping-time", "billable_default=NoCharge"])
    assert rules == STRICT.updated({"overlapping_time": False, "billable_default": "NoCharge"})
    assert parse_rules(["work_role_required", "closed_ticket_time=true"]) == LENIENT.updated(
        {"work_role_required": True, "closed_ticket_time": True}
    )
    assert build_parser().parse_args(["--rule", "strict", "--rule", "x"]).rule == ["strict", "x"]
    import argparse

    for bad in (["nonsense"], ["overlapping_time=maybe"], ["billable_default=Free"]):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_rules(bad)


@pytest.mark.parametrize(
    "connectwise_sandbox_rules", ["strict", {"work_type_required": True}], indirect=True
)
def test_fixture_parameter(connectwise_sandbox, connectwise_sandbox_rules):
    assert connectwise_sandbox.rules.work_type_required


# ---- the JSON API's log-change flow under the strict profile ------------------------------


def _open_status(sb: Sandbox) -> dict:
    ticket = sb.ticket(TICKET)
    return next(
        s
        for s in sb.board_statuses(ticket["board"]["id"])
        if s["id"] != ticket["status"]["id"]
        and not s.get("inactive")
        and not s.get("closedStatus")
        and not s.get("timeEntryNotAllowed")
    )


def _log_change(app, sb: Sandbox) -> tuple[dict, dict]:
    api = configure(app, sb)
    status = _open_status(sb)
    answer = api.call(
        "POST",
        f"/tickets/{TICKET}/log-change",
        {
            "noteText": "Updated voice configuration under strict rules",
            "memberIdentifier": "tech@company.com",
            "hours": 0.25,
            "statusId": status["id"],
        },
    )
    return answer.get_json(), status


@pytest.mark.parametrize(
    "connectwise_sandbox_rules",
    [STRICT.updated({"work_type_required": False, "work_role_required": False})],
    indirect=True,
)
def test_log_change_under_strict_rules_without_work_rules(app, connectwise_sandbox):
    sb = connectwise_sandbox
    notes, times = len(sb.notes(TICKET)), len(sb.time_entries(TICKET))
    body, status = _log_change(app, sb)
    assert body["note"]["ok"] and body["timeEntry"]["ok"] and body["status"]["ok"], body
    assert len(sb.notes(TICKET)) == notes + 1
    assert len(sb.time_entries(TICKET)) == times + 1
    assert sb.time_entries(TICKET)[-1]["billableOption"] == "DoNotBill"
    assert sb.ticket(TICKET)["status"]["id"] == status["id"]


@pytest.mark.parametrize("connectwise_sandbox_rules", ["strict"], indirect=True)
def test_log_change_under_strict_profile_names_the_work_role(app, connectwise_sandbox):
    """The client sends no work type/role yet (issue 14): the time step fails and says why."""
    sb = connectwise_sandbox
    notes, times = len(sb.notes(TICKET)), len(sb.time_entries(TICKET))
    body, status = _log_change(app, sb)
    assert body["note"]["ok"] and body["status"]["ok"], body
    assert body["timeEntry"]["ok"] is False
    assert "ConnectWise refused the time entry (The workType field is required)" in str(
        body["timeEntry"]["error"]
    )
    assert len(sb.notes(TICKET)) == notes + 1
    assert len(sb.time_entries(TICKET)) == times
    assert sb.ticket(TICKET)["status"]["id"] == status["id"]


@pytest.mark.parametrize("connectwise_sandbox_rules", [{"work_role_required": True}], indirect=True)
def test_log_change_with_work_role_required_says_so(app, connectwise_sandbox):
    body, _ = _log_change(app, connectwise_sandbox)
    assert body["note"]["ok"] and body["status"]["ok"] and not body["timeEntry"]["ok"], body
    assert "The default Work Role is not valid for the selected location" in str(
        body["timeEntry"]["error"]
    )
