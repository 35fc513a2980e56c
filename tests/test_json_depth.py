"""The JSON routes refuse bodies nested deeper than MAX_JSON_DEPTH on every Python (3.11's parser
gives up near 1,000 levels, 3.13's parses 5,000: the limit cannot be left to the parser)."""

from __future__ import annotations

import json

import pytest
from flask import Flask

from flask_connectwise.routes import MAX_JSON_DEPTH, _json_body
from flask_connectwise.validation import InputError


def _parse(body: str) -> object:
    with Flask("depth").test_request_context(
        "/", method="POST", data=body, content_type="application/json"
    ):
        return _json_body()


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 200, 5000])
def test_a_body_nested_past_the_limit_is_a_plain_body_error(depth: int) -> None:
    body = '{"text": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"
    with pytest.raises(InputError) as caught:
        _parse(body)
    assert caught.value.field == "body"
    assert "nested too deeply" in str(caught.value)


def test_a_body_at_the_limit_is_accepted() -> None:
    inner: object = "x"
    for _ in range(MAX_JSON_DEPTH - 1):
        inner = [inner]
    assert _parse(json.dumps({"text": inner})) == {"text": inner}
