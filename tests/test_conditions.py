"""User text can never change the structure of a ConnectWise ``conditions`` filter."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flask_connectwise import conditions as cond


@given(st.text(max_size=400))
def test_any_text_becomes_one_plain_literal(text):
    built = cond.contains("summary", text)
    assert built.startswith('summary contains "') and built.endswith('"')
    inner = built[len('summary contains "') : -1]
    assert '"' not in inner
    assert not set(inner) & set("%*[]_\\")
    assert all(ord(ch) >= 32 and ord(ch) != 127 for ch in inner)
    assert len(inner) <= cond.MAX_TEXT_LENGTH
    assert inner == inner.strip()


@pytest.mark.parametrize(
    ("value", "literal"),
    [(True, "true"), (False, "false"), (42, "42"), ('a"b', '"a b"')],
)
def test_literals(value, literal):
    assert cond.literal(value) == literal


def test_combinations_are_grouped():
    text = cond.all_of(cond.contains("summary", "x"), cond.equals("closedFlag", False))
    assert cond.any_of([cond.equals("id", 5), text]) == (
        'id=5 or (summary contains "x" and closedFlag=false)'
    )
    assert cond.all_of(cond.any_of(["a=1", "b=2"]), "c=3") == "(a=1 or b=2) and c=3"
    assert cond.any_of(["a=1"]) == "a=1"


@pytest.mark.parametrize("name", ["", "summary;drop", "a b", "status//id", "1x", 'x"'])
def test_field_names_are_checked(name):
    with pytest.raises(ValueError):
        cond.field(name)


# -- search text with wildcard characters: literal pieces plus an exact check --------------


@pytest.mark.parametrize(
    ("text", "pieces", "exact_check"),
    [
        ("SRV_DC01", ["SRV", "DC01"], True),
        ("50%", ["50"], True),
        ("[x]", ["x"], True),
        ("a*b", ["a", "b"], True),
        ("vpn  down", ["vpn down"], False),
        ('x" or id>0', ["x or id>0"], False),
        ("%%_*[]", [], True),
    ],
)
def test_wildcard_characters_split_text_into_literal_pieces(text, pieces, exact_check):
    assert cond.literal_pieces(text) == pieces
    assert cond.needs_exact_check(text) is exact_check


def test_contains_all_joins_one_contains_per_piece():
    assert cond.contains_all("summary", "SRV_DC01") == (
        'summary contains "SRV" and summary contains "DC01"'
    )
    assert cond.contains_all("summary", "%") == ""


@pytest.mark.parametrize(
    ("summary", "text", "found"),
    [
        ("Reboot srv_dc01 tonight", "SRV_DC01", True),
        ("Reboot SRVXDC01 tonight", "SRV_DC01", False),
        ("Disk 50% full", "50%", True),
        ("Disk 50 full", "50%", False),
        ("Checkbox [x] stuck", "[x]", True),
        ("Checkbox x stuck", "[x]", False),
        ('Said "a_b"  twice', 'said "a_b" twice', True),
    ],
)
def test_matches_is_an_exact_case_insensitive_substring(summary, text, found):
    assert cond.matches(summary, text) is found


@given(st.text(max_size=400))
def test_any_text_becomes_only_literal_contains_conditions(text):
    from flask_connectwise.sandbox import conditions as parser

    built = cond.all_of(cond.contains_all("summary", text), cond.equals("closedFlag", False))
    if not cond.literal_pieces(text):
        assert built == "closedFlag=false"
        return
    node = parser.parse(built)
    assert isinstance(node, parser.BoolOp) and node.op == "and"
    *pieces, closed = node.items
    assert closed == parser.Comparison("closedFlag", "=", parser.Literal("bool", False))
    values = []
    for piece in pieces:
        if isinstance(piece, parser.BoolOp):
            assert piece.op == "and"
            parts = piece.items
        else:
            parts = (piece,)
        for part in parts:
            assert isinstance(part, parser.Comparison)
            assert (part.field, part.op, part.negate) == ("summary", "contains", False)
            assert isinstance(part.value, parser.Literal) and part.value.kind == "str"
            values.append(part.value.value)
    assert values == cond.literal_pieces(text)
    assert all(not set(v) & set('"%*[]_\\') for v in values)
