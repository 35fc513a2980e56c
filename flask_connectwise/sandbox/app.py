"""The sandbox's request pipeline, independent of the socket layer.

Order for every API request: codebase check (404) → latency → rate limit (429) → injected
fault → auth (401) → route (404/405) → content type (415) → JSON body (400) → resource.
``/_sandbox/*`` control routes skip all of that and are not logged.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
import secrets
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from . import api
from .control import control, with_help
from .errors import CWError, bad_request, for_status, not_found
from .faults import Fault, FaultQueue, RateLimiter, make_fault, path_matches
from .rules import SandboxRules, parse_rate_limit, rate_limit_spec
from .rules import coerce as coerce_rules
from .store import DEFAULT_TOKEN_LIFETIME, Store

REDACTED = "<redacted>"
ROUTER_CODEBASE = "v4_6_release/"
_API = re.compile(r"^/(?P<codebase>[^/]+)/apis/3\.0/(?P<rest>.*)$", re.IGNORECASE)
_COMPANY_INFO = re.compile(r"^/login/companyinfo/(?P<company>[^/]+)/?$", re.IGNORECASE)


class Headers(dict[str, str]):
    """A ``dict`` of request headers whose lookups ignore case."""

    def _key(self, name: object) -> object:
        if isinstance(name, str):
            low = name.lower()
            for key in self.keys():
                if key.lower() == low:
                    return key
        return name

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(self._key(name))  # type: ignore[index]

    def __contains__(self, name: object) -> bool:
        return super().__contains__(self._key(name))

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(self._key(name), default)  # type: ignore[call-overload]


@dataclass
class HttpRequest:
    """A parsed HTTP request as the socket layer hands it over."""

    method: str
    target: str
    headers: Headers
    body: bytes = b""


@dataclass
class Outcome:
    """What to do with the connection: answer, or hold ``hold`` seconds and/or drop it."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    hold: float = 0.0
    drop: bool = False


@dataclass
class RequestRecord:
    """One logged API request. ``status`` is 0 when no answer was sent (dropped)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    status: int
    started: float
    duration: float
    fault: str | None = None
    #: The member whose impersonation token authenticated the request (``None``: API keys or
    #: no valid credentials). The keys themselves are never logged.
    auth_member: str | None = None


WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})


class RequestLog(list[RequestRecord]):
    """A snapshot of the request log: a list, and callable to filter it.

    ``sandbox.requests`` is the whole log; ``sandbox.requests(method="POST",
    path="service/tickets/*/notes")`` the requests that fit (the path is a glob per segment,
    as in ``inject_fault``; the method is case-insensitive).
    """

    def __call__(self, method: str | None = None, path: str | None = None) -> list[RequestRecord]:
        return [
            r
            for r in self
            if (method is None or r.method.upper() == method.upper())
            and (path is None or path_matches(path, r.path))
        ]

    def writes(self) -> list[RequestRecord]:
        """The POST, PATCH, PUT and DELETE requests, in order."""
        return [r for r in self if r.method.upper() in WRITE_METHODS]


def json_outcome(status: int, payload: Any, headers: dict[str, str] | None = None) -> Outcome:
    """A JSON answer with ConnectWise-like headers."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Outcome(
        status,
        {
            "Content-Type": "application/json; charset=utf-8",
            "x-cw-request-id": str(uuid.uuid4()),
            "x-server-name": "cw-sandbox",
            "api-current-version": "2025.1",
            **(headers or {}),
        },
        body,
    )


def error_outcome(err: CWError) -> Outcome:
    """The ConnectWise error body for ``err``."""
    return json_outcome(err.status, err.body(), err.headers)


class SandboxApp:
    """State, configuration and the request pipeline (no sockets)."""

    def __init__(
        self,
        url: str,
        *,
        company_id: str = "sandbox",
        public_key: str | None = None,
        private_key: str | None = None,
        client_id: str | None = None,
        codebase: str = "v2025_1/",
        latency: float = 0.0,
        seed: int = 1234,
        cloud_auth_404: bool = False,
        rules: SandboxRules | str | dict[str, Any] | None = None,
    ) -> None:
        self.url = url
        #: Tenant rule switches (``rules.py``); ``reset()`` restores these starting rules.
        self._initial_rules = coerce_rules(rules)
        if cloud_auth_404:
            self._initial_rules = self._initial_rules.updated({"cloud_auth_404": True})
        #: Answer bad credentials with 404 ``NotFound``, as cloud ConnectWise can (default 401).
        self._initial_cloud_auth_404 = self._initial_rules.cloud_auth_404
        self.cloud_auth_404 = self._initial_cloud_auth_404
        self.company_id = company_id
        self.public_key = public_key or secrets.token_hex(8)
        self.private_key = private_key or secrets.token_hex(16)
        self.client_id = client_id or str(uuid.uuid4())
        self._initial = (_norm_codebase(codebase), float(latency))
        self.codebase, self.latency = self._initial
        self.store = Store(seed, url, self._initial_rules)
        self.faults = FaultQueue()
        self.limiter = RateLimiter()
        self._apply_rate_limit_rule(self._initial_rules.rate_limit)
        self._log_lock = threading.Lock()
        self._records: list[RequestRecord] = []
        self._connections = 0
        self._wake = threading.Event()

    # ---- configuration -----------------------------------------------------------------
    @property
    def credentials(self) -> dict[str, str]:
        """What a client needs: base_url, company_id, public_key, private_key, client_id."""
        return {
            "base_url": self.url,
            "company_id": self.company_id,
            "public_key": self.public_key,
            "private_key": self.private_key,
            "client_id": self.client_id,
        }

    def move_codebase(self, codebase: str) -> None:
        """Move the tenant: the old codebase path 404s, companyinfo reports the new one."""
        self.codebase = _norm_codebase(codebase)

    def set_latency(self, seconds: float) -> None:
        """Seconds added to every API request (not to ``/_sandbox`` routes)."""
        self.latency = max(0.0, float(seconds))

    def set_cloud_auth_404(self, enabled: bool) -> None:
        """Answer bad credentials with 404 ``NotFound`` (like cloud) instead of 401."""
        self.cloud_auth_404 = bool(enabled)

    @property
    def rules(self) -> SandboxRules:
        """The tenant rules in force (``cloud_auth_404`` and ``rate_limit`` follow their own
        knobs too: the last one set wins)."""
        limit = rate_limit_spec(self.limiter.max_requests, self.limiter.per_seconds)
        return self.store.rules.updated(
            {"cloud_auth_404": self.cloud_auth_404, "rate_limit": limit}
        )

    def set_rules(self, rules: SandboxRules | str | dict[str, Any] | None) -> SandboxRules:
        """Switch tenant rules: a ``SandboxRules``, a profile name (``"strict"``) or a dict
        (optional ``profile`` plus overrides). ``reset()`` restores the starting rules."""
        new = coerce_rules(rules)
        with self.store.lock:
            self.store.rules = new
        self.cloud_auth_404 = new.cloud_auth_404
        if new.rate_limit != self.rules.rate_limit:  # unchanged: keep the window and Retry-After
            self._apply_rate_limit_rule(new.rate_limit)
        return new

    def _apply_rate_limit_rule(self, spec: str | None) -> None:
        if spec is None:
            self.limiter.configure(None)
        else:
            self.limiter.configure(*parse_rate_limit(spec))

    def inject_fault(
        self,
        path: str,
        kind: str,
        *,
        count: int = 1,
        status: int | None = None,
        method: str | None = None,
        delay: float | None = None,
        retry_after: int | None = None,
        message: str | None = None,
    ) -> Fault:
        """Queue a fault for the next ``count`` matching requests (see ``faults.KINDS``);
        ``message`` replaces a ``status`` fault's usual error message."""
        fault = make_fault(
            path,
            kind,
            count=count,
            status=status,
            method=method,
            delay=delay,
            retry_after=retry_after,
            message=message,
        )
        self.faults.add(fault)
        return fault

    def prefix_text(self, prefix: str) -> None:
        """Prefix every display text (names, summaries, notes, version); ``reset()`` undoes it."""
        self.store.prefix_text(prefix)

    def clear_faults(self) -> None:
        """Forget every pending fault."""
        self.faults.clear()

    def set_rate_limit(
        self, max_requests: int | None, per_seconds: float = 60.0, retry_after: int | None = None
    ) -> None:
        """Sliding-window limit over API requests; ``None`` disables it. The same limiter as
        the ``rate_limit`` rule: whichever was set last wins."""
        if max_requests is not None:
            parse_rate_limit(rate_limit_spec(max_requests, per_seconds))
        self.limiter.configure(max_requests, per_seconds, retry_after)

    def reset(self) -> None:
        """Seed data, no faults, no latency, empty log, initial codebase and the starting rules
        (including their rate limit, none by default)."""
        self.store.reset()
        self.faults.clear()
        self._apply_rate_limit_rule(self._initial_rules.rate_limit)
        self.codebase, self.latency = self._initial
        self.cloud_auth_404 = self._initial_cloud_auth_404
        with self.store.lock:
            self.store.rules = self._initial_rules
            self.store.token_lifetime = DEFAULT_TOKEN_LIFETIME
        self.clear_requests()

    @property
    def token_lifetime(self) -> float:
        """Seconds a member impersonation token lives (``reset()`` restores an hour); zero
        or less issues tokens that are already expired."""
        return self.store.token_lifetime

    @token_lifetime.setter
    def token_lifetime(self, seconds: float) -> None:
        with self.store.lock:
            self.store.token_lifetime = float(seconds)

    # ---- request log -------------------------------------------------------------------
    @property
    def requests(self) -> RequestLog:
        """A snapshot of the request log; call it to filter: ``requests(method=, path=)``."""
        with self._log_lock:
            return RequestLog(copy.deepcopy(self._records))

    def writes(self, path: str | None = None) -> list[RequestRecord]:
        """The POST, PATCH, PUT and DELETE requests that reached the sandbox (``path``: a glob)."""
        return [r for r in self.requests.writes() if path is None or path_matches(path, r.path)]

    def clear_requests(self) -> None:
        """Empty the request log and zero ``connections_opened``."""
        with self._log_lock:
            self._records.clear()
            self._connections = 0

    @property
    def connections_opened(self) -> int:
        """TCP connections accepted since start or the last ``clear_requests()``."""
        with self._log_lock:
            return self._connections

    def _connection_opened(self) -> None:
        with self._log_lock:
            self._connections += 1

    def wait(self, seconds: float) -> None:
        """Sleep, but wake at once when the server stops."""
        if seconds > 0:
            self._wake.wait(seconds)

    # ---- state access ------------------------------------------------------------------
    def ticket(self, ticket_id: int) -> dict[str, Any]:
        """A copy of one ticket (``KeyError`` if unknown)."""
        with self.store.lock:
            return copy.deepcopy(self.store.data.tickets[ticket_id])

    def tickets(self) -> list[dict[str, Any]]:
        """Copies of all tickets, by id."""
        with self.store.lock:
            tickets = self.store.data.tickets
            return copy.deepcopy([tickets[k] for k in sorted(tickets)])

    def notes(self, ticket_id: int) -> list[dict[str, Any]]:
        """Copies of a ticket's notes (oldest first)."""
        with self.store.lock:
            return copy.deepcopy(
                [n for n in self.store.data.notes.values() if n["ticketId"] == ticket_id]
            )

    def time_entries(self, ticket_id: int) -> list[dict[str, Any]]:
        """Copies of the time entries charged to a service ticket."""
        with self.store.lock:
            return copy.deepcopy(self.store.time_entries(ticket_id))

    def members(self) -> list[dict[str, Any]]:
        """Copies of all members."""
        with self.store.lock:
            return copy.deepcopy(list(self.store.data.members.values()))

    def board_statuses(self, board_id: int) -> list[dict[str, Any]]:
        """Copies of one board's statuses (``KeyError`` for an unknown board)."""
        with self.store.lock:
            if board_id not in self.store.data.boards:
                raise KeyError(board_id)
            return copy.deepcopy(self.store.board_statuses(board_id))

    # ---- pipeline ----------------------------------------------------------------------
    def handle(self, req: HttpRequest) -> Outcome:
        """Answer one request (never raises)."""
        path, _, qs = req.target.partition("?")
        if path.startswith("/_sandbox/") or path == "/_sandbox":
            try:
                return control(self, req.method, path, _json_or_none(req.body))
            except (ValueError, TypeError, KeyError) as exc:
                return error_outcome(bad_request(f"Invalid control request: {exc}"))
            except CWError as err:
                return error_outcome(err)
        started, t0 = time.time(), time.perf_counter()
        query = dict(parse_qsl(qs, keep_blank_values=True))
        m = _API.match(path)
        logged = path
        fault: Fault | None = None
        try:
            info = _COMPANY_INFO.match(path)
            if info:
                self.wait(self.latency)
                fault = self.faults.take(req.method, f"login/companyinfo/{info['company']}")
                outcome = self._with_fault(fault, lambda: self._company_info(req, info["company"]))
            elif m and self._codebase_ok(m["codebase"]):
                logged = m["rest"]
                self.wait(self.latency)
                retry = self.limiter.check()
                if retry is not None:
                    limited = for_status(
                        429, f"Too many requests. Please retry after {retry} seconds."
                    )
                    limited.headers["Retry-After"] = str(retry)
                    raise limited
                fault = self.faults.take(req.method, m["rest"])
                outcome = self._with_fault(fault, lambda: self._api(req, m["rest"], query))
            elif m is None:  # not an API path at all (e.g. "/" in a browser): say what is
                raise with_help(self, not_found(f"The requested resource was not found: {path}"))
            else:
                raise not_found(f"The requested resource was not found: {path}")
        except CWError as err:
            outcome = error_outcome(err)
        self._log(req, logged, query, outcome, started, t0, fault)
        return outcome

    def _codebase_ok(self, codebase: str) -> bool:
        name = codebase.lower() + "/"
        return name in (self.codebase.lower(), ROUTER_CODEBASE)

    def _with_fault(self, fault: Fault | None, run: Any) -> Outcome:
        if fault is None:
            return run()  # type: ignore[no-any-return]
        delay = 5.0 if fault.delay is None else fault.delay
        if fault.kind == "status":
            assert fault.status is not None
            err = for_status(fault.status, fault.message)
            if fault.status == 429:
                err.headers["Retry-After"] = str(fault.retry_after or 1)
            return error_outcome(err)
        if fault.kind == "timeout":
            return Outcome(hold=delay, drop=True)
        if fault.kind == "slow_apply":
            time.sleep(delay)  # this request's own thread: others are answered meanwhile
            return run()  # type: ignore[no-any-return]
        if fault.kind == "reset":
            return Outcome(drop=True)
        outcome: Outcome = run()
        if fault.kind == "apply_then_timeout":
            return Outcome(hold=delay, drop=True)
        if fault.kind == "apply_then_drop":
            return Outcome(drop=True)
        outcome.body = outcome.body[: max(1, len(outcome.body) // 2)]  # invalid_json
        return outcome

    def _company_info(self, req: HttpRequest, company: str) -> Outcome:
        if req.method.upper() != "GET":
            raise for_status(405)
        if company.lower() != self.company_id.lower():
            return json_outcome(200, None)
        version = self.codebase.strip("/").replace("_", ".")
        return json_outcome(
            200,
            {
                "CompanyName": "Sandbox MSP",
                "Codebase": self.codebase,
                "VersionCode": version,
                "VersionNumber": "v4.6.10431",
                "CompanyID": self.company_id,
                "IsCloud": False,
                "SiteUrl": self.url.split("://", 1)[-1],
            },
        )

    def _api(self, req: HttpRequest, rest: str, query: dict[str, str]) -> Outcome:
        actor = self._authenticate(req.headers)
        handler, ids = api.find(req.method, rest)
        body: Any = None
        if req.method.upper() in ("POST", "PATCH", "PUT"):
            ctype = req.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if ctype != "application/json" and not ctype.endswith("+json"):
                raise for_status(
                    415,
                    f"The request entity's media type '{ctype or 'none'}' is "
                    f"not supported for this resource.",
                )
            body = _parse_json(req.body)
        url = f"{self.url}{req.target.partition('?')[0]}"
        ctx = api.Ctx(self.store, query, url, body, ids)
        with self.store.lock:
            self.store.actor = actor
            try:
                answer = handler(ctx)
            finally:
                self.store.actor = None
            return json_outcome(answer.status, answer.payload, answer.headers)

    def _authenticate(self, headers: Headers) -> dict[str, Any] | None:
        """The member an impersonation token acts as, ``None`` for the API keys; raises 401."""
        try:
            return self._check_credentials(headers)
        except CWError as err:
            if self.cloud_auth_404:
                # Cloud ConnectWise can answer bad credentials as if the record were missing.
                raise not_found("The requested resource was not found.") from None
            raise err

    def _token_member(self, company: str, public: str, password: str) -> dict[str, Any] | None:
        """The member of a live impersonation token with these keys; ``None`` when they are
        no token's; 401 when the token has expired."""
        with self.store.lock:
            token = self.store.tokens.get(public)
            if (
                token is None
                or company.lower() != self.company_id.lower()
                or not secrets.compare_digest(password, token.private_key)
            ):
                return None
            if token.expires <= datetime.now(UTC):
                raise CWError(
                    401,
                    "Unauthorized",
                    "Authorization has been denied for this request: the member token has expired.",
                )
            return self.store.data.members.get(token.member_id)

    def _check_credentials(self, headers: Headers) -> dict[str, Any] | None:
        auth = headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "basic" or not token.strip():
            raise CWError(
                401,
                "Unauthorized",
                "Authorization has been denied for this request: "
                "send Basic company+publicKey:privateKey.",
            )
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise CWError(401, "Unauthorized", "The Authorization header is malformed.") from None
        user, _, password = decoded.partition(":")
        company, _, public = user.partition("+")
        actor = self._token_member(company, public, password)
        if actor is None and not (
            company.lower() == self.company_id.lower()
            and secrets.compare_digest(public, self.public_key)
            and secrets.compare_digest(password, self.private_key)
        ):
            raise CWError(
                401,
                "Unauthorized",
                "Authorization has been denied for this request: "
                "wrong company id, public key or private key.",
            )
        client = headers.get("clientId", "").strip()
        if not client or client.lower() != self.client_id.lower():
            raise CWError(
                401,
                "Unauthorized",
                "A valid clientId header is required. See developer.connectwise.com/ClientID.",
            )
        return actor

    def _logged_member(self, headers: Headers) -> str | None:
        """For the request log: the member whose live token the request carried, if any."""
        try:
            scheme, _, value = headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "basic":
                return None
            user, _, password = base64.b64decode(value.strip()).decode().partition(":")
            company, _, public = user.partition("+")
            member = self._token_member(company, public, password)
        except (CWError, ValueError):
            return None
        return str(member["identifier"]) if member else None

    def _log(
        self,
        req: HttpRequest,
        path: str,
        query: dict[str, str],
        outcome: Outcome,
        started: float,
        t0: float,
        fault: Fault | None,
    ) -> None:
        headers = Headers(
            {
                k: (REDACTED if k.lower() in ("authorization", "clientid") else v)
                for k, v in req.headers.items()
            }
        )
        record = RequestRecord(
            method=req.method.upper(),
            path=path,
            query=query,
            headers=headers,
            json=_json_or_none(req.body),
            status=0 if outcome.drop else outcome.status,
            started=started,
            duration=time.perf_counter() - t0 + outcome.hold,
            fault=fault.kind if fault else None,
            auth_member=self._logged_member(req.headers),
        )
        with self._log_lock:
            self._records.append(record)

    def records_json(self) -> list[dict[str, Any]]:
        """The request log as JSON-ready dicts."""
        return [asdict(r) for r in self.requests]


def _norm_codebase(codebase: str) -> str:
    return codebase.strip("/") + "/"


def _json_or_none(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _parse_json(body: bytes) -> Any:
    if not body.strip():
        return None
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad_request(f"The request body is not valid JSON: {exc}") from None
