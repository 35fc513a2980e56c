"""The sandbox refuses what real ConnectWise refuses (issue 13 item 2, CONNECTWISE_API.md §6, §10)."""

from __future__ import annotations

import pytest
import requests

from flask_connectwise import errors
from flask_connectwise.client import ConnectWiseClient
from flask_connectwise.sandbox import Sandbox
from flask_connectwise.sandbox.conditions import compile_filter
from flask_connectwise.sandbox.errors import CWError
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


# ---- booleans only as bare true / false ------------------------------------------------------
@pytest.mark.parametrize(
    "conditions,kind",
    [
        ("closedFlag=1", "numeric"),
        ("closedFlag=0", "numeric"),
        ('closedFlag="true"', "string"),
        ("closedFlag='false'", "string"),
        ("closedFlag in (0, 1)", "numeric"),
        # refused from the schema's type, even when no record is ever compared
        ("id=999999 and closedFlag=1", "numeric"),
    ],
)
def test_boolean_compared_with_number_or_text_is_400(cw: CW, conditions: str, kind: str) -> None:
    for path in ("service/tickets", "service/tickets/count"):
        r = cw.get(path, conditions=conditions)
        assert r.status_code == 400, r.text
        assert r.json()["message"].startswith(f"Expected a boolean value, not a {kind}")
    r = cw.post("service/tickets/search", {"conditions": conditions})
    assert r.status_code == 400 and "Expected a boolean value" in r.json()["message"]


def test_boolean_as_bare_true_false_null_still_works(cw: CW) -> None:
    open_ = ids(cw.get("service/tickets", conditions="closedFlag=false", pageSize=1000))
    closed = ids(cw.get("service/tickets", conditions="closedFlag = TRUE", pageSize=1000))
    assert open_ and not set(open_) & set(closed)
    assert ids(cw.get("service/tickets", conditions="closedFlag=null")) == []


# ---- condition fields come from the published schema, not the seed --------------------------
def test_schema_field_absent_from_seed_is_accepted(cw: CW) -> None:
    # parentTicketId is a Ticket field (django-connectwise sync.py); no seed ticket carries it
    seeded = cw.get("service/tickets/12345").json()
    assert "parentTicketId" not in seeded
    assert ids(cw.get("service/tickets", conditions="parentTicketId=null", pageSize=5))
    assert ids(cw.get("service/tickets", conditions="parentTicketId=12345")) == []
    r = cw.get("service/tickets/count", conditions="parentTicketId != null")
    assert r.status_code == 200 and r.json() == {"count": 0}
    r = cw.get("service/tickets", orderBy="parentTicketId desc", pageSize=1)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "conditions", ["nonsense=1", "status/bogus='New'", "summary/name='x'", "closedflag/id=1"]
)
def test_field_missing_from_schema_is_400(cw: CW, conditions: str) -> None:
    r = cw.get("service/tickets", conditions=conditions)
    assert r.status_code == 400 and "unknown field" in r.json()["message"]


# Every list route: (path, a published field no seed record fills, a published boolean field).
LIST_ROUTES = [
    ("service/tickets/12345/notes", "sentimentScore", "internalFlag"),
    ("service/tickets/12345/allNotes", "createdByParentFlag", "isMarkdownFlag"),
    ("time/entries", "agreementType", "emailCcFlag"),
    ("service/boards", "allSort", "inactiveFlag"),
    ("service/boards/1/statuses", "customerPortalDescription", "closedStatus"),
    ("system/members", "clientId", "inactiveFlag"),
    ("company/companies", "faxNumber", "deletedFlag"),
    ("time/workTypes", "addAllAgreementExclusions", "inactiveFlag"),
    ("time/workRoles", "addAllAgreementExclusions", "inactiveFlag"),
]


def with_count(path: str) -> list[str]:
    """``path`` and its ``/count`` route (allNotes has none in the sandbox)."""
    return [path] if path.endswith("allNotes") else [path, f"{path}/count"]


@pytest.mark.parametrize("path,absent,_flag", LIST_ROUTES)
def test_every_list_route_accepts_schema_field_absent_from_seed(
    cw: CW, path: str, absent: str, _flag: str
) -> None:
    everything = ids(cw.get(path, pageSize=1000))
    assert everything
    r = cw.get(path, pageSize=1000, fields=absent)
    assert all(item.get(absent) is None for item in r.json())  # no seed record fills it
    assert ids(cw.get(path, conditions=f"{absent}=null", pageSize=1000)) == everything
    for route in with_count(path)[1:]:
        r = cw.get(route, conditions=f"{absent} != null")
        assert r.status_code == 200 and r.json() == {"count": 0}, r.text
    assert ids(cw.get(path, conditions=f"{absent} != null")) == []
    r = cw.get(path, orderBy=f"{absent} desc", pageSize=1)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("path,_absent,_flag", LIST_ROUTES)
def test_every_list_route_refuses_field_missing_from_schema(
    cw: CW, path: str, _absent: str, _flag: str
) -> None:
    for route, params in [(r, {"conditions": "nonsense=1"}) for r in with_count(path)] + [
        (path, {"orderBy": "nonsense desc"})
    ]:
        r = cw.get(route, **params)
        assert r.status_code == 400, (route, params, r.text)
        assert "unknown field" in r.json()["message"]


@pytest.mark.parametrize("path,_absent,flag", LIST_ROUTES)
def test_every_list_route_refuses_boolean_compared_with_number(
    cw: CW, path: str, _absent: str, flag: str
) -> None:
    # refused from the schema's type, even when no record is ever compared (id=0 matches none)
    for route, conditions in [(r, f"{flag}=1") for r in with_count(path)] + [
        (path, f"id=0 and {flag}=1")
    ]:
        r = cw.get(route, conditions=conditions)
        assert r.status_code == 400, (route, conditions, r.text)
        assert r.json()["message"].startswith("Expected a boolean value, not a numeric")
    assert cw.get(path, conditions=f"{flag}=false").status_code == 200


def test_schema_nested_and_info_fields_are_accepted(cw: CW) -> None:
    for conditions in (
        "status/name='New'",
        "company/identifier='x'",
        "lastUpdated>[2000-01-01T00:00:00Z]",
        "_info/lastUpdated>[2000-01-01T00:00:00Z]",
    ):
        r = cw.get("service/tickets", conditions=conditions)
        assert r.status_code == 200, (conditions, r.text)


# ---- query parameter names are case-insensitive ----------------------------------------------
def test_query_parameter_names_are_case_insensitive(cw: CW) -> None:
    everything = ids(cw.get("service/tickets", pageSize=1000))
    assert len(everything) > 25
    for name in ("pagesize", "PageSize", "PAGESIZE"):
        assert len(ids(cw.get("service/tickets", **{name: "200"}))) == min(200, len(everything))
    for name in ("conditions", "Conditions", "CONDITIONS"):
        assert ids(cw.get("service/tickets", **{name: "id=12345"})) == [12345]
        r = cw.get("service/tickets/count", **{name: "id=12345"})
        assert r.json() == {"count": 1}
    for name in ("orderby", "OrderBy"):
        assert ids(cw.get("service/tickets", **{name: "id desc", "pagesize": "1000"})) == sorted(
            everything, reverse=True
        )
    for name in ("fields", "Fields"):
        rows = cw.get("service/tickets", **{name: "id", "PAGE": "2", "pagesize": "3"}).json()
        assert rows and all(list(row) == ["id"] for row in rows)
        assert rows == [{"id": i} for i in everything[3:6]]
    assert cw.get("service/tickets/12345", FIELDS="id,summary").json().keys() == {"id", "summary"}


# ---- generic errors are ConnectWiseApi with errors: null ------------------------------------
def _generic(r: requests.Response, status: int) -> None:
    body = r.json()
    assert r.status_code == status and body["code"] == "ConnectWiseApi", body
    assert "errors" in body and body["errors"] is None and body["message"]


def test_405_415_429_and_5xx_are_connectwise_api_errors(sb: Sandbox, cw: CW) -> None:
    _generic(cw.session.delete(cw.url("system/info"), timeout=5), 405)
    r = cw.session.post(
        cw.url("time/entries"), data="x", headers={"Content-Type": "text/plain"}, timeout=5
    )
    _generic(r, 415)
    for status in (409, 500, 502, 503, 504):
        sb.inject_fault("system/info", "status", status=status)
        _generic(cw.get("system/info"), status)
    sb.inject_fault("system/info", "status", status=429)
    _generic(cw.get("system/info"), 429)
    sb.set_rate_limit(1, 60, retry_after=3)
    cw.get("system/info")
    r = cw.get("system/info")
    _generic(r, 429)
    assert r.headers["Retry-After"]


def test_specific_errors_keep_their_codes(cw: CW) -> None:
    assert cw.get("service/tickets/999999").json()["code"] == "NotFound"
    r = cw.get("service/tickets", conditions="id=")
    assert r.status_code == 400 and r.json()["code"] == "InvalidObject"


@pytest.mark.parametrize(
    "status,exc",
    [
        (405, errors.ConnectWiseError),
        (409, errors.ConflictError),
        (429, errors.RateLimitedError),
        (503, errors.UnavailableError),
    ],
)
def test_client_maps_generic_errors_by_status(sb: Sandbox, status: int, exc: type) -> None:
    client = ConnectWiseClient(**sb.credentials, sleep=lambda _: None)
    sb.inject_fault("service/tickets/*", "status", status=status, count=10)
    with pytest.raises(exc) as info:
        client.get_ticket(12345)
    assert info.value.status == status and info.value.code == "ConnectWiseApi"


@pytest.mark.parametrize("literal", ["1", '"true"'])
def test_a_record_boolean_against_a_number_or_text_is_400_even_without_schema_types(
    literal: str,
) -> None:
    """The record-level check behind the schema's: a checker without types still refuses."""
    predicate = compile_filter(f"closedFlag = {literal}", known=lambda field: True, kinds=None)
    with pytest.raises(CWError) as refused:
        predicate({"closedFlag": True})
    assert refused.value.status == 400 and "Expected a boolean value" in refused.value.message
