"""Secrets echoed back by ConnectWise, in any letter case or encoding, are redacted everywhere.

A ``responses`` server answers every API call with an error that echoes what it was sent: the
client id in upper case, the ``Authorization`` header (``Basic <base64>``), the base64 value in
lower case, the keys in swapped case, ``company+public:private``. None of it may reach an
answer, a flash, ``last_error``, the change log, any database row or a log line.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import re
from typing import Any

import pytest
import responses
import sqlalchemy as sa

from flask_connectwise.redaction import REDACTED, Redactor, basic_token
from tests.admin_helpers import TENANT_A, AdminUser, make_admin_app
from tests.hosts import cw_of

BASE = "https://cw.example.test"
COMPANY = "acme"
CRED = "/admin/connectwise/credentials"
CHANGES = "/admin/connectwise/change-log"
PREFIX = f"/api/admin/tenant/{TENANT_A}/connectwise"


def forms_of(canaries: Any) -> list[str]:
    """Every form of the secrets that must not appear (compared case-insensitively)."""
    token = basic_token(COMPANY, canaries.public_key, canaries.private_key)
    return [
        *canaries.all(),
        token,
        token.rstrip("="),
        f"{canaries.public_key}:{canaries.private_key}",
    ]


def leaks(texts: list[str], canaries: Any) -> list[tuple[str, str]]:
    found = []
    for text in texts:
        low = text.lower()
        for secret in forms_of(canaries):
            if secret.lower() in low:
                found.append((secret, text[:200]))
    return found


def echo(request: Any) -> tuple[int, dict[str, str], str]:
    """ConnectWise (or a proxy) echoing the request's credentials in its error answers."""
    if "/login/companyinfo/" in request.url:
        return 200, {}, json.dumps({"Codebase": "v2025_1/", "CompanyID": COMPANY})
    client_id = request.headers["clientId"]
    auth = request.headers["Authorization"]
    token = auth.split(" ", 1)[1]
    decoded = base64.b64decode(token).decode()
    message = (
        f"Client {client_id.upper()} is not registered; header was 'Authorization: {auth}' "
        f"({token.lower()}), user {decoded.swapcase()}"
    )
    body: dict[str, Any] = {"code": f"Bad{client_id.lower()}", "message": message}
    if request.method in ("POST", "PATCH"):
        body["errors"] = [
            {
                "code": "InvalidField",
                "message": f"clientId {client_id.upper()} / {auth.upper()}",
                "field": client_id.swapcase(),
                "resource": token.lower(),
            }
        ]
        return 400, {}, json.dumps(body)
    return 403, {}, json.dumps(body)


@pytest.fixture
def app(tmp_path: Any, canaries: Any) -> Any:
    app = make_admin_app(
        f"sqlite:///{tmp_path / 'redaction.db'}",
        CONNECTWISE_ALLOWED_HOSTS=["cw.example.test"],
    )
    with app.app_context():
        tenants = cw_of(app).tenants
        # cw.example.test is served by `responses`; pretend it resolves to a public address.
        tenants.policy = dataclasses.replace(tenants.policy, resolver=lambda host: ["52.1.2.3"])
        tenants.set_flag(TENANT_A, True, actor="test")
    yield app
    with app.app_context():
        app.extensions["test_db"].engine.dispose()


@responses.activate
def test_echoed_secrets_reach_no_answer_flash_log_or_row(app, canaries, caplog):
    responses.add_callback(responses.GET, re.compile(rf"{re.escape(BASE)}/.*"), callback=echo)
    responses.add_callback(responses.POST, re.compile(rf"{re.escape(BASE)}/.*"), callback=echo)
    responses.add_callback(responses.PATCH, re.compile(rf"{re.escape(BASE)}/.*"), callback=echo)
    caplog.set_level(logging.DEBUG)
    user = AdminUser(app, TENANT_A)
    csrf = {"X-CSRFToken": user.token}
    texts: list[str] = []

    stored = user.http.post(
        f"{PREFIX}/credentials",
        json={
            "baseUrl": BASE,
            "companyId": COMPANY,
            "publicKey": canaries.public_key,
            "privateKey": canaries.private_key,
            "clientId": canaries.client_id,
            "defaultTimeMinutes": 15,
            "autoUpdateStatus": False,
        },
        headers=user.headers | csrf,
    )
    assert stored.status_code == 200, stored.get_data(as_text=True)

    # JSON answers: a search and a ticket read (403), a log-change (note/time entry refused).
    for response in (
        user.http.get(f"{PREFIX}/tickets/search?q=printer", headers=user.headers),
        user.http.get(f"{PREFIX}/tickets/7", headers=user.headers),
        user.http.post(
            f"{PREFIX}/tickets/7/log-change",
            json={"noteText": "Changed the voice policy", "hours": 0.25},
            headers=user.headers | csrf,
        ),
    ):
        assert response.status_code != 500, response.get_data(as_text=True)
        texts.append(response.get_data(as_text=True))
    # ConnectWise's message is shown, with the secrets blanked.
    assert REDACTED in json.loads(texts[0])["message"]

    # The admin: Test connection (flash and last_error), the edit page's status list, the
    # change log's list and details pages, the retry flash and the CSV export.
    with app.app_context():
        row_id = cw_of(app).tenants.credentials_row(TENANT_A).id
    user.post(f"{CRED}/test/", {"id": row_id})
    texts += [message for _, message in user.flashes()]
    texts.append(user.get(f"{CRED}/").get_data(as_text=True))
    texts.append(user.get(f"{CRED}/edit/?id={row_id}").get_data(as_text=True))
    texts.append(user.get(f"{CRED}/details/?id={row_id}").get_data(as_text=True))
    texts.append(user.get(f"{CRED}/export/csv/").get_data(as_text=True))
    texts.append(user.get(f"{CHANGES}/").get_data(as_text=True))
    with app.app_context():
        change = (
            app.extensions["test_db"]
            .session.execute(sa.text("SELECT id FROM connectwise_change_log"))
            .scalar_one()
        )
    texts.append(user.get(f"{CHANGES}/details/?id={change}").get_data(as_text=True))
    user.post(f"{CHANGES}/retry/", {"id": change})
    texts += [message for _, message in user.flashes()]

    # Every row of every table, and every log record.
    with app.app_context():
        engine = app.extensions["test_db"].engine
        with engine.connect() as conn:
            for table in sa.inspect(engine).get_table_names():
                for row in conn.execute(sa.text(f'SELECT * FROM "{table}"')):  # noqa: S608
                    texts.append(f"{table}: {tuple(row)!r}")
        last_error = cw_of(app).tenants.credentials_row(TENANT_A).last_error
    texts += [record.getMessage() + repr(record.__dict__) for record in caplog.records]

    assert last_error and REDACTED in last_error  # the echo arrived and was redacted
    assert leaks(texts, canaries) == []
    echoed = [c for c in responses.calls if "companyinfo" not in c.request.url]
    assert len(echoed) >= 4


def test_the_redactor_covers_case_encodings_and_any_basic_value(canaries):
    redact = Redactor.for_credentials(
        COMPANY, canaries.public_key, canaries.private_key, canaries.client_id
    )
    token = basic_token(COMPANY, canaries.public_key, canaries.private_key)
    other = basic_token(COMPANY.upper(), canaries.public_key, canaries.private_key)
    samples = [
        canaries.client_id.upper(),
        canaries.public_key.swapcase(),
        f"key={canaries.private_key.lower()}&x",
        token,
        token.lower(),
        token.rstrip("="),
        f"Authorization: basic {other}",  # a Basic value we did not send verbatim
        f"{COMPANY}+{canaries.public_key}:{canaries.private_key}",
        base64.urlsafe_b64encode(canaries.client_id.encode()).decode(),
    ]
    for sample in samples:
        cleaned = redact(f"before {sample} after")
        assert REDACTED in cleaned, sample
        assert leaks([cleaned], canaries) == [], sample
        assert cleaned.startswith("before ") and cleaned.endswith(" after")
    # Ordinary words stay.
    plain = "Basic authentication failed for company acme (2 tries)."
    assert redact(plain) == plain
