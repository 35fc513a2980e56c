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
