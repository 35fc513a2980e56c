"""A tenant's company scope, time-entry defaults, note visibility and board → status map,
through ``POST/GET /credentials`` (one parser: ``CredentialsInput.parse``)."""

from __future__ import annotations

from typing import Any

import pytest

from flask_connectwise.choices import (
    BoardStatusChoice,
    CompanyChoice,
    WorkChoice,
    dump,
    load_board_statuses,
    load_companies,
    load_work,
)
from flask_connectwise.credentials import CredentialsStore, TenantSettings
from tests.hosts import TENANT_A, cw_of
from tests.json_api import configure

CONTOSO = {"id": 250, "identifier": "Contoso", "name": "Contoso Ltd"}
FULL = {
    "companyScope": "listed",
    "companies": [CONTOSO, {"id": 257, "identifier": "ContosoLabs", "name": "Contoso Labs"}],
    "workType": {"id": 4, "name": "Remote Support"},
    "workRole": {"id": 11, "name": "System Engineer"},
    "billableOption": "DoNotBill",
    "noteVisibility": "resolution",
    "emailContact": True,
    "boardStatuses": [
        {"boardId": 1, "boardName": "Help Desk", "statusId": 102, "statusName": "In Progress"}
    ],
    "ticketPolicy": "warn",
}


def _post(api: Any, body: dict[str, Any]) -> Any:
    return api.call("POST", "/credentials", body)


def _base(sandbox: Any) -> dict[str, Any]:
    creds = sandbox.credentials
    return {"baseUrl": creds["base_url"], "companyId": creds["company_id"]}


def test_new_tenants_start_unset_with_warnings(app, connectwise_sandbox):
    api = configure(app, connectwise_sandbox)
    shown = api.call("GET", "/credentials").get_json()
    assert shown["companyScope"] == "unset" and shown["companies"] == []
    assert shown["noteVisibility"] == "internal" and shown["emailContact"] is False
    assert shown["ticketPolicy"] == "refuse" and shown["boardStatuses"] == []
    assert shown["workType"] is None and shown["billableOption"] is None
    assert any("No ConnectWise company chosen" in w for w in shown["warnings"])
    assert any("work type" in w for w in shown["warnings"])


def test_every_choice_round_trips_and_reaches_the_settings(app, connectwise_sandbox):
    api = configure(app, connectwise_sandbox)
    answer = _post(api, _base(connectwise_sandbox) | FULL)
    assert answer.status_code == 200, answer.get_json()
    shown = api.call("GET", "/credentials").get_json()
    for key, value in FULL.items():
        assert shown[key] == value, key
    assert shown["warnings"] == []
    with app.app_context():
        settings = cw_of(app).tenants.settings(TENANT_A)
    assert settings is not None
    assert settings.company_ids == (250, 257)
    assert settings.company_names == "Contoso Ltd or Contoso Labs"
    assert settings.serves_company(257) and not settings.serves_company(255)
    assert settings.work_type == WorkChoice(4, "Remote Support")
    assert settings.status_for_board(1) == BoardStatusChoice(1, 102, "Help Desk", "In Progress")
    assert settings.status_for_board(21) is None
    assert settings.note_visibility == "resolution" and settings.email_contact is True


def test_left_out_keys_keep_what_is_stored_and_null_clears(app, connectwise_sandbox):
    api = configure(app, connectwise_sandbox)
    _post(api, _base(connectwise_sandbox) | FULL)
    _post(api, _base(connectwise_sandbox) | {"defaultTimeMinutes": 30})
    shown = api.call("GET", "/credentials").get_json()
    assert shown["companies"] == FULL["companies"] and shown["workType"] == FULL["workType"]
    assert shown["defaultTimeMinutes"] == 30
    _post(api, _base(connectwise_sandbox) | {"workType": None, "boardStatuses": []})
    shown = api.call("GET", "/credentials").get_json()
    assert shown["workType"] is None and shown["boardStatuses"] == []
    assert shown["workRole"] == FULL["workRole"]


def test_all_companies_is_an_explicit_choice_and_drops_the_list(app, connectwise_sandbox):
    api = configure(app, connectwise_sandbox)
    _post(api, _base(connectwise_sandbox) | FULL)
    _post(api, _base(connectwise_sandbox) | {"companyScope": "all"})
    shown = api.call("GET", "/credentials").get_json()
    assert shown["companyScope"] == "all" and shown["companies"] == []
    assert not any("company" in w for w in shown["warnings"])
    with app.app_context():
        assert cw_of(app).tenants.settings(TENANT_A).company_ids is None


def test_companies_alone_mean_listed_and_ids_are_accepted(app, connectwise_sandbox):
    api = configure(app, connectwise_sandbox)
    _post(api, _base(connectwise_sandbox) | {"companies": [250, "251", 250]})
    shown = api.call("GET", "/credentials").get_json()
    assert shown["companyScope"] == "listed"
    assert [c["id"] for c in shown["companies"]] == [250, 251]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"companyScope": "listed"}, "companies"),
        ({"companyScope": "listed", "companies": []}, "companies"),
        ({"companyScope": "some"}, "companyScope"),
        ({"companies": "250"}, "companies"),
        ({"companies": [{"id": "x"}]}, "companies"),
        ({"companies": [0]}, "companies"),
        ({"companies": [True]}, "companies"),
        ({"companies": [{"id": 1, "name": "x" * 101}]}, "companies"),
        ({"companies": [{"id": 1, "name": "a\u0000b"}]}, "companies"),
        ({"companies": list(range(1, 60))}, "companies"),
        ({"workType": "Regular"}, "workType"),
        ({"workRole": {"id": 2**31}}, "workRole"),
        ({"billableOption": "Free"}, "billableOption"),
        ({"noteVisibility": "public"}, "noteVisibility"),
        ({"emailContact": "yes"}, "emailContact"),
        ({"boardStatuses": {"1": 102}}, "boardStatuses"),
        ({"boardStatuses": [{"boardId": 1}]}, "boardStatuses"),
        (
            {"boardStatuses": [{"boardId": 1, "statusId": 2}, {"boardId": 1, "statusId": 3}]},
            "boardStatuses",
        ),
        ({"ticketPolicy": "ignore"}, "ticketPolicy"),
    ],
)
def test_bad_choices_are_field_named_400s_and_change_nothing(app, connectwise_sandbox, body, field):
    api = configure(app, connectwise_sandbox)
    _post(api, _base(connectwise_sandbox) | FULL)
    before = api.call("GET", "/credentials").get_json()
    answer = _post(api, _base(connectwise_sandbox) | body)
    assert answer.status_code == 400
    error = answer.get_json()
    assert error["field"] == field, error
    after = api.call("GET", "/credentials").get_json()
    assert after == before


def test_a_damaged_choice_cell_reads_as_not_chosen(app, connectwise_sandbox):
    configure(app, connectwise_sandbox)
    with app.app_context():
        tenants = cw_of(app).tenants
        row = tenants.credentials_row(TENANT_A)
        row.companies, row.work_type, row.board_statuses = "{not json", "[1]", '{"a": 1}'
        row.company_scope = "listed"
        tenants.session.commit()
        settings = tenants.store().decrypt_row(row)
        view = CredentialsStore.public_view(row)
    assert settings.companies == () and settings.work_type is None
    assert settings.board_statuses == ()
    assert view["companies"] == [] and view["workType"] is None


def test_choices_storage_round_trip():
    companies = (CompanyChoice(250, "Contoso", "Contoso Ltd ✓"), CompanyChoice(9))
    assert load_companies(dump(companies)) == companies
    assert load_work(dump(WorkChoice(3, "Regular"))) == WorkChoice(3, "Regular")
    boards = (BoardStatusChoice(1, 102, "Help Desk", "In Progress"),)
    assert load_board_statuses(dump(boards)) == boards
    assert dump(()) is None and dump(None) is None
    assert load_companies(None) == () and load_work("") is None


def test_settings_repr_never_shows_secrets():
    settings = TenantSettings(
        tenant_id="t",
        base_url="https://x",
        company_id="c",
        public_key="PUBLICCANARY",
        private_key="PRIVATECANARY",
        client_id="CLIENTCANARY",
        companies=(CompanyChoice(1),),
    )
    assert "CANARY" not in repr(settings)
