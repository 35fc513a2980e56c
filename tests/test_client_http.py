"""ConnectWiseClient against exact HTTP answers (``responses``): requests, retries, errors."""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
import urllib3.exceptions
from responses import matchers

from flask_connectwise import errors
from flask_connectwise.client import FALLBACK_CODEBASE, SEARCH_OVERFETCH, ConnectWiseClient
from flask_connectwise.records import Member
from tests.client_doubles import API, BASE_URL, CODEBASE, DictCache

TICKET = {
    "id": 12345,
    "summary": "Printer offline in reception",
    "board": {"id": 1, "name": "Help Desk"},
    "status": {"id": 11, "name": "New"},
    "company": {"id": 2, "identifier": "Contoso", "name": "Contoso Ltd"},
    "closedFlag": False,
}
STATUSES = [
    {"id": 11, "name": "New", "board": {"id": 1}, "inactive": False, "closedStatus": False},
    {"id": 12, "name": "In Progress", "board": {"id": 1}, "inactive": False},
    {"id": 13, "name": "Old", "board": {"id": 1}, "inactive": True},
]


def query_of(call: responses.Call) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


def refused() -> requests.exceptions.ConnectionError:
    reason = urllib3.exceptions.NewConnectionError(None, "Connection refused")  # type: ignore[arg-type]
    return requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/", reason))  # type: ignore[arg-type]


def dropped() -> requests.exceptions.ConnectionError:
    return requests.exceptions.ConnectionError(
        urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError())
    )


# -- construction and headers ------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "",
        "ftp://cw.example.test",
        "https://",
        "https://u:p@cw.example.test",
        "https://cw.example.test/v4_6_release/apis/3.0",
        "https://cw.example.test/?x=1",
        "https://evil.example\\.cw.example.test",  # urllib3 would connect to evil.example
        "https://cw.example.test\t.evil.example",
        "https://evil.example%2F.cw.example.test",
        "https://cw。example。test",
    ],
)
def test_bad_base_urls_are_refused(make_client, url):
    with pytest.raises(errors.ConfigurationError):
        make_client(base_url=url)


@pytest.mark.parametrize("missing", ["company_id", "public_key", "private_key", "client_id"])
def test_missing_credentials_are_refused(make_client, missing):
    with pytest.raises(errors.ConfigurationError, match="missing"):
        make_client(**{missing: " "})


@responses.activate
def test_headers_auth_and_accept_version(make_client, canaries):
    responses.get(f"{API}/system/info", json={"version": "v2025.1.100"})
    info = make_client().system_info()
    assert info.version == "v2025.1.100"
    sent = responses.calls[0].request
    expected = base64.b64encode(
        f"acme+{canaries.public_key}:{canaries.private_key}".encode()
    ).decode()
    assert sent.headers["Authorization"] == f"Basic {expected}"
    assert sent.headers["clientId"] == canaries.client_id
    assert sent.headers["Accept"] == "application/vnd.connectwise.com+json; version=2022.1"
    assert "Content-Type" not in sent.headers
    assert sent.req_kwargs["timeout"] == (5.0, 10.0)


@responses.activate
def test_writes_send_json_utf8(make_client):
    responses.post(
        f"{API}/service/tickets/5/notes", json={"id": 1, "ticketId": 5, "text": "é"}, status=201
    )
    make_client().add_note(5, "Numéro changé")
    sent = responses.calls[0].request
    assert sent.headers["Content-Type"] == "application/json; charset=utf-8"
    assert json.loads(sent.body.decode("utf-8"))["text"] == "Numéro changé"


def test_repr_shows_no_secret(make_client, canaries):
    client = make_client()
    assert canaries.find_in(repr(client)) == []
    assert "acme" in repr(client)


# -- codebase discovery ------------------------------------------------------------------------


@responses.activate
def test_codebase_discovered_once_and_cached(make_client, canaries):
    cache = DictCache()
    info = responses.get(
        f"{BASE_URL}/login/companyinfo/acme", json={"Codebase": "v2024_2/", "CompanyID": "acme"}
    )
    responses.get(f"{BASE_URL}/v2024_2/apis/3.0/system/info", json={"version": "x"})
    make_client(codebase=None, codebase_cache=cache).system_info()
    make_client(codebase=None, codebase_cache=cache).system_info()
    assert info.call_count == 1
    discovery = responses.calls[0].request
    assert "Authorization" not in discovery.headers
    assert "clientId" not in discovery.headers


@pytest.mark.parametrize(
    "answer",
    [
        {"status": 500, "body": "oops"},
        {"status": 200, "body": "<html>"},
        {"status": 200, "json": {"CompanyID": "acme"}},
        {"body": requests.exceptions.ConnectionError("down")},
    ],
)
@responses.activate
def test_codebase_falls_back_to_router(make_client, answer):
    responses.get(f"{BASE_URL}/login/companyinfo/acme", **answer)
    responses.get(f"{BASE_URL}/{FALLBACK_CODEBASE}apis/3.0/system/info", json={"version": "x"})
    assert make_client(codebase=None).system_info().codebase == FALLBACK_CODEBASE


@responses.activate
def test_unknown_company_is_an_auth_error(make_client):
    responses.get(
        f"{BASE_URL}/login/companyinfo/acme", body="null", content_type="application/json"
    )
    with pytest.raises(errors.AuthenticationError, match="company id"):
        make_client(codebase=None).system_info()


@responses.activate
def test_rediscovers_once_after_unexpected_404(make_client):
    cache = DictCache()
    responses.get(f"{BASE_URL}/login/companyinfo/acme", json={"Codebase": "v2024_1/"})
    responses.get(f"{BASE_URL}/login/companyinfo/acme", json={"Codebase": "v2025_1/"})
    old = responses.get(f"{BASE_URL}/v2024_1/apis/3.0/service/tickets/7", status=404)
    new = responses.get(f"{BASE_URL}/v2025_1/apis/3.0/service/tickets/7", json=TICKET | {"id": 7})
    client = make_client(codebase=None, codebase_cache=cache)
    assert client.get_ticket(7).id == 7
    assert (old.call_count, new.call_count) == (1, 1)
    assert cache.data[client._codebase_key] == "v2025_1/"


@responses.activate
def test_genuine_404_rediscovers_only_once(make_client):
    info = responses.get(f"{BASE_URL}/login/companyinfo/acme", json={"Codebase": "v2025_1/"})
    missing = responses.get(
        f"{API}/service/tickets/999999",
        status=404,
        json={"code": "NotFound", "message": "Ticket 999999 not found"},
    )
    responses.get(f"{API}/system/info", json={"version": "v2025.1"})  # the credentials work
    client = make_client(codebase=None)
    for _ in range(2):
        with pytest.raises(errors.NotFoundError, match="Ticket 999999 not found"):
            client.get_ticket(999999)
    assert info.call_count == 2  # discovery, then one re-discovery; the second 404 is trusted
    assert missing.call_count == 2


# -- search ------------------------------------------------------------------------------------


@responses.activate
def test_search_by_text(make_client):
    responses.get(f"{API}/service/tickets", json=[TICKET | {"id": 3}, TICKET | {"id": 9}])
    found = make_client().search_tickets("  printer  ")
    query = query_of(responses.calls[0])
    assert query["conditions"] == ['summary contains "printer" and closedFlag=false']
    assert query["orderBy"] == ["id desc"]
    assert query["pageSize"] == ["25"]
    assert "status/name" in query["fields"][0] and "company/name" in query["fields"][0]
    assert [t.id for t in found] == [9, 3]
    assert found[0].to_json() == {
        "id": 9,
        "summary": "Printer offline in reception",
        "status": "New",
        "statusId": 11,
        "company": "Contoso Ltd",
        "companyId": 2,
        "board": "Help Desk",
        "boardId": 1,
        "closed": False,
    }


@responses.activate
def test_search_by_number_puts_the_exact_ticket_first(make_client):
    responses.get(f"{API}/service/tickets", json=[TICKET | {"id": 20000}, TICKET])
    found = make_client().search_tickets("12345", limit=10)
    query = query_of(responses.calls[0])
    assert query["conditions"] == ['id=12345 or (summary contains "12345" and closedFlag=false)']
    assert query["pageSize"] == ["10"]
    assert [t.id for t in found] == [12345, 20000]


@responses.activate
def test_search_can_include_closed_tickets_and_bounds_the_page(make_client):
    responses.get(f"{API}/service/tickets", json=[])
    make_client().search_tickets("vpn", open_only=False, limit=5000)
    query = query_of(responses.calls[0])
    assert query["conditions"] == ['summary contains "vpn"']
    assert query["pageSize"] == ["100"]


@pytest.mark.parametrize(
    ("text", "literal"),
    [
        ('x" or id>0 or summary="', "x or id>0 or summary="),
        ('printer") or (id>0', "printer ) or (id>0"),
        ("ab%", "ab"),
        ("a*b", ("a", "b")),
        ("[2024-01-01]", "2024-01-01"),
        ("back\\slash", "back slash"),
        ("tab\there", "tab here"),
        ("x" * 300, "x" * 100),
        ('x") and (id>0', "x ) and (id>0"),
        ('SRV_DC01" or 1=1 or "', ("SRV", "DC01 or 1=1 or")),
        ("_" * 300, ()),
        ("a" * 99 + "_b", "a" * 99),
    ],
)
@responses.activate
def test_hostile_search_text_stays_one_literal(make_client, text, literal):
    # "a*b" was one literal "a b" until wildcard characters split the text into literal
    # pieces (each its own contains, all of them required): now ("a", "b").
    responses.get(f"{API}/service/tickets", json=[])
    assert make_client().search_tickets(text) == []
    if literal == ():
        assert len(responses.calls) == 0
        return
    conditions = query_of(responses.calls[0])["conditions"][0]
    if isinstance(literal, str):
        assert conditions == f'summary contains "{literal}" and closedFlag=false'
    else:
        each = " and ".join(f'summary contains "{piece}"' for piece in literal)
        assert conditions == f"({each}) and closedFlag=false"


def ticket_row(ticket_id, summary):
    return TICKET | {"id": ticket_id, "summary": summary}


@pytest.mark.parametrize(
    ("text", "conditions", "kept"),
    [
        (
            "SRV_DC01",
            '(summary contains "SRV" and summary contains "DC01") and closedFlag=false',
            [3],
        ),
        ("50%", 'summary contains "50" and closedFlag=false', [1]),
        ("[x]", 'summary contains "x" and closedFlag=false', [2]),
    ],
)
@responses.activate
def test_wildcard_characters_are_searched_literally(make_client, text, conditions, kept):
    rows = [
        ticket_row(50, "Ticket about 50 printers"),
        ticket_row(4, "Reboot SRVXDC01, also 50 users, x"),
        ticket_row(3, "Reboot srv_dc01 tonight"),
        ticket_row(2, "Checkbox [x] stuck"),
        ticket_row(1, "Disk 50% full"),
    ]
    responses.get(f"{API}/service/tickets", json=rows)
    found = make_client().search_tickets(text, limit=5)
    query = query_of(responses.calls[0])
    assert query["conditions"] == [conditions]
    assert query["pageSize"] == [str(5 * SEARCH_OVERFETCH)]
    assert [t.id for t in found] == kept


@responses.activate
def test_a_short_page_after_the_exact_check_is_logged(make_client, caplog):
    rows = [ticket_row(100 - i, "SRV DC01 no underscore") for i in range(SEARCH_OVERFETCH)]
    responses.get(f"{API}/service/tickets", json=rows)
    with caplog.at_level("INFO", logger="flask_connectwise.client"):
        assert make_client().search_tickets("SRV_DC01", limit=1) == []
    assert "kept 0 of 10 tickets" in caplog.text


@responses.activate
def test_plain_text_asks_for_just_the_limit(make_client):
    responses.get(f"{API}/service/tickets", json=[ticket_row(7, "VPN down"), ticket_row(6, "vpn")])
    found = make_client().search_tickets("vpn", limit=1)
    assert query_of(responses.calls[0])["pageSize"] == ["1"]
    assert [t.id for t in found] == [7]


@pytest.mark.parametrize("text", ["", "   ", '""', "%%", "*", "\\\\"])
@responses.activate
def test_nothing_searchable_makes_no_call(make_client, text):
    assert make_client().search_tickets(text) == []
    assert len(responses.calls) == 0


# -- writes ------------------------------------------------------------------------------------


@responses.activate
def test_add_note_sets_exactly_one_display_flag(make_client):
    note = {"id": 77, "ticketId": 5, "text": "t", "member": {"id": 3, "identifier": "jdoe"}}
    route = responses.post(f"{API}/service/tickets/5/notes", json=note, status=201)
    client = make_client()
    created = client.add_note(5, "Changed the DID", member="jdoe")
    assert json.loads(route.calls[0].request.body) == {
        "text": "Changed the DID",
        "detailDescriptionFlag": True,
        "internalAnalysisFlag": False,
        "resolutionFlag": False,
        "processNotifications": False,
        "member": {"identifier": "jdoe"},
    }
    assert created.to_json()["member"] == "jdoe"
    client.add_note(5, "x", internal=True, process_notifications=True, member=Member(8, "a"))
    body = json.loads(route.calls[1].request.body)
    assert (body["detailDescriptionFlag"], body["internalAnalysisFlag"]) == (False, True)
    assert body["processNotifications"] is True
    assert body["member"] == {"id": 8}


@pytest.mark.parametrize("text", ["", "   ", None])
def test_add_note_refuses_empty_text(make_client, text):
    with pytest.raises(ValueError):
        make_client().add_note(5, text)


@responses.activate
def test_add_time_entry_body(make_client):
    route = responses.post(
        f"{API}/time/entries",
        json={"id": 9, "chargeToId": 5, "actualHours": 0.25, "member": {"identifier": "jdoe"}},
        status=201,
    )
    start = datetime(2024, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    entry = make_client().add_time_entry(5, hours=0.25, member="jdoe", notes="ref", start=start)
    assert json.loads(route.calls[0].request.body) == {
        "chargeToId": 5,
        "chargeToType": "ServiceTicket",
        "timeStart": "2024-01-01T10:00:00Z",
        "timeEnd": "2024-01-01T10:15:00Z",
        "member": {"identifier": "jdoe"},
        "notes": "ref",
    }
    assert entry.hours == 0.25


@responses.activate
def test_add_time_entry_defaults_to_ending_now(make_client):
    route = responses.post(f"{API}/time/entries", json={"id": 9}, status=201)
    make_client().add_time_entry(5, hours=0.5)
    body = json.loads(route.calls[0].request.body)
    start = datetime.fromisoformat(body["timeStart"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(body["timeEnd"].replace("Z", "+00:00"))
    assert end - start == timedelta(minutes=30)
    assert abs((datetime.now(UTC) - end).total_seconds()) < 5


@pytest.mark.parametrize(("minutes", "end"), [(7, "10:07:00"), (10, "10:10:00"), (1, "10:01:00")])
@responses.activate
def test_add_time_entry_minutes_are_whole_seconds(make_client, minutes, end):
    # Hours come from minutes rounded to 4 places (7 min is 0.1167 h, 420.12 s) and a start
    # may carry microseconds: both used to end the entry a second late (7:01, 10:01).
    route = responses.post(f"{API}/time/entries", json={"id": 9}, status=201)
    start = datetime(2024, 1, 1, 10, 0, 0, 999_999, tzinfo=UTC)
    make_client().add_time_entry(5, hours=round(minutes / 60, 4), start=start)
    assert json.loads(route.calls[0].request.body) == {
        "chargeToId": 5,
        "chargeToType": "ServiceTicket",
        "timeStart": "2024-01-01T10:00:00Z",
        "timeEnd": f"2024-01-01T{end}Z",
    }


@responses.activate
def test_add_time_entry_ending_now_spans_exact_minutes(make_client):
    route = responses.post(f"{API}/time/entries", json={"id": 9}, status=201)
    make_client().add_time_entry(5, hours=round(7 / 60, 4))
    body = json.loads(route.calls[0].request.body)
    start = datetime.fromisoformat(body["timeStart"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(body["timeEnd"].replace("Z", "+00:00"))
    assert end - start == timedelta(minutes=7)


@pytest.mark.parametrize("hours", [0, -1, 24.01, True, "1"])
def test_add_time_entry_refuses_bad_hours(make_client, hours):
    with pytest.raises(ValueError, match="hours"):
        make_client().add_time_entry(5, hours=hours)


def test_add_time_entry_refuses_naive_start(make_client):
    with pytest.raises(ValueError, match="timezone-aware"):
        make_client().add_time_entry(5, hours=1, start=datetime(2024, 1, 1, 10, 0))


@pytest.mark.parametrize("ticket_id", [0, -3, True, "5", 1.5])
def test_ticket_ids_must_be_positive_integers(make_client, ticket_id):
    with pytest.raises(ValueError, match="ticket id"):
        make_client().get_ticket(ticket_id)


# -- status ------------------------------------------------------------------------------------


@responses.activate
def test_update_status_checks_the_board_then_patches(make_client):
    responses.get(f"{API}/service/tickets/5", json=TICKET | {"id": 5})
    statuses = responses.get(f"{API}/service/boards/1/statuses", json=STATUSES)
    patch = responses.patch(
        f"{API}/service/tickets/5",
        json=TICKET | {"id": 5, "status": {"id": 12, "name": "In Progress"}},
        match=[
            matchers.json_params_matcher([{"op": "replace", "path": "status", "value": {"id": 12}}])
        ],
    )
    client = make_client()
    assert client.update_status(5, 12).status == "In Progress"
    assert patch.call_count == 1
    client.update_status(5, 12, board_id=1)
    assert statuses.call_count == 1  # cached


@pytest.mark.parametrize("status_id", [99, 13])
@responses.activate
def test_update_status_refuses_foreign_or_inactive_status_without_patching(make_client, status_id):
    statuses = responses.get(f"{API}/service/boards/1/statuses", json=STATUSES)
    with pytest.raises(errors.StatusNotOnBoardError):
        make_client().update_status(5, status_id, board_id=1)
    assert statuses.call_count == 2  # the cache is refreshed once before refusing
    assert all(c.request.method == "GET" for c in responses.calls)


@responses.activate
def test_update_status_checks_the_answer(make_client):
    responses.get(f"{API}/service/boards/1/statuses", json=STATUSES)
    responses.patch(f"{API}/service/tickets/5", json=TICKET | {"id": 5})
    with pytest.raises(errors.UnavailableError, match="did not apply"):
        make_client().update_status(5, 12, board_id=1)


# -- members -----------------------------------------------------------------------------------


@responses.activate
def test_find_member_by_identifier_and_email(make_client):
    route = responses.get(
        f"{API}/system/members", json=[{"id": 4, "identifier": "tech", "firstName": "Tess"}]
    )
    client = make_client()
    assert client.find_member("tech").id == 4
    assert query_of(route.calls[0])["conditions"] == ['identifier="tech" and inactiveFlag=false']
    client.find_member("tech@company.com")
    assert query_of(route.calls[1])["conditions"] == [
        '(identifier="tech@company.com" or primaryEmail="tech@company.com") and inactiveFlag=false'
    ]
    assert client.find_member('"') is None
    assert route.call_count == 2


# -- error mapping -----------------------------------------------------------------------------

INVALID = {
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
}


@pytest.mark.parametrize(
    ("status", "body", "error", "http"),
    [
        (400, INVALID, errors.ValidationError, 400),
        (401, {"code": "Unauthorized", "message": "x"}, errors.AuthenticationError, 502),
        (
            403,
            {
                "code": "Security",
                "message": "You do not have security permission to perform this action.",
            },
            errors.ForbiddenError,
            502,
        ),
        (404, {"code": "NotFound", "message": "Ticket 5 not found"}, errors.NotFoundError, 404),
        (409, {"code": "Conflict", "message": "in use"}, errors.ConflictError, 409),
        (500, "<html>", errors.UnavailableError, 502),
        (302, "", errors.ConfigurationError, 400),
        (418, "", errors.ConnectWiseError, 502),
    ],
)
@responses.activate
def test_error_mapping(make_client, status, body, error, http):
    kwargs = {"json": body} if isinstance(body, dict) else {"body": body}
    headers = {"Location": "https://elsewhere.example.test/"} if status == 302 else {}
    route = responses.get(f"{API}/service/tickets/5", status=status, headers=headers, **kwargs)
    responses.get(f"{API}/system/info", json={"version": "v2025.1"})  # confirms a 404
    with pytest.raises(error) as caught:
        make_client(rediscover_interval=3600).get_ticket(5)
    assert caught.value.status == status
    assert caught.value.http_status == http
    assert route.call_count == 1  # no redirect followed, nothing retried
    assert len(responses.calls) == (2 if status == 404 else 1)
    if status == 400:
        assert caught.value.errors[0].field == "status/id"
        assert "Service Status 17 not found" in str(caught.value)


# -- retries -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [502, 503, 504])
@responses.activate
def test_reads_retry_gateway_errors(make_client, sleeps, status):
    route = responses.get(f"{API}/system/info", status=status)
    responses.get(f"{API}/system/info", status=status)
    responses.get(f"{API}/system/info", json={"version": "x"})
    assert make_client().system_info().version == "x"
    assert route.call_count + 2 == len(responses.calls) == 3
    assert len(sleeps) == 2 and all(0 <= s <= 1.0 for s in sleeps)


@responses.activate
def test_reads_give_up_after_max_attempts(make_client, sleeps):
    responses.get(f"{API}/system/info", status=503)
    with pytest.raises(errors.UnavailableError):
        make_client().system_info()
    assert len(responses.calls) == 4
    assert len(sleeps) == 3


@responses.activate
def test_500_is_not_retried(make_client):
    responses.get(f"{API}/system/info", status=500)
    with pytest.raises(errors.UnavailableError):
        make_client().system_info()
    assert len(responses.calls) == 1


@responses.activate
def test_429_honours_retry_after(make_client, sleeps):
    responses.get(f"{API}/system/info", status=429, headers={"Retry-After": "3"})
    responses.get(f"{API}/system/info", json={"version": "x"})
    make_client().system_info()
    assert sleeps and sleeps[0] >= 3


@responses.activate
def test_429_beyond_the_deadline_is_raised_with_its_wait(make_client, sleeps):
    responses.get(f"{API}/system/info", status=429, headers={"Retry-After": "120"})
    with pytest.raises(errors.RateLimitedError) as caught:
        make_client().system_info()
    assert caught.value.retry_after == 120
    assert sleeps == []
    assert len(responses.calls) == 1


@pytest.mark.parametrize(
    "fault",
    [
        requests.exceptions.ReadTimeout("slow"),
        requests.exceptions.ConnectTimeout("slow"),
        "refused",
        "dropped",
    ],
)
@responses.activate
def test_reads_retry_connection_failures(make_client, fault):
    body = refused() if fault == "refused" else dropped() if fault == "dropped" else fault
    responses.get(f"{API}/system/info", body=body)
    responses.get(f"{API}/system/info", json={"version": "x"})
    assert make_client().system_info().version == "x"
    assert len(responses.calls) == 2


@responses.activate
def test_status_patch_is_retried(make_client):
    responses.get(f"{API}/service/boards/1/statuses", json=STATUSES)
    responses.patch(f"{API}/service/tickets/5", status=503)
    responses.patch(f"{API}/service/tickets/5", body=requests.exceptions.ReadTimeout("slow"))
    responses.patch(f"{API}/service/tickets/5", json=TICKET | {"status": {"id": 12}})
    assert make_client().update_status(5, 12, board_id=1).status_id == 12
    assert [c.request.method for c in responses.calls] == ["GET", "PATCH", "PATCH", "PATCH"]


@pytest.mark.parametrize(
    ("fault", "error", "sent"),
    [
        (requests.exceptions.ReadTimeout("slow"), errors.TimeoutError, True),
        ("dropped", errors.UnavailableError, True),
        (500, errors.UnavailableError, True),
        (502, errors.UnavailableError, True),
        (503, errors.UnavailableError, True),
        ("not-json", errors.UnavailableError, True),
    ],
)
@pytest.mark.parametrize("write", ["note", "time"])
@responses.activate
def test_writes_with_unknown_outcome_are_never_repeated(make_client, fault, error, sent, write):
    url = f"{API}/service/tickets/5/notes" if write == "note" else f"{API}/time/entries"
    if isinstance(fault, int):
        responses.post(url, status=fault)
    elif fault == "not-json":
        responses.post(url, status=201, body="{trunc")
    else:
        responses.post(url, body=dropped() if fault == "dropped" else fault)
    responses.post(url, json={"id": 1}, status=201)
    client = make_client()
    with pytest.raises(error) as caught:
        if write == "note":
            client.add_note(5, "x")
        else:
            client.add_time_entry(5, hours=1)
    assert caught.value.sent is sent
    assert len(responses.calls) == 1


@pytest.mark.parametrize("fault", [requests.exceptions.ConnectTimeout("slow"), "refused", "429"])
@responses.activate
def test_writes_that_never_arrived_are_retried(make_client, fault):
    url = f"{API}/service/tickets/5/notes"
    if fault == "429":
        responses.post(url, status=429, headers={"Retry-After": "1"})
    else:
        responses.post(url, body=refused() if fault == "refused" else fault)
    responses.post(url, json={"id": 1, "ticketId": 5}, status=201)
    assert make_client().add_note(5, "x").id == 1
    assert len(responses.calls) == 2


# -- nothing secret anywhere -------------------------------------------------------------------


@responses.activate
def test_no_secret_in_errors_or_logs(make_client, canaries, caplog):
    caplog.set_level(logging.DEBUG, logger="flask_connectwise")
    echo = {
        "code": "Unauthorized",
        "message": f"bad key {canaries.private_key} for {canaries.client_id}",
    }
    responses.get(f"{API}/system/info", status=401, json=echo)
    responses.get(f"{API}/service/tickets/5", status=403, json=echo)
    responses.post(
        f"{API}/time/entries",
        status=400,
        json=echo | {"errors": [{"message": canaries.public_key}]},
    )
    responses.get(f"{API}/system/members", status=503)
    client = make_client()
    texts = [repr(client)]
    for call in (
        client.system_info,
        lambda: client.get_ticket(5),
        lambda: client.add_time_entry(5, hours=1),
        lambda: client.find_member("jdoe"),
    ):
        with pytest.raises(errors.ConnectWiseError) as caught:
            call()
        texts += [str(caught.value), repr(caught.value)]
        texts += [e.message for e in caught.value.errors]
    for record in caplog.records:
        texts.append(record.getMessage())
        texts.append(repr(record.__dict__))
    assert len(caplog.records) > 4
    leaked = [c for text in texts for c in canaries.find_in(text)]
    assert leaked == []
    basic = base64.b64encode(f"acme+{canaries.public_key}:{canaries.private_key}".encode()).decode()
    assert not any(basic in t for t in texts)


def test_client_is_flask_free():
    import subprocess
    import sys

    code = (
        "import sys, flask_connectwise.client as c; "
        "assert 'flask' not in sys.modules, sorted(m for m in sys.modules if 'flask' in m)"
    )
    # The package __init__ may grow Flask imports; the client module itself must not need them.
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr


def test_constructing_a_client_makes_no_call(make_client):
    with responses.RequestsMock() as mocked:
        client: ConnectWiseClient = make_client(codebase=None)
        assert len(mocked.calls) == 0
        assert client.base_url == BASE_URL
        assert CODEBASE.endswith("/")
