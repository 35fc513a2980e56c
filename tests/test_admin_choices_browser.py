"""Picking a ConnectWise company in the admin credentials form, in real Chromium."""

from __future__ import annotations

import pytest

from tests.admin_helpers import TENANT_A, make_admin_app, seed_credentials
from tests.serving import serve

pytestmark = pytest.mark.browser

CRED = "/admin/connectwise/credentials"


def test_an_admin_picks_contoso_from_a_search_and_saves_it(tmp_path, browser, connectwise_sandbox):
    app = make_admin_app(f"sqlite:///{tmp_path / 'pick.db'}", WTF_CSRF_TIME_LIMIT=None)
    row_id = seed_credentials(app, TENANT_A, connectwise_sandbox)
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(8000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        with serve(app) as site:
            page.goto(f"{site}{CRED}/edit/?id={row_id}&as_tenant={TENANT_A}&as_role=admin")
            page.fill("#companies-search", "Cont")
            page.click(".cw-company-search-button")
            page.click(".cw-company-result:has-text('Contoso Ltd')")
            assert page.is_checked("input[name=company_scope][value=listed]")
            page.click("input[type=submit][value=Save]")
            page.wait_for_load_state("load")
            assert errors == []
            with app.app_context():
                saved = app.extensions["test_cw"].tenants.settings(TENANT_A)
            assert saved.company_scope == "listed"
            assert [(c.id, c.name) for c in saved.companies] == [(250, "Contoso Ltd")]
    finally:
        context.close()
