"""The direct JSON endpoints ``POST /tickets/<id>/notes`` and ``POST /tickets/<id>/time`` under
the tenant's settings (issue 14): note visibility (internal by default) and e-mail contact, the
work type, role, billable option and ``addTo…`` flag on every time entry (so a strict tenant
accepts it), and the member's own keys when ``CONNECTWISE_IMPERSONATE_MEMBERS`` is on, as the
outbox writes. Against the sandbox over loopback."""

from __future__ import annotations

from typing import Any

import pytest

from flask_connectwise.testing import configure_tenant
from tests.field_app import change_rows
from tests.hosts import TENANT_A
from tests.json_api import Api
from tests.outbox_helpers import TICKET

CLOSED_TICKET = 12348
NOTES = f"service/tickets/{TICKET}/notes"
FLAGS = ("detailDescriptionFlag", "internalAnalysisFlag", "resolutionFlag")
ADD_TO = ("addToDetailDescriptionFlag", "addToInternalAnalysisFlag", "addToResolutionFlag")


def api_for(app: Any, sandbox: Any, **settings: Any) -> Api:
    """Tenant A configured with ``settings`` (the JSON API's names), its operator jdoe."""
    configure_tenant(app, TENANT_A, sandbox, **settings)
    return Api(app, TENANT_A)


def posted(sandbox: Any, path: str) -> list[dict[str, Any]]:
    return [dict(r.json or {}) for r in sandbox.requests(method="POST", path=path)]


def shown_as(body: dict[str, Any], flags: tuple[str, ...] = FLAGS) -> str:
    """Which of discussion / internal / resolution the body's flags say (exactly one)."""
    [name] = [
        n for n, f in zip(("discussion", "internal", "resolution"), flags, strict=True) if body[f]
    ]
    return name


# -- notes -------------------------------------------------------------------------------------


def test_a_note_is_internal_by_default(app, connectwise_sandbox):
    api = api_for(app, connectwise_sandbox)
    connectwise_sandbox.clear_requests()
    answer = api.call("POST", f"/tickets/{TICKET}/notes", {"text": "checked the trunk"})
    assert answer.status_code == 201, answer.get_json()
    [body] = posted(connectwise_sandbox, NOTES)
    assert shown_as(body) == "internal"
    assert body["processNotifications"] is False
    [row] = change_rows(app)
    assert row.internal is True


@pytest.mark.parametrize(
    ("sent", "shown"),
    [
        ({}, "discussion"),  # the tenant's noteVisibility
        ({"internal": True}, "internal"),
        ({"internal": False}, "discussion"),
        ({"visibility": "resolution"}, "resolution"),
        ({"visibility": "internal", "internal": False}, "internal"),  # visibility wins
    ],
)
def test_the_bodys_visibility_else_internal_else_the_tenants(app, connectwise_sandbox, sent, shown):
    api = api_for(app, connectwise_sandbox, noteVisibility="discussion")
    connectwise_sandbox.clear_requests()
    answer = api.call("POST", f"/tickets/{TICKET}/notes", {"text": "x"} | sent)
    assert answer.status_code == 201, answer.get_json()
    [body] = posted(connectwise_sandbox, NOTES)
    assert shown_as(body) == shown


def test_a_bad_visibility_or_internal_is_a_field_named_400(app, connectwise_sandbox):
    api = api_for(app, connectwise_sandbox)
    connectwise_sandbox.clear_requests()
    for sent, field in (({"visibility": "all"}, "visibility"), ({"internal": "yes"}, "internal")):
        answer = api.call("POST", f"/tickets/{TICKET}/notes", {"text": "x"} | sent)
        assert answer.status_code == 400 and answer.get_json()["field"] == field
    assert posted(connectwise_sandbox, NOTES) == []


def test_a_discussion_note_emails_the_contact_when_the_tenant_says_so(app, connectwise_sandbox):
    api = api_for(app, connectwise_sandbox, noteVisibility="discussion", emailContact=True)
    connectwise_sandbox.clear_requests()
    assert api.call("POST", f"/tickets/{TICKET}/notes", {"text": "a"}).status_code == 201
    assert (
        api.call("POST", f"/tickets/{TICKET}/notes", {"text": "b", "internal": True}).status_code
        == 201
    )
    discussion, internal = posted(connectwise_sandbox, NOTES)
    assert shown_as(discussion) == "discussion" and discussion["processNotifications"] is True
    assert shown_as(internal) == "internal" and internal["processNotifications"] is False


# -- time --------------------------------------------------------------------------------------


@pytest.mark.parametrize("connectwise_sandbox_rules", ["strict"], indirect=True)
def test_time_under_the_strict_profile_carries_the_tenants_work_settings(app, connectwise_sandbox):
    api = api_for(
        app,
        connectwise_sandbox,
        workType={"id": 3, "name": "Regular"},
        workRole={"id": 11, "name": "System Engineer"},
        billableOption="Billable",
    )
    connectwise_sandbox.clear_requests()
    answer = api.call("POST", f"/tickets/{TICKET}/time", {"minutes": 30, "notes": "trunk"})
    assert answer.status_code == 201, answer.get_json()
    [body] = posted(connectwise_sandbox, "time/entries")
    assert body["workType"] == {"id": 3} and body["workRole"] == {"id": 11}
    assert body["billableOption"] == "Billable"
    assert shown_as(body, ADD_TO) == "internal"  # the tenant's default note visibility
    entry = next(
        e for e in connectwise_sandbox.time_entries(TICKET) if e["id"] == answer.get_json()["id"]
    )
    assert entry["workType"]["id"] == 3 and entry["workRole"]["id"] == 11
    assert entry["billableOption"] == "Billable"


@pytest.mark.parametrize("connectwise_sandbox_rules", ["strict"], indirect=True)
def test_under_the_strict_profile_time_without_the_tenants_work_type_is_refused(
    app, connectwise_sandbox
):
    """The other side of the test above: what makes it pass is the tenant's work settings."""
    api = api_for(app, connectwise_sandbox)
    answer = api.call("POST", f"/tickets/{TICKET}/time", {"minutes": 30})
    assert answer.status_code >= 400


def test_time_notes_are_copied_where_the_body_says(app, connectwise_sandbox):
    api = api_for(app, connectwise_sandbox)
    connectwise_sandbox.clear_requests()
    for sent in ({"visibility": "discussion"}, {"internal": True}, {}):
        answer = api.call("POST", f"/tickets/{TICKET}/time", {"minutes": 5, "notes": "n"} | sent)
        assert answer.status_code == 201, answer.get_json()
    assert [shown_as(b, ADD_TO) for b in posted(connectwise_sandbox, "time/entries")] == [
        "discussion",
        "internal",
        "internal",
    ]


def test_time_on_a_closed_ticket_is_refused_even_under_the_warn_policy(app, connectwise_sandbox):
    """``/time`` writes nothing else: "warn" (skip the time, keep the rest) would answer 201
    for nothing written, so the ticket is refused as under "refuse"."""
    api = api_for(app, connectwise_sandbox, ticketPolicy="warn")
    connectwise_sandbox.clear_requests()
    answer = api.call("POST", f"/tickets/{CLOSED_TICKET}/time", {"minutes": 15})
    assert answer.status_code == 400, answer.get_json()
    assert answer.get_json()["error"] == "ticket_closed"
    assert answer.get_json()["message"] == "Ticket #12348 is closed: time cannot be logged"
    assert posted(connectwise_sandbox, "time/entries") == [] and change_rows(app) == []


# -- impersonation -----------------------------------------------------------------------------


def test_with_impersonation_on_notes_and_time_are_written_as_the_member(app, connectwise_sandbox):
    app.config["CONNECTWISE_IMPERSONATE_MEMBERS"] = True
    api = api_for(app, connectwise_sandbox)
    connectwise_sandbox.clear_requests()
    note = api.call("POST", f"/tickets/{TICKET}/notes", {"text": "as jdoe"})
    entry = api.call("POST", f"/tickets/{TICKET}/time", {"minutes": 15, "notes": "as jdoe"})
    assert note.status_code == 201 and entry.status_code == 201, entry.get_json()
    writes = connectwise_sandbox.requests(method="POST", path=NOTES)
    writes += connectwise_sandbox.requests(method="POST", path="time/entries")
    assert [r.auth_member for r in writes] == ["jdoe", "jdoe"]  # jdoe's token keys
    stored = next(n for n in connectwise_sandbox.notes(TICKET) if n["id"] == note.get_json()["id"])
    assert stored["_info"]["updatedBy"] == "jdoe"


def test_with_impersonation_off_the_api_keys_write(app, connectwise_sandbox):
    assert app.config.get("CONNECTWISE_IMPERSONATE_MEMBERS") is False
    api = api_for(app, connectwise_sandbox)
    connectwise_sandbox.clear_requests()
    assert api.call("POST", f"/tickets/{TICKET}/notes", {"text": "plain"}).status_code == 201
    assert api.call("POST", f"/tickets/{TICKET}/time", {"minutes": 15}).status_code == 201
    writes = connectwise_sandbox.requests(method="POST", path=NOTES)
    writes += connectwise_sandbox.requests(method="POST", path="time/entries")
    assert [r.auth_member for r in writes] == [None, None]
    assert connectwise_sandbox.requests(method="POST", path="system/members/*/tokens") == []
