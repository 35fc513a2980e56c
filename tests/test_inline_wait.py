"""The host's commit never waits past CONNECTWISE_INLINE_WAIT (issue 15 item 1), against the
sandbox over loopback: the outcome inline when it arrives in time, else "Logging to ticket
#…" and the outcome once on the operator's next page; "My recent ConnectWise logs" (JSON and
HTML) lists only the operator's own changes of their tenant."""

from __future__ import annotations

import html
import re
import time
from typing import Any

import pytest
from flask import redirect, request

from flask_connectwise.current import state
from flask_connectwise.fields import report_to_operator
from flask_connectwise.models import ChangeState
from flask_connectwise.testing import configure_tenant
from tests.field_app import MEMBER, make_field_app
from tests.hosts import TENANT_A, TENANT_B, make_host_app

TICKET = 12345
PREFIX = "/api/admin/tenant/{}/connectwise"
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)> & "quotes"'


@pytest.fixture
def app(tmp_path, connectwise_sandbox):
    app = make_field_app(f"sqlite:///{tmp_path / 'host.db'}", connectwise_sandbox, admin=False)
    app.config.update(WTF_CSRF_ENABLED=False, CONNECTWISE_INLINE_WAIT=0.5)
    db = app.extensions["test_db"]

    @app.post("/save")
    def save() -> Any:
        """A host view: its own change plus a ticket, on the path the field and mixin use."""
        st = state()
        row, _ = st.outbox.record(
            TENANT_A,
            int(request.form["ticket"]),
            request.form.get("note", "Voice configuration updated"),
            member=MEMBER,
            operator=MEMBER,
        )
        st.outbox.deliver_after_commit(row, report_to_operator)
        started = time.monotonic()
        db.session.commit()
        app.extensions["test_commit_seconds"] = time.monotonic() - started
        return redirect("/voice")

    yield app
    with app.app_context():
        db.engine.dispose()


def flashes(page: str) -> list[str]:
    return [
        html.unescape(m)
        for m in re.findall(r'<p class="flash[^"]*" role="status">(.*?)</p>', page, re.S)
    ]


def wait_finished(app, timeout: float = 30.0) -> None:
    """Until every change left the pending state (delivered, retrying or failed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with app.app_context():
            model = state().models.ChangeLog
            db = app.extensions["test_db"]
            states = [r.state for r in db.session.query(model).all()]
            db.session.remove()
        if states and ChangeState.PENDING not in states:
            return
        time.sleep(0.05)
    raise AssertionError(f"changes still pending: {states}")


def test_a_healthy_sandbox_flashes_the_outcome_inline(app):
    client = app.test_client()
    answer = client.post("/voice", data={"upn": "sam@contoso.test", "ticket": str(TICKET)})
    assert answer.status_code == 302
    shown = flashes(client.get("/voice").get_data(as_text=True))
    assert shown == [f"Logged to ticket #{TICKET}: note added, 15 min logged."]
    # Nothing left for a later page.
    assert flashes(client.get("/voice").get_data(as_text=True)) == []


def test_a_slow_sandbox_never_holds_the_commit_and_tells_the_outcome_once(app, connectwise_sandbox):
    client = app.test_client()
    connectwise_sandbox.set_latency(3.0)
    started = time.monotonic()
    answer = client.post("/save", data={"ticket": str(TICKET)})
    took = time.monotonic() - started
    assert answer.status_code == 302
    assert app.extensions["test_commit_seconds"] < 1.5
    assert took < 1.5
    first = client.get("/voice").get_data(as_text=True)
    assert flashes(first)[0].startswith(f"Logging to ticket #{TICKET}…")
    assert 'href="/api/admin/tenant/tenant-a/connectwise/changes/mine/page"' in first
    assert flashes(first)[0].endswith(">My recent ConnectWise logs</a>")
    connectwise_sandbox.set_latency(0)
    wait_finished(app)
    outcome = f"Logged to ticket #{TICKET}: note added, 15 min logged."
    assert flashes(client.get("/voice").get_data(as_text=True)) == [outcome]
    assert flashes(client.get("/voice").get_data(as_text=True)) == []  # once and only once


def test_a_sandbox_down_says_logging_then_the_retry_on_the_next_page(app, connectwise_sandbox):
    client = app.test_client()
    connectwise_sandbox.set_latency(1.0)
    connectwise_sandbox.inject_fault("**", "status", status=503, count=1000)
    started = time.monotonic()
    client.post("/save", data={"ticket": str(TICKET)})
    assert time.monotonic() - started < 1.5
    first = flashes(client.get("/voice").get_data(as_text=True))
    assert len(first) == 1 and first[0].startswith(f"Logging to ticket #{TICKET}…")
    wait_finished(app)
    connectwise_sandbox.set_latency(0)
    later = flashes(client.get("/voice").get_data(as_text=True))
    assert len(later) == 1
    assert later[0].startswith(f"Could not log to ticket #{TICKET} yet:")
    assert later[0].endswith("It will be retried.")
    assert flashes(client.get("/voice").get_data(as_text=True)) == []


# -- "My recent ConnectWise logs" ------------------------------------------------------------


@pytest.fixture
def host(tmp_path, connectwise_sandbox):
    app = make_host_app(f"sqlite:///{tmp_path / 'host.db'}")
    configure_tenant(app, TENANT_A, connectwise_sandbox)
    configure_tenant(app, TENANT_B, connectwise_sandbox)
    with app.app_context():
        outbox = state().outbox
        for tenant, operator, note in (
            (TENANT_A, "jdoe", "jdoe's first change"),
            (TENANT_A, "jdoe", HOSTILE),
            (TENANT_A, "asmith", "asmith's change"),
            (TENANT_B, "jdoe", "jdoe's change for tenant B"),
        ):
            outbox.record(tenant, TICKET, note, member=operator, operator=operator)
        app.extensions["test_db"].session.commit()
    yield app
    with app.app_context():
        app.extensions["test_db"].engine.dispose()


def as_operator(tenant: str, member: str, role: str = "operator") -> dict[str, str]:
    return {"X-User-Tenant": tenant, "X-User-Role": role, "X-User-Member": member}


def test_my_changes_lists_only_my_own_changes_of_this_tenant(host):
    client = host.test_client()
    answer = client.get(
        PREFIX.format(TENANT_A) + "/changes/mine", headers=as_operator(TENANT_A, "jdoe")
    )
    assert answer.status_code == 200
    changes = answer.get_json()["changes"]
    assert [c["note"] for c in changes] == [HOSTILE, "jdoe's first change"]
    first = changes[0]
    assert first["ticketId"] == TICKET and first["state"] == ChangeState.PENDING
    assert first["reference"].startswith("cw") or first["reference"]
    assert set(first["steps"]) == {"note", "timeEntry", "status"}
    assert first["summary"] == f"Logging to ticket #{TICKET}…" and first["created"]
    other = client.get(
        PREFIX.format(TENANT_A) + "/changes/mine", headers=as_operator(TENANT_A, "asmith")
    ).get_json()["changes"]
    assert [c["note"] for c in other] == ["asmith's change"]


def test_my_changes_needs_use(host):
    client = host.test_client()
    url = PREFIX.format(TENANT_A) + "/changes/mine"
    assert client.get(url, headers=as_operator(TENANT_B, "jdoe")).status_code == 403
    assert client.get(url, headers=as_operator(TENANT_A, "jdoe", role="viewer")).status_code == 403
    assert client.get(url + "/page", headers=as_operator(TENANT_B, "jdoe")).status_code == 403


def test_my_changes_page_escapes_hostile_note_text(host):
    client = host.test_client()
    answer = client.get(
        PREFIX.format(TENANT_A) + "/changes/mine/page", headers=as_operator(TENANT_A, "jdoe")
    )
    assert answer.status_code == 200 and answer.mimetype == "text/html"
    page = answer.get_data(as_text=True)
    assert "<h1>My recent ConnectWise logs</h1>" in page
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(" in page
    assert "jdoe&#39;s first change" in page
    assert "asmith" not in page and "tenant B" not in page


# -- in a real browser -----------------------------------------------------------------------


@pytest.mark.browser
def test_a_save_with_connectwise_12_s_slow_returns_within_the_budget_in_a_browser(
    browser, tmp_path, connectwise_sandbox
):
    from playwright.sync_api import expect

    from tests.serving import serve

    app = make_field_app(f"sqlite:///{tmp_path / 'host.db'}", connectwise_sandbox, admin=False)
    budget = 1.0 + 1.0  # CONNECTWISE_CHECK_DEADLINE (the ticket check) + CONNECTWISE_INLINE_WAIT
    app.config.update(
        CONNECTWISE_CHECK_DEADLINE=1.0, CONNECTWISE_INLINE_WAIT=1.0, CONNECTWISE_TIMEOUT=2.0
    )
    context = browser.new_context()
    try:
        with serve(app) as site:
            page = context.new_page()
            page.set_default_timeout(10000)
            page.goto(f"{site}/voice")
            connectwise_sandbox.set_latency(12.0)
            page.locator("#upn").fill("jane@example.com")
            page.locator("#ticket").fill(str(TICKET))
            started = time.monotonic()
            with page.expect_navigation():
                page.locator("button[type=submit]").click()
            took = time.monotonic() - started
            assert took < budget + 1.0, took
            waiting = page.locator(".flash-info")
            expect(waiting).to_contain_text(f"Logging to ticket #{TICKET}…")
            expect(waiting.get_by_role("link", name="My recent ConnectWise logs")).to_have_count(1)

            # ConnectWise recovers; the outbox delivers the change (the admin's Retry, or the
            # thread mode's sweep once the backoff is over).
            connectwise_sandbox.set_latency(0)
            wait_finished(app)
            with app.app_context():
                outbox = state().outbox
                for row in outbox.session.query(state().models.ChangeLog).all():
                    if row.state != ChangeState.DELIVERED:
                        outbox.retry(row.reference)
                outbox.session.remove()
            page.goto(f"{site}/voice")
            expect(page.locator(".flash-success")).to_have_text(
                f"Logged to ticket #{TICKET}: note added, 15 min logged."
            )
            page.goto(f"{site}/voice")
            expect(page.locator(".flash")).to_have_count(0)
    finally:
        context.close()
        connectwise_sandbox.set_latency(0)
        with app.app_context():
            app.extensions["test_db"].engine.dispose()
