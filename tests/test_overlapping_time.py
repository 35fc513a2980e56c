"""Tenants that refuse overlapping time entries (the sandbox's ``overlapping_time`` rule):
delivery moves an entry into the member's latest free slot that ends by now instead of
losing it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flask_connectwise.client import ConnectWiseClient
from flask_connectwise.outbox import Outcome
from flask_connectwise.testing import configure_tenant
from tests.hosts import TENANT_A, cw_of
from tests.outbox_helpers import TICKET

WORK = {"workType": {"id": 3, "name": "Regular"}, "workRole": {"id": 11, "name": "System Engineer"}}


def _stamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _log(app: Any, text: str, member: str = "jdoe", hours: float = 0.5) -> Outcome:
    with app.app_context():
        cw = cw_of(app)
        row, _ = cw.outbox.record(TENANT_A, TICKET, text, hours=hours, member=member)
        cw.outbox.session.commit()
        return cw.outbox.deliver(row)


@pytest.mark.parametrize("connectwise_sandbox_rules", ["strict"], indirect=True)
def test_back_to_back_changes_both_log_their_time_without_overlapping(app, connectwise_sandbox):
    sb = connectwise_sandbox
    configure_tenant(app, TENANT_A, sb, **WORK)
    before = len(sb.time_entries(TICKET))
    first, second = _log(app, "Moved DID to ext. 204"), _log(app, "Moved DID to ext. 205")
    assert first.to_json()["state"] == "delivered", first.to_json()
    assert second.to_json()["state"] == "delivered", second.to_json()
    entries = sb.time_entries(TICKET)[before:]
    assert len(entries) == 2
    (a_start, a_end), (b_start, b_end) = (
        (_stamp(e["timeStart"]), _stamp(e["timeEnd"])) for e in entries
    )
    # The second went into the free slot before the first (was: after it, in the future).
    assert b_end <= a_start
    assert max(a_end, b_end) <= datetime.now(UTC)  # time logged is time already spent
    assert b_end - b_start == timedelta(minutes=30)  # and kept its length
    # The first try was refused as overlapping, then sent again at the free start.
    posts = sb.requests(method="POST", path="time/entries")
    assert len(posts) == 3 and posts[-2].status == 400


@pytest.mark.parametrize(
    "connectwise_sandbox_rules", [{"profile": "strict", "overlapping_time": False}], indirect=True
)
def test_tenants_that_allow_overlaps_get_one_request_per_entry(app, connectwise_sandbox):
    sb = connectwise_sandbox
    configure_tenant(app, TENANT_A, sb, **WORK)
    _log(app, "one"), _log(app, "two")
    assert len(sb.requests(method="POST", path="time/entries")) == 2
    assert not sb.requests(method="GET", path="time/entries")


@pytest.mark.parametrize("connectwise_sandbox_rules", ["strict"], indirect=True)
def test_other_refusals_are_not_retried_as_overlaps(app, connectwise_sandbox):
    sb = connectwise_sandbox
    configure_tenant(app, TENANT_A, sb)  # no work type: refused, not an overlap
    outcome = _log(app, "no work type")
    assert outcome.to_json()["timeEntry"]["ok"] is False
    assert len(sb.requests(method="POST", path="time/entries")) == 1


@pytest.mark.parametrize("connectwise_sandbox_rules", ["strict"], indirect=True)
def test_an_entry_landing_while_one_is_placed_means_retry_not_failure(
    app, connectwise_sandbox, monkeypatch
):
    """Another entry of the member takes the free slot between the look-up and the second
    post (a second worker): the change waits for a retry instead of failing for good."""
    sb = connectwise_sandbox
    configure_tenant(app, TENANT_A, sb, **WORK)
    _log(app, "first")
    original = ConnectWiseClient.add_time_entry

    def racing(self: ConnectWiseClient, ticket_id: int, **kw: Any) -> Any:
        if kw.get("start") is not None:  # the placed retry: someone else gets there first
            original(self, ticket_id, **{**kw, "notes": "another worker's entry"})
        return original(self, ticket_id, **kw)

    monkeypatch.setattr(ConnectWiseClient, "add_time_entry", racing)
    second = _log(app, "second")
    assert second.to_json()["state"] == "retrying", second.to_json()
    monkeypatch.setattr(ConnectWiseClient, "add_time_entry", original)
    with app.app_context():
        cw = cw_of(app)
        row = cw.outbox.find(second.reference)
        again = cw.outbox.deliver(row)
    assert again.to_json()["state"] == "delivered", again.to_json()
    assert sum("second" in (e.get("notes") or "") for e in sb.time_entries(TICKET)) == 1


@pytest.mark.parametrize("connectwise_sandbox_rules", ["strict"], indirect=True)
def test_no_free_slot_within_a_day_is_a_refusal_that_says_what_to_do(app, connectwise_sandbox):
    sb = connectwise_sandbox
    configure_tenant(app, TENANT_A, sb, **WORK)
    with app.app_context():
        client = cw_of(app).tenants.client_for(TENANT_A)
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=25)
        for day in range(2):  # the member's time sheet is full for the last day and the next
            client.add_time_entry(
                TICKET,
                hours=24,
                member="jdoe",
                start=start + timedelta(hours=24 * day),
                work_type=3,
                work_role=11,
            )
    outcome = _log(app, "no room").to_json()
    assert outcome["state"] == "failed" and outcome["timeEntry"]["ok"] is False
    error = outcome["timeEntry"]["error"]
    assert "refuses overlapping time entries" in error and "by hand in ConnectWise" in error
