"""The change log's details page and the credentials pages, polished after a browser re-try of
issue 14: Retry only where sending again can help, a Status row that says what happened, one
"Time" row, statuses by name, step text cut at a word."""

from __future__ import annotations

import html as markup
import re
from typing import Any

import pytest

from flask_connectwise.admin.changelog import clip
from flask_connectwise.models import CONFIRMED, DELIVERED, FAILED, GAVE_UP, SKIPPED
from tests.admin_helpers import (
    TENANT_A,
    AdminUser,
    make_admin_app,
    seed_change,
    seed_credentials,
    text_of,
)

CHANGES = "/admin/connectwise/change-log"
REFUSAL = "Ticket #12460 belongs to Woodgrove Bank, not Contoso Ltd"
HELP_DESK = {"boardId": 1, "statusId": 102, "boardName": "Help Desk", "statusName": "In Progress"}


@pytest.fixture
def admin_app(tmp_path):
    app = make_admin_app(f"sqlite:///{tmp_path / 'admin.db'}")
    yield app
    with app.app_context():
        app.extensions["test_db"].engine.dispose()


def make_change(app: Any, **columns: Any) -> int:
    return seed_change(
        app, ticket_id=12460, note_text="DID moved", hours=1 / 3, status_id=102, **columns
    )


def refused_change(app: Any, error: str) -> int:
    columns: dict[str, Any] = {"state": GAVE_UP}
    for step in ("note", "time", "status"):
        columns |= {f"{step}_state": FAILED, f"{step}_attempts": 1, f"{step}_error": error}
    return make_change(app, **columns)


def details(app: Any, change_id: int) -> str:
    response = AdminUser(app, TENANT_A).get(f"{CHANGES}/details/?id={change_id}")
    assert response.status_code == 200
    return str(response.get_data(as_text=True))


def row(html: str, label: str) -> str:
    """The text of the details page's row labelled ``label``."""
    found = re.findall(rf"<b>{re.escape(label)}</b>\s*</td>\s*<td>(.*?)</td>", html, re.S)
    assert len(found) == 1, (label, found)
    return text_of(found[0])


def retry_form(html: str) -> bool:
    return bool(re.search(r'<form[^>]*class="cw-retry"', html))


# -- 1. the details page offers Retry by the list's rule ---------------------------------------


def test_the_details_page_offers_no_retry_for_our_company_refusal(admin_app):
    html = details(admin_app, refused_change(admin_app, REFUSAL))
    assert not retry_form(html)
    assert "Retry the steps not done" not in html


def test_the_details_page_offers_retry_for_a_retryable_failure(admin_app):
    failed = refused_change(admin_app, "ConnectWise refused the note (The text field is required)")
    html = details(admin_app, failed)
    assert retry_form(html) and "Retry the steps not done" in html


# -- 2. the details page says what happened, once each -----------------------------------------


def test_a_status_left_as_is_reads_so_not_as_the_intended_status(admin_app, connectwise_sandbox):
    seed_credentials(admin_app, TENANT_A, connectwise_sandbox, boardStatuses=[HELP_DESK])
    change = make_change(
        admin_app,
        state=DELIVERED,
        note_state=CONFIRMED,
        note_remote_id=901,
        time_state=CONFIRMED,
        time_remote_id=77,
        status_state=SKIPPED,
        status_error="status left as is: no status set for board Voice Services",
    )
    status = row(details(admin_app, change), "Status")
    assert status == "left as is: no status set for board Voice Services", status
    assert "In Progress" not in status


def test_a_failed_status_reads_not_set(admin_app):
    why = "ConnectWise refused the status (Status 102 is not an active status)."
    change = make_change(admin_app, state=GAVE_UP, status_state=FAILED, status_error=why)
    assert row(details(admin_app, change), "Status") == f"not set: {why}"


def test_a_status_set_is_named_in_the_status_row_and_the_steps(admin_app, connectwise_sandbox):
    seed_credentials(admin_app, TENANT_A, connectwise_sandbox, boardStatuses=[HELP_DESK])
    change = make_change(
        admin_app,
        state=DELIVERED,
        note_state=CONFIRMED,
        note_remote_id=901,
        time_state=CONFIRMED,
        time_remote_id=77,
        status_state=CONFIRMED,
    )
    html = details(admin_app, change)
    assert row(html, "Status") == "set to In Progress (Help Desk)"
    steps = row(html, "Steps")
    assert "Status: confirmed — In Progress (Help Desk)" in steps, steps
    assert "#102" not in steps
    listed = text_of(AdminUser(admin_app, TENANT_A).get(f"{CHANGES}/").get_data(as_text=True))
    assert "Status: confirmed — In Progress (Help Desk)" in listed
    assert "#102" not in listed


def test_a_status_without_a_stored_name_falls_back_to_its_number(admin_app):
    change = make_change(admin_app, state=DELIVERED, status_state=CONFIRMED)
    html = details(admin_app, change)
    assert row(html, "Status") == "set to #102"
    assert "Status: confirmed #102" in row(html, "Steps")


def test_the_time_spent_and_the_time_logged_have_their_own_labels(admin_app):
    html = details(admin_app, make_change(admin_app))
    assert row(html, "Time") == "20 min"
    assert re.match(r"\d{4}-\d\d-\d\d", row(html, "Logged at")), row(html, "Logged at")


LONG = (
    "ConnectWise refused the time entry: the member's time sheet for this week is already "
    "approved, so no entry can be added to it. "
    * 3
    + "Sending it again will not help: ask the member's manager to reopen the time sheet."
)


def test_step_text_is_cut_at_a_word_with_an_ellipsis_on_the_list_and_whole_on_details(
    admin_app,
):
    assert 300 < len(LONG) <= 500
    change = make_change(admin_app, state=GAVE_UP, time_state=FAILED, time_error=LONG)
    listed = text_of(AdminUser(admin_app, TENANT_A).get(f"{CHANGES}/").get_data(as_text=True))
    shown = clip(LONG)
    assert shown.endswith("…") and len(shown) <= 300
    assert LONG.startswith(shown[:-1]) and LONG[len(shown) - 1] == " ", shown
    assert shown in markup.unescape(listed)
    assert LONG in markup.unescape(row(details(admin_app, change), "Steps"))


def test_clip_keeps_short_text_and_never_cuts_mid_word():
    assert clip("short words", 300) == "short words"
    cut = clip("Sending it again will not help at all", 30)
    assert cut == "Sending it again will not…", cut


# -- 3. a company search result already listed says where it is --------------------------------

CRED = "/admin/connectwise/credentials"
CONTOSO = {"id": 250, "identifier": "Contoso", "name": "Contoso Ltd"}


@pytest.mark.browser
def test_a_result_already_listed_but_unticked_says_to_tick_it(
    tmp_path, browser, connectwise_sandbox
):
    from tests.serving import serve

    app = make_admin_app(f"sqlite:///{tmp_path / 'pick.db'}", WTF_CSRF_TIME_LIMIT=None)
    row_id = seed_credentials(
        app, TENANT_A, connectwise_sandbox, companyScope="listed", companies=[CONTOSO]
    )
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(8000)
    try:
        with serve(app) as site:
            page.goto(f"{site}{CRED}/edit/?id={row_id}&as_tenant={TENANT_A}&as_role=admin")
            result = ".cw-company-result:has-text('Contoso Ltd')"
            page.fill("#companies-search", "Cont")
            page.click(".cw-company-search-button")
            assert page.is_disabled(result)
            assert page.inner_text(result).endswith("— already chosen")
            page.uncheck(".cw-company-choices input")
            page.click(".cw-company-search-button")
            page.wait_for_selector(f"{result}:has-text('tick it above')")
            assert page.is_disabled(result)
            assert (
                page.inner_text(result) == "Contoso Ltd (Contoso) — already listed: tick it above"
            )
    finally:
        context.close()


# -- 4. the create form and the details page in plain words ------------------------------------

SAVE_FIRST = (
    "Save the credentials first; the lists of work types, roles and board statuses come "
    "from ConnectWise once it can be reached."
)


def test_the_create_form_offers_to_keep_no_stored_secret(admin_app):
    page = text_of(AdminUser(admin_app, TENANT_A).get(f"{CRED}/new/").get_data(as_text=True))
    assert "Leave blank to keep it" not in page
    assert page.count("Required. Write-only: once saved, it is never shown.") == 3


def test_the_edit_form_says_blank_keeps_the_stored_secret(admin_app, connectwise_sandbox):
    row_id = seed_credentials(admin_app, TENANT_A, connectwise_sandbox)
    user = AdminUser(admin_app, TENANT_A)
    page = text_of(user.get(f"{CRED}/edit/?id={row_id}").get_data(as_text=True))
    assert page.count("Leave blank to keep it.") == 3


def test_the_create_form_says_to_save_first_once_above_the_time_defaults(admin_app):
    html = AdminUser(admin_app, TENANT_A).get(f"{CRED}/new/").get_data(as_text=True)
    page = text_of(html)
    assert page.count(SAVE_FIRST) == 1, page
    assert page.index("Work type") < page.index(SAVE_FIRST) < page.index("Work role")
    assert "Listed once the credentials are saved." in page


@pytest.mark.parametrize(("stored", "words"), [(True, "on"), (False, "off")])
def test_the_details_page_says_auto_update_status_in_words(
    admin_app, connectwise_sandbox, stored, words
):
    row_id = seed_credentials(admin_app, TENANT_A, connectwise_sandbox, autoUpdateStatus=stored)
    html = AdminUser(admin_app, TENANT_A).get(f"{CRED}/details/?id={row_id}")
    assert row(html.get_data(as_text=True), "Auto-update status") == words
