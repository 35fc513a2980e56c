"""The ticket widget's plain words: rejected credentials say whom to ask (no "type a ticket
number", no status code), over-long search text is capped by the input and refused in words."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, url_for

from flask_connectwise.search import SEARCH_MAX_LENGTH
from tests.admin_helpers import seed_credentials
from tests.field_app import make_field_app, serve
from tests.hosts import TENANT_A
from tests.serving import expect

AUTH_FAILED = "ConnectWise rejected this tenant's credentials. Ask an administrator to check them."
TOO_LONG = f"Search text must be at most {SEARCH_MAX_LENGTH} characters."


@pytest.fixture
def app(tmp_path, connectwise_sandbox) -> Iterator[Flask]:
    app = make_field_app(f"sqlite:///{tmp_path / 'host.db'}", connectwise_sandbox)
    yield app
    with app.app_context():
        app.extensions["test_db"].engine.dispose()


def search_url(app: Flask) -> str:
    with app.test_request_context("/"):
        return url_for("connectwise_api.search", tenant_id=TENANT_A)


def spoil_keys(app: Flask, sandbox: Any, *, cloud: bool) -> None:
    seed_credentials(app, TENANT_A, sandbox, privateKey="wrong-private-key-0000")
    sandbox.set_cloud_auth_404(cloud)


@pytest.mark.parametrize("cloud", [False, True], ids=["401", "cloud-404"])
def test_search_with_rejected_keys_answers_plain_words(app, connectwise_sandbox, cloud):
    spoil_keys(app, connectwise_sandbox, cloud=cloud)
    answer = app.test_client().get(search_url(app) + "?q=printer")
    body = answer.get_json()
    assert body["error"] == "connectwise_auth_failed"
    assert body["message"] == AUTH_FAILED
    assert "HTTP" not in answer.get_data(as_text=True)


def test_too_long_search_text_is_refused_in_plain_words(app):
    http = app.test_client()
    answer = http.get(search_url(app) + "?q=" + "a" * (SEARCH_MAX_LENGTH + 1))
    assert answer.status_code == 400
    assert answer.get_json()["message"] == TOO_LONG
    assert http.get(search_url(app) + "?q=" + "a" * SEARCH_MAX_LENGTH).status_code == 200


def test_the_rendered_input_carries_the_servers_limit(app):
    page = app.test_client().get("/voice").get_data(as_text=True)
    (tag,) = re.findall(r'<input[^>]*role="combobox"[^>]*>', page)
    assert f'maxlength="{SEARCH_MAX_LENGTH}"' in tag


# -- in the browser --------------------------------------------------------------------------


@pytest.fixture
def site(app) -> Iterator[str]:
    with serve(app) as url:
        yield url


@pytest.fixture
def page(browser) -> Iterator[Any]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(8000)
    yield page
    context.close()


@pytest.mark.browser
@pytest.mark.parametrize("cloud", [False, True], ids=["401", "cloud-404"])
def test_widget_with_rejected_keys_says_to_ask_an_administrator(
    app, site, page, connectwise_sandbox, cloud
):
    spoil_keys(app, connectwise_sandbox, cloud=cloud)
    page.goto(f"{site}/voice")
    page.locator("#ticket").press_sequentially("printer", delay=20)
    status = page.locator("#ticket-status")
    expect(status).to_have_text(AUTH_FAILED)  # no "type a ticket number", no "HTTP 404"
    expect(page.locator(".cw-ticket-search")).to_have_class(re.compile("cw-ts-is-error"))


@pytest.mark.browser
def test_widget_input_is_capped_at_the_servers_limit(site, page):
    page.goto(f"{site}/voice")
    box = page.locator("#ticket")
    expect(box).to_have_attribute("maxlength", str(SEARCH_MAX_LENGTH))
    box.focus()
    page.keyboard.insert_text("a" * 2000)
    assert len(box.input_value()) == SEARCH_MAX_LENGTH


@pytest.mark.browser
def test_widget_shows_the_servers_refusal_of_long_text_plainly(site, page):
    page.goto(f"{site}/voice")
    box = page.locator("#ticket")
    box.evaluate("el => el.removeAttribute('maxlength')")  # an older page, or a pasted value
    box.fill("a" * (SEARCH_MAX_LENGTH + 1))
    expect(page.locator("#ticket-status")).to_have_text(TOO_LONG)
