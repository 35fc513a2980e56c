"""Schema conformance: the sandbox and the client against ConnectWise's published models.

Every request ConnectWiseClient sends and every answer it reads is captured while its methods run
against the sandbox, then compared with the field lists and JSON types of ``schema.json`` (the
published models, CONNECTWISE_API.md §10). A field either side invents fails the check, and the
sandbox refuses a body member the model lacks as real ConnectWise does.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from flask_connectwise import errors
from flask_connectwise.client import ConnectWiseClient
from flask_connectwise.sandbox import schema
from tests.client_doubles import DictCache
from tests.sandbox_client import CW
from tests.schema_conformance import check_exchange


class Capture:
    """Every API exchange the client makes: (method, path, sent JSON, answer JSON, status)."""

    def __init__(self) -> None:
        self.exchanges: list[tuple[str, str, Any, Any, int]] = []

    def hook(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        path = (response.request.path_url or "").split("?")[0]
        if "/apis/3.0/" not in path:
            return
        rest = path.split("/apis/3.0/", 1)[1].strip("/")
        raw = response.request.body
        sent = json.loads(raw) if raw else None
        answer = response.json() if response.content else None
        method = str(response.request.method)
        self.exchanges.append((method, rest, sent, answer, response.status_code))

    def report(self) -> list[str]:
        out: list[str] = []
        for method, path, sent, answer, status in self.exchanges:
            out += check_exchange(method, path, sent, answer, status)
        return out

    def routes(self) -> set[tuple[str, str]]:
        return {(m, re.sub(r"\d+", "N", p)) for m, p, *_ in self.exchanges}


@pytest.fixture
def captured(connectwise_sandbox):
    capture = Capture()
    with ConnectWiseClient(
        **connectwise_sandbox.credentials, codebase_cache=DictCache(), timeout=2.0
    ) as client:
        client._session.hooks["response"].append(capture.hook)
        yield client, capture


def drive(client: ConnectWiseClient) -> None:
    """Every ConnectWiseClient method that talks to ConnectWise, writes included."""
    client.system_info()
    client.search_tickets("printer")
    client.search_tickets("12345")
    client.search_tickets("SRV_DC01")
    ticket = client.get_ticket(12345)
    client.add_note(12345, "conformance note", member="jdoe")
    client.add_note(12345, "internal note", internal=True)
    client.notes(12345)
    client.notes(12345, containing="conformance")
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    client.add_time_entry(12345, hours=0.25, member="jdoe", notes="ref", start=start)
    client.add_time_entry(12345, hours=0.5)
    client.time_entries(12345)
    client.time_entries(12345, containing="ref")
    client.boards()
    statuses = client.board_statuses(ticket.board_id, refresh=True)
    target = next(s for s in statuses if s.id != ticket.status_id and not s.inactive)
    client.update_status(12345, target.id)
    client.find_member("jdoe")
    client.find_member("asmith@company.com")
    # issue 14: the tenant's companies, time entry fields, note visibility, member lookup
    client.search_tickets("printer", company_ids=[250, 251])
    client.search_tickets("12345", company_ids=[250])
    client.add_note(12345, "resolution note", visibility="resolution")
    client.add_note(12345, "tell the contact", visibility="discussion", email_contact=True)
    client.add_time_entry(
        12345,
        hours=0.25,
        member="jdoe",
        notes="typed",
        work_type=5,
        work_role=12,
        billable_option="NoCharge",
        add_to="internal",
    )
    client.member("jdoe")
    client.member(176)
    client.companies()
    client.companies("contoso")
    client.work_types()
    client.work_roles()


def test_client_requests_and_sandbox_answers_conform(captured) -> None:
    client, capture = captured
    drive(client)
    assert capture.report() == []
    writes = {(m, p) for m, p in capture.routes() if m in ("POST", "PATCH")}
    assert {
        ("POST", "service/tickets/N/notes"),
        ("POST", "time/entries"),
        ("PATCH", "service/tickets/N"),
    } <= writes
    assert ("GET", "system/info") in capture.routes()
    assert {
        ("GET", "company/companies"),
        ("GET", "time/workTypes"),
        ("GET", "time/workRoles"),
    } <= capture.routes()
    typed = [
        sent
        for method, path, sent, _answer, _status in capture.exchanges
        if (method, path) == ("POST", "time/entries") and sent and "workType" in sent
    ]
    assert typed and {"workRole", "billableOption", "addToInternalAnalysisFlag"} <= set(typed[0])


def test_every_sandbox_read_route_answers_only_schema_fields(connectwise_sandbox) -> None:
    cw = CW(connectwise_sandbox)
    note_id = connectwise_sandbox.notes(12346)[0]["id"]
    entry_id = connectwise_sandbox.time_entries(12346)[0]["id"]
    status_id = connectwise_sandbox.ticket(12346)["status"]["id"]
    paths = [
        "service/tickets",
        "service/tickets/count",
        "service/tickets/12346",
        "service/tickets/12346/notes",
        "service/tickets/12346/notes/count",
        f"service/tickets/12346/notes/{note_id}",
        "service/tickets/12346/allNotes",
        "time/entries",
        "time/entries/count",
        f"time/entries/{entry_id}",
        "service/boards",
        "service/boards/21",
        "service/boards/21/statuses",
        f"service/boards/21/statuses/{status_id}",
        "system/members",
        "system/members/180",
        "system/info",
        "company/companies",
        "company/companies/count",
        "company/companies/251",
        "time/workTypes",
        "time/workTypes/count",
        "time/workTypes/3",
        "time/workRoles",
        "time/workRoles/count",
        "time/workRoles/11",
    ]
    found: list[str] = []
    for path in paths:
        r = cw.get(path)
        assert r.status_code == 200, path
        found += check_exchange("GET", path, None, r.json(), 200)
    assert found == []
    r = cw.post("service/tickets/search", {"conditions": "id=12345"})
    assert (
        check_exchange("POST", "service/tickets/search", {"conditions": "id=12345"}, r.json(), 200)
        == []
    )


def test_invented_answer_field_is_reported(captured, monkeypatch) -> None:
    client, capture = captured
    real = schema.conform

    def with_extra(model: str, value: Any) -> Any:
        out = real(model, value)
        if model == "Ticket" and isinstance(out, dict):
            out = {**out, "inventedField": 1}
        return out

    monkeypatch.setattr(schema, "conform", with_extra)
    client.get_ticket(12345)
    assert capture.report() == [
        "GET service/tickets/12345 answer: inventedField: no member 'inventedField' on Ticket"
    ]


def test_invented_body_field_is_reported_and_refused(captured, monkeypatch) -> None:
    client, capture = captured
    real = client._call

    def with_extra(method: str, path: str, **kw: Any) -> Any:
        if isinstance(kw.get("body"), dict):
            kw["body"] = {**kw["body"], "enteredBy": "jdoe"}
        return real(method, path, **kw)

    monkeypatch.setattr(client, "_call", with_extra)
    with pytest.raises(errors.ConnectWiseError):
        client.add_note(12345, "conformance note")
    report = capture.report()
    assert report[0] == (
        "POST service/tickets/12345/notes body: enteredBy: no member 'enteredBy' on ServiceNote"
    )
    assert capture.exchanges[-1][3:] == (
        {
            "code": "ConnectWiseApi",
            "message": "Could not find member 'enteredBy' on object of type 'ServiceNote'",
            "errors": None,
        },
        400,
    )


def test_wrong_json_type_is_reported() -> None:
    found = check_exchange("GET", "system/info", None, {"version": 1, "isCloud": "no"}, 200)
    assert found == [
        "GET system/info answer: version: int where Info has string",
        "GET system/info answer: isCloud: str where Info has boolean",
    ]


NOTE = {"text": "x", "detailDescriptionFlag": True}
TIME = {
    "chargeToId": 12345,
    "chargeToType": "ServiceTicket",
    "timeStart": "2026-01-05T09:00:00Z",
    "actualHours": 0.5,
}


@pytest.mark.parametrize(
    ("method", "path", "body", "member", "model"),
    [
        (
            "POST",
            "service/tickets/12345/notes",
            {**NOTE, "enteredBy": "x"},
            "enteredBy",
            "ServiceNote",
        ),
        ("POST", "time/entries", {**TIME, "hours": 1}, "hours", "TimeEntry"),
        (
            "POST",
            "time/entries",
            {**TIME, "member": {"identifier": "jdoe", "login": "j"}},
            "login",
            "MemberReference",
        ),
        (
            "PATCH",
            "service/tickets/12345",
            [{"op": "replace", "path": "summary", "value": "s", "from": "x"}],
            "from",
            "PatchOperation",
        ),
        (
            "PATCH",
            "service/tickets/12345",
            [{"op": "replace", "path": "statusName", "value": "New"}],
            "statusName",
            "Ticket",
        ),
    ],
)
def test_unknown_member_is_refused_like_connectwise(
    connectwise_sandbox, method, path, body, member, model
) -> None:
    cw = CW(connectwise_sandbox)
    before = len(connectwise_sandbox.requests)
    r = cw.post(path, body) if method == "POST" else cw.patch(path, body)
    assert r.status_code == 400
    assert r.json() == {
        "code": "ConnectWiseApi",
        "message": f"Could not find member '{member}' on object of type '{model}'",
        "errors": None,
    }
    assert len(connectwise_sandbox.requests) == before + 1
    assert connectwise_sandbox.ticket(12345)["summary"] != "s"


def test_answers_drop_fields_the_schema_lacks(connectwise_sandbox) -> None:
    cw = CW(connectwise_sandbox)
    status = cw.get("service/boards/1/statuses").json()[0]
    assert "workflowStepNotAllowed" not in status and "timeEntryNotAllowed" in status
    rows = cw.get("service/tickets/12346/allNotes").json()
    for row in rows:
        assert row["ticket"]["id"] == 12346 and row["originalAuthor"]
        assert row["isMarkdownFlag"] is False and row["bundledFlag"] is False
        assert not {"dateCreated", "createdBy", "ticketId", "internalFlag"} & set(row)
    entry = next(r for r in rows if r["noteType"] == "TimeEntryNote")
    assert entry["timeStart"] and entry["timeEnd"]


# ---- provenance: every model names the sources its field list comes from ---------------------
_SCHEMA_JSON = Path(schema.__file__).with_name("schema.json")
#: The published models' field lists (from two generated ConnectWise clients), kept in the repo
#: so that the checks below run in every checkout.
_PUBLISHED = Path(__file__).resolve().parent / "data" / "connectwise-published-schema.json"
#: Where the project's reference documents sit on a development machine, if they do.
_SHARED = Path(__file__).resolve().parents[2] / "shared" / "connectwise-schema.json"


def test_every_model_names_its_sources() -> None:
    loaded = json.loads(_SCHEMA_JSON.read_text(encoding="utf-8"))
    sources = loaded["_model_sources"]
    assert set(sources) == set(loaded["models"])
    for model, entry in sources.items():
        assert set(entry["sources"]) <= {"pyconnectwise", "go"} and entry["sources"], model
        assert entry["note"].strip(), model
    # issue 13: the models added later were cross-checked with the second (Go) client too
    for model in ("Company", "WorkType", "WorkRole", "Token"):
        assert sources[model]["sources"] == ["pyconnectwise", "go"], model


def test_models_hold_the_union_of_both_published_field_lists() -> None:
    published = json.loads(_PUBLISHED.read_text(encoding="utf-8"))
    for key in ("models", "models_go"):
        for model, spec in published[key].items():
            if model in schema.models():
                missing = set(spec["fields"]) - set(schema.fields(model))
                assert not missing, (key, model, missing)


def test_models_hold_nothing_beyond_the_published_field_lists() -> None:
    """A field invented in the sandbox's schema.json (and its data) is caught here, where the
    conformance walk cannot see it; fields taken from one client alone are listed by name in
    ``_model_sources[model]["added_from_go"]``."""
    published = json.loads(_PUBLISHED.read_text(encoding="utf-8"))
    sources = json.loads(_SCHEMA_JSON.read_text(encoding="utf-8"))["_model_sources"]
    checked = 0
    for model in schema.models():
        lists = [published[key][model]["fields"] for key in ("models", "models_go")
                 if model in published[key]]  # fmt: skip
        if not lists:  # Company, WorkType, WorkRole, Token: read from the two clients directly
            continue
        allowed = set().union(*lists) | set(sources[model].get("added_from_go", []))
        invented = set(schema.fields(model)) - allowed
        assert not invented, (model, invented)
        checked += 1
    assert checked >= 21


@pytest.mark.skipif(not _SHARED.exists(), reason="the reference documents are not beside the repo")
def test_the_kept_field_lists_are_the_published_ones() -> None:
    assert json.loads(_PUBLISHED.read_text(encoding="utf-8")) == json.loads(
        _SHARED.read_text(encoding="utf-8")
    )
