"""Operator journeys through the example app in headless Chromium, against the sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from example_app.extensions import db
from example_app.models import PhoneUser, VoiceConfiguration
from tests.example_helpers import (
    CONTOSO_ADMIN,
    CONTOSO_OPERATOR,
    FABRIKAM_OPERATOR,
    PASSWORD,
    dispose,
    make_example_app,
    serve,
    set_flag,
)
from tests.serving import expect

pytestmark = pytest.mark.browser

KEY_DELAY_MS = 40
PRINTER_12345 = "#12345 — Printer offline - front desk HP LaserJet"
CONTOSO_WORK = ("Regular", "System Engineer")  # example_app/demo.py
#: The journey under the demo's lenient rules and a strict tenant's (work type and role
#: required, no time for API members or on closed tickets, overlapping entries refused).
STRICT_TOO = pytest.mark.parametrize(
    "connectwise_sandbox_rules", ["lenient", "strict"], indirect=True
)


@pytest.fixture(scope="module")
def example(tmp_path_factory: Any, connectwise_sandbox_server: Any) -> Iterator[tuple[Any, str]]:
    """The example app (both tenants on the session's sandbox), served on loopback."""
    app = make_example_app(Path(tmp_path_factory.mktemp("example")), connectwise_sandbox_server)
    with serve(app) as url:
        yield app, url
    dispose(app)


@pytest.fixture
def site(example: tuple[Any, str], connectwise_sandbox: Any) -> str:
    return example[1]


@pytest.fixture
def app(example: tuple[Any, str]) -> Any:
    return example[0]


@pytest.fixture
def voice_rows_restored(app: Any) -> Iterator[None]:
    """The dashboard's voice settings as they were before the test (the example app lives for
    the module, so a journey run under two rule profiles starts from the same data)."""
    columns = ("phone_number", "voice_routing_policy", "dial_plan")
    with app.app_context():
        rows = db.session.execute(db.select(VoiceConfiguration)).scalars().all()
        before = {row.id: tuple(getattr(row, c) for c in columns) for row in rows}
    yield
    with app.app_context():
        for row in db.session.execute(db.select(VoiceConfiguration)).scalars().all():
            if row.id in before:
                for column, value in zip(columns, before[row.id], strict=True):
                    setattr(row, column, value)
        db.session.commit()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(8000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == []


def log_in(page: Any, site: str, email: str) -> None:
    page.goto(f"{site}/login")
    page.locator("#email").fill(email)
    page.locator("#password").fill(PASSWORD)
    page.locator("button[type=submit]").click()
    expect(page.locator("[data-testid=signed-in]")).to_be_visible()
    page.wait_for_load_state("load")


def pick_ticket(page: Any, field: str, text: str) -> int:
    """Type ``text`` into the ticket field and click the first suggestion; its ticket id."""
    box = page.locator(f"#{field}")
    box.click()
    box.press_sequentially(text, delay=KEY_DELAY_MS)
    first = page.locator(f"#{field}-listbox [role=option]").first
    expect(first).to_be_visible()
    ticket_id = int(str(first.get_attribute("id")).rsplit("-", 1)[1])
    first.click()
    # (the 3CX list page also copies the ticket into each delete form: data-cw-copied)
    hidden = page.locator(f"input[type=hidden][name={field}]:not([data-cw-copied])")
    expect(hidden).to_have_value(str(ticket_id))
    return ticket_id


def save_admin_form(page: Any) -> None:
    page.locator("input[type=submit][value=Save]").click()


@STRICT_TOO
@pytest.mark.usefixtures("voice_rows_restored")
def test_dashboard_voice_change_is_logged_with_time_and_status(site, page, connectwise_sandbox):
    log_in(page, site, CONTOSO_OPERATOR)
    page.get_by_role("link", name="sam.ortiz@contoso.example").click()
    expect(page.locator("#phone_number")).to_have_value("+1 425 555 0102")
    page.locator("#phone_number").fill("+1 425 555 0177")
    page.locator("#voice_routing_policy").select_option("Emergency-Only")
    ticket = pick_ticket(page, "ticket", "12345")
    assert ticket == 12345
    expect(page.locator("#ticket")).to_have_value(PRINTER_12345)
    notes_before = len(connectwise_sandbox.notes(12345))
    page.get_by_role("button", name="Save voice configuration").click()
    expect(page.locator(".alert-success", has_text="Logged to ticket")).to_contain_text(
        "Logged to ticket #12345: note added, 15 min logged, status set."
    )
    expect(page.locator(".alert-success", has_text="Voice configuration saved")).to_be_visible()
    notes = connectwise_sandbox.notes(12345)
    assert len(notes) == notes_before + 1
    assert notes[-1]["text"].startswith(
        "Voice configuration updated for sam.ortiz@contoso.example: "
        "Phone number: +1 425 555 0102 → +1 425 555 0177; "
        "Voice routing policy: International → Emergency-Only"
    )
    assert notes[-1]["member"]["identifier"] == "jdoe"
    entry = connectwise_sandbox.time_entries(12345)[-1]
    assert entry["actualHours"] == 0.25 and entry["member"]["identifier"] == "jdoe"
    # Contoso's time defaults, which a strict tenant requires, are on the entry.
    assert (entry["workType"]["name"], entry["workRole"]["name"]) == CONTOSO_WORK
    assert connectwise_sandbox.ticket(12345)["status"]["name"] == "In Progress"
    row = page.get_by_role("row", name="sam.ortiz@contoso.example")
    expect(row).to_contain_text("+1 425 555 0177")


def test_3cx_user_create_and_update_are_logged(site, page, app, connectwise_sandbox):
    log_in(page, site, FABRIKAM_OPERATOR)
    page.get_by_role("link", name="3CX Management").click()
    page.get_by_role("link", name="Users", exact=True).click()
    page.get_by_role("link", name="Create").first.click()
    page.locator("#extension").fill("303")
    page.locator("#first_name").fill("Lena")
    page.locator("#last_name").fill("Fischer")
    page.locator("#email").fill("lena.fischer@fabrikam.example")
    page.locator("#outbound_caller_id").fill("+1 813 555 0199")
    ticket = pick_ticket(page, "connectwise_ticket", "printer")
    status_before = connectwise_sandbox.ticket(ticket)["status"]["name"]
    save_admin_form(page)
    expect(page.locator(".alert-success", has_text="Logged to ticket")).to_contain_text(
        f"Logged to ticket #{ticket}: note added, 30 min logged."
    )
    note = connectwise_sandbox.notes(ticket)[-1]
    assert note["text"].startswith(
        "Created 3CX user ext. 303 (Lena Fischer)\n"
        '- Extension: "303"\n- First name: "Lena"\n- Last name: "Fischer"\n'
        '- Email: "lena.fischer@fabrikam.example"\n- Outbound caller ID: "+1 813 555 0199"'
    )
    assert "tenant" not in note["text"]
    assert note["member"]["identifier"] == "tech"
    entry = connectwise_sandbox.time_entries(ticket)[-1]
    assert entry["actualHours"] == 0.5 and entry["member"]["identifier"] == "tech"
    assert connectwise_sandbox.ticket(ticket)["status"]["name"] == status_before  # not configured

    with app.app_context():
        lena = db.session.execute(db.select(PhoneUser).filter_by(extension="303")).scalar_one()
        assert lena.tenant_id == "fabrikam"
    page.goto(f"{site}/admin/threecx_users/edit/?id={lena.id}")
    page.locator("#outbound_caller_id").fill("+1 813 555 0123")
    assert pick_ticket(page, "connectwise_ticket", "12346") == 12346
    save_admin_form(page)
    expect(page.locator(".alert-success", has_text="Logged to ticket")).to_contain_text(
        "Logged to ticket #12346: note added, 30 min logged."
    )
    assert connectwise_sandbox.notes(12346)[-1]["text"].startswith(
        "Updated 3CX user ext. 303 (Lena Fischer)\n"
        '- Outbound caller ID: "+1 813 555 0199" → "+1 813 555 0123"'
    )


def test_did_create_and_update_are_logged_and_move_the_status(site, page, connectwise_sandbox):
    log_in(page, site, CONTOSO_OPERATOR)
    page.goto(f"{site}/admin/threecx_dids/new/")
    page.locator("#number").fill("+1 425 555 0188")
    page.locator("#description").fill("Support hotline")
    page.locator("#destination_extension").select_option("201")
    pick_ticket(page, "connectwise_ticket", "12345")
    save_admin_form(page)
    expect(page.locator(".alert-success", has_text="Logged to ticket")).to_contain_text(
        "Logged to ticket #12345: note added, 15 min logged, status set."
    )
    assert connectwise_sandbox.notes(12345)[-1]["text"].startswith(
        'Created DID +1 425 555 0188\n- DID: "+1 425 555 0188"\n'
        '- Description: "Support hotline"\n- Destination extension: "201"'
    )
    assert connectwise_sandbox.ticket(12345)["status"]["name"] == "In Progress"
    assert connectwise_sandbox.time_entries(12345)[-1]["member"]["identifier"] == "jdoe"

    page.get_by_role("row", name="+1 425 555 0188").get_by_title("Edit Record").click()
    page.locator("#destination_extension").select_option("202")
    pick_ticket(page, "connectwise_ticket", "12345")
    save_admin_form(page)
    expect(page.locator(".alert-success", has_text="Logged to ticket")).to_be_visible()
    assert connectwise_sandbox.notes(12345)[-1]["text"].startswith(
        'Updated DID +1 425 555 0188\n- Destination extension: "201" → "202"'
    )


def test_an_operator_sees_nothing_of_the_other_tenant(site, page, app):
    log_in(page, site, CONTOSO_OPERATOR)
    api = f"{site}/api/admin/tenant/fabrikam/connectwise"
    answer = page.request.get(f"{api}/tickets/search?q=printer")
    assert answer.status == 403 and answer.json()["error"] == "forbidden"
    own = page.request.get(f"{site}/api/admin/tenant/contoso/connectwise/tickets/search?q=12345")
    assert own.status == 200 and own.json()[0]["id"] == 12345
    served = page.request.get(f"{site}/admin/").text()  # the field searches its own tenant only
    assert 'data-search-url="/api/admin/tenant/contoso/connectwise/tickets/search"' in served

    page.goto(f"{site}/admin/threecx_users/")
    expect(page.locator("table.model-list")).to_contain_text("Ortiz")
    expect(page.locator("table.model-list")).not_to_contain_text("Becker")
    with app.app_context():
        becker = db.session.execute(db.select(PhoneUser).filter_by(last_name="Becker")).scalar_one()
        silva = db.session.execute(
            db.select(VoiceConfiguration).filter_by(upn="ana.silva@fabrikam.example")
        ).scalar_one()
    page.goto(f"{site}/admin/threecx_users/edit/?id={becker.id}")
    expect(page.locator(".alert", has_text="Record does not exist")).to_be_visible()
    page.goto(f"{site}/admin/?upn={silva.upn}")
    expect(page.locator("#upn")).to_have_value("")
    assert silva.phone_number not in page.content()
    assert page.goto(f"{site}/admin/connectwise/credentials/").status == 403
    assert page.goto(f"{site}/admin/connectwise/flags/").status == 403


def test_with_the_flag_off_the_fields_are_gone_and_saving_works(
    site, page, app, connectwise_sandbox
):
    set_flag(app, "contoso", False)
    try:
        connectwise_sandbox.clear_requests()
        log_in(page, site, CONTOSO_OPERATOR)
        page.get_by_role("link", name="priya.nair@contoso.example").click()
        expect(page.locator("#phone_number")).to_be_visible()
        expect(page.locator("#ticket")).to_have_count(0)
        expect(page.get_by_text("ConnectWise ticket")).to_have_count(0)
        page.locator("#phone_number").fill("+1 425 555 0103")
        page.get_by_role("button", name="Save voice configuration").click()
        expect(page.locator(".alert-success")).to_contain_text(
            "Voice configuration saved for priya.nair@contoso.example"
        )
        expect(page.locator(".alert", has_text="Logged to ticket")).to_have_count(0)

        page.goto(f"{site}/admin/threecx_users/new/")
        expect(page.locator("#connectwise_ticket")).to_have_count(0)
        page.locator("#extension").fill("299")
        page.locator("#first_name").fill("Flag")
        page.locator("#last_name").fill("Off")
        save_admin_form(page)
        expect(page.locator(".alert-success")).to_contain_text("Record was successfully created")
        expect(page.locator("table.model-list")).to_contain_text("Flag")
        search = page.request.get(f"{site}/api/admin/tenant/contoso/connectwise/tickets/search?q=1")
        assert search.status == 404
        assert [r for r in connectwise_sandbox.requests if r.method == "POST"] == []
    finally:
        set_flag(app, "contoso", True)

    # The operator logs out; the tenant's admin sees the flag and, back on, the field.
    page.get_by_role("button", name="Log out").click()
    expect(page.locator(".alert-info")).to_contain_text("You are logged out.")
    log_in(page, site, CONTOSO_ADMIN)
    page.goto(f"{site}/admin/connectwise/flags/")
    expect(page.locator("table.model-list")).to_contain_text("contoso")
    page.goto(f"{site}/admin/")
    expect(page.locator("#ticket")).to_be_visible()


# ---- issue 14: the tenant's own tickets, checks before submit, status per board, minutes -------

CONTOSO_VOICE_TICKET = 12221  # Contoso Ltd, Voice Services, In Progress (time allowed)


def test_search_as_contoso_lists_only_contoso_tickets(site, page, connectwise_sandbox):
    word = "printer"
    open_with_word = [
        t
        for t in connectwise_sandbox.tickets()
        if word in t["summary"].lower() and not t.get("closedFlag")
    ]
    others = {t["company"]["name"] for t in open_with_word} - {"Contoso Ltd"}
    assert others, "the sandbox must hold open printer tickets of other companies"
    contoso = {t["id"] for t in open_with_word if t["company"]["name"] == "Contoso Ltd"}
    assert contoso

    log_in(page, site, CONTOSO_OPERATOR)
    box = page.locator("#ticket")
    box.click()
    with page.expect_response(lambda r: f"tickets/search?q={word}" in r.url):
        box.press_sequentially(word, delay=KEY_DELAY_MS)
    options = page.locator("#ticket-listbox [role=option]")
    expect(options.first).to_be_visible()
    texts = options.all_inner_texts()
    assert texts and all("Contoso Ltd" in text for text in texts), texts
    for name in others:
        assert not any(name in text for text in texts)
    shown = {int(str(o.get_attribute("id")).rsplit("-", 1)[1]) for o in options.all()}
    assert shown == contoso


def test_a_woodgrove_ticket_typed_by_number_is_refused_and_nothing_is_saved(
    site, page, app, connectwise_sandbox
):
    woodgrove = connectwise_sandbox.ticket(12460)
    assert woodgrove["company"]["name"] == "Woodgrove Bank" and not woodgrove["closedFlag"]
    notes_before = len(connectwise_sandbox.notes(12460))
    times_before = len(connectwise_sandbox.time_entries(12460))
    writes_before = len(connectwise_sandbox.writes())

    with app.app_context():
        phone_before = (
            db.session.execute(
                db.select(VoiceConfiguration).filter_by(upn="sam.ortiz@contoso.example")
            )
            .scalar_one()
            .phone_number
        )
    assert phone_before != "+1 425 555 0166"
    log_in(page, site, CONTOSO_OPERATOR)
    page.get_by_role("link", name="sam.ortiz@contoso.example").click()
    page.locator("#phone_number").fill("+1 425 555 0166")
    box = page.locator("#ticket")
    box.click()
    box.press_sequentially("12460", delay=KEY_DELAY_MS)  # no suggestion: typed, not picked
    expect(page.locator("input[type=hidden][name=ticket]")).to_have_value("12460")
    page.get_by_role("button", name="Save voice configuration").click()

    expect(page.locator("#voice-form")).to_contain_text(
        "Ticket #12460 belongs to Woodgrove Bank, not Contoso Ltd"
    )
    expect(page.locator(".alert-success")).to_have_count(0)
    assert len(connectwise_sandbox.notes(12460)) == notes_before
    assert len(connectwise_sandbox.time_entries(12460)) == times_before
    assert len(connectwise_sandbox.writes()) == writes_before
    with app.app_context():
        sam = db.session.execute(
            db.select(VoiceConfiguration).filter_by(upn="sam.ortiz@contoso.example")
        ).scalar_one()
        assert sam.phone_number == phone_before  # the voice change was not saved


@STRICT_TOO
@pytest.mark.usefixtures("voice_rows_restored")
def test_a_voice_services_change_logs_note_and_time_and_leaves_the_status(
    site, page, connectwise_sandbox
):
    ticket = connectwise_sandbox.ticket(CONTOSO_VOICE_TICKET)
    assert ticket["company"]["name"] == "Contoso Ltd"
    assert ticket["board"]["name"] == "Voice Services"
    status_before = ticket["status"]["name"]
    notes_before = len(connectwise_sandbox.notes(CONTOSO_VOICE_TICKET))
    times_before = len(connectwise_sandbox.time_entries(CONTOSO_VOICE_TICKET))

    log_in(page, site, CONTOSO_OPERATOR)
    page.get_by_role("link", name="dana.lee@contoso.example").click()
    page.locator("#dial_plan").select_option("UK-DialPlan")
    assert pick_ticket(page, "ticket", str(CONTOSO_VOICE_TICKET)) == CONTOSO_VOICE_TICKET
    page.get_by_role("button", name="Save voice configuration").click()

    expect(page.locator(".alert-success", has_text="Logged to ticket")).to_contain_text(
        f"Logged to ticket #{CONTOSO_VOICE_TICKET}: note added, 15 min logged. "
        "Status left as is: no status set for board Voice Services."
    )
    notes = connectwise_sandbox.notes(CONTOSO_VOICE_TICKET)
    assert len(notes) == notes_before + 1
    assert notes[-1]["text"].startswith(
        "Voice configuration updated for dana.lee@contoso.example: "
        "Dial plan: US-DialPlan → UK-DialPlan"
    )
    entries = connectwise_sandbox.time_entries(CONTOSO_VOICE_TICKET)
    assert len(entries) == times_before + 1 and entries[-1]["actualHours"] == 0.25
    assert connectwise_sandbox.ticket(CONTOSO_VOICE_TICKET)["status"]["name"] == status_before


@STRICT_TOO
@pytest.mark.usefixtures("voice_rows_restored")
def test_minutes_typed_on_the_dashboard_reach_the_time_entry(site, page, connectwise_sandbox):
    log_in(page, site, CONTOSO_OPERATOR)
    page.get_by_role("link", name="priya.nair@contoso.example").click()
    page.locator("#phone_number").fill("+1 425 555 0145")
    pick_ticket(page, "ticket", "12345")
    minutes = page.get_by_label("Minutes")
    expect(minutes).to_have_attribute("placeholder", "15")
    # The label sits level with its input under the host's Bootstrap (its label margin once
    # lifted it half a line above).
    label = page.locator("label", has_text="Minutes").bounding_box()
    box = minutes.bounding_box()
    assert label and box
    offset = (label["y"] + label["height"] / 2) - (box["y"] + box["height"] / 2)
    assert abs(offset) <= 3, (label, box)
    minutes.fill("45")
    times_before = len(connectwise_sandbox.time_entries(12345))
    page.get_by_role("button", name="Save voice configuration").click()
    expect(page.locator(".alert-success", has_text="Logged to ticket")).to_contain_text(
        "Logged to ticket #12345: note added, 45 min logged"
    )
    entries = connectwise_sandbox.time_entries(12345)
    assert len(entries) == times_before + 1
    assert entries[-1]["actualHours"] == 0.75 and entries[-1]["member"]["identifier"] == "jdoe"


def delete_row(page: Any, name: str) -> None:
    """Click the list row's delete button (accepting Flask-Admin's confirmation)."""
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("row", name=name).get_by_title("Delete Record").click()
    expect(page.locator(".alert", has_text="successfully deleted")).to_be_visible()


def phone_user_count(app: Any, extension: str) -> int:
    with app.app_context():
        return len(db.session.execute(db.select(PhoneUser).filter_by(extension=extension)).all())


def test_deleting_a_3cx_user_from_the_list_logs_it_only_with_a_ticket(
    site, page, app, connectwise_sandbox
):
    log_in(page, site, CONTOSO_OPERATOR)
    page.goto(f"{site}/admin/threecx_users/")
    picker = page.get_by_test_id("delete-ticket")
    expect(picker).to_contain_text("ConnectWise ticket for deletions (optional)")

    # Without a ticket: deleted, nothing written to ConnectWise.
    writes_before = len(connectwise_sandbox.writes())
    delete_row(page, "Reception")
    assert phone_user_count(app, "210") == 0
    assert len(connectwise_sandbox.writes()) == writes_before
    expect(page.locator(".alert", has_text="Logged to ticket")).to_have_count(0)

    # With a ticket: one "Deleted …" note on it.
    notes_before = len(connectwise_sandbox.notes(12345))
    assert pick_ticket(page, "connectwise_ticket", "12345") == 12345
    delete_row(page, "Sam")
    assert phone_user_count(app, "202") == 0
    expect(page.locator(".alert-success", has_text="Logged to ticket")).to_contain_text(
        "Logged to ticket #12345: note added"
    )
    notes = connectwise_sandbox.notes(12345)
    assert len(notes) == notes_before + 1
    assert notes[-1]["text"].startswith(
        'Deleted 3CX user ext. 202 (Sam Ortiz)\n- Extension: "202"\n- First name: "Sam"'
    )
    assert notes[-1]["member"]["identifier"] == "jdoe"


def test_bulk_deleting_3cx_users_with_a_ticket_logs_one_note_each(
    site, page, app, connectwise_sandbox
):
    log_in(page, site, FABRIKAM_OPERATOR)
    page.goto(f"{site}/admin/threecx_users/")
    ticket = pick_ticket(page, "connectwise_ticket", "12346")
    notes_before = len(connectwise_sandbox.notes(ticket))
    for name in ("Tom", "Ana"):
        page.get_by_role("row", name=name).locator("input.action-checkbox").check()
    page.get_by_role("button", name="With selected").or_(
        page.get_by_role("link", name="With selected")
    ).click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("link", name="Delete", exact=True).click()
    expect(page.locator(".alert", has_text="successfully deleted")).to_be_visible()
    assert phone_user_count(app, "301") == 0 and phone_user_count(app, "302") == 0
    texts = [n["text"] for n in connectwise_sandbox.notes(ticket)[notes_before:]]
    assert sorted(t.split("\n", 1)[0] for t in texts) == [
        "Deleted 3CX user ext. 301 (Tom Becker)",
        "Deleted 3CX user ext. 302 (Ana Silva)",
    ]
