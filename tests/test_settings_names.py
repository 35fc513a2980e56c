"""Names, not ids: companies, work type and work role given to ``POST /credentials`` by id only
are looked up in ConnectWise and stored with their names (as the admin form does), and the
operators' company refusal never shows a bare company id."""

from __future__ import annotations

from typing import Any

from flask_connectwise import ticketchecks
from flask_connectwise.choices import CompanyChoice, WorkChoice
from flask_connectwise.credentials import TenantSettings
from flask_connectwise.outbox.outcome import _OTHER_COMPANY
from flask_connectwise.records import Ticket
from tests.hosts import TENANT_A, cw_of
from tests.json_api import configure


def _base(sandbox: Any) -> dict[str, Any]:
    creds = sandbox.credentials
    return {"baseUrl": creds["base_url"], "companyId": creds["company_id"]}


def _settings(*companies: CompanyChoice) -> TenantSettings:
    return TenantSettings(
        tenant_id=TENANT_A,
        base_url="https://cw.example.com",
        company_id="acme",
        public_key="pub",
        private_key="priv",
        client_id="cid",
        company_scope="listed",
        companies=companies,
    )


NORTHWIND_TICKET = Ticket(id=12394, summary="Printer", company="Northwind Traders", company_id=252)


def test_ids_only_get_connectwise_names_when_saved_through_the_api(app, connectwise_sandbox):
    api = configure(app, connectwise_sandbox)
    with app.app_context():
        before = cw_of(app).tenants.settings(TENANT_A).revision
    body = _base(connectwise_sandbox) | {"companies": [250], "workType": 3, "workRole": 11}
    answer = api.call("POST", "/credentials", body)
    assert answer.status_code == 200, answer.get_json()
    saved = answer.get_json()
    assert saved["companies"] == [{"id": 250, "identifier": "Contoso", "name": "Contoso Ltd"}]
    assert saved["workType"] == {"id": 3, "name": "Regular"}
    assert saved["workRole"] == {"id": 11, "name": "System Engineer"}
    assert saved["warnings"] == []
    assert api.call("GET", "/credentials").get_json()["companies"] == saved["companies"]
    with app.app_context():
        settings = cw_of(app).tenants.settings(TENANT_A)
        # The tenant's client reloads the names: a new revision.
        _, cached, _ = cw_of(app).tenants.client_settings_and_revision(TENANT_A)
    assert settings is not None and settings.company_names == "Contoso Ltd"
    assert settings.revision == before + 2  # the save, then the names: every process reloads
    assert settings.work_type == WorkChoice(3, "Regular")
    assert cached.company_names == "Contoso Ltd"


def test_ids_connectwise_does_not_know_are_saved_and_named_in_warnings(app, connectwise_sandbox):
    api = configure(app, connectwise_sandbox)
    body = _base(connectwise_sandbox) | {"companies": [250, 9991], "workType": 77, "workRole": 11}
    answer = api.call("POST", "/credentials", body)
    assert answer.status_code == 200, answer.get_json()
    saved = answer.get_json()
    assert saved["companies"] == [
        {"id": 250, "identifier": "Contoso", "name": "Contoso Ltd"},
        {"id": 9991, "identifier": "", "name": ""},
    ]
    assert saved["workType"] == {"id": 77, "name": ""}
    assert saved["workRole"] == {"id": 11, "name": "System Engineer"}
    warnings = saved["warnings"]
    assert any(w.startswith("Company 9991 was not found in ConnectWise") for w in warnings), (
        warnings
    )
    assert any(w.startswith("Work type 77 was not found") for w in warnings), warnings
    assert not any("250" in w or "work role" in w.lower() for w in warnings), warnings
    for word in ("companyScope", "workType", "HTTP", "Traceback"):
        assert not any(word in w for w in warnings), warnings


def test_connectwise_down_saves_as_given_and_warns(app, connectwise_sandbox):
    api = configure(app, connectwise_sandbox)
    connectwise_sandbox.inject_fault("**", "status", status=503, count=10_000)
    try:
        body = _base(connectwise_sandbox) | {"companies": [250], "workRole": 11}
        answer = api.call("POST", "/credentials", body)
    finally:
        connectwise_sandbox.clear_faults()
    assert answer.status_code == 200, answer.get_json()
    saved = answer.get_json()
    assert saved["companies"] == [{"id": 250, "identifier": "", "name": ""}]
    assert saved["workRole"] == {"id": 11, "name": ""}
    assert any("could not be reached to look up the names" in w for w in saved["warnings"])


def test_named_choices_ask_connectwise_nothing(app, connectwise_sandbox):
    api = configure(app, connectwise_sandbox)
    connectwise_sandbox.inject_fault("**", "status", status=503, count=10_000)
    try:
        body = _base(connectwise_sandbox) | {
            "companies": [{"id": 250, "name": "Contoso Ltd"}],
            "workType": {"id": 3, "name": "Regular"},
        }
        answer = api.call("POST", "/credentials", body)
    finally:
        connectwise_sandbox.clear_faults()
    assert answer.status_code == 200, answer.get_json()
    assert not any("could not be reached" in w for w in answer.get_json()["warnings"])


def test_the_refusal_never_shows_a_bare_company_id():
    refusal = ticketchecks.company_refusal(NORTHWIND_TICKET, _settings(CompanyChoice(250)))
    assert refusal == (
        "Ticket #12394 belongs to Northwind Traders, not one of this tenant's companies"
    )
    assert "250" not in refusal
    assert _OTHER_COMPANY.match(refusal)  # the change log still offers no Retry


def test_the_refusal_names_the_named_companies_and_hides_the_rest():
    mixed = _settings(CompanyChoice(250, "Contoso", "Contoso Ltd"), CompanyChoice(9991))
    refusal = ticketchecks.company_refusal(NORTHWIND_TICKET, mixed)
    assert refusal == (
        "Ticket #12394 belongs to Northwind Traders, not Contoso Ltd or another of this "
        "tenant's companies"
    )
    named = _settings(CompanyChoice(250, "Contoso", "Contoso Ltd"))
    assert ticketchecks.company_refusal(NORTHWIND_TICKET, named) == (
        "Ticket #12394 belongs to Northwind Traders, not Contoso Ltd"
    )
