"""Hostile text in the admin views: every page escapes it, every export neutralises formulas.

ConnectWise (the sandbox) answers HTML in every display text and in its error messages, and
every stored text column holds HTML or a spreadsheet formula. The browser version of the XSS
check is tests/test_admin_browser_xss.py.
"""

from __future__ import annotations

import csv
import io
from typing import Any
from urllib.parse import quote

import pytest
from markupsafe import Markup
from wtforms import StringField

from flask_connectwise.admin import (
    ChangeLogView,
    ConnectWiseAdminForm,
    CredentialsView,
    FeatureFlagView,
    TenantScopedView,
    csv_safe,
)
from flask_connectwise.extension import state
from tests.admin_helpers import TENANT_A, AdminUser, make_admin_app, seed_credentials
from tests.hostile import (
    FORMULAS,
    HOSTILE,
    HOSTILE_SHORT,
    HOSTILE_TENANT,
    PAYLOADS,
    is_formula,
    make_change,
    no_raw_payload,
    seed,
)

CRED = "/admin/connectwise/credentials"
FLAGS = "/admin/connectwise/flags"
CHANGES = "/admin/connectwise/change-log"
ESCAPED = "&lt;img src=x onerror=window.__xss=1;alert(1)&gt;"


@pytest.fixture
def app(tmp_path: Any) -> Any:
    app = make_admin_app(f"sqlite:///{tmp_path / 'hostile.db'}")
    yield app
    with app.app_context():
        app.extensions["test_db"].engine.dispose()


def page(user: AdminUser, url: str) -> str:
    answer = user.get(url)
    assert answer.status_code == 200, (url, answer.status_code)
    html = answer.get_data(as_text=True)
    assert no_raw_payload(html) == [], url
    return html


def after(user: AdminUser, answer: Any) -> str:
    """The page a POST redirects to (with its flashed messages)."""
    assert answer.status_code in (302, 303), answer.status_code
    return page(user, answer.headers["Location"])


def test_every_admin_page_escapes_connectwise_and_user_text(app, connectwise_sandbox):
    ids = seed(app, connectwise_sandbox, TENANT_A)
    user = AdminUser(app, TENANT_A, role="superadmin", member=HOSTILE_SHORT)
    edit = f"{CRED}/edit/?id={ids['credentials']}"

    # Loading the board statuses fails with ConnectWise's (hostile) message: the field
    # description, rendered by Flask-Admin with |safe, must be escaped.
    connectwise_sandbox.inject_fault("service/boards", "status", status=403, message=HOSTILE)
    failed = page(user, edit)
    assert "The board statuses could not be loaded" in failed and ESCAPED in failed
    # Loaded: the statuses' (hostile) board and status names fill the select.
    loaded = page(user, edit)
    assert loaded.count(ESCAPED) >= 3  # the last error, board — status options

    pages = {
        "credentials list": f"{CRED}/",
        "credentials list, hostile search": f"{CRED}/?search={quote(HOSTILE)}",
        "credentials list, hostile filter": f"{CRED}/?flt0_0={quote(HOSTILE)}",
        "credentials create": f"{CRED}/new/",
        "credentials details": f"{CRED}/details/?id={ids['credentials']}",
        "flag list": f"{FLAGS}/",
        "flag create": f"{FLAGS}/new/",
        "flag edit": f"{FLAGS}/edit/?id={ids['flag']}",
        "change log": f"{CHANGES}/",
        "change log, hostile search": f"{CHANGES}/?search={quote(HOSTILE_SHORT)}",
        "change details": f"{CHANGES}/details/?id={ids['change']}",
    }
    shown = {name: page(user, url) for name, url in pages.items()}
    for name in ("credentials list", "credentials details", "change log", "change details"):
        assert ESCAPED in shown[name], name
    assert "&#34;&gt;&lt;svg onload" in shown["flag list"]  # the hostile tenant and editor

    # Flashes: a failed and a passed connection test (hostile error, hostile version), a
    # retry whose steps fail with hostile reasons, a flag toggle naming a hostile tenant.
    connectwise_sandbox.inject_fault("system/info", "status", status=403, message=HOSTILE)
    failed_test = after(user, user.post(f"{CRED}/test/", {"id": ids["credentials"]}))
    assert "the connection failed" in failed_test and ESCAPED in failed_test
    passed_test = after(user, user.post(f"{CRED}/test/", {"id": ids["credentials"]}))
    assert "connected to ConnectWise" in passed_test and ESCAPED in passed_test
    connectwise_sandbox.inject_fault("**", "status", status=400, message=HOSTILE, count=20)
    after(user, user.post(f"{CHANGES}/retry/", {"id": ids["change"]}))
    connectwise_sandbox.clear_faults()
    toggled = after(user, user.post(f"{FLAGS}/toggle/", {"id": ids["flag"]}))
    assert "&#34;&gt;&lt;svg onload" in toggled
    assert not user.flashes()  # every flash was shown (and escaped) on a page


def test_form_descriptions_are_escaped_unless_markup(app):
    class Form(ConnectWiseAdminForm):
        plain = StringField("Plain", description=HOSTILE)
        markup = StringField("Markup", description=Markup("<em>ours</em>"))

    with app.test_request_context():
        app.config["WTF_CSRF_ENABLED"] = False
        form = Form()
    assert isinstance(form.plain.description, Markup)
    assert no_raw_payload(str(form.plain.description)) == []
    assert ESCAPED in str(form.plain.description)
    assert str(form.markup.description) == "<em>ours</em>"


# -- CSV exports: no cell a spreadsheet runs as a formula ---------------------------------------


def exported(user: AdminUser, url: str) -> list[list[str]]:
    answer = user.get(f"{url}/export/csv/")
    assert answer.status_code == 200, answer.status_code
    assert answer.mimetype == "text/csv"
    assert answer.headers["Content-Disposition"].startswith("attachment")
    return list(csv.reader(io.StringIO(answer.get_data(as_text=True))))


def test_every_export_neutralises_formulas(app, connectwise_sandbox):
    for i, formula in enumerate(FORMULAS):
        tenant = f"t{i}"
        seed_credentials(app, tenant, connectwise_sandbox)
        with app.app_context():
            service = state(app).service
            row = service.credentials_row(tenant)
            row.last_error = formula
            row.updated_by = formula
            service.session.commit()
            service.set_flag(tenant, True, actor=formula)
        make_change(app, tenant, note=formula, member=formula, operator=formula, error=formula)
    with app.app_context():
        state(app).service.set_flag(FORMULAS[0][:64], True, actor="seed")
    views = app.extensions["test_admin"]._views
    for cls in (FeatureFlagView, ChangeLogView):  # off by default; a host may turn them on
        next(v for v in views if isinstance(v, cls)).can_export = True
    user = AdminUser(app, TENANT_A, role="superadmin")
    for url, columns in (
        (CRED, ("Last error", "Updated by")),
        (FLAGS, ("Changed by",)),
        (CHANGES, ("Operator", "Member")),
    ):
        rows = exported(user, url)
        header, cells = rows[0], [cell for row in rows[1:] for cell in row]
        assert len(rows) > len(FORMULAS), url
        assert [c for c in cells if is_formula(c)] == [], url
        for formula in FORMULAS:
            assert "'" + formula in cells, (url, formula)
        for column in columns:
            index = header.index(column)
            assert {row[index] for row in rows[1:]} >= {"'" + f for f in FORMULAS}, column
    flags = exported(user, FLAGS)
    tenants = {row[flags[0].index("Tenant")] for row in flags[1:]}
    assert "'" + FORMULAS[0][:64] in tenants
    changes = exported(user, CHANGES)
    assert all("<" not in cell for row in changes for cell in row)  # steps as text, no HTML


@pytest.mark.parametrize(
    ("value", "safe"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@A1", "'@A1"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("\n=1", "'\n=1"),
        ("   =1", "'   =1"),
        ("\uff1d1", "'\uff1d1"),
        (Markup("=<b>x</b>"), "'=<b>x</b>"),
        ("Tenant A", "Tenant A"),
        ("a=b", "a=b"),
        ("", ""),
        (None, None),
        (12, 12),
        (-3.5, -3.5),  # numbers stay numbers
    ],
)
def test_csv_safe(value, safe):
    result = csv_safe(value)
    assert result == safe
    assert type(result) is type(safe)


def test_credentials_view_exports_through_csv_safe():
    for cls in (CredentialsView, FeatureFlagView, ChangeLogView):
        assert cls.get_export_value is TenantScopedView.get_export_value


def test_payloads_are_what_the_browser_test_expects():
    assert all("window.__xss=1" in p for p in PAYLOADS)
    assert HOSTILE_TENANT in HOSTILE and len(HOSTILE_TENANT) <= 64 and len(HOSTILE_SHORT) <= 128
