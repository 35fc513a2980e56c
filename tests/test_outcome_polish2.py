"""The outcome's words after a browser re-try of issue 14 as an MSP: a refused step in a
sentence of its own (no ConnectWise field names, no paragraph in brackets) after what did
reach the ticket, styled as a warning when part of the change succeeded, no promise that
something re-sends it by itself, and a moved time entry placed in the past, never ahead."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from flask import get_flashed_messages

from flask_connectwise.fields import report_to_operator
from flask_connectwise.testing import configure_tenant
from tests.hosts import TENANT_A, cw_of
from tests.outbox_helpers import TICKET

WORK = {"workType": {"id": 3, "name": "Regular"}, "workRole": {"id": 11, "name": "System Engineer"}}


def log(app: Any, text: str = "Moved DID to ext. 204", **fields: Any):
    """Record a change for tenant A and deliver it now; ``(outcome, row)``."""
    with app.app_context():
        cw = cw_of(app)
        fields = {"hours": 0.25, "member": "jdoe"} | fields
        row, _ = cw.outbox.record(TENANT_A, TICKET, text, **fields)
        cw.outbox.session.commit()
        return cw.outbox.deliver(row), row


def _stamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _refused_time(app: Any, sandbox: Any):
    configure_tenant(app, TENANT_A, sandbox)  # strict rules, no work type, no work role
    return log(app, status_id=sandbox.ticket(TICKET)["status"]["id"])[0]


@pytest.mark.parametrize("connectwise_sandbox_rules", ["strict"], indirect=True)
def test_a_refused_time_entry_is_its_own_sentence_after_what_succeeded(app, connectwise_sandbox):
    outcome = _refused_time(app, connectwise_sandbox)
    words = outcome.summary()
    assert words.startswith(
        f"Logged to ticket #{TICKET}: note added, status set. The time entry was not logged: "
        "this tenant's ConnectWise requires a work type and a work role. "
    ), words
    assert "workType" not in words and "failed" not in words and "(The" not in words, words
    # The admin's words (change log, JSON) keep ConnectWise's own message.
    assert "The workType field is required" in outcome.to_json()["timeEntry"]["error"]


@pytest.mark.parametrize("connectwise_sandbox_rules", ["strict"], indirect=True)
def test_the_operator_is_not_promised_that_it_is_sent_by_itself(app, connectwise_sandbox):
    words = _refused_time(app, connectwise_sandbox).summary()
    assert "It will be sent" not in words, words
    assert words.endswith(
        "An administrator can send it again from the change log once that is done."
    ), words


@pytest.mark.parametrize("connectwise_sandbox_rules", ["strict"], indirect=True)
def test_a_partial_success_is_flashed_as_a_warning(app, connectwise_sandbox):
    outcome = _refused_time(app, connectwise_sandbox)
    assert outcome.needs_attention and outcome.severity == "warning"
    with app.test_request_context("/"):
        report_to_operator(TICKET, outcome)
        assert get_flashed_messages(with_categories=True) == [("warning", outcome.summary())]


@pytest.mark.parametrize("connectwise_sandbox_rules", ["strict"], indirect=True)
def test_entries_logged_back_to_back_end_by_delivery_and_do_not_overlap(app, connectwise_sandbox):
    sb = connectwise_sandbox
    configure_tenant(app, TENANT_A, sb, **WORK)
    before = len(sb.time_entries(TICKET))
    outcomes = []
    for n in range(3):
        outcomes.append(log(app, text=f"Moved DID to ext. 20{n}", hours=0.5)[0])
        delivered_at = datetime.now(UTC)
        entry = sb.time_entries(TICKET)[before + n]
        assert _stamp(entry["timeEnd"]) <= delivered_at, (entry, delivered_at)
    assert all(o.delivered for o in outcomes), [o.to_json() for o in outcomes]
    spans = [
        (_stamp(e["timeStart"]), _stamp(e["timeEnd"])) for e in sb.time_entries(TICKET)[before:]
    ]
    assert len(spans) == 3
    for i, (start, end) in enumerate(spans):
        for other_start, other_end in spans[i + 1 :]:
            assert end <= other_start or other_end <= start, spans
    # The first went where it was asked (ending now); each moved one says where it went.
    assert "placed" not in outcomes[0].summary()
    for outcome, (start, end) in zip(outcomes[1:], spans[1:], strict=True):
        placed = f"placed {start:%H:%M}–{end:%H:%M} UTC, where jdoe's time sheet was free"
        assert placed in outcome.summary(), outcome.summary()
