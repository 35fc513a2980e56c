"""ConnectWiseClient against the live sandbox over loopback: every method, faults, discovery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from flask_connectwise import errors
from flask_connectwise.client import ConnectWiseClient
from flask_connectwise.retry import RetryPolicy
from tests.client_doubles import DictCache


@pytest.fixture
def client(connectwise_sandbox):
    with ConnectWiseClient(
        **connectwise_sandbox.credentials,
        codebase_cache=DictCache(),
        timeout=2.0,
        retry=RetryPolicy(max_attempts=3, base=0.01, cap=0.05, deadline=5),
    ) as made:
        yield made


def api_requests(sandbox, method=None):
    return [
        r
        for r in sandbox.requests
        if "companyinfo" not in r.path and (method is None or r.method == method)
    ]


def test_search_by_summary_returns_open_matching_tickets(client, connectwise_sandbox):
    found = client.search_tickets("printer")
    assert found, "the seed data has printer tickets"
    assert all("printer" in t.summary.lower() for t in found)
    assert all(not t.closed for t in found)
    assert [t.id for t in found] == sorted((t.id for t in found), reverse=True)
    assert len(found) <= 25
    closed_too = client.search_tickets("printer", open_only=False, limit=100)
    assert len(closed_too) >= len(found)


def test_search_by_number_finds_that_ticket_first(client):
    found = client.search_tickets("12345")
    assert found[0].id == 12345
    assert found[0].board and found[0].status and found[0].company


def test_hostile_search_is_an_ordinary_answer(client, connectwise_sandbox):
    assert client.search_tickets('x" or id>0 or summary="') == []
    record = api_requests(connectwise_sandbox)[-1]
    assert record.status == 200
    assert record.query["conditions"].count('"') == 2


def test_wildcard_characters_are_searched_literally(client, connectwise_sandbox):
    open_ids = [t["id"] for t in connectwise_sandbox.tickets() if not t["closedFlag"]][:6]
    summaries = [
        "Reboot SRV_DC01 tonight",
        "Reboot SRVXDC01 tonight",
        "Disk 50% full",
        "Disk 50 full",
        "Checkbox [x] stuck",
        "Checkbox x stuck",
    ]
    with connectwise_sandbox.store.lock:
        for ticket_id, summary in zip(open_ids, summaries, strict=True):
            connectwise_sandbox.store.data.tickets[ticket_id]["summary"] = summary
    for text, expected in [("srv_dc01", 0), ("50%", 2), ("[x]", 4)]:
        found = client.search_tickets(text)
        assert [t.id for t in found] == [open_ids[expected]], text
        assert api_requests(connectwise_sandbox)[-1].status == 200


def test_get_ticket_and_not_found(client):
    assert client.get_ticket(12345).id == 12345
    with pytest.raises(errors.NotFoundError, match="999999"):
        client.get_ticket(999999)


@pytest.mark.parametrize("connectwise_sandbox_rules", ["lenient", "strict"], indirect=True)
def test_note_time_entry_and_status(client, connectwise_sandbox):
    before_notes = len(connectwise_sandbox.notes(12345))
    before_entries = len(connectwise_sandbox.time_entries(12345))
    note = client.add_note(12345, "DID +1 555 0100 moved to ext. 204", member="jdoe")
    assert note.ticket_id == 12345 and note.member == "jdoe"
    notes = connectwise_sandbox.notes(12345)
    assert len(notes) == before_notes + 1
    stored = next(n for n in notes if n["id"] == note.id)
    assert stored["detailDescriptionFlag"] is True and stored["internalAnalysisFlag"] is False

    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    entry = client.add_time_entry(
        12345, hours=0.25, member="jdoe", notes="ref", start=start, work_type=3, work_role=11
    )
    assert entry.hours == 0.25
    entries = connectwise_sandbox.time_entries(12345)
    assert len(entries) == before_entries + 1
    stored_entry = next(e for e in entries if e["id"] == entry.id)
    assert (stored_entry["workType"]["id"], stored_entry["workRole"]["id"]) == (3, 11)
    assert stored_entry["timeStart"] == "2026-01-05T09:00:00Z"
    assert stored_entry["timeEnd"] == "2026-01-05T09:15:00Z"
    assert stored_entry["chargeToType"] == "ServiceTicket"

    ticket = client.get_ticket(12345)
    target = next(
        s
        for s in client.board_statuses(ticket.board_id)
        if s.id != ticket.status_id and not s.inactive and not s.closed
    )
    assert client.update_status(12345, target.id).status_id == target.id
    assert connectwise_sandbox.ticket(12345)["status"]["id"] == target.id
    patch = api_requests(connectwise_sandbox, "PATCH")[-1]
    assert patch.json == [{"op": "replace", "path": "status", "value": {"id": target.id}}]
    assert len(connectwise_sandbox.notes(12345)) == before_notes + 1
    assert len(connectwise_sandbox.time_entries(12345)) == before_entries + 1


def test_status_of_another_board_is_refused_before_patching(client, connectwise_sandbox):
    ticket = client.get_ticket(12345)
    boards = {t.board_id for t in client.search_tickets("printer", limit=100)} | {21, 31}
    other = next(b for b in boards if b != ticket.board_id)
    foreign = client.board_statuses(other)[0]
    with pytest.raises(errors.StatusNotOnBoardError):
        client.update_status(12345, foreign.id)
    assert api_requests(connectwise_sandbox, "PATCH") == []


def test_unknown_member_is_a_validation_error(client):
    with pytest.raises(errors.ValidationError) as caught:
        client.add_note(12345, "x", member="nobody-here")
    assert any(e.field and "member" in e.field for e in caught.value.errors)


def test_find_member_and_system_info(client):
    assert client.find_member("jdoe").identifier == "jdoe"
    assert client.find_member("tech@company.com").identifier == "tech"
    assert client.find_member("nobody-here") is None
    info = client.system_info()
    assert info.version.startswith("v") and info.codebase == "v2025_1/"


def test_wrong_keys_are_an_auth_error(connectwise_sandbox):
    creds = connectwise_sandbox.credentials | {"private_key": "wrong"}
    with ConnectWiseClient(**creds) as bad, pytest.raises(errors.AuthenticationError):
        bad.system_info()


def test_unknown_company_is_an_auth_error(connectwise_sandbox):
    creds = connectwise_sandbox.credentials | {"company_id": "nosuchco"}
    with (
        ConnectWiseClient(**creds, codebase_cache=DictCache()) as bad,
        pytest.raises(errors.AuthenticationError, match="company id"),
    ):
        bad.system_info()


def test_codebase_move_is_followed_once(client, connectwise_sandbox):
    assert client.codebase == "v2025_1/"
    connectwise_sandbox.move_codebase("v2026_1/")
    assert client.get_ticket(12345).id == 12345
    assert client.codebase == "v2026_1/"


def test_gateway_errors_on_reads_are_retried(client, connectwise_sandbox):
    connectwise_sandbox.inject_fault("service/tickets/*", "status", status=503, count=2)
    assert client.get_ticket(12345).id == 12345
    assert [r.status for r in api_requests(connectwise_sandbox)] == [503, 503, 200]


def test_rate_limit_is_honoured(client, connectwise_sandbox):
    connectwise_sandbox.inject_fault("system/info", "status", status=429, retry_after=1)
    started = datetime.now(UTC)
    client.system_info()
    assert datetime.now(UTC) - started >= timedelta(seconds=1)


def test_read_timeout_on_a_note_is_reported_as_sent_and_not_repeated(client, connectwise_sandbox):
    before = len(connectwise_sandbox.notes(12345))
    connectwise_sandbox.inject_fault("service/tickets/*/notes", "apply_then_timeout", delay=3)
    with pytest.raises(errors.TimeoutError) as caught:
        client.add_note(12345, "timed out")
    assert caught.value.sent is True
    assert len(connectwise_sandbox.notes(12345)) == before + 1  # applied once, never re-posted
    assert len(api_requests(connectwise_sandbox, "POST")) == 1


@pytest.mark.parametrize("minutes", [7, 10])
def test_minutes_reach_connectwise_exactly(client, connectwise_sandbox, minutes):
    entry = client.add_time_entry(12345, hours=round(minutes / 60, 4), member="jdoe")
    stored = next(e for e in connectwise_sandbox.time_entries(12345) if e["id"] == entry.id)
    start = datetime.fromisoformat(stored["timeStart"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(stored["timeEnd"].replace("Z", "+00:00"))
    assert end - start == timedelta(minutes=minutes)
    assert entry.hours == round(minutes / 60, 2)


def test_dropped_answer_on_a_time_entry_is_ambiguous(client, connectwise_sandbox):
    before = len(connectwise_sandbox.time_entries(12345))
    connectwise_sandbox.inject_fault("time/entries", "apply_then_drop")
    with pytest.raises(errors.UnavailableError) as caught:
        client.add_time_entry(12345, hours=0.5, member="jdoe")
    assert caught.value.sent is True
    assert len(connectwise_sandbox.time_entries(12345)) == before + 1


def test_invalid_json_answer_is_unavailable(client, connectwise_sandbox):
    connectwise_sandbox.inject_fault("service/tickets/*/notes", "invalid_json")
    with pytest.raises(errors.UnavailableError, match="not JSON"):
        client.add_note(12345, "x")


def test_connection_refused_is_not_sent():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with (
        ConnectWiseClient(
            f"http://127.0.0.1:{port}",
            "acme",
            "pub",
            "priv",
            "cid",
            codebase="v1/",
            retry=RetryPolicy(max_attempts=2, base=0.01, cap=0.01),
        ) as down,
        pytest.raises(errors.UnavailableError) as caught,
    ):
        down.add_note(1, "x")
    assert caught.value.sent is False


def test_one_connection_is_reused(client, connectwise_sandbox):
    client.system_info()
    connectwise_sandbox.clear_requests()
    for _ in range(20):
        client.search_tickets("printer")
    assert connectwise_sandbox.connections_opened == 0


@pytest.mark.parametrize("connectwise_sandbox_rules", ["strict"], indirect=True)
def test_strict_refusals_of_time_are_told_in_plain_words(client, connectwise_sandbox):
    """The refusals a strict tenant gives a time entry read as what an administrator must set."""
    from flask_connectwise.delivery import failure_text

    def refusal(**kw):
        with pytest.raises(errors.ValidationError) as caught:
            client.add_time_entry(12345, hours=0.25, **kw)
        return failure_text(caught.value, step="time", ticket_id=12345, member=kw.get("member"))

    no_type = refusal(member="jdoe", work_role=11)
    assert no_type == (
        "ConnectWise refused the time entry (The workType field is required): this tenant's "
        "ConnectWise requires a work type. "
        "An administrator must choose the tenant's default work type (ConnectWise credentials "
        '→ Edit → "Work type"). Sending it again will not help until that is done; then press '
        "Retry."
    )
    assert 'default work role (ConnectWise credentials → Edit → "Work role")' in refusal(
        member="jdoe", work_type=3
    )
    api_member = refusal(work_type=3, work_role=11)  # no member: ConnectWise's API member
    assert api_member.startswith(
        "ConnectWise refused the time entry (Time entries cannot be entered for API member "
        "SandboxAPI): no operator member was sent, so it used a "
        "ConnectWise API member, and this tenant's ConnectWise takes no time from API members. "
        "An administrator"
    )
    assert "link the operator to a full ConnectWise member" in api_member
    assert "Traceback" not in no_type + api_member
