"""No stored XSS: every admin page of the extension, and the ticket field, in real Chromium.

The sandbox answers hostile HTML in every display text (ticket summaries, company, board,
status and member names, note texts, the version) and in its error messages; the stored rows
hold it in every text column (credentials' last error and editor, flags' tenant and editor,
change-log operator, member, note text and step errors). Each page is rendered, its buttons
pressed, and no script may run: ``window.__xss`` stays undefined, no dialog opens and the
``<img src=x>`` is never requested.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from tests.admin_helpers import TENANT_A, make_admin_app
from tests.field_app import make_field_app as build_field_app
from tests.hostile import HOSTILE, HOSTILE_SHORT, is_formula, seed
from tests.serving import serve

pytestmark = pytest.mark.browser

CRED = "/admin/connectwise/credentials"
FLAGS = "/admin/connectwise/flags"
CHANGES = "/admin/connectwise/change-log"
VISIBLE = "<img src=x onerror=window.__xss=1;alert(1)>"  # the payload, shown as text


class Watch:
    """A page whose dialogs, page errors and requests for the payload's image are recorded."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.page.set_default_timeout(8000)
        self.dialogs: list[str] = []
        self.image_requests: list[str] = []
        self.errors: list[str] = []

        def on_dialog(dialog: Any) -> None:
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        self.page.on("dialog", on_dialog)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on(
            "request",
            lambda req: self.image_requests.append(req.url) if re.search(r"/x$", req.url) else None,
        )

    def check(self, where: str) -> str:
        """Assert no script ran on the current page; return its HTML."""
        self.page.wait_for_load_state("load")
        self.page.wait_for_timeout(150)  # time for an onerror/onload handler to fire
        assert self.page.evaluate("typeof window.__xss") == "undefined", where
        assert self.dialogs == [], where
        assert self.image_requests == [], where
        assert self.errors == [], where
        return str(self.page.content())

    def visit(self, url: str) -> str:
        answer = self.page.goto(url)
        assert answer is not None and answer.status == 200, (url, answer and answer.status)
        return self.check(url)

    def shows(self, text: str) -> bool:
        return bool(self.page.get_by_text(text, exact=False).count())


@pytest.fixture
def admin_site(tmp_path: Any, connectwise_sandbox: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    app = make_admin_app(f"sqlite:///{tmp_path / 'xss.db'}", WTF_CSRF_TIME_LIMIT=None)
    ids = seed(app, connectwise_sandbox, TENANT_A)
    with serve(app) as url:
        yield url, ids
    with app.app_context():
        app.extensions["test_db"].engine.dispose()


def test_no_admin_page_runs_hostile_connectwise_or_stored_text(
    admin_site, browser, connectwise_sandbox
):
    site, ids = admin_site
    watch = Watch(browser)
    page = watch.page
    # Log in once (the session remembers the tenant and role).
    watch.visit(f"{site}{CRED}/?as_tenant={TENANT_A}&as_role=superadmin")
    assert watch.shows(VISIBLE)  # the stored last error, as text

    # Credentials edit: loading the board statuses fails with a hostile message ...
    edit = f"{site}{CRED}/edit/?id={ids['credentials']}"
    connectwise_sandbox.inject_fault("service/boards", "status", status=403, message=HOSTILE)
    watch.visit(edit)
    assert watch.shows("The board statuses could not be loaded")
    assert watch.shows(VISIBLE)
    # ... then loads hostile board and status names into the select.
    watch.visit(edit)
    labels = page.locator("select[name=default_status_id] option").all_inner_texts()
    assert any(VISIBLE in label for label in labels), labels

    # Test connection from the edit page: a hostile error, then a hostile version.
    connectwise_sandbox.inject_fault("system/info", "status", status=403, message=HOSTILE)
    page.locator("form.cw-test-connection button[type=submit]").click()
    watch.check("test connection failed")
    assert watch.shows("the connection failed")
    page.locator("form.cw-test-connection button[type=submit]").click()
    watch.check("test connection passed")
    assert watch.shows("connected to ConnectWise")

    pages = [
        f"{CRED}/",
        f"{CRED}/?search={quote(HOSTILE)}",
        f"{CRED}/?flt0_0={quote(HOSTILE)}",
        f"{CRED}/new/",
        f"{CRED}/details/?id={ids['credentials']}",
        f"{FLAGS}/",
        f"{FLAGS}/new/",
        f"{FLAGS}/edit/?id={ids['flag']}",
        f"{CHANGES}/",
        f"{CHANGES}/?search={quote(HOSTILE_SHORT)}",
        f"{CHANGES}/details/?id={ids['change']}",
    ]
    for url in pages:
        watch.visit(f"{site}{url}")
    assert watch.shows(VISIBLE)  # the change's note text and errors, as text

    # Retry from the change's details page: every step fails with a hostile reason.
    connectwise_sandbox.inject_fault("**", "status", status=400, message=HOSTILE, count=20)
    page.locator("form.cw-retry button[type=submit]").click()
    watch.check("retry")
    connectwise_sandbox.clear_faults()

    # Flag row action: turning the hostile tenant on flashes its name.
    watch.visit(f"{site}{FLAGS}/")
    page.locator(
        f"form[action$='/toggle/']:has(input[name=id][value='{ids['flag']}']) button"
    ).click()
    watch.check("flag toggle")
    assert watch.shows('"><svg onload=window.__xss=1;alert(3)>')

    # The CSV export is a download (never rendered as HTML) and holds no formula.
    answer = page.request.get(f"{site}{CRED}/export/csv/")
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"].startswith("attachment")
    cells = [c for row in csv.reader(io.StringIO(answer.text())) for c in row]
    assert [c for c in cells if is_formula(c)] == []
    watch.context.close()


@pytest.fixture
def field_site(tmp_path: Any, connectwise_sandbox: Any) -> Iterator[str]:
    app = build_field_app(f"sqlite:///{tmp_path / 'field.db'}", connectwise_sandbox)
    connectwise_sandbox.prefix_text(HOSTILE + " ")
    with serve(app) as url:
        yield url
    with app.app_context():
        app.extensions["test_db"].engine.dispose()


def test_the_ticket_field_shows_hostile_summaries_as_text(field_site, browser):
    watch = Watch(browser)
    page = watch.page
    watch.visit(f"{field_site}/voice")
    box = page.locator("#ticket")
    with page.expect_response(lambda r: "tickets/search?q=printer" in r.url):
        box.press_sequentially("printer", delay=60)
    options = page.locator("#ticket-listbox [role=option]")
    options.first.wait_for()
    assert VISIBLE in options.first.inner_text()  # summary, company and status: as text
    watch.check("search results")
    options.first.click()
    page.locator("button[type=submit]").click()  # no UPN: the form comes back, ticket kept
    watch.check("re-rendered form")
    assert VISIBLE in page.locator("#ticket").input_value()
    assert VISIBLE in page.locator(".cw-ts-selected").inner_text()
    watch.context.close()
