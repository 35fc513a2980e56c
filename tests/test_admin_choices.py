"""The credentials view's per-tenant choices (issue 14): company picker, time defaults, note
visibility, board -> status map, ticket policy; Test connection with the form's values; saving
credentials that fail the test warns. Real sandbox over loopback."""

from __future__ import annotations

import json
import re
from functools import partial
from typing import Any

import pytest

from tests.admin_helpers import (
    TENANT_A,
    TENANT_B,
    AdminUser,
    credentials_form,
    make_admin_app,
    seed_credentials,
    settings_of,
    text_of,
)

CRED = "/admin/connectwise/credentials"
SEARCH = f"{CRED}/companies/"


@pytest.fixture
def app(tmp_path):
    app = make_admin_app(f"sqlite:///{tmp_path / 'admin.db'}")
    yield app
    with app.app_context():
        app.extensions["test_db"].engine.dispose()


edit_body = partial(
    credentials_form, secrets=False
)  # an edit post: blank secrets keep the stored ones


def option_value(page: str, select: str, label: str) -> str:
    block = re.search(rf'<select[^>]*name="{re.escape(select)}"[\s\S]*?</select>', page)
    assert block, select
    found = re.search(
        rf'<option[^>]*value="(\d+)"[^>]*>{re.escape(label)}</option>', block.group(0)
    )
    assert found, (select, label)
    return found.group(1)


def search(user: AdminUser, row_id: int | None, q: str, **form: Any) -> Any:
    body = {"q": q} | form
    if row_id is not None:
        body["id"] = row_id
    return user.post(SEARCH, body)


# -- the company picker ------------------------------------------------------------------------


def test_picker_finds_contoso_with_the_stored_credentials(app, connectwise_sandbox):
    row_id = seed_credentials(app, TENANT_A, connectwise_sandbox)
    user = AdminUser(app, TENANT_A)
    answer = search(user, row_id, "Cont")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json()["companies"] == [
        {"id": 250, "identifier": "Contoso", "name": "Contoso Ltd"}
    ]
    # as the edit page's picker sends it: its search URL, the form's values, blank secrets
    edit = user.get(f"{CRED}/edit/?id={row_id}").get_data(as_text=True)
    url = re.search(r'data-search-url="([^"]+)"', edit).group(1).replace("&amp;", "&")
    answer = user.post(url, edit_body(connectwise_sandbox) | {"q": "Cont"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert [c["id"] for c in answer.get_json()["companies"]] == [250]


def test_picker_uses_the_forms_values_before_anything_is_stored(app, connectwise_sandbox):
    creds = connectwise_sandbox.credentials
    user = AdminUser(app, TENANT_A)
    form = {
        "tenant_id": TENANT_A,
        "base_url": creds["base_url"],
        "company_id": creds["company_id"],
        "public_key": creds["public_key"],
        "private_key": creds["private_key"],
        "client_id": creds["client_id"],
    }
    answer = search(user, None, "Cont", **form)
    assert answer.status_code == 200
    assert [c["name"] for c in answer.get_json()["companies"]] == ["Contoso Ltd"]
    # a wrong key in the form fails in plain words, even though nothing is stored
    bad = search(user, None, "Cont", **(form | {"private_key": "wrong-private-key-0000"}))
    assert bad.status_code == 502
    error = bad.get_json()["error"]
    assert "could not be searched" in error and "Traceback" not in error


def test_picker_needs_csrf_and_the_tenant(app, connectwise_sandbox):
    row_id = seed_credentials(app, TENANT_A, connectwise_sandbox)
    user = AdminUser(app, TENANT_A)
    no_token = user.http.post(SEARCH, data={"id": row_id, "q": "Cont"}, headers=user.headers)
    assert no_token.status_code == 400 and "Contoso" not in no_token.get_data(as_text=True)
    other = AdminUser(app, TENANT_B)
    answer = search(other, row_id, "Cont")
    assert answer.status_code == 404 and "companies" not in answer.get_json()


@pytest.mark.parametrize("q", ["Cont') or (1=1", "%", "a" * 500, "<script>x</script>", "_"])
def test_picker_hostile_text_is_plain_and_never_a_500(app, connectwise_sandbox, q):
    row_id = seed_credentials(app, TENANT_A, connectwise_sandbox)
    answer = search(AdminUser(app, TENANT_A), row_id, q)
    assert answer.status_code in (200, 400, 502)
    names = [c["name"] for c in answer.get_json().get("companies", [])]
    assert "Contoso Ltd" not in names or "Cont" in q


# -- saving the choices ------------------------------------------------------------------------


def test_choosing_listed_companies_saves_them_by_name(app, connectwise_sandbox):
    row_id = seed_credentials(app, TENANT_A, connectwise_sandbox)
    user = AdminUser(app, TENANT_A)
    found = search(user, row_id, "Cont").get_json()["companies"]
    body = edit_body(connectwise_sandbox, company_scope="listed")
    body["companies"] = [json.dumps(c) for c in found]
    body["companies-ids"] = "251"  # typed by hand (no JavaScript)
    answer = user.post(f"{CRED}/edit/?id={row_id}", body)
    assert answer.status_code == 302, text_of(answer.get_data(as_text=True))
    saved = settings_of(app, TENANT_A)
    assert saved.company_scope == "listed"
    assert saved.company_ids == (250, 251)
    assert saved.companies[0].name == "Contoso Ltd"
    edit = user.get(f"{CRED}/edit/?id={row_id}").get_data(as_text=True)
    assert re.search(r'value="[^"]*250[^"]*" checked> Contoso Ltd \(Contoso\)', edit)
    details = text_of(user.get(f"{CRED}/details/?id={row_id}").get_data(as_text=True))
    assert "Contoso Ltd" in details
    # "All companies": searches are not limited (an edit page that posts the ticked companies
    # keeps them for switching back: tests/test_admin_polish.py)
    answer = user.post(
        f"{CRED}/edit/?id={row_id}", edit_body(connectwise_sandbox, company_scope="all")
    )
    assert answer.status_code == 302
    saved = settings_of(app, TENANT_A)
    assert saved.company_scope == "all" and saved.company_ids is None


def test_listed_without_a_company_is_a_field_error(app, connectwise_sandbox):
    row_id = seed_credentials(app, TENANT_A, connectwise_sandbox)
    user = AdminUser(app, TENANT_A)
    answer = user.post(
        f"{CRED}/edit/?id={row_id}", edit_body(connectwise_sandbox, company_scope="listed")
    )
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "Choose at least one company" in body
    assert settings_of(app, TENANT_A).company_scope == "unset"


def test_work_type_role_billable_and_notes_are_saved_with_names(app, connectwise_sandbox):
    row_id = seed_credentials(app, TENANT_A, connectwise_sandbox)
    user = AdminUser(app, TENANT_A)
    edit = user.get(f"{CRED}/edit/?id={row_id}").get_data(as_text=True)
    work_type = option_value(edit, "work_type", "Remote Support")
    work_role = option_value(edit, "work_role", "Network Engineer")
    assert "Travel (legacy)" not in edit and "Junior Technician" not in edit  # inactive
    answer = user.post(
        f"{CRED}/edit/?id={row_id}",
        edit_body(
            connectwise_sandbox,
            work_type=work_type,
            work_role=work_role,
            billable_option="NoCharge",
            note_visibility="discussion",
            email_contact="y",
            ticket_policy="warn",
        ),
    )
    assert answer.status_code == 302, text_of(answer.get_data(as_text=True))
    saved = settings_of(app, TENANT_A)
    assert (saved.work_type.id, saved.work_type.name) == (4, "Remote Support")
    assert (saved.work_role.id, saved.work_role.name) == (13, "Network Engineer")
    assert saved.billable_option == "NoCharge"
    assert saved.note_visibility == "discussion" and saved.email_contact is True
    assert saved.ticket_policy == "warn"
    details = text_of(user.get(f"{CRED}/details/?id={row_id}").get_data(as_text=True))
    assert "work type Remote Support" in details and "work role Network Engineer" in details
    assert "No charge" in details and "Discussion; the contact is e-mailed" in details
    # blank billable option: ConnectWise decides; an unticked box turns e-mail off
    user.post(
        f"{CRED}/edit/?id={row_id}",
        edit_body(
            connectwise_sandbox, work_type=work_type, work_role=work_role, billable_option=""
        ),
    )
    saved = settings_of(app, TENANT_A)
    assert saved.billable_option is None and saved.email_contact is False
    assert saved.work_type.id == 4


def test_board_status_map_is_saved_and_shown_by_name(app, connectwise_sandbox):
    row_id = seed_credentials(app, TENANT_A, connectwise_sandbox)
    user = AdminUser(app, TENANT_A)
    edit = user.get(f"{CRED}/edit/?id={row_id}").get_data(as_text=True)
    in_progress = option_value(edit, "board_statuses-21", "In Progress")
    assert "Legacy - Do Not Use" not in re.search(
        r'name="board_statuses-21"[\s\S]*?</select>', edit
    ).group(0)
    answer = user.post(
        f"{CRED}/edit/?id={row_id}",
        edit_body(
            connectwise_sandbox, **{"board_statuses-21": in_progress, "board_statuses-1": ""}
        ),
    )
    assert answer.status_code == 302, text_of(answer.get_data(as_text=True))
    saved = settings_of(app, TENANT_A)
    choice = saved.status_for_board(21)
    assert choice and choice.status_id == int(in_progress)
    assert (choice.board_name, choice.status_name) == ("Voice Services", "In Progress")
    assert saved.status_for_board(1) is None
    details = text_of(user.get(f"{CRED}/details/?id={row_id}").get_data(as_text=True))
    assert "Voice Services → In Progress" in details


def test_a_post_without_the_new_fields_keeps_the_stored_choices(app, connectwise_sandbox):
    row_id = seed_credentials(
        app,
        TENANT_A,
        connectwise_sandbox,
        companyScope="listed",
        companies=[{"id": 250, "identifier": "Contoso", "name": "Contoso Ltd"}],
        workType={"id": 3, "name": "Regular"},
        boardStatuses=[{"boardId": 1, "statusId": 2, "boardName": "Help Desk", "statusName": "X"}],
    )
    user = AdminUser(app, TENANT_A)
    body = edit_body(connectwise_sandbox)
    for key in ("companies-shown", "board_statuses-shown", "note_visibility", "ticket_policy"):
        body.pop(key)
    assert user.post(f"{CRED}/edit/?id={row_id}", body).status_code == 302
    saved = settings_of(app, TENANT_A)
    assert saved.company_ids == (250,) and saved.work_type.id == 3
    assert saved.status_for_board(1) is not None


def test_stored_choices_show_by_name_when_connectwise_cannot_be_reached(app, connectwise_sandbox):
    row_id = seed_credentials(
        app,
        TENANT_A,
        connectwise_sandbox,
        privateKey="wrong-private-key-0000",
        companyScope="listed",
        companies=[{"id": 250, "identifier": "Contoso", "name": "Contoso Ltd"}],
        workType={"id": 4, "name": "Remote Support"},
        workRole={"id": 13, "name": "Network Engineer"},
        boardStatuses=[
            {
                "boardId": 21,
                "statusId": 7,
                "boardName": "Voice Services",
                "statusName": "In Progress",
            }
        ],
    )
    user = AdminUser(app, TENANT_A)
    answer = user.get(f"{CRED}/edit/?id={row_id}")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "Traceback" not in page
    assert "lists could not be loaded" in page
    assert re.search(r'<option[^>]*value="4"[^>]*selected[^>]*>Remote Support<', page) or re.search(
        r'<option selected[^>]*value="4"[^>]*>Remote Support<', page
    )
    assert "Network Engineer" in page and "Contoso Ltd" in page
    assert re.search(r'<option value="7" selected>In Progress</option>', page)
    # saving the page as shown keeps every stored choice (the keys are fixed at the same time)
    body = edit_body(
        connectwise_sandbox,
        private_key=connectwise_sandbox.credentials["private_key"],
        company_scope="listed",
        work_type="4",
        work_role="13",
        **{"board_statuses-21": "7"},
    )
    body["companies"] = json.dumps({"id": 250, "identifier": "Contoso", "name": "Contoso Ltd"})
    assert user.post(f"{CRED}/edit/?id={row_id}", body).status_code == 302
    saved = settings_of(app, TENANT_A)
    assert saved.work_type.name == "Remote Support" and saved.company_ids == (250,)
    assert saved.status_for_board(21).status_name == "In Progress"


HOSTILE = [
    {"companies": "abc"},
    {"companies": json.dumps({"id": "1 or 1=1", "name": "x"})},
    {"companies-ids": "250) or (1=1"},
    {"companies": json.dumps({"id": 250, "name": "x" * 500})},
    {"work_type": "3 or 1=1"},
    {"work_role": "-1"},
    {"billable_option": "Free"},
    {"note_visibility": "public"},
    {"ticket_policy": "ignore"},
    {"company_scope": "everyone"},
    {"board_statuses-abc": "1"},
    {"board_statuses-21": "1) or (1=1"},
    {"board_statuses-21": "99999999999999999999999"},
]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_choices_are_field_errors_never_500s(app, connectwise_sandbox, hostile):
    row_id = seed_credentials(app, TENANT_A, connectwise_sandbox)
    user = AdminUser(app, TENANT_A)
    before = settings_of(app, TENANT_A)
    answer = user.post(f"{CRED}/edit/?id={row_id}", edit_body(connectwise_sandbox, **hostile))
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200, hostile
    assert "Traceback" not in page
    assert "is-invalid" in page or "alert-danger" in page
    after = settings_of(app, TENANT_A)
    assert after.revision == before.revision


# -- Test connection with the form's values; saving warns --------------------------------------


def test_test_connection_uses_the_forms_values_not_the_stored_row(app, connectwise_sandbox):
    row_id = seed_credentials(app, TENANT_A, connectwise_sandbox)
    user = AdminUser(app, TENANT_A)
    wrong = edit_body(connectwise_sandbox, private_key="wrong-private-key-0000", cw_test="1")
    answer = user.post(f"{CRED}/edit/?id={row_id}", wrong)
    page = text_of(answer.get_data(as_text=True))
    assert answer.status_code == 200
    assert "the connection with the values in the form failed" in page
    assert "Nothing was saved" in page and "Traceback" not in page
    assert settings_of(app, TENANT_A).private_key == connectwise_sandbox.credentials["private_key"]
    # blank secrets: the stored (good) ones; a changed value is still not saved
    good = edit_body(connectwise_sandbox, default_time_minutes="45", cw_test="1")
    answer = user.post(f"{CRED}/edit/?id={row_id}", good)
    page = text_of(answer.get_data(as_text=True))
    assert "the values in the form connect to ConnectWise v2025.1" in page
    assert settings_of(app, TENANT_A).default_time_minutes == 15


def test_test_connection_before_anything_is_stored(app, connectwise_sandbox):
    creds = connectwise_sandbox.credentials
    user = AdminUser(app, TENANT_A)
    body = {
        "tenant_id": TENANT_A,
        "base_url": creds["base_url"],
        "company_id": creds["company_id"],
        "public_key": creds["public_key"],
        "private_key": creds["private_key"],
        "client_id": creds["client_id"],
        "cw_test": "1",
    }
    answer = user.post(f"{CRED}/new/", body)
    assert answer.status_code == 200
    assert "the values in the form connect to ConnectWise" in text_of(answer.get_data(as_text=True))
    assert settings_of(app, TENANT_A) is None


def test_saving_credentials_that_fail_the_test_saves_and_warns(app, connectwise_sandbox):
    row_id = seed_credentials(app, TENANT_A, connectwise_sandbox)
    user = AdminUser(app, TENANT_A)
    answer = user.post(
        f"{CRED}/edit/?id={row_id}",
        edit_body(connectwise_sandbox, private_key="wrong-private-key-0000"),
    )
    assert answer.status_code == 302
    assert settings_of(app, TENANT_A).private_key == "wrong-private-key-0000"
    flashes = user.flashes()
    assert any(
        kind == "warning" and "saved, but the connection test failed" in text
        for kind, text in flashes
    ), flashes
    assert all("Traceback" not in text for _, text in flashes)
    # good keys: no warning, and the row is marked verified
    user.http.get(f"{CRED}/", headers=user.headers)  # consume the flashes
    answer = user.post(
        f"{CRED}/edit/?id={row_id}",
        edit_body(connectwise_sandbox, private_key=connectwise_sandbox.credentials["private_key"]),
    )
    assert answer.status_code == 302
    assert not any(kind == "warning" for kind, _ in user.flashes())


def test_list_and_details_show_the_warnings(app, connectwise_sandbox):
    row_id = seed_credentials(app, TENANT_A, connectwise_sandbox)
    user = AdminUser(app, TENANT_A)
    listing = text_of(user.get(f"{CRED}/").get_data(as_text=True))
    assert "No ConnectWise company chosen" in listing
    details = text_of(user.get(f"{CRED}/details/?id={row_id}").get_data(as_text=True))
    assert "No default work type or work role" in details
    assert "not chosen yet" in details and "none (statuses are left as is)" in details
