"""TicketSearchField in real headless Chromium, in a plain Flask-WTF page and in Flask-Admin."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.field_app import make_field_app, serve
from tests.serving import expect

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
NPM_PREFIX = ROOT / ".cache" / "npm"
AXE_JS = NPM_PREFIX / "node_modules" / "axe-core" / "axe.min.js"
#: The same command scripts/test.sh runs before the suite.
NPM_INSTALL = [
    "npm",
    "install",
    "--prefix",
    str(NPM_PREFIX),
    "--no-audit",
    "--no-fund",
    "--no-save",
    "axe-core@4",
]
KEY_DELAY_MS = 80
PRINTER_12345 = "#12345 — Printer offline - front desk HP LaserJet"


@pytest.fixture
def site(tmp_path, connectwise_sandbox) -> Iterator[str]:
    app = make_field_app(f"sqlite:///{tmp_path / 'host.db'}", connectwise_sandbox)
    with serve(app) as url:
        yield url
    with app.app_context():
        app.extensions["test_db"].engine.dispose()


@pytest.fixture
def page(browser) -> Iterator[Any]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(8000)
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on(
        "console",
        lambda msg: (
            problems.append(f"console {msg.type}: {msg.text}")
            if msg.type == "error" and not msg.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on(
        "response",
        lambda r: (
            problems.append(f"{r.status} {r.url}")
            if r.status >= 400
            and not r.url.endswith("/favicon.ico")
            and "/tickets/search" not in r.url
            else None
        ),
    )
    page.search_requests = []  # type: ignore[attr-defined]
    page.on(
        "request",
        lambda req: (
            page.search_requests.append(req.url)  # type: ignore[attr-defined]
            if "/tickets/search" in req.url
            else None
        ),
    )
    yield page
    context.close()
    assert problems == []


def sandbox_searches(sandbox: Any) -> list[Any]:
    return [r for r in sandbox.requests if r.method == "GET" and r.path == "service/tickets"]


def options(page: Any, field: str = "ticket") -> Any:
    return page.locator(f"#{field}-listbox [role=option]")


def submitted_value(page: Any, name: str = "ticket") -> str:
    return str(page.locator(f"input[type=hidden][name={name}]").input_value())


def test_typing_a_summary_fragment_lists_matching_tickets_with_one_request(
    site, page, connectwise_sandbox
):
    page.goto(f"{site}/voice")
    box = page.locator("#ticket")
    connectwise_sandbox.clear_requests()
    box.press_sequentially("printer", delay=KEY_DELAY_MS)
    expect(page.locator("#ticket-listbox")).to_be_visible()
    expect(box).to_have_attribute("aria-expanded", "true")
    titles = options(page).locator(".cw-ts-title").all_inner_texts()
    assert 1 < len(titles) <= 25
    assert all(re.match(r"^#\d+ — .*printer", t, re.IGNORECASE) for t in titles), titles
    metas = options(page).locator(".cw-ts-meta").all_inner_texts()
    assert all(" · " in m for m in metas)  # company · status
    expect(page.locator("#ticket-status")).to_have_text(
        f"{len(titles)} tickets found. Use the arrow keys to choose."
    )
    assert len(sandbox_searches(connectwise_sandbox)) == 1
    assert len(page.search_requests) == 1

    box.fill("")
    expect(page.locator("#ticket-listbox")).to_be_hidden()
    box.press_sequentially("printer", delay=KEY_DELAY_MS)
    expect(page.locator("#ticket-listbox")).to_be_visible()
    assert options(page).count() == len(titles)
    page.wait_for_timeout(400)  # longer than the debounce: nothing else is on its way
    assert len(sandbox_searches(connectwise_sandbox)) == 1
    assert len(page.search_requests) == 1


def test_typing_a_number_finds_that_ticket(site, page):
    page.goto(f"{site}/voice")
    page.locator("#ticket").press_sequentially("12345", delay=KEY_DELAY_MS)
    expect(options(page).first).to_contain_text(PRINTER_12345)
    assert options(page).first.get_attribute("id") == "ticket-listbox-opt-12345"


def test_no_results_and_error_states(site, page, connectwise_sandbox):
    page.goto(f"{site}/voice")
    box = page.locator("#ticket")
    box.press_sequentially("zzqqxx", delay=20)
    expect(page.locator("#ticket-status")).to_have_text("No tickets found")
    expect(box).to_have_attribute("aria-expanded", "false")
    # A refusal (400) is a failed search; an outage (500) says to type a number (issue 15).
    connectwise_sandbox.inject_fault("service/tickets", "status", status=400, count=10)
    box.fill("")
    box.press_sequentially("fuser", delay=20)
    expect(page.locator("#ticket-status")).to_contain_text("Ticket search failed")
    expect(page.locator(".cw-ticket-search")).to_have_class(re.compile("cw-ts-is-error"))
    connectwise_sandbox.clear_faults()
    connectwise_sandbox.inject_fault("service/tickets", "status", status=500, count=10)
    box.fill("")
    box.press_sequentially("fuses", delay=20)
    expect(page.locator("#ticket-status")).to_have_text(
        "ConnectWise is unavailable; type a ticket number"
    )
    expect(page.locator(".cw-ticket-search")).to_have_class(re.compile("cw-ts-is-error"))


def test_keyboard_only_selection_survives_a_failed_validation_and_logs_once(
    site, page, connectwise_sandbox
):
    page.goto(f"{site}/voice")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "upn"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "ticket"
    with page.expect_response(lambda r: "tickets/search?q=printer" in r.url):
        page.keyboard.type("printer", delay=KEY_DELAY_MS)
    box = page.locator("#ticket")
    expect(page.locator("#ticket-listbox")).to_be_visible()
    expect(page.locator("#ticket-status")).to_contain_text("tickets found")
    count = options(page).count()
    ids = [options(page).nth(i).get_attribute("id") for i in range(count)]

    page.keyboard.press("ArrowDown")
    expect(box).to_have_attribute("aria-activedescendant", ids[0])
    page.keyboard.press("ArrowDown")
    expect(box).to_have_attribute("aria-activedescendant", ids[1])
    expect(options(page).nth(1)).to_have_attribute("aria-selected", "true")
    page.keyboard.press("End")
    expect(box).to_have_attribute("aria-activedescendant", ids[-1])
    page.keyboard.press("Home")
    expect(box).to_have_attribute("aria-activedescendant", ids[0])
    page.keyboard.press("ArrowUp")
    expect(box).to_have_attribute("aria-activedescendant", ids[-1])
    page.keyboard.press("Escape")
    expect(box).to_have_attribute("aria-expanded", "false")
    assert box.get_attribute("aria-activedescendant") is None
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    expect(box).to_have_attribute("aria-activedescendant", ids[1])
    assert page.evaluate("document.activeElement.id") == "ticket"
    label = options(page).nth(1).locator(".cw-ts-title").inner_text()
    ticket_id = int(ids[1].rsplit("-", 1)[1])
    page.keyboard.press("Enter")
    expect(page.locator("#ticket-listbox")).to_be_hidden()
    expect(box).to_have_value(label)
    assert submitted_value(page) == str(ticket_id)
    expect(page.locator("#ticket-status")).to_have_text(f"Ticket #{ticket_id} selected")

    # Enter again submits; the user principal name is missing, so the page comes back.
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    expect(page.locator(".error, #ticket-error")).to_have_count(0)
    expect(page.locator("#ticket")).to_have_value(label)
    assert submitted_value(page) == str(ticket_id)
    assert page.locator("#upn").get_attribute("required") is not None

    notes_before = len(connectwise_sandbox.notes(ticket_id))
    times_before = len(connectwise_sandbox.time_entries(ticket_id))
    page.locator("#upn").focus()
    page.keyboard.type("jane@example.com")
    page.keyboard.press("Enter")
    expect(page.locator(".flash-success")).to_have_text(
        f"Logged to ticket #{ticket_id}: note added, 15 min logged."
    )
    notes = connectwise_sandbox.notes(ticket_id)
    assert len(notes) == notes_before + 1
    assert notes[-1]["text"].startswith("Voice configuration updated for jane@example.com")
    assert len(connectwise_sandbox.time_entries(ticket_id)) == times_before + 1


def test_works_without_javascript(browser, site, connectwise_sandbox):
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{site}/voice")
        page.locator("#upn").fill("jane@example.com")
        page.locator("#ticket").fill("#12345")
        before = len(connectwise_sandbox.notes(12345))
        page.locator("button[type=submit]").click()
        expect(page.locator(".flash-success")).to_have_text(
            "Logged to ticket #12345: note added, 15 min logged."
        )
        assert len(connectwise_sandbox.notes(12345)) == before + 1
    finally:
        context.close()


def test_flask_admin_create_and_edit_with_the_mouse(site, page, connectwise_sandbox):
    page.goto(f"{site}/admin/device/new/")
    page.locator("#name").fill("sip-02")
    page.locator("#extension").fill("202")
    box = page.locator("#connectwise_ticket")
    box.click()
    box.press_sequentially("12345", delay=KEY_DELAY_MS)
    options(page, "connectwise_ticket").first.click()
    expect(box).to_have_value(PRINTER_12345)
    assert page.evaluate("document.activeElement.id") == "connectwise_ticket"
    assert submitted_value(page, "connectwise_ticket") == "12345"
    before = len(connectwise_sandbox.notes(12345))
    page.locator("input[type=submit][value=Save]").click()
    expect(page.locator(".alert-success", has_text="Logged to ticket")).to_contain_text(
        "Logged to ticket #12345: note added, 15 min logged."
    )
    notes = connectwise_sandbox.notes(12345)
    assert len(notes) == before + 1
    assert notes[-1]["text"].startswith('Created Device #2\n- Name: "sip-02"\n- Extension: "202"')

    page.goto(f"{site}/admin/device/edit/?id=1")
    page.locator("#extension").fill("205")
    box = page.locator("#connectwise_ticket")
    box.press_sequentially("printer", delay=KEY_DELAY_MS)
    first = options(page, "connectwise_ticket").first
    first.hover()
    expect(first).to_have_attribute("aria-selected", "true")
    ticket_id = int(str(first.get_attribute("id")).rsplit("-", 1)[1])
    first.click()
    before = len(connectwise_sandbox.notes(ticket_id))
    page.locator("input[type=submit][value=Save]").click()
    expect(page.locator(".alert-success", has_text="Logged to ticket")).to_contain_text(
        f"Logged to ticket #{ticket_id}: note added, 15 min logged."
    )
    notes = connectwise_sandbox.notes(ticket_id)
    assert len(notes) == before + 1
    assert notes[-1]["text"].startswith('Updated Device #1\n- Extension: "201" → "205"')


def axe_script() -> Path:
    if not AXE_JS.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("axe-core is missing and npm is not installed: " + " ".join(NPM_INSTALL))
        subprocess.run([npm, *NPM_INSTALL[1:]], check=True, timeout=180, capture_output=True)
    assert AXE_JS.exists(), "npm did not install axe-core"
    return AXE_JS


def run_axe(page: Any, context: str = "document") -> list[dict[str, Any]]:
    page.add_script_tag(path=str(axe_script()))
    result = page.evaluate(
        f"""async () => {{
            const r = await axe.run({context}, {{resultTypes: ["violations"]}});
            return r.violations.map(v => ({{id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => n.html + " :: " + n.failureSummary)}}));
        }}"""
    )
    return list(result)


def test_accessibility_with_results_shown(site, page):
    page.goto(f"{site}/voice")
    page.locator("#ticket").press_sequentially("printer", delay=20)
    expect(page.locator("#ticket-listbox")).to_be_visible()
    page.keyboard.press("ArrowDown")
    expect(page.locator("#ticket")).to_have_attribute("aria-activedescendant", re.compile("opt"))
    violations = run_axe(page)
    assert violations == [], json.dumps(violations, indent=1, ensure_ascii=False)

    page.goto(f"{site}/admin/device/new/")
    page.locator("#connectwise_ticket").press_sequentially("printer", delay=20)
    expect(page.locator("#connectwise_ticket-listbox")).to_be_visible()
    page.keyboard.press("ArrowDown")
    violations = run_axe(page, "document.querySelector('.cw-ticket-search')")
    assert violations == [], json.dumps(violations, indent=1, ensure_ascii=False)
