"""``TicketSearchField``: pick a ConnectWise ticket in any WTForms form, then log the change.

The field's data is the selected ticket id (``int``) or ``None``. Its widget renders a plain text
input that accepts a ticket number (``12345`` or ``#12345``) and works without JavaScript; the
widget's own script (``static/connectwise/ticket-search.js``, emitted once per page by the
widget itself, so the host edits no template) turns it into a WAI-ARIA 1.2 combobox that
searches the extension's ``/tickets/search`` route. While the feature is off, or the tenant has
no credentials, the field renders nothing and validates as empty.

Next to the ticket input the widget renders an optional minutes input (``<name>-minutes``,
placeholder: the tenant's default minutes, bounds ``CONNECTWISE_MIN_MINUTES`` to
``CONNECTWISE_MAX_MINUTES``, checked on the server); the minutes reach the change's time entry.
Validation also checks the chosen ticket and the operator's member before anything is written
(see :mod:`flask_connectwise.ticketchecks`): a ticket of another company is refused, a closed
ticket (or one whose status allows no time) is refused or, with the tenant's ticket policy
"warn", accepted with its time step skipped and a warning.

After the host applied its change, ``form.ticket.log_change("what changed")`` adds the change to
the host's database session (the outbox), so it commits with the host's change; it is delivered
to ConnectWise right after that commit and the operator sees the outcome as a flashed message.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    flash,
    g,
    has_request_context,
    request,
    url_for,
)
from markupsafe import Markup, escape
from wtforms.fields import Field
from wtforms.fields.core import Label
from wtforms.utils import unset_value
from wtforms.validators import StopValidation
from wtforms.widgets import html_params

from . import notices, ticketchecks
from .client import call_deadline
from .crypto import CryptoError
from .current import state
from .errors import AuthenticationError, ConnectWiseError, MemberUnusableError, NotFoundError
from .models import ChangeLogRow, ChangeState
from .outbox import IdempotencyConflict, Outbox, Outcome, Pending
from .search import SEARCH_MAX_LENGTH
from .tenants import IntegrationOffError
from .wording import aside

log = logging.getLogger("flask_connectwise.fields")

__all__ = [
    "TicketSearchField",
    "TicketSearchWidget",
    "connectwise_static",
    "csp_nonce",
    "parse_ticket_number",
    "register_static",
    "ticket_label",
]

MAX_TICKET_ID = 2**31 - 1
STATIC_ENDPOINT = "connectwise_static.static"
SCRIPT_FILE = "connectwise/ticket-search.js"
STYLE_FILE = "connectwise/ticket-search.css"
_ASSETS_FLAG = "_connectwise_ticket_search_assets"
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_MINUTES_RE = re.compile(r"^\s*(\d{1,6})\s*$")
_NUMBER_RE = re.compile(r"^\s*#?\s*(\d{1,12})(?:\s*(?:—|–|-|:)\s*.*)?\s*$", re.DOTALL)

#: ``Cache-Control`` of an asset fetched by its content-hashed URL (outside debug): a year,
#: never revalidated; a changed file gets a new URL, so nothing stale is ever served.
IMMUTABLE = "public, max-age=31536000, immutable"
_STATIC_DIR = Path(__file__).parent / "static"
#: ``filename -> ((mtime_ns, size), hash)``: a file is hashed again when it changes on disk.
_ASSET_HASHES: dict[str, tuple[tuple[int, int], str]] = {}


def asset_hash(filename: str) -> str:
    """The first 16 hex digits of the SHA-256 of ``static/<filename>`` (the asset URL's ``v``).

    Re-read only when the file's modification time or size changed, so an edited asset gets a
    new URL on the next page render (development), at the cost of one ``stat`` per render.
    """
    path = _STATIC_DIR / filename
    info = path.stat()
    key = (info.st_mtime_ns, info.st_size)
    known = _ASSET_HASHES.get(filename)
    if known and known[0] == key:
        return known[1]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    _ASSET_HASHES[filename] = (key, digest)
    return digest


class _StaticAssets(Blueprint):
    """The package's static files: immutable when asked for by their current content hash."""

    def send_static_file(self, filename: str) -> Response:
        response = super().send_static_file(filename)
        version = request.args.get("v")
        fresh = False
        if version and not current_app.debug:
            try:
                fresh = secrets.compare_digest(version, asset_hash(filename))
            except (OSError, ValueError, TypeError):
                fresh = False
        if fresh:
            response.headers["Cache-Control"] = IMMUTABLE
            response.headers.pop("Expires", None)
        else:
            # Debug, no version, or an old one: serve the current file, revalidated each time,
            # so an old URL never pins new content (or a new URL old content) for a year.
            response.headers["Cache-Control"] = "no-cache"
        return response


#: Serves the package's ``static/`` folder at ``/connectwise-static`` (``connectwise_static.static``).
connectwise_static = _StaticAssets(
    "connectwise_static",
    __name__,
    static_folder=str(_STATIC_DIR),
    static_url_path="/connectwise-static",
)


def register_static(app: Flask) -> None:
    """Serve the widget's script and style sheet on ``app`` (once; a second call does nothing)."""
    if connectwise_static.name not in app.blueprints:
        app.register_blueprint(connectwise_static)


def csp_nonce() -> str | None:
    """The CSP nonce for the widget's ``<script>``/``<link>`` tags, or ``None``.

    In this order: ``CONNECTWISE_CSP_NONCE`` (a callable returning the nonce of the current
    response), ``g.csp_nonce``, ``request.csp_nonce`` (Flask-Talisman's attribute).
    """
    factory = current_app.config.get("CONNECTWISE_CSP_NONCE")
    value: Any = None
    if callable(factory):
        value = factory()
    else:
        value = g.get("csp_nonce")
        if not value and has_request_context():
            value = getattr(request, "csp_nonce", None)
    return str(value) if value else None


def parse_ticket_number(text: str) -> int:
    """``"12345"``, ``"#12345"`` or a rendered label ``"#12345 — summary"`` → ``12345``.

    :raises ValueError: with a message for the operator.
    """
    match = _NUMBER_RE.match(text)
    if not match:
        raise ValueError("Enter a ticket number such as 12345, or pick a ticket from the list")
    number = int(match.group(1))
    if not 0 < number <= MAX_TICKET_ID:
        raise ValueError("The ticket number must be a positive whole number")
    return number


def ticket_label(ticket: Any) -> str:
    """``#12345 — Printer offline`` for a :class:`~flask_connectwise.records.Ticket`."""
    summary = (getattr(ticket, "summary", "") or "").strip()
    return f"#{ticket.id} — {summary}" if summary else f"#{ticket.id}"


def _ticket_meta(ticket: Any) -> str:
    parts = [getattr(ticket, "company", None), getattr(ticket, "status", None)]
    if getattr(ticket, "closed", False):
        parts.append("closed")
    return " · ".join(p for p in parts if p)


def outcome_message(outcome: dict[str, Any], hours: float | None) -> tuple[str, str]:
    """The flashed ``(message, category)`` for a delivery outcome (the HTTP contract's JSON)."""
    result = Outcome.from_json(outcome, hours)
    return result.summary(), result.severity


def replay_message(row: Any) -> tuple[str, str]:
    """The flashed ``(message, category)`` for a repeated submit of a form already logged:
    where the stored change stands now (its original outcome), never "nothing changed"."""
    ticket = row.ticket_id
    head = f"This form was already logged to ticket #{ticket}."
    if str(row.state) == ChangeState.PENDING:
        return f"{head} Logging to ticket #{ticket}…", "info"
    outcome = Outcome.of(row)
    return f"{head} {outcome.summary()}", outcome.severity


def dropped_message(ticket: str, tenant_id: str, *, flag_on: bool) -> str:
    """Why a ticket given with a form was not logged: the feature is off for the tenant, or
    its credentials are gone (``ticket``: ``"#12345"``, or ``""`` when it was not a number)."""
    name = state().extension.tenant_display_name(tenant_id)
    target = f"Not logged to {ticket}" if ticket else "Not logged to ConnectWise"
    if not flag_on:
        return f"{target}: the ConnectWise integration is off for {name}"
    return f"{target}: ConnectWise is not configured for {name}"


def report_to_operator(ticket_id: int, result: Outcome | Exception | Pending) -> None:
    """Flash the outcome of a delivery after the host's commit (see
    :meth:`~flask_connectwise.outbox.Outbox.deliver_after_commit`); a change still being
    delivered (:class:`~flask_connectwise.outbox.Pending`) is "Logging to ticket #…" now and its
    outcome is flashed on the operator's next page (:mod:`flask_connectwise.notices`)."""
    if isinstance(result, Pending):
        notices.tell_pending(result)
    elif isinstance(result, Outcome):
        _flash(result.summary(), result.severity)
    elif isinstance(result, IntegrationOffError):
        _flash(
            f"Not logged to ticket #{ticket_id} yet: the ConnectWise integration is off. The "
            "change is kept and sent once it is turned on.",
            "warning",
        )
    else:
        _flash(f"Could not log to ticket #{ticket_id} yet. It will be retried.", "warning")


class _TicketLabel(Label):
    """A label that renders nothing while the field is hidden (feature off)."""

    def __init__(self, field: TicketSearchField, field_id: str, text: str) -> None:
        super().__init__(field_id, text)
        self._field = field

    def __call__(self, text: str | None = None, **kwargs: Any) -> Markup:
        if not self._field.enabled:
            return Markup("")
        return super().__call__(text, **kwargs)


#: Apps already told that a ticket field rendered with no tenant (the warning is logged once).
_WARNED_NO_TENANT: set[str] = set()
NO_TENANT_WARNING = (
    "A ConnectWise ticket field rendered with no tenant, so it shows nothing: register "
    "@cw.current_tenant, or set CONNECTWISE_DEFAULT_TENANT for a single-tenant app."
)


def _warn_no_tenant() -> None:
    name = current_app.import_name
    if name not in _WARNED_NO_TENANT:
        _WARNED_NO_TENANT.add(name)
        log.warning(NO_TENANT_WARNING)


class TicketSearchWidget:
    """Renders the ticket input, its listbox, live region, hidden token and (once) the assets."""

    def __call__(self, field: TicketSearchField, **kwargs: Any) -> Markup:
        if not field.enabled:
            return Markup("")
        tenant = field.tenant_id or ""
        field_id = kwargs.pop("id", field.id)
        listbox_id = f"{field_id}-listbox"
        status_id = f"{field_id}-status"
        meta_id = f"{field_id}-selected"
        css_class = " ".join(c for c in ("cw-ts-input", kwargs.pop("class", "")) if c)
        css_class = " ".join(c for c in (css_class, kwargs.pop("class_", "")) if c)
        invalid = field.ticket_invalid() or "is-invalid" in css_class
        selected = field.selected_ticket()
        value = ticket_label(selected) if selected else field.raw_text()
        input_attrs: dict[str, Any] = {
            "type": "text",
            "id": field_id,
            "name": field.name,
            "value": value,
            "class": css_class,
            "role": "combobox",
            "aria-autocomplete": "list",
            "aria-expanded": "false",
            "aria-controls": listbox_id,
            "aria-describedby": f"{status_id} {meta_id}",
            "autocomplete": "off",
            "spellcheck": "false",
            "maxlength": str(SEARCH_MAX_LENGTH),  # the search route refuses longer text
            "placeholder": kwargs.pop("placeholder", field.placeholder),
        }
        if invalid:
            input_attrs["aria-invalid"] = "true"
        if field.flags.required:
            input_attrs["required"] = True
            input_attrs["aria-required"] = "true"
        input_attrs.update(kwargs)
        root_attrs: dict[str, Any] = {
            "class": "cw-ticket-search" + (" is-invalid" if invalid else ""),
            "data-cw-ticket-search": "",
            "data-search-url": url_for("connectwise_api.search", tenant_id=tenant),
            "data-debounce": str(field.debounce_ms),
            "data-min-digits": "1",
            "data-min-text": "2",
            # A full page of results may have been cut: the widget says so.
            "data-limit": str(int(current_app.config.get("CONNECTWISE_SEARCH_LIMIT", 25))),
            "data-cache-ms": str(
                int(current_app.config.get("CONNECTWISE_SEARCH_CACHE_SECONDS", 30)) * 1000
            ),
            "data-deadline-ms": str(int(ticketchecks.check_deadline(current_app.config) * 1000)),
        }
        if selected:
            root_attrs["data-selected-id"] = str(selected.id)
        parts = [_assets_once()]
        parts.append(f"<div {html_params(**root_attrs)}>")
        parts.append(f"<input {html_params(**input_attrs)}>")
        token_attrs = html_params(type="hidden", name=field.token_name, value=field.new_token())
        parts.append(f"<input {token_attrs}>")
        parts.append(
            f"<ul {html_params(id=listbox_id, role='listbox', class_='cw-ts-listbox')}"
            ' aria-label="Matching tickets" hidden></ul>'
        )
        parts.append(
            f"<div {html_params(id=status_id, class_='cw-ts-status')}"
            ' role="status" aria-live="polite" aria-atomic="true"></div>'
        )
        meta = _ticket_meta(selected) if selected else ""
        parts.append(
            f"<div {html_params(id=meta_id, class_='cw-ts-selected')}>{escape(meta)}</div>"
        )
        parts.append("</div>")
        parts.append(_minutes_input(field, field_id))
        # Every part is built by html_params() (which escapes values) or escape().
        return Markup("".join(parts))  # noqa: S704


def _minutes_input(field: TicketSearchField, field_id: str) -> str:
    """The optional per-change minutes input with its label (plain HTML, no script needed)."""
    low, high = field.minutes_bounds()
    minutes_id = f"{field_id}-minutes"
    attrs: dict[str, Any] = {
        "type": "number",
        "id": minutes_id,
        "name": field.minutes_name,
        "value": field.minutes_text,
        "class": "cw-ts-minutes",
        "min": str(low),
        "max": str(high),
        "step": "1",
        "inputmode": "numeric",
    }
    default = field.default_minutes()
    if default:
        attrs["placeholder"] = str(default)
    if field.minutes_error:
        attrs["aria-invalid"] = "true"
    hint = (
        f"Time to log, {low} to {high} minutes" + (f"; empty: {default}" if default else "") + "."
    )
    hint_id = f"{minutes_id}-hint"
    attrs["aria-describedby"] = hint_id
    return (
        f"<div {html_params(class_='cw-ts-time')}>"
        f"<label {html_params(for_=minutes_id)}>Minutes</label>"
        f"<input {html_params(**attrs)}>"
        f"<span {html_params(id=hint_id, class_='cw-ts-hint')}>{escape(hint)}</span>"
        "</div>"
    )


def _assets_once() -> str:
    """The ``<link>`` and ``<script>`` tags, the first time they are asked for in a request."""
    if g.get(_ASSETS_FLAG):
        return ""
    setattr(g, _ASSETS_FLAG, True)
    if STATIC_ENDPOINT.split(".")[0] not in current_app.blueprints:
        raise RuntimeError(
            "TicketSearchField needs its static files: call "
            "flask_connectwise.fields.register_static(app) (ConnectWise.init_app does this)"
        )
    nonce = csp_nonce()
    extra = {"nonce": nonce} if nonce else {}
    css = url_for(STATIC_ENDPOINT, filename=STYLE_FILE, v=asset_hash(STYLE_FILE))
    js = url_for(STATIC_ENDPOINT, filename=SCRIPT_FILE, v=asset_hash(SCRIPT_FILE))
    return (
        f"<link {html_params(rel='stylesheet', href=css, **extra)}>"
        f"<script {html_params(src=js, defer=True, **extra)}></script>"
    )


class TicketSearchField(Field):
    """A ConnectWise ticket picker; ``data`` is the ticket id (``int``) or ``None``.

    Optional unless given ``validators=[DataRequired()]``. On validation the number must be a
    positive integer naming a ticket of the current tenant. ``tenant`` (a string or a callable
    returning one) overrides the extension's ``@cw.current_tenant`` hook.
    """

    widget = TicketSearchWidget()

    def __init__(
        self,
        label: str | None = None,
        validators: Any = None,
        *,
        tenant: str | Callable[[], Any] | None = None,
        debounce_ms: int = 250,
        placeholder: str = "Ticket number or words from its summary",
        **kwargs: Any,
    ) -> None:
        super().__init__(label, validators, **kwargs)
        self.label = _TicketLabel(self, self.id, self.label.text)
        self._tenant_arg = tenant
        self.debounce_ms = int(debounce_ms)
        self.placeholder = placeholder
        self.ticket: Any = None
        self.submitted_token: str | None = None
        self._enabled: bool | None = None
        self._tenant_cache: tuple[str | None] | None = None
        self._rendered_token: str | None = None
        self._dropped_reported = False
        #: The per-change minutes from the minutes input (``None``: the tenant's default).
        self.minutes: int | None = None
        self.minutes_text = ""
        self.minutes_error: str | None = None
        #: Why the time step is skipped, and the warning flashed (ticket policy "warn").
        self.time_skipped: str | None = None
        self.warning: str | None = None
        #: The tenant's settings as the check before submit read them (reused by log_change).
        self._settings_read: Any = None
        #: False: ConnectWise was slow or down before submit; the ticket is checked at delivery.
        self.ticket_verified = True

    # -- tenant and feature ------------------------------------------------------------------

    @property
    def tenant_id(self) -> str | None:
        """The tenant this field works for (explicit ``tenant=``, else the host's hook)."""
        if self._tenant_cache is None:
            value: Any = self._tenant_arg
            try:
                if callable(value):
                    value = value()
                elif value is None:
                    value = state().extension.tenant()
            except Exception:
                log.exception("connectwise ticket field: the tenant could not be determined")
                value = None
            self._tenant_cache = (str(value) if value not in (None, "") else None,)
        return self._tenant_cache[0]

    @property
    def enabled(self) -> bool:
        """Whether the field is shown: a tenant, the feature on and credentials stored."""
        if self._enabled is None:
            tenant = self.tenant_id
            if tenant is None:
                _warn_no_tenant()  # also when a Flask-Admin view drops the field unrendered
                self._enabled = False
            else:
                try:
                    self._enabled = bool(state().tenants.is_enabled(tenant))
                except Exception:
                    log.exception("connectwise ticket field: the enabled check failed")
                    self._enabled = False
        return self._enabled

    # -- data --------------------------------------------------------------------------------

    @property
    def token_name(self) -> str:
        """Name of the hidden input carrying the form render's idempotency token."""
        return f"{self.name}__idempotency"

    def new_token(self) -> str:
        """A fresh random token for this render (one per form render, reused within it)."""
        if self._rendered_token is None:
            self._rendered_token = secrets.token_urlsafe(18)
        return self._rendered_token

    @property
    def minutes_name(self) -> str:
        """Name of the optional per-change minutes input."""
        return f"{self.name}-minutes"

    def minutes_bounds(self) -> tuple[int, int]:
        """``(CONNECTWISE_MIN_MINUTES, CONNECTWISE_MAX_MINUTES)``."""
        config = current_app.config
        return int(config.get("CONNECTWISE_MIN_MINUTES", 1)), int(
            config.get("CONNECTWISE_MAX_MINUTES", 480)
        )

    def default_minutes(self) -> int | None:
        """The tenant's default minutes per change (the minutes input's placeholder)."""
        try:
            row = state().tenants.credentials_row(str(self.tenant_id))
        except Exception:
            log.exception("connectwise ticket field: the tenant's default minutes failed")
            return None
        value = getattr(row, "default_time_minutes", None) if row is not None else None
        return int(value) if value else None

    def process(self, formdata: Any, data: Any = unset_value, extra_filters: Any = None) -> None:
        super().process(formdata, data, extra_filters)
        if formdata is not None:
            token = formdata.get(self.token_name)
            self.submitted_token = token if token and _TOKEN_RE.match(token) else None
            self._process_minutes(formdata.get(self.minutes_name))

    def _process_minutes(self, raw: Any) -> None:
        text = str(raw or "").strip()
        self.minutes_text = text[:20]
        self.minutes, self.minutes_error = None, None
        if not text:
            return
        low, high = self.minutes_bounds()
        match = _MINUTES_RE.match(text)
        if match is None or not low <= int(match.group(1)) <= high:
            self.minutes_error = f"Minutes must be a whole number between {low} and {high}"
            return
        self.minutes = int(match.group(1))

    def process_data(self, value: Any) -> None:
        if isinstance(value, bool):
            value = None
        if isinstance(value, int):
            self.data = value if 0 < value <= MAX_TICKET_ID else None
        elif isinstance(value, str) and value.strip():
            try:
                self.data = parse_ticket_number(value)
            except ValueError:
                self.data = None
        else:
            self.data = getattr(value, "id", None) if value is not None else None

    def process_formdata(self, valuelist: list[Any]) -> None:
        if not valuelist:
            return
        text = str(valuelist[0] or "").strip()
        if not text:
            self.data = None
            return
        try:
            self.data = parse_ticket_number(text)
        except ValueError as exc:
            self.data = None
            raise ValueError(str(exc)) from None

    def raw_text(self) -> str:
        """What to show in the input: the submitted text when it was not a valid ticket."""
        if self.raw_data:
            return str(self.raw_data[0] or "")
        return f"#{self.data}" if self.data else ""

    def selected_ticket(self) -> Any:
        """The selected ticket's record (fetched once when only the id is known), or ``None``."""
        if self.data is None or self.ticket_invalid():
            return None
        if self.ticket is None or self.ticket.id != self.data:
            try:
                self.ticket = state().tenants.client_for(str(self.tenant_id)).get_ticket(self.data)
            except Exception as exc:
                log.info(
                    "connectwise ticket field: no label for the selected ticket",
                    extra={"cw_error": type(exc).__name__},
                )
                from .records import Ticket

                self.ticket = Ticket(id=self.data, summary="")
        return self.ticket

    def ticket_invalid(self) -> bool:
        """Whether the ticket itself has an error (a wrong minutes value alone keeps the ticket
        selected)."""
        return bool(self.errors) and self.errors != [self.minutes_error]

    def _value(self) -> str:
        selected = self.selected_ticket()
        return ticket_label(selected) if selected else self.raw_text()

    def populate_obj(self, obj: Any, name: str) -> None:
        """Set ``obj.<name>`` only when the object has such an attribute (e.g. a column)."""
        if hasattr(obj, name):
            setattr(obj, name, self.data)

    # -- dropped tickets and replays -----------------------------------------------------------

    def warn_if_dropped(self) -> bool:
        """The operator gave a ticket, but the feature was turned off (or the tenant's
        credentials were removed) since the form was shown: flash a warning saying the ticket
        was not logged and why (once per field and request). Nothing is recorded."""
        text = str(self.raw_data[0] or "").strip() if self.raw_data else ""
        tenant = self.tenant_id
        if not text or tenant is None or self.enabled or self._dropped_reported:
            return False
        self._dropped_reported = True
        try:
            ticket = f"#{parse_ticket_number(text)}"
        except ValueError:
            ticket = ""
        try:
            flag_on = bool(state().tenants.flag_on(tenant))
        except Exception:
            log.exception("connectwise ticket field: the feature flag could not be read")
            flag_on = False
        _flash(dropped_message(ticket, tenant, flag_on=flag_on), "warning")
        return True

    def replayed(self) -> ChangeLogRow | None:
        """The change this very form submission already recorded (a double click, a resent
        POST: the same idempotency token), or ``None``."""
        if not self.submitted_token or self.data is None or not self.enabled:
            return None
        try:
            return state().outbox.find_by_key(  # type: ignore[no-any-return]
                str(self.tenant_id), f"form-{self.submitted_token}"
            )
        except Exception:
            log.exception("connectwise ticket field: looking up a replayed submit failed")
            return None

    def report_replay(self) -> bool:
        """When this submission was already logged (:meth:`replayed`), flash the stored
        change's outcome and return ``True``; a host calls it before saying "nothing changed"
        (the first submit already applied the change)."""
        row = self.replayed()
        if row is None:
            return False
        _flash(*replay_message(row))
        return True

    # -- validation --------------------------------------------------------------------------

    def validate(self, form: Any, extra_validators: Any = ()) -> bool:
        if not self.enabled:
            self.warn_if_dropped()
            self.errors: list[str] = []
            self.data = None
            return True
        return bool(super().validate(form, extra_validators))

    def pre_validate(self, form: Any) -> None:
        if self.process_errors:
            raise StopValidation()
        if self.minutes_error:
            raise StopValidation(self.minutes_error)
        if self.data is None:
            return
        tenant = str(self.tenant_id)
        self.time_skipped, self.warning = None, None
        self.ticket_verified = True
        # The whole check answers within CONNECTWISE_CHECK_DEADLINE (issue 15).
        with call_deadline(ticketchecks.check_deadline(current_app.config)):
            client = self._checked_ticket(tenant)
            self._check_change(tenant, client)

    def _checked_ticket(self, tenant: str) -> Any:
        """Read the ticket (``self.ticket``) and return the tenant's client. ConnectWise slow or
        down: the typed number is accepted unverified (checked at delivery) with a warning."""
        client: Any = None
        try:
            client, revision = state().tenants.client_and_revision(tenant)
            self.ticket = self._searched_or_read(tenant, client, revision)
        except ConnectWiseError as exc:
            if not ticketchecks.unreachable(exc):
                self._refuse(exc)
            from .records import Ticket

            log.info(
                "connectwise ticket field: ticket accepted unverified",
                extra={"cw_ticket": self.data, "cw_error": type(exc).__name__},
            )
            self.ticket = Ticket(id=int(self.data), summary="")
            self.ticket_verified = False
            self.warning = ticketchecks.unverified_warning(int(self.data))
            return client
        except Exception as exc:
            self._refuse(exc)
        return client

    def _searched_or_read(self, tenant: str, client: Any, revision: int) -> Any:
        """The ticket as ConnectWise answered it to this tenant's search (same credentials
        revision and company scope) within ``CONNECTWISE_TICKET_FACTS_SECONDS``, else read."""
        search = state().search
        ticket = search.facts.recall(
            tenant, revision, search.company_ids(tenant, revision), int(self.data)
        )
        return ticket if ticket is not None else client.get_ticket(self.data)

    def _refuse(self, error: Exception) -> NoReturn:
        """The ticket could not be checked: a plain validation error."""
        try:
            raise error
        except NotFoundError:
            raise StopValidation(f"Ticket #{self.data} was not found in ConnectWise") from None
        except AuthenticationError:
            raise StopValidation(
                f"Ticket #{self.data} could not be checked: ConnectWise refused this tenant's "
                "credentials. Ask an administrator to check them."
            ) from None
        except ConnectWiseError as exc:
            raise StopValidation(
                f"Ticket #{self.data} could not be checked because ConnectWise is unavailable "
                f"{aside(exc.message)}. Try again in a moment."
            ) from None
        except CryptoError:
            raise StopValidation(
                f"Ticket #{self.data} could not be checked: the stored ConnectWise credentials "
                "cannot be read. Ask an administrator."
            ) from None
        except Exception:
            log.exception("connectwise ticket field: checking the ticket failed")
            raise StopValidation(
                f"Ticket #{self.data} could not be checked right now. Try again in a moment."
            ) from None

    def _logs_time(self, settings: Any) -> bool:
        return bool(self.minutes or settings.default_time_minutes)

    def _check_change(self, tenant: str, client: Any) -> None:
        """The ticket's company, closed state and status, and the operator's member."""
        st = state()
        try:
            settings = st.tenants.settings(tenant)
        except Exception:
            log.exception("connectwise ticket field: the tenant's settings could not be read")
            return
        if settings is None:
            return
        self._settings_read = settings  # log_change of this same submit needs no second read
        member = st.extension.member()
        logs_time = self._logs_time(settings) and not self._without_member(member)
        verdict = ticketchecks.TicketVerdict(warning=self.warning, verified=False)
        try:
            if self.ticket_verified:
                verdict = ticketchecks.check_ticket(
                    self.ticket, settings, client, logs_time=logs_time
                )
            ticketchecks.check_member(st.members, tenant, member)
        except ticketchecks.TicketRefused as exc:
            raise StopValidation(exc.message) from None
        except MemberUnusableError as exc:
            raise StopValidation(
                f"{exc.message}. Ask an administrator to link your user to another member."
            ) from None
        self.time_skipped, self.warning = verdict.time_skipped, verdict.warning

    @staticmethod
    def _without_member(member: str | None) -> bool:
        """No member, and ``CONNECTWISE_REQUIRE_MEMBER``: the time step is skipped."""
        return not member and bool(current_app.config.get("CONNECTWISE_REQUIRE_MEMBER", True))

    # -- log-change --------------------------------------------------------------------------

    def log_change(
        self,
        note: str,
        *,
        hours: float | None = None,
        status_id: int | None = None,
        internal: bool = False,
        visibility: str | None = None,
    ) -> ChangeLogRow | None:
        """Record ``note`` for the selected ticket in the host's session; deliver after commit.

        ``hours``: else the minutes input's, else the tenant's default. ``visibility`` (or
        ``internal=True``): else the tenant's note visibility. Without ``status_id`` the tenant's
        automatic status applies (when it has one). With no member for the operator and
        ``CONNECTWISE_REQUIRE_MEMBER``, the note is logged and the time step skipped (the flashed
        outcome says why); so it is when the tenant's ticket policy "warn" let a closed ticket
        through.

        Returns the change-log row, or ``None`` when no ticket is selected, the feature is off
        or this form submission was already logged (same idempotency token). The operator is
        told the outcome with :func:`flask.flash` once the change was delivered.
        """
        if self.data is None or not self.enabled or self.errors:
            self.warn_if_dropped()
            return None
        replayed = self.replayed()
        if replayed is not None:  # the same submit again: the stored change's outcome
            _flash(*replay_message(replayed))
            return replayed
        note = (note or "").strip()
        if not note:
            raise ValueError("log_change needs a note that says what changed")
        limit = int(current_app.config.get("CONNECTWISE_NOTE_MAX_LENGTH", 4000))
        if len(note) > limit:
            note = note[: limit - 13].rstrip() + " (truncated)"
        st = state()
        member = st.extension.member()
        if hours is None and self.minutes:
            hours = round(self.minutes / 60, 4)
        settings = self._settings_read
        try:
            if settings is None or settings.tenant_id != str(self.tenant_id):
                settings = st.tenants.settings(str(self.tenant_id))
        except Exception:
            log.exception("connectwise ticket field: the tenant's settings could not be read")
        if visibility is None:
            visibility = "internal" if internal else getattr(settings, "note_visibility", None)
        time_skipped = self.time_skipped
        # A time step skipped (closed ticket under the "warn" policy, no member) is no flashed
        # warning of its own: the outcome flashed after delivery says it ("No time entry: …").
        warnings: list[str] = []
        logs_time = hours != 0 and (
            hours is not None or bool(settings and settings.default_time_minutes)
        )
        if logs_time and self._without_member(member):
            time_skipped = ticketchecks.NO_MEMBER_REASON
        if not self.ticket_verified:
            # ConnectWise was slow or down before submit: checked at delivery (issue 15).
            warnings.append(self.warning or ticketchecks.unverified_warning(self.data))
        # The tenant's switch decides; its board map (else its legacy status) picks the status.
        auto_status = status_id is None and bool(settings and settings.auto_update_status)
        try:
            row, created = st.outbox.record(
                str(self.tenant_id),
                self.data,
                note,
                member=member,
                hours=hours,
                status_id=status_id,
                internal=internal or visibility == "internal",
                visibility=visibility,
                auto_status=auto_status,
                time_skipped=time_skipped,
                ticket_verified=self.ticket_verified,
                idempotency_key=f"form-{self.submitted_token}" if self.submitted_token else None,
                operator=member,
            )
        except IdempotencyConflict:
            _flash(f"This form was already logged to ticket #{self.data}.", "info")
            return None  # (report_replay above answers a replay; kept for a race)
        except (ConnectWiseError, CryptoError) as exc:
            _flash(f"The change could not be logged to ticket #{self.data}: {exc}", "warning")
            return None
        if not created:
            _flash(*replay_message(row))
            return row
        for warning in warnings:
            _flash(warning, "warning")
        st.outbox.deliver_after_commit(row, report_to_operator)
        return row


# -- delivery after the host's commit ----------------------------------------------------------


def schedule_delivery(
    service: Any, row: Any, *, ticket_id: int, hours: float | None = None
) -> None:
    """Deliver ``row`` once its session commits and flash the outcome (compatibility: use
    ``cw.outbox.deliver_after_commit(row, report_to_operator)``)."""
    outbox: Outbox = getattr(service, "outbox", service)
    outbox.deliver_after_commit(row, report_to_operator)


def _flash(message: str, category: str) -> None:
    if has_request_context():
        flash(message, category)
