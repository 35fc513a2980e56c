"""Validation that degrades (issue 15 item 2): with ConnectWise slow or down, a ticket typed as a
number is accepted unverified within ``CONNECTWISE_CHECK_DEADLINE``, recorded as such and
checked at delivery; search answers 503 with plain words within the deadline.

Against the real sandbox over loopback (its latency knob and 503 faults); ``responses`` for the
client's own deadline arithmetic.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import responses
from flask import get_flashed_messages, url_for

from flask_connectwise.client import ConnectWiseClient, call_deadline
from flask_connectwise.errors import ConnectWiseTimeoutError, UnavailableError
from flask_connectwise.fields import TicketSearchField
from flask_connectwise.retry import RetryPolicy
from flask_connectwise.ticketchecks import unverified_warning
from tests.field_app import change_rows, make_field_app, serve
from tests.hosts import TENANT_A
from tests.outbox_helpers import quick_worker
from tests.test_fields import make_form
from tests.test_request_checks import CONTOSO, WOODGROVE_TICKET, settle

DEADLINE = 1.0
#: Time allowed over the deadline for everything around the bounded calls (loopback, SQLite).
MARGIN = 0.8
SLOW = 5.0
WARNING = "ConnectWise is slow to answer: ticket #12345 will be checked when the change is logged."


@pytest.fixture
def app(tmp_path, connectwise_sandbox) -> Iterator[Any]:
    app = make_field_app(f"sqlite:///{tmp_path / 'host.db'}", connectwise_sandbox)
    app.config["WTF_CSRF_ENABLED"] = False
    app.config["CONNECTWISE_CHECK_DEADLINE"] = DEADLINE
    yield app
    connectwise_sandbox.set_latency(0)
    connectwise_sandbox.clear_faults()
    with app.app_context():
        app.extensions["test_db"].engine.dispose()


def down(sandbox: Any) -> None:
    """Every ConnectWise request answers 503 until the faults are cleared."""
    sandbox.inject_fault("**", "status", status=503, count=10_000)


def save_unverified(
    app: Any, sandbox: Any, text: str, breakage: Any, **logged: Any
) -> tuple[float, Any]:
    """Validate and log a change with ``breakage`` applied to the sandbox; commit once it is
    repaired. Returns (seconds the validation took, the field)."""
    with app.test_request_context("/", method="POST"):
        form = make_form({"ticket": TicketSearchField()}, {"ticket": text})
        breakage(sandbox)
        started = time.monotonic()
        valid = form.validate()
        took = time.monotonic() - started
        assert valid, form.errors
        row = form.ticket.log_change("DID +1 555 0100 moved to ext. 204", **logged)
        assert row is not None and row.ticket_verified is False
        flashed = get_flashed_messages(with_categories=True)
        sandbox.set_latency(0)
        sandbox.clear_faults()
        app.extensions["test_db"].session.commit()
    return took, (form.ticket, flashed)


def deliver_due(app: Any) -> None:
    """Whatever delivery mode ran after the commit, finish what is still due."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        rows = change_rows(app)
        if rows and all(r.state in ("delivered", "failed") for r in rows):
            return
        with app.app_context():
            quick_worker(app.extensions["test_cw"].outbox).run_once()
        time.sleep(0.1)


@pytest.mark.parametrize(
    "breakage",
    [
        pytest.param(lambda sandbox: sandbox.set_latency(SLOW), id="slow"),
        pytest.param(down, id="down"),
    ],
)
def test_a_typed_number_is_accepted_unverified_and_checked_at_delivery(
    app, connectwise_sandbox, breakage
):
    notes_before = len(connectwise_sandbox.notes(12345))
    took, (field, flashed) = save_unverified(app, connectwise_sandbox, "12345", breakage)
    assert took < DEADLINE + MARGIN, took
    assert field.ticket_verified is False and field.errors == []
    assert ("warning", WARNING) in flashed
    assert unverified_warning(12345) == WARNING
    deliver_due(app)
    [row] = change_rows(app)
    assert row.state == "delivered", (row.state, row.note_error)
    assert row.ticket_verified is True  # read at delivery before the note went out
    assert len(connectwise_sandbox.notes(12345)) == notes_before + 1


def test_an_unverified_ticket_that_does_not_exist_is_a_visible_permanent_failure(
    app, connectwise_sandbox
):
    writes_before = len(list(connectwise_sandbox.writes()))
    # A note only (no time, no status): nothing else would read the ticket before writing.
    save_unverified(app, connectwise_sandbox, "999999", down, hours=0)
    deliver_due(app)
    [row] = change_rows(app)
    assert row.state == "failed", row.state  # permanent: no automatic retry
    assert row.note_error.startswith("Ticket #999999 was not found in ConnectWise: ")
    assert row.ticket_verified is False
    assert len(list(connectwise_sandbox.writes())) == writes_before  # nothing written
    posts = [r for r in connectwise_sandbox.requests if r.method == "POST"]
    assert posts == []  # read first: not even tried


def test_an_unverified_ticket_of_another_company_is_refused_at_delivery(app, connectwise_sandbox):
    settle(app, connectwise_sandbox, companyScope="listed", companies=[CONTOSO])
    writes_before = len(list(connectwise_sandbox.writes()))
    save_unverified(app, connectwise_sandbox, str(WOODGROVE_TICKET), down)
    deliver_due(app)
    [row] = change_rows(app)
    assert row.state == "failed"
    assert row.note_error == (
        f"Ticket #{WOODGROVE_TICKET} belongs to Woodgrove Bank, not Contoso Ltd"
    )
    assert len(list(connectwise_sandbox.writes())) == writes_before


def test_a_healthy_check_stays_verified(app, connectwise_sandbox):
    with app.test_request_context("/", method="POST"):
        form = make_form({"ticket": TicketSearchField()}, {"ticket": "12345"})
        assert form.validate()
        row = form.ticket.log_change("checked before submit")
        assert row.ticket_verified is True and form.ticket.warning is None
        assert ("warning", WARNING) not in get_flashed_messages(with_categories=True)


def test_a_full_form_save_with_connectwise_down_is_accepted(app, connectwise_sandbox):
    down(connectwise_sandbox)
    http = app.test_client()
    started = time.monotonic()
    answer = http.post("/voice", data={"upn": "sam.ortiz", "ticket": "12345"})
    took = time.monotonic() - started
    assert answer.status_code == 302, answer.get_data(as_text=True)[:500]
    page = http.get("/voice").get_data(as_text=True)
    assert WARNING in page
    [row] = change_rows(app)
    assert row.ticket_verified is False
    # Bounded: the check's deadline plus the commit's own inline wait (item 1) at most.
    inline = float(app.config.get("CONNECTWISE_INLINE_WAIT", 1.0))
    assert took < DEADLINE + inline + MARGIN + 1.0, took


# -- the JSON routes ----------------------------------------------------------------------------


def search(app: Any, query: str) -> tuple[float, Any]:
    with app.test_request_context():
        url = url_for("connectwise_api.search", tenant_id=TENANT_A, q=query)
    started = time.monotonic()
    answer = app.test_client().get(url, headers={"Accept": "application/json"})
    return time.monotonic() - started, answer


def test_search_answers_503_slow_within_the_deadline(app, connectwise_sandbox):
    connectwise_sandbox.set_latency(SLOW)
    took, answer = search(app, "printer")
    assert took < DEADLINE + MARGIN, took
    assert answer.status_code == 503
    assert answer.get_json() == {
        "error": "connectwise_slow",
        "message": "ConnectWise is slow; type a ticket number",
    }


def test_search_answers_503_unavailable_within_the_deadline(app, connectwise_sandbox):
    down(connectwise_sandbox)
    took, answer = search(app, "printer")
    assert took < DEADLINE + MARGIN, took
    assert answer.status_code == 503
    assert answer.get_json() == {
        "error": "connectwise_unavailable",
        "message": "ConnectWise is unavailable; type a ticket number",
    }


def test_a_healthy_search_is_unchanged(app, connectwise_sandbox):
    _took, answer = search(app, "printer")
    assert answer.status_code == 200 and answer.get_json()


def test_log_change_route_accepts_an_unverified_ticket_with_a_warning(app, connectwise_sandbox):
    from tests.json_api import Api

    api = Api(app, TENANT_A)
    down(connectwise_sandbox)
    started = time.monotonic()
    answer = api.call("POST", "/tickets/12345/log-change", {"noteText": "moved", "minutes": 15})
    assert answer.status_code < 500, answer.get_data(as_text=True)[:500]
    assert WARNING in answer.get_json()["warnings"]
    [row] = change_rows(app)
    assert row.ticket_verified is False
    assert time.monotonic() - started < 60  # delivery's own retries are item 1's budget
    connectwise_sandbox.clear_faults()
    with app.app_context():  # due now, not after its backoff
        model = app.extensions["test_cw"].models.ChangeLog
        session = app.extensions["test_db"].session
        session.query(model).update({"next_attempt_at": None})
        session.commit()
    deliver_due(app)
    [row] = change_rows(app)
    assert row.state == "delivered" and row.ticket_verified is True


# -- the client's deadline ------------------------------------------------------------------------


def client(**kwargs: Any) -> ConnectWiseClient:
    return ConnectWiseClient(
        "https://cw.example.test",
        "acme",
        "pub",
        "priv",
        "client-id",
        codebase="v2025_1",
        **kwargs,
    )


@responses.activate
def test_retries_never_run_past_the_deadline():
    url = "https://cw.example.test/v2025_1/apis/3.0/service/tickets/12345"
    responses.add(responses.GET, url, status=503, json={"message": "down"})
    cw = client(retry=RetryPolicy(max_attempts=50, base=0.2, cap=0.2, deadline=60))
    started = time.monotonic()
    with call_deadline(0.5), pytest.raises(UnavailableError):
        cw.get_ticket(12345)
    assert time.monotonic() - started < 0.5 + 0.3
    assert 1 <= len(responses.calls) < 50


@responses.activate
def test_a_pause_that_overruns_the_deadline_raises_the_last_answer_not_a_timeout(monkeypatch):
    url = "https://cw.example.test/v2025_1/apis/3.0/service/tickets/12345"
    responses.add(responses.GET, url, status=503, json={"message": "down"})
    cw = client(retry=RetryPolicy(max_attempts=50, base=0.1, cap=0.1, deadline=60))
    monkeypatch.setattr(cw, "_sleep", lambda seconds: time.sleep(seconds + 0.5))  # a busy machine
    with call_deadline(0.5), pytest.raises(UnavailableError):
        cw.get_ticket(12345)
    # Only this client's calls: a background delivery left by an earlier test in this process
    # would be caught by ``responses`` too.
    assert len([c for c in responses.calls if c.request.url == url]) == 1


@responses.activate
def test_a_passed_deadline_fails_at_once_without_a_call():
    cw = client()
    with call_deadline(0.0), pytest.raises(ConnectWiseTimeoutError):
        cw.get_ticket(12345)
    assert len(responses.calls) == 0


def test_each_call_timeout_is_cut_to_the_deadline(monkeypatch):
    seen: list[Any] = []

    def fake_request(self: Any, method: str, url: str, **kwargs: Any) -> Any:
        seen.append(kwargs["timeout"])
        raise requests.exceptions.ReadTimeout("slow")

    monkeypatch.setattr(requests.Session, "request", fake_request)
    cw = client(timeout=10.0, connect_timeout=5.0, retry=RetryPolicy(max_attempts=1))
    with call_deadline(0.4), pytest.raises(ConnectWiseTimeoutError):
        cw.get_ticket(12345)
    connect, read = seen[0]
    assert connect <= 0.4 and read <= 0.4
    seen.clear()
    with pytest.raises(ConnectWiseTimeoutError):
        cw.get_ticket(12345)  # no deadline: the client's own timeouts
    assert seen[0] == (5.0, 10.0)


# -- the widget in a browser ------------------------------------------------------------------


@pytest.mark.browser
def test_the_widget_says_connectwise_is_slow_instead_of_spinning(app, connectwise_sandbox):
    pytest.importorskip("playwright.sync_api")
    from playwright.sync_api import expect

    from tests.serving import chromium

    connectwise_sandbox.set_latency(SLOW)
    with serve(app) as url, chromium() as browser:
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{url}/voice")
        started = time.monotonic()
        page.locator("#ticket").press_sequentially("printer", delay=20)
        status = page.locator("#ticket-status")
        expect(status).to_have_text(
            "ConnectWise is slow; type a ticket number", timeout=(DEADLINE + 3) * 1000
        )
        assert time.monotonic() - started < DEADLINE + 3
        expect(page.locator(".cw-ticket-search")).to_have_class(
            __import__("re").compile("cw-ts-is-error")
        )
        connectwise_sandbox.set_latency(0)
        down(connectwise_sandbox)
        page.locator("#ticket").fill("")
        page.locator("#ticket").press_sequentially("fuser", delay=20)
        expect(status).to_have_text("ConnectWise is unavailable; type a ticket number")
        context.close()
