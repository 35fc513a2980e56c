"""The JSON routes through a host app using only the public API, against the sandbox."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.hosts import TENANT_A, TENANT_B, cw_of
from tests.json_api import PREFIX, Api, configure

#: The tenant's time defaults, as a correct configuration for a strict ConnectWise has them.
TIME_DEFAULTS = {
    "workType": {"id": 3, "name": "Regular"},
    "workRole": {"id": 11, "name": "System Engineer"},
}


def with_time_defaults(api: Api, sandbox: Any, **choices: Any) -> Api:
    """Give the tenant a default work type and role (``choices`` replace them; ``None``
    leaves one unset) through ``POST /credentials``."""
    creds = sandbox.credentials
    body = (
        {
            "baseUrl": creds["base_url"],
            "companyId": creds["company_id"],
            "publicKey": creds["public_key"],
            "privateKey": creds["private_key"],
            "clientId": creds["client_id"],
        }
        | TIME_DEFAULTS
        | choices
    )
    answer = api.call("POST", "/credentials", body)
    assert answer.status_code == 200, answer.get_json()
    return api


@pytest.mark.parametrize("connectwise_sandbox_rules", ["lenient", "strict"], indirect=True)
def test_seed_testing_guide_flow(app, connectwise_sandbox):
    api = with_time_defaults(configure(app, connectwise_sandbox), connectwise_sandbox)
    shown = api.call("GET", "/credentials").get_json()
    assert shown["configured"] is True
    assert shown["publicKey"].startswith("••••") and len(shown["publicKey"]) <= 8
    assert shown["privateKey"] == "••••"
    assert connectwise_sandbox.credentials["private_key"] not in json.dumps(shown)
    assert api.call("GET", "/enabled").get_json() == {"enabled": True}

    by_number = api.call("GET", "/tickets/search?q=12345").get_json()
    assert by_number[0]["id"] == 12345
    assert set(by_number[0]) >= {"id", "summary", "status", "company", "board"}
    by_summary = api.call("GET", "/tickets/search?q=printer").get_json()
    assert by_summary and all("printer" in t["summary"].lower() for t in by_summary)
    assert len(by_summary) <= 25

    notes_before = len(connectwise_sandbox.notes(12345))
    times_before = len(connectwise_sandbox.time_entries(12345))
    ticket = connectwise_sandbox.ticket(12345)
    status = next(
        s
        for s in connectwise_sandbox.board_statuses(ticket["board"]["id"])
        if s["id"] != ticket["status"]["id"]
        and not s.get("inactive")
        and not s.get("closedStatus")
        and not s.get("timeEntryNotAllowed")
    )
    answer = api.call(
        "POST",
        "/tickets/12345/log-change",
        {
            "noteText": "Updated voice configuration for test user",
            "memberIdentifier": "tech@company.com",
            "hours": 0.25,
            "statusId": status["id"],
        },
    )
    body = answer.get_json()
    assert answer.status_code == 200, body
    assert body["note"]["ok"] and body["timeEntry"]["ok"] and body["status"]["ok"]
    notes = connectwise_sandbox.notes(12345)
    entries = connectwise_sandbox.time_entries(12345)
    assert len(notes) == notes_before + 1
    assert len(entries) == times_before + 1
    assert "Updated voice configuration for test user" in notes[-1]["text"]
    assert notes[-1]["member"]["identifier"] == "tech"
    assert entries[-1]["actualHours"] == 0.25
    assert connectwise_sandbox.ticket(12345)["status"]["id"] == status["id"]


def test_log_change_defaults_to_the_tenant_minutes(app, connectwise_sandbox):
    api = configure(app, connectwise_sandbox)
    answer = api.call("POST", "/tickets/12345/log-change", {"noteText": "x"})
    assert answer.status_code == 200
    assert answer.get_json()["status"]["state"] == "skipped"
    assert connectwise_sandbox.time_entries(12345)[-1]["actualHours"] == 0.25


def test_failed_step_does_not_hide_the_others(app, connectwise_sandbox):
    api = configure(app, connectwise_sandbox)
    connectwise_sandbox.inject_fault("time/entries", "status", status=403)
    body = api.call("POST", "/tickets/12345/log-change", {"noteText": "x", "hours": 0.5}).get_json()
    assert body["note"]["ok"] is True and body["note"]["id"]
    assert body["timeEntry"]["ok"] is False and body["timeEntry"]["error"]
    assert body["state"] == "retrying"


def test_idempotency_key(app, connectwise_sandbox):
    api = configure(app, connectwise_sandbox)
    before = len(connectwise_sandbox.notes(12345))
    headers = {"Idempotency-Key": "submit-1"}
    first = api.call(
        "POST", "/tickets/12345/log-change", {"noteText": "once"}, headers=headers
    ).get_json()
    again = api.call(
        "POST", "/tickets/12345/log-change", {"noteText": "once"}, headers=headers
    ).get_json()
    assert again["changeId"] == first["changeId"] and again["replayed"] is True
    assert len(connectwise_sandbox.notes(12345)) == before + 1
    other = api.call(
        "POST", "/tickets/12345/log-change", {"noteText": "different"}, headers=headers
    )
    assert other.status_code == 409


def test_blank_secret_keeps_the_stored_one(app, connectwise_sandbox):
    api = configure(app, connectwise_sandbox)
    creds = connectwise_sandbox.credentials
    answer = api.call(
        "POST",
        "/credentials",
        {
            "baseUrl": creds["base_url"],
            "companyId": creds["company_id"],
            "publicKey": "",
            "privateKey": "",
            "clientId": None,
            "defaultTimeMinutes": 30,
        },
    )
    assert answer.status_code == 200
    assert answer.get_json()["defaultTimeMinutes"] == 30
    assert api.call("GET", "/tickets/12345").status_code == 200  # old secrets still work


def test_first_save_requires_the_secrets(app, connectwise_sandbox):
    api = Api(app, TENANT_A)
    with app.app_context():
        cw_of(app).tenants.set_flag(TENANT_A, True)
    answer = api.call(
        "POST",
        "/credentials",
        {"baseUrl": connectwise_sandbox.url, "companyId": "x", "publicKey": "p"},
    )
    assert answer.status_code == 400
    assert answer.get_json()["field"] == "privateKey"


@pytest.mark.parametrize(
    "url",
    [
        "http://api-na.myconnectwise.net",
        "https://evil.example.com",
        "https://api-na.myconnectwise.net:8443",
        "https://169.254.169.254",
        "https://10.0.0.1",
        "https://user:pw@api-na.myconnectwise.net",
        "https://api-na.myconnectwise.net/v4_6_release/apis/3.0",
        "http://192.168.1.10:8765",
        "javascript:alert(1)",
        "",
        # Parser differentials (refused before any DNS look-up; see test_urlpolicy.py).
        "https://evil.com\\.x.myconnectwise.net",
        "https://evil.com%2F.x.myconnectwise.net",
        "https://api-na.myconnectwise.net\t.evil.com",
        "https://api-na。myconnectwise。net",
        "https://evil.com#@api-na.myconnectwise.net",
    ],
)
def test_unsafe_base_urls_are_refused(app, url):
    api = Api(app, TENANT_A)
    with app.app_context():
        cw_of(app).tenants.set_flag(TENANT_A, True)
    answer = api.call(
        "POST",
        "/credentials",
        {
            "baseUrl": url,
            "companyId": "acme",
            "publicKey": "p" * 20,
            "privateKey": "q" * 20,
            "clientId": "c" * 20,
        },
    )
    assert answer.status_code == 400
    assert answer.get_json()["field"] == "baseUrl"
    assert api.call("GET", "/credentials").get_json()["configured"] is False


def test_flag_off_hides_everything_and_deletes_nothing(app, connectwise_sandbox):
    api = configure(app, connectwise_sandbox)
    with app.app_context():
        cw_of(app).tenants.set_flag(TENANT_A, False)
    assert api.call("GET", "/enabled").get_json() == {"enabled": False}
    for method, path in [
        ("GET", "/credentials"),
        ("GET", "/tickets/search?q=printer"),
        ("GET", "/tickets/12345"),
    ]:
        answer = api.call(method, path)
        assert answer.status_code == 404 and answer.get_json()["error"] == "feature_disabled"
    with app.app_context():
        cw_of(app).tenants.set_flag(TENANT_A, True)
    assert api.call("GET", "/credentials").get_json()["configured"] is True
    assert api.call("GET", "/tickets/12345").status_code == 200


def test_flag_loader_overrides_the_table(app, connectwise_sandbox, cw):
    api = configure(app, connectwise_sandbox)
    cw.flag_loader(lambda tenant: False)
    assert api.call("GET", "/enabled").get_json() == {"enabled": False}
    cw.flag_loader(lambda tenant: None)  # defer to the table
    assert api.call("GET", "/enabled").get_json() == {"enabled": True}


def test_search_is_cached_and_invalidated_by_new_credentials(app, connectwise_sandbox):
    api = configure(app, connectwise_sandbox)
    api.call("GET", "/tickets/search?q=printer")
    connectwise_sandbox.clear_requests()
    api.call("GET", "/tickets/search?q=Printer")
    api.call("GET", "/tickets/search?q=%20printer%20")
    assert connectwise_sandbox.requests == []
    configure(app, connectwise_sandbox)
    api.call("GET", "/tickets/search?q=printer")
    assert any(r.path == "service/tickets" for r in connectwise_sandbox.requests)


def test_operator_may_use_but_not_configure(app, connectwise_sandbox):
    configure(app, connectwise_sandbox)
    operator = Api(app, TENANT_A, role="operator")
    assert operator.call("GET", "/tickets/search?q=printer").status_code == 200
    assert operator.call("GET", "/credentials").status_code == 403
    assert operator.call("POST", "/credentials", {"baseUrl": "x"}).status_code == 403


ROUTES = [
    ("GET", "/credentials", None),
    (
        "POST",
        "/credentials",
        {
            "baseUrl": "http://127.0.0.1:1",
            "companyId": "x",
            "publicKey": "a" * 20,
            "privateKey": "b" * 20,
            "clientId": "c" * 20,
        },
    ),
    ("GET", "/enabled", None),
    ("GET", "/tickets/search?q=printer", None),
    ("GET", "/tickets/12345", None),
    ("POST", "/tickets/12345/notes", {"text": "x"}),
    ("POST", "/tickets/12345/time", {"hours": 1}),
    ("PATCH", "/tickets/12345/status", {"statusId": 102}),
    ("POST", "/tickets/12345/log-change", {"noteText": "x"}),
]


def _snapshot(app) -> tuple:
    with app.app_context():
        models = app.extensions["test_cw"].models
        db = app.extensions["test_db"]
        return tuple(
            sorted(
                repr(sorted((k, v) for k, v in vars(r).items() if not k.startswith("_")))
                for r in db.session.query(m).all()
            )
            for m in (models.Credentials, models.FeatureFlag, models.ChangeLog)
        )


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_every_route_across_tenants_is_refused_and_touches_nothing(
    app, connectwise_sandbox, method, path, body
):
    configure(app, connectwise_sandbox, TENANT_B)
    intruder = Api(app, TENANT_A)
    connectwise_sandbox.clear_requests()
    before = _snapshot(app)
    answer = intruder.call(method, path, body, tenant=TENANT_B)
    assert answer.status_code in (403, 404)
    assert connectwise_sandbox.requests == []
    assert _snapshot(app) == before


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_every_route_without_an_authorize_hook_is_403(tmp_path, method, path, body):
    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy

    from flask_connectwise import ConnectWise

    app = Flask("bare")
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'bare.db'}"
    db = SQLAlchemy(app)
    ConnectWise(app, db=db)
    with app.app_context():
        db.create_all()
    kw = {"data": json.dumps(body), "content_type": "application/json"} if body else {}
    answer = app.test_client().open(PREFIX.format(tenant=TENANT_A) + path, method=method, **kw)
    assert answer.status_code == 403
    assert answer.get_json()["error"] == "forbidden"
    with app.app_context():
        db.engine.dispose()


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_an_exception_in_the_hook_denies(app, method, path, body):
    api = Api(app, TENANT_A)
    answer = api.call(method, path, body, headers={"X-Explode": "1"})
    assert answer.status_code == 403


@pytest.mark.parametrize(("method", "path", "body"), [r for r in ROUTES if r[0] != "GET"])
def test_state_changes_need_the_csrf_header(app, connectwise_sandbox, method, path, body):
    api = configure(app, connectwise_sandbox)
    connectwise_sandbox.clear_requests()
    headers = {k: v for k, v in api.headers.items() if k != "X-CSRFToken"}
    answer = api.http.open(
        api.url(path),
        method=method,
        headers=headers,
        data=json.dumps(body),
        content_type="application/json",
    )
    assert answer.status_code in (400, 403)
    assert connectwise_sandbox.requests == []


@pytest.mark.parametrize(("method", "path", "body"), [r for r in ROUTES if r[0] != "GET"])
def test_form_posts_are_415(app, connectwise_sandbox, method, path, body):
    api = configure(app, connectwise_sandbox)
    connectwise_sandbox.clear_requests()
    answer = api.call(
        method,
        path,
        data={"noteText": "x", "text": "x"},
        content_type="application/x-www-form-urlencoded",
    )
    assert answer.status_code == 415
    assert connectwise_sandbox.requests == []


HOSTILE: list[tuple[str, str, Any]] = [
    ("POST", "/tickets/12345/log-change", {}),
    ("POST", "/tickets/12345/log-change", {"noteText": ""}),
    ("POST", "/tickets/12345/log-change", {"noteText": "   "}),
    ("POST", "/tickets/12345/log-change", {"noteText": 5}),
    ("POST", "/tickets/12345/log-change", {"noteText": ["a"]}),
    ("POST", "/tickets/12345/log-change", {"noteText": "x" * 5000}),
    ("POST", "/tickets/12345/log-change", {"noteText": "a\x00b"}),
    ("POST", "/tickets/12345/log-change", {"noteText": "x", "hours": 0}),
    ("POST", "/tickets/12345/log-change", {"noteText": "x", "hours": -1}),
    ("POST", "/tickets/12345/log-change", {"noteText": "x", "hours": 25}),
    ("POST", "/tickets/12345/log-change", {"noteText": "x", "hours": "1"}),
    ("POST", "/tickets/12345/log-change", {"noteText": "x", "hours": True}),
    ("POST", "/tickets/12345/log-change", {"noteText": "x", "statusId": -4}),
    ("POST", "/tickets/12345/log-change", {"noteText": "x", "statusId": "7"}),
    ("POST", "/tickets/12345/log-change", {"noteText": "x", "statusId": 2**40}),
    ("POST", "/tickets/12345/log-change", {"noteText": "x", "memberIdentifier": 7}),
    ("POST", "/tickets/12345/log-change", {"noteText": "x", "memberIdentifier": "m" * 500}),
    ("POST", "/tickets/0/log-change", {"noteText": "x"}),
    ("POST", "/tickets/99999999999/log-change", {"noteText": "x"}),
    ("POST", "/tickets/-5/log-change", {"noteText": "x"}),
    ("POST", "/tickets/abc/log-change", {"noteText": "x"}),
    ("POST", "/tickets/12345/log-change", "not an object"),
    ("POST", "/tickets/12345/log-change", ["noteText"]),
    ("POST", "/tickets/12345/log-change", "RAW:{not json"),
    ("POST", "/tickets/12345/log-change", "RAW:"),
    ("POST", "/tickets/12345/notes", {"text": None}),
    ("POST", "/tickets/12345/notes", {"text": "x", "internal": "yes"}),
    ("POST", "/tickets/12345/time", {}),
    ("POST", "/tickets/12345/time", {"hours": 1, "minutes": 60}),
    ("POST", "/tickets/12345/time", {"minutes": 0}),
    ("POST", "/tickets/12345/time", {"hours": float("nan")} if False else {"hours": "NaN"}),
    ("PATCH", "/tickets/12345/status", {}),
    ("PATCH", "/tickets/12345/status", {"statusId": None}),
    ("PATCH", "/tickets/12345/status", {"statusId": 1.5}),
    ("GET", "/tickets/search", None),
    ("GET", "/tickets/search?q=" + "x" * 500, None),
    ("GET", "/tickets/0", None),
    ("POST", "/credentials", {"baseUrl": "https://10.0.0.1", "companyId": "x"}),
    ("POST", "/credentials", {"baseUrl": "http://127.0.0.1:1", "companyId": "a b"}),
    (
        "POST",
        "/credentials",
        {"baseUrl": "http://127.0.0.1:1", "companyId": "x", "defaultTimeMinutes": -3},
    ),
    (
        "POST",
        "/credentials",
        {"baseUrl": "http://127.0.0.1:1", "companyId": "x", "autoUpdateStatus": "true"},
    ),
    ("POST", "/credentials", {"baseUrl": "http://127.0.0.1:1", "companyId": "x", "publicKey": 12}),
    ("POST", "/credentials", {"baseUrl": ["x"], "companyId": "x"}),
]

_DEEP = "[" * 5000 + "]" * 5000
_CREDS = {"baseUrl": "SANDBOX", "companyId": "SANDBOX"}
_AR = "\u0661\u0662\u0663\u0664\u0665"  # ١٢٣٤٥: Arabic-Indic digits, int() reads 12345
_FW = "\uff11\uff12\uff13\uff14\uff15"  # １２３４５: full-width digits

#: Hostile inputs answered 400 (or 404) naming ``field``; "SANDBOX" stands for the sandbox's
#: base URL (resp. company id), so that the named field is the only thing wrong.
HOSTILE_NAMED: list[tuple[str, str, Any, str]] = [
    # JSON nested 5,000 deep (RecursionError in the parser)
    ("POST", "/tickets/12345/log-change", "RAW:" + _DEEP, "body"),
    ("POST", "/tickets/12345/notes", "RAW:" + '{"text": ' + _DEEP + "}", "body"),
    ("POST", "/tickets/12345/time", "RAW:" + '{"a":' * 5000 + "1" + "}" * 5000, "body"),
    ("PATCH", "/tickets/12345/status", "RAW:" + _DEEP, "body"),
    ("POST", "/credentials", "RAW:" + _DEEP, "body"),
    # a lone surrogate in every text field
    ("POST", "/tickets/12345/log-change", {"noteText": "a\ud800b"}, "noteText"),
    (
        "POST",
        "/tickets/12345/log-change",
        {"noteText": "x", "memberIdentifier": "\udfff"},
        "memberIdentifier",
    ),
    ("POST", "/tickets/12345/notes", {"text": "\ud800"}, "text"),
    (
        "POST",
        "/tickets/12345/notes",
        {"text": "x", "memberIdentifier": "j\ud800"},
        "memberIdentifier",
    ),
    ("POST", "/tickets/12345/time", {"hours": 1, "notes": "\ud800"}, "notes"),
    ("POST", "/tickets/12345/time", {"hours": 1, "memberIdentifier": "\ud800"}, "memberIdentifier"),
    ("GET", "/tickets/search?q=%ED%A0%80", None, "q"),  # \ud800 as (invalid) UTF-8
    ("GET", "/tickets/search?q=%FF", None, "q"),
    ("POST", "/credentials", _CREDS | {"baseUrl": "http://127.0.0.1:1\ud800"}, "baseUrl"),
    ("POST", "/credentials", _CREDS | {"baseUrl": "https://x\ud800.myconnectwise.net"}, "baseUrl"),
    ("POST", "/credentials", _CREDS | {"companyId": "a\ud800"}, "companyId"),
    ("POST", "/credentials", _CREDS | {"publicKey": "p" * 16 + "\ud800"}, "publicKey"),
    ("POST", "/credentials", _CREDS | {"privateKey": "q" * 16 + "\ud800"}, "privateKey"),
    ("POST", "/credentials", _CREDS | {"clientId": "c" * 16 + "\ud800"}, "clientId"),
    # credentials that are not printable ASCII: an emoji, a pasted curly quote, a DEL
    ("POST", "/credentials", _CREDS | {"clientId": "c" * 16 + "\U0001f600"}, "clientId"),
    ("POST", "/credentials", _CREDS | {"clientId": "\u2019" + "c" * 16 + "\u2019"}, "clientId"),
    ("POST", "/credentials", _CREDS | {"publicKey": "p" * 16 + "\u2019"}, "publicKey"),
    ("POST", "/credentials", _CREDS | {"privateKey": "\U0001f511" + "q" * 16}, "privateKey"),
    ("POST", "/credentials", _CREDS | {"privateKey": "q" * 16 + "\xe9"}, "privateKey"),
    ("POST", "/credentials", _CREDS | {"publicKey": "p" * 16 + "\x7f"}, "publicKey"),
    ("POST", "/credentials", _CREDS | {"companyId": "acme\U0001f600"}, "companyId"),
    ("POST", "/credentials", _CREDS | {"companyId": "acme\u2019"}, "companyId"),
    (
        "POST",
        "/credentials",
        _CREDS | {"baseUrl": "https://api-na.myconnectwise.net\u2019"},
        "baseUrl",
    ),
    ("POST", "/credentials", _CREDS | {"baseUrl": "http://localhost\U0001f600:8080"}, "baseUrl"),
    # time under one minute (0.001 minutes rounded to 0 hours)
    ("POST", "/tickets/12345/time", {"minutes": 0.001}, "minutes"),
    ("POST", "/tickets/12345/time", {"minutes": 0.5}, "minutes"),
    ("POST", "/tickets/12345/time", {"hours": 0.001}, "hours"),
    ("POST", "/tickets/12345/time", {"hours": 0.0166}, "hours"),
    ("POST", "/tickets/12345/log-change", {"noteText": "x", "hours": 0.01}, "hours"),
    # ticket ids in other scripts' digits (Werkzeug's int converter reads them as 12345)
    ("GET", f"/tickets/{_AR}", None, "ticketId"),
    ("POST", f"/tickets/{_AR}/notes", {"text": "x"}, "ticketId"),
    ("POST", f"/tickets/{_AR}/time", {"hours": 1}, "ticketId"),
    ("PATCH", f"/tickets/{_AR}/status", {"statusId": 102}, "ticketId"),
    ("POST", f"/tickets/{_AR}/log-change", {"noteText": "x"}, "ticketId"),
    ("POST", f"/tickets/{_FW}/log-change", {"noteText": "x"}, "ticketId"),
    ("POST", "/tickets/\u00b2/notes", {"text": "x"}, "ticketId"),  # superscript two
    ("POST", "/tickets/+12345/notes", {"text": "x"}, "ticketId"),
    ("POST", "/tickets/%2012345/notes", {"text": "x"}, "ticketId"),
]
HOSTILE += [(method, path, body) for method, path, body, _ in HOSTILE_NAMED]


def _short_id(value: Any) -> str | None:
    """Test ids: long strings (the 5,000-deep JSON) cut short; others as pytest makes them."""
    if not isinstance(value, str) or len(value) <= 60:
        return None
    return value[:40] + f"...({len(value)} chars)"


@pytest.mark.parametrize(("method", "path", "body"), HOSTILE, ids=_short_id)
def test_hostile_inputs_are_clear_400s(app, connectwise_sandbox, method, path, body):
    api = configure(app, connectwise_sandbox)
    connectwise_sandbox.clear_requests()
    before = _snapshot(app)
    if isinstance(body, str) and body.startswith("RAW:"):
        answer = api.call(method, path, data=body[4:], content_type="application/json")
    else:
        answer = api.call(method, path, body)
    assert answer.status_code in (400, 404), answer.get_data(as_text=True)
    payload = answer.get_json()
    if answer.status_code == 400:
        assert payload["error"] and payload["message"]
    assert connectwise_sandbox.requests == []
    assert _snapshot(app) == before


def _with_sandbox(body: Any, sandbox: Any) -> Any:
    if not isinstance(body, dict):
        return body
    creds = sandbox.credentials
    real = {"baseUrl": creds["base_url"], "companyId": creds["company_id"]}
    return {k: real[k] if v == "SANDBOX" else v for k, v in body.items()}


@pytest.mark.parametrize(("method", "path", "body", "field"), HOSTILE_NAMED, ids=_short_id)
def test_hostile_inputs_name_the_field(app, connectwise_sandbox, method, path, body, field):
    api = configure(app, connectwise_sandbox)
    connectwise_sandbox.clear_requests()
    before = _snapshot(app)
    body = _with_sandbox(body, connectwise_sandbox)
    if isinstance(body, str) and body.startswith("RAW:"):
        answer = api.call(method, path, data=body[4:], content_type="application/json")
    else:
        answer = api.call(method, path, body)
    assert answer.status_code == 400, answer.get_data(as_text=True)[:300]
    payload = answer.get_json()
    assert payload["field"] == field, payload
    assert payload["error"] and payload["message"]
    assert connectwise_sandbox.requests == []
    assert _snapshot(app) == before


def test_hostile_search_text_is_an_ordinary_answer(app, connectwise_sandbox):
    api = configure(app, connectwise_sandbox)
    answer = api.call("GET", '/tickets/search?q=x" or id>0 or summary="')
    assert answer.status_code == 200 and answer.get_json() == []


def test_connectwise_failures_map_to_502_and_504(app, connectwise_sandbox):
    api = configure(app, connectwise_sandbox)
    connectwise_sandbox.inject_fault("service/tickets/*", "status", status=500)
    answer = api.call("GET", "/tickets/12345")
    assert answer.status_code == 502 and answer.get_json()["error"] == "connectwise_unavailable"
    connectwise_sandbox.inject_fault("service/tickets/*", "status", status=401)
    assert api.call("GET", "/tickets/12345").status_code == 502
    assert api.call("GET", "/tickets/999999").status_code == 404


def test_timeouts_map_to_504(app, connectwise_sandbox):
    app.config["CONNECTWISE_TIMEOUT"] = 0.3
    api = configure(app, connectwise_sandbox)
    connectwise_sandbox.inject_fault("service/tickets/*", "timeout", delay=1, count=5)
    answer = api.call("GET", "/tickets/12345")
    assert answer.status_code == 504
    assert answer.get_json()["error"] == "connectwise_timeout"


def test_missing_keys_are_a_clear_error_never_plaintext(app, connectwise_sandbox, caplog):
    app.config["CONNECTWISE_ENCRYPTION_KEYS"] = None
    with app.app_context():
        cw_of(app).tenants.reload_keys()
    api = Api(app, TENANT_A)
    with app.app_context():
        cw_of(app).tenants.set_flag(TENANT_A, True)
    creds = connectwise_sandbox.credentials
    answer = api.call(
        "POST",
        "/credentials",
        {
            "baseUrl": creds["base_url"],
            "companyId": "x",
            "publicKey": creds["public_key"],
            "privateKey": creds["private_key"],
            "clientId": creds["client_id"],
        },
    )
    assert answer.status_code == 503
    assert answer.get_json()["error"] == "encryption_keys_missing"
    assert api.call("GET", "/credentials").get_json()["configured"] is False


def test_double_init_is_refused(app):
    from flask_connectwise import ConnectWise

    with pytest.raises(RuntimeError, match="already initialised"):
        ConnectWise(app, db=app.extensions["test_db"])


def test_programmatic_api(app, connectwise_sandbox, cw):
    configure(app, connectwise_sandbox)
    with app.app_context():
        assert cw.is_enabled(TENANT_A) and not cw.is_enabled(TENANT_B)
        assert cw.search_tickets(TENANT_A, "12345")[0].id == 12345
        outcome = cw.log_change(TENANT_A, 12345, "From code", member="jdoe", hours=0.5)
        assert outcome["note"]["ok"] and outcome["timeEntry"]["ok"]
        assert cw.client_for(TENANT_A).system_info().version


def test_signals(app, connectwise_sandbox, cw):
    from flask_connectwise.signals import change_failed, change_logged

    configure(app, connectwise_sandbox)
    seen: list[tuple[str, str]] = []
    with (
        change_logged.connected_to(
            lambda s, **kw: seen.append(("ok", kw["change"].reference)), app
        ),
        change_failed.connected_to(
            lambda s, **kw: seen.append(("failed", kw["change"].reference)), app
        ),
        app.app_context(),
    ):
        cw.log_change(TENANT_A, 12345, "good", hours=0.25)
        connectwise_sandbox.inject_fault("service/tickets/*/notes", "status", status=400)
        cw.log_change(TENANT_A, 12345, "bad", hours=0.25)
    assert [s[0] for s in seen] == ["ok", "failed"]


@pytest.mark.parametrize(
    ("missing", "words"),
    [
        (
            "workType",
            "(The workType field is required): this tenant's ConnectWise requires a work "
            "type. An administrator must choose the tenant's default "
            'work type (ConnectWise credentials → Edit → "Work type"). Sending it again will '
            "not help until that is done; then press Retry.",
        ),
        (
            "workRole",
            "(The default Work Role is not valid for the selected location): this tenant's "
            "ConnectWise requires a work role valid at the ticket's location. An administrator "
            "must choose the tenant's default work role (ConnectWise credentials → Edit → "
            '"Work role"). Sending it again will not help until that is done; then press Retry.',
        ),
    ],
)
@pytest.mark.parametrize("connectwise_sandbox_rules", ["strict"], indirect=True)
def test_strict_tenant_without_time_defaults_is_told_what_to_set(
    app, connectwise_sandbox, missing, words
):
    api = with_time_defaults(
        configure(app, connectwise_sandbox), connectwise_sandbox, **{missing: None}
    )
    times_before = len(connectwise_sandbox.time_entries(12345))
    answer = api.call(
        "POST",
        "/tickets/12345/log-change",
        {"noteText": "Moved DID to ext. 204", "memberIdentifier": "jdoe", "hours": 0.25},
    )
    body = answer.get_json()
    assert body["note"]["ok"] is True
    assert body["timeEntry"]["ok"] is False
    expected = "ConnectWise refused the time entry " + words
    assert body["timeEntry"]["error"] == expected
    assert "Traceback" not in json.dumps(body)
    assert len(connectwise_sandbox.time_entries(12345)) == times_before
    with app.app_context():
        row = cw_of(app).outbox.find(body["changeId"])
        assert (row.time_state, row.time_error) == ("failed", expected)
