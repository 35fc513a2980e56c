"""The Flask-Admin views (credentials, feature flag, change log) through a host app."""

from __future__ import annotations

import html as htmllib
import re
from typing import Any

import pytest

from flask_connectwise.admin import (
    ChangeLogView,
    CredentialsView,
    FeatureFlagView,
    register_views,
)
from flask_connectwise.extension import state
from flask_connectwise.models import FAILED, PENDING
from tests.admin_helpers import (
    TENANT_A,
    TENANT_B,
    AdminUser,
    make_admin_app,
    seed_credentials,
    text_of,
)

CRED = "/admin/connectwise/credentials"
FLAGS = "/admin/connectwise/flags"
CHANGES = "/admin/connectwise/change-log"


@pytest.fixture
def app(tmp_path):
    app = make_admin_app(f"sqlite:///{tmp_path / 'admin.db'}")
    yield app
    with app.app_context():
        app.extensions["test_db"].engine.dispose()


@pytest.fixture
def service(app):
    return state(app).service


def row_of(app: Any, tenant: str) -> Any:
    with app.app_context():
        row = app.extensions["test_cw"].service.credentials_row(tenant)
        if row is not None:
            app.extensions["test_db"].session.expunge(row)
        return row


def secrets_of(app: Any, tenant: str) -> Any:
    with app.app_context():
        return app.extensions["test_cw"].service.settings(tenant)


def form_body(sandbox: Any, **overrides: Any) -> dict[str, Any]:
    creds = sandbox.credentials
    body = {
        "tenant_id": TENANT_A,
        "base_url": creds["base_url"],
        "company_id": creds["company_id"],
        "public_key": creds["public_key"],
        "private_key": creds["private_key"],
        "client_id": creds["client_id"],
        "default_time_minutes": "15",
        "default_status_id": "",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def flashed(user: AdminUser, response: Any) -> str:
    """Follow a redirect and return the visible text of the page it lands on."""
    assert response.status_code in (302, 303), response.status_code
    page = user.get(response.headers["Location"])
    return text_of(page.get_data(as_text=True))


def make_change(app: Any, tenant: str, *, state: str = FAILED, ticket_id: int = 12345) -> int:
    from flask_connectwise.delivery import new_change

    with app.app_context():
        service = app.extensions["test_cw"].service
        change = new_change(
            service.models,
            tenant_id=tenant,
            ticket_id=ticket_id,
            note_text="DID +1 555 0100 moved to ext. 204",
            member="jdoe",
            hours=0.25,
            status_id=None,
            operator="jdoe",
        )
        if state == FAILED:
            change.state = FAILED
            change.note_state = FAILED
            change.note_attempts = 1
            change.note_error = "ConnectWise is unavailable (503)"
            change.time_state = FAILED
            change.time_attempts = 1
            change.time_error = "ConnectWise is unavailable (503)"
        service.session.add(change)
        service.session.commit()
        return int(change.id)


# -- registration --------------------------------------------------------------------------------


def test_views_are_registered_under_the_connectwise_category(app):
    admin = app.extensions["test_admin"]
    views = {type(v): v for v in admin._views}
    assert {CredentialsView, FeatureFlagView, ChangeLogView} <= set(views)
    assert {views[c].category for c in (CredentialsView, FeatureFlagView, ChangeLogView)} == {
        "ConnectWise"
    }


def test_views_can_be_turned_off_or_renamed(tmp_path):
    off = make_admin_app(f"sqlite:///{tmp_path / 'off.db'}", CONNECTWISE_ADMIN_VIEWS=False)
    assert not any(isinstance(v, CredentialsView) for v in off.extensions["test_admin"]._views)
    some = make_admin_app(
        f"sqlite:///{tmp_path / 'some.db'}",
        CONNECTWISE_ADMIN_VIEWS=["changes"],
        CONNECTWISE_ADMIN_CATEGORY="Tickets",
    )
    added = [v for v in some.extensions["test_admin"]._views if isinstance(v, ChangeLogView)]
    assert len(added) == 1 and added[0].category == "Tickets"
    assert not any(isinstance(v, CredentialsView) for v in some.extensions["test_admin"]._views)
    with pytest.raises(ValueError, match="unknown view"):
        register_views(
            some.extensions["test_admin"], None, None, None, enabled=["nope"], category="x"
        )


# -- every page renders, and no secret appears anywhere ----------------------------------------


def test_every_page_renders_without_a_secret(app, connectwise_sandbox, canaries):
    row_id = seed_credentials(app, TENANT_A, connectwise_sandbox)
    change_id = make_change(app, TENANT_A)
    user = AdminUser(app, TENANT_A)
    user.post(f"{FLAGS}/new/", {"tenant_id": TENANT_A, "enabled": "y"})
    pages = {
        "credentials list": f"{CRED}/",
        "credentials create": f"{CRED}/new/",
        "credentials edit": f"{CRED}/edit/?id={row_id}",
        "credentials details": f"{CRED}/details/?id={row_id}",
        "flag list": f"{FLAGS}/",
        "flag create": f"{FLAGS}/new/",
        "change log": f"{CHANGES}/",
        "change details": f"{CHANGES}/details/?id={change_id}",
    }
    stored = row_of(app, TENANT_A)
    for name, url in pages.items():
        answer = user.get(url)
        body = answer.get_data(as_text=True)
        assert answer.status_code == 200, (name, answer.status_code)
        assert canaries.find_in(body) == [], name
        for ciphertext in (stored.public_key, stored.private_key, stored.client_id):
            assert ciphertext not in body, name
        assert "Traceback" not in body
    listing = text_of(user.get(f"{CRED}/").get_data(as_text=True))
    assert TENANT_A in listing and "••••" in listing
    assert connectwise_sandbox.credentials["base_url"] in listing
    edit = user.get(f"{CRED}/edit/?id={row_id}").get_data(as_text=True)
    for name in ("public_key", "private_key", "client_id"):
        tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', edit)
        assert tag and 'type="password"' in tag.group(0)
        assert "value=" not in tag.group(0) or 'value=""' in tag.group(0)
    assert "Test connection" in edit
    # the board statuses of the sandbox fill the default status select
    assert re.search(r'<select[^>]*name="default_status_id"', edit)
    assert edit.count("<option") > 3
    changes = text_of(user.get(f"{CHANGES}/").get_data(as_text=True))
    assert "12345" in changes and "failed" in changes and "503" in changes


def test_csv_export_has_no_secret(app, connectwise_sandbox, canaries):
    seed_credentials(app, TENANT_A, connectwise_sandbox)
    stored = row_of(app, TENANT_A)
    user = AdminUser(app, TENANT_A)
    answer = user.get(f"{CRED}/export/csv/")
    assert answer.status_code == 200
    body = answer.get_data(as_text=True)
    assert TENANT_A in body and "••••" in body
    assert canaries.find_in(body) == []
    for ciphertext in (stored.public_key, stored.private_key, stored.client_id):
        assert ciphertext not in body


def test_secret_columns_are_not_searchable_or_filterable(app, connectwise_sandbox, canaries):
    seed_credentials(app, TENANT_A, connectwise_sandbox)
    admin = app.extensions["test_admin"]
    view = next(v for v in admin._views if isinstance(v, CredentialsView))
    secret = {"public_key", "private_key", "client_id"}
    assert not secret & set(view.column_searchable_list)
    assert not secret & set(view.column_filters)
    assert not secret & set(view.column_list)
    assert not secret & set(view.column_details_list)
    assert not secret & set(view.column_export_list)
    assert not view.column_editable_list
    # searching for (a piece of) a secret finds nothing
    user = AdminUser(app, TENANT_A)
    found = user.get(f"{CRED}/?search={canaries.private_key[-8:]}").get_data(as_text=True)
    assert "There are no items in the table" in found or f">{TENANT_A}<" not in found


# -- create and edit -----------------------------------------------------------------------------


def test_create_encrypts_and_a_blank_secret_keeps_the_stored_one(app, connectwise_sandbox):
    user = AdminUser(app, TENANT_A)
    answer = user.post(f"{CRED}/new/", form_body(connectwise_sandbox))
    assert answer.status_code == 302, text_of(answer.get_data(as_text=True))
    stored = row_of(app, TENANT_A)
    creds = connectwise_sandbox.credentials
    assert stored.private_key != creds["private_key"]
    assert creds["private_key"] not in stored.private_key
    assert stored.updated_by == "jdoe"
    before = secrets_of(app, TENANT_A)
    assert before.private_key == creds["private_key"]

    answer = user.post(
        f"{CRED}/edit/?id={stored.id}",
        form_body(
            connectwise_sandbox,
            public_key="",
            private_key="",
            client_id="",
            company_id="other",
            default_time_minutes="30",
            auto_update_status="y",
        ),
    )
    assert answer.status_code == 302, text_of(answer.get_data(as_text=True))
    after = secrets_of(app, TENANT_A)
    assert (after.public_key, after.private_key, after.client_id) == (
        before.public_key,
        before.private_key,
        before.client_id,
    )
    assert after.company_id == "other" and after.default_time_minutes == 30
    assert after.auto_update_status is True


def test_create_needs_every_secret(app, connectwise_sandbox):
    user = AdminUser(app, TENANT_A)
    answer = user.post(f"{CRED}/new/", form_body(connectwise_sandbox, private_key=""))
    assert answer.status_code == 200
    assert "Required when first storing credentials" in answer.get_data(as_text=True)
    assert row_of(app, TENANT_A) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254",
        "https://evil.example.com",
        "ftp://x",
        "https://a.myconnectwise.net/x",
    ],
)
def test_an_invalid_base_url_is_a_field_error_and_stores_nothing(app, connectwise_sandbox, url):
    user = AdminUser(app, TENANT_A)
    answer = user.post(f"{CRED}/new/", form_body(connectwise_sandbox, base_url=url))
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert row_of(app, TENANT_A) is None
    # the error sits next to the base URL field
    assert re.search(r'name="base_url"[\s\S]{0,600}(invalid-feedback|help-block)', body)
    assert "is-invalid" in body

    row_id = seed_credentials(app, TENANT_A, connectwise_sandbox)
    before = row_of(app, TENANT_A)
    answer = user.post(f"{CRED}/edit/?id={row_id}", form_body(connectwise_sandbox, base_url=url))
    assert answer.status_code == 200 and "is-invalid" in answer.get_data(as_text=True)
    assert row_of(app, TENANT_A).base_url == before.base_url
    assert row_of(app, TENANT_A).revision == before.revision


@pytest.mark.parametrize("tenant", ["*", "two words", "ten\u00e4nt", "x" * 65])
def test_credentials_need_a_tenant_id_the_routes_can_address(app, connectwise_sandbox, tenant):
    root = AdminUser(app, "*", role="superadmin")
    answer = root.post(f"{CRED}/new/", form_body(connectwise_sandbox, tenant_id=tenant))
    assert answer.status_code == 200
    assert "is-invalid" in answer.get_data(as_text=True)
    assert row_of(app, tenant) is None


def test_a_flag_names_a_tenant_id_the_routes_can_address_or_star(app, service):
    root = AdminUser(app, "*", role="superadmin")
    answer = root.post(f"{FLAGS}/new/", {"tenant_id": "two words", "enabled": "y"})
    assert answer.status_code == 200
    assert "A tenant id is 1-64 ASCII letters" in answer.get_data(as_text=True)
    with app.app_context():
        assert service.flag_row("two words") is None
    assert root.post(f"{FLAGS}/new/", {"tenant_id": "*", "enabled": "y"}).status_code == 302


def test_a_posted_form_never_echoes_the_secrets(app, connectwise_sandbox, canaries):
    user = AdminUser(app, TENANT_A)
    answer = user.post(f"{CRED}/new/", form_body(connectwise_sandbox, base_url="https://x.test"))
    assert answer.status_code == 200
    assert canaries.find_in(answer.get_data(as_text=True)) == []


def test_csrf_is_required(app, connectwise_sandbox):
    user = AdminUser(app, TENANT_A)
    answer = user.http.post(
        f"{CRED}/new/", data=form_body(connectwise_sandbox), headers=user.headers
    )
    assert answer.status_code == 400
    assert row_of(app, TENANT_A) is None


def test_default_status_select_survives_bad_keys(app, connectwise_sandbox):
    row_id = seed_credentials(
        app, TENANT_A, connectwise_sandbox, privateKey="wrong-private-key-0000", defaultStatusId=7
    )
    user = AdminUser(app, TENANT_A)
    answer = user.get(f"{CRED}/edit/?id={row_id}")
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert "could not be loaded" in body
    assert re.search(r'<option[^>]*selected[^>]*value="7"|<option[^>]*value="7"[^>]*selected', body)


def test_default_status_is_chosen_from_the_board_statuses(app, connectwise_sandbox):
    row_id = seed_credentials(app, TENANT_A, connectwise_sandbox)
    user = AdminUser(app, TENANT_A)
    edit = user.get(f"{CRED}/edit/?id={row_id}").get_data(as_text=True)
    values = re.findall(r'<option[^>]*value="(\d+)"', edit)
    assert values
    answer = user.post(
        f"{CRED}/edit/?id={row_id}",
        form_body(
            connectwise_sandbox,
            public_key="",
            private_key="",
            client_id="",
            default_status_id=values[0],
        ),
    )
    assert answer.status_code == 302
    assert row_of(app, TENANT_A).default_status_id == int(values[0])


# -- test connection -----------------------------------------------------------------------------


def test_test_connection_shows_the_version(app, connectwise_sandbox):
    row_id = seed_credentials(app, TENANT_A, connectwise_sandbox)
    user = AdminUser(app, TENANT_A)
    answer = user.post(f"{CRED}/test/", {"id": row_id, "url": f"{CRED}/edit/?id={row_id}"})
    assert answer.headers["Location"].endswith(f"{CRED}/edit/?id={row_id}")
    page = flashed(user, answer)
    assert "connected to ConnectWise v2025.1" in page
    stored = row_of(app, TENANT_A)
    assert stored.last_verified_at is not None and stored.last_error is None


def test_test_connection_shows_the_error_on_bad_keys(app, connectwise_sandbox, canaries):
    row_id = seed_credentials(
        app, TENANT_A, connectwise_sandbox, privateKey="wrong-private-key-0000"
    )
    user = AdminUser(app, TENANT_A)
    page = flashed(user, user.post(f"{CRED}/test/", {"id": row_id}))
    assert "the connection failed" in page
    assert "Traceback" not in page
    stored = row_of(app, TENANT_A)
    assert stored.last_error and stored.last_verified_at is None
    assert canaries.find_in(stored.last_error) == []
    listing = text_of(user.get(f"{CRED}/").get_data(as_text=True))
    assert stored.last_error[:40] in htmllib.unescape(listing)


def test_test_connection_as_a_list_action(app, connectwise_sandbox):
    row_id = seed_credentials(app, TENANT_A, connectwise_sandbox)
    user = AdminUser(app, TENANT_A)
    listing = user.get(f"{CRED}/").get_data(as_text=True)
    assert "/admin/connectwise/credentials/test/" in listing
    page = flashed(
        user, user.post(f"{CRED}/action/", {"action": "test_connection", "rowid": row_id})
    )
    assert "connected to ConnectWise" in page


def test_unreadable_secrets_are_plain_words(app, connectwise_sandbox):
    row_id = seed_credentials(app, TENANT_A, connectwise_sandbox)
    with app.app_context():
        service = app.extensions["test_cw"].service
        row = service.credentials_row(TENANT_A)
        other = service.credentials_row(TENANT_A).public_key
        row.private_key = other  # a ciphertext of another cell never decrypts here
        service.session.commit()
        service.forget_client(TENANT_A)
    user = AdminUser(app, TENANT_A)
    page = flashed(user, user.post(f"{CRED}/test/", {"id": row_id}))
    assert "cannot be read" in page and "Traceback" not in page
    edit = user.get(f"{CRED}/edit/?id={row_id}")
    assert edit.status_code == 200 and "could not be loaded" in edit.get_data(as_text=True)


# -- the feature flag ------------------------------------------------------------------------------


def test_flag_toggle_records_who_and_when(app, service):
    user = AdminUser(app, TENANT_A, member="alice")
    answer = user.post(f"{FLAGS}/new/", {"tenant_id": TENANT_A, "enabled": "y"})
    assert answer.status_code == 302
    with app.app_context():
        assert service.flag_on(TENANT_A) is True
        row = service.flag_row(TENANT_A)
        flag_id, first = row.id, row.updated_at
        assert row.updated_by == "alice"
    page = flashed(user, user.post(f"{FLAGS}/toggle/", {"id": flag_id}))
    assert f"now off for {TENANT_A}" in page
    with app.app_context():
        assert service.flag_on(TENANT_A) is False
        assert service.flag_row(TENANT_A).updated_at >= first
    listing = text_of(user.get(f"{FLAGS}/").get_data(as_text=True))
    assert "alice" in listing and "off" in listing
    page = flashed(user, user.post(f"{FLAGS}/action/", {"action": "turn_on", "rowid": flag_id}))
    assert "now on" in page
    answer = user.post(f"{FLAGS}/edit/?id={flag_id}", {"tenant_id": TENANT_A})
    assert answer.status_code == 302
    with app.app_context():
        assert service.flag_on(TENANT_A) is False


def test_the_all_tenants_flag_needs_rights_on_star(app, service):
    user = AdminUser(app, TENANT_A)
    answer = user.post(f"{FLAGS}/new/", {"tenant_id": "*", "enabled": "y"})
    assert answer.status_code == 200
    assert "You may not configure" in answer.get_data(as_text=True)
    with app.app_context():
        assert service.flag_row("*") is None
    root = AdminUser(app, "*", role="superadmin")
    assert root.post(f"{FLAGS}/new/", {"tenant_id": "*", "enabled": "y"}).status_code == 302
    with app.app_context():
        assert service.flag_on("anyone") is True
    assert "all tenants" not in text_of(user.get(f"{FLAGS}/").get_data(as_text=True))
    assert "all tenants" in text_of(root.get(f"{FLAGS}/").get_data(as_text=True))


# -- the change log ------------------------------------------------------------------------------


def test_retry_runs_the_steps_not_done(app, connectwise_sandbox, service):
    seed_credentials(app, TENANT_A, connectwise_sandbox)
    with app.app_context():
        service.set_flag(TENANT_A, True)  # a retry sends nothing while the flag is off
    change_id = make_change(app, TENANT_A)
    notes_before = len(connectwise_sandbox.notes(12345))
    times_before = len(connectwise_sandbox.time_entries(12345))
    user = AdminUser(app, TENANT_A, role="operator")
    listing = user.get(f"{CHANGES}/").get_data(as_text=True)
    assert "/admin/connectwise/change-log/retry/" in listing
    page = flashed(user, user.post(f"{CHANGES}/retry/", {"id": change_id}))
    assert "delivered; every step is done now" in page
    assert len(connectwise_sandbox.notes(12345)) == notes_before + 1
    assert len(connectwise_sandbox.time_entries(12345)) == times_before + 1
    page = flashed(user, user.post(f"{CHANGES}/retry/", {"id": change_id}))
    assert "nothing to retry" in page
    assert len(connectwise_sandbox.notes(12345)) == notes_before + 1


def test_retry_says_what_still_fails(app, connectwise_sandbox, service):
    seed_credentials(app, TENANT_A, connectwise_sandbox, privateKey="wrong-private-key-0000")
    with app.app_context():
        service.set_flag(TENANT_A, True)  # a retry sends nothing while the flag is off
    change_id = make_change(app, TENANT_A)
    user = AdminUser(app, TENANT_A)
    page = flashed(user, user.post(f"{CHANGES}/action/", {"action": "retry", "rowid": change_id}))
    assert "still not complete" in page and "Still failing: the note" in page
    assert "Traceback" not in page


def test_change_log_filters_by_state(app, connectwise_sandbox):
    make_change(app, TENANT_A, state=FAILED, ticket_id=111)
    make_change(app, TENANT_A, state=PENDING, ticket_id=222)
    user = AdminUser(app, TENANT_A)
    listing = user.get(f"{CHANGES}/").get_data(as_text=True)
    assert "111" in listing and "222" in listing
    view = next(v for v in app.extensions["test_admin"]._views if isinstance(v, ChangeLogView))
    index = next(i for i, f in enumerate(view._filters) if f.name == "State")
    filtered = text_of(user.get(f"{CHANGES}/?flt0_{index}=failed").get_data(as_text=True))
    assert " 111 " in f" {filtered} " and " 222 " not in f" {filtered} "


def test_change_log_is_read_only(app):
    change_id = make_change(app, TENANT_A)
    user = AdminUser(app, TENANT_A)
    assert user.get(f"{CHANGES}/new/").status_code in (302, 404)
    assert user.get(f"{CHANGES}/edit/?id={change_id}").status_code in (302, 404)
    user.post(f"{CHANGES}/delete/", {"id": change_id})
    with app.app_context():
        assert app.extensions["test_cw"].service.session.get(
            app.extensions["test_cw"].models.ChangeLog, change_id
        )


# -- tenant isolation ----------------------------------------------------------------------------


def test_an_admin_of_a_sees_and_changes_nothing_of_b(app, connectwise_sandbox, service):
    b_id = seed_credentials(app, TENANT_B, connectwise_sandbox)
    b_change = make_change(app, TENANT_B)
    root = AdminUser(app, TENANT_B)
    root.post(f"{FLAGS}/new/", {"tenant_id": TENANT_B, "enabled": "y"})
    with app.app_context():
        b_flag = service.flag_row(TENANT_B).id
    before = row_of(app, TENANT_B)
    requests_before = len(connectwise_sandbox.requests)
    notes_before = len(connectwise_sandbox.notes(12345))

    a = AdminUser(app, TENANT_A)
    for url in (f"{CRED}/", f"{FLAGS}/", f"{CHANGES}/", f"{CRED}/export/csv/"):
        body = a.get(url).get_data(as_text=True)
        assert TENANT_B not in body, url
    for url in (
        f"{CRED}/details/?id={b_id}",
        f"{CRED}/edit/?id={b_id}",
        f"{CHANGES}/details/?id={b_change}",
        f"{FLAGS}/edit/?id={b_flag}",
    ):
        answer = a.get(url)
        assert answer.status_code == 302, url
        assert TENANT_B not in flashed(a, answer)
    # edit POST, create for B, delete, actions, test connection, toggle, retry
    a.post(
        f"{CRED}/edit/?id={b_id}",
        form_body(connectwise_sandbox, tenant_id=TENANT_B, company_id="hijacked"),
    )
    answer = a.post(f"{CRED}/new/", form_body(connectwise_sandbox, tenant_id=TENANT_B))
    assert "You may not configure" in answer.get_data(as_text=True)
    a.post(f"{CRED}/delete/", {"id": b_id})
    a.post(f"{CRED}/action/", {"action": "delete", "rowid": b_id})
    a.post(f"{CRED}/action/", {"action": "test_connection", "rowid": b_id})
    a.post(f"{CRED}/test/", {"id": b_id})
    a.post(f"{FLAGS}/toggle/", {"id": b_flag})
    a.post(f"{FLAGS}/action/", {"action": "turn_off", "rowid": b_flag})
    a.post(f"{FLAGS}/edit/?id={b_flag}", {"tenant_id": TENANT_B})
    a.post(f"{FLAGS}/new/", {"tenant_id": TENANT_B})
    a.post(f"{CHANGES}/retry/", {"id": b_change})
    a.post(f"{CHANGES}/action/", {"action": "retry", "rowid": b_change})

    after = row_of(app, TENANT_B)
    assert after is not None
    assert (after.company_id, after.revision, after.last_verified_at, after.last_error) == (
        before.company_id,
        before.revision,
        before.last_verified_at,
        before.last_error,
    )
    with app.app_context():
        assert service.flag_on(TENANT_B) is True
        change = service.session.get(service.models.ChangeLog, b_change)
        assert change.state == FAILED and change.note_attempts == 1
    assert len(connectwise_sandbox.requests) == requests_before
    assert len(connectwise_sandbox.notes(12345)) == notes_before


def test_without_an_authorize_hook_nothing_is_shown(tmp_path, connectwise_sandbox):
    app = make_admin_app(f"sqlite:///{tmp_path / 'nohook.db'}", authorize=False)
    seed_credentials(app, TENANT_A, connectwise_sandbox)
    user = AdminUser(app, TENANT_A)
    answer = user.get(f"{CRED}/")
    assert answer.status_code == 403
    with app.app_context():
        app.extensions["test_db"].engine.dispose()
