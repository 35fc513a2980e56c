"""The JSON routes (the seed's HTTP contract): parse, authorize, call the service, answer.

Every route checks the host's ``authorize`` hook (``configure`` for credentials, ``use`` for the
rest), answers 404 while the feature flag is off (except ``/enabled``), and accepts state
changes only as ``application/json`` with a CSRF token in the configured header. Errors are
``{"error": code, "message": safe text}`` and, for invalid input, ``"field"``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import traceback
from typing import Any
from urllib.parse import unquote_to_bytes

import sqlalchemy.exc as sa_exc
from flask import Blueprint, Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from .crypto import CryptoError, KeyConfigurationError
from .csrf import csrf_token, csrf_valid  # noqa: F401 - csrf_token: importable here as before
from .errors import ConnectWiseError
from .extension import state
from .faults import DatabaseUnavailableError, database_cause, log_fields
from .settings import SettingsStore
from .validation import (
    TENANT_ID_RE,
    InputError,
    check_idempotency_key,
    check_text,
    is_tenant_id,
    optional_hours,
    optional_id,
    optional_minutes,
    optional_text,
    parse_ticket_id,
    required_text,
)

log = logging.getLogger("flask_connectwise.api")

TENANT_RE = TENANT_ID_RE
_CONFIGURE_ENDPOINTS = {"credentials_get", "credentials_post"}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


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


def error_response(status: int, code: str, message: str, field: str | None = None) -> Response:
    body: dict[str, Any] = {"error": code, "message": message}
    if field:
        body["field"] = field
    response = jsonify(body)
    response.status_code = status
    return response


def _json_body() -> dict[str, Any]:
    try:
        data = request.get_json(silent=True, cache=True)
    except RecursionError:  # nested thousands deep: the parser gives up
        raise ApiError(400, "invalid_json", "The body is nested too deeply", "body") from None
    if data is None:
        raise ApiError(400, "invalid_json", "The body is not valid JSON", "body")
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "The body must be a JSON object", "body")
    return data


def _bool(data: dict[str, Any], key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise ApiError(400, "validation_error", f"{key} must be true or false", key)
    return value


def _member(data: dict[str, Any], tenant_id: str) -> str | None:
    """Whom the change is attributed to: the operator (``current_member``) unless the body
    names someone else and the caller may act for them (``configure``, or ``may_act_as``)."""
    ext = state().extension
    operator = ext.member()
    member = optional_text(data, "memberIdentifier", max_length=128)
    if not member or (operator and member.casefold() == operator.casefold()):
        return operator
    if ext.is_authorized(tenant_id, "configure") or ext.can_act_as(tenant_id, operator, member):
        return member
    raise ApiError(
        403,
        "member_forbidden",
        "You may not log work as another member: leave memberIdentifier out (your own "
        "member is used) or ask an administrator",
        "memberIdentifier",
    )


def _query_text(key: str, *, max_length: int) -> str:
    """A query-string parameter, refused when the query is not valid UTF-8 text."""
    try:
        unquote_to_bytes(request.query_string.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "validation_error", f"{key} must be valid UTF-8 text", key) from None
    if key not in request.args:
        raise ApiError(400, "validation_error", f"{key} is required", key)
    value = request.args.get(key, "")
    if len(value) > max_length:
        raise ApiError(
            400, "validation_error", f"{key} must be at most {max_length} characters", key
        )
    return check_text(key, value)


def create_blueprint(prefix: str) -> Blueprint:
    """The routes under ``prefix`` (which must contain ``<tenant_id>``)."""
    if "<tenant_id>" not in prefix:
        raise RuntimeError("CONNECTWISE_URL_PREFIX must contain <tenant_id>")
    bp = Blueprint("connectwise_api", __name__, url_prefix=prefix.rstrip("/"))

    @bp.url_value_preprocessor
    def pull_tenant(endpoint: str | None, values: dict[str, Any] | None) -> None:
        g.connectwise_tenant = (values or {}).pop("tenant_id", None)

    @bp.before_request
    def guard() -> Response | None:
        tenant = g.connectwise_tenant
        endpoint = (request.endpoint or "").rsplit(".", 1)[-1]
        if not is_tenant_id(tenant):
            return error_response(404, "unknown_tenant", "Unknown tenant")
        ext = state().extension
        action = "configure" if endpoint in _CONFIGURE_ENDPOINTS else "use"
        # A hook that fails denies, unless the database made it fail: then 503 (see below).
        if not ext.is_authorized(tenant, action, raise_database_errors=True):  # type: ignore[arg-type]
            return error_response(403, "forbidden", "You may not do this for this tenant")
        if request.method in ("POST", "PATCH", "PUT", "DELETE"):
            if request.mimetype != "application/json":
                return error_response(
                    415, "unsupported_media_type", "Send the body as application/json"
                )
            if current_app.config["CONNECTWISE_REQUIRE_CSRF"]:
                header = current_app.config["CONNECTWISE_CSRF_HEADER"]
                if not csrf_valid(request.headers.get(header)):
                    return error_response(
                        403, "csrf_failed", f"A valid CSRF token is required in the {header} header"
                    )
        if endpoint != "enabled":
            try:
                on = state().service.flag_on(tenant)
            except Exception as exc:
                if database_cause(exc) is not None:
                    raise  # 503, not "not enabled"
                log.exception("connectwise flag check failed")
                on = False
            if not on:
                return error_response(
                    404,
                    "feature_disabled",
                    "The ConnectWise integration is not enabled for this tenant",
                )
        return None

    @bp.errorhandler(ApiError)
    def api_error(exc: ApiError) -> Response:
        return error_response(exc.status, exc.code, exc.message, exc.field)

    @bp.errorhandler(InputError)
    def input_error(exc: InputError) -> Response:
        return error_response(400, exc.code, exc.message, exc.field)

    @bp.errorhandler(ConnectWiseError)
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

    @bp.errorhandler(KeyConfigurationError)
    def keys_missing(exc: KeyConfigurationError) -> Response:
        log.error("connectwise encryption keys are not configured", extra={"cw_error": str(exc)})
        return error_response(
            503,
            "encryption_keys_missing",
            "Credentials cannot be stored or read: the server's encryption keys are not configured",
        )

    @bp.errorhandler(CryptoError)
    def unreadable(exc: CryptoError) -> Response:
        log.error("connectwise credentials could not be decrypted", extra={"cw_error": str(exc)})
        return error_response(
            503,
            "credentials_unreadable",
            "The stored credentials cannot be read with the configured keys; an administrator must re-enter them or restore the key",
        )

    @bp.errorhandler(DatabaseUnavailableError)
    @bp.errorhandler(sa_exc.DBAPIError)
    @bp.errorhandler(sa_exc.DisconnectionError)
    @bp.errorhandler(sa_exc.TimeoutError)
    @bp.errorhandler(sa_exc.PendingRollbackError)
    def database_unavailable(exc: Exception) -> Response:
        # Never the error's text: it holds the SQL and its parameters (the note text...).
        with contextlib.suppress(Exception):
            state().service.session.rollback()
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

    @bp.errorhandler(Exception)
    def unexpected(exc: Exception) -> Any:
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

    def service() -> Any:
        return state().service

    def tenant() -> str:
        return str(g.connectwise_tenant)

    @bp.get("/credentials", endpoint="credentials_get")
    def credentials_get() -> Response:
        return jsonify(SettingsStore.public_view(service().credentials_row(tenant())))

    @bp.post("/credentials", endpoint="credentials_post")
    def credentials_post() -> Response:
        data = _json_body()
        row = service().save_credentials(tenant(), data, actor=state().extension.member())
        return jsonify(SettingsStore.public_view(row))

    @bp.get("/enabled", endpoint="enabled")
    def enabled() -> Response:
        try:
            on = service().is_enabled(tenant())
        except Exception as exc:
            if database_cause(exc) is not None:
                raise
            log.exception("connectwise enabled check failed")
            on = False
        return jsonify({"enabled": on})

    @bp.get("/tickets/search", endpoint="search")
    def search() -> Response:
        query = _query_text("q", max_length=200)
        return jsonify(service().search_json(tenant(), query))

    @bp.get("/tickets/<ticket_id>", endpoint="ticket")
    def ticket(ticket_id: str) -> Response:
        return jsonify(service().get_ticket(tenant(), parse_ticket_id(ticket_id)).to_json())

    @bp.post("/tickets/<ticket_id>/notes", endpoint="notes")
    def notes(ticket_id: str) -> tuple[Response, int]:
        number = parse_ticket_id(ticket_id)
        data = _json_body()
        limit = int(current_app.config["CONNECTWISE_NOTE_MAX_LENGTH"])
        text = required_text(data, "text", max_length=limit, multiline=True)
        internal = _bool(data, "internal")
        member = _member(data, tenant())
        note = service().add_note(tenant(), number, text, member=member, internal=internal)
        service().record_sent(
            tenant(),
            number,
            note=note,
            note_text=text,
            member=member,
            internal=internal,
            operator=state().extension.member(),
        )
        return jsonify(note.to_json()), 201

    @bp.post("/tickets/<ticket_id>/time", endpoint="time")
    def time_entry(ticket_id: str) -> tuple[Response, int]:
        number = parse_ticket_id(ticket_id)
        data = _json_body()
        hours = optional_hours(data)
        minutes = optional_minutes(data)
        if hours is not None and minutes is not None:
            raise ApiError(400, "validation_error", "Send hours or minutes, not both", "hours")
        if hours is None and minutes is None:
            raise ApiError(400, "validation_error", "hours or minutes is required", "hours")
        hours = hours if hours is not None else round((minutes or 0) / 60, 4)
        notes_text = optional_text(data, "notes", max_length=4000, multiline=True)
        member = _member(data, tenant())
        entry = service().add_time_entry(
            tenant(), number, hours=hours, member=member, notes=notes_text
        )
        service().record_sent(
            tenant(),
            number,
            time_entry=entry,
            note_text=notes_text or "",
            member=member,
            hours=hours,
            operator=state().extension.member(),
        )
        return jsonify(entry.to_json()), 201

    @bp.patch("/tickets/<ticket_id>/status", endpoint="status")
    def status(ticket_id: str) -> Response:
        number = parse_ticket_id(ticket_id)
        data = _json_body()
        status_id = optional_id(data, "statusId")
        if status_id is None:
            raise ApiError(400, "validation_error", "statusId is required", "statusId")
        return jsonify(service().update_status(tenant(), number, status_id).to_json())

    @bp.post("/tickets/<ticket_id>/log-change", endpoint="log_change")
    def log_change(ticket_id: str) -> Response:
        number = parse_ticket_id(ticket_id)
        data = _json_body()
        limit = int(current_app.config["CONNECTWISE_NOTE_MAX_LENGTH"])
        note_text = required_text(data, "noteText", max_length=limit, multiline=True)
        hours = optional_hours(data)
        status_id = optional_id(data, "statusId")
        key = check_idempotency_key(request.headers.get("Idempotency-Key"))
        outcome = service().log_change(
            tenant(),
            number,
            note_text,
            member=_member(data, tenant()),
            hours=hours,
            status_id=status_id,
            internal=_bool(data, "internal"),
            idempotency_key=key,
            operator=state().extension.member(),
        )
        return jsonify(outcome)

    return bp
