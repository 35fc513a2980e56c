"""Compatibility: the JSON routes now live in :mod:`flask_connectwise.routes`, their error
answers in :mod:`flask_connectwise.http_errors`, the CSRF token in :mod:`flask_connectwise.csrf`
and the input rules in :mod:`flask_connectwise.validation`. Import from those."""

from __future__ import annotations

from flask import Blueprint

from .csrf import csrf_token
from .http_errors import ApiError, error_response, safe_trace
from .routes import blueprint, guard, requires
from .validation import MAX_ID, MIN_HOURS, InputError
from .validation import TENANT_ID_RE as TENANT_RE


def create_blueprint(prefix: str) -> Blueprint:
    """The routes' blueprint; registered, it takes the app's ``CONNECTWISE_URL_PREFIX``
    (``prefix`` must hold ``<tenant_id>``; pass another one as ``register_blueprint``'s
    ``url_prefix``)."""
    if "<tenant_id>" not in prefix:
        raise RuntimeError("CONNECTWISE_URL_PREFIX must contain <tenant_id>")
    return blueprint


__all__ = [
    "MAX_ID",
    "MIN_HOURS",
    "TENANT_RE",
    "ApiError",
    "InputError",
    "create_blueprint",
    "csrf_token",
    "error_response",
    "guard",
    "requires",
    "safe_trace",
]
