"""Delivery under the tenant's settings (issue 14): work type/role, billable option and addTo
flag on every time entry, note visibility and e-mail contact, the member checked before any
write, the ticket's company, closed tickets and statuses that forbid time, and the status per
board. Against the real sandbox over loopback."""

from __future__ import annotations

from typing import Any

import pytest

from flask_connectwise.delivery import reference_line
from flask_connectwise.models import GAVE_UP
from flask_connectwise.outbox import Outcome
from flask_connectwise.testing import configure_tenant
from tests.hosts import TENANT_A, cw_of
from tests.outbox_helpers import TICKET

VOICE_TICKET = 12346  # Voice Services board (Fabrikam)
PARTS_TICKET = 12347  # Help Desk, "Waiting on Parts": no time entries
CLOSED_TICKET = 12348  # Help Desk, Closed (Contoso)
CONTOSO = {"id": 250, "identifier": "Contoso", "name": "Contoso Ltd"}


def status_id(sandbox: Any, board_id: int, name: str) -> int:
    return next(s["id"] for s in sandbox.board_statuses(board_id) if s["name"] == name)


def setup(app: Any, sandbox: Any, **settings: Any) -> None:
    configure_tenant(app, TENANT_A, sandbox, **settings)


def log(app: Any, ticket: int = TICKET, **fields: Any) -> tuple[Outcome, Any]:
    """Record a change for tenant A and deliver it now; ``(outcome, row)``."""
    with app.app_context():
        cw = cw_of(app)
        fields = {"hours": 0.25} | fields
        row, _ = cw.outbox.record(TENANT_A, ticket, "Moved DID to ext. 204", **fields)
        cw.outbox.session.commit()
        outcome = cw.outbox.deliver(row)
        return outcome, row


def copies(sandbox: Any, ticket: int, reference: str) -> tuple[int, int]:
    marker = reference_line(reference)
    notes = sum(marker in n["text"] for n in sandbox.notes(ticket))
    entries = sum(marker in (e.get("notes") or "") for e in sandbox.time_entries(ticket))
    return notes, entries


def entry_of(sandbox: Any, ticket: int, reference: str) -> dict[str, Any]:
    marker = reference_line(reference)
    return next(e for e in sandbox.time_entries(ticket) if marker in (e.get("notes") or ""))


def note_body(sandbox: Any, ticket: int, reference: str) -> dict[str, Any]:
    """The one note this change posted (the sandbox is shared by the session's tests: another
    test's background delivery may post to the same ticket meanwhile)."""
    marker = reference_line(reference)
    posts = [
        r
        for r in sandbox.requests(method="POST", path=f"service/tickets/{ticket}/notes")
        if marker in ((r.json or {}).get("text") or "")
    ]
    assert len(posts) == 1
    return dict(posts[0].json)


def time_body(sandbox: Any, reference: str) -> dict[str, Any]:
    """The one time entry this change posted."""
    marker = reference_line(reference)
    posts = [
        r
        for r in sandbox.requests(method="POST", path="time/entries")
        if marker in ((r.json or {}).get("notes") or "")
    ]
    assert len(posts) == 1
    return dict(posts[0].json)


# -- time entries real tenants accept ----------------------------------------------------------


def test_time_entry_carries_the_tenants_work_type_role_billable_and_add_to(
    app, connectwise_sandbox
):
    setup(
        app,
        connectwise_sandbox,
        workType={"id": 4, "name": "Remote Support"},
        workRole={"id": 12, "name": "Help Desk Technician"},
        billableOption="DoNotBill",
    )
    connectwise_sandbox.clear_requests()
    outcome, row = log(app, member="jdoe", visibility="internal")
    assert outcome.delivered, outcome.summary()
    body = next(  # this change's entry (the sandbox is shared by the session's tests)
        r.json
        for r in connectwise_sandbox.requests(method="POST", path="time/entries")
        if row.reference in (r.json or {}).get("notes", "")
    )
    assert body["workType"] == {"id": 4} and body["workRole"] == {"id": 12}
    assert body["billableOption"] == "DoNotBill"
    assert body["addToInternalAnalysisFlag"] is True
    assert body["addToDetailDescriptionFlag"] is False and body["addToResolutionFlag"] is False
    assert body["member"] == {"id": 180}  # jdoe, checked
    entry = entry_of(connectwise_sandbox, TICKET, row.reference)
    assert entry["workType"]["id"] == 4 and entry["workRole"]["id"] == 12
    note = note_body(connectwise_sandbox, TICKET, row.reference)
    assert note["internalAnalysisFlag"] is True and note["detailDescriptionFlag"] is False
    assert note["processNotifications"] is False


def test_a_discussion_note_emails_the_contact_when_the_tenant_says_so(app, connectwise_sandbox):
    setup(app, connectwise_sandbox, emailContact=True)
    connectwise_sandbox.clear_requests()
    outcome, row = log(app, member="jdoe", visibility="discussion")
    assert outcome.delivered
    note = note_body(connectwise_sandbox, TICKET, row.reference)
    assert note["detailDescriptionFlag"] is True and note["processNotifications"] is True
    body = time_body(connectwise_sandbox, row.reference)
    assert body["addToDetailDescriptionFlag"] is True


def test_the_row_internal_flag_gives_the_visibility_when_none_is_recorded(app, connectwise_sandbox):
    setup(app, connectwise_sandbox, emailContact=True)
    connectwise_sandbox.clear_requests()
    outcome, row = log(app, member="jdoe", internal=True)
    assert outcome.delivered
    note = note_body(connectwise_sandbox, TICKET, row.reference)
    assert note["internalAnalysisFlag"] is True
    assert note["processNotifications"] is False  # an internal note is never e-mailed


# -- attribution -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("member", "words"),
    [
        ("rbrown", "ConnectWise member 'rbrown' is inactive"),
        ("nobody", "ConnectWise member 'nobody' does not exist"),
        ("SandboxAPI", "'SandboxAPI' is an API member; time cannot be logged as it"),
    ],
)
def test_an_unusable_member_fails_the_change_with_nothing_written(
    app, connectwise_sandbox, member, words
):
    setup(app, connectwise_sandbox)
    ticket = connectwise_sandbox.ticket(TICKET)
    outcome, row = log(app, member=member, status_id=ticket["status"]["id"])
    assert outcome.state == GAVE_UP and outcome.needs_attention
    data = outcome.to_json()
    for key in ("note", "timeEntry", "status"):
        assert words in data[key]["error"], data
    assert words in outcome.summary()
    assert connectwise_sandbox.writes() == []
    assert copies(connectwise_sandbox, TICKET, row.reference) == (0, 0)


def test_no_member_skips_the_time_entry_and_says_why(app, connectwise_sandbox):
    setup(app, connectwise_sandbox)
    outcome, row = log(app)
    assert outcome.delivered
    data = outcome.to_json()
    reason = "no time entry: no ConnectWise member is linked to the operator"
    assert data["timeEntry"] == {"ok": True, "state": "skipped", "skipped": True, "reason": reason}
    assert data["note"]["ok"] and "id" in data["note"]
    assert "No time entry: no ConnectWise member is linked to the operator." in outcome.summary()
    assert copies(connectwise_sandbox, TICKET, row.reference) == (1, 0)
    with app.app_context():
        stored = cw_of(app).outbox.find(row.reference)
        assert (stored.time_state, stored.time_error) == ("skipped", reason)


def test_without_require_member_time_goes_to_the_api_member(app, connectwise_sandbox):
    app.config["CONNECTWISE_REQUIRE_MEMBER"] = False
    setup(app, connectwise_sandbox)
    outcome, row = log(app)
    assert outcome.delivered and not outcome.steps[next(iter(outcome.steps))].skipped
    assert copies(connectwise_sandbox, TICKET, row.reference) == (1, 1)


def test_the_member_is_checked_once_per_cache_period(app, connectwise_sandbox):
    setup(app, connectwise_sandbox)
    connectwise_sandbox.clear_requests()
    for _ in range(3):
        outcome, _ = log(app, member="jdoe")
        assert outcome.delivered
    assert len(connectwise_sandbox.requests(path="system/members")) == 1


def test_the_member_is_checked_again_after_the_cache_period(app, connectwise_sandbox):
    app.config["CONNECTWISE_MEMBER_CACHE_SECONDS"] = 0
    setup(app, connectwise_sandbox)
    connectwise_sandbox.clear_requests()
    for _ in range(2):
        assert log(app, member="jdoe")[0].delivered
    assert len(connectwise_sandbox.requests(path="system/members")) == 2


def test_member_check_api(app, connectwise_sandbox):
    setup(app, connectwise_sandbox)
    from flask_connectwise.errors import MemberUnusableError

    with app.app_context():
        cw = cw_of(app)
        member = cw.members.check(TENANT_A, "jdoe")
        assert (member.identifier, member.license_class) == ("jdoe", "F")
        with pytest.raises(MemberUnusableError) as caught:
            cw.members.check(TENANT_A, "SandboxAPI")
        assert caught.value.permanent and caught.value.http_status == 400
        assert caught.value.error_code == "member_unusable"
        assert app.extensions["test_cw"].members is cw.members


# -- the ticket's company, closed tickets, statuses that forbid time ---------------------------


def test_a_ticket_of_another_company_is_refused_with_nothing_written(app, connectwise_sandbox):
    setup(app, connectwise_sandbox, companyScope="listed", companies=[CONTOSO])
    other = next(
        t for t in connectwise_sandbox.tickets() if t["company"]["id"] not in (CONTOSO["id"],)
    )
    outcome, _ = log(app, ticket=other["id"], member="jdoe")
    expected = f"Ticket #{other['id']} belongs to {other['company']['name']}, not Contoso Ltd"
    assert outcome.state == GAVE_UP
    assert outcome.to_json()["note"]["error"] == expected
    assert outcome.to_json()["timeEntry"]["error"] == expected
    assert connectwise_sandbox.writes() == []


def test_the_woodgrove_message_names_both_companies(app, connectwise_sandbox):
    setup(app, connectwise_sandbox, companyScope="listed", companies=[CONTOSO])
    woodgrove = next(t for t in connectwise_sandbox.tickets() if t["company"]["id"] == 255)
    outcome, _ = log(app, ticket=woodgrove["id"], member="jdoe")
    assert outcome.to_json()["note"]["error"] == (
        f"Ticket #{woodgrove['id']} belongs to Woodgrove Bank, not Contoso Ltd"
    )


def test_a_ticket_of_the_tenants_company_goes_out(app, connectwise_sandbox):
    setup(app, connectwise_sandbox, companyScope="listed", companies=[CONTOSO])
    outcome, row = log(app, member="jdoe")  # 12345 is Contoso's
    assert outcome.delivered
    assert copies(connectwise_sandbox, TICKET, row.reference) == (1, 1)


def test_a_closed_ticket_gets_the_note_and_no_time_entry(app, connectwise_sandbox):
    setup(app, connectwise_sandbox)
    outcome, row = log(app, ticket=CLOSED_TICKET, member="jdoe")
    assert outcome.delivered
    reason = f"no time entry: ticket #{CLOSED_TICKET} is closed"
    assert outcome.to_json()["timeEntry"]["reason"] == reason
    assert copies(connectwise_sandbox, CLOSED_TICKET, row.reference) == (1, 0)


def test_a_status_that_forbids_time_skips_the_time_entry(app, connectwise_sandbox):
    setup(app, connectwise_sandbox)
    outcome, row = log(app, ticket=PARTS_TICKET, member="jdoe")
    assert outcome.delivered
    assert outcome.to_json()["timeEntry"]["reason"] == (
        "no time entry: status Waiting on Parts does not allow time entries"
    )
    assert copies(connectwise_sandbox, PARTS_TICKET, row.reference) == (1, 0)


# -- status per board --------------------------------------------------------------------------


def test_the_status_comes_from_the_tenants_board_map(app, connectwise_sandbox):
    in_progress = status_id(connectwise_sandbox, 1, "In Progress")
    setup(
        app,
        connectwise_sandbox,
        boardStatuses=[
            {
                "boardId": 1,
                "boardName": "Help Desk",
                "statusId": in_progress,
                "statusName": "In Progress",
            }
        ],
    )
    outcome, _ = log(app, member="jdoe", auto_status=True)
    assert outcome.delivered and outcome.to_json()["status"]["ok"]
    assert connectwise_sandbox.ticket(TICKET)["status"]["id"] == in_progress
    outcome, _ = log(app, ticket=VOICE_TICKET, member="jdoe", auto_status=True)
    assert outcome.delivered
    assert outcome.to_json()["status"] == {
        "ok": True,
        "state": "skipped",
        "skipped": True,
        "reason": "status left as is: no status set for board Voice Services",
    }
    assert "Status left as is: no status set for board Voice Services." in outcome.summary()
    assert connectwise_sandbox.writes(f"service/tickets/{VOICE_TICKET}") == []


def test_the_legacy_default_status_is_used_only_on_its_board(app, connectwise_sandbox):
    in_progress = status_id(connectwise_sandbox, 1, "In Progress")
    setup(app, connectwise_sandbox, defaultStatusId=in_progress)
    outcome, _ = log(app, member="jdoe", auto_status=True)
    assert outcome.to_json()["status"]["ok"] and not outcome.to_json()["status"].get("skipped")
    assert connectwise_sandbox.ticket(TICKET)["status"]["id"] == in_progress
    before = connectwise_sandbox.ticket(VOICE_TICKET)["status"]["id"]
    outcome, _ = log(app, ticket=VOICE_TICKET, member="jdoe", auto_status=True)
    assert outcome.to_json()["status"]["reason"] == (
        "status left as is: no status set for board Voice Services"
    )
    assert connectwise_sandbox.ticket(VOICE_TICKET)["status"]["id"] == before


def test_a_status_not_on_the_tickets_board_is_left_as_is_and_named(app, connectwise_sandbox):
    setup(app, connectwise_sandbox)
    help_desk_status = status_id(connectwise_sandbox, 1, "Waiting on Customer")
    outcome, row = log(app, ticket=VOICE_TICKET, member="jdoe", status_id=help_desk_status)
    assert outcome.delivered, outcome.summary()
    assert outcome.to_json()["status"]["reason"] == (
        f"status left as is: Status {help_desk_status} is not on board Voice Services"
    )
    assert copies(connectwise_sandbox, VOICE_TICKET, row.reference) == (1, 1)


def test_a_mapped_status_name_is_used_in_the_reason(app, connectwise_sandbox):
    help_desk_status = status_id(connectwise_sandbox, 1, "Waiting on Customer")
    setup(
        app,
        connectwise_sandbox,
        boardStatuses=[
            {
                "boardId": 1,
                "boardName": "Help Desk",
                "statusId": help_desk_status,
                "statusName": "Waiting on Customer",
            }
        ],
    )
    outcome, _ = log(app, ticket=VOICE_TICKET, member="jdoe", status_id=help_desk_status)
    assert outcome.to_json()["status"]["reason"] == (
        "status left as is: Waiting on Customer is not on board Voice Services"
    )


# -- the strict profile ------------------------------------------------------------------------


@pytest.mark.parametrize("connectwise_sandbox_rules", ["strict"], indirect=True)
def test_under_the_strict_profile_a_configured_tenant_logs_exactly_what_was_asked(
    app, connectwise_sandbox
):
    in_progress = status_id(connectwise_sandbox, 1, "In Progress")
    setup(
        app,
        connectwise_sandbox,
        workType={"id": 3, "name": "Regular"},
        workRole={"id": 11, "name": "System Engineer"},
        billableOption="Billable",
        boardStatuses=[
            {
                "boardId": 1,
                "boardName": "Help Desk",
                "statusId": in_progress,
                "statusName": "In Progress",
            }
        ],
    )
    outcome, row = log(app, member="jdoe", auto_status=True)
    assert outcome.delivered, outcome.summary()
    assert copies(connectwise_sandbox, TICKET, row.reference) == (1, 1)
    assert len(connectwise_sandbox.writes("service/tickets/*/notes")) == 1
    assert len(connectwise_sandbox.writes("time/entries")) == 1
    assert len(connectwise_sandbox.writes("service/tickets/*")) == 1
    assert connectwise_sandbox.ticket(TICKET)["status"]["id"] == in_progress


# -- outcome words -----------------------------------------------------------------------------


def test_skipped_reasons_survive_the_json_round_trip():
    data = {
        "changeId": "cwlog-1",
        "ticketId": 5,
        "state": "delivered",
        "note": {"ok": True, "state": "confirmed", "id": 9},
        "timeEntry": {
            "ok": True,
            "state": "skipped",
            "skipped": True,
            "reason": "no time entry: ticket #5 is closed",
        },
        "status": {"ok": True, "state": "skipped", "skipped": True},
    }
    outcome = Outcome.from_json(data, hours=0.25)
    assert outcome.to_json() == data
    assert (
        outcome.summary() == "Logged to ticket #5: note added. No time entry: ticket #5 is closed."
    )


def test_warm_delivery_reads_nothing_before_writing(app, connectwise_sandbox):
    """The ticket seen by a search, its board's statuses and the member's check are reused:
    delivery checks the tenant's rules without a single read."""
    in_progress = status_id(connectwise_sandbox, 1, "In Progress")
    setup(app, connectwise_sandbox)
    with app.app_context():
        cw = cw_of(app)
        client = cw.tenants.client_for(TENANT_A)
        client.search_tickets("12345")
        client.board_statuses(1)
        cw.members.check(TENANT_A, "jdoe")
    connectwise_sandbox.clear_requests()
    outcome, _ = log(app, member="jdoe", status_id=in_progress)
    assert outcome.delivered
    assert sorted(r.method for r in connectwise_sandbox.requests) == ["PATCH", "POST", "POST"]


# -- a board map pointing off its board; the company refusal's one wording ---------------------


def test_a_mapped_status_missing_from_its_board_is_named_by_its_stored_name(
    app, connectwise_sandbox
):
    """The tenant maps Help Desk to a Voice Services status (the board's statuses changed since
    it was chosen): the reason names that status as stored, never "Status 124"."""
    voice_scheduled = status_id(connectwise_sandbox, 21, "Scheduled")
    setup(
        app,
        connectwise_sandbox,
        autoUpdateStatus=True,
        boardStatuses=[
            {
                "boardId": 1,
                "boardName": "Help Desk",
                "statusId": voice_scheduled,
                "statusName": "Scheduled (voice)",
            }
        ],
    )
    before = connectwise_sandbox.ticket(TICKET)["status"]["id"]
    outcome, row = log(app, member="jdoe", auto_status=True)
    assert outcome.delivered, outcome.summary()
    assert outcome.to_json()["status"]["reason"] == (
        "status left as is: Scheduled (voice) is not on board Help Desk"
    )
    assert connectwise_sandbox.ticket(TICKET)["status"]["id"] == before
    assert copies(connectwise_sandbox, TICKET, row.reference) == (1, 1)


def test_a_ticket_with_no_company_is_refused_in_the_fields_words(app, connectwise_sandbox):
    """The outbox says what the field and the API say (ticketchecks.company_refusal): "no
    company", where it used to say "another company" for a ticket that has none."""
    with connectwise_sandbox.store.lock:
        connectwise_sandbox.store.data.tickets[TICKET]["company"] = None
    setup(app, connectwise_sandbox, companyScope="listed", companies=[CONTOSO])
    outcome, _ = log(app, member="jdoe")
    expected = f"Ticket #{TICKET} belongs to no company, not Contoso Ltd"
    assert outcome.state == GAVE_UP
    assert outcome.to_json()["note"]["error"] == expected
    assert outcome.to_json()["timeEntry"]["error"] == expected
    assert outcome.other_company_refusal() is not None  # no Retry offered: it cannot help
    assert connectwise_sandbox.writes() == []
