"""Feature flag off means off: nothing leaves for that tenant.

The worker leaves the tenant's changes queued and untouched (not claimed, no attempt counted,
no hot loop) and delivers them once the flag is on again; the admin Retry, the CLI retry,
``log_change`` from code and the delivery after a form's commit send nothing and say why.
Test connection stays allowed, labelled as working while the integration is off.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import redirect

from flask_connectwise.models import DELIVERED
from flask_connectwise.tenants import IntegrationOffError
from tests.admin_helpers import AdminUser, make_admin_app, seed_credentials, text_of
from tests.hosts import TENANT_A, TENANT_B, cw_of, make_host_app
from tests.outbox_helpers import TICKET, copies_on_sandbox, quick_worker

CRED = "/admin/connectwise/credentials"
CHANGES = "/admin/connectwise/change-log"
#: The columns a delivery attempt writes; a tenant that is off keeps them as they were.
TOUCHED = (
    "state",
    "next_attempt_at",
    "lease_owner",
    "lease_until",
    "updated_at",
    "note_state",
    "note_attempts",
    "note_error",
    "time_state",
    "time_attempts",
    "time_error",
    "status_state",
    "status_attempts",
)


@pytest.fixture
def app(tmp_path, connectwise_sandbox):
    app = make_host_app(f"sqlite:///{tmp_path / 'off.db'}")
    for tenant in (TENANT_A, TENANT_B):
        seed_credentials(app, tenant, connectwise_sandbox)
    with app.app_context():
        cw_of(app).tenants.set_flag(TENANT_A, True)  # B stays off (the default)
    yield app
    with app.app_context():
        app.extensions["test_db"].session.remove()
        app.extensions["test_db"].engine.dispose()


def queue(app: Any, tenant: str, count: int = 1) -> list[int]:
    with app.app_context():
        cw = cw_of(app)
        rows = [
            # A member: with none, CONNECTWISE_REQUIRE_MEMBER skips the time entry.
            cw.outbox.record(tenant, TICKET, f"{tenant} change {n}", hours=0.25, member="jdoe")[0]
            for n in range(count)
        ]
        cw.outbox.session.commit()
        return [row.id for row in rows]


def snapshot(app: Any, change_id: int) -> dict[str, Any]:
    with app.app_context():
        cw = cw_of(app)
        row = cw.outbox.session.get(cw.models.ChangeLog, change_id)
        cw.outbox.session.refresh(row)
        return {name: getattr(row, name) for name in ("reference", *TOUCHED)}


def test_the_worker_leaves_a_tenant_that_is_off_alone(app, connectwise_sandbox):
    off = queue(app, TENANT_B, 3)
    on = queue(app, TENANT_A, 2)
    before = [snapshot(app, change_id) for change_id in off]
    connectwise_sandbox.clear_requests()
    with app.app_context():
        cw = cw_of(app)
        worker = quick_worker(cw.outbox)
        summary = worker.run(once=True)
        assert (summary.claimed, summary.delivered) == (2, 2)
        # Not claimed again and again: the next passes find nothing to do.
        assert worker.claim() == [] and worker.run_once().claimed == 0
    assert [snapshot(app, change_id) for change_id in off] == before
    sent = " ".join(str(r.json) for r in connectwise_sandbox.requests)
    assert all(row["reference"] not in sent for row in before)
    assert all(snapshot(app, change_id)["state"] == DELIVERED for change_id in on)

    connectwise_sandbox.clear_requests()
    with app.app_context():
        cw_of(app).tenants.set_flag(TENANT_B, True)
        assert quick_worker(cw_of(app).outbox).run(once=True).delivered == 3
    for row in before:
        assert copies_on_sandbox(connectwise_sandbox, row["reference"]) == (1, 1)


def test_nothing_leaves_when_only_tenants_that_are_off_have_changes(app, connectwise_sandbox):
    queue(app, TENANT_B, 2)
    connectwise_sandbox.clear_requests()
    with app.app_context():
        summary = quick_worker(cw_of(app).outbox).run(once=True)
    assert summary.claimed == 0
    assert connectwise_sandbox.requests == []


def test_the_star_flag_and_a_host_flag_loader_are_obeyed(app, connectwise_sandbox):
    (change_id,) = queue(app, TENANT_B)
    cw = app.extensions["test_cw"]
    decided: dict[str, bool | None] = {TENANT_B: False}
    cw.flag_loader(lambda tenant: decided.get(tenant))
    with app.app_context():
        cw = cw_of(app)
        cw.tenants.set_flag("*", True)  # the loader's False for B wins over the table
        assert quick_worker(cw.outbox).run(once=True).claimed == 0
        decided[TENANT_B] = None  # the loader has no opinion: the "*" row says on
        assert quick_worker(cw.outbox).run(once=True).delivered == 1
    assert snapshot(app, change_id)["state"] == DELIVERED


def test_a_flag_turned_off_after_the_claim_sends_nothing(app, connectwise_sandbox):
    (change_id,) = queue(app, TENANT_B)
    before = snapshot(app, change_id)
    connectwise_sandbox.clear_requests()
    with app.app_context():
        worker = quick_worker(cw_of(app).outbox)
        worker.tenants_off = lambda now: []  # type: ignore[method-assign]  # claimed while on
        summary = worker.run_once()
    assert (summary.claimed, summary.paused, summary.retrying) == (1, 1, 0)
    after = snapshot(app, change_id)
    # The claim (made while "on") stamped updated_at; the lease is given back, nothing else.
    assert after | {"updated_at": None} == before | {"updated_at": None}
    assert connectwise_sandbox.requests == []


def test_log_change_from_code_records_and_sends_nothing(app, connectwise_sandbox):
    cw = app.extensions["test_cw"]
    connectwise_sandbox.clear_requests()
    with app.app_context():
        with pytest.raises(IntegrationOffError, match="off for tenant tenant-b"):
            cw.log_change(TENANT_B, TICKET, "from code", hours=0.25)
        cw = cw_of(app)
        assert cw.outbox.session.query(cw.models.ChangeLog).count() == 0
    assert connectwise_sandbox.requests == []


def test_service_deliver_sends_nothing(app, connectwise_sandbox):
    (change_id,) = queue(app, TENANT_B)
    before = snapshot(app, change_id)
    connectwise_sandbox.clear_requests()
    with app.app_context():
        cw = cw_of(app)
        row = cw.outbox.session.get(cw.models.ChangeLog, change_id)
        with pytest.raises(IntegrationOffError):
            cw.outbox.deliver(row)
        with pytest.raises(IntegrationOffError):
            cw.outbox.deliver_leased(row)
    assert snapshot(app, change_id) == before
    assert connectwise_sandbox.requests == []


def test_cli_retry_says_the_integration_is_off(app, connectwise_sandbox):
    (change_id,) = queue(app, TENANT_B)
    before = snapshot(app, change_id)
    connectwise_sandbox.clear_requests()
    result = app.test_cli_runner().invoke(
        args=["connectwise", "outbox", "retry", before["reference"]]
    )
    assert result.exit_code != 0
    assert "integration is off for tenant tenant-b" in result.output
    assert "Traceback" not in result.output
    assert snapshot(app, change_id) == before
    assert connectwise_sandbox.requests == []


def test_a_form_change_after_the_flag_went_off_is_kept_not_sent(tmp_path, connectwise_sandbox):
    """The flag goes off between the form's check and the commit: the after-commit delivery
    sends nothing, the change stays queued and the operator is told why."""
    from tests.field_app import VoiceForm, make_field_app

    app = make_field_app(f"sqlite:///{tmp_path / 'form.db'}", connectwise_sandbox, admin=False)
    app.config["WTF_CSRF_ENABLED"] = False
    db = app.extensions["test_db"]

    @app.post("/voice-then-off")
    def voice_then_off() -> Any:
        form = VoiceForm()
        assert form.validate_on_submit(), form.errors
        form.ticket.log_change(f"Voice configuration updated for {form.upn.data}")
        cw_of(app).tenants.set_flag(TENANT_A, False, commit=False)  # in the same transaction
        db.session.commit()
        return redirect("/voice")

    connectwise_sandbox.clear_requests()
    http = app.test_client()
    http.post("/voice-then-off", data={"upn": "jane@example.com", "ticket": "12345"})
    connectwise_sandbox.clear_requests()  # the field's ticket check before the flag went off
    page = text_of(http.get("/voice").get_data(as_text=True))
    assert "the ConnectWise integration is off" in page
    assert "kept and sent once it is turned on" in page
    with app.app_context():
        cw = cw_of(app)
        (row,) = cw.outbox.session.query(cw.models.ChangeLog).all()
        assert (row.state, row.note_attempts, row.note_state) == ("pending", 0, "pending")
    assert copies_on_sandbox(connectwise_sandbox, row.reference) == (0, 0)
    with app.app_context():
        db.engine.dispose()


# -- the admin views -------------------------------------------------------------------------------


@pytest.fixture
def admin_app(tmp_path, connectwise_sandbox):
    app = make_admin_app(f"sqlite:///{tmp_path / 'admin.db'}")
    seed_credentials(app, TENANT_A, connectwise_sandbox)  # the flag stays off
    yield app
    with app.app_context():
        app.extensions["test_db"].engine.dispose()


def flashed(user: AdminUser, response: Any) -> str:
    assert response.status_code in (302, 303), response.status_code
    return text_of(user.get(response.headers["Location"]).get_data(as_text=True))


def test_admin_retry_says_the_integration_is_off_and_sends_nothing(admin_app, connectwise_sandbox):
    (change_id,) = queue(admin_app, TENANT_A)
    before = snapshot(admin_app, change_id)
    user = AdminUser(admin_app, TENANT_A, role="operator")
    connectwise_sandbox.clear_requests()
    for body in ({"id": change_id}, {"action": "retry", "rowid": change_id}):
        url = f"{CHANGES}/retry/" if "id" in body else f"{CHANGES}/action/"
        page = flashed(user, user.post(url, body))
        assert (
            f"was not retried: the ConnectWise integration is off for tenant {TENANT_A}, so "
            "nothing was sent" in page
        )
    assert connectwise_sandbox.requests == []
    assert snapshot(admin_app, change_id) == before
    with admin_app.app_context():
        cw_of(admin_app).tenants.set_flag(TENANT_A, True)
    page = flashed(user, user.post(f"{CHANGES}/retry/", {"id": change_id}))
    assert "delivered; every step is done now" in page


def test_test_connection_works_while_off_and_says_so(admin_app, connectwise_sandbox):
    with admin_app.app_context():
        row_id = cw_of(admin_app).tenants.credentials_row(TENANT_A).id
    user = AdminUser(admin_app, TENANT_A)
    listing = user.get(f"{CRED}/").get_data(as_text=True)
    assert "Test connection (works even while the integration is off)" in listing
    edit = text_of(user.get(f"{CRED}/edit/?id={row_id}").get_data(as_text=True))
    assert "Test connection works even while the integration is off." in edit
    connectwise_sandbox.clear_requests()
    page = flashed(user, user.post(f"{CRED}/test/", {"id": row_id}))
    assert "connected to ConnectWise" in page
    assert f"The integration is off for tenant {TENANT_A}: nothing else is sent" in page
    # Only the version check (and the codebase look-up) reached ConnectWise.
    assert {r.path.rsplit("/", 1)[-1] for r in connectwise_sandbox.requests} <= {"info", "sandbox"}
    assert any(r.path.endswith("system/info") for r in connectwise_sandbox.requests)
    with admin_app.app_context():
        cw_of(admin_app).tenants.set_flag(TENANT_A, True)
    page = flashed(user, user.post(f"{CRED}/test/", {"id": row_id}))
    assert "connected to ConnectWise" in page and "nothing else is sent" not in page
