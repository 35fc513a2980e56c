"""Work types and roles on time entries, checked always against time/workTypes and
time/workRoles (unknown, inactive, role not valid at the board's location), and the
``rate_limit`` tenant rule through Python, the command line, ``/_sandbox/rules`` and the
``connectwise_sandbox_rules`` fixture (issue 13 item 3)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from flask_connectwise.sandbox import LENIENT, Sandbox, SandboxRules
from flask_connectwise.sandbox.__main__ import build_parser, parse_rules
from tests.sandbox_client import CW

TICKET = 12345


def _entry(**extra: Any) -> dict[str, Any]:
    body = {
        "chargeToId": TICKET,
        "chargeToType": "ServiceTicket",
        "member": {"identifier": "tech"},
        "timeStart": "2024-01-01T10:00:00Z",
        "actualHours": 0.5,
    }
    return body | extra


def _error(answer: requests.Response) -> dict[str, Any]:
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["code"] == "InvalidObject", body
    return dict(body["errors"][0])


# ---- work types and roles ------------------------------------------------------------------
@pytest.mark.parametrize(
    "field,ref,message",
    [
        ("workType", {"id": 999}, "Work Type 999 not found"),
        ("workType", {"name": "Overtime"}, "Work Type Overtime not found"),
        ("workRole", {"id": 999}, "Work Role 999 not found"),
        ("workRole", {"name": "Astronaut"}, "Work Role Astronaut not found"),
        ("workType", {"id": 8}, "Work Type 8 is inactive"),
        ("workRole", {"id": 16}, "Work Role 16 is inactive"),
        ("workType", {"id": True}, "Work Type True not found"),
        ("workRole", "System Engineer", "workRole must be an object with an id or name."),
    ],
)
def test_unknown_or_inactive_work_type_or_role_is_refused_on_its_field(
    connectwise_sandbox: Sandbox, field: str, ref: Any, message: str
) -> None:
    sb = connectwise_sandbox
    assert sb.rules == LENIENT  # checked always, not only under the strict rules
    before = len(sb.time_entries(TICKET))
    err = _error(CW(sb).post("time/entries", _entry(**{field: ref})))
    assert (err["field"], err["resource"], err["message"]) == (field, "timeEntry", message)
    assert len(sb.time_entries(TICKET)) == before


def test_work_role_not_valid_at_the_boards_location_is_refused(
    connectwise_sandbox: Sandbox,
) -> None:
    sb = connectwise_sandbox
    board = sb.ticket(TICKET)["board"]["id"]
    assert sb.store.data.boards[board]["location"]["id"] == 2
    assert sb.store.data.work_roles[15]["locationIds"] == [3]
    err = _error(CW(sb).post("time/entries", _entry(workRole={"id": 15})))
    assert err["field"] == "workRole"
    assert err["message"] == "The Work Role is not valid for the selected location."
    # The same role is fine once the board sits at location 3: the board decides.
    with sb.store.lock:
        sb.store.data.boards[board]["location"] = {"id": 3, "name": "Orlando Office"}
    answer = CW(sb).post("time/entries", _entry(workRole={"id": 15}))
    assert answer.status_code == 201, answer.text
    assert answer.json()["locationId"] == 3
    assert answer.json()["workRole"]["id"] == 15


def test_valid_work_type_and_role_are_stored_with_the_boards_location(
    connectwise_sandbox: Sandbox,
) -> None:
    sb = connectwise_sandbox
    answer = CW(sb).post(
        "time/entries", _entry(workType={"name": "after hours"}, workRole={"id": 13})
    )
    assert answer.status_code == 201, answer.text
    stored = sb.time_entries(TICKET)[-1]
    assert stored["workType"] == {
        "id": 5,
        "name": "After Hours",
        "_info": {"workType_href": f"{sb.url}/v4_6_release/apis/3.0/time/workTypes/5"},
    }
    assert stored["workRole"] == {
        "id": 13,
        "name": "Network Engineer",
        "_info": {"workRole_href": f"{sb.url}/v4_6_release/apis/3.0/time/workRoles/13"},
    }
    board = sb.ticket(TICKET)["board"]["id"]
    assert stored["locationId"] == sb.store.data.boards[board]["location"]["id"] == 2
    assert stored["billableOption"] == "Billable"  # the body or the rule decides, as before
    assert answer.json()["workType"]["id"] == 5


def test_entry_without_work_type_or_role_keeps_the_defaults(connectwise_sandbox: Sandbox) -> None:
    sb = connectwise_sandbox
    assert CW(sb).post("time/entries", _entry()).status_code == 201
    stored = sb.time_entries(TICKET)[-1]
    assert (stored["workType"]["id"], stored["workType"]["name"]) == (3, "Regular")
    assert (stored["workRole"]["id"], stored["workRole"]["name"]) == (11, "System Engineer")
    assert stored["locationId"] == 2


def test_missing_role_under_work_role_required_keeps_the_default_role_message(
    connectwise_sandbox: Sandbox,
) -> None:
    sb = connectwise_sandbox
    sb.set_rules({"work_role_required": True})
    err = _error(CW(sb).post("time/entries", _entry(workType={"id": 3})))
    assert err["message"] == "The default Work Role is not valid for the selected location."


# ---- the rate_limit rule -------------------------------------------------------------------
def _assert_limited(sb: Sandbox) -> None:
    """One request passes, the next is a ConnectWiseApi 429 with Retry-After."""
    cw = CW(sb)
    assert cw.get("system/info").status_code == 200
    answer = cw.get("system/info")
    assert answer.status_code == 429, answer.text
    assert int(answer.headers["Retry-After"]) >= 1
    body = answer.json()
    assert body["code"] == "ConnectWiseApi"
    assert body["errors"] is None


def _assert_unlimited(sb: Sandbox) -> None:
    cw = CW(sb)
    assert all(cw.get("system/info").status_code == 200 for _ in range(4))


@pytest.fixture
def own_sandbox() -> Iterator[list[Sandbox]]:
    started: list[Sandbox] = []
    yield started
    for sb in started:
        sb.stop()


def test_rate_limit_rule_from_python_and_reset_restores_it(own_sandbox: list[Sandbox]) -> None:
    sb = Sandbox(host="127.0.0.1", port=0, rules={"rate_limit": "1/60"}).start()
    own_sandbox.append(sb)
    assert sb.rules.rate_limit == "1/60"
    assert sb.rules.closed_ticket_time is False  # not part of any other rule
    _assert_limited(sb)
    sb.set_rules({"rate_limit": None})
    _assert_unlimited(sb)
    sb.reset()  # the starting rules, limit included
    assert sb.rules.rate_limit == "1/60"
    _assert_limited(sb)


def test_rate_limit_rule_from_the_command_line(own_sandbox: list[Sandbox]) -> None:
    args = build_parser().parse_args(["--rule", "strict", "--rule", "rate_limit=1/60"])
    rules = parse_rules(args.rule)
    assert rules.rate_limit == "1/60" and rules.work_role_required
    assert parse_rules(["rate_limit=1/60", "no-rate-limit"]).rate_limit is None
    assert parse_rules(["rate_limit=1/60", "rate_limit=off"]).rate_limit is None
    sb = Sandbox(host="127.0.0.1", port=0, rules=rules).start()
    own_sandbox.append(sb)
    _assert_limited(sb)


def test_rate_limit_rule_from_the_control_route(connectwise_sandbox: Sandbox) -> None:
    sb = connectwise_sandbox
    url = f"{sb.url}/_sandbox/rules"
    answer = requests.post(url, json={"rate_limit": " 1 / 60 "}, timeout=5)
    assert answer.status_code == 200, answer.text
    assert answer.json()["rate_limit"] == "1/60"
    assert requests.get(url, timeout=5).json()["rate_limit"] == "1/60"
    _assert_limited(sb)
    assert requests.post(url, json={"rate_limit": None}, timeout=5).json()["rate_limit"] is None
    _assert_unlimited(sb)


@pytest.mark.parametrize("connectwise_sandbox_rules", [{"rate_limit": "1/60"}], indirect=True)
def test_rate_limit_rule_from_the_fixture(connectwise_sandbox: Sandbox) -> None:
    assert connectwise_sandbox.rules.rate_limit == "1/60"
    _assert_limited(connectwise_sandbox)


def test_fixture_leaves_the_session_sandbox_unlimited(connectwise_sandbox: Sandbox) -> None:
    assert connectwise_sandbox.rules.rate_limit is None
    _assert_unlimited(connectwise_sandbox)


def test_rate_limit_rule_and_the_old_knob_drive_one_limiter_last_set_wins(
    connectwise_sandbox: Sandbox,
) -> None:
    sb = connectwise_sandbox
    sb.set_rules({"rate_limit": "1/60"})
    sb.set_rate_limit(None)
    assert sb.rules.rate_limit is None
    _assert_unlimited(sb)
    sb.set_rate_limit(2, 30, retry_after=7)
    assert sb.rules.rate_limit == "2/30"
    # The same limit again: the window and Retry-After are kept.
    sb.set_rules(sb.rules.updated({"billable_default": "NoCharge"}))
    cw = CW(sb)
    assert [cw.get("system/info").status_code for _ in range(3)] == [200, 200, 429]
    assert cw.get("system/info").headers["Retry-After"] == "7"
    sb.set_rules({"rate_limit": "1/60"})
    assert sb.rules.rate_limit == "1/60"
    sb.set_rate_limit(3, 1_000_000.0)
    assert sb.rules.rate_limit == "3/1000000"
    sb.set_rate_limit(3, 0.5)
    assert sb.rules.rate_limit == "3/0.5"
    with pytest.raises(ValueError, match="rate_limit must be N/SECONDS"):
        sb.set_rate_limit(0, 60)


@pytest.mark.parametrize("bad", ["fast", "0/60", "5/0", "5", "-1/60", "1/60/2", 5, True])
def test_bad_rate_limit_spec_is_refused_clearly(connectwise_sandbox: Sandbox, bad: Any) -> None:
    with pytest.raises(ValueError, match=r"rate_limit must be N/SECONDS .*e\.g\. 60/60"):
        SandboxRules(rate_limit=bad)
    url = f"{connectwise_sandbox.url}/_sandbox/rules"
    answer = requests.post(url, json={"rate_limit": bad}, timeout=5)
    assert answer.status_code == 400
    assert "rate_limit must be N/SECONDS" in answer.json()["message"]
    assert connectwise_sandbox.rules.rate_limit is None
    if isinstance(bad, str):
        with pytest.raises(argparse.ArgumentTypeError, match="rate_limit must be N/SECONDS"):
            parse_rules([f"rate_limit={bad}"])
        with pytest.raises(SystemExit):  # argparse: a usage line and the message, no traceback
            build_parser().parse_args(["--rate-limit", bad])
