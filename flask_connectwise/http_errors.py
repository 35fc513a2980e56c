"""The JSON routes' error answers: ``{"error": code, "message": safe text, "field"?: name}``.

:class:`ApiError` is what a route raises for an answer other than invalid input (which is
:class:`~flask_connectwise.validation.InputError`); :func:`register_error_handlers` maps every
exception a route can meet to its status, without ever echoing a traceback, SQL or secret.
"""

from __future__ import annotations

import contextlib
import logging
import math
import traceback
from typing import Any

import sqlalchemy.exc as sa_exc
from flask import Blueprint, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from .crypto import CryptoError, KeyConfigurationError
from .current import state
from .errors import ConnectWiseError
from .faults import DatabaseUnavailableError, database_cause, log_fields
from .validation import InputError

log = logging.getLogger("flask_connectwise.api")


class ApiError(Exception):
    """An error answer: HTTP ``status``, machine-readable ``code``, safe ``message`` and
    optionally the offending ``field``."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


def error_response(status: int, code: str, message: str, field: str | None = None) -> Response:
    """The JSON error answer."""
    body: dict[str, Any] = {"error": code, "message": message}
    if field:
        body["field"] = field
    response = jsonify(body)
    response.status_code = status
    return response


def safe_trace(exc: BaseException) -> str:
    """``exc``'s traceback without any exception message (those may carry user input or
    SQL parameters): the exception types of the chain and the code locations."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        frames = traceback.extract_tb(current.__traceback__)
        where = " <- ".join(f"{f.name} ({f.filename}:{f.lineno})" for f in reversed(frames))
        parts.append(f"{type(current).__name__} at {where or '?'}")
        current = current.__cause__ or current.__context__
    return "; caused by ".join(parts)


def api_error(exc: ApiError) -> Response:
    return error_response(exc.status, exc.code, exc.message, exc.field)


def input_error(exc: InputError) -> Response:
    return error_response(400, exc.code, exc.message, exc.field)


def connectwise_error(exc: ConnectWiseError) -> Response:
    status = exc.http_status
    log.warning(
        "connectwise call failed",
        extra={
            "cw_error": exc.error_code,
            "cw_status": exc.status,
            "cw_tenant": g.get("connectwise_tenant"),
        },
    )
    response = error_response(status, exc.error_code, exc.message)
    retry_after = getattr(exc, "retry_after", None)
    if status in (409, 429) and retry_after:
        response.headers["Retry-After"] = str(math.ceil(retry_after))
    return response


def keys_missing(exc: KeyConfigurationError) -> Response:
    log.error("connectwise encryption keys are not configured", extra={"cw_error": str(exc)})
    return error_response(
        503,
        "encryption_keys_missing",
        "Credentials cannot be stored or read: the server's encryption keys are not configured",
    )


def credentials_unreadable(exc: CryptoError) -> Response:
    log.error("connectwise credentials could not be decrypted", extra={"cw_error": str(exc)})
    return error_response(
        503,
        "credentials_unreadable",
        "The stored credentials cannot be read with the configured keys; an administrator must re-enter them or restore the key",
    )


#: What "the database cannot be reached" looks like from a route.
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    DatabaseUnavailableError,
    sa_exc.DBAPIError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
    sa_exc.PendingRollbackError,
)


def database_unavailable(exc: Exception) -> Response:
    # Never the error's text: it holds the SQL and its parameters (the note text...).
    with contextlib.suppress(Exception):
        state().tenants.session.rollback()
    log.error(
        "connectwise database unavailable",
        extra=log_fields(
            database_cause(exc) or exc,
            cw_tenant=g.get("connectwise_tenant"),
            cw_endpoint=request.endpoint,
        ),
    )
    response = error_response(
        503,
        "service_unavailable",
        "The ConnectWise integration is temporarily unavailable: its database cannot be "
        "reached. Try again in a moment.",
    )
    response.headers["Retry-After"] = "5"
    return response


def unexpected(exc: Exception) -> Response | HTTPException:
    if isinstance(exc, HTTPException):
        return exc
    # Never Flask's own logging of the exception: its message may hold the note text, a
    # database error's SQL parameters or other input. Types and code locations only.
    log.error(
        "connectwise request failed: %s",
        safe_trace(exc),
        extra={"cw_error": type(exc).__name__, "cw_tenant": g.get("connectwise_tenant")},
    )
    return error_response(
        500, "internal_error", "The request could not be completed; try again later"
    )


def register_error_handlers(bp: Blueprint) -> None:
    """Answer every exception raised under ``bp`` as JSON (see the module docstring)."""
    bp.register_error_handler(ApiError, api_error)
    bp.register_error_handler(InputError, input_error)
    bp.register_error_handler(ConnectWiseError, connectwise_error)
    bp.register_error_handler(KeyConfigurationError, keys_missing)
    bp.register_error_handler(CryptoError, credentials_unreadable)
    for error in DATABASE_ERRORS:
        bp.register_error_handler(error, database_unavailable)
    bp.register_error_handler(Exception, unexpected)
