"""The credentials and change-log views as an MSP's admin reads them (issue 14's last gaps):
the company picker before any company is chosen, switching company scope back and forth, one
message for Test connection, names instead of ids, truthful help, a create form that says why
its lists are empty. Real sandbox over loopback."""

from __future__ import annotations

import json
import re
from functools import partial
from html import unescape

import pytest

from tests.admin_helpers import (
    TENANT_A,
    AdminUser,
    credentials_form,
    make_admin_app,
    seed_credentials,
    settings_of,
    text_of,
)

CRED = "/admin/connectwise/credentials"
CHANGES = "/admin/connectwise/change-log"
CONTOSO = {"id": 250, "identifier": "Contoso", "name": "Contoso Ltd"}


@pytest.fixture
def app(tmp_path):
    app = make_admin_app(f"sqlite:///{tmp_path / 'admin.db'}")
    yield app
    with app.app_context():
        app.extensions["test_db"].engine.dispose()


form_values = partial(credentials_form, secrets=True)  # the form with its secrets typed in


# -- 1. the picker finds a first company ------------------------------------------------------


def test_picker_finds_a_first_company_with_only_these_companies_and_none_ticked(
    app, connectwise_sandbox
):
    user = AdminUser(app, TENANT_A)
    body = form_values(connectwise_sandbox, company_scope="listed") | {"q": "Cont"}
    answer = user.post(f"{CRED}/companies/", body)
    assert answer.status_code == 200, answer.get_json()
    assert [c["name"] for c in answer.get_json()["companies"]] == ["Contoso Ltd"]
    # the same on the edit page of stored credentials
    row_id = seed_credentials(app, TENANT_A, connectwise_sandbox)
    answer = user.post(
        f"{CRED}/companies/",
        form_values(connectwise_sandbox, company_scope="listed", public_key="", private_key="")
        | {"q": "Cont", "id": row_id, "client_id": ""},
    )
    assert answer.status_code == 200, answer.get_json()
    assert [c["id"] for c in answer.get_json()["companies"]] == [250]


# -- 2. "All companies" keeps the list; the form's words ----------------------------------------


def test_all_companies_keeps_the_list_so_switching_back_restores_it(app, connectwise_sandbox):
    row_id = seed_credentials(
        app, TENANT_A, connectwise_sandbox, companyScope="listed", companies=[CONTOSO]
    )
    user = AdminUser(app, TENANT_A)
    edit = f"{CRED}/edit/?id={row_id}"
    # the edit page posts the ticked companies whatever the scope
    body = form_values(
        connectwise_sandbox, company_scope="all", public_key="", private_key="", client_id=""
    )
    body["companies"] = json.dumps(CONTOSO)
    assert user.post(edit, body).status_code == 302
    saved = settings_of(app, TENANT_A)
    assert saved.company_scope == "all" and saved.company_ids is None
    assert [c.id for c in saved.companies] == [250]
    page = user.get(edit).get_data(as_text=True)
    assert re.search(r'value="[^"]*250[^"]*" checked> Contoso Ltd \(Contoso\)', page)
    # back to "Only these companies", the page as shown: Contoso again
    body["company_scope"] = "listed"
    assert user.post(edit, body).status_code == 302
    saved = settings_of(app, TENANT_A)
    assert saved.company_scope == "listed" and saved.company_ids == (250,)


def test_listed_without_a_company_says_it_in_the_forms_words(app, connectwise_sandbox):
    row_id = seed_credentials(app, TENANT_A, connectwise_sandbox)
    user = AdminUser(app, TENANT_A)
    body = form_values(
        connectwise_sandbox, company_scope="listed", public_key="", private_key="", client_id=""
    )
    page = unescape(text_of(user.post(f"{CRED}/edit/?id={row_id}", body).get_data(as_text=True)))
    assert "Choose at least one company" in page
    assert '"Only these companies"' in page and '"All companies"' in page
    assert '"Companies served"' in page
    assert "companyScope" not in page


# -- 3. Test connection: one message, whole sentences --------------------------------------------


@pytest.mark.parametrize("creating", [False, True])
def test_test_connection_in_the_form_shows_only_its_result(app, connectwise_sandbox, creating):
    user = AdminUser(app, TENANT_A)
    body = form_values(connectwise_sandbox, private_key="wrong-private-key-0000", cw_test="1")
    if creating:
        url = f"{CRED}/new/"
    else:
        url = f"{CRED}/edit/?id={seed_credentials(app, TENANT_A, connectwise_sandbox)}"
    page = text_of(user.post(url, body).get_data(as_text=True))
    assert "the connection with the values in the form failed" in page
    assert "Failed to save record" not in page and "Failed to create record" not in page
    assert re.search(r"client id\)\. Nothing was saved\.", page), page
    # a form that does not validate still says so
    page = text_of(user.post(url, body | {"cw_test": "", "base_url": ""}).get_data(as_text=True))
    assert "Failed to save record" in page or "Failed to create record" in page


# -- 4. names, not ids --------------------------------------------------------------------------


def test_credentials_details_name_the_default_status(app, connectwise_sandbox):
    row_id = seed_credentials(app, TENANT_A, connectwise_sandbox, defaultStatusId=102)
    user = AdminUser(app, TENANT_A)
    details = text_of(user.get(f"{CRED}/details/?id={row_id}").get_data(as_text=True))
    assert "Help Desk — In Progress" in details
    assert "Default status id" not in details and " 102 " not in f" {details} "
    # ConnectWise unreachable (wrong key): the stored board map's name, else "status #102"
    with app.app_context():
        app.extensions["test_cw"].tenants.save_credentials(
            TENANT_A,
            {
                "baseUrl": connectwise_sandbox.credentials["base_url"],
                "companyId": connectwise_sandbox.credentials["company_id"],
                "privateKey": "wrong-private-key-0000",
            },
        )
    details = text_of(user.get(f"{CRED}/details/?id={row_id}").get_data(as_text=True))
    assert "status #102" in details and "Traceback" not in details


def test_change_log_details_read_as_words(app, connectwise_sandbox):
    from flask_connectwise.delivery import new_change

    seed_credentials(
        app,
        TENANT_A,
        connectwise_sandbox,
        boardStatuses=[
            {"boardId": 1, "statusId": 102, "boardName": "Help Desk", "statusName": "In Progress"}
        ],
    )
    with app.app_context():
        service = app.extensions["test_cw"].service
        ids = []
        for status_id in (102, 777):
            change = new_change(
                service.models,
                tenant_id=TENANT_A,
                ticket_id=12345,
                note_text="Printer moved",
                member="jdoe",
                hours=0.3333,
                status_id=status_id,
                internal=True,
                operator="jdoe",
            )
            service.session.add(change)
            service.session.commit()
            ids.append(int(change.id))
    user = AdminUser(app, TENANT_A)
    page = text_of(user.get(f"{CHANGES}/details/?id={ids[0]}").get_data(as_text=True))
    assert "Status In Progress (Help Desk)" in page
    assert "Time 20 min" in page and "Visibility internal" in page
    assert "Status id" not in page and "0.3333" not in page and "True" not in page
    page = text_of(user.get(f"{CHANGES}/details/?id={ids[1]}").get_data(as_text=True))
    assert "Status #777" in page


def test_a_company_id_connectwise_does_not_know_saves_with_a_warning(app, connectwise_sandbox):
    row_id = seed_credentials(app, TENANT_A, connectwise_sandbox)
    user = AdminUser(app, TENANT_A)
    body = form_values(
        connectwise_sandbox,
        company_scope="listed",
        public_key="",
        private_key="",
        client_id="",
        **{"companies-ids": "251, 99999"},
    )
    assert user.post(f"{CRED}/edit/?id={row_id}", body).status_code == 302
    warnings = [text for kind, text in user.flashes() if kind == "warning"]
    assert any("company 99999 was not found in ConnectWise" in w for w in warnings), warnings
    assert not any("251" in w for w in warnings)
    saved = settings_of(app, TENANT_A)
    assert saved.company_ids == (251, 99999)
    assert saved.companies[0].name == "Fabrikam Inc"  # a known id gets its name


# -- 5. truthful help ---------------------------------------------------------------------------


def test_help_and_labels_say_what_happens(app, connectwise_sandbox):
    row_id = seed_credentials(app, TENANT_A, connectwise_sandbox)
    page = text_of(AdminUser(app, TENANT_A).get(f"{CRED}/edit/?id={row_id}").get_data(as_text=True))
    assert "Set the default status below on every logged change" not in page
    assert "only when it belongs to that board" in page
    assert "Ticket of another company, closed" not in page
    assert "Closed ticket, or a status that takes no time" in page
    assert "A ticket of another company is always refused" in page


# -- 6. the create form says why its lists are empty --------------------------------------------


def test_create_form_says_to_save_first(app, connectwise_sandbox):
    page = text_of(AdminUser(app, TENANT_A).get(f"{CRED}/new/").get_data(as_text=True))
    message = (
        "Save the credentials first; the lists of work types, roles and board statuses come "
        "from ConnectWise once it can be reached."
    )
    assert message in page
    assert "No boards to show" not in page


# -- 7. the list fits and names the login company ------------------------------------------------


def test_list_drops_the_login_company_and_details_label_it(app, connectwise_sandbox):
    row_id = seed_credentials(app, TENANT_A, connectwise_sandbox)
    user = AdminUser(app, TENANT_A)
    listing = user.get(f"{CRED}/").get_data(as_text=True)
    headers = [text_of(h) for h in re.findall(r"<th[^>]*>([\s\S]*?)</th>", listing)]
    assert "Company" not in headers and "Client id" not in headers
    assert "Last verified" in headers and "Last error" in headers
    details = text_of(user.get(f"{CRED}/details/?id={row_id}").get_data(as_text=True))
    assert "Login company" in details


@pytest.mark.browser
def test_credentials_list_fits_1280_px(app, connectwise_sandbox, browser):
    from tests.serving import serve

    seed_credentials(app, TENANT_A, connectwise_sandbox)
    with serve(app) as base:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{base}{CRED}/?as_tenant={TENANT_A}&as_role=admin")
        # every column header in view: not cut off by a scrolling table, nor off the page
        edges = page.evaluate(
            "() => [...document.querySelectorAll('table.model-list th')].map(th => {"
            " const box = th.getBoundingClientRect();"
            " let clip = window.innerWidth;"
            " for (let el = th.parentElement; el; el = el.parentElement) {"
            "  if (getComputedStyle(el).overflowX !== 'visible')"
            "   clip = Math.min(clip, el.getBoundingClientRect().right); }"
            " return [th.innerText.trim(), Math.round(box.right), Math.round(clip)]; })"
        )
        assert [e[0] for e in edges if e[0]][-2:] == ["Last verified", "Last error"], edges
        assert all(right <= clip + 1 for _, right, clip in edges), edges
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280
        page.close()
