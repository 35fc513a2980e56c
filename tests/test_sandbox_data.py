"""Sandbox data and routes for the next issues: companies, work types and roles, member license
classes and impersonation tokens (issue 13 item 4). Every answer is checked against the published
model in ``schema.json`` with the conformance test's own route map."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from flask_connectwise.sandbox import Sandbox, schema
from tests.sandbox_client import CW
from tests.schema_conformance import check_exchange


def _get_ok(cw: CW, path: str, **params: Any) -> Any:
    r = cw.get(path, **params)
    assert r.status_code == 200, (path, r.text)
    assert check_exchange("GET", path, None, r.json(), 200) == []
    return r.json()


def test_companies_are_the_ones_tickets_reference(connectwise_sandbox: Sandbox) -> None:
    cw = CW(connectwise_sandbox)
    companies = _get_ok(cw, "company/companies", pageSize=100)
    by_id = {c["id"]: c for c in companies}
    tickets = _get_ok(cw, "service/tickets", pageSize=1000, fields="id,company")
    for ticket in tickets:
        ref = ticket["company"]
        assert by_id[ref["id"]]["identifier"] == ref["identifier"]
        assert by_id[ref["id"]]["name"] == ref["name"]
    one = _get_ok(cw, "company/companies/250")
    assert one["identifier"] == "Contoso" and one["city"] == "Seattle"
    assert set(one) <= set(schema.fields("Company"))


def test_company_search_conditions_fields_and_count(connectwise_sandbox: Sandbox) -> None:
    cw = CW(connectwise_sandbox)
    found = _get_ok(
        cw, "company/companies", conditions='name like "%Fabrikam%"', fields="id,identifier"
    )
    assert found == [{"id": 251, "identifier": "Fabrikam"}]
    by_status = _get_ok(
        cw, "company/companies", conditions='status/name="Active" and deletedFlag=false'
    )
    assert len(by_status) == 8
    assert cw.get("company/companies/count", conditions='state="FL"').json() == {"count": 2}
    # Conditions name the published Company fields, also ones no seed record carries.
    assert _get_ok(cw, "company/companies", conditions="parentCompany/id=250") == []
    r = cw.get("company/companies", conditions="noSuchField=1")
    assert r.status_code == 400
    r = cw.get("company/companies", conditions="deletedFlag=1")
    assert r.status_code == 400
    assert cw.get("company/companies/999").status_code == 404


def test_work_types_and_roles(connectwise_sandbox: Sandbox) -> None:
    cw = CW(connectwise_sandbox)
    types = _get_ok(cw, "time/workTypes")
    assert {t["id"] for t in types} >= {3, 6, 7}
    assert any(t["inactiveFlag"] for t in types)
    assert {t["billTime"] for t in types} == {"Billable", "NoCharge", "DoNotBill"}
    active = _get_ok(cw, "time/workTypes", conditions="inactiveFlag=false", orderBy="name")
    assert [t["name"] for t in active] == sorted(t["name"] for t in active)
    assert all(not t["inactiveFlag"] for t in active) and len(active) < len(types)
    assert _get_ok(cw, "time/workTypes/3")["name"] == "Regular"  # the boards' default
    roles = _get_ok(cw, "time/workRoles")
    assert any(r["inactiveFlag"] for r in roles)
    assert _get_ok(cw, "time/workRoles/11")["name"] == "System Engineer"
    # A role valid only at another location than the boards' (location 2).
    assert any(2 not in r["locationIds"] for r in roles)
    count = cw.get("time/workRoles/count", conditions="inactiveFlag=true").json()
    assert count == {"count": 1}
    assert cw.get("time/workRoles/999").status_code == 404


def test_members_carry_license_classes(connectwise_sandbox: Sandbox) -> None:
    cw = CW(connectwise_sandbox)
    members = _get_ok(cw, "system/members", pageSize=100)
    classes = {m["identifier"]: m["licenseClass"] for m in members}
    assert "A" in classes.values() and "F" in classes.values()
    api = _get_ok(cw, "system/members", conditions='licenseClass="A"')
    assert [m["identifier"] for m in api] == ["SandboxAPI"]


@pytest.mark.parametrize("who", ["jdoe", "JDOE", "180"])
def test_member_tokens_answer_keys(connectwise_sandbox: Sandbox, who: str) -> None:
    cw = CW(connectwise_sandbox)
    path = f"system/members/{who}/tokens"
    r = cw.post(path, {}, headers={"x-cw-usertype": "member"})
    assert r.status_code == 200, r.text
    keys = r.json()
    assert set(keys) == {"publicKey", "privateKey", "expiration"}
    assert keys["publicKey"] and keys["privateKey"] and keys["publicKey"] != keys["privateKey"]
    assert schema.problems("Token", keys) == []
    assert check_exchange("POST", path, {}, keys, 200) == []
    again = cw.post(path, {}).json()
    assert again["privateKey"] != keys["privateKey"]


def test_member_tokens_unknown_member_and_method(connectwise_sandbox: Sandbox) -> None:
    cw = CW(connectwise_sandbox)
    assert cw.post("system/members/nobody/tokens", {}).status_code == 404
    assert cw.get("system/members/jdoe/tokens").status_code == 405


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "company/companies"),
        ("GET", "company/companies/250"),
        ("GET", "time/workTypes"),
        ("GET", "time/workRoles"),
        ("POST", "system/members/jdoe/tokens"),
    ],
)
def test_new_routes_require_auth(connectwise_sandbox: Sandbox, method: str, path: str) -> None:
    cw = CW(connectwise_sandbox)
    r = requests.request(method, cw.url(path), json={} if method == "POST" else None, timeout=5)
    assert r.status_code == 401
    assert "publicKey" not in r.json()  # no keys in the answer
