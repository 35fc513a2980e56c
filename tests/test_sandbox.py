"""The ConnectWise sandbox, exercised over real HTTP on loopback."""

from __future__ import annotations

import base64
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
import requests

from flask_connectwise.sandbox import Sandbox
from flask_connectwise.sandbox.__main__ import main as cli_main
from flask_connectwise.sandbox.__main__ import parse_fault
from flask_connectwise.sandbox.query import paginate
from tests.sandbox_client import CW


@pytest.fixture
def sb(connectwise_sandbox: Sandbox) -> Sandbox:
    return connectwise_sandbox


@pytest.fixture
def cw(sb: Sandbox) -> CW:
    return CW(sb)


def ids(resp: requests.Response) -> list[int]:
    assert resp.status_code == 200, resp.text
    return [r["id"] for r in resp.json()]


NOTE = {
    "text": "Rebooted the router.",
    "internalAnalysisFlag": True,
    "detailDescriptionFlag": False,
    "resolutionFlag": False,
    "processNotifications": False,
}
TIME = {
    "chargeToId": 12345,
    "chargeToType": "ServiceTicket",
    "member": {"identifier": "jdoe"},
    "timeStart": "2025-01-01T10:00:00Z",
    "timeEnd": "2025-01-01T10:30:00Z",
    "notes": "Remote fix",
    "addToInternalAnalysisFlag": True,
}


# ---- companyinfo, codebase ---------------------------------------------------------------
def test_companyinfo_needs_no_auth_and_has_cw_shape(sb: Sandbox) -> None:
    r = requests.get(f"{sb.url}/login/companyinfo/{sb.company_id}", timeout=5)
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {
        "CompanyName",
        "Codebase",
        "VersionCode",
        "VersionNumber",
        "CompanyID",
        "IsCloud",
        "SiteUrl",
    }
    assert body["Codebase"] == "v2025_1/" and body["CompanyID"] == "sandbox"
    assert body["IsCloud"] is False and body["VersionCode"] == "v2025.1"


def test_companyinfo_unknown_company_is_200_null(sb: Sandbox) -> None:
    r = requests.get(f"{sb.url}/login/companyinfo/nobody", timeout=5)
    assert r.status_code == 200 and r.text == "null" and r.json() is None


def test_router_and_current_codebase_work_others_404(sb: Sandbox) -> None:
    assert CW(sb, "v4_6_release/").get("system/info").status_code == 200
    assert CW(sb, "v2025_1/").get("system/info").status_code == 200
    r = CW(sb, "v2024_1/").get("system/info")
    assert r.status_code == 404 and r.json()["code"] == "NotFound"


def test_move_codebase_then_reset(sb: Sandbox) -> None:
    sb.move_codebase("v2026_1/")
    assert sb.codebase == "v2026_1/"
    assert CW(sb, "v2025_1/").get("system/info").status_code == 404
    assert CW(sb, "v2026_1/").get("system/info").status_code == 200
    assert CW(sb, "v4_6_release/").get("system/info").status_code == 200
    info = requests.get(f"{sb.url}/login/companyinfo/sandbox", timeout=5).json()
    assert info["Codebase"] == "v2026_1/"
    sb.reset()
    assert sb.codebase == "v2025_1/"
    assert CW(sb, "v2025_1/").get("system/info").status_code == 200


# ---- auth --------------------------------------------------------------------------------
def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    "case", ["none", "wrong_private", "wrong_public", "wrong_company", "not_basic", "garbage"]
)
def test_bad_auth_is_401(sb: Sandbox, case: str) -> None:
    c = sb.credentials
    headers = {"clientId": c["client_id"]}
    user, pw = f"sandbox+{c['public_key']}", c["private_key"]
    auth = {
        "none": None,
        "wrong_private": _basic(user, "x"),
        "wrong_public": _basic("sandbox+x", pw),
        "wrong_company": _basic(f"other+{user[8:]}", pw),
        "not_basic": "Bearer abc",
        "garbage": "Basic ***",
    }[case]
    if auth:
        headers["Authorization"] = auth
    r = requests.get(CW(sb).url("system/info"), headers=headers, timeout=5)
    assert r.status_code == 401
    assert r.json()["code"] == "Unauthorized" and r.json()["message"]


@pytest.mark.parametrize("client_id", [None, "", "00000000-0000-0000-0000-000000000000"])
def test_missing_or_unknown_client_id_is_401(sb: Sandbox, client_id: str | None) -> None:
    cw = CW(sb)
    del cw.session.headers["clientId"]
    if client_id is not None:
        cw.session.headers["clientId"] = client_id
    r = cw.get("system/info")
    assert r.status_code == 401 and r.json()["code"] == "Unauthorized"


def test_client_id_header_name_is_case_insensitive(sb: Sandbox) -> None:
    cw = CW(sb)
    cw.session.headers["ClientID"] = cw.session.headers.pop("clientId")
    assert cw.get("system/info").status_code == 200


def test_company_id_case_insensitive_in_auth(sb: Sandbox) -> None:
    c = sb.credentials
    headers = {
        "Authorization": _basic(f"SANDBOX+{c['public_key']}", c["private_key"]),
        "clientId": c["client_id"],
    }
    assert requests.get(CW(sb).url("system/info"), headers=headers, timeout=5).status_code == 200


def test_log_redacts_secrets_and_keeps_accept(sb: Sandbox, cw: CW) -> None:
    cw.get("service/tickets/12345", fields="id")
    rec = sb.requests[-1]
    assert rec.method == "GET" and rec.path == "service/tickets/12345"
    assert rec.query == {"fields": "id"} and rec.status == 200 and rec.fault is None
    assert rec.headers["Authorization"] == "<redacted>"
    assert rec.headers["clientid"] == "<redacted>"
    assert rec.headers["Accept"].startswith("application/vnd.connectwise.com+json")
    dump = repr(sb.requests)
    assert sb.private_key not in dump and sb.client_id not in dump and sb.public_key not in dump


# ---- errors ------------------------------------------------------------------------------
def test_unknown_ticket_404_exact_body(cw: CW) -> None:
    r = cw.get("service/tickets/123")
    assert r.status_code == 404
    assert r.json() == {"code": "NotFound", "message": "Ticket 123 not found"}


def test_unknown_route_404_cw_shape(cw: CW) -> None:
    r = cw.get("service/nothing")
    assert r.status_code == 404 and r.json()["code"] == "NotFound" and "message" in r.json()
    r = requests.get(cw.sb.url + "/whatever", timeout=5)
    assert r.status_code == 404 and r.json()["code"] == "NotFound"


def test_wrong_method_405(cw: CW) -> None:
    r = cw.session.delete(cw.url("service/tickets/12345"), timeout=5)
    assert r.status_code == 405 and r.json()["code"]


@pytest.mark.parametrize(
    "path,method",
    [
        ("service/tickets/12345/notes", "post"),
        ("time/entries", "post"),
        ("service/tickets/12345", "patch"),
        ("service/tickets/search", "post"),
    ],
)
def test_write_without_json_content_type_is_415(cw: CW, path: str, method: str) -> None:
    r = getattr(cw.session, method)(
        cw.url(path), data="text=hello", headers={"Content-Type": "text/plain"}, timeout=5
    )
    assert r.status_code == 415 and r.json()["code"] == "ConnectWiseApi"
    assert r.json()["errors"] is None
    assert cw.sb.notes(12345)[-1]["text"] != "text=hello"


def test_json_with_charset_is_accepted_and_bad_json_is_400(cw: CW) -> None:
    url = cw.url("service/tickets/12345/notes")
    r = cw.session.post(
        url,
        data='{"text": "Café ok", "internalAnalysisFlag": true}'.encode(),
        headers={"Content-Type": "application/json; charset=utf-8"},
        timeout=5,
    )
    assert r.status_code == 201 and r.json()["text"] == "Café ok"
    r = cw.session.post(
        url, data=b"{not json", headers={"Content-Type": "application/json"}, timeout=5
    )
    assert r.status_code == 400 and r.json()["code"] == "InvalidObject"


# ---- conditions --------------------------------------------------------------------------
def _expect(sb: Sandbox, pred: Any) -> list[int]:
    return sorted(t["id"] for t in sb.tickets() if pred(t))


CONDITIONS = [
    ("id=12345", lambda t: t["id"] == 12345),
    ("id = 12345", lambda t: t["id"] == 12345),
    ("id!=12345", lambda t: t["id"] != 12345),
    ("id<12205", lambda t: t["id"] < 12205),
    ("id<=12205", lambda t: t["id"] <= 12205),
    ("id>12455", lambda t: t["id"] > 12455),
    ("id>=12455", lambda t: t["id"] >= 12455),
    ('summary contains "PRINTER"', lambda t: "printer" in t["summary"].lower()),
    ("summary contains 'vpn'", lambda t: "vpn" in t["summary"].lower()),
    ('summary not contains "printer"', lambda t: "printer" not in t["summary"].lower()),
    ('summary like "%printer%"', lambda t: "printer" in t["summary"].lower()),
    ("summary like 'printer*'", lambda t: t["summary"].lower().startswith("printer")),
    ('summary like "%3cx%"', lambda t: "3cx" in t["summary"].lower()),
    (
        'summary like "Printer_offline%"',
        lambda t: t["summary"].lower().startswith("printer offline"),
    ),
    ('summary not like "%printer%"', lambda t: "printer" not in t["summary"].lower()),
    ("id in (12345, 12346,12999)", lambda t: t["id"] in (12345, 12346)),
    ("id not in (12345,12346)", lambda t: t["id"] not in (12345, 12346)),
    ("closedFlag=false", lambda t: not t["closedFlag"]),
    ("closedFlag=False", lambda t: not t["closedFlag"]),
    ("closedFlag = TRUE", lambda t: t["closedFlag"]),
    ('status/name="closed"', lambda t: t["status"]["name"] == "Closed"),
    ("status/id in (101,102)", lambda t: t["status"]["id"] in (101, 102)),
    (
        'board/name="Voice Services" AND company/name="Fabrikam Inc"',
        lambda t: t["board"]["name"] == "Voice Services" and t["company"]["name"] == "Fabrikam Inc",
    ),
    ('company/identifier="contoso"', lambda t: t["company"]["identifier"] == "Contoso"),
    (
        'summary contains "vpn" or summary contains "teams" and closedFlag=true',
        lambda t: (
            "vpn" in t["summary"].lower() or ("teams" in t["summary"].lower() and t["closedFlag"])
        ),
    ),
    (
        '(summary contains "vpn" Or summary contains "teams") and closedFlag=true',
        lambda t: (
            ("vpn" in t["summary"].lower() or "teams" in t["summary"].lower()) and t["closedFlag"]
        ),
    ),
    ("lastUpdated>[2025-03-01T00:00:00Z]", lambda t: t["_info"]["lastUpdated"] > "2025-03-01T"),
    (
        "_info/dateEntered<[2025-02-01T10:00:00.123456]",
        lambda t: t["_info"]["dateEntered"] < "2025-02-01T10:00:00.1",
    ),
    ("closedDate=null", lambda t: t["closedDate"] is None),
    ("closedDate != null", lambda t: t["closedDate"] is not None),
    ("CLOSEDFLAG=false and Board/ID=21", lambda t: not t["closedFlag"] and t["board"]["id"] == 21),
]


@pytest.mark.parametrize("conditions,pred", CONDITIONS, ids=[c[0] for c in CONDITIONS])
def test_conditions(sb: Sandbox, cw: CW, conditions: str, pred: Any) -> None:
    expected = _expect(sb, pred)
    assert expected, "the seed should make every condition match something"
    assert ids(cw.get("service/tickets", conditions=conditions, pageSize=1000)) == expected


@pytest.mark.parametrize(
    "conditions,problem",
    [
        ('summary contains "printer', "unterminated string"),
        ("id=", "expected a value"),
        ("(id=1", "')'"),
        ("id=1)", "unexpected"),
        ("id ~ 5", "unexpected character"),
        ("summary contains printer", "expected a value"),
        ("id=1 and", "expected a field name"),
        ("id between 1", "expected an operator"),
        ("lastUpdated>[2024-13-45]", "invalid date"),
        ("id in 1,2", "'(' after in"),
    ],
)
def test_conditions_syntax_errors_are_400(cw: CW, conditions: str, problem: str) -> None:
    r = cw.get("service/tickets", conditions=conditions)
    assert r.status_code == 400
    assert r.json()["code"] == "InvalidObject" and problem in r.json()["message"]


def test_conditions_unknown_field_and_type_mismatch_are_400(cw: CW) -> None:
    r = cw.get("service/tickets", conditions='nosuchfield="x"')
    assert r.status_code == 400 and "nosuchfield" in r.json()["message"]
    assert cw.get("service/tickets", conditions='id="abc"').status_code == 400
    assert cw.get("service/tickets", conditions="status=5").status_code == 400


def test_quote_inside_string_ends_it(cw: CW) -> None:
    r = cw.get("service/tickets", conditions='summary contains "say "hi""')
    assert r.status_code == 400


def test_search_post_body_conditions_query_paging(sb: Sandbox, cw: CW) -> None:
    expected = _expect(sb, lambda t: "printer" in t["summary"].lower() and not t["closedFlag"])
    body = {"conditions": 'summary contains "printer" and closedFlag=false', "orderBy": "id desc"}
    r = cw.session.post(
        cw.url("service/tickets/search"),
        json=body,
        params={"pageSize": 3, "page": 2, "fields": "id,summary"},
        timeout=5,
    )
    assert r.status_code == 200
    assert [t["id"] for t in r.json()] == sorted(expected, reverse=True)[3:6]
    assert all(set(t) == {"id", "summary"} for t in r.json())
    assert 'rel="next"' in r.headers["Link"] and "page=3" in r.headers["Link"]
    bad = cw.post("service/tickets/search", {"conditions": "id=="})
    assert bad.status_code == 400


# ---- fields, orderBy, pagination, count ---------------------------------------------------
def test_fields_trim_nested_keep_parent(cw: CW) -> None:
    r = cw.get("service/tickets/12345", fields="id,summary,status/name,company")
    assert r.json() == {
        "id": 12345,
        "summary": "Printer offline - front desk HP LaserJet",
        "status": {"name": "New"},
        "company": r.json()["company"],
    }
    assert set(r.json()["company"]) == {"id", "identifier", "name", "_info"}
    rows = cw.get("service/tickets", fields="id,board/id", pageSize=2).json()
    assert all(set(row) == {"id", "board"} and set(row["board"]) == {"id"} for row in rows)


def test_order_by(sb: Sandbox, cw: CW) -> None:
    assert ids(cw.get("service/tickets", orderBy="id desc", pageSize=3)) == [12460, 12459, 12458]
    assert ids(cw.get("service/tickets", orderBy="id asc", pageSize=2)) == [12201, 12202]
    rows = cw.get(
        "service/tickets", orderBy="summary asc, id desc", pageSize=1000, fields="id,summary"
    ).json()
    keys = [(r["summary"].casefold(), -r["id"]) for r in rows]
    assert keys == sorted(keys)
    rows = cw.get("service/tickets", orderBy="board/name desc", pageSize=1000).json()
    names = [r["board"]["name"] for r in rows]
    assert names == sorted(names, reverse=True)
    assert cw.get("service/tickets", orderBy="bogus desc").status_code == 400
    assert cw.get("service/tickets", orderBy="id sideways").status_code == 400


def test_pagination_default_max_and_links(sb: Sandbox, cw: CW) -> None:
    assert len(cw.get("service/tickets").json()) == 25
    r = cw.get("service/tickets", pageSize=5000)
    assert len(r.json()) == 260 and "Link" not in r.headers
    r = cw.get("service/tickets", pageSize=100, conditions="id>0", orderBy="id desc")
    links = requests.utils.parse_header_links(r.headers["Link"])
    rels = {link["rel"]: link["url"] for link in links}
    assert set(rels) == {"next", "last"}
    assert rels["next"].startswith(f"{sb.url}/v2025_1/apis/3.0/service/tickets?")
    assert "page=2" in rels["next"] and "page=3" in rels["last"]
    assert "conditions=id%3E0" in rels["next"] and "orderBy=id+desc" in rels["next"]
    r2 = cw.session.get(rels["next"], timeout=5)
    rels2 = {x["rel"] for x in requests.utils.parse_header_links(r2.headers["Link"])}
    assert rels2 == {"first", "prev", "next", "last"}
    r3 = cw.session.get(rels["last"], timeout=5)
    rels3 = {x["rel"] for x in requests.utils.parse_header_links(r3.headers["Link"])}
    assert rels3 == {"first", "prev"}
    got = ids(r) + ids(r2) + ids(r3)
    assert got == sorted(range(12201, 12461), reverse=True)
    assert cw.get("service/tickets", page=99).json() == []
    assert cw.get("service/tickets", page="x").status_code == 400
    assert "Link" not in cw.get("service/tickets", conditions="id=12345").headers


def test_page_size_is_capped_at_1000() -> None:
    rows = [{"id": i} for i in range(1, 1502)]
    page = paginate(rows, {"pageSize": "5000"}, "http://x/apis")
    assert len(page.items) == 1000 and page.link and 'page=2>; rel="last"' in page.link
    assert len(paginate(rows, {"pageSize": "0"}, "http://x").items) == 25


def test_count(sb: Sandbox, cw: CW) -> None:
    assert cw.get("service/tickets/count").json() == {"count": 260}
    expected = len(_expect(sb, lambda t: t["closedFlag"]))
    assert cw.get("service/tickets/count", conditions="closedFlag=true").json() == {
        "count": expected
    }
    assert cw.get("system/members/count").json()["count"] == len(sb.members())
    assert cw.get("time/entries/count", conditions="chargeToId=12346").json() == {"count": 1}


# ---- notes -------------------------------------------------------------------------------
def test_note_post_201_shape(sb: Sandbox, cw: CW) -> None:
    before = sb.ticket(12345)["_info"]["lastUpdated"]
    r = cw.post("service/tickets/12345/notes", {**NOTE, "member": {"identifier": "jdoe"}})
    assert r.status_code == 201
    note = r.json()
    assert note["ticketId"] == 12345 and note["text"] == NOTE["text"]
    assert note["internalAnalysisFlag"] is True and note["detailDescriptionFlag"] is False
    assert note["member"]["identifier"] == "jdoe" and note["member"]["id"] == 180
    assert set(note["member"]) == {"id", "identifier", "name", "_info"}
    assert note["dateCreated"].endswith("Z") and note["createdBy"] == "jdoe"
    assert note["internalFlag"] is True and note["externalFlag"] is False
    assert note["processNotifications"] is False and "_info" in note
    assert sb.notes(12345)[-1] == note
    assert [n["id"] for n in cw.get("service/tickets/12345/notes").json()][-1] == note["id"]
    assert sb.ticket(12345)["_info"]["lastUpdated"] > before


def test_note_member_by_id_and_default_api_member(sb: Sandbox, cw: CW) -> None:
    r = cw.post("service/tickets/12345/notes", {**NOTE, "member": {"id": 181}})
    assert r.status_code == 201 and r.json()["member"]["identifier"] == "asmith"
    r = cw.post("service/tickets/12345/notes", NOTE)
    assert r.status_code == 201 and r.json()["member"]["identifier"] == "SandboxAPI"


@pytest.mark.parametrize(
    "body",
    [
        {"internalAnalysisFlag": True},
        {"text": "", "internalAnalysisFlag": True},
        {"text": None, "internalAnalysisFlag": True},
    ],
)
def test_note_without_text_is_missing_required_field(cw: CW, body: dict[str, Any]) -> None:
    r = cw.post("service/tickets/12345/notes", body)
    assert r.status_code == 400
    err = r.json()
    assert err["code"] == "InvalidObject"
    assert err["errors"][0]["code"] == "MissingRequiredField"
    assert err["errors"][0]["field"] == "text"


def test_note_needs_a_display_flag(sb: Sandbox, cw: CW) -> None:
    count = len(sb.notes(12345))
    r = cw.post(
        "service/tickets/12345/notes",
        {
            "text": "x",
            "detailDescriptionFlag": False,
            "internalAnalysisFlag": False,
            "resolutionFlag": False,
        },
    )
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == "InvalidObject" and body["message"] == "serviceNote object is invalid"
    assert body["errors"][0]["message"] == (
        "Please choose where to display the notes in order to save this record."
    )
    assert body["errors"][0]["resource"] == "serviceNote"
    assert len(sb.notes(12345)) == count
    for flag in ("detailDescriptionFlag", "resolutionFlag"):
        assert cw.post("service/tickets/12345/notes", {"text": "x", flag: True}).status_code == 201


@pytest.mark.parametrize("member", [{"identifier": "nobody"}, {"id": 9999}, "jdoe"])
def test_note_unknown_member_is_400_on_member(cw: CW, member: Any) -> None:
    r = cw.post("service/tickets/12345/notes", {**NOTE, "member": member})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "member"


def test_note_on_unknown_ticket_404(cw: CW) -> None:
    r = cw.post("service/tickets/999/notes", NOTE)
    assert r.status_code == 404 and r.json()["message"] == "Ticket 999 not found"
    assert cw.get("service/tickets/999/notes").status_code == 404


def test_all_notes_merges_time_entry_notes(cw: CW) -> None:
    rows = cw.get("service/tickets/12346/allNotes").json()
    kinds = sorted(r["noteType"] for r in rows)
    assert kinds == ["TicketNote", "TicketNote", "TimeEntryNote"]
    assert cw.post("time/entries", {**TIME, "chargeToId": 12346}).status_code == 201
    rows = cw.get("service/tickets/12346/allNotes").json()
    assert [r["text"] for r in rows if r["noteType"] == "TimeEntryNote"][-1] == "Remote fix"


# ---- time entries ------------------------------------------------------------------------
def test_time_entry_post_201_and_ticket_hours(sb: Sandbox, cw: CW) -> None:
    assert sb.ticket(12345)["actualHours"] is None
    r = cw.post("time/entries", TIME)
    assert r.status_code == 201
    e = r.json()
    assert e["chargeToId"] == 12345 and e["chargeToType"] == "ServiceTicket"
    assert e["member"]["identifier"] == "jdoe" and set(e["member"]) == {
        "id",
        "identifier",
        "name",
        "_info",
    }
    assert e["company"]["id"] == 250 and e["timeStart"] == "2025-01-01T10:00:00Z"
    assert e["timeEnd"] == "2025-01-01T10:30:00Z" and e["actualHours"] == 0.5
    assert e["billableOption"] == "Billable" and e["notes"] == "Remote fix"
    assert e["addToInternalAnalysisFlag"] is True and e["hoursDeduct"] == 0.0
    assert sb.ticket(12345)["actualHours"] == 0.5
    assert cw.get(f"time/entries/{e['id']}").json() == e
    assert sb.time_entries(12345) == [e]


def test_time_entry_actual_hours_derives_time_end(sb: Sandbox, cw: CW) -> None:
    body = {k: v for k, v in TIME.items() if k != "timeEnd"} | {"actualHours": 0.25}
    r = cw.post("time/entries", body)
    assert r.status_code == 201 and r.json()["timeEnd"] == "2025-01-01T10:15:00Z"
    assert sb.ticket(12345)["actualHours"] == 0.25


def test_time_entries_list_with_conditions(cw: CW) -> None:
    cw.post("time/entries", TIME)
    rows = cw.get("time/entries", conditions='chargeToId=12345 and chargeToType="ServiceTicket"')
    assert [r["chargeToId"] for r in rows.json()] == [12345]
    assert cw.get("time/entries/999999").status_code == 404


@pytest.mark.parametrize(
    "change,field,code",
    [
        ({"timeStart": None}, "timeStart", "MissingRequiredField"),
        ({"timeStart": "2025-01-01T10:00:00"}, "timeStart", None),
        ({"timeStart": "2025-01-01T10:00:00+02:00"}, "timeStart", None),
        ({"timeStart": "yesterday"}, "timeStart", None),
        ({"chargeToId": 999}, "chargeToId", "NotFound"),
        ({"chargeToType": None}, "chargeToType", "MissingRequiredField"),
        ({"chargeToType": "Nonsense"}, "chargeToType", None),
        ({"member": {"identifier": "ghost"}}, "member", "NotFound"),
        ({"member": {"identifier": "rbrown"}}, "member", None),
        ({"timeEnd": "2025-01-01T09:00:00Z"}, "timeEnd", None),
        ({"timeEnd": None}, "timeEnd", "MissingRequiredField"),
        ({"timeEnd": None, "actualHours": 0}, "actualHours", None),
        ({"billableOption": "Maybe"}, "billableOption", None),
    ],
)
def test_time_entry_validation(
    sb: Sandbox, cw: CW, change: dict[str, Any], field: str, code: str | None
) -> None:
    body = {k: v for k, v in (TIME | change).items() if v is not None}
    r = cw.post("time/entries", body)
    assert r.status_code == 400, r.text
    err = r.json()
    assert err["code"] == "InvalidObject" and err["errors"][0]["field"] == field
    if code:
        assert err["errors"][0]["code"] == code
    assert sb.time_entries(12345) == [] and sb.ticket(12345)["actualHours"] is None


def test_time_entry_refused_when_status_disallows_time(sb: Sandbox, cw: CW) -> None:
    assert sb.ticket(12347)["status"]["name"] == "Waiting on Parts"
    r = cw.post("time/entries", {**TIME, "chargeToId": 12347})
    assert r.status_code == 400 and "not allowed" in r.json()["errors"][0]["message"]
    assert sb.time_entries(12347) == []


# ---- PATCH -------------------------------------------------------------------------------
def test_patch_status_whole_object(sb: Sandbox, cw: CW) -> None:
    before = sb.ticket(12345)["_info"]["lastUpdated"]
    r = cw.patch(
        "service/tickets/12345", [{"op": "replace", "path": "status", "value": {"id": 102}}]
    )
    assert r.status_code == 200
    assert r.json()["status"]["id"] == 102 and r.json()["status"]["name"] == "In Progress"
    assert r.json()["summary"] and r.json()["closedFlag"] is False
    assert sb.ticket(12345)["status"]["id"] == 102
    assert r.json()["_info"]["lastUpdated"] > before


def test_patch_status_id_path_and_name(sb: Sandbox, cw: CW) -> None:
    r = cw.patch("service/tickets/12345", [{"op": "replace", "path": "status/id", "value": 104}])
    assert r.status_code == 200 and r.json()["status"]["name"] == "Scheduled"
    r = cw.patch(
        "service/tickets/12345",
        [{"op": "replace", "path": "/status", "value": {"name": "waiting on customer"}}],
    )
    assert r.status_code == 200 and r.json()["status"]["id"] == 103


def test_patch_status_of_other_board_exact_error(sb: Sandbox, cw: CW) -> None:
    r = cw.patch(
        "service/tickets/12346", [{"op": "replace", "path": "status", "value": {"id": 17}}]
    )
    assert r.status_code == 400
    assert r.json() == {
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
    r = cw.patch(
        "service/tickets/12346", [{"op": "replace", "path": "status", "value": {"id": 101}}]
    )
    assert r.status_code == 400 and "Service Board 21" in r.json()["errors"][0]["message"]
    assert sb.ticket(12346)["status"]["id"] == 122


def test_patch_closed_status_sets_closed_flag_and_date(sb: Sandbox, cw: CW) -> None:
    r = cw.patch(
        "service/tickets/12345", [{"op": "replace", "path": "status", "value": {"id": 107}}]
    )
    t = r.json()
    assert t["closedFlag"] is True and t["closedDate"].endswith("Z")
    assert sb.ticket(12345)["closedFlag"] is True
    r = cw.patch(
        "service/tickets/12345", [{"op": "replace", "path": "status", "value": {"id": 101}}]
    )
    assert r.json()["closedFlag"] is False and r.json()["closedDate"] is None


def test_patch_summary_max_length_and_unknown_path(sb: Sandbox, cw: CW) -> None:
    r = cw.patch(
        "service/tickets/12345", [{"op": "replace", "path": "summary", "value": "x" * 101}]
    )
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "MaxLengthField"
    assert r.json()["errors"][0]["field"] == "summary"
    r = cw.patch(
        "service/tickets/12345", [{"op": "replace", "path": "summary", "value": "y" * 100}]
    )
    assert r.status_code == 200 and r.json()["summary"] == "y" * 100
    r = cw.patch("service/tickets/12345", [{"op": "replace", "path": "nonsense", "value": 1}])
    assert r.status_code == 400 and r.json()["code"] == "ConnectWiseApi"  # not a Ticket field
    r = cw.patch("service/tickets/12345", [{"op": "replace", "path": "severity", "value": "Low"}])
    assert r.status_code == 400 and r.json()["code"] == "InvalidObject"  # a field not patched here


@pytest.mark.parametrize(
    "body",
    [
        {"op": "replace", "path": "status", "value": {"id": 102}},
        [],
        [{"op": "frobnicate", "path": "status", "value": {"id": 102}}],
        [{"op": "replace", "path": "status", "value": "In Progress"}],
        [{"op": "replace", "path": "status", "value": {"id": 108}}],
        [
            {"op": "replace", "path": "status", "value": {"id": 102}},
            {"op": "replace", "path": "summary", "value": "z" * 101},
        ],
    ],
)
def test_patch_invalid_bodies_change_nothing(sb: Sandbox, cw: CW, body: Any) -> None:
    before = sb.ticket(12345)
    r = cw.patch("service/tickets/12345", body)
    assert r.status_code == 400 and r.json()["code"] == "InvalidObject"
    assert sb.ticket(12345) == before


def test_patch_unknown_ticket_404(cw: CW) -> None:
    r = cw.patch("service/tickets/1", [{"op": "replace", "path": "status", "value": {"id": 102}}])
    assert r.status_code == 404 and r.json()["message"] == "Ticket 1 not found"


# ---- other resources ---------------------------------------------------------------------
def test_boards_and_statuses(sb: Sandbox, cw: CW) -> None:
    boards = cw.get("service/boards").json()
    assert {"Help Desk", "Voice Services", "Projects"} <= {b["name"] for b in boards}
    assert cw.get("service/boards/21").json()["name"] == "Voice Services"
    assert cw.get("service/boards/999").status_code == 404
    statuses = cw.get("service/boards/1/statuses", pageSize=1000).json()
    assert statuses == sb.board_statuses(1)
    names = {s["name"] for s in statuses}
    assert {
        "New",
        "In Progress",
        "Waiting on Customer",
        "Scheduled",
        "Completed",
        "Closed",
    } <= names
    assert any(s["inactive"] for s in statuses)
    assert any(s["timeEntryNotAllowed"] for s in statuses)
    assert {s["name"] for s in statuses if s["closedStatus"]} == {"Completed", "Closed"}
    assert all(s["board"]["id"] == 1 for s in statuses)
    assert cw.get("service/boards/1/statuses/101").json()["name"] == "New"
    assert cw.get("service/boards/1/statuses/121").status_code == 404
    active = cw.get("service/boards/1/statuses", conditions="inactive=false").json()
    assert len(active) == len(statuses) - 1


def test_members(sb: Sandbox, cw: CW) -> None:
    rows = cw.get(
        "system/members",
        conditions='identifier="jdoe"',
        fields="id,identifier,firstName,lastName,inactiveFlag",
    ).json()
    assert rows == [
        {
            "id": 180,
            "identifier": "jdoe",
            "firstName": "John",
            "lastName": "Doe",
            "inactiveFlag": False,
        }
    ]
    assert cw.get("system/members", conditions='identifier="nobody"').json() == []
    tech = cw.get("system/members", conditions='primaryEmail="tech@company.com"').json()
    assert [m["identifier"] for m in tech] == ["tech"]
    assert cw.get("system/members/181").json()["identifier"] == "asmith"
    assert cw.get("system/members/9").status_code == 404
    assert len(sb.members()) >= 5 and any(m["inactiveFlag"] for m in sb.members())
    active = cw.get("system/members", conditions="inactiveFlag=false").json()
    assert len(active) == len(sb.members()) - 1


def test_system_info_and_companies(cw: CW) -> None:
    info = cw.get("system/info").json()
    assert info["version"].startswith("v2025.1.") and info["isCloud"] is False
    assert info["serverTimeZone"] == "Eastern Standard Time" and info["cloudRegion"] == "NA"
    companies = cw.get("company/companies").json()
    assert len(companies) >= 6 and {"id", "identifier", "name"} <= set(companies[0])
    assert cw.get("company/companies/250").json()["name"] == "Contoso Ltd"


# ---- seed data ---------------------------------------------------------------------------
def test_seed_data(sb: Sandbox) -> None:
    tickets = sb.tickets()
    assert len(tickets) >= 240 and sb.ticket(12345)["id"] == 12345
    assert all(len(t["summary"]) <= 100 for t in tickets)
    text = " ".join(t["summary"].lower() for t in tickets)
    for word in ("printer offline", "vpn", "teams voice", "3cx", "did", "phone"):
        assert word in text
    closed = [t for t in tickets if t["closedFlag"]]
    assert closed and all(t["closedDate"] for t in closed)
    statuses = {s["id"]: s for b in (1, 21, 35) for s in sb.board_statuses(b)}
    assert all(statuses[t["status"]["id"]]["closedStatus"] == t["closedFlag"] for t in tickets)
    t = sb.ticket(12345)
    assert set(t["company"]) == {"id", "identifier", "name", "_info"}
    assert set(t["board"]) == set(t["status"]) == {"id", "name", "_info"}
    assert t["status"]["_info"]["status_href"].startswith(sb.url + "/")
    assert t["priority"]["name"] and sb.notes(12345)
    assert sb.time_entries(12346) and sb.notes(12346)


def test_seed_is_deterministic() -> None:
    a, b, c = Sandbox(seed=7), Sandbox(seed=7), Sandbox(seed=8)
    try:

        def strip(sb: Sandbox) -> list[Any]:
            return [(t["summary"], t["status"]["id"], t["company"]["id"]) for t in sb.tickets()]

        assert strip(a) == strip(b) != strip(c)
    finally:
        for sb in (a, b, c):
            sb.stop()


def test_reset_restores_everything(sb: Sandbox, cw: CW) -> None:
    cw.post("service/tickets/12345/notes", NOTE)
    cw.patch("service/tickets/12345", [{"op": "replace", "path": "status", "value": {"id": 102}}])
    sb.set_latency(0.5)
    sb.set_rate_limit(1, 60)
    sb.inject_fault("*", "status", status=500)
    sb.reset()
    assert sb.latency == 0 and sb.requests == [] and sb.connections_opened == 0
    assert len(sb.notes(12345)) == 1 and sb.ticket(12345)["status"]["id"] == 101
    for _ in range(3):
        assert cw.get("system/info").status_code == 200


# ---- faults ------------------------------------------------------------------------------
def test_fault_status_not_applied_and_cw_body(sb: Sandbox, cw: CW) -> None:
    sb.inject_fault("service/tickets/*/notes", "status", status=500)
    r = cw.post("service/tickets/12345/notes", NOTE)
    assert r.status_code == 500 and r.json()["code"] and r.json()["message"]
    assert len(sb.notes(12345)) == 1
    assert sb.requests[-1].fault == "status" and sb.requests[-1].status == 500
    assert cw.post("service/tickets/12345/notes", NOTE).status_code == 201


def test_fault_429_has_retry_after(sb: Sandbox, cw: CW) -> None:
    sb.inject_fault("service/tickets/*", "status", status=429, retry_after=3)
    sb.inject_fault("service/tickets/*", "status", status=429)
    r = cw.get("service/tickets/12345")
    assert r.status_code == 429 and r.headers["Retry-After"] == "3" and r.json()["code"]
    assert cw.get("service/tickets/12345").headers["Retry-After"] == "1"
    assert cw.get("service/tickets/12345").status_code == 200


def test_fault_count_fifo_method_and_glob(sb: Sandbox, cw: CW) -> None:
    sb.inject_fault("service/tickets/*", "status", status=503, count=2, method="PATCH")
    sb.inject_fault("service/tickets/*", "status", status=502)
    assert cw.get("service/tickets/12345/notes").status_code == 200  # one segment only
    assert cw.get("service/tickets/12345").status_code == 502  # PATCH-only fault skipped
    op = [{"op": "replace", "path": "status", "value": {"id": 102}}]
    assert cw.patch("service/tickets/12345", op).status_code == 503
    assert cw.patch("service/tickets/12345", op).status_code == 503
    assert cw.patch("service/tickets/12345", op).status_code == 200
    sb.inject_fault("**", "status", status=500)
    assert cw.get("service/tickets/12345/notes").status_code == 500


def test_fault_timeout_holds_then_closes_without_applying(sb: Sandbox, cw: CW) -> None:
    sb.inject_fault("service/tickets/*/notes", "timeout", delay=0.3)
    with pytest.raises(requests.ReadTimeout):
        cw.post("service/tickets/12345/notes", NOTE, timeout=0.1)
    sb.inject_fault("service/tickets/*/notes", "timeout", delay=0.2)
    t0 = time.perf_counter()
    with pytest.raises(requests.ConnectionError):
        cw.post("service/tickets/12345/notes", NOTE, timeout=2)
    assert time.perf_counter() - t0 >= 0.19
    assert len(sb.notes(12345)) == 1
    assert sb.requests[-1].status == 0 and sb.requests[-1].fault == "timeout"


def test_fault_apply_then_timeout(sb: Sandbox, cw: CW) -> None:
    sb.inject_fault("time/entries", "apply_then_timeout", delay=0.3)
    with pytest.raises(requests.ReadTimeout):
        cw.post("time/entries", TIME, timeout=0.1)
    # The client gave up after 0.1 s; on a busy machine the server may apply it a moment later.
    deadline = time.monotonic() + 3
    while not sb.time_entries(12345) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(sb.time_entries(12345)) == 1


def test_fault_apply_then_drop(sb: Sandbox, cw: CW) -> None:
    sb.inject_fault("service/tickets/*/notes", "apply_then_drop")
    with pytest.raises(requests.ConnectionError):
        cw.post("service/tickets/12345/notes", NOTE)
    assert sb.notes(12345)[-1]["text"] == NOTE["text"]
    assert cw.get("system/info").status_code == 200  # the session recovers


def test_fault_reset_drops_without_applying(sb: Sandbox, cw: CW) -> None:
    sb.inject_fault("service/tickets/*/notes", "reset")
    with pytest.raises(requests.ConnectionError):
        cw.post("service/tickets/12345/notes", NOTE)
    assert len(sb.notes(12345)) == 1


def test_fault_invalid_json_applies_and_keeps_status(sb: Sandbox, cw: CW) -> None:
    sb.inject_fault("service/tickets/*/notes", "invalid_json")
    r = cw.post("service/tickets/12345/notes", NOTE)
    assert r.status_code == 201
    with pytest.raises(requests.JSONDecodeError):
        r.json()
    assert len(sb.notes(12345)) == 2


def test_inject_fault_validates() -> None:
    sb = Sandbox()
    try:
        with pytest.raises(ValueError):
            sb.inject_fault("*", "explode")
        with pytest.raises(ValueError):
            sb.inject_fault("*", "status")
    finally:
        sb.stop()


# ---- rate limit, latency, connections, concurrency ---------------------------------------
def test_rate_limit_sliding_window(sb: Sandbox, cw: CW) -> None:
    sb.set_rate_limit(3, 0.5)
    assert [cw.get("system/info").status_code for _ in range(3)] == [200, 200, 200]
    r = cw.get("system/info")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert r.json()["code"] == "ConnectWiseApi" and r.json()["message"]
    assert r.json()["errors"] is None
    time.sleep(0.55)
    assert cw.get("system/info").status_code == 200
    sb.set_rate_limit(1, 60, retry_after=7)
    cw.get("system/info")
    assert cw.get("system/info").headers["Retry-After"] == "7"
    sb.set_rate_limit(None, 60)
    assert all(cw.get("system/info").status_code == 200 for _ in range(5))


def test_latency_applies_to_api_not_control(sb: Sandbox, cw: CW) -> None:
    sb.set_latency(0.2)
    t0 = time.perf_counter()
    cw.get("system/info")
    assert time.perf_counter() - t0 >= 0.2
    t0 = time.perf_counter()
    requests.get(f"{sb.url}/_sandbox/stats", timeout=5)
    assert time.perf_counter() - t0 < 0.15


def test_keep_alive_reuses_one_connection(sb: Sandbox, cw: CW) -> None:
    sb.clear_requests()
    for _ in range(5):
        assert cw.get("service/tickets/12345").status_code == 200
    cw.post("service/tickets/12345/notes", NOTE)
    cw.get("service/tickets/99")  # an error answer keeps the connection too
    cw.get("service/tickets/12345")
    assert sb.connections_opened == 1 and len(sb.requests) == 8
    requests.get(cw.url("system/info"), timeout=5)  # no session: a new connection
    assert sb.connections_opened == 2


def test_concurrent_writes(sb: Sandbox) -> None:
    errors: list[Any] = []

    def worker() -> None:
        client = CW(sb)
        for _ in range(5):
            r = client.post("service/tickets/12345/notes", NOTE)
            if r.status_code != 201:
                errors.append(r.text)
            client.post("time/entries", TIME)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    notes = sb.notes(12345)
    assert len(notes) == 41 and len({n["id"] for n in notes}) == 41
    assert sb.ticket(12345)["actualHours"] == 20.0


# ---- control routes ----------------------------------------------------------------------
def test_control_routes(sb: Sandbox, cw: CW) -> None:
    base = f"{sb.url}/_sandbox"
    cw.get("service/tickets/12345")
    log = requests.get(f"{base}/requests", timeout=5).json()
    assert log[-1]["path"] == "service/tickets/12345" and log[-1]["status"] == 200
    assert log[-1]["headers"]["Authorization"] == "<redacted>"
    r = requests.post(
        f"{base}/faults", json={"path": "system/info", "kind": "status", "status": 503}, timeout=5
    )
    assert r.status_code == 201
    assert cw.get("system/info").status_code == 503
    requests.post(f"{base}/latency", json={"seconds": 0.15}, timeout=5)
    t0 = time.perf_counter()
    cw.get("system/info")
    assert time.perf_counter() - t0 >= 0.15
    requests.post(f"{base}/latency", json={"seconds": 0}, timeout=5)
    requests.post(f"{base}/rate-limit", json={"max_requests": 1, "per_seconds": 60}, timeout=5)
    cw.get("system/info")
    assert cw.get("system/info").status_code == 429
    requests.post(f"{base}/rate-limit", json={"max_requests": None}, timeout=5)
    cw.post("service/tickets/12345/notes", NOTE)
    detail = requests.get(f"{base}/tickets/12345", timeout=5).json()
    assert detail["ticket"]["id"] == 12345 and len(detail["notes"]) == 2
    assert detail["timeEntries"] == []
    assert requests.get(f"{base}/tickets/1", timeout=5).status_code == 404
    stats = requests.get(f"{base}/stats", timeout=5).json()
    assert stats["connections_opened"] >= 1 and stats["requests"] == len(sb.requests)
    assert requests.post(f"{base}/faults", json={"kind": "x"}, timeout=5).status_code == 400
    requests.post(f"{base}/codebase", json={"codebase": "v2026_1"}, timeout=5)
    assert sb.codebase == "v2026_1/" and cw.get("system/info").status_code == 404
    assert requests.post(f"{base}/reset", timeout=5).status_code == 200
    assert len(sb.notes(12345)) == 1 and sb.requests == []


# ---- lifecycle, CLI, fixtures ------------------------------------------------------------
def test_start_stop_is_fast_and_closes_keep_alive() -> None:
    t0 = time.perf_counter()
    with Sandbox(public_key="pub", private_key="priv", client_id="cid") as sb:
        assert sb.credentials == {
            "base_url": sb.url,
            "company_id": "sandbox",
            "public_key": "pub",
            "private_key": "priv",
            "client_id": "cid",
        }
        assert sb.url == f"http://127.0.0.1:{sb.port}"
        cw = CW(sb)
        assert cw.get("system/info").status_code == 200
        sb.inject_fault("system/info", "timeout", delay=30)
        outcome: list[str] = []

        def held() -> None:
            try:
                CW(sb).get("system/info")
                outcome.append("answered")
            except requests.RequestException:
                outcome.append("dropped")

        holder = threading.Thread(target=held)
        holder.start()
        time.sleep(0.05)
    holder.join(2)
    assert not holder.is_alive() and outcome == ["dropped"]
    assert time.perf_counter() - t0 < 2
    with pytest.raises(requests.ConnectionError):
        cw.get("system/info")


def test_cli_parse_fault_and_refuses_remote_host(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_fault("service/tickets/*/notes:status:500:2") == {
        "path": "service/tickets/*/notes",
        "kind": "status",
        "status": 500,
        "count": 2,
    }
    assert parse_fault("time/entries:reset:3") == {
        "path": "time/entries",
        "kind": "reset",
        "count": 3,
    }
    assert parse_fault("time/entries:timeout") == {"path": "time/entries", "kind": "timeout"}
    assert cli_main(["--host", "192.0.2.10"]) == 2
    assert "loopback" in capsys.readouterr().err


def test_cli_serves_and_prints_credentials() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flask_connectwise.sandbox",
            "--port",
            "0",
            "--public-key",
            "pk",
            "--private-key",
            "sk",
            "--client-id",
            "cid",
            "--company-id",
            "acme",
            "--fault",
            "system/info:status:503:1",
            "--latency-ms",
            "1",
            "--rate-limit",
            "2/60",
            "--rule",
            "strict",
            "--rule",
            "no-overlapping_time",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        url = first.split("listening on ")[1].split()[0]
        lines = [proc.stdout.readline() for _ in range(5)]
        assert any("private_key" in line and "sk" in line for line in lines)
        headers = {"Authorization": _basic("acme+pk", "sk"), "clientId": "cid"}
        target = f"{url}/v4_6_release/apis/3.0/system/info"
        assert requests.get(target, headers=headers, timeout=5).status_code == 503
        assert requests.get(target, headers=headers, timeout=5).status_code == 200
        assert requests.get(target, headers=headers, timeout=5).status_code == 429
        rules = requests.get(f"{url}/_sandbox/rules", timeout=5).json()
        assert rules["work_role_required"] is True and rules["api_member_time"] is True
        assert rules["overlapping_time"] is False and rules["rate_limit"] == "2/60"
    finally:
        proc.terminate()
        assert proc.wait(5) == 0


def test_fixture_gives_the_session_server_reset(
    connectwise_sandbox: Sandbox,
    connectwise_sandbox_server: Sandbox,
) -> None:
    assert connectwise_sandbox is connectwise_sandbox_server
    assert connectwise_sandbox.requests == [] and len(connectwise_sandbox.notes(12345)) == 1


# -- hostile-text knobs (for the XSS tests) ------------------------------------------------------


def test_text_prefix_reaches_every_display_text_and_reset_undoes_it(sb, cw):
    prefix = "<img src=x onerror=window.__xss=1>"
    answer = requests.post(f"{sb.url}/_sandbox/text-prefix", json={"prefix": prefix}, timeout=5)
    assert answer.status_code == 200
    ticket = cw.get("service/tickets/12345").json()
    for text in (
        ticket["summary"],
        ticket["board"]["name"],
        ticket["status"]["name"],
        ticket["company"]["name"],
    ):
        assert text.startswith(prefix)
    assert ticket["company"]["identifier"] and not ticket["company"]["identifier"].startswith("<")
    board = ticket["board"]["id"]
    assert all(
        s["name"].startswith(prefix) for s in cw.get(f"service/boards/{board}/statuses").json()
    )
    assert cw.get("system/info").json()["version"].startswith(prefix)
    found = cw.get("service/tickets", conditions='summary contains "printer"').json()
    assert found and all(prefix in t["summary"] for t in found)  # searches still work
    sb.reset()
    assert not cw.get("service/tickets/12345").json()["summary"].startswith("<")
    assert cw.get("system/info").json()["version"] == "v2025.1.10431"


def test_a_new_text_prefix_replaces_the_old_one_and_null_or_empty_clears_it(sb, cw):
    def set_prefix(value):
        answer = requests.post(f"{sb.url}/_sandbox/text-prefix", json={"prefix": value}, timeout=5)
        assert answer.status_code == 200

    summary = cw.get("service/tickets/12345").json()["summary"]
    set_prefix("<b>one</b> ")
    set_prefix("<i>two</i> ")  # replaces, never stacks
    assert cw.get("service/tickets/12345").json()["summary"] == "<i>two</i> " + summary
    assert cw.get("system/info").json()["version"] == "<i>two</i> v2025.1.10431"
    for cleared in (None, ""):
        set_prefix("<i>three</i> ")
        set_prefix(cleared)  # null is no prefix, never the text "None"
        assert cw.get("service/tickets/12345").json()["summary"] == summary
        assert cw.get("system/info").json()["version"] == "v2025.1.10431"


def test_a_status_fault_may_carry_its_own_message(sb, cw):
    message = '"><svg onload=window.__xss=1>'
    answer = requests.post(
        f"{sb.url}/_sandbox/faults",
        json={"path": "system/info", "kind": "status", "status": 403, "message": message},
        timeout=5,
    )
    assert answer.status_code == 201 and answer.json()["message"] == message
    refused = cw.get("system/info")
    assert refused.status_code == 403 and refused.json()["message"] == message
    assert cw.get("system/info").status_code == 200  # one use only
