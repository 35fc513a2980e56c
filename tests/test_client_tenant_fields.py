"""ConnectWiseClient's per-tenant fields (issue 14) against the live sandbox over loopback:
company-limited search, time entry work type/role/billable/addTo, note visibility and e-mail,
member lookup with its license class, and the company / work type / work role lists."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flask_connectwise import conditions as cond
from flask_connectwise import errors
from flask_connectwise.client import ConnectWiseClient
from flask_connectwise.records import Member
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


# -- conditions: ints only ---------------------------------------------------------------------


def test_one_of_ids_builds_in_list_from_ints():
    assert cond.one_of_ids("company/id", [251, 250, 251]) == "company/id in (250,251)"
    assert cond.one_of_ids("company/id", (250,)) == "company/id=250"


@pytest.mark.parametrize(
    "bad", [["250) or (id>0"], [True], [2.5], [0], [-1], [], ["250"], list(range(1, 200))]
)
def test_one_of_ids_refuses_anything_but_positive_ints(bad):
    with pytest.raises(ValueError):
        cond.one_of_ids("company/id", bad)


@given(st.lists(st.integers(min_value=1, max_value=2**31), min_size=2, max_size=50, unique=True))
def test_one_of_ids_structure_is_fixed(ids):
    built = cond.one_of_ids("company/id", ids)
    assert built == f"company/id in ({','.join(str(i) for i in sorted(ids))})"


# -- search limited to the tenant's companies ----------------------------------------------------


def open_printer_tickets(sandbox, companies=None):
    return {
        t["id"]
        for t in sandbox.tickets()
        if not t["closedFlag"]
        and "printer" in t["summary"].lower()
        and (companies is None or t["company"]["id"] in companies)
    }


def test_search_limited_to_companies_returns_only_their_tickets(client, connectwise_sandbox):
    expected = open_printer_tickets(connectwise_sandbox, {250, 251})
    everyone = open_printer_tickets(connectwise_sandbox)
    assert expected and everyone - expected, "the seed has printer tickets of other companies"
    found = client.search_tickets("printer", company_ids=[250, 251], limit=100)
    assert {t.id for t in found} == expected
    assert {t.company_id for t in found} <= {250, 251}
    sent = connectwise_sandbox.requests(method="GET", path="service/tickets")[-1]
    assert "company/id in (250,251)" in sent.query["conditions"]
    assert sent.status == 200
    # Without company_ids nothing changes.
    assert {t.id for t in client.search_tickets("printer", limit=100)} == everyone


def test_ticket_number_of_another_company_is_not_found(client, connectwise_sandbox):
    woodgrove = connectwise_sandbox.ticket(12460)
    assert woodgrove["company"]["id"] == 255
    assert all(t.id != 12460 for t in client.search_tickets("12460", company_ids=[250]))
    assert client.search_tickets("12460", company_ids=[255])[0].id == 12460
    sent = connectwise_sandbox.requests(method="GET", path="service/tickets")[-1]
    assert sent.query["conditions"].startswith("(id=12460 or ")
    assert sent.query["conditions"].endswith(" and company/id=255")


def test_hostile_company_ids_never_reach_the_sandbox(client, connectwise_sandbox):
    connectwise_sandbox.clear_requests()
    with pytest.raises(ValueError):
        client.search_tickets("printer", company_ids=["250) or (id>0"])  # type: ignore[list-item]
    assert client.search_tickets("printer", company_ids=[]) == []
    assert connectwise_sandbox.requests(path="service/tickets") == []


# -- time entries ------------------------------------------------------------------------------


def test_time_entry_sends_work_type_role_billable_and_add_to(client, connectwise_sandbox):
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    entry = client.add_time_entry(
        12345,
        hours=0.5,
        member="jdoe",
        notes="voice change",
        start=start,
        work_type=5,
        work_role=12,
        billable_option="NoCharge",
        add_to="internal",
    )
    body = connectwise_sandbox.requests(method="POST", path="time/entries")[-1].json
    assert body == {
        "chargeToId": 12345,
        "chargeToType": "ServiceTicket",
        "timeStart": "2026-01-05T09:00:00Z",
        "timeEnd": "2026-01-05T09:30:00Z",
        "member": {"identifier": "jdoe"},
        "notes": "voice change",
        "workType": {"id": 5},
        "workRole": {"id": 12},
        "billableOption": "NoCharge",
        "addToDetailDescriptionFlag": False,
        "addToInternalAnalysisFlag": True,
        "addToResolutionFlag": False,
    }
    stored = next(e for e in connectwise_sandbox.time_entries(12345) if e["id"] == entry.id)
    assert stored["workType"]["id"] == 5 and stored["workRole"]["id"] == 12
    assert stored["billableOption"] == "NoCharge"
    assert stored["addToInternalAnalysisFlag"] is True
    assert stored["addToDetailDescriptionFlag"] is False and stored["addToResolutionFlag"] is False


@pytest.mark.parametrize(
    ("add_to", "flag"),
    [
        ("discussion", "addToDetailDescriptionFlag"),
        ("internal", "addToInternalAnalysisFlag"),
        ("resolution", "addToResolutionFlag"),
    ],
)
def test_add_to_sets_exactly_one_flag(client, connectwise_sandbox, add_to, flag):
    client.add_time_entry(12345, hours=0.25, member="jdoe", add_to=add_to)
    body = connectwise_sandbox.requests(method="POST", path="time/entries")[-1].json
    flags = {k: v for k, v in body.items() if k.startswith("addTo")}
    assert [k for k, v in flags.items() if v] == [flag] and len(flags) == 3


def test_time_entry_defaults_send_none_of_the_new_fields(client, connectwise_sandbox):
    client.add_time_entry(12345, hours=0.25, member="jdoe")
    body = connectwise_sandbox.requests(method="POST", path="time/entries")[-1].json
    assert not {"workType", "workRole", "billableOption"} & set(body)
    assert not [k for k in body if k.startswith("addTo")]


@pytest.mark.parametrize(
    "bad",
    [
        {"work_type": "5"},
        {"work_type": True},
        {"work_role": 0},
        {"billable_option": "Free"},
        {"add_to": "customer"},
    ],
)
def test_bad_time_entry_fields_are_refused_before_sending(client, connectwise_sandbox, bad):
    connectwise_sandbox.clear_requests()
    with pytest.raises(ValueError):
        client.add_time_entry(12345, hours=0.25, member="jdoe", **bad)
    assert connectwise_sandbox.writes() == []


@pytest.mark.parametrize("connectwise_sandbox_rules", ["strict"], indirect=True)
def test_strict_tenant_accepts_entry_with_work_type_and_role(client, connectwise_sandbox):
    with pytest.raises(errors.ValidationError):
        client.add_time_entry(12345, hours=0.25, member="jdoe")
    entry = client.add_time_entry(12345, hours=0.25, member="jdoe", work_type=3, work_role=11)
    assert entry.id and entry.hours == 0.25


# -- notes -------------------------------------------------------------------------------------

FLAGS = {
    "discussion": "detailDescriptionFlag",
    "internal": "internalAnalysisFlag",
    "resolution": "resolutionFlag",
}


@pytest.mark.parametrize("visibility", list(FLAGS))
def test_note_visibility_sets_exactly_its_flag(client, connectwise_sandbox, visibility):
    # ``visibility`` wins over ``internal``.
    note = client.add_note(12345, "visible", visibility=visibility, internal=True)
    stored = next(n for n in connectwise_sandbox.notes(12345) if n["id"] == note.id)
    assert {flag: stored[flag] for flag in FLAGS.values()} == {
        flag: name == visibility for name, flag in FLAGS.items()
    }
    body = connectwise_sandbox.requests(method="POST", path="service/tickets/*/notes")[-1].json
    assert body["processNotifications"] is False


@pytest.mark.parametrize(
    ("visibility", "emailed"), [("discussion", True), ("internal", False), ("resolution", False)]
)
def test_email_contact_notifies_only_for_discussion(
    client, connectwise_sandbox, visibility, emailed
):
    client.add_note(12345, "tell the contact", visibility=visibility, email_contact=True)
    body = connectwise_sandbox.requests(method="POST", path="service/tickets/*/notes")[-1].json
    assert body["processNotifications"] is emailed


def test_note_defaults_are_unchanged(client, connectwise_sandbox):
    client.add_note(12345, "plain")
    client.add_note(12345, "internal", internal=True)
    first, second = (
        r.json for r in connectwise_sandbox.requests(method="POST", path="service/tickets/*/notes")
    )
    assert first["detailDescriptionFlag"] is True and first["internalAnalysisFlag"] is False
    assert second["detailDescriptionFlag"] is False and second["internalAnalysisFlag"] is True
    assert first["processNotifications"] is False and second["processNotifications"] is False


def test_unknown_visibility_is_refused(client, connectwise_sandbox):
    with pytest.raises(ValueError):
        client.add_note(12345, "x", visibility="public")
    assert connectwise_sandbox.writes() == []


# -- members -----------------------------------------------------------------------------------


def test_member_lookup_returns_license_class(client, connectwise_sandbox):
    jdoe = client.member("jdoe")
    assert (jdoe.identifier, jdoe.license_class, jdoe.is_api_member) == ("jdoe", "F", False)
    api = client.member(176)
    assert api.license_class == "A" and api.is_api_member
    assert client.member(jdoe).id == jdoe.id
    assert client.member("rbrown").inactive is True  # inactive members are returned, marked
    assert client.find_member("jdoe").license_class == "F"


@pytest.mark.parametrize("unknown", ["nobody-here", 999999, "", 'x" or id>0 or identifier="'])
def test_unknown_member_is_not_found(client, connectwise_sandbox, unknown):
    with pytest.raises(errors.NotFoundError):
        client.member(unknown)
    for request in connectwise_sandbox.requests(path="system/members"):
        assert request.status == 200
        assert request.query["conditions"].count('"') in (0, 2)


# -- companies, work types, work roles ---------------------------------------------------------


def test_companies_by_name_and_search(client, connectwise_sandbox):
    every = client.companies(limit=100)
    assert [c.name for c in every] == sorted(c.name for c in every)
    assert {(c.id, c.identifier) for c in every} >= {(250, "Contoso"), (251, "Fabrikam")}
    assert [(c.id, c.name) for c in client.companies("contoso")] == [(250, "Contoso Ltd")]
    assert [c.id for c in client.companies("Woodgrove Bank")] == [255]
    assert client.companies('" or id>0 or name="') == []
    with connectwise_sandbox.store.lock:
        connectwise_sandbox.store.data.companies[251]["deletedFlag"] = True
    assert 251 not in {c.id for c in client.companies(limit=100)}
    assert client.companies("fabrikam") == []


def test_companies_by_id_answers_the_known_ones(client, connectwise_sandbox):
    found = client.companies_by_id([255, 99999, 250, 250])
    assert sorted((c.id, c.name) for c in found) == [(250, "Contoso Ltd"), (255, "Woodgrove Bank")]
    (request,) = connectwise_sandbox.requests(method="GET", path="company/companies")
    assert request.query["conditions"] == "id in (250,255,99999)"
    assert client.companies_by_id([]) == []


def test_work_types_and_roles_leave_inactive_ones_out(client):
    types = client.work_types()
    assert [t.name for t in types] == sorted(t.name for t in types)
    assert 8 not in {t.id for t in types}  # Travel (legacy) is inactive
    assert {t.id: t.billable_option for t in types}[6] == "NoCharge"
    roles = client.work_roles()
    assert [r.name for r in roles] == sorted(r.name for r in roles)
    assert 16 not in {r.id for r in roles}  # Junior Technician is inactive
    assert {r.id: r.location_ids for r in roles}[15] == (3,)


def test_records_to_json():
    assert Member(1, "a", license_class="F").to_json()["licenseClass"] == "F"
