"""The words of a delivery's outcome, polished after trying issue 14 as an MSP: every missing
time default named at once (by the edit form's labels), operators never told to press a
Retry button they do not have, where an overlapping entry went, and a ticket of another
company refused by our own check for good (no Retry offered)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flask_connectwise.errors import ConnectWiseError, ConnectWiseValidationError, FieldError
from flask_connectwise.models import GAVE_UP
from flask_connectwise.outbox import Outcome
from flask_connectwise.outbox.delivery import failure_text
from flask_connectwise.outbox.outcome import for_operator, refused_as_other_company
from flask_connectwise.testing import configure_tenant
from tests.admin_helpers import TENANT_A as ADMIN_TENANT
from tests.admin_helpers import AdminUser, make_admin_app, seed_change
from tests.hosts import TENANT_A, cw_of
from tests.outbox_helpers import TICKET

WORK = {"workType": {"id": 3, "name": "Regular"}, "workRole": {"id": 11, "name": "System Engineer"}}
CONTOSO = {"id": 250, "identifier": "Contoso", "name": "Contoso Ltd"}
CHANGES = "/admin/connectwise/change-log"


def log(app: Any, ticket: int = TICKET, text: str = "Moved DID to ext. 204", **fields: Any):
    """Record a change for tenant A and deliver it now; ``(outcome, row)``."""
    with app.app_context():
        cw = cw_of(app)
        fields = {"hours": 0.25, "member": "jdoe"} | fields
        row, _ = cw.outbox.record(TENANT_A, ticket, text, **fields)
        cw.outbox.session.commit()
        return cw.outbox.deliver(row), row


# -- 1. every missing time default at once; Retry only for admins ------------------------------


@pytest.mark.parametrize("connectwise_sandbox_rules", ["strict"], indirect=True)
def test_both_missing_time_defaults_are_named_at_once(app, connectwise_sandbox):
    configure_tenant(app, TENANT_A, connectwise_sandbox)  # no work type, no work role
    outcome, _ = log(app)
    error = outcome.to_json()["timeEntry"]["error"]
    assert "requires a work type and a work role" in error, error
    assert (
        "An administrator must choose the tenant's default work type and work role "
        '(ConnectWise credentials → Edit → "Work type" and "Work role").'
    ) in error, error
    # The admin's words (the change log, its Retry) keep the Retry.
    assert error.endswith("then press Retry."), error
    assert "press Retry" in outcome.retry_summary("Change x")


@pytest.mark.parametrize("connectwise_sandbox_rules", ["strict"], indirect=True)
def test_the_operator_is_not_told_to_press_retry(app, connectwise_sandbox):
    configure_tenant(app, TENANT_A, connectwise_sandbox)
    outcome, _ = log(app)
    words = outcome.summary()
    assert "Retry" not in words, words
    # Nothing sends it by itself: the words say who can, and where (was "It will be sent
    # once an administrator has done that.", an untrue promise).
    assert "An administrator can send it again from the change log once that is done." in words, (
        words
    )
    assert '"Work type" and "Work role"' in words, words


@pytest.mark.parametrize("connectwise_sandbox_rules", ["strict"], indirect=True)
def test_only_the_unset_default_is_named(app, connectwise_sandbox):
    configure_tenant(app, TENANT_A, connectwise_sandbox, workRole=WORK["workRole"])
    outcome, _ = log(app)
    error = outcome.to_json()["timeEntry"]["error"]
    assert 'default work type (ConnectWise credentials → Edit → "Work type")' in error, error
    assert "work role" not in error, error


# -- 2. where an entry refused as overlapping went ---------------------------------------------


def _stamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


@pytest.mark.parametrize("connectwise_sandbox_rules", ["strict"], indirect=True)
def test_an_entry_moved_after_the_members_others_says_where(app, connectwise_sandbox):
    sb = connectwise_sandbox
    configure_tenant(app, TENANT_A, sb, **WORK)
    before = len(sb.time_entries(TICKET))
    first, _ = log(app, text="Moved DID to ext. 204")
    second, _ = log(app, text="Moved DID to ext. 205")
    assert first.delivered and second.delivered, second.to_json()
    entry = sb.time_entries(TICKET)[before:][-1]
    start, end = _stamp(entry["timeStart"]), _stamp(entry["timeEnd"])
    assert end - start == timedelta(minutes=15)
    placed = f"placed {start:%H:%M}–{end:%H:%M} UTC, where jdoe's time sheet was free"
    assert second.summary() == f"Logged to ticket #{TICKET}: note added, 15 min logged, {placed}."
    # Done, so no error in the HTTP contract: the words are the step's detail.
    time = second.to_json()["timeEntry"]
    assert time["ok"] is True and "error" not in time and time["detail"] == placed
    assert Outcome.from_json(second.to_json(), hours=0.25).summary() == second.summary()
    assert "placed" not in first.summary()


@pytest.mark.parametrize("connectwise_sandbox_rules", ["strict"], indirect=True)
def test_the_change_log_shows_where_an_entry_went_as_information_not_an_error(
    app, connectwise_sandbox
):
    from flask_connectwise.admin.changelog import _errors_text, _steps, _steps_export

    configure_tenant(app, TENANT_A, connectwise_sandbox, **WORK)
    log(app, text="Moved DID to ext. 204")
    _, row = log(app, text="Moved DID to ext. 205")
    with app.app_context():
        row = cw_of(app).outbox.find(row.reference)
        cell = str(_steps(None, None, row, "steps"))
        assert re.search(r'class="text-muted cw-detail">placed \d\d:\d\d', cell), cell
        assert "text-danger" not in cell, cell
        assert _errors_text(row) == ""
        assert "placed" in _steps_export(None, None, row, "steps")


# -- 3. another company's ticket: our check, for good, no Retry --------------------------------


def test_another_companys_ticket_is_refused_by_us_for_good(app, connectwise_sandbox):
    configure_tenant(app, TENANT_A, connectwise_sandbox, companyScope="listed", companies=[CONTOSO])
    woodgrove = next(t for t in connectwise_sandbox.tickets() if t["company"]["id"] == 255)
    outcome, row = log(app, ticket=woodgrove["id"])
    assert outcome.state == GAVE_UP
    with app.app_context():
        row = cw_of(app).outbox.find(outcome.reference)
        assert refused_as_other_company(row)
    words = outcome.retry_summary("Change x")
    assert "ConnectWise refused" not in words, words
    assert words.startswith(
        "Change x was refused by this app's own check, not by ConnectWise: its ticket belongs "
        "to a company this tenant does not serve. Sending it again will not help: log the "
        "change again on the right ticket."
    ), words
    assert f"Ticket #{woodgrove['id']} belongs to Woodgrove Bank, not Contoso Ltd" in words


@pytest.fixture
def admin_app(tmp_path):
    app = make_admin_app(f"sqlite:///{tmp_path / 'admin.db'}")
    yield app
    with app.app_context():
        app.extensions["test_db"].engine.dispose()


def _change(app: Any, error: str) -> int:
    failed = {"state": "failed", "attempts": 1, "error": error}
    steps = {f"{step}_{key}": value for step in ("note", "time") for key, value in failed.items()}
    return seed_change(
        app, tenant=ADMIN_TENANT, ticket_id=12460, note_text="DID moved", state=GAVE_UP, **steps
    )


def _retry_offered(html: str, change_id: int) -> bool:
    """Whether the list shows a Retry button for the change ``change_id``."""
    return any(
        re.search(rf'name="id"\s+value="{change_id}"', form)
        for form in re.findall(r"<form[^>]*retry[^>]*>.*?</form>", html, re.S)
    )


def test_the_change_log_offers_no_retry_for_our_company_refusal(admin_app):
    refused = _change(admin_app, "Ticket #12460 belongs to Woodgrove Bank, not Contoso Ltd")
    other = _change(admin_app, "ConnectWise refused the note (The text field is required)")
    user = AdminUser(admin_app, ADMIN_TENANT)
    html = user.get(f"{CHANGES}/").get_data(as_text=True)
    assert _retry_offered(html, other), html  # a refusal by ConnectWise keeps its Retry
    assert not _retry_offered(html, refused)


# -- operators are never told to press a Retry button they do not have ------------------------


@pytest.mark.parametrize(
    ("exc", "step", "operator_words"),
    [
        (
            ConnectWiseValidationError(
                "bad", status=400, errors=(FieldError("InvalidField", "Summary too long", "text"),)
            ),
            "note",
            "or ask an administrator to fix the cause in ConnectWise.",
        ),
        (
            ConnectWiseValidationError(
                "bad",
                status=400,
                errors=(FieldError("Overlap", "Time entry overlaps another entry", "timeStart"),),
            ),
            "time",
            "or ask an administrator to allow overlapping time entries in ConnectWise.",
        ),
    ],
    ids=["validation", "overlap"],
)
def test_refusals_an_admin_can_fix_read_without_retry_for_operators(exc, step, operator_words):
    admin = failure_text(exc, step=step, ticket_id=TICKET, member="jdoe")
    assert admin.endswith("press Retry."), admin
    operator = for_operator(admin)
    assert "Retry" not in operator and operator.endswith(operator_words), operator


def test_an_unclassified_refusal_names_no_http_status():
    exc = ConnectWiseError("Record is locked by another process", status=422)
    words = failure_text(exc, step="note", ticket_id=TICKET)
    assert "HTTP" not in words and "Record is locked by another process" in words, words
