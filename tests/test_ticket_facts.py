"""The check before submit uses what ConnectWise answered to the tenant's search a moment before
(``CONNECTWISE_TICKET_FACTS_SECONDS``, flask_connectwise/ticketfacts.py), never another tenant's,
another credentials revision's or another company scope's facts, and reads stale ones again.
Against the sandbox over loopback; ConnectWise calls are counted in its request log."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict

from flask_connectwise.current import state
from flask_connectwise.fields import TicketSearchField
from flask_connectwise.records import Ticket
from tests.field_app import make_field_app
from tests.hosts import TENANT_A
from tests.test_request_checks import CLOSED_CONTOSO_TICKET, CONTOSO, settle

TICKET = 12345
OTHER = 12227  # another open Contoso ticket on 12345's board: warms the member and statuses
WOODGROVE = {"id": 255, "identifier": "Woodgrove", "name": "Woodgrove Bank"}


@pytest.fixture
def app(tmp_path, connectwise_sandbox) -> Iterator[Any]:
    app = make_field_app(f"sqlite:///{tmp_path / 'host.db'}", connectwise_sandbox)
    app.config["WTF_CSRF_ENABLED"] = False
    yield app
    with app.app_context():
        app.extensions["test_db"].engine.dispose()


def form(ticket: int) -> FlaskForm:
    form_class = type("TicketForm", (FlaskForm,), {"ticket": TicketSearchField()})
    return form_class(formdata=MultiDict({"ticket": str(ticket)}))


def validate(app: Any, ticket: int) -> FlaskForm:
    with app.test_request_context("/", method="POST"):
        checked = form(ticket)
        checked.validate()
        return checked


def search(app: Any, query: str) -> list[dict[str, Any]]:
    with app.app_context():
        return state(app).search.json(TENANT_A, query)


def warm(app: Any, sandbox: Any) -> None:
    """One submit of another ticket: the member and the board's statuses are then cached (as on
    any page after the first), so the counts below are the ticket check's alone."""
    assert validate(app, OTHER).errors == {}
    sandbox.clear_requests()


def ticket_reads(sandbox: Any, ticket: int = TICKET) -> int:
    return len(sandbox.requests(method="GET", path=f"**/service/tickets/{ticket}"))


def revision_and_scope(app: Any) -> tuple[int, Any]:
    with app.app_context():
        st = state(app)
        revision = st.tenants.client_and_revision(TENANT_A)[1]
        return revision, st.search.company_ids(TENANT_A, revision)


def remember(app: Any, tenant: str, revision: int, scope: Any, ticket: Ticket) -> None:
    with app.app_context():
        state(app).search.facts.remember(tenant, revision, scope, [ticket])


def test_a_submit_after_a_search_makes_no_connectwise_call(app, connectwise_sandbox):
    settle(app, connectwise_sandbox)  # time logged by default: the status is checked too
    warm(app, connectwise_sandbox)
    found = search(app, str(TICKET))
    assert [t["id"] for t in found] == [TICKET]
    connectwise_sandbox.clear_requests()
    checked = validate(app, TICKET)
    assert checked.errors == {} and checked.ticket.ticket_verified is True
    assert list(connectwise_sandbox.requests) == []
    # The label a form shown again puts in the box: the summary comes with the facts.
    assert checked.ticket.ticket.summary == found[0]["summary"] != ""


def test_without_a_search_the_ticket_is_read(app, connectwise_sandbox):
    settle(app, connectwise_sandbox)
    warm(app, connectwise_sandbox)
    assert validate(app, TICKET).errors == {}
    assert ticket_reads(connectwise_sandbox) == 1


def test_facts_turned_off_read_the_ticket(app, connectwise_sandbox):
    app.config["CONNECTWISE_TICKET_FACTS_SECONDS"] = 0
    settle(app, connectwise_sandbox)
    warm(app, connectwise_sandbox)
    search(app, str(TICKET))
    connectwise_sandbox.clear_requests()
    assert validate(app, TICKET).errors == {}
    assert ticket_reads(connectwise_sandbox) == 1


@pytest.mark.parametrize("whose", ["another tenant", "another revision", "another scope"])
def test_facts_of_another_tenant_revision_or_scope_are_never_used(app, connectwise_sandbox, whose):
    settle(app, connectwise_sandbox)
    warm(app, connectwise_sandbox)
    revision, scope = revision_and_scope(app)
    assert scope is None
    # Facts that would refuse the ticket (closed), stored where this tenant must not look.
    closed = Ticket(id=TICKET, summary="", company_id=250, closed=True)
    tenant, other_revision, other_scope = TENANT_A, revision, scope
    if whose == "another tenant":
        tenant = "tenant-b"
    elif whose == "another revision":
        other_revision = revision + 1
    else:
        other_scope = (250,)
    remember(app, tenant, other_revision, other_scope, closed)
    checked = validate(app, TICKET)
    assert checked.errors == {}  # not refused: the facts were not used...
    assert ticket_reads(connectwise_sandbox) == 1  # ...the ticket was read


def test_stale_facts_are_read_again(app, connectwise_sandbox):
    app.config["CONNECTWISE_TICKET_FACTS_SECONDS"] = 60
    settle(app, connectwise_sandbox)
    warm(app, connectwise_sandbox)
    with app.app_context():
        facts = state(app).search.facts
    real_clock = facts.clock
    search(app, str(TICKET))  # answered now
    connectwise_sandbox.clear_requests()
    try:
        facts.clock = lambda: real_clock() + 59  # 59 s later: used
        assert validate(app, TICKET).errors == {}
        assert ticket_reads(connectwise_sandbox) == 0
        facts.clock = lambda: real_clock() + 61  # 61 s later: read again
        assert validate(app, TICKET).errors == {}
        assert ticket_reads(connectwise_sandbox) == 1
    finally:
        facts.clock = real_clock


def test_a_ticket_closed_according_to_a_fresh_search_is_refused(app, connectwise_sandbox):
    settle(app, connectwise_sandbox)
    warm(app, connectwise_sandbox)
    search(app, str(CLOSED_CONTOSO_TICKET))
    connectwise_sandbox.clear_requests()
    checked = validate(app, CLOSED_CONTOSO_TICKET)
    assert checked.errors == {"ticket": ["Ticket #12348 is closed: time cannot be logged"]}
    assert list(connectwise_sandbox.requests) == []


def test_a_ticket_moved_according_to_fresh_facts_is_refused(app, connectwise_sandbox):
    settle(app, connectwise_sandbox, companyScope="listed", companies=[CONTOSO])
    warm(app, connectwise_sandbox)
    revision, scope = revision_and_scope(app)
    assert scope == (250,)
    moved = Ticket(id=TICKET, summary="", company="Woodgrove Bank", company_id=255)
    remember(app, TENANT_A, revision, scope, moved)
    checked = validate(app, TICKET)
    assert checked.errors == {
        "ticket": ["Ticket #12345 belongs to Woodgrove Bank, not Contoso Ltd"]
    }
    assert ticket_reads(connectwise_sandbox) == 0


def test_a_number_searched_and_not_found_forgets_its_facts(app, connectwise_sandbox):
    app.config["CONNECTWISE_SEARCH_CACHE_SECONDS"] = 0
    settle(app, connectwise_sandbox, companyScope="listed", companies=[CONTOSO])
    warm(app, connectwise_sandbox)
    assert [t["id"] for t in search(app, str(TICKET))] == [TICKET]
    with connectwise_sandbox.store.lock:  # moved to Woodgrove: the scoped search no longer finds it
        connectwise_sandbox.store.data.tickets[TICKET]["company"] = WOODGROVE
    try:
        assert search(app, str(TICKET)) == []
        connectwise_sandbox.clear_requests()
        checked = validate(app, TICKET)
        assert ticket_reads(connectwise_sandbox) == 1
        assert checked.errors == {
            "ticket": ["Ticket #12345 belongs to Woodgrove Bank, not Contoso Ltd"]
        }
    finally:
        connectwise_sandbox.reset()
