"""docs/existing-app.md followed from scratch: an existing Flask-Admin app with its own
Flask-Migrate history adds the extension (tests/existing_app/app.py), and the ``flask`` CLI
(a subprocess, as a developer types it) upgrades and keeps autogenerating the host's revisions."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from flask_connectwise.crypto import generate_key
from flask_connectwise.testing import configure_tenant, post_form

pytest_plugins = ["flask_connectwise.testing"]

AFTER = Path(__file__).resolve().parent / "existing_app" / "app.py"
REPO = AFTER.parent.parent.parent
PACKAGE_VERSIONS = REPO / "flask_connectwise" / "migrations" / "versions"


def before_source() -> str:
    """The app as it was before the extension: the lines marked ``# +`` taken out."""
    lines = [line for line in AFTER.read_text().splitlines() if "# +" not in line]
    text = "\n".join(lines) + "\n"
    return text.replace("    pass\n", "").replace("PhoneView(Phone", "ModelView(Phone")


class Host:
    def __init__(self, folder: Path, database_url: str, sandbox_config: dict[str, Any]) -> None:
        self.folder = folder
        self.env = os.environ | {
            "FLASK_APP": "app",
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
            "FLASK_SQLALCHEMY_DATABASE_URI": database_url,
            "FLASK_SECRET_KEY": "test",
            "FLASK_CONNECTWISE_ENCRYPTION_KEYS": json.dumps([generate_key("k1")]),
            "FLASK_CONNECTWISE_SWEEP_SECONDS": "0",
        }
        for name, value in sandbox_config.items():
            self.env[f"FLASK_{name}"] = json.dumps(value)

    def write(self, source: str) -> None:
        (self.folder / "app.py").write_text(source)

    def flask(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "flask", *args],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if ok:
            assert done.returncode == 0, done.stdout + done.stderr
        return done

    def revisions(self) -> set[Path]:
        return set((self.folder / "migrations" / "versions").glob("*.py"))

    def load(self, monkeypatch: pytest.MonkeyPatch) -> Any:
        for name, value in self.env.items():
            if name.startswith("FLASK_"):
                monkeypatch.setenv(name, value)
        spec = importlib.util.spec_from_file_location("existing_host_app", self.folder / "app.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module


def test_an_existing_app_adds_the_extension_and_keeps_its_migrations(
    tmp_path, database_url, connectwise_sandbox, connectwise_sandbox_config, monkeypatch
):
    host = Host(tmp_path, database_url, connectwise_sandbox_config)
    # The existing app: one model, its own history.
    host.write(before_source())
    host.flask("db", "init")
    host.flask("db", "migrate", "-m", "phones")
    host.flask("db", "upgrade")
    # The documented lines, deployed as the README used to say (two heads: existing databases).
    host.write(AFTER.read_text())
    refused = host.flask("db", "upgrade", ok=False)
    assert refused.returncode != 0
    assert "flask connectwise migrations merge" in refused.stderr
    host.flask("db", "upgrade", "heads")
    # Once: the merge revision, in the host's own versions folder.
    known = host.revisions()
    merged = host.flask("connectwise", "migrations", "merge")
    (merge,) = host.revisions() - known
    assert "cw0003" in merge.read_text() and str(merge) in merged.stdout
    upgraded = host.flask("db", "upgrade")
    assert "flask connectwise migrations merge" not in upgraded.stderr
    assert "Nothing to merge" in host.flask("connectwise", "migrations", "merge").stdout
    # A change logged to the sandbox through the admin form.
    module = host.load(monkeypatch)
    app = module.app
    try:
        with app.app_context():
            configure_tenant(app, "main", connectwise_sandbox)
        client = app.test_client()
        done = post_form(client, "/admin/phone/new/", {"number": "+1 555 0100"}, ticket=12345)
        assert done.status_code == 302, done.get_data(as_text=True)
        for _ in range(50):
            if connectwise_sandbox.notes(12345):
                break
            time.sleep(0.1)
        assert "+1 555 0100" in connectwise_sandbox.notes(12345)[-1]["text"]
    finally:
        with app.app_context():
            from flask_connectwise.current import state

            state().dispatcher.close(wait=True)
            module.db.engine.dispose()
    # The host's next model change autogenerates as before, without the extension's tables.
    source = AFTER.read_text().replace(
        "    owner = db.Column(db.String(64))\n",
        "    owner = db.Column(db.String(64))\n    extension = db.Column(db.String(8))\n",
    )
    host.write(source)
    known = host.revisions()
    host.flask("db", "migrate", "-m", "extension")
    (revision,) = host.revisions() - known
    text = revision.read_text()
    assert (
        "add_column('phone'" in text
        or 'add_column("phone"' in text
        or "batch_alter_table('phone'" in text
    )
    assert "connectwise" not in text
    assert f"down_revision = '{merge.name.split('_')[0]}'" in text
    host.flask("db", "upgrade")


def test_a_new_app_starts_its_history_in_its_own_folder(
    tmp_path, database_url, connectwise_sandbox_config
):
    """An app with no migrations yet adds the extension first: ``flask db init`` works, and its
    first revisions (autogenerated or written by hand) land in its own versions folder on top of
    the extension's head, never in the installed package."""
    package = set(PACKAGE_VERSIONS.glob("*.py"))
    try:
        host = Host(tmp_path, database_url, connectwise_sandbox_config)
        host.write(AFTER.read_text())
        host.flask("db", "init")
        host.flask("db", "upgrade")
        host.flask("db", "migrate", "-m", "phones")
        (first,) = host.revisions()
        assert (
            "create_table('phone'" in first.read_text()
            or 'create_table("phone"' in first.read_text()
        )
        assert "down_revision = 'cw0003'" in first.read_text()
        host.flask("db", "upgrade")
        assert "No changes in schema detected" in host.flask("db", "migrate", "-m", "none").stderr
        assert host.revisions() == {first}
        host.flask("db", "revision", "-m", "by hand")
        (by_hand,) = host.revisions() - {first}
        assert f"down_revision = '{first.name.split('_')[0]}'" in by_hand.read_text()
        upgraded = host.flask("db", "upgrade")
        assert "migrations merge" not in upgraded.stderr
        assert set(PACKAGE_VERSIONS.glob("*.py")) == package
    finally:  # a revision written into the package by mistake must not outlive the test
        for stray in set(PACKAGE_VERSIONS.glob("*.py")) - package:
            stray.unlink()


# --- docs/testing.md shows the test below verbatim (test_the_testing_page_shows_the_host_test) ---
@pytest.fixture
def host_app(connectwise_sandbox_config, monkeypatch):
    host = Host(Path("/nonexistent"), "sqlite://", connectwise_sandbox_config)
    for name, value in host.env.items():
        if name.startswith("FLASK_"):
            monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("host_test_app", AFTER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with module.app.app_context():
        module.db.create_all()
    yield module.app
    with module.app.app_context():
        from flask_connectwise.current import state

        state().dispatcher.close(wait=True)


# host-test-start
def test_a_phone_change_is_logged_to_its_ticket(host_app, connectwise_sandbox):
    configure_tenant(host_app, "main", connectwise_sandbox)  # credentials stored, flag on
    client = host_app.test_client()

    response = post_form(  # the page's CSRF and idempotency tokens, plus the ticket
        client, "/admin/phone/new/", {"number": "+1 555 0100"}, ticket=12345
    )

    assert response.status_code == 302
    note = connectwise_sandbox.notes(12345)[-1]
    assert 'Number: "+1 555 0100"' in note["text"]
    assert connectwise_sandbox.requests(method="PATCH") == []


# host-test-end


# strict-test-start
@pytest.mark.parametrize("connectwise_sandbox_rules", ["lenient", "strict"], indirect=True)
def test_time_is_billed_under_strict_tenant_rules(host_app, connectwise_sandbox):
    configure_tenant(  # strict tenants refuse time without a work type and a work role
        host_app, "main", connectwise_sandbox,
        workType={"id": 3, "name": "Regular"}, workRole={"id": 11, "name": "System Engineer"},
    )  # fmt: skip
    client = host_app.test_client()

    post_form(client, "/admin/phone/new/", {"number": "+1 555 0100"}, ticket=12345)

    entry = connectwise_sandbox.time_entries(12345)[-1]
    assert entry["member"]["identifier"] == "jdoe"
    assert (entry["workType"]["name"], entry["workRole"]["name"]) == ("Regular", "System Engineer")


# strict-test-end


@pytest.mark.parametrize("marker", ["host-test", "strict-test"])
def test_the_testing_page_shows_the_host_test(marker):
    source = Path(__file__).read_text()
    test = source.split(f"# {marker}-start\n")[1].split(f"# {marker}-end")[0]
    assert len(test.strip().splitlines()) <= 15
    page = (REPO / "docs" / "testing.md").read_text()
    assert f"```python\n{test}```" in page


def test_a_field_without_any_tenant_warns_once(caplog):
    from flask import Flask, render_template_string
    from flask_sqlalchemy import SQLAlchemy
    from flask_wtf import FlaskForm

    from flask_connectwise import ConnectWise, TicketSearchField
    from flask_connectwise.fields import NO_TENANT_WARNING

    app = Flask("no-tenant-host")
    app.config |= {"SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "x"}
    app.config["CONNECTWISE_ENCRYPTION_KEYS"] = [generate_key("k1")]
    app.config["WTF_CSRF_ENABLED"] = False
    ConnectWise(app, db=SQLAlchemy(app))

    class Form(FlaskForm):
        ticket = TicketSearchField("Ticket")

    with app.test_request_context():
        for _ in range(2):
            assert render_template_string("{{ form.ticket() }}", form=Form()) == ""
    assert [r.getMessage() for r in caplog.records].count(NO_TENANT_WARNING) == 1


def test_an_admin_view_without_any_tenant_warns_once(caplog):
    """The mixin drops the field before it renders; the missing tenant is still logged (once)."""
    from flask import Flask
    from flask_admin import Admin
    from flask_admin.contrib.sqla import ModelView
    from flask_sqlalchemy import SQLAlchemy

    from flask_connectwise import ConnectWise, ConnectWiseChangeLogging
    from flask_connectwise.fields import NO_TENANT_WARNING

    app = Flask("no-tenant-admin-host")
    app.config |= {"SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "x"}
    app.config["CONNECTWISE_ENCRYPTION_KEYS"] = [generate_key("k1")]
    db = SQLAlchemy(app)
    admin = Admin(app)
    cw = ConnectWise(app, db=db, admin=admin)
    cw.authorize(lambda tenant_id, action: True)

    class Handset(db.Model):  # type: ignore[name-defined]
        id = db.Column(db.Integer, primary_key=True)
        number = db.Column(db.String(32))

    class HandsetView(ConnectWiseChangeLogging, ModelView):
        pass

    admin.add_view(HandsetView(Handset, db))
    with app.app_context():
        db.create_all()
    client = app.test_client()
    for _ in range(2):
        page = client.get("/admin/handset/new/")
        assert page.status_code == 200 and 'name="connectwise_ticket"' not in page.text
    assert [r.getMessage() for r in caplog.records].count(NO_TENANT_WARNING) == 1
