"""The JSON routes (the seed's HTTP contract): parse, authorize, call the services, answer.

The views call the app's services directly: ``tenants`` (credentials, flag, clients),
``search`` (the cached ticket search) and ``outbox`` (log-changes and what was sent).

Each view declares what it needs with :func:`requires`: ``"configure"`` (credentials) or
``"use"`` (the rest), and whether it answers while the feature flag is off (only
``/enabled``). Before a view runs, :func:`guard` checks in order: the tenant id (else 404),
the host's ``authorize`` hook for that action (403), ``application/json`` on state changes
(415), the CSRF token in the configured header (403) and the flag (404). A view without
``requires`` is refused (403). Errors are answered by :mod:`.http_errors`.

The blueprint is registered once per app under ``CONNECTWISE_URL_PREFIX`` (which holds
``<tenant_id>``), read from the app's config at registration.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar
from urllib.parse import unquote_to_bytes

from flask import Blueprint, Response, current_app, g, jsonify, render_template, request
from flask.sansio.app import App
from flask.sansio.blueprints import BlueprintSetupState

from . import notices, ticketchecks
from .choices import NOTE_VISIBILITIES
from .client import ConnectWiseClient, call_deadline
from .credentials import CredentialsStore, TenantSettings
from .crypto import CryptoError
from .csrf import csrf_valid
from .current import Action, state
from .errors import (
    AuthenticationError,
    ConnectWiseError,
    ConnectWiseTimeoutError,
    MemberRequiredError,
    MemberUnusableError,
)
from .faults import database_cause
from .http_errors import ApiError, error_response, register_error_handlers
from .outbox import Outbox
from .search import SEARCH_MAX_LENGTH
from .tenants import Tenants
from .validation import (
    InputError,
    check_idempotency_key,
    check_text,
    is_tenant_id,
    optional_id,
    optional_text,
    parse_ticket_id,
    required_text,
)

log = logging.getLogger("flask_connectwise.api")

BLUEPRINT_NAME = "connectwise_api"
STATE_CHANGING_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})

View = TypeVar("View", bound=Callable[..., Any])


# -- what a view requires ------------------------------------------------------------------


@dataclass(frozen=True)
class Requirement:
    """What a view needs: the ``authorize`` action, and whether the feature flag must be on."""

    action: Action
    feature_flag: bool = True


REQUIREMENT_ATTRIBUTE = "connectwise_requires"


def requires(action: Action, *, feature_flag: bool = True) -> Callable[[View], View]:
    """Declare the ``authorize`` action a view needs (``"use"`` or ``"configure"``);
    ``feature_flag=False`` lets it answer while the integration is off."""
    if action not in ("use", "configure"):
        raise ValueError(f"unknown action {action!r}: use 'use' or 'configure'")

    def mark(view: View) -> View:
        setattr(view, REQUIREMENT_ATTRIBUTE, Requirement(action, feature_flag))
        return view

    return mark


def requirement_of(view: Callable[..., Any] | None) -> Requirement | None:
    """The :class:`Requirement` ``view`` was declared with, or ``None``."""
    found = getattr(view, REQUIREMENT_ATTRIBUTE, None)
    return found if isinstance(found, Requirement) else None


# -- the blueprint ---------------------------------------------------------------------------


class _RoutesBlueprint(Blueprint):
    """A blueprint that defaults its URL prefix to the app's ``CONNECTWISE_URL_PREFIX``."""

    def register(self, app: App, options: dict[str, Any]) -> None:
        if options.get("url_prefix") is None:
            options = {**options, "url_prefix": url_prefix(app.config)}
        super().register(app, options)


def url_prefix(config: Mapping[str, Any]) -> str:
    """``CONNECTWISE_URL_PREFIX`` without its trailing slash."""
    return str(config["CONNECTWISE_URL_PREFIX"]).rstrip("/")


blueprint = _RoutesBlueprint(BLUEPRINT_NAME, __name__, template_folder="templates")
#: On any page of the host: flash the outcomes that arrived after their response (once).
blueprint.before_app_request(notices.flash_finished)
register_error_handlers(blueprint)


@blueprint.record
def _check_prefix(setup: BlueprintSetupState) -> None:
    """Every registration's prefix must name the tenant (the guard needs it)."""
    if "<tenant_id>" not in (setup.url_prefix or ""):
        raise RuntimeError("CONNECTWISE_URL_PREFIX must contain <tenant_id>")


@blueprint.url_value_preprocessor
def pull_tenant(endpoint: str | None, values: dict[str, Any] | None) -> None:
    g.connectwise_tenant = (values or {}).pop("tenant_id", None)


# -- the guard: one small check per concern, in the order they answer ------------------------


def _refuse_unknown_tenant(tenant: str | None) -> Response | None:
    if not is_tenant_id(tenant):
        return error_response(404, "unknown_tenant", "Unknown tenant")
    return None


def _refuse_unauthorized(tenant: str, requirement: Requirement | None) -> Response | None:
    # A view that declares nothing is refused: a new route cannot be open by omission.
    if requirement is None:
        return error_response(403, "forbidden", "You may not do this for this tenant")
    # A hook that fails denies, unless the database made it fail: then 503.
    ext = state().extension
    if not ext.is_authorized(tenant, requirement.action, raise_database_errors=True):
        return error_response(403, "forbidden", "You may not do this for this tenant")
    return None


def _refuse_non_json() -> Response | None:
    if request.method in STATE_CHANGING_METHODS and request.mimetype != "application/json":
        return error_response(415, "unsupported_media_type", "Send the body as application/json")
    return None


def _refuse_missing_csrf() -> Response | None:
    if request.method not in STATE_CHANGING_METHODS:
        return None
    if not current_app.config["CONNECTWISE_REQUIRE_CSRF"]:
        return None
    header = current_app.config["CONNECTWISE_CSRF_HEADER"]
    if csrf_valid(request.headers.get(header)):
        return None
    return error_response(
        403, "csrf_failed", f"A valid CSRF token is required in the {header} header"
    )


def _flag_on(tenant: str) -> bool:
    """The feature flag; a failing check is "off", unless the database failed (then 503)."""
    try:
        return bool(state().tenants.flag_on(tenant))
    except Exception as exc:
        if database_cause(exc) is not None:
            raise
        log.exception("connectwise flag check failed")
        return False


def _refuse_flag_off(tenant: str, requirement: Requirement) -> Response | None:
    if requirement.feature_flag and not _flag_on(tenant):
        return error_response(
            404, "feature_disabled", "The ConnectWise integration is not enabled for this tenant"
        )
    return None


@blueprint.before_request
def guard() -> Response | None:
    """Refuse the request before its view runs (see the module docstring), or ``None``."""
    tenant = g.connectwise_tenant
    refusal = _refuse_unknown_tenant(tenant)
    if refusal is not None:
        return refusal
    requirement = requirement_of(current_app.view_functions.get(request.endpoint or ""))
    refusal = (
        _refuse_unauthorized(tenant, requirement) or _refuse_non_json() or _refuse_missing_csrf()
    )
    if refusal is not None or requirement is None:
        return refusal
    return _refuse_flag_off(tenant, requirement)


# -- reading the request ---------------------------------------------------------------------


def _tenant() -> str:
    return str(g.connectwise_tenant)


def _tenants() -> Tenants:
    return state().tenants


def _outbox() -> Outbox:
    return state().outbox


def _client() -> ConnectWiseClient:
    """The ConnectWise client for the request's tenant."""
    return _tenants().client_for(_tenant())


#: The deepest JSON body the routes accept. Python's parser alone gives up at a depth that
#: differs by version (3.11 near 1,000 levels; 3.13 parses 5,000), so the limit is checked here.
MAX_JSON_DEPTH = 32


def _too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``value`` holds objects or arrays nested more than ``limit`` deep."""
    if not isinstance(value, dict | list):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def _json_body() -> dict[str, Any]:
    try:
        data = request.get_json(silent=True, cache=True)
    except RecursionError:  # nested thousands deep: the parser gives up
        raise InputError("body", "The body is nested too deeply", code="invalid_json") from None
    if _too_deep(data):
        raise InputError("body", "The body is nested too deeply", code="invalid_json")
    if data is None:
        raise InputError("body", "The body is not valid JSON", code="invalid_json")
    if not isinstance(data, dict):
        raise InputError("body", "The body must be a JSON object", code="invalid_json")
    return data


def _bool(data: Mapping[str, Any], key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise InputError(key, f"{key} must be true or false")
    return value


def _query_text(key: str, *, max_length: int, label: str | None = None) -> str:
    """A query-string parameter, refused when the query is not valid UTF-8 text. ``label``
    names it in the messages (the widget shows them to operators); the field stays ``key``."""
    name = label or key
    try:
        unquote_to_bytes(request.query_string.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(key, f"{name} must be valid UTF-8 text.") from None
    if key not in request.args:
        raise InputError(key, f"{name} is required.")
    value = request.args.get(key, "")
    if len(value) > max_length:
        raise InputError(key, f"{name} must be at most {max_length} characters.")
    return check_text(key, value)


def _note_limit() -> int:
    return int(current_app.config["CONNECTWISE_NOTE_MAX_LENGTH"])


def _member(data: Mapping[str, Any], tenant_id: str) -> str | None:
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


def _operator() -> str | None:
    return state().extension.member()


def _number(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise InputError(key, f"{key} must be a number")
    return float(value)


def _requested_hours(data: Mapping[str, Any]) -> float | None:
    """The body's ``hours`` or ``minutes`` (at most one) as hours, within
    ``CONNECTWISE_MIN_MINUTES``..``CONNECTWISE_MAX_MINUTES``; ``None`` when neither is sent."""
    hours, minutes = _number(data, "hours"), _number(data, "minutes")
    if hours is not None and minutes is not None:
        raise InputError("hours", "Send hours or minutes, not both")
    low = int(current_app.config["CONNECTWISE_MIN_MINUTES"])
    high = int(current_app.config["CONNECTWISE_MAX_MINUTES"])
    if minutes is not None:
        if not low <= minutes <= high:
            raise InputError("minutes", f"minutes must be between {low} and {high}")
        return round(minutes / 60, 4)
    if hours is not None:
        # A little slack: minutes are stored as hours rounded to 4 places (1 min = 0.0167 h).
        if not low - 1e-3 <= hours * 60 <= high + 1e-6:
            raise InputError(
                "hours",
                f"hours must be between {low / 60:.4g} and {high / 60:g} ({low} to {high} minutes)",
            )
        return hours
    return None


def _visibility(data: Mapping[str, Any], settings: TenantSettings | None) -> str:
    """The note's visibility: the body's ``visibility``, else its ``internal``, else the
    tenant's ``note_visibility``."""
    value = data.get("visibility")
    if value is not None:
        if value not in NOTE_VISIBILITIES:
            raise InputError(
                "visibility", "visibility must be one of " + ", ".join(NOTE_VISIBILITIES)
            )
        return str(value)
    if "internal" in data:
        return "internal" if _bool(data, "internal") else "discussion"
    return settings.note_visibility if settings is not None else "discussion"


def _member_required() -> bool:
    return bool(current_app.config.get("CONNECTWISE_REQUIRE_MEMBER", True))


def _refuse_without_member() -> ApiError:
    return ApiError(400, "member_required", MemberRequiredError().message, "memberIdentifier")


def _settings(tenant: str) -> TenantSettings | None:
    """The tenant's settings; ``None`` when there are none or they cannot be read (the outbox
    then answers as before: not configured, or the change waits for an administrator)."""
    try:
        return _tenants().settings(tenant)
    except CryptoError as exc:
        log.info("connectwise: settings unreadable", extra={"cw_error": type(exc).__name__})
        return None


def _deadline() -> float:
    """``CONNECTWISE_CHECK_DEADLINE``: what the checks before a change and a search may take."""
    return ticketchecks.check_deadline(current_app.config)


def _check_member(tenant: str, member: str | None) -> None:
    """A member that does not exist, is inactive or is an API member: 400, nothing written."""
    try:
        with call_deadline(_deadline()):
            ticketchecks.check_member(state().members, tenant, member)
    except MemberUnusableError as exc:
        raise ApiError(400, "member_unusable", exc.message, "memberIdentifier") from None


def _writer(tenant: str, member: str | None) -> ConnectWiseClient:
    """The client a direct note or time entry is written with: as the outbox does, with
    ``CONNECTWISE_IMPERSONATE_MEMBERS`` on, the (checked) member's own impersonation keys;
    otherwise, or with no member, the tenant's API keys."""
    impersonation = _outbox().impersonation
    if member and impersonation is not None and impersonation.enabled:
        # Checked just before (cached): the Member whose token ConnectWise issues.
        return impersonation.writer(tenant, state().members.check(tenant, member))
    return _client()


def _check_ticket(
    settings: TenantSettings | None, number: int, *, logs_time: bool
) -> ticketchecks.TicketVerdict:
    """The chosen ticket's company, and (when time is logged) its closed state and status."""
    if settings is None:
        return ticketchecks.TicketVerdict()
    try:
        client = _client()
    except (ConnectWiseError, CryptoError) as exc:
        # Unusable credentials: the outbox records the change and says so, as before.
        log.info("connectwise: the ticket was not checked", extra={"cw_error": type(exc).__name__})
        return ticketchecks.TicketVerdict()
    try:
        with call_deadline(_deadline()):
            return ticketchecks.fetch_and_check(number, settings, client, logs_time=logs_time)
    except ticketchecks.TicketRefused as exc:
        raise ApiError(400, exc.code, exc.message, "ticketId") from None


# -- the views -------------------------------------------------------------------------------


@blueprint.get("/credentials", endpoint="credentials_get")
@requires("configure")
def credentials_get() -> Response:
    return jsonify(CredentialsStore.public_view(_tenants().credentials_row(_tenant())))


@blueprint.post("/credentials", endpoint="credentials_post")
@requires("configure")
def credentials_post() -> Response:
    tenants, tenant = _tenants(), _tenant()
    tenants.save_credentials(tenant, _json_body(), actor=_operator())
    # Companies, work type and role given by id only get ConnectWise's names (as the admin
    # form does); ids it does not know, or no answer, are kept as given and warned about.
    lookup = tenants.name_choices(tenant)
    view = CredentialsStore.public_view(tenants.credentials_row(tenant))
    view["warnings"] = [*view["warnings"], *lookup]
    return jsonify(view)


@blueprint.get("/enabled", endpoint="enabled")
@requires("use", feature_flag=False)
def enabled() -> Response:
    try:
        on = _tenants().is_enabled(_tenant())
    except Exception as exc:
        if database_cause(exc) is not None:
            raise
        log.exception("connectwise enabled check failed")
        on = False
    return jsonify({"enabled": on})


@blueprint.get("/tickets/search", endpoint="search")
@requires("use")
def search() -> Response:
    query = _query_text("q", max_length=SEARCH_MAX_LENGTH, label="Search text")
    try:
        with call_deadline(_deadline()):
            return jsonify(state().search.json(_tenant(), query))
    except AuthenticationError as exc:
        # The widget shows this to operators: plain words, no status code (logged for admins).
        log.warning(
            "connectwise search: credentials rejected",
            extra={"cw_error": exc.error_code, "cw_status": exc.status, "cw_tenant": _tenant()},
        )
        raise ApiError(
            exc.http_status,
            exc.error_code,
            "ConnectWise rejected this tenant's credentials. Ask an administrator to check them.",
        ) from None
    except ConnectWiseError as exc:
        # Slow (past the deadline) or down: say so at once; the widget asks for a number.
        if not ticketchecks.unreachable(exc):
            raise
        if isinstance(exc, ConnectWiseTimeoutError):
            raise ApiError(
                503, "connectwise_slow", "ConnectWise is slow; type a ticket number"
            ) from None
        raise ApiError(
            503, "connectwise_unavailable", "ConnectWise is unavailable; type a ticket number"
        ) from None


@blueprint.get("/tickets/<ticket_id>", endpoint="ticket")
@requires("use")
def ticket(ticket_id: str) -> Response:
    return jsonify(_client().get_ticket(parse_ticket_id(ticket_id)).to_json())


@blueprint.post("/tickets/<ticket_id>/notes", endpoint="notes")
@requires("use")
def notes(ticket_id: str) -> tuple[Response, int]:
    tenant, number, data = _tenant(), parse_ticket_id(ticket_id), _json_body()
    text = required_text(data, "text", max_length=_note_limit(), multiline=True)
    settings = _settings(tenant)
    visibility = _visibility(data, settings)
    member = _member(data, tenant)
    _check_member(tenant, member)
    _check_ticket(settings, number, logs_time=False)
    note = _writer(tenant, member).add_note(
        number,
        text,
        member=member,
        visibility=visibility,
        email_contact=bool(settings and settings.email_contact),
    )
    _outbox().record_sent(
        tenant,
        number,
        note=note,
        note_text=text,
        member=member,
        internal=visibility == "internal",
        operator=_operator(),
    )
    return jsonify(note.to_json()), 201


@blueprint.post("/tickets/<ticket_id>/time", endpoint="time")
@requires("use")
def time_entry(ticket_id: str) -> tuple[Response, int]:
    tenant, number, data = _tenant(), parse_ticket_id(ticket_id), _json_body()
    hours = _requested_hours(data)
    if hours is None:
        raise InputError("hours", "hours or minutes is required")
    notes_text = optional_text(data, "notes", max_length=4000, multiline=True)
    member = _member(data, tenant)
    if member is None and _member_required():
        raise _refuse_without_member()
    settings = _settings(tenant)
    add_to = _visibility(data, settings)
    _check_member(tenant, member)
    # Time is all this route writes: a ticket that cannot take it is refused whatever the
    # tenant's ticket policy ("warn" would skip the one step and answer 201 for nothing).
    refusing = replace(settings, ticket_policy="refuse") if settings is not None else None
    _check_ticket(refusing, number, logs_time=True)
    # As the outbox sends it: the tenant's work type, role and billable option, and the
    # notes copied onto the ticket where the tenant's (or the body's) visibility says.
    entry = _writer(tenant, member).add_time_entry(
        number,
        hours=hours,
        member=member,
        notes=notes_text,
        add_to=add_to,
        **ticketchecks.work_defaults(settings),
    )
    _outbox().record_sent(
        tenant,
        number,
        time_entry=entry,
        note_text=notes_text or "",
        member=member,
        hours=hours,
        operator=_operator(),
    )
    return jsonify(entry.to_json()), 201


@blueprint.patch("/tickets/<ticket_id>/status", endpoint="status")
@requires("use")
def status(ticket_id: str) -> Response:
    number, data = parse_ticket_id(ticket_id), _json_body()
    status_id = optional_id(data, "statusId")
    if status_id is None:
        raise InputError("statusId", "statusId is required")
    return jsonify(_client().update_status(number, status_id).to_json())


@blueprint.post("/tickets/<ticket_id>/log-change", endpoint="log_change")
@requires("use")
def log_change(ticket_id: str) -> Response:
    """Log a change: note, time (``hours`` or ``minutes``, else the tenant's default minutes)
    and status (``statusId``, else the tenant's automatic status).

    Before anything is written: the member is checked (400 ``member_unusable``) and so is the
    ticket (400 ``ticket_other_company``; closed or no time allowed: 400 ``ticket_closed`` /
    ``ticket_time_not_allowed``, or with the tenant's ``ticket_policy`` "warn" the time step
    is skipped and ``warnings`` says why). With no member and ``CONNECTWISE_REQUIRE_MEMBER``:
    a request that sends ``hours``/``minutes`` is refused (400 ``member_required``); one that
    relies on the tenant's default minutes logs the note only, the time step skipped with its
    reason (and a warning): the caller did not ask for time, so the note is not lost for it.
    """
    tenant, number, data = _tenant(), parse_ticket_id(ticket_id), _json_body()
    note_text = required_text(data, "noteText", max_length=_note_limit(), multiline=True)
    hours = _requested_hours(data)
    status_id = optional_id(data, "statusId")
    key = check_idempotency_key(request.headers.get("Idempotency-Key"))
    # A replay (or a conflict) is answered from the first change: nothing checked again.
    replay = key is not None and _outbox().find_by_key(tenant, key) is not None
    settings = _settings(tenant)
    visibility = _visibility(data, settings)
    member = _member(data, tenant)
    logs_time = hours is not None or bool(settings and settings.default_time_minutes)
    time_skipped: str | None = None
    warnings: list[str] = []
    if logs_time and member is None and _member_required():
        if hours is not None:
            raise _refuse_without_member()
        time_skipped = ticketchecks.NO_MEMBER_REASON
        warnings.append("Logged without time: your user is not linked to a ConnectWise member.")
    # Member and ticket checks share one CONNECTWISE_CHECK_DEADLINE: slow or down, the
    # ticket is accepted unverified and checked at delivery.
    with call_deadline(_deadline()):
        if not replay:
            _check_member(tenant, member)
        verdict = _check_ticket(
            None if replay else settings, number, logs_time=logs_time and time_skipped is None
        )
    if verdict.time_skipped:
        time_skipped = verdict.time_skipped
        warnings.append(verdict.warning or verdict.time_skipped)
    if not verdict.verified:
        warnings.append(verdict.warning or ticketchecks.unverified_warning(number))
    # The tenant's switch decides; its board map (else its legacy status) picks the status.
    auto_status = status_id is None and bool(settings and settings.auto_update_status)
    outcome = _outbox().log_change(
        tenant,
        number,
        note_text,
        member=member,
        hours=hours,
        status_id=status_id,
        internal=visibility == "internal",
        visibility=visibility,
        auto_status=auto_status,
        time_skipped=time_skipped,
        ticket_verified=verdict.verified,
        idempotency_key=key,
        operator=_operator(),
    )
    answer = outcome.to_json()
    if warnings:
        answer["warnings"] = warnings
    return jsonify(answer)


@blueprint.get("/changes/mine", endpoint="changes_mine")
@requires("use")
def changes_mine() -> Response:
    """The operator's last 50 changes of this tenant, newest first."""
    return jsonify({"changes": notices.my_changes(_tenant(), _operator())})


@blueprint.get("/changes/mine/page", endpoint="changes_mine_page")
@requires("use")
def changes_mine_page() -> str:
    """The "My recent ConnectWise logs" page: the same list as a plain, accessible table."""
    return render_template(
        "connectwise/my_changes.html", changes=notices.my_changes(_tenant(), _operator())
    )
