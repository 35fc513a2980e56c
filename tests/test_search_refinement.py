"""A search whose text contains the text of a complete cached answer ("prin" answered in full,
then "printer") is answered from that answer without ConnectWise (flask_connectwise/refine.py):
only the same tenant's, credentials revision's and company scope's answer, within the cache
time, never a truncated one; and the refined answer is what ConnectWise itself would say.
Against the sandbox over loopback; ConnectWise calls are counted in its request log."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from flask_connectwise.current import state
from flask_connectwise.refine import Refiner, Rule, TicketAnswer
from tests.field_app import make_field_app
from tests.hosts import TENANT_A
from tests.test_request_checks import CONTOSO, settle

LIMIT = 25


@pytest.fixture
def app(tmp_path, connectwise_sandbox) -> Iterator[Any]:
    app = make_field_app(f"sqlite:///{tmp_path / 'host.db'}", connectwise_sandbox)
    app.config["CONNECTWISE_SEARCH_LIMIT"] = LIMIT
    yield app
    connectwise_sandbox.reset()
    with app.app_context():
        app.extensions["test_db"].engine.dispose()


def search(app: Any, query: str, *, limit: int | None = None) -> list[dict[str, Any]]:
    with app.app_context():
        return state(app).search.json(TENANT_A, query, limit=limit)


def connectwise_says(app: Any, query: str, *, limit: int = LIMIT) -> list[dict[str, Any]]:
    """What ConnectWise answers to ``query`` itself (no cache), with the tenant's scope."""
    with app.app_context():
        st = state(app)
        client, revision = st.tenants.client_and_revision(TENANT_A)
        scope = st.search.company_ids(TENANT_A, revision)
        return [t.to_json() for t in client.search_tickets(query, limit=limit, company_ids=scope)]


def calls(sandbox: Any) -> int:
    return len(sandbox.requests(method="GET", path="**/service/tickets"))


def refiner(app: Any) -> Refiner:
    with app.app_context():
        return state(app).search.refiner


def add_tickets(sandbox: Any, summaries: dict[int, str], *, closed: bool = False) -> None:
    """Give existing open tickets these summaries (and close them with ``closed``)."""
    with sandbox.store.lock:
        for ticket_id, summary in summaries.items():
            sandbox.store.data.tickets[ticket_id]["summary"] = summary
            if closed:
                sandbox.store.data.tickets[ticket_id]["closedFlag"] = True


def test_typing_printer_after_a_complete_prin_makes_no_call(app, connectwise_sandbox):
    settle(app, connectwise_sandbox)
    first = search(app, "prin")
    assert 0 < len(first) < LIMIT  # complete: fewer than the page
    assert calls(connectwise_sandbox) == 1
    for typed in ("print", "printe", "printer"):
        assert search(app, typed) == connectwise_says(app, typed)
    assert calls(connectwise_sandbox) == 1 + 3  # the three calls of connectwise_says alone


def test_a_truncated_answer_is_never_refined(app, connectwise_sandbox):
    settle(app, connectwise_sandbox)
    assert len(search(app, "p")) == LIMIT  # a full page: older matches may exist
    connectwise_sandbox.clear_requests()
    assert search(app, "pr") == connectwise_says(app, "pr")
    assert calls(connectwise_sandbox) == 2  # the search asked ConnectWise


@pytest.mark.parametrize(
    ("first", "then"),
    [
        ("prin", "PRINTER"),  # case
        ("PRIN", "printer"),
        ("rint", "printer"),  # a substring, not a prefix
        ("prin", "  printer  "),  # spaces as the client reads them
        ("prin", 'printer" or id>0 or summary="'),  # hostile: what ConnectWise would say (none)
        ("prin", "printer%"),  # wildcard characters searched literally
        ("prin", "prin_ter"),
        ("srv", "srv_dc01"),
        ("srv_", "srv_dc01"),
        ("1220", "12201"),  # a number whose ticket is in the answer
        ("1234567", "12345678901"),  # over 9 digits: text only
        ("prin", "prin ter"),
    ],
)
def test_a_refined_answer_is_what_connectwise_says(app, connectwise_sandbox, first, then):
    add_tickets(
        connectwise_sandbox,
        {
            12201: "Printer for 12201 jams",
            12203: "SRV_DC01 disk full",
            12204: "srv dc01 reboot",
            12220: "prin_ter 50% toner 12345678901",
            12226: "PRIN  TER double space",
        },
    )
    settle(app, connectwise_sandbox)
    assert 0 < len(search(app, first)) < LIMIT or first == "1234567"
    connectwise_sandbox.clear_requests()
    answered = search(app, then)
    assert calls(connectwise_sandbox) == 0, "refined without ConnectWise"
    assert answered == connectwise_says(app, then)


@pytest.mark.parametrize(
    ("first", "then", "summaries"),
    [
        ("st", "strasse", {12201: "Printer in der Straße"}),  # "ß" may be "ss" to the server
        ("stra", "straß", {12201: "Printer in der Strasse"}),  # a query beyond ASCII
    ],
)
def test_beyond_ascii_connectwise_is_asked(app, connectwise_sandbox, first, then, summaries):
    """The server's collation, not Python's, decides how letters beyond ASCII compare."""
    add_tickets(connectwise_sandbox, summaries)
    settle(app, connectwise_sandbox)
    assert 0 < len(search(app, first)) < LIMIT
    connectwise_sandbox.clear_requests()
    search(app, then)
    assert calls(connectwise_sandbox) == 1, "ConnectWise was asked"


def test_a_closed_ticket_found_by_its_number_is_kept_only_for_that_number(app, connectwise_sandbox):
    add_tickets(connectwise_sandbox, {12201: "see 12201 more"}, closed=True)
    add_tickets(connectwise_sandbox, {12203: "after 12201 more"})
    settle(app, connectwise_sandbox)
    assert [t["id"] for t in search(app, "12201")] == [12201, 12203]  # closed, by its number
    connectwise_sandbox.clear_requests()
    assert search(app, "12201 more") == connectwise_says(app, "12201 more") != []
    assert calls(connectwise_sandbox) == 1  # connectwise_says


def test_a_number_whose_ticket_the_answer_does_not_hold_asks_connectwise(app, connectwise_sandbox):
    settle(app, connectwise_sandbox)
    assert search(app, "1234") == []  # complete, but says nothing about ticket 12345
    connectwise_sandbox.clear_requests()
    assert [t["id"] for t in search(app, "12345")] == [12345]
    assert calls(connectwise_sandbox) == 1


def test_a_smaller_limit_cuts_and_is_not_remembered_as_complete(app, connectwise_sandbox):
    settle(app, connectwise_sandbox)
    assert len(search(app, "prin")) > 3
    connectwise_sandbox.clear_requests()
    assert search(app, "print", limit=3) == connectwise_says(app, "print", limit=3)
    assert calls(connectwise_sandbox) == 1  # connectwise_says
    connectwise_sandbox.clear_requests()
    # "printer" at limit 3 may come from "prin" (complete), never from the cut "print".
    with app.app_context():
        st = state(app)
        revision = st.tenants.client_and_revision(TENANT_A)[1]
        index = st.search.cache.get(Refiner.index_key(TENANT_A, revision, None))
    assert [e["q"] for e in index] == ["prin"]


def test_expired_answers_are_not_refined(app, connectwise_sandbox):
    app.config["CONNECTWISE_SEARCH_CACHE_SECONDS"] = 30
    settle(app, connectwise_sandbox)
    search(app, "prin")
    r = refiner(app)
    real = r.clock
    connectwise_sandbox.clear_requests()
    try:
        r.clock = lambda: real() + 29  # "print" is refined from "prin", cached for 1 s more
        search(app, "print")
        assert calls(connectwise_sandbox) == 0
        r.clock = lambda: real() + 31  # neither "prin" nor the "print" refined from it
        search(app, "printer")
        assert calls(connectwise_sandbox) == 1
    finally:
        r.clock = real


def test_refinement_is_off_without_the_search_cache(app, connectwise_sandbox):
    app.config["CONNECTWISE_SEARCH_CACHE_SECONDS"] = 0
    settle(app, connectwise_sandbox)
    search(app, "prin")
    search(app, "printer")
    assert calls(connectwise_sandbox) == 2


def test_new_credentials_do_not_refine_the_old_answer(app, connectwise_sandbox):
    settle(app, connectwise_sandbox)
    search(app, "prin")
    settle(app, connectwise_sandbox, companyScope="listed", companies=[CONTOSO])  # new revision
    connectwise_sandbox.clear_requests()
    assert search(app, "printer") == connectwise_says(app, "printer")
    assert calls(connectwise_sandbox) == 2
    assert all(t["companyId"] == CONTOSO["id"] for t in search(app, "printer"))


@pytest.mark.parametrize("whose", ["another tenant", "another revision", "another scope"])
def test_answers_of_another_tenant_revision_or_scope_are_never_refined(
    app, connectwise_sandbox, whose
):
    settle(app, connectwise_sandbox)
    search(app, "prin")
    with app.app_context():
        st = state(app)
        revision = st.tenants.client_and_revision(TENANT_A)[1]
        tenant, rev, scope = TENANT_A, revision, None
        assert st.search.company_ids(TENANT_A, revision) is None
        key = st.search.cache_key(TENANT_A, revision, "printer", LIMIT)
        r = st.search.refiner
        assert r.answer(tenant, rev, scope, "printer", LIMIT, key) is not None  # this one: yes
        if whose == "another tenant":
            tenant = "tenant-b"
        elif whose == "another revision":
            rev = revision + 1
        else:
            scope = (250,)
        assert r.answer(tenant, rev, scope, "printa", LIMIT, key + "x") is None


def test_a_replaced_answer_is_not_refined(app, connectwise_sandbox):
    settle(app, connectwise_sandbox)
    search(app, "prin")
    with app.app_context():
        st = state(app)
        revision = st.tenants.client_and_revision(TENANT_A)[1]
        key = st.search.cache_key(TENANT_A, revision, "prin", LIMIT)
        cut = st.search.cache.get(key)[:1]
        st.search.cache.set(key, cut, timeout=30)  # e.g. evicted, then answered truncated
    connectwise_sandbox.clear_requests()
    assert search(app, "printer") == connectwise_says(app, "printer")
    assert calls(connectwise_sandbox) == 2


def test_the_client_says_whether_its_answer_was_complete(app, connectwise_sandbox):
    settle(app, connectwise_sandbox)
    with app.app_context():
        client = state(app).tenants.client_and_revision(TENANT_A)[0]
        some = client.search_tickets("prin", limit=LIMIT)
        full = client.search_tickets("p", limit=LIMIT)
        exactly = client.search_tickets("prin", limit=len(some))
        nothing = client.search_tickets("   ")
    assert isinstance(some, TicketAnswer) and some.complete
    assert not full.complete
    assert not exactly.complete  # a full page, even if nothing more exists
    assert not getattr(nothing, "complete", False)  # no call: nothing to refine from


def test_an_exact_check_answer_cut_to_the_limit_is_not_complete(app, connectwise_sandbox):
    add_tickets(connectwise_sandbox, {12203: "SRV_DC01 disk full", 12204: "srv_dc01 reboot"})
    settle(app, connectwise_sandbox)
    with app.app_context():
        client = state(app).tenants.client_and_revision(TENANT_A)[0]
        both = client.search_tickets("srv_dc01", limit=2)
        cut = client.search_tickets("srv_dc01", limit=1)
    assert [t.id for t in both] == [12204, 12203] and both.complete  # type: ignore[attr-defined]
    assert [t.id for t in cut] == [12204] and not cut.complete  # type: ignore[attr-defined]


def test_without_a_cache_time_nothing_is_remembered():
    from flask_caching.backends import SimpleCache

    from flask_connectwise.cachesafe import SafeCache

    cache = SafeCache(SimpleCache())
    tickets = [{"id": 1, "summary": "printer", "closed": False}]
    for seconds, remembered in ((0, False), ("x", False), (30, True)):
        cache.clear()
        cache.set("k", tickets)
        off = Refiner(cache, {"CONNECTWISE_SEARCH_CACHE_SECONDS": seconds})
        off.remember("t", 1, None, "prin", "k", tickets)
        assert (off.answer("t", 1, None, "printer", 25, "k2") == tickets) is remembered


def test_rules_cover_only_texts_that_contain_them():
    prin, printer = Rule.of("prin"), Rule.of("Printer")
    assert prin is not None and printer is not None
    assert prin.covers(printer) and not printer.covers(prin)
    assert Rule.of("") is None and Rule.of("___") is None
    assert Rule.of("12345").exact_id == 12345  # type: ignore[union-attr]
    assert Rule.of("1234567890").exact_id is None  # type: ignore[union-attr]
    assert Rule.of("0").exact_id is None  # type: ignore[union-attr]
    srv_, srv_dc = Rule.of("srv_"), Rule.of("srv_dc01")
    assert srv_ is not None and srv_dc is not None and srv_.covers(srv_dc)
    assert not Rule.of("srv dc").covers(srv_dc)  # type: ignore[union-attr]
