"""Permanent refusals fail a change at once ("needs attention"); only passing failures retry.

ConnectWise's 400 validation errors, 404 ticket not found, an unknown member and a status not
on the ticket's board never succeed when sent again: such a change is marked ``failed`` with
ConnectWise's reason and what to do, ``change_failed`` fires with ``final=True`` and no worker
picks it up again. Connection errors, timeouts, 429, 5xx and the refusals an admin fixes (401,
403) keep the change ``retrying``. The shortest time entry is one minute.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import responses

from flask_connectwise.delivery import Deliverer, check_hours, reference_line
from flask_connectwise.errors import (
    AuthenticationError,
    ConflictError,
    ConnectWiseError,
    FieldError,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    StatusNotOnBoardError,
    TimeoutError,
    UnavailableError,
    ValidationError,
)
from flask_connectwise.fields import outcome_message
from flask_connectwise.models import GAVE_UP, RETRYING, ChangeLogRow, utcnow
from flask_connectwise.settings import InputError
from flask_connectwise.signals import change_failed
from tests.client_doubles import API
from tests.hosts import TENANT_A, cw_of, make_host_app
from tests.json_api import configure
from tests.outbox_helpers import TICKET, FaultyAdapter, copies_on_sandbox, quick_worker, refused

MISSING_TICKET = 999_999
INACTIVE_STATUS = 108  # "Legacy - Do Not Use" on ticket 12345's board


@pytest.fixture
def app(tmp_path):
    app = make_host_app(f"sqlite:///{tmp_path / 'attention.db'}")
    app.config["CONNECTWISE_TIMEOUT"] = 0.6
    yield app
    with app.app_context():
        app.extensions["test_db"].session.remove()
        app.extensions["test_db"].engine.dispose()


@pytest.fixture
def finals(app):
    """The ``final`` argument of every ``change_failed`` sent while the test runs."""
    seen: list[bool] = []

    def on_failed(sender: Any, **kw: Any) -> None:
        seen.append(kw.get("final"))

    with change_failed.connected_to(on_failed, app):
        yield seen


def record(app, **kw: Any) -> tuple[int, str]:
    """Queue one change for tenant A; ``(id, reference)``."""
    with app.app_context():
        cw = cw_of(app)
        # A member: with none, CONNECTWISE_REQUIRE_MEMBER skips the time entry.
        fields = {
            "ticket_id": TICKET,
            "note_text": "needs attention?",
            "hours": 0.25,
            "member": "jdoe",
        } | kw
        ticket_id = fields.pop("ticket_id")
        note_text = fields.pop("note_text")
        row, _ = cw.outbox.record(TENANT_A, ticket_id, note_text, **fields)
        cw.outbox.session.commit()
        return row.id, row.reference


def load(app, change_id: int) -> Any:
    with app.app_context():
        cw = cw_of(app)
        row = cw.outbox.session.get(cw.models.ChangeLog, change_id)
        cw.outbox.session.expunge(row)
        return row


# -- the classification ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "permanent"),
    [
        (ValidationError("x", status=400), True),
        (StatusNotOnBoardError("x"), True),  # raised before sending: no status at all
        (NotFoundError("x", status=404), True),
        (ConnectWiseError("x", status=405), True),
        (ConnectWiseError("x", status=415), True),
        (AuthenticationError("x", status=401), False),
        (ForbiddenError("x", status=403), False),
        (ConflictError("x", status=409), False),
        (RateLimitedError("x", status=429), False),
        (ConnectWiseError("x", status=408), False),
        (UnavailableError("x", status=500, sent=True), False),
        (UnavailableError("x", sent=False), False),
        (TimeoutError("x", sent=True), False),
    ],
)
def test_which_failures_are_permanent(error, permanent):
    assert error.permanent is permanent


# -- exact ConnectWise answers (responses) -----------------------------------------------------


class Row(ChangeLogRow):
    """The attributes of a change-log row the Deliverer reads and writes (unmapped)."""

    def __init__(self, **kw: Any) -> None:
        self.reference = "cwlog-0badc0de"
        self.tenant_id = TENANT_A
        self.ticket_id = 123
        self.note_text = "Moved DID to ext. 204"
        self.internal = False
        self.member: str | None = "jdoe"
        self.hours: float | None = None
        self.status_id: int | None = None
        self.state = "pending"
        self.updated_at = None
        for step in ("note", "time", "status"):
            setattr(self, f"{step}_state", "pending")
            setattr(self, f"{step}_attempts", 0)
            setattr(self, f"{step}_error", None)
            setattr(self, f"{step}_remote_id", None)
        self.time_state = "skipped"
        self.status_state = "skipped"
        self.__dict__.update(kw)


def deliver(client: Any, row: Row) -> Deliverer:
    deliverer = Deliverer(session=None)
    deliverer.deliver(row, client, commit_in_flight=False)
    return deliverer


@responses.activate
def test_a_404_ticket_not_found_says_what_to_do(make_client):
    responses.post(
        f"{API}/service/tickets/123/notes",
        status=404,
        json={"code": "NotFound", "message": "Ticket 123 not found"},
    )
    responses.get(f"{API}/system/info", json={"version": "v2025.1"})  # the credentials work
    row = Row()
    deliverer = deliver(make_client(), row)
    assert deliverer.permanent and row.state == GAVE_UP
    assert row.note_state == "failed"
    assert row.note_error == (
        "Ticket #123 was not found in ConnectWise: check the ticket number and log the change "
        "again."
    )
    assert len(responses.calls) == 2  # the note once (not repeated), then system/info


@responses.activate
def test_a_cloud_404_with_rejected_credentials_is_retried_for_the_admin(make_client):
    """Cloud ConnectWise answers bad credentials with 404: when ``system/info`` fails too, the
    change waits for an admin (retrying) and says "credentials", not "ticket not found"."""
    responses.post(f"{API}/service/tickets/123/notes", status=404, json={"code": "NotFound"})
    responses.get(f"{API}/system/info", status=404, json={"code": "NotFound"})
    row = Row()
    deliverer = deliver(make_client(), row)
    assert not deliverer.permanent and row.state == RETRYING
    assert row.note_error.startswith("ConnectWise rejected the credentials")
    assert "not found" not in row.note_error.lower()
    assert "An admin must correct the tenant's ConnectWise credentials" in row.note_error


@responses.activate
def test_a_400_validation_error_carries_connectwise_reason(make_client):
    responses.post(
        f"{API}/service/tickets/123/notes", status=201, json={"id": 7, "text": "x", "ticketId": 123}
    )
    responses.post(
        f"{API}/time/entries",
        status=400,
        json={
            "code": "InvalidObject",
            "message": "timeEntry object is invalid",
            "errors": [
                {
                    "code": "InvalidObject",
                    "message": "The default Work Role is not valid for the selected location",
                    "resource": "timeEntry",
                    "field": "workRole",
                }
            ],
        },
    )
    responses.get(  # the ticket, read before a time entry (closed? status forbids time?)
        f"{API}/service/tickets/123",
        json={"id": 123, "summary": "x", "board": {"id": 21}, "status": {"id": 17}},
    )
    responses.get(
        f"{API}/service/boards/21/statuses",
        json=[{"id": 17, "name": "In Progress", "inactive": False}],
    )
    row = Row(hours=0.5, time_state="pending")
    deliver(make_client(), row)
    assert (row.note_state, row.time_state, row.state) == ("confirmed", "failed", GAVE_UP)
    assert "The default Work Role is not valid for the selected location" in row.time_error
    assert "Sending it again will not help" in row.time_error
    assert "Retry" in row.time_error


@responses.activate
def test_an_unknown_member_names_the_member(make_client):
    responses.post(
        f"{API}/service/tickets/123/notes",
        status=400,
        json={
            "code": "InvalidObject",
            "message": "serviceNote object is invalid",
            "errors": [
                {
                    "code": "NotFound",
                    "message": "Member nobody not found",
                    "resource": "serviceNote",
                    "field": "member",
                }
            ],
        },
    )
    row = Row(member="nobody")
    deliver(make_client(), row)
    assert row.state == GAVE_UP
    assert 'member "nobody"' in row.note_error and "Member nobody not found" in row.note_error
    assert "active ConnectWise member" in row.note_error


@responses.activate
def test_a_status_refused_by_connectwise_says_pick_another(make_client):
    """The status passed the client's own check, then ConnectWise refused it (the shape from
    docs/connectwise-api.md §4.4)."""
    responses.get(
        f"{API}/service/tickets/123",
        json={"id": 123, "summary": "x", "board": {"id": 21}, "status": {"id": 1}},
    )
    responses.get(
        f"{API}/service/boards/21/statuses",
        json=[{"id": 17, "name": "In Progress", "inactive": False}],
    )
    responses.patch(
        f"{API}/service/tickets/123",
        status=400,
        json={
            "code": "InvalidObject",
            "message": "ticket object is invalid",
            "errors": [
                {
                    "code": "NotFound",
                    "message": "Service Status 17 not found for Service Board 21",
                    "resource": "ticket",
                    "field": "status/id",
                }
            ],
        },
    )
    responses.post(
        f"{API}/service/tickets/123/notes", status=201, json={"id": 7, "text": "x", "ticketId": 123}
    )
    row = Row(status_id=17, status_state="pending")
    deliver(make_client(), row)
    assert (row.note_state, row.status_state, row.state) == ("confirmed", "failed", GAVE_UP)
    assert "Service Status 17 not found for Service Board 21" in row.status_error
    assert "pick an active status of the ticket's board" in row.status_error


@pytest.mark.parametrize("status", [401, 403, 408, 409, 429, 500, 502, 503, 504])
@responses.activate
def test_passing_failures_keep_the_change_retrying(make_client, status):
    responses.post(
        f"{API}/service/tickets/123/notes",
        status=status,
        json={"code": "x", "message": "ConnectWise said no"},
    )
    row = Row()
    deliverer = deliver(make_client(), row)
    assert not deliverer.permanent and row.state == RETRYING
    if status in (401, 403):  # an admin must act; the change goes out once they have
        assert "An admin must" in row.note_error and "automatically" in row.note_error


# -- through the service and the worker, against the sandbox --------------------------------------


def test_a_missing_ticket_fails_at_once_and_is_never_picked_up_again(
    app, connectwise_sandbox, finals
):
    api = configure(app, connectwise_sandbox)
    body = api.call(
        "POST", f"/tickets/{MISSING_TICKET}/log-change", {"noteText": "x", "hours": 0.25}
    ).get_json()
    assert body["state"] == "failed"
    assert body["note"]["error"] == (
        f"Ticket #{MISSING_TICKET} was not found in ConnectWise: check the ticket number and log "
        "the change again."
    )
    assert body["timeEntry"]["state"] == "failed" and "not found" in body["timeEntry"]["error"]
    assert finals == [True]
    connectwise_sandbox.clear_requests()
    with app.app_context():
        worker = quick_worker(cw_of(app).outbox)
        assert worker.claim() == []
        assert worker.run(once=True).claimed == 0
    assert connectwise_sandbox.requests == []


def test_the_worker_marks_a_refused_change_failed_and_signals_final(
    app,
    connectwise_sandbox,
    finals,
):
    configure(app, connectwise_sandbox)
    change_id, _ = record(app, ticket_id=MISSING_TICKET)
    with app.app_context():
        worker = quick_worker(cw_of(app).outbox)
        summary = worker.run_once()
        assert (summary.claimed, summary.gave_up, summary.retrying) == (1, 1, 0)
        assert worker.run_once().claimed == 0
    row = load(app, change_id)
    assert row.state == GAVE_UP and row.next_attempt_at is None and row.lease_owner is None
    assert row.note_attempts == 1
    assert finals == [True]


def test_an_unknown_member_fails_at_once(app, connectwise_sandbox, finals):
    configure(app, connectwise_sandbox)
    change_id, reference = record(app, member="nobody")
    with app.app_context():
        cw = cw_of(app)
        outcome = cw.outbox.deliver(cw.outbox.session.get(cw.models.ChangeLog, change_id)).to_json()
    assert outcome["state"] == "failed"
    assert 'member "nobody"' in outcome["note"]["error"]
    assert finals == [True]
    assert copies_on_sandbox(connectwise_sandbox, reference) == (0, 0)


def test_an_inactive_status_fails_but_keeps_what_was_done(
    app,
    connectwise_sandbox,
    finals,
):
    configure(app, connectwise_sandbox)
    change_id, reference = record(app, status_id=INACTIVE_STATUS)
    with app.app_context():
        cw = cw_of(app)
        outcome = cw.outbox.deliver(cw.outbox.session.get(cw.models.ChangeLog, change_id)).to_json()
    assert outcome["state"] == "failed"
    assert outcome["note"]["ok"] and outcome["timeEntry"]["ok"]
    # Named, never a bare id (issue 14): status 108 is "Legacy - Do Not Use".
    assert (
        f'refused status "Legacy - Do Not Use" for ticket #{TICKET}' in outcome["status"]["error"]
    )
    assert finals == [True]
    assert copies_on_sandbox(connectwise_sandbox, reference) == (1, 1)


def test_a_step_in_doubt_stays_in_doubt_when_another_step_is_refused(
    app,
    connectwise_sandbox,
):
    """The note's answer is lost after ConnectWise applied it, and the status is refused for
    good: the change needs attention, yet the note stays "sent" (in doubt), so a manual retry
    finds it on the ticket instead of posting a second copy."""
    configure(app, connectwise_sandbox)
    connectwise_sandbox.inject_fault(
        "service/tickets/*/notes", "apply_then_timeout", method="POST", delay=1.0
    )
    change_id, reference = record(app, status_id=INACTIVE_STATUS)
    with app.app_context():
        cw = cw_of(app)
        row = cw.outbox.session.get(cw.models.ChangeLog, change_id)
        cw.outbox.deliver(row)
        assert (row.state, row.note_state, row.status_state) == (GAVE_UP, "sent", "failed")
        assert quick_worker(cw.outbox).claim() == []
        cw.outbox.deliver(row)  # an admin's Retry
        assert row.note_state == "confirmed" and row.state == GAVE_UP
    assert copies_on_sandbox(connectwise_sandbox, reference) == (1, 1)


def test_a_member_lookup_outage_never_becomes_an_unknown_member(
    app,
    connectwise_sandbox,
    finals,
):
    """With the e-mail → member look-up failing, sending the raw e-mail would be refused as an
    unknown member (a permanent failure): nothing is sent and the change waits instead."""
    configure(app, connectwise_sandbox)
    change_id, reference = record(app, member="tech@company.com")
    with app.app_context():
        cw = cw_of(app)
        client = cw.tenants.client_for(TENANT_A)
        adapter = FaultyAdapter()
        client.mount("http://", adapter)
        adapter.plan.extend([("GET", "system/members", refused()) for _ in range(10)])
        connectwise_sandbox.clear_requests()
        row = cw.outbox.session.get(cw.models.ChangeLog, change_id)
        cw.outbox.deliver(row)
        assert row.state == RETRYING, (row.note_error, row.time_error)
        assert (row.note_state, row.time_state) == ("failed", "failed")
        assert "could not be reached" in row.note_error
        assert [r for r in connectwise_sandbox.requests if r.method == "POST"] == []
        adapter.plan.clear()
        cw.outbox.deliver(row)
        assert row.state == "delivered"
    assert finals == [False]
    assert copies_on_sandbox(connectwise_sandbox, reference) == (1, 1)
    note = next(
        n for n in connectwise_sandbox.notes(TICKET) if reference_line(reference) in n["text"]
    )
    assert note["member"]["identifier"] == "tech"


def test_refused_credentials_keep_retrying_and_a_fix_makes_them_due_at_once(
    app,
    connectwise_sandbox,
    finals,
):
    """401 is for an admin to fix, not a reason to drop the change: it waits, and saving the
    tenant's credentials makes it due at once instead of after its backoff."""
    configure(app, connectwise_sandbox)
    connectwise_sandbox.inject_fault("service/tickets/*/notes", "status", status=401)
    change_id, reference = record(app)
    with app.app_context():
        cw = cw_of(app)
        worker = quick_worker(cw.outbox)
        worker.backoff_base = worker.backoff_cap = 3600.0
        assert worker.run_once().retrying == 1
        row = cw.outbox.session.get(cw.models.ChangeLog, change_id)
        assert row.state == RETRYING and row.next_attempt_at > utcnow() + timedelta(seconds=1)
        assert "An admin must correct the tenant's ConnectWise credentials" in row.note_error
        assert worker.claim() == []
        creds = connectwise_sandbox.credentials
        cw.tenants.save_credentials(
            TENANT_A, {"baseUrl": creds["base_url"], "companyId": creds["company_id"]}
        )
        assert worker.run_once().delivered == 1
    assert finals == [False]
    assert copies_on_sandbox(connectwise_sandbox, reference) == (1, 1)


# -- one minute at least -----------------------------------------------------------------------


@pytest.mark.parametrize("hours", [0.001, 1 / 60 - 0.001, -1.0, 24.5, float("nan"), True])
def test_a_time_entry_under_one_minute_is_refused_at_recording(
    app,
    connectwise_sandbox,
    hours,
):
    configure(app, connectwise_sandbox)
    connectwise_sandbox.clear_requests()
    with app.app_context():
        cw = cw_of(app)
        with pytest.raises(InputError) as caught:
            cw.outbox.record(TENANT_A, TICKET, "too short", hours=hours)
        assert caught.value.field == "hours"
        assert cw.outbox.session.query(cw.models.ChangeLog).count() == 0
    assert connectwise_sandbox.requests == []


def test_one_minute_is_accepted(app, connectwise_sandbox):
    configure(app, connectwise_sandbox)
    assert check_hours(round(1 / 60, 4)) == round(1 / 60, 4)  # 1 minute, stored as hours
    change_id, reference = record(app, hours=1 / 60)
    with app.app_context():
        cw = cw_of(app)
        outcome = cw.outbox.deliver(cw.outbox.session.get(cw.models.ChangeLog, change_id)).to_json()
    assert outcome["state"] == "delivered"
    assert copies_on_sandbox(connectwise_sandbox, reference) == (1, 1)


def test_zero_hours_still_means_no_time_entry(app, connectwise_sandbox):
    configure(app, connectwise_sandbox)
    change_id, reference = record(app, hours=0)
    with app.app_context():
        cw = cw_of(app)
        outcome = cw.outbox.deliver(cw.outbox.session.get(cw.models.ChangeLog, change_id)).to_json()
    assert outcome["state"] == "delivered" and outcome["timeEntry"]["skipped"]
    assert copies_on_sandbox(connectwise_sandbox, reference) == (1, 0)


def test_the_api_refuses_under_one_minute_naming_the_field(app, connectwise_sandbox):
    api = configure(app, connectwise_sandbox)
    connectwise_sandbox.clear_requests()
    answer = api.call("POST", f"/tickets/{TICKET}/log-change", {"noteText": "x", "hours": 0.001})
    assert answer.status_code == 400
    assert answer.get_json()["field"] == "hours"
    with app.app_context():
        cw = cw_of(app)
        assert cw.outbox.session.query(cw.models.ChangeLog).count() == 0
    assert connectwise_sandbox.requests == []


@pytest.mark.parametrize("hours", [0.001, 0, None])
def test_a_direct_time_entry_under_one_minute_is_refused(app, connectwise_sandbox, hours):
    configure(app, connectwise_sandbox)
    connectwise_sandbox.clear_requests()
    with app.app_context(), pytest.raises(InputError) as caught:
        # the ConnectWiseService facade: Tenants/Outbox have no direct time-entry call
        cw_of(app).service.add_time_entry(TENANT_A, TICKET, hours=hours)
    assert caught.value.field == "hours"
    if hours is not None:
        assert "at least one minute" in caught.value.message
    assert connectwise_sandbox.requests == []


def test_the_time_route_refuses_under_one_minute(app, connectwise_sandbox):
    api = configure(app, connectwise_sandbox)
    connectwise_sandbox.clear_requests()
    answer = api.call("POST", f"/tickets/{TICKET}/time", {"hours": 0.001})
    assert answer.status_code == 400 and answer.get_json()["field"] == "hours"
    assert connectwise_sandbox.requests == []


def test_the_operator_is_told_a_refused_change_is_not_retried():
    failed = {
        "ok": False,
        "state": "failed",
        "error": "Ticket #7 was not found in ConnectWise: check the ticket number and log the "
        "change again.",
    }
    skipped = {"ok": True, "state": "skipped", "skipped": True}
    message, category = outcome_message(
        {"ticketId": 7, "state": "failed", "note": failed, "timeEntry": skipped, "status": skipped},
        None,
    )
    assert category == "error"
    assert "retried" not in message
    assert "check the ticket number and log the change again" in message


def test_field_errors_are_read_from_connectwise_answers():
    """A field error on ``chargeToId`` (the time entry's ticket) reads as ticket not found."""
    from flask_connectwise.delivery import failure_text

    exc = ValidationError(
        "x",
        status=400,
        errors=(FieldError("NotFound", "ServiceTicket 5 not found", field="chargeToId"),),
    )
    assert failure_text(exc, step="time", ticket_id=5).startswith(
        "Ticket #5 was not found in ConnectWise"
    )
