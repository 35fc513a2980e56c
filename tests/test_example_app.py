"""The example host app: configuration, demo mode, login, roles, tenant scoping, the curl
sequence of the README, the dashboard's change note and the app's migrations."""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import pytest
import requests
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask

from example_app import create_app, demo
from example_app.extensions import cw, db
from example_app.models import Did, PhoneUser, User, VoiceConfiguration
from tests.example_helpers import (
    CONTOSO_ADMIN,
    CONTOSO_OPERATOR,
    FABRIKAM_OPERATOR,
    PASSWORD,
    dispose,
    make_example_app,
    serve,
)

ROOT = Path(__file__).resolve().parent.parent
API = "/api/admin/tenant/{tenant}/connectwise"
EXAMPLE_TABLES = {
    "example_tenants",
    "example_users",
    "example_voice_configurations",
    "example_threecx_users",
    "example_threecx_dids",
}


@pytest.fixture
def app(tmp_path: Path, connectwise_sandbox: Any) -> Iterator[Flask]:
    app = make_example_app(tmp_path, connectwise_sandbox)
    yield app
    dispose(app)


def token_of(client: Any) -> str:
    return str(client.get("/csrf-token").get_data(as_text=True))


def log_in(client: Any, email: str) -> dict[str, Any]:
    response = client.post("/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.get_data(as_text=True)
    return dict(response.get_json())


# -- configuration and demo mode ---------------------------------------------------------------


def test_defaults_put_the_database_and_secrets_in_the_instance_folder(tmp_path, monkeypatch):
    for name in ("DATABASE_URL", "SECRET_KEY", "CONNECTWISE_ENCRYPTION_KEYS", "CONNECTWISE_DEMO"):
        monkeypatch.delenv(name, raising=False)
    instance = tmp_path / "instance"
    app = create_app({"CONNECTWISE_DEMO": False}, instance_path=str(instance))
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{instance / 'example.db'}"
    secret = instance / "secret_key"
    assert app.config["SECRET_KEY"] == secret.read_text().strip()
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert app.config["CONNECTWISE_ALLOW_LOOPBACK_HTTP"] is False  # only in demo mode
    assert not (instance / "connectwise_keys").exists()  # generated in demo mode only
    again = create_app({"CONNECTWISE_DEMO": False}, instance_path=str(instance))
    assert again.config["SECRET_KEY"] == app.config["SECRET_KEY"]  # sessions survive restarts


def test_environment_configures_database_demo_and_keys(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("CONNECTWISE_DEMO", "0")
    monkeypatch.setenv("CONNECTWISE_ENCRYPTION_KEYS", "k9:" + "A" * 43 + "=")
    app = create_app(instance_path=str(tmp_path / "instance"))
    assert app.config["SQLALCHEMY_DATABASE_URI"] == url
    assert app.config["CONNECTWISE_DEMO"] is False
    assert app.config["CONNECTWISE_ENCRYPTION_KEYS"].startswith("k9:")
    monkeypatch.setenv("CONNECTWISE_DEMO", "maybe")
    with pytest.raises(RuntimeError, match="CONNECTWISE_DEMO must be 1 or 0"):
        create_app(instance_path=str(tmp_path / "instance"))


def test_demo_mode_starts_the_sandbox_migrates_seeds_and_configures(tmp_path, monkeypatch):
    monkeypatch.delenv("CONNECTWISE_ENCRYPTION_KEYS", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    instance = tmp_path / "instance"
    app = create_app({"TESTING": True, "CONNECTWISE_DEMO": None}, instance_path=str(instance))
    assert app.config["CONNECTWISE_DEMO"] is True  # nothing real configured: demo by default
    assert app.config["CONNECTWISE_ALLOW_LOOPBACK_HTTP"] is True
    sandbox = app.extensions["example_demo_sandbox"]
    assert sandbox is demo.demo_sandbox()  # once per process
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", sandbox.url)
    keys = instance / "connectwise_keys"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    assert app.config["CONNECTWISE_ENCRYPTION_KEYS"] == keys.read_text().strip()
    assert keys.is_relative_to(tmp_path) and not (ROOT / "connectwise_keys").exists()
    with app.app_context():
        tenants = cw.tenants
        for tenant in ("contoso", "fabrikam"):
            assert tenants.is_enabled(tenant)
            assert tenants.credentials_row(tenant).base_url == sandbox.url
        users = {u.email: u for u in db.session.execute(db.select(User)).scalars()}
        assert {u.cw_member for u in users.values()} == {"asmith", "jdoe", "mgarcia", "tech"}
        assert users[CONTOSO_OPERATOR].role == "operator" and users[CONTOSO_ADMIN].is_admin
        row = tenants.credentials_row("contoso")
        assert row.auto_update_status and row.default_status_id == demo.HELP_DESK_IN_PROGRESS
    client = app.test_client()
    log_in(client, CONTOSO_OPERATOR)
    found = client.get(API.format(tenant="contoso") + "/tickets/search?q=12345").get_json()
    assert found[0]["id"] == 12345

    # A restart keeps what an admin changed: the flag they turned off, their real credentials.
    with app.app_context():
        cw.tenants.set_flag("fabrikam", False, actor="test")
        # (set directly: the URL policy would resolve the host, and this test is offline)
        cw.tenants.credentials_row("contoso").base_url = "https://acme.myconnectwise.net"
        db.session.commit()
    dispose(app)
    again = create_app({"TESTING": True, "CONNECTWISE_DEMO": None}, instance_path=str(instance))
    assert again.config["CONNECTWISE_DEMO"] is False  # real credentials now: no demo by default
    forced = create_app({"TESTING": True, "CONNECTWISE_DEMO": True}, instance_path=str(instance))
    with forced.app_context():
        tenants = cw.tenants
        assert tenants.credentials_row("contoso").base_url == "https://acme.myconnectwise.net"
        assert tenants.credentials_row("fabrikam").base_url == sandbox.url
        assert not tenants.flag_on("fabrikam")
        assert db.session.execute(sa.select(sa.func.count(User.id))).scalar() == 4
    dispose(again)
    dispose(forced)


def test_demo_mode_accepts_loopback_urls_on_the_sandbox_port_only(tmp_path, monkeypatch):
    monkeypatch.delenv("CONNECTWISE_ENCRYPTION_KEYS", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    app = create_app({"TESTING": True, "CONNECTWISE_DEMO": True}, instance_path=str(tmp_path))
    sandbox = app.extensions["example_demo_sandbox"]
    assert app.config["CONNECTWISE_ALLOW_LOOPBACK_HTTP"] is True
    assert app.config["CONNECTWISE_LOOPBACK_PORTS"] == [sandbox.port]
    client = app.test_client()
    log_in(client, CONTOSO_ADMIN)
    headers = {"X-CSRFToken": token_of(client)}
    creds = sandbox.credentials
    body = {
        "companyId": creds["company_id"],
        "publicKey": creds["public_key"],
        "privateKey": creds["private_key"],
        "clientId": creds["client_id"],
    }
    other = _free_port()
    for url in (f"http://127.0.0.1:{other}", "http://127.0.0.1", f"http://[::1]:{other}"):
        refused = client.post(
            API.format(tenant="contoso") + "/credentials",
            json=body | {"baseUrl": url},
            headers=headers,
        )
        assert refused.status_code == 400, refused.get_data(as_text=True)
        error = refused.get_json()
        assert error["field"] == "baseUrl"
        assert "CONNECTWISE_LOOPBACK_PORTS" in error["message"]
    stored = client.post(
        API.format(tenant="contoso") + "/credentials",
        json=body | {"baseUrl": sandbox.url},
        headers=headers,
    )
    assert stored.status_code == 200, stored.get_data(as_text=True)
    dispose(app)

    # A pinned port is accepted before the sandbox starts (CLI commands, a worker process).
    pinned = Flask("pinned")
    pinned.config.update(
        CONNECTWISE_DEMO=True,
        CONNECTWISE_SANDBOX_PORT=other,
        CONNECTWISE_ENCRYPTION_KEYS="k1:" + "A" * 43 + "=",
    )
    assert demo.decide(pinned)
    assert pinned.config["CONNECTWISE_LOOPBACK_PORTS"] == [other]
    off = Flask("off")
    off.config.update(CONNECTWISE_DEMO=False)
    demo.decide(off)
    assert not off.config.get("CONNECTWISE_ALLOW_LOOPBACK_HTTP")


def test_the_demo_runs_only_in_the_serving_process(monkeypatch):
    monkeypatch.delenv("WERKZEUG_RUN_MAIN", raising=False)
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    assert demo.serving_here()  # no CLI: a WSGI server or a test

    def inside(command: str, **params: Any) -> bool:
        ctx = click.Context(click.Command(command), info_name=command)
        ctx.params.update(params)
        with ctx:
            return demo.serving_here()

    assert inside("run", reload=False)
    assert inside("run", reload=None)  # no --debug: no reloader
    assert not inside("run", reload=True)  # the reloader's watcher
    assert not inside("upgrade")  # flask db upgrade, flask shell, ...
    monkeypatch.setenv("FLASK_DEBUG", "1")
    assert not inside("run", reload=None)
    monkeypatch.setenv("WERKZEUG_RUN_MAIN", "true")
    assert inside("run", reload=None)  # the reloader's child serves


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_flask_run_with_the_reloader_starts_one_sandbox(tmp_path):
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "CONNECTWISE_ENCRYPTION_KEYS", "CONNECTWISE_DEMO")
    }
    env["EXAMPLE_INSTANCE_PATH"] = str(tmp_path / "instance")
    log = tmp_path / "run.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "flask",
                "--app",
                "example_app",
                "run",
                "--debug",
                "--port",
                f"{port}",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/login", timeout=10).ok:
                    break
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.2)
        else:
            pytest.fail("the app did not start:\n" + log.read_text())
        session = requests.Session()
        answer = session.post(
            f"http://127.0.0.1:{port}/login",
            json={"email": CONTOSO_OPERATOR, "password": PASSWORD},
            timeout=5,
        )
        assert answer.status_code == 200
        search = session.get(
            f"http://127.0.0.1:{port}{API.format(tenant='contoso')}/tickets/search",
            params={"q": "12345"},
            timeout=10,
        )
        assert search.json()[0]["id"] == 12345
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    output = log.read_text()
    assert output.count("ConnectWise sandbox: http://127.0.0.1:") == 1, output
    assert f"Open http://127.0.0.1:{port}/login" in output
    assert "operator@fabrikam.example" in output
    assert (tmp_path / "instance" / "example.db").exists()


# -- login, roles ------------------------------------------------------------------------------


def test_passwords_are_stored_hashed(app):
    with app.app_context():
        user = db.session.execute(db.select(User).filter_by(email=CONTOSO_ADMIN)).scalar_one()
        assert PASSWORD not in user.password_hash
        assert user.password_hash.startswith(("scrypt:", "pbkdf2:"))
        assert user.check_password(PASSWORD) and not user.check_password("Demo")


def test_login_with_json_and_with_the_form(app):
    client = app.test_client()
    assert client.get("/admin/").status_code == 302
    assert "/login?next=/admin/" in client.get("/admin/").headers["Location"]
    wrong = client.post("/login", json={"email": CONTOSO_ADMIN, "password": "nope"})
    assert wrong.status_code == 401 and wrong.get_json()["error"] == "invalid_credentials"
    unknown = client.post("/login", json={"email": "who@example.com", "password": "x"})
    assert unknown.status_code == 401
    assert client.post("/login", json=["x"]).status_code == 400
    me = log_in(client, CONTOSO_OPERATOR.upper())
    assert me == me | {"tenant": "contoso", "role": "operator", "memberIdentifier": "jdoe"}
    assert "password" not in str(me).lower()
    assert client.get("/admin/").status_code == 200
    assert client.post("/logout", headers={"X-CSRFToken": token_of(client)}).status_code == 302
    assert client.get("/admin/").status_code == 302

    browser = app.test_client()
    form = {"email": CONTOSO_ADMIN, "password": PASSWORD}
    no_token = browser.post("/login", data=form)
    assert no_token.status_code == 400 and "CSRF token is missing" in no_token.get_data(
        as_text=True
    )
    page = browser.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token, page
    bad = browser.post("/login", data=form | {"csrf_token": token[1], "password": "x"})
    assert bad.status_code == 401 and "Wrong e-mail or password" in bad.get_data(as_text=True)
    ok = browser.post(
        "/login?next=//evil.example/", data=form | {"csrf_token": token[1]}
    )  # no open redirect
    assert ok.status_code == 302 and ok.headers["Location"] == "/admin/"


def test_roles_map_to_the_authorize_hook(app):
    operator, admin = app.test_client(), app.test_client()
    log_in(operator, CONTOSO_OPERATOR)
    log_in(admin, CONTOSO_ADMIN)
    contoso, fabrikam = API.format(tenant="contoso"), API.format(tenant="fabrikam")
    assert operator.get(f"{contoso}/tickets/search?q=printer").status_code == 200
    assert operator.get(f"{contoso}/credentials").status_code == 403
    assert admin.get(f"{contoso}/credentials").get_json()["configured"] is True
    assert admin.get(f"{fabrikam}/credentials").status_code == 403
    assert admin.get(f"{fabrikam}/tickets/search?q=printer").status_code == 403
    assert app.test_client().get(f"{contoso}/tickets/search?q=printer").status_code == 403
    # The extension's admin views: credentials and flags for admins, the change log for both.
    assert operator.get("/admin/connectwise/credentials/").status_code == 403
    assert operator.get("/admin/connectwise/flags/").status_code == 403
    # ... on the app's own page, in words, not the bare "Forbidden".
    refused = operator.get("/admin/connectwise/credentials/").get_data(as_text=True)
    assert "Your account may not open this page." in refused and "Back to the dashboard" in refused
    assert operator.get(f"{contoso}/credentials").is_json  # JSON callers keep JSON
    assert operator.get("/admin/connectwise/change-log/").status_code == 200
    assert admin.get("/admin/connectwise/credentials/").status_code == 200
    menu = operator.get("/admin/").get_data(as_text=True)
    assert "Change log" in menu and "Credentials" not in menu
    assert "Credentials" in admin.get("/admin/").get_data(as_text=True)


# -- the README's curl sequence, against the app served on loopback ----------------------------


@pytest.mark.parametrize("connectwise_sandbox_rules", ["lenient", "strict"], indirect=True)
def test_the_readme_curl_sequence(app, connectwise_sandbox):
    creds = connectwise_sandbox.credentials
    with serve(app) as base:
        jar = requests.Session()  # curl -c jar -b jar
        login = jar.post(
            f"{base}/login", json={"email": CONTOSO_ADMIN, "password": PASSWORD}, timeout=10
        )
        assert login.status_code == 200 and login.json()["tenant"] == "contoso"
        token = jar.get(f"{base}/csrf-token", timeout=10)
        assert token.headers["Content-Type"].startswith("text/plain")
        csrf = {"X-CSRFToken": token.text}
        assert jar.get(
            f"{base}/csrf-token", headers={"Accept": "application/json"}, timeout=10
        ).json() == {"csrfToken": token.text}
        api = base + API.format(tenant="contoso")

        # Step 2: credentials (the seed's body, with the sandbox's keys)
        body = {
            "baseUrl": creds["base_url"],
            "companyId": creds["company_id"],
            "publicKey": creds["public_key"],
            "privateKey": creds["private_key"],
            "clientId": creds["client_id"],
            "defaultTimeMinutes": 15,
            "autoUpdateStatus": False,
        }
        refused = jar.post(f"{api}/credentials", json=body, timeout=10)
        assert refused.status_code == 403 and refused.json()["error"] == "csrf_failed"
        stored = jar.post(f"{api}/credentials", json=body, headers=csrf, timeout=10)
        assert stored.status_code == 200, stored.text
        assert stored.json()["configured"] is True and stored.json()["autoUpdateStatus"] is False
        assert jar.get(f"{api}/enabled", timeout=10).json() == {"enabled": True}

        # Step 3: search by number and by summary
        by_number = jar.get(f"{api}/tickets/search", params={"q": "12345"}, timeout=10).json()
        assert by_number[0]["id"] == 12345
        by_text = jar.get(f"{api}/tickets/search", params={"q": "printer"}, timeout=10).json()
        assert by_text and all("printer" in t["summary"].lower() for t in by_text)

        # Step 4: log a change
        notes_before = len(connectwise_sandbox.notes(12345))
        entries_before = len(connectwise_sandbox.time_entries(12345))
        status_before = connectwise_sandbox.ticket(12345)["status"]["id"]
        logged = jar.post(
            f"{api}/tickets/12345/log-change",
            json={
                "noteText": "Updated voice configuration for test user",
                "memberIdentifier": "tech@company.com",
                "hours": 0.25,
            },
            headers=csrf,
            timeout=15,
        )
        assert logged.status_code == 200, logged.text
        outcome = logged.json()
        assert outcome["note"]["ok"] and outcome["timeEntry"]["ok"]
        assert outcome["status"].get("skipped")  # autoUpdateStatus is now off
        notes = connectwise_sandbox.notes(12345)
        assert len(notes) == notes_before + 1
        assert notes[-1]["text"].startswith("Updated voice configuration for test user")
        assert notes[-1]["member"]["identifier"] == "tech"
        entry = connectwise_sandbox.time_entries(12345)[-1]
        assert entry["actualHours"] == 0.25 and entry["member"]["identifier"] == "tech"
        assert len(connectwise_sandbox.time_entries(12345)) == entries_before + 1
        assert (entry["workType"]["id"], entry["workRole"]["id"]) == (3, 11)  # Contoso's
        assert connectwise_sandbox.ticket(12345)["status"]["id"] == status_before

        logout = jar.post(f"{base}/logout", headers=csrf | {"Accept": "application/json"})
        assert logout.json() == {"ok": True}
        assert jar.get(f"{api}/tickets/search", params={"q": "1"}, timeout=10).status_code == 403


# -- dashboard and 3CX views (test client) -----------------------------------------------------


@pytest.mark.parametrize("connectwise_sandbox_rules", ["lenient", "strict"], indirect=True)
def test_dashboard_saves_and_logs_what_changed(app, connectwise_sandbox):
    client = app.test_client()
    log_in(client, CONTOSO_OPERATOR)
    page = client.get("/admin/?upn=dana.lee@contoso.example").get_data(as_text=True)
    assert 'value="+1 425 555 0101"' in page and "cw-ticket-search" in page
    form = {
        "csrf_token": token_of(client),
        "upn": "Dana.Lee@contoso.example",
        "phone_number": "+1 425 555 0199",
        "voice_routing_policy": "US-Only",
        "dial_plan": "UK-DialPlan",
        "ticket": "#12345",
    }
    before = len(connectwise_sandbox.notes(12345))
    entries_before = len(connectwise_sandbox.time_entries(12345))
    saved = client.post("/admin/", data=form, follow_redirects=True).get_data(as_text=True)
    assert "Logged to ticket #12345: note added, 15 min logged, status set." in saved
    expected = (
        "Voice configuration updated for dana.lee@contoso.example: "
        "Phone number: +1 425 555 0101 → +1 425 555 0199; Dial plan: US-DialPlan → UK-DialPlan"
    )
    notes = connectwise_sandbox.notes(12345)
    assert len(notes) == before + 1 and notes[-1]["text"].startswith(expected)
    assert notes[-1]["member"]["identifier"] == "jdoe"
    assert connectwise_sandbox.ticket(12345)["status"]["name"] == "In Progress"
    entries = connectwise_sandbox.time_entries(12345)
    assert len(entries) == entries_before + 1 and entries[-1]["actualHours"] == 0.25
    with app.app_context():
        row = db.session.execute(
            db.select(VoiceConfiguration).filter_by(upn="dana.lee@contoso.example")
        ).scalar_one()
        assert (row.phone_number, row.dial_plan, row.updated_by) == (
            "+1 425 555 0199",
            "UK-DialPlan",
            CONTOSO_OPERATOR,
        )

    again = client.post("/admin/", data=form | {"csrf_token": token_of(client)})
    assert "Nothing changed" in client.get(again.headers["Location"]).get_data(as_text=True)
    assert len(connectwise_sandbox.notes(12345)) == before + 1
    assert len(connectwise_sandbox.time_entries(12345)) == entries_before + 1

    bad = client.post("/admin/", data=form | {"csrf_token": token_of(client), "phone_number": "5"})
    assert bad.status_code == 200 and "E.164" in bad.get_data(as_text=True)
    unknown = client.post(
        "/admin/", data=form | {"csrf_token": token_of(client), "ticket": "999999"}
    )
    assert "Ticket #999999 was not found" in unknown.get_data(as_text=True)


@pytest.mark.parametrize("connectwise_sandbox_rules", ["lenient", "strict"], indirect=True)
def test_threecx_views_are_scoped_to_the_users_tenant(app):
    client = app.test_client()
    log_in(client, CONTOSO_OPERATOR)
    listing = client.get("/admin/threecx_users/").get_data(as_text=True)
    assert "Ortiz" in listing and "Becker" not in listing
    with app.app_context():
        becker = db.session.execute(db.select(PhoneUser).filter_by(last_name="Becker")).scalar_one()
        fabrikam_did = db.session.execute(db.select(Did).filter_by(tenant_id="fabrikam")).scalar()
    edit = client.get(f"/admin/threecx_users/edit/?id={becker.id}")
    assert edit.status_code == 302
    token = token_of(client)
    client.post("/admin/threecx_users/delete/", data={"id": becker.id, "csrf_token": token})
    client.post("/admin/threecx_dids/delete/", data={"id": fabrikam_did.id, "csrf_token": token})
    created = client.post(
        "/admin/threecx_users/new/",
        data={
            "csrf_token": token,
            "extension": "250",
            "first_name": "Lena",
            "last_name": "Fischer",
            "email": "",
            "outbound_caller_id": "",
        },
    )
    assert created.status_code == 302
    duplicate = client.post(
        "/admin/threecx_users/new/",
        data={"csrf_token": token, "extension": "250", "first_name": "X", "last_name": "Y"},
        follow_redirects=True,
    )
    assert "Extension 250 already exists." in duplicate.get_data(as_text=True)
    choices = client.get("/admin/threecx_dids/new/").get_data(as_text=True)
    assert '<option value="250">250 — Lena Fischer</option>' in choices
    assert "301 — Tom Becker" not in choices
    with app.app_context():
        assert db.session.get(PhoneUser, becker.id) is not None  # other tenant: untouched
        assert db.session.get(Did, fabrikam_did.id) is not None
        lena = db.session.execute(db.select(PhoneUser).filter_by(extension="250")).scalar_one()
        assert lena.tenant_id == "contoso" and lena.email is None

    fabrikam = app.test_client()
    log_in(fabrikam, FABRIKAM_OPERATOR)
    assert "Fischer" not in fabrikam.get("/admin/threecx_users/").get_data(as_text=True)


@pytest.mark.parametrize("connectwise_sandbox_rules", ["lenient", "strict"], indirect=True)
def test_threecx_notes_use_field_labels_and_deletions_are_logged_with_a_ticket(
    app, connectwise_sandbox
):
    client = app.test_client()
    log_in(client, CONTOSO_OPERATOR)
    with app.app_context():
        sam = db.session.execute(db.select(PhoneUser).filter_by(last_name="Ortiz")).scalar_one()
        sam_id = sam.id
    before = len(connectwise_sandbox.notes(12345))
    entries_before = len(connectwise_sandbox.time_entries(12345))
    edited = client.post(
        f"/admin/threecx_users/edit/?id={sam_id}",
        data={
            "csrf_token": token_of(client),
            "extension": "202",
            "first_name": "Sam",
            "last_name": "Ortiz",
            "email": "sam.ortiz@contoso.example",
            "outbound_caller_id": "+1 425 555 0155",
            "connectwise_ticket": "12345",
        },
    )
    assert edited.status_code == 302
    note = connectwise_sandbox.notes(12345)[-1]["text"]
    assert note.startswith(
        "Updated 3CX user ext. 202 (Sam Ortiz)\n"
        '- Outbound caller ID: "+1 425 555 0100" → "+1 425 555 0155"'
    )
    assert "outbound_caller_id" not in note
    assert len(connectwise_sandbox.time_entries(12345)) == entries_before + 1

    created = client.post(
        "/admin/threecx_users/new/",
        data={"csrf_token": token_of(client), "extension": "260", "first_name": "Ada",
              "last_name": "Byron", "email": "", "outbound_caller_id": ""},
    )  # fmt: skip
    assert created.status_code == 302
    with app.app_context():
        ada_id = db.session.execute(db.select(PhoneUser.id).filter_by(extension="260")).scalar()
    count = len(connectwise_sandbox.notes(12345))
    client.post("/admin/threecx_users/delete/", data={"id": ada_id, "csrf_token": token_of(client)})
    assert len(connectwise_sandbox.notes(12345)) == count  # no ticket: nothing logged
    client.post(
        f"/admin/threecx_users/edit/?id={sam_id}",
        data={"csrf_token": token_of(client), "extension": "202", "first_name": "Sam",
              "last_name": "Ortiz", "email": "", "outbound_caller_id": ""},
    )  # fmt: skip
    count = len(connectwise_sandbox.notes(12345))
    deleted = client.post(
        "/admin/threecx_users/delete/",
        data={"id": sam_id, "csrf_token": token_of(client), "connectwise_ticket": "#12345"},
    )
    assert deleted.status_code == 302
    told = " ".join(client.get(deleted.headers["Location"]).get_data(as_text=True).split())
    notes = connectwise_sandbox.notes(12345)
    assert len(notes) == count + 1
    assert notes[-1]["text"].startswith(
        'Deleted 3CX user ext. 202 (Sam Ortiz)\n- Extension: "202"\n- First name: "Sam"\n'
        '- Last name: "Ortiz"'
    )
    with app.app_context():
        assert db.session.get(PhoneUser, sam_id) is None
        assert db.session.get(PhoneUser, ada_id) is None
    assert notes[-1]["text"].count("Deleted") == 1 and count - before == 1
    # Both changes log their time; under a tenant that refuses overlapping entries the
    # second goes into the member's free time before the first (time already spent, never
    # booked ahead) instead of being refused.
    entries = connectwise_sandbox.time_entries(12345)
    assert len(entries) == entries_before + 2
    first, second = entries[-2], entries[-1]
    apart = second["timeEnd"] <= first["timeStart"] or second["timeStart"] >= first["timeEnd"]
    assert apart or not connectwise_sandbox.rules.overlapping_time
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert first["timeEnd"] <= now and second["timeEnd"] <= now
    assert "refused" not in told


# -- migrations --------------------------------------------------------------------------------


def test_migrations_create_exactly_the_models_and_downgrade_cleanly(tmp_path):
    app = create_app(
        {
            "CONNECTWISE_DEMO": False,
            "SECRET_KEY": "x",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'm.db'}",
        },
        instance_path=str(tmp_path / "instance"),
    )
    demo.run_migrations(app)
    with app.app_context():
        with db.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), db.metadata) == []
            heads = {r[0] for r in conn.execute(sa.text("select version_num from alembic_version"))}
        assert heads == {"ex0002"}  # one head: the merge of ex0001 and cw0003
        from flask_migrate import downgrade

        with demo.logging_kept():
            downgrade(revision="example@base")
        tables = set(sa.inspect(db.engine).get_table_names())
        assert tables & EXAMPLE_TABLES == set()
        assert "connectwise_credentials" in tables
    dispose(app)
