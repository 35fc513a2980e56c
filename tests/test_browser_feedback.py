"""Operator feedback in real headless Chromium: the ticket widget holds its form's submit
buttons ("Saving…") while the form posts, so a double click sends one POST and logs once; the
buttons come back when the page is shown again or when the submit did not happen. The page
runs under a strict nonce-based CSP (no inline script or style allowed)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from flask import g, request

from tests.field_app import change_rows, make_field_app, serve
from tests.hosts import TENANT_A
from tests.serving import expect

pytestmark = pytest.mark.browser

LATENCY = 0.3  # per sandbox call: the save takes a few of them, long enough to be seen


@pytest.fixture
def host(tmp_path, connectwise_sandbox) -> Iterator[tuple[Any, str]]:
    app = make_field_app(f"sqlite:///{tmp_path / 'host.db'}", connectwise_sandbox)
    app.config["CONNECTWISE_INLINE_WAIT"] = 30.0  # the outcome on this page despite the latency

    @app.before_request
    def nonce() -> None:
        g.csp_nonce = secrets.token_urlsafe(16)

    @app.after_request
    def strict_csp(response: Any) -> Any:
        if response.mimetype == "text/html" and request.path == "/voice":  # (not Flask-Admin's)
            response.headers["Content-Security-Policy"] = (
                f"default-src 'self'; script-src 'nonce-{g.csp_nonce}'; "
                f"style-src 'self' 'nonce-{g.csp_nonce}'; object-src 'none'; base-uri 'none'"
            )
        return response

    with serve(app) as url:
        yield app, url
    with app.app_context():
        app.extensions["test_db"].engine.dispose()


@pytest.fixture
def page(browser) -> Iterator[Any]:
    context = browser.new_context()
    context.add_init_script(RECORDER)
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
    page.posts = []  # type: ignore[attr-defined]
    page.on(
        "request",
        lambda req: page.posts.append(req.url) if req.method == "POST" else None,  # type: ignore[attr-defined]
    )
    yield page
    context.close()
    assert problems == []


#: Installed in every page: records each change of the submit buttons' state (text, disabled,
#: aria-disabled, the form's aria-busy, the live region) in sessionStorage, so the states seen
#: while the form posted can be read after the next page loaded (a locator or an evaluate
#: would wait for that navigation).
RECORDER = """
(() => {
  const key = 'cw-seen';
  const record = () => { try {
    const seen = JSON.parse(sessionStorage.getItem(key) || '[]');
    document.querySelectorAll('form [type=submit]').forEach((b) => {
      const live = b.form && b.form.querySelector('.cw-saving-status[role=status]');
      seen.push({name: b.name || '', text: (b.tagName === 'INPUT' ? b.value : b.textContent).trim(),
        disabled: b.disabled, ariaDisabled: b.getAttribute('aria-disabled'),
        busy: b.form ? b.form.getAttribute('aria-busy') : null,
        live: live ? live.textContent : null});
    });
    sessionStorage.setItem(key, JSON.stringify(seen));
  } catch (e) { /* a page without storage (an error page) */ } };
  document.addEventListener('DOMContentLoaded', () => {
    new MutationObserver(record).observe(document.body,
      {subtree: true, attributes: true, childList: true, characterData: true});
  });
})();
"""


def seen_while_posting(page: Any) -> list[dict[str, Any]]:
    """The recorded button states in which the button was held ("Saving…")."""
    seen = page.evaluate("JSON.parse(sessionStorage.getItem('cw-seen') || '[]')")
    return [state for state in seen if state["text"] == "Saving…"]


def button_state(page: Any) -> dict[str, Any]:
    return dict(
        page.evaluate(
            """() => { const b = document.querySelector('form [type=submit]');
            return {text: b.textContent.trim(), disabled: b.disabled,
                    ariaDisabled: b.getAttribute('aria-disabled'),
                    busy: b.form.getAttribute('aria-busy')}; }"""
        )
    )


def fill_voice_form(page: Any, site: str) -> Any:
    page.goto(f"{site}/voice")
    expect(page.locator("[data-cw-ticket-search][data-cw-ready]")).to_have_count(1)
    page.locator("#upn").fill("jane@example.com")
    page.locator("#ticket").fill("12345")
    return page.get_by_role("button", name="Save")


def test_double_click_save_posts_once_shows_saving_and_the_outcome(host, page, connectwise_sandbox):
    app, site = host
    notes_before = len(connectwise_sandbox.notes(12345))
    save = fill_voice_form(page, site)
    connectwise_sandbox.set_latency(LATENCY)
    save.dblclick(no_wait_after=True)
    expect(page.locator(".flash-success")).to_have_text(
        "Logged to ticket #12345: note added, 15 min logged.", timeout=20000
    )
    held = seen_while_posting(page)
    assert held and held[-1] == {
        "name": "",
        "text": "Saving…",
        "disabled": True,
        "ariaDisabled": "true",
        "busy": "true",
        "live": "Saving…",
    }
    connectwise_sandbox.set_latency(0)
    assert page.posts == [f"{site}/voice"]  # type: ignore[attr-defined]
    assert len(change_rows(app)) == 1
    assert len(connectwise_sandbox.notes(12345)) == notes_before + 1
    expect(page.get_by_role("button", name="Save")).to_be_enabled()


def test_the_buttons_come_back_when_the_page_is_shown_again(host, page, connectwise_sandbox):
    _app, site = host
    fill_voice_form(page, site)
    connectwise_sandbox.set_latency(LATENCY)
    # One script in the page, before the slow POST's answer arrives: submit, let the buttons
    # be held, then what the back/forward cache does when the operator comes back.
    held, shown = page.evaluate(
        """async () => {
          const b = document.querySelector('form [type=submit]');
          const state = () => ({text: b.textContent.trim(), disabled: b.disabled,
            ariaDisabled: b.getAttribute('aria-disabled'), busy: b.form.getAttribute('aria-busy')});
          b.click();
          await new Promise((done) => setTimeout(done, 50));
          const held = state();
          window.dispatchEvent(new PageTransitionEvent('pageshow', {persisted: true}));
          return [held, state()];
        }"""
    )
    assert held == {"text": "Saving…", "disabled": True, "ariaDisabled": "true", "busy": "true"}
    assert shown == {"text": "Save", "disabled": False, "ariaDisabled": None, "busy": None}
    expect(page.locator(".flash-success")).to_be_visible(timeout=20000)
    connectwise_sandbox.set_latency(0)


def test_a_blocked_submit_keeps_the_buttons(host, page):
    _app, site = host
    page.goto(f"{site}/voice")
    # The browser's own validation stops the submit: nothing posts, nothing is held.
    page.evaluate(
        "document.querySelector('form').removeAttribute('novalidate');"
        "document.getElementById('upn').required = true"
    )
    page.get_by_role("button", name="Save").click()
    page.wait_for_timeout(100)
    expect(page.get_by_role("button", name="Save")).to_be_enabled()
    # Another script cancels the submit: the buttons come back at once.
    page.evaluate(
        "document.querySelector('form').addEventListener('submit', e => e.preventDefault())"
    )
    page.locator("#upn").fill("jane@example.com")
    page.get_by_role("button", name="Save").click()
    page.wait_for_timeout(100)
    button = page.locator("form button[type=submit]")
    expect(button).to_have_text("Save")
    expect(button).to_be_enabled()
    assert page.posts == []  # type: ignore[attr-defined]


def test_flask_admin_named_submit_buttons_still_send_their_name(host, page, connectwise_sandbox):
    """Holding happens after the browser took the form's values: "Save and Continue Editing"
    (a named input) still reaches Flask-Admin, which stays on the edit page."""
    app, site = host
    page.goto(f"{site}/admin/device/edit/?id=1")
    page.locator("#extension").fill("209")
    page.locator("#connectwise_ticket").fill("12345")
    connectwise_sandbox.set_latency(LATENCY)
    page.locator("input[type=submit][name=_continue_editing]").click(no_wait_after=True)
    expect(page.locator(".alert", has_text="Logged to ticket #12345")).to_be_visible(timeout=20000)
    held = seen_while_posting(page)
    assert "_continue_editing" in {s["name"] for s in held}  # every submit button is held
    assert all(s["disabled"] and s["ariaDisabled"] == "true" for s in held)
    connectwise_sandbox.set_latency(0)
    assert "/admin/device/edit/" in page.url
    expect(page.locator("#extension")).to_have_value("209")
    assert len(change_rows(app)) == 1


def test_the_flag_turned_off_while_the_form_was_open_is_a_warning(host, page, connectwise_sandbox):
    app, site = host
    app.extensions["test_cw"].tenant_name(lambda tenant: "Contoso")
    save = fill_voice_form(page, site)
    with app.app_context():
        app.extensions["test_cw"].tenants.set_flag(TENANT_A, False)
    notes_before = len(connectwise_sandbox.notes(12345))
    save.click()
    expect(page.locator(".flash-warning")).to_have_text(
        "Not logged to #12345: the ConnectWise integration is off for Contoso"
    )
    assert change_rows(app) == [] and len(connectwise_sandbox.notes(12345)) == notes_before


@pytest.fixture
def example_site(tmp_path, connectwise_sandbox) -> Iterator[str]:
    from tests.example_helpers import dispose, make_example_app

    app = make_example_app(tmp_path, connectwise_sandbox, CONNECTWISE_INLINE_WAIT=30.0)
    with serve(app) as url:
        yield url
    dispose(app)


def test_double_click_on_the_example_dashboard_logs_once_with_the_outcome(
    example_site, page, connectwise_sandbox
):
    from tests.example_helpers import CONTOSO_OPERATOR, PASSWORD

    page.goto(f"{example_site}/login")
    page.locator("#email").fill(CONTOSO_OPERATOR)
    page.locator("#password").fill(PASSWORD)
    page.locator("button[type=submit]").click()
    page.goto(f"{example_site}/admin/?upn=sam.ortiz@contoso.example")
    expect(page.locator("[data-cw-ticket-search][data-cw-ready]")).to_have_count(1)
    page.locator("#phone_number").fill("+1 425 555 0166")
    page.locator("#ticket").fill("12345")
    notes_before = len(connectwise_sandbox.notes(12345))
    page.posts.clear()  # type: ignore[attr-defined]
    connectwise_sandbox.set_latency(LATENCY)
    page.get_by_role("button", name="Save voice configuration").dblclick(no_wait_after=True)
    expect(page.locator(".alert-success", has_text="Logged to ticket")).to_contain_text(
        "Logged to ticket #12345: note added, 15 min logged, status set.", timeout=20000
    )
    connectwise_sandbox.set_latency(0)
    expect(page.get_by_text("Nothing changed")).to_have_count(0)
    assert len(page.posts) == 1  # type: ignore[attr-defined]
    assert len(connectwise_sandbox.notes(12345)) == notes_before + 1
    assert seen_while_posting(page)
