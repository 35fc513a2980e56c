"""Writes as the technician (issue 14 item 3, CONNECTWISE_IMPERSONATE_MEMBERS): the note and
time entry go out with the member's impersonation keys, so ConnectWise's audit trail names
them; the status update keeps the API keys. Against the real sandbox over loopback."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from flask_connectwise.delivery import reference_line
from flask_connectwise.models import ChangeState
from flask_connectwise.outbox import Outcome
from flask_connectwise.testing import configure_tenant
from tests.hosts import TENANT_A, cw_of
from tests.json_api import configure
from tests.leaks import LeakCatcher
from tests.outbox_helpers import TICKET

TOKENS = "system/members/*/tokens"


def impersonating(app: Any, on: bool = True) -> None:
    app.config["CONNECTWISE_IMPERSONATE_MEMBERS"] = on


def log_change(app: Any, sandbox: Any, text: str = "Moved DID to ext. 204") -> dict[str, Any]:
    """``POST /log-change`` by operator jdoe (the tenant configured once); the answer's JSON."""
    api = app.extensions.get("test_impersonation_api")
    if api is None:
        api = app.extensions["test_impersonation_api"] = configure(app, sandbox)
    answer = api.call("POST", f"/tickets/{TICKET}/log-change", {"noteText": text, "minutes": 30})
    assert answer.status_code == 200, answer.get_json()
    return dict(answer.get_json())


def written(sandbox: Any, text: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The note and time entry whose text holds ``text``."""
    note = next(n for n in sandbox.notes(TICKET) if text in n["text"])
    entry = next(e for e in sandbox.time_entries(TICKET) if text in (e.get("notes") or ""))
    return note, entry


def log(app: Any) -> tuple[Outcome, Any]:
    """Record a change by jdoe for tenant A and deliver it now."""
    with app.app_context():
        cw = cw_of(app)
        row, _ = cw.outbox.record(TENANT_A, TICKET, "Moved DID", hours=0.25, member="jdoe")
        cw.outbox.session.commit()
        return cw.outbox.deliver(row), row


def deliver_again(app: Any, row: Any) -> Outcome:
    with app.app_context():
        cw = cw_of(app)
        fresh = cw.outbox.session.get(type(row), row.id)
        return cw.outbox.deliver(fresh)


def test_writes_go_out_as_the_member_and_the_audit_trail_names_them(app, connectwise_sandbox):
    impersonating(app)
    connectwise_sandbox.clear_requests()
    log_change(app, connectwise_sandbox, "first change")
    note, entry = written(connectwise_sandbox, "first change")
    assert note["_info"]["updatedBy"] == "jdoe" and note["createdBy"] == "jdoe"
    assert entry["_info"]["updatedBy"] == "jdoe" and entry["enteredBy"] == "jdoe"
    assert connectwise_sandbox.ticket(TICKET)["_info"]["updatedBy"] == "jdoe"
    writes = connectwise_sandbox.requests(method="POST", path=f"service/tickets/{TICKET}/notes")
    writes += connectwise_sandbox.requests(method="POST", path="time/entries")
    assert [r.auth_member for r in writes] == ["jdoe", "jdoe"]  # jdoe's token keys
    assert all(r.headers.get("x-cw-usertype") == "member" for r in writes)
    # The token itself was asked for with the API keys.
    (token_call,) = connectwise_sandbox.requests(method="POST", path=TOKENS)
    assert token_call.auth_member is None and token_call.path.startswith("system/members/jdoe")

    # A second change reuses the live token: still one token request.
    log_change(app, connectwise_sandbox, "second change")
    note, entry = written(connectwise_sandbox, "second change")
    assert note["_info"]["updatedBy"] == "jdoe" and entry["_info"]["updatedBy"] == "jdoe"
    assert len(connectwise_sandbox.requests(method="POST", path=TOKENS)) == 1


def test_off_by_default_the_api_keys_write(app, connectwise_sandbox):
    assert app.config.get("CONNECTWISE_IMPERSONATE_MEMBERS") is False
    connectwise_sandbox.clear_requests()
    log_change(app, connectwise_sandbox, "plain change")
    note, entry = written(connectwise_sandbox, "plain change")
    assert note["createdBy"] == "jdoe" and entry["enteredBy"] == "jdoe"  # the member field
    assert note["_info"]["updatedBy"] == "SandboxAPI"  # ... but the API member wrote it
    assert entry["_info"]["updatedBy"] == "SandboxAPI"
    assert connectwise_sandbox.requests(method="POST", path=TOKENS) == []
    assert all(r.auth_member is None for r in connectwise_sandbox.requests)


def test_a_token_is_issued_again_once_it_expires(app, connectwise_sandbox):
    impersonating(app)
    connectwise_sandbox.token_lifetime = 120
    connectwise_sandbox.clear_requests()
    log_change(app, connectwise_sandbox, "before expiry")
    impersonation = app.extensions["connectwise"].outbox.impersonation
    real = impersonation.clock
    impersonation.clock = lambda: real() + 115  # within the renewal margin
    log_change(app, connectwise_sandbox, "after expiry")
    assert len(connectwise_sandbox.requests(method="POST", path=TOKENS)) == 2
    note, entry = written(connectwise_sandbox, "after expiry")
    assert note["_info"]["updatedBy"] == "jdoe" and entry["_info"]["updatedBy"] == "jdoe"


def test_the_sandbox_refuses_an_expired_token(connectwise_sandbox):
    import requests

    from flask_connectwise.client import ConnectWiseClient
    from flask_connectwise.errors import AuthenticationError

    creds = connectwise_sandbox.credentials
    api = ConnectWiseClient(
        creds["base_url"],
        creds["company_id"],
        creds["public_key"],
        creds["private_key"],
        creds["client_id"],
        session=requests.Session(),
    )
    connectwise_sandbox.token_lifetime = 0
    token = api.member_token("jdoe")
    member = ConnectWiseClient(
        creds["base_url"],
        creds["company_id"],
        token.public_key,
        token.private_key,
        creds["client_id"],
        session=requests.Session(),
    )
    with pytest.raises(AuthenticationError) as refused:
        member.system_info()
    assert refused.value.status == 401
    raw = requests.get(
        f"{creds['base_url']}/{connectwise_sandbox.codebase}apis/3.0/system/info",
        auth=(f"{creds['company_id']}+{token.public_key}", token.private_key),
        headers={"clientId": creds["client_id"]},
        timeout=5,
    )
    assert raw.status_code == 401 and "expired" in raw.json()["message"]
    member.close()
    connectwise_sandbox.token_lifetime = 3600
    live = api.member_token("jdoe")
    assert "jdoe" not in repr(live) and live.private_key not in repr(live)
    member = ConnectWiseClient(
        creds["base_url"],
        creds["company_id"],
        live.public_key,
        live.private_key,
        creds["client_id"],
        session=requests.Session(),
    )
    assert member.system_info().version
    api.close()
    member.close()


def test_a_refused_token_fails_the_writes_in_plain_words_and_retries(app, connectwise_sandbox):
    impersonating(app)
    configure_tenant(app, TENANT_A, connectwise_sandbox)
    connectwise_sandbox.inject_fault(TOKENS, "status", status=403)
    outcome, row = log(app)
    assert not outcome.delivered
    assert outcome.state == ChangeState.RETRYING
    with app.app_context():
        fresh = cw_of(app).outbox.session.get(type(row), row.id)
        words = "ConnectWise refused to issue a token for member jdoe: "
        assert fresh.note_error.startswith(words) and fresh.time_error.startswith(words)
        assert "Traceback" not in fresh.note_error
    assert connectwise_sandbox.writes("service/tickets/*/notes") == []
    assert connectwise_sandbox.writes("time/entries") == []
    outcome = deliver_again(app, row)
    assert outcome.delivered, outcome.summary()
    marker = reference_line(row.reference)
    note = next(n for n in connectwise_sandbox.notes(TICKET) if marker in n["text"])
    assert note["_info"]["updatedBy"] == "jdoe"


def test_a_member_connectwise_does_not_know_fails_for_good(app, connectwise_sandbox):
    impersonating(app)
    configure_tenant(app, TENANT_A, connectwise_sandbox)
    connectwise_sandbox.inject_fault(TOKENS, "status", status=404)
    outcome, row = log(app)
    assert outcome.state == ChangeState.FAILED
    with app.app_context():
        fresh = cw_of(app).outbox.session.get(type(row), row.id)
        assert fresh.note_error.startswith("ConnectWise refused to issue a token for member jdoe")


def test_a_token_refused_on_use_is_dropped_and_asked_for_again(app, connectwise_sandbox):
    impersonating(app)
    configure_tenant(app, TENANT_A, connectwise_sandbox)
    assert log(app)[0].delivered
    connectwise_sandbox.store.tokens.clear()  # revoked on ConnectWise's side
    outcome, row = log(app)
    assert not outcome.delivered and outcome.state == ChangeState.RETRYING
    assert deliver_again(app, row).delivered
    assert len(connectwise_sandbox.requests(method="POST", path=TOKENS)) == 2


def test_token_keys_never_reach_a_log_line(app, connectwise_sandbox, caplog):
    catcher = LeakCatcher()
    logging.getLogger().addHandler(catcher)
    caplog.set_level(logging.DEBUG)
    try:
        impersonating(app)
        connectwise_sandbox.token_lifetime = 120
        log_change(app, connectwise_sandbox, "logged change")
        impersonation = app.extensions["connectwise"].outbox.impersonation
        impersonation.clock = lambda: float("inf")  # every token is stale: a new one
        log_change(app, connectwise_sandbox, "another change")
        connectwise_sandbox.inject_fault(TOKENS, "status", status=403)
        log_change(app, connectwise_sandbox, "a refused change")
    finally:
        logging.getLogger().removeHandler(catcher)
    keys = [
        k
        for token in connectwise_sandbox.store.tokens.values()
        for k in (token.public_key, token.private_key)
    ]
    assert len(keys) >= 4
    texts = [r.getMessage() for r in caplog.records] + catcher.texts
    assert any("impersonation token for member jdoe" in t for t in texts)
    leaked = [t for t in texts if any(k.lower() in t.lower() for k in keys)]
    assert not leaked, "a token key reached a log line"
