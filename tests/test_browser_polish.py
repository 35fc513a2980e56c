"""Issue 16's operator polish where the behaviour is the widget's JavaScript or the browser's own
requests: a hint after one letter, a cut result list said so, no favicon 404 in the example."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.example_helpers import dispose, make_example_app
from tests.field_app import make_field_app, serve
from tests.serving import expect

pytestmark = pytest.mark.browser

KEY_DELAY_MS = 60


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(8000)
    yield page
    context.close()


def site_with(tmp_path: Path, sandbox: Any, **config: Any) -> Any:
    return make_field_app(f"sqlite:///{tmp_path / 'host.db'}", sandbox, **config)


def test_one_letter_gets_a_hint_and_a_cut_list_says_so(
    tmp_path: Path, page: Any, connectwise_sandbox: Any
) -> None:
    app = site_with(tmp_path, connectwise_sandbox, CONNECTWISE_SEARCH_LIMIT=2)
    with serve(app) as url:
        page.goto(f"{url}/voice")
        box = page.locator("#ticket")
        status = page.locator("#ticket-status")
        box.press_sequentially("p", delay=KEY_DELAY_MS)
        expect(status).to_have_text("Type at least 2 letters to search, or a ticket number.")
        box.press_sequentially("rinter", delay=KEY_DELAY_MS)
        expect(page.locator("#ticket-listbox [role=option]")).to_have_count(2)
        expect(status).to_have_text(
            "Showing the first 2 tickets; there may be more. Type more of the summary, or the "
            "ticket number, to narrow the search. Use the arrow keys to choose."
        )
        box.fill("")
        box.press_sequentially("1", delay=KEY_DELAY_MS)  # a number searches from one digit
        expect(status).not_to_contain_text("Type at least")
    with app.app_context():
        app.extensions["test_db"].engine.dispose()


def test_a_list_that_was_not_cut_gives_the_count(
    tmp_path: Path, page: Any, connectwise_sandbox: Any
) -> None:
    app = site_with(tmp_path, connectwise_sandbox)
    with serve(app) as url:
        page.goto(f"{url}/voice")
        page.locator("#ticket").press_sequentially("printer", delay=KEY_DELAY_MS)
        expect(page.locator("#ticket-status")).to_have_text(
            re.compile(r"^\d+ tickets found\. Use the arrow keys to choose\.$")
        )
    with app.app_context():
        app.extensions["test_db"].engine.dispose()


def test_the_example_app_has_a_favicon(tmp_path: Path, page: Any, connectwise_sandbox: Any) -> None:
    app = make_example_app(tmp_path, connectwise_sandbox)
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    try:
        with serve(app) as url:
            page.goto(f"{url}/login")
            page.wait_for_load_state("networkidle")
            icon = page.request.get(f"{url}/favicon.ico")
            assert icon.status == 200
            assert icon.headers["content-type"].startswith("image/svg+xml")
            assert page.locator("link[rel=icon]").count() == 1
    finally:
        dispose(app)
    assert missing == []
