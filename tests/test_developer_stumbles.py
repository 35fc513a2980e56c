"""Issue 16's developer stumbles: demo keys vs the standalone sandbox, the sandbox's 404 help,
the CSRF token for JSON callers, keys from the environment, no "no keys" warning from
``keys generate``, loopback refusals naming their setting, naming rows in notes."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

import flask_connectwise
from flask_connectwise import ConnectWiseClient
from flask_connectwise.crypto import Keyring
from flask_connectwise.sandbox import Sandbox
from flask_connectwise.sandbox.__main__ import DEMO_CREDENTIALS
from flask_connectwise.sandbox.control import CONTROL_ROUTES
from flask_connectwise.testing import configure_tenant, post_form
from flask_connectwise.urlpolicy import ALLOW_SETTING, UnsafeURLError, URLPolicy

pytest_plugins = ["flask_connectwise.testing"]

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
HOST_APP = REPO / "tests" / "existing_app" / "app.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_standalone_sandbox_accepts_the_documented_demo_keys():
    for page in ("quickstart.md", "sandbox.md"):
        text = (DOCS / page).read_text()
        for value in DEMO_CREDENTIALS.values():
            assert value in text, (page, value)
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "flask_connectwise.sandbox", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ | {"PYTHONPATH": str(REPO)},
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert "listening" in banner, banner
        url = f"http://127.0.0.1:{port}"
        client = ConnectWiseClient(base_url=url, **DEMO_CREDENTIALS)
        assert client.get_ticket(12345).id == 12345
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_sandbox_404_lists_its_control_routes_and_members():
    sandbox_doc = (DOCS / "sandbox.md").read_text()
    with Sandbox() as sb:
        body = requests.get(sb.url + "/", timeout=10).json()
        assert body["code"] == "NotFound"
        assert body["sandbox"]["controlRoutes"] == list(CONTROL_ROUTES)
        assert any(m.startswith("tech (tech@company.com)") for m in body["sandbox"]["members"])
        unknown = requests.get(sb.url + "/_sandbox/nope", timeout=10).json()
        assert unknown["sandbox"]["controlRoutes"] == list(CONTROL_ROUTES)
        for route in CONTROL_ROUTES:  # each one served (not an unknown route) and documented
            assert f"`{route}`" in sandbox_doc, route
            method, path = route.split(" ")
            answer = requests.request(method, sb.url + path.replace("<id>", "12345"), timeout=10)
            assert "Unknown sandbox control route" not in answer.text, route
        for member in sb.members():
            assert f"`{member['identifier']}`" in sandbox_doc
            assert f"`{member['primaryEmail']}`" in sandbox_doc
        # The API's own 404s keep ConnectWise's body.
        api_404 = requests.get(sb.url + "/v9_9/apis/3.0/service/tickets", timeout=10).json()
        assert "sandbox" not in api_404


def test_csrf_token_is_public_and_documented_for_json_callers():
    assert "csrf_token" in flask_connectwise.__all__
    from flask_connectwise.csrf import csrf_token

    assert flask_connectwise.csrf_token is csrf_token
    text = (DOCS / "http-api.md").read_text()
    assert "flask_connectwise.csrf_token()" in text and "X-CSRFToken" in text
    assert "without Flask-WTF" in text


def _flask(app_dir: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", *args],
        cwd=app_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_keys_generate_is_quiet_and_its_output_works_from_the_environment(tmp_path):
    (tmp_path / "app.py").write_text(HOST_APP.read_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_CONNECTWISE")}
    env |= {
        "PYTHONPATH": str(REPO),
        "FLASK_SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "FLASK_SECRET_KEY": "test",
    }
    done = _flask(tmp_path, env, "connectwise", "keys", "generate")
    assert done.returncode == 0, done.stderr
    assert "cannot store or read credentials" not in done.stderr
    (key,) = done.stdout.split()
    older = _flask(tmp_path, env, "connectwise", "keys", "generate").stdout.strip()
    # docs/existing-app.md: the printed line as is, several comma-separated (newest first),
    # or a JSON list, in FLASK_CONNECTWISE_ENCRYPTION_KEYS (app.config.from_prefixed_env()).
    doc = (DOCS / "existing-app.md").read_text()
    assert "FLASK_CONNECTWISE_ENCRYPTION_KEYS" in doc and "from_prefixed_env" in doc
    for value in (key, f"{key},{older}", json.dumps([key, older])):
        check = """
from app import app
from flask_connectwise.crypto import Keyring
ring = Keyring.from_config(app.config["CONNECTWISE_ENCRYPTION_KEYS"])
print(ring.primary_key_id, len(ring.key_ids))
"""
        shown = subprocess.run(
            [sys.executable, "-c", check],
            cwd=tmp_path,
            env=env | {"FLASK_CONNECTWISE_ENCRYPTION_KEYS": value},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.split()[0] == key.split(":")[0]
    assert Keyring.from_config(f"{key},{older}").primary_key_id == key.split(":")[0]


def test_the_no_keys_warning_comes_with_the_first_request(caplog, monkeypatch):
    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy

    from flask_connectwise import ConnectWise

    app = Flask(__name__)
    app.config.update(SQLALCHEMY_DATABASE_URI="sqlite://", CONNECTWISE_SWEEP_SECONDS=0)
    db = SQLAlchemy(app)
    with caplog.at_level(logging.WARNING):
        ConnectWise(app, db=db)
        assert "cannot store or read credentials" not in caplog.text
        app.test_client().get("/nowhere")
        app.test_client().get("/nowhere")
    assert caplog.text.count("cannot store or read credentials") == 1


@pytest.mark.parametrize(
    ("url", "addresses"),
    [
        ("https://127.0.0.1", None),
        ("https://localhost:8765", None),
        ("https://cw.example.com", ["127.0.0.1"]),
    ],
)
def test_loopback_refusals_name_the_setting_that_allows_it(url, addresses):
    policy = URLPolicy(
        allowed_hosts=("cw.example.com",), resolver=lambda host: list(addresses or [])
    )
    with pytest.raises(UnsafeURLError, match=ALLOW_SETTING):
        policy.check(url)


def test_private_addresses_say_no_setting_allows_them():
    policy = URLPolicy(allowed_hosts=("cw.example.com",), resolver=lambda host: ["10.0.0.5"])
    with pytest.raises(UnsafeURLError, match=r"private.*no setting allows private ones"):
        policy.check("https://cw.example.com")


@pytest.fixture
def named_host(connectwise_sandbox_config, monkeypatch):
    env = {
        "FLASK_SQLALCHEMY_DATABASE_URI": "sqlite://",
        "FLASK_SECRET_KEY": "test",
        "FLASK_CONNECTWISE_ENCRYPTION_KEYS": json.dumps([flask_connectwise.crypto.generate_key()]),
        "FLASK_CONNECTWISE_SWEEP_SECONDS": "0",
    } | {f"FLASK_{k}": json.dumps(v) for k, v in connectwise_sandbox_config.items()}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("named_host_app", HOST_APP)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with module.app.app_context():
        module.db.create_all()
    yield module
    with module.app.app_context():
        from flask_connectwise.current import state

        state().dispatcher.close(wait=True)


def test_a_view_names_its_rows_in_notes(named_host, connectwise_sandbox):
    # docs/forms.md: override connectwise_subject(model) in the view.
    assert "def connectwise_subject(self, model):" in (DOCS / "forms.md").read_text()
    module = named_host
    module.PhoneView.connectwise_subject = lambda self, model: f"Phone {model.number}"
    app = module.app
    with app.app_context():
        configure_tenant(app, "main", connectwise_sandbox)
    client = app.test_client()
    done = post_form(client, "/admin/phone/new/", {"number": "+1 555 0199"}, ticket=12346)
    assert done.status_code == 302, done.get_data(as_text=True)
    for _ in range(50):
        texts = [n["text"] for n in connectwise_sandbox.notes(12346)]
        if any("+1 555 0199" in t for t in texts):
            break
        time.sleep(0.1)
    note = next(t for t in texts if "+1 555 0199" in t)
    assert "Phone +1 555 0199" in note and "Phone #" not in note
