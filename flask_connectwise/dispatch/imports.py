"""Objects named in the config either as themselves or as ``"package.module:attribute"``."""

from __future__ import annotations

import importlib
from typing import Any


def resolve(value: Any, key: str) -> Any:
    """``value`` itself, or the object the import string ``"module:attr"`` names (``attr`` may
    be dotted; a callable taking no arguments, such as an app factory, is not called here)."""
    if not isinstance(value, str):
        return value
    module_name, sep, attr = value.partition(":")
    if not sep or not module_name or not attr:
        raise RuntimeError(f'{key} must be an object or an import string "module:attribute"')
    found: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        found = getattr(found, part)
    return found
