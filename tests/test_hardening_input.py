"""Issue 11: credentials that are not ASCII, who a note is attributed to, races on one
Idempotency-Key, and what the logs may say about a failed request."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from flask_connectwise.client import ConnectWiseClient
from flask_connectwise.delivery import new_change
from flask_connectwise.extension import state
from flask_connectwise.models import CONFIRMED, DELIVERED, PENDING, SKIPPED, utcnow
from flask_connectwise.settings import CredentialsInput, InputError
from flask_connectwise.urlpolicy import URLPolicy
from tests.admin_helpers import AdminUser, make_admin_app, seed_credentials
from tests.hosts import TENANT_A
from tests.json_api import Api, configure

EMOJI = "\U0001f600"
CURLY = "\u2019"


# -- helpers -------------------------------------------------------------------------------------


class _Records(logging.Handler):
    """Every log record's full text: message, extras, traceback."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        extras = {k: v for k, v in vars(record).items() if k not in ("msg", "args")}
        text = f"{record.getMessage()} {extras!r}"
        if record.exc_info:
            text += " " + logging.Formatter().formatException(record.exc_info)
        self.texts.append(text)

    def find(self, *needles: str) -> list[str]:
        return [t[:300] for t in self.texts for n in needles if n.lower() in t.lower()]


@pytest.fixture
def records() -> Iterator[_Records]:
    handler = _Records()
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(old)


def changes(app: Any, **where: Any) -> list[Any]:
    with app.app_context():
        model = app.extensions["test_cw"].models.ChangeLog
        session = app.extensions["test_db"].session
        rows = session.query(model).filter_by(**where).order_by(model.id).all()
        for row in rows:
            session.expunge(row)
        return rows


# -- item 1: credentials are printable ASCII, one validation path for the API and the admin ------


POLICY = URLPolicy(allowed_hosts=("api-na.myconnectwise.net",), allow_loopback_http=True)
GOOD = {
    "baseUrl": "http://127.0.0.1:8080",
    "companyId": "acme",
    "publicKey": "pUbLiC-key_0123",
    "privateKey": "pr1v/ate+key=~!",
    "clientId": "0b5e2a52-5a6c-4b34-9a58-2c1b0f2b7e11",
}


@pytest.mark.parametrize("key", ["publicKey", "privateKey", "clientId", "companyId"])
@pytest.mark.parametrize(
    "bad",
    [EMOJI, CURLY, "\u201c", "\xe9", "\u00a0x", "\u200b", "\x7f", "\ud800", "\udfff", "\uff41"],
    ids=repr,
)
def test_credentials_must_be_printable_ascii(key: str, bad: str) -> None:
    with pytest.raises(InputError) as caught:
        CredentialsInput.parse(GOOD | {key: "abcdefgh" + bad + "ijkl"}, POLICY)
    assert caught.value.field == key
    assert key in caught.value.message


def test_ascii_punctuation_in_keys_is_fine() -> None:
    parsed = CredentialsInput.parse(GOOD, POLICY)
    assert (parsed.public_key, parsed.private_key) == (GOOD["publicKey"], GOOD["privateKey"])
    assert parsed.client_id == GOOD["clientId"]


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080\ud800", "https://a\udfff.myconnectwise.net"]
)
def test_a_surrogate_in_the_base_url_is_a_base_url_error(url: str) -> None:
    with pytest.raises(InputError) as caught:
        CredentialsInput.parse(GOOD | {"baseUrl": url}, POLICY)
    assert caught.value.field == "baseUrl"


CRED = "/admin/connectwise/credentials"


def _form(sandbox: Any, **overrides: str) -> dict[str, str]:
    creds = sandbox.credentials
    return {
        "tenant_id": TENANT_A,
        "base_url": creds["base_url"],
        "company_id": creds["company_id"],
        "public_key": creds["public_key"],
        "private_key": creds["private_key"],
        "client_id": creds["client_id"],
        "default_time_minutes": "15",
        "default_status_id": "",
    } | overrides


@pytest.fixture
def admin_app(tmp_path: Any) -> Iterator[Any]:
    app = make_admin_app(f"sqlite:///{tmp_path / 'admin.db'}")
    yield app
    with app.app_context():
        app.extensions["test_db"].engine.dispose()


@pytest.mark.parametrize(
    ("field", "label", "value"),
    [
        ("client_id", "Client id", f"{CURLY}0b5e2a52-5a6c-4b34-9a58-2c1b0f2b7e11{CURLY}"),
        ("client_id", "Client id", "0b5e2a52-5a6c-4b34-9a58" + EMOJI),
        ("public_key", "Public key", "publickey" + CURLY),
        ("private_key", "Private key", EMOJI + "privatekey"),
        ("company_id", "Company id", "acme" + EMOJI),
    ],
)
def test_the_admin_form_refuses_non_ascii_credentials(
    admin_app: Any, connectwise_sandbox: Any, field: str, label: str, value: str
) -> None:
    user = AdminUser(admin_app, TENANT_A)
    answer = user.post(f"{CRED}/new/", _form(connectwise_sandbox, **{field: value}))
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200
    # the error sits next to its field, in the field's own words
    assert re.search(rf'name="{field}"[\s\S]{{0,600}}(invalid-feedback|help-block)', page)
    assert f"{label} may hold only ASCII" in page or "letters, digits" in page
    with admin_app.app_context():
        assert admin_app.extensions["test_cw"].service.credentials_row(TENANT_A) is None

    row_id = seed_credentials(admin_app, TENANT_A, connectwise_sandbox)
    with admin_app.app_context():
        before = admin_app.extensions["test_cw"].service.credentials_row(TENANT_A).revision
    answer = user.post(f"{CRED}/edit/?id={row_id}", _form(connectwise_sandbox, **{field: value}))
    assert answer.status_code == 200 and "is-invalid" in answer.get_data(as_text=True)
    with admin_app.app_context():
        row = admin_app.extensions["test_cw"].service.credentials_row(TENANT_A)
        assert row.revision == before
    # the stored (good) credentials still work
    with admin_app.app_context():
        assert admin_app.extensions["test_cw"].service.client_for(TENANT_A).system_info()


# -- item 7: memberIdentifier only for those allowed to act for others ---------------------------


WRITES = [
    ("/tickets/12345/notes", {"text": "Moved ext. 204"}),
    ("/tickets/12345/time", {"hours": 0.5}),
    ("/tickets/12345/log-change", {"noteText": "Moved ext. 204", "hours": 0.5}),
]


@pytest.mark.parametrize(("path", "body"), WRITES)
def test_an_operator_cannot_write_as_someone_else(
    app: Any, connectwise_sandbox: Any, path: str, body: dict[str, Any]
) -> None:
    configure(app, connectwise_sandbox)
    operator = Api(app, TENANT_A, role="operator", member="jdoe")
    connectwise_sandbox.clear_requests()
    answer = operator.call("POST", path, body | {"memberIdentifier": "asmith"})
    assert answer.status_code == 403
    payload = answer.get_json()
    assert payload["field"] == "memberIdentifier"
    assert "memberIdentifier" in payload["message"]
    assert connectwise_sandbox.requests == []
    assert changes(app) == []


@pytest.mark.parametrize(("path", "body"), WRITES)
@pytest.mark.parametrize("given", [None, "jdoe", "JDoe"])
def test_an_operator_writes_as_themselves(
    app: Any, connectwise_sandbox: Any, path: str, body: dict[str, Any], given: str | None
) -> None:
    configure(app, connectwise_sandbox)
    operator = Api(app, TENANT_A, role="operator", member="jdoe")
    extra = {"memberIdentifier": given} if given else {}
    answer = operator.call("POST", path, body | extra)
    assert answer.status_code in (200, 201), answer.get_json()
    [row] = changes(app)
    assert (row.member.casefold(), row.operator) == ("jdoe", "jdoe")
    if "time" in path or "log-change" in path:
        assert connectwise_sandbox.time_entries(12345)[-1]["member"]["identifier"] == "jdoe"
    if "notes" in path or "log-change" in path:
        assert connectwise_sandbox.notes(12345)[-1]["member"]["identifier"] == "jdoe"


@pytest.mark.parametrize(("path", "body"), WRITES)
def test_an_admin_may_write_as_another_member(
    app: Any, connectwise_sandbox: Any, path: str, body: dict[str, Any]
) -> None:
    configure(app, connectwise_sandbox)
    admin = Api(app, TENANT_A, role="admin", member="jdoe")
    answer = admin.call("POST", path, body | {"memberIdentifier": "asmith"})
    assert answer.status_code in (200, 201), answer.get_json()
    [row] = changes(app)
    assert (row.member, row.operator) == ("asmith", "jdoe")


def test_the_may_act_as_hook_decides_for_everyone_else(app: Any, connectwise_sandbox: Any) -> None:
    configure(app, connectwise_sandbox)
    cw = app.extensions["test_cw"]
    asked: list[tuple[str, str | None, str]] = []

    @cw.may_act_as
    def may_act_as(tenant_id: str, operator: str | None, member: str) -> bool:
        asked.append((tenant_id, operator, member))
        if member == "boom":
            raise RuntimeError("hook failure")
        return member == "asmith"

    operator = Api(app, TENANT_A, role="operator", member="jdoe")
    ok = operator.call("POST", "/tickets/12345/time", {"hours": 1, "memberIdentifier": "asmith"})
    assert ok.status_code == 201
    assert connectwise_sandbox.time_entries(12345)[-1]["member"]["identifier"] == "asmith"
    assert asked == [(TENANT_A, "jdoe", "asmith")]
    refused = operator.call("POST", "/tickets/12345/notes", {"text": "x", "memberIdentifier": "x1"})
    assert refused.status_code == 403 and refused.get_json()["field"] == "memberIdentifier"
    failing = operator.call(
        "POST", "/tickets/12345/log-change", {"noteText": "x", "memberIdentifier": "boom"}
    )
    assert failing.status_code == 403
    assert [(r.member, r.operator) for r in changes(app)] == [("asmith", "jdoe")]


def test_direct_notes_and_time_leave_a_change_log_row(app: Any, connectwise_sandbox: Any) -> None:
    configure(app, connectwise_sandbox)
    operator = Api(app, TENANT_A, role="operator", member="jdoe")
    connectwise_sandbox.clear_requests()
    note = operator.call("POST", "/tickets/12345/notes", {"text": "Reset voicemail PIN"})
    entry = operator.call("POST", "/tickets/12345/time", {"minutes": 30, "notes": "On site"})
    assert note.status_code == entry.status_code == 201
    first, second = changes(app)
    assert (first.tenant_id, first.ticket_id, first.operator, first.member) == (
        TENANT_A,
        12345,
        "jdoe",
        "jdoe",
    )
    assert first.state == DELIVERED and first.note_text == "Reset voicemail PIN"
    assert (first.note_state, first.note_remote_id) == (CONFIRMED, note.get_json()["id"])
    assert (first.time_state, first.status_state) == (SKIPPED, SKIPPED)
    assert second.state == DELIVERED and second.note_text == "On site"
    assert (second.time_state, second.time_remote_id) == (CONFIRMED, entry.get_json()["id"])
    assert second.hours == 0.5
    assert (second.note_state, second.status_state) == (SKIPPED, SKIPPED)
    # nothing for the worker to pick up: ConnectWise got each write once
    posts = [r.path for r in connectwise_sandbox.requests if r.method == "POST"]
    assert sorted(posts) == ["service/tickets/12345/notes", "time/entries"], posts


# -- item 6: one Idempotency-Key, many requests at once ------------------------------------------


def _log_change(api: Api, text: str, key: str) -> tuple[int, Any, dict[str, str]]:
    answer = api.call(
        "POST", "/tickets/12345/log-change", {"noteText": text}, headers={"Idempotency-Key": key}
    )
    return answer.status_code, answer.get_json(), dict(answer.headers)


def _race(apis: list[Api], texts: list[str], key: str) -> list[tuple[int, Any, dict[str, str]]]:
    barrier = threading.Barrier(len(apis))
    results: list[Any] = [None] * len(apis)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = _log_change(apis[i], texts[i], key)
        except Exception as exc:  # a 500 propagated by the test client
            results[i] = (599, repr(exc), {})

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(apis))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


@pytest.mark.parametrize("attempt", range(3))
def test_concurrent_requests_with_one_key_get_one_answer(
    app: Any, connectwise_sandbox: Any, records: _Records, attempt: int
) -> None:
    configure(app, connectwise_sandbox)
    apis = [Api(app, TENANT_A) for _ in range(24)]
    text = f"SECRET-NOTE-{uuid.uuid4().hex}"
    key = f"race-{attempt}"
    notes_before = len(connectwise_sandbox.notes(12345))
    results = _race(apis, [text] * len(apis), key)

    statuses = sorted(status for status, _, _ in results)
    assert set(statuses) <= {200, 409}, results
    answered = [body for status, body, _ in results if status == 200]
    assert answered and len({body["changeId"] for body in answered}) == 1
    assert sum(1 for body in answered if not body.get("replayed")) == 1
    for status, body, headers in results:
        if status == 409:
            assert body["error"] == "idempotency_in_progress" and headers["Retry-After"]
    # delivered once, recorded once
    assert len(connectwise_sandbox.notes(12345)) == notes_before + 1
    assert len(changes(app, idempotency_key=key)) == 1
    assert records.find(text, "INSERT INTO", "[parameters") == []


def test_concurrent_requests_with_one_key_and_different_notes(
    app: Any, connectwise_sandbox: Any, records: _Records
) -> None:
    configure(app, connectwise_sandbox)
    apis = [Api(app, TENANT_A) for _ in range(16)]
    texts = [f"NOTE-{i}-{uuid.uuid4().hex}" for i in range(16)]
    results = _race(apis, texts, "race-different")
    assert sorted(status for status, _, _ in results) == [200] + [409] * 15, results
    assert {body["error"] for status, body, _ in results if status == 409} == {
        "idempotency_conflict"
    }
    [row] = changes(app, idempotency_key="race-different")
    assert row.note_text in texts
    assert records.find(*texts, "INSERT INTO", "[parameters") == []


@pytest.fixture
def lose_the_race(app: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Make the next log-change lose the race deterministically: right after it checked that
    its key is new, another request's row with that key is committed."""
    service = state(app).service
    outbox = state(app).outbox
    original = outbox.record
    made: dict[str, Any] = {}

    def arrange(**winner_fields: Any) -> dict[str, Any]:
        def record_change(*args: Any, **kwargs: Any) -> Any:
            change, created = original(*args, **kwargs)
            import sqlalchemy as sa

            engine = app.extensions["test_db"].engine
            with sa.orm.Session(engine) as other:
                winner = new_change(
                    service.models,
                    tenant_id=change.tenant_id,
                    ticket_id=change.ticket_id,
                    note_text=winner_fields.pop("note_text", change.note_text),
                    member=change.member,
                    hours=change.hours,
                    status_id=change.status_id,
                    internal=change.internal,
                    idempotency_key=change.idempotency_key,
                    operator=change.operator,
                    visibility=change.visibility,
                    auto_status=change.auto_status,
                )
                for name, value in winner_fields.items():
                    setattr(winner, name, value)
                other.add(winner)
                other.commit()
                made["reference"] = winner.reference
            return change, created

        monkeypatch.setattr(outbox, "record", record_change)
        return made

    return arrange


def test_the_loser_of_the_race_gets_the_winners_answer(
    app: Any, connectwise_sandbox: Any, lose_the_race: Any, records: _Records
) -> None:
    api = configure(app, connectwise_sandbox)
    made = lose_the_race(
        state=DELIVERED,
        note_state=CONFIRMED,
        note_remote_id=4242,
        time_state=CONFIRMED,
        time_remote_id=4343,
    )
    connectwise_sandbox.clear_requests()
    status, body, _ = _log_change(api, "LOSER-TEXT", "k-1")
    assert status == 200, body
    assert body["replayed"] is True and body["changeId"] == made["reference"]
    assert body["note"] == {"ok": True, "state": CONFIRMED, "id": 4242}
    # The loser writes nothing; it only read the member and the ticket for the before-submit
    # checks (issue 14), which ran before the winner's row appeared.
    assert [r for r in connectwise_sandbox.requests if r.method != "GET"] == []
    assert {r.path.rsplit("/apis/3.0/", 1)[-1] for r in connectwise_sandbox.requests} <= {
        "/login/companyinfo/sandbox",
        "system/members",
        "service/tickets/12345",
        "service/boards/1/statuses",
    }
    assert len(changes(app, idempotency_key="k-1")) == 1
    assert records.find("LOSER-TEXT", "INSERT INTO", "[parameters") == []


def test_the_loser_with_other_content_gets_a_conflict(
    app: Any, connectwise_sandbox: Any, lose_the_race: Any, records: _Records
) -> None:
    api = configure(app, connectwise_sandbox)
    lose_the_race(note_text="the winner's text", state=DELIVERED)
    status, body, _ = _log_change(api, "LOSER-TEXT", "k-2")
    assert status == 409 and body["error"] == "idempotency_conflict"
    assert records.find("LOSER-TEXT", "winner's text", "INSERT INTO") == []


def test_the_loser_waits_for_the_winner_then_says_409(
    app: Any, connectwise_sandbox: Any, lose_the_race: Any
) -> None:
    api = configure(app, connectwise_sandbox)
    state(app).service.replay_wait = 0.3
    lose_the_race(
        state=PENDING, lease_owner="now:winner", lease_until=utcnow() + timedelta(seconds=120)
    )
    started = time.monotonic()
    status, body, headers = _log_change(api, "x", "k-3")
    assert status == 409 and body["error"] == "idempotency_in_progress"
    assert headers["Retry-After"] == "1"
    assert 0.3 <= time.monotonic() - started < 5


def test_the_loser_gets_the_final_outcome_when_the_winner_finishes(
    app: Any, connectwise_sandbox: Any, lose_the_race: Any
) -> None:
    api = configure(app, connectwise_sandbox)
    made = lose_the_race(
        state=PENDING, lease_owner="now:winner", lease_until=utcnow() + timedelta(seconds=120)
    )

    def winner_finishes() -> None:
        time.sleep(0.4)
        with app.app_context():
            model = app.extensions["test_cw"].models.ChangeLog
            session = app.extensions["test_db"].session
            row = session.query(model).filter_by(reference=made["reference"]).one()
            row.state, row.note_state, row.note_remote_id = DELIVERED, CONFIRMED, 77
            row.time_state, row.time_remote_id = CONFIRMED, 78
            row.lease_owner = row.lease_until = None
            session.commit()

    finisher = threading.Thread(target=winner_finishes)
    finisher.start()
    status, body, _ = _log_change(api, "x", "k-4")
    finisher.join()
    assert status == 200, body
    assert body["replayed"] is True and body["state"] == DELIVERED
    assert body["note"]["id"] == 77 and body["timeEntry"]["id"] == 78


# -- what is logged when a request fails unexpectedly --------------------------------------------


def test_an_unexpected_error_is_logged_without_its_message(
    app: Any, connectwise_sandbox: Any, records: _Records, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = configure(app, connectwise_sandbox)

    def add_note(*args: Any, **kwargs: Any) -> Any:  # (client, ticket_id, text)
        raise ValueError(f"could not send {args[2]!r}")

    monkeypatch.setattr(ConnectWiseClient, "add_note", add_note)
    answer = api.call("POST", "/tickets/12345/notes", {"text": "PRIVATE-NOTE-TEXT"})
    assert answer.status_code == 500
    assert answer.get_json()["error"] == "internal_error"
    assert "PRIVATE-NOTE-TEXT" not in answer.get_data(as_text=True)
    assert records.find("PRIVATE-NOTE-TEXT") == []
    assert records.find("ValueError"), records.texts


def test_a_database_error_never_logs_the_sql_parameters(
    app: Any, connectwise_sandbox: Any, records: _Records, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = configure(app, connectwise_sandbox)
    # Two changes with one reference: the second insert breaks a unique constraint.
    monkeypatch.setattr(
        "flask_connectwise.outbox.recording.new_reference", lambda: "cwlog-samesame"
    )
    first = api.call("POST", "/tickets/12345/log-change", {"noteText": "FIRST-NOTE"})
    assert first.status_code == 200
    second = api.call("POST", "/tickets/12345/log-change", {"noteText": "SECOND-NOTE"})
    assert second.status_code in (500, 503)
    body = second.get_data(as_text=True)
    assert "SECOND-NOTE" not in body and "INSERT" not in body
    assert json.loads(body)["error"]
    assert records.find("SECOND-NOTE", "INSERT INTO", "[parameters") == []
    assert records.find("IntegrityError"), records.texts
