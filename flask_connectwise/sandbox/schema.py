"""The published ConnectWise models (``schema.json``): what the sandbox accepts and answers.

``schema.json`` is generated from ``connectwise-schema.json`` (CONNECTWISE_API.md §10): the union of
the field lists of two generated clients of ConnectWise's OpenAPI schema. Each field has a JSON
``type`` (``string``, ``integer``, ``number``, ``boolean``, ``object``, ``array``), ``nullable``,
and, for nested published models, ``model``; string enums list their values in ``enum``.
``_model_sources`` in ``schema.json`` names, per model, the sources its field list was read from
(HealthITAU/pyconnectwise and ai-connor/connectwise; Company, WorkType, WorkRole and Token were
cross-checked with both) and how each difference was decided: a field in either source belongs.

Real ConnectWise refuses a body with a member its model lacks::

    400 {"code": "ConnectWiseApi",
         "message": "Could not find member 'enteredBy' on object of type 'Ticket'",
         "errors": null}

and answers only the model's fields, so the sandbox does both (``check_body``, ``conform``).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from .errors import CWError

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


@cache
def models() -> dict[str, dict[str, dict[str, Any]]]:
    """Every modelled type: ``{model: {field: {"type", "nullable", "model"?, "enum"?}}}``."""
    text = resources.files(__package__).joinpath("schema.json").read_text(encoding="utf-8")
    loaded: dict[str, dict[str, dict[str, Any]]] = json.loads(text)["models"]
    return loaded


def fields(model: str) -> dict[str, dict[str, Any]]:
    """The field specs of ``model`` (``KeyError`` for a model that is not published here)."""
    return models()[model]


class UnknownMember(CWError):
    """400 ``ConnectWiseApi`` for a body member the model lacks; ``errors`` is ``null``."""

    def __init__(self, member: str, model: str) -> None:
        super().__init__(
            400, "ConnectWiseApi", f"Could not find member '{member}' on object of type '{model}'"
        )

    def body(self) -> dict[str, Any]:
        """The JSON body: ``errors`` is present and ``null`` (a generic ConnectWise error)."""
        return {"code": self.code, "message": self.message, "errors": None}


def unknown_member(model: str, value: Any) -> tuple[str, str] | None:
    """The first ``(member, model)`` in ``value`` that ``model`` (or a nested model) lacks."""
    if not isinstance(value, dict):
        return None
    specs = fields(model)
    for key, item in value.items():
        spec = specs.get(key)
        if spec is None:
            return str(key), model
        nested = spec.get("model")
        if nested is not None:
            found = unknown_member(nested, item)
            if found is not None:
                return found
    return None


def check_body(model: str, body: Any) -> None:
    """Refuse (400 ``ConnectWiseApi``) a body, or list of bodies, with an unknown member."""
    for value in body if isinstance(body, list) else [body]:
        found = unknown_member(model, value)
        if found is not None:
            raise UnknownMember(*found)


def check_patch(model: str, ops: Any) -> None:
    """A PATCH body: each operation is a ``PatchOperation`` whose path names a ``model`` field."""
    check_body("PatchOperation", ops)
    if not isinstance(ops, list):
        return
    names = {name.lower(): name for name in fields(model)}
    for op in ops:
        if not isinstance(op, dict) or not isinstance(op.get("path"), str):
            continue
        head = op["path"].strip("/").split("/")[0]
        if head and head.lower() not in names:
            raise UnknownMember(head, model)


def conform(model: str, value: Any) -> Any:
    """``value`` (a record or a list of records) with only ``model``'s fields, recursively."""
    if isinstance(value, list):
        return [conform(model, item) for item in value]
    if not isinstance(value, dict):
        return value
    specs = fields(model)
    out: dict[str, Any] = {}
    for key, item in value.items():
        spec = specs.get(key)
        if spec is None:
            continue
        nested = spec.get("model")
        out[key] = conform(nested, item) if nested is not None else item
    return out


def problems(model: str, value: Any, where: str = "") -> list[str]:
    """Every way ``value`` differs from ``model``: unknown fields, wrong JSON types, values
    outside an enum (nested models and lists of records are walked). Empty when it conforms."""
    if isinstance(value, list):
        out: list[str] = []
        for i, item in enumerate(value):
            out += problems(model, item, f"{where}[{i}]")
        return out
    if not isinstance(value, dict):
        return [f"{where or model}: expected an object of type {model}"]
    specs = fields(model)
    found: list[str] = []
    for key, item in value.items():
        path = f"{where}.{key}" if where else key
        spec = specs.get(key)
        if spec is None:
            found.append(f"{path}: no member '{key}' on {model}")
            continue
        if item is None:
            continue
        wanted = _JSON_TYPES[spec["type"]]
        if not isinstance(item, wanted) or (isinstance(item, bool) and spec["type"] != "boolean"):
            found.append(f"{path}: {type(item).__name__} where {model} has {spec['type']}")
            continue
        if "enum" in spec and item not in spec["enum"]:
            found.append(f"{path}: {item!r} is not one of {spec['enum']}")
        if spec.get("model") is not None:
            found += problems(spec["model"], item, path)
    return found
