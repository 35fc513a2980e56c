"""Member identifiers are matched exactly (issue 14): ``j_doe`` is asked for as ``j_doe`` in an
``=`` condition (a quoted literal, where ``_`` and ``%`` are plain: they are wildcards of
``like`` only, CONNECTWISE_API.md §3.1), and text a literal cannot carry is never sent."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from flask_connectwise import errors
from tests.client_doubles import API

J_DOE = {"id": 190, "identifier": "j_doe", "firstName": "Jane", "licenseClass": "F"}


def conditions_of(call: responses.Call) -> str:
    return parse_qs(urlsplit(call.request.url).query)["conditions"][0]


@responses.activate
@pytest.mark.parametrize("identifier", ["j_doe", "50%off", "a*b", "x[1]"])
def test_find_member_asks_for_the_identifier_exactly(make_client, identifier):
    route = responses.get(f"{API}/system/members", json=[J_DOE])
    assert make_client().find_member(f" {identifier} ").id == 190
    assert conditions_of(route.calls[0]) == f'identifier="{identifier}" and inactiveFlag=false'


@responses.activate
def test_an_email_with_an_underscore_is_asked_for_exactly(make_client):
    route = responses.get(f"{API}/system/members", json=[J_DOE])
    make_client().find_member("j_doe@company.com")
    assert conditions_of(route.calls[0]) == (
        '(identifier="j_doe@company.com" or primaryEmail="j_doe@company.com") '
        "and inactiveFlag=false"
    )


@responses.activate
def test_member_asks_for_the_identifier_exactly(make_client):
    route = responses.get(f"{API}/system/members", json=[J_DOE])
    member = make_client().member("j_doe")
    assert (member.id, member.identifier, member.license_class) == (190, "j_doe", "F")
    assert conditions_of(route.calls[0]) == 'identifier="j_doe"'


@responses.activate
def test_an_unknown_identifier_with_an_underscore_is_not_found(make_client):
    responses.get(f"{API}/system/members", json=[])
    with pytest.raises(errors.NotFoundError, match="no member 'j_doe'"):
        make_client().member("j_doe")


HOSTILE = [
    'jdoe" or identifier!="x',
    'jdoe") or (id>0',
    "jdoe\\",
    "jdoe\nor id>0",
    "j doe",  # no identifier holds a space: never turned into another one
    '"',
    "   ",
    "",
    "x" * 251,
]


@responses.activate
@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_identifiers_never_reach_a_condition(make_client, text):
    route = responses.get(f"{API}/system/members", json=[J_DOE])
    client = make_client()
    assert client.find_member(text) is None
    with pytest.raises(errors.NotFoundError):
        client.member(text)
    assert route.call_count == 0


@responses.activate
def test_a_member_id_is_still_looked_up_by_id(make_client):
    route = responses.get(f"{API}/system/members", json=[J_DOE])
    assert make_client().member(190).identifier == "j_doe"
    assert conditions_of(route.calls[0]) == "id=190"
