"""The field's per-change minutes input in real headless Chromium (issue 14 item 2)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.field_app import make_field_app, serve
from tests.serving import expect

pytestmark = pytest.mark.browser


@pytest.fixture
def site(tmp_path, connectwise_sandbox) -> Iterator[str]:
    app = make_field_app(f"sqlite:///{tmp_path / 'host.db'}", connectwise_sandbox)
    with serve(app) as url:
        yield url
    with app.app_context():
        app.extensions["test_db"].engine.dispose()


def test_minutes_typed_after_the_ticket_reach_the_time_entry(browser, site, connectwise_sandbox):
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(8000)
        page.goto(f"{site}/voice")
        minutes = page.get_by_label("Minutes")
        expect(minutes).to_have_attribute("placeholder", "15")
        expect(minutes).to_have_attribute("max", "480")
        page.locator("#upn").fill("jane@example.com")
        with page.expect_response(lambda r: "tickets/search?q=12345" in r.url):
            page.locator("#ticket").press_sequentially("12345", delay=80)
        expect(page.locator("#ticket-listbox [role=option]").first).to_be_visible()
        page.keyboard.press("ArrowDown")
        page.keyboard.press("Enter")
        expect(page.locator("#ticket-status")).to_have_text("Ticket #12345 selected")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.name") == "ticket-minutes"
        page.keyboard.type("481")
        page.keyboard.press("Enter")  # the page's form is novalidate: the server checks
        expect(page.locator("#ticket-error")).to_have_text(
            "Minutes must be a whole number between 1 and 480"
        )
        expect(minutes).to_have_attribute("aria-invalid", "true")
        expect(minutes).to_have_value("481")
        # Only the minutes were wrong: the ticket stays selected.
        expect(page.locator("#ticket")).to_have_value(
            "#12345 — Printer offline - front desk HP LaserJet"
        )
        minutes.fill("45")
        times_before = len(connectwise_sandbox.time_entries(12345))
        page.locator("button[type=submit]").click()
        expect(page.locator(".flash-success")).to_have_text(
            "Logged to ticket #12345: note added, 45 min logged."
        )
        entries = connectwise_sandbox.time_entries(12345)
        assert len(entries) == times_before + 1 and entries[-1]["actualHours"] == 0.75
    finally:
        context.close()
