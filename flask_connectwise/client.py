"""``ConnectWiseClient``: one method per ConnectWise Manage call. Flask-free.

Every call has a (connect, read) timeout, follows no redirect, and maps failures to the typed
errors of :mod:`flask_connectwise.errors`. Reads and the status change (an absolute value, so
idempotent) are retried on connection errors, 429 and 502/503/504 with full-jitter backoff.
Writes that create records (notes, time entries) are retried only when the request provably
never left this machine, or when ConnectWise refused it with 429; after a read timeout or a 5xx
their outcome is unknown, and the error says so (``sent=True``) so the caller can look first.

No key, client id or ``Authorization`` header appears in ``repr()``, log lines or error text.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import quote as urlquote
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

from . import conditions as cond
from .cachesafe import SafeCache
from .errors import (
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    ConnectWiseError,
    ConnectWiseTimeoutError,
    ConnectWiseValidationError,
    CredentialsUnusableError,
    FieldError,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    StatusNotOnBoardError,
    UnavailableError,
)
from .records import (
    Board,
    BoardStatus,
    Company,
    Member,
    Note,
    SystemInfo,
    Ticket,
    TimeEntry,
    WorkRole,
    WorkType,
    parse_datetime,
)
from .redaction import Redactor, basic_token
from .refine import TicketAnswer
from .retry import RetryPolicy
from .signals import connectwise_called
from .urlpolicy import UnsafeURLError, split_url

__all__ = ["DEFAULT_API_VERSION", "FALLBACK_CODEBASE", "ConnectWiseClient", "call_deadline"]

log = logging.getLogger("flask_connectwise.client")

# The monotonic time by which every call made in this context must be answered (None: only the
# client's own timeouts and retry policy). Set with :func:`call_deadline`.
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "connectwise_call_deadline", default=None
)


@contextlib.contextmanager
def call_deadline(seconds: float) -> Iterator[None]:
    """Bound every ConnectWise call made inside the block to ``seconds`` in all, retries and
    codebase discovery included: each call's timeouts are cut to what is left and no retry
    starts past it; once it has passed a call raises
    :class:`~.errors.ConnectWiseTimeoutError` at once. Nested deadlines keep the earlier one."""
    until = time.monotonic() + max(0.0, float(seconds))
    outer = _DEADLINE.get()
    token = _DEADLINE.set(until if outer is None else min(outer, until))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


_GATE: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar(
    "connectwise_call_gate", default=None
)


@contextlib.contextmanager
def call_gate(before_call: Callable[[], None]) -> Iterator[None]:
    """Run ``before_call`` before every ConnectWise request sent inside the block (retries
    included): delivery waits there for the tenant's rate limit, one token per call
    (:mod:`flask_connectwise.ratelimit`). Requests outside such a block are never held."""
    token = _GATE.set(before_call)
    try:
        yield
    finally:
        _GATE.reset(token)


def _time_left() -> float | None:
    """Seconds left before this context's deadline (``None``: no deadline)."""
    until = _DEADLINE.get()
    return None if until is None else until - time.monotonic()


#: The response model version pinned in ``Accept`` (see ConnectWise "PSA Versioning").
DEFAULT_API_VERSION = "2022.1"
#: The router codebase, used when ``login/companyinfo`` cannot tell the real one.
FALLBACK_CODEBASE = "v4_6_release/"
#: Fields asked for when listing tickets (keeps answers small).
TICKET_FIELDS = (
    "id,summary,status/id,status/name,board/id,board/name,company/id,company/name,closedFlag"
)
#: The most tickets one search returns.
MAX_SEARCH_LIMIT = 100
#: Text with ``_ % * [ ]`` is searched by its literal pieces and checked for the exact text
#: here, so such a search asks ConnectWise for this many times ``limit`` tickets (at most 1,000).
SEARCH_OVERFETCH = 10
#: ConnectWise's largest page.
MAX_PAGE_SIZE = 1000
#: Fields asked for when reading members.
MEMBER_FIELDS = "id,identifier,firstName,lastName,primaryEmail,inactiveFlag,licenseClass"
#: A note's visibility -> the ServiceNote display flag set; a time entry's ``add_to`` -> the
#: TimeEntry flag that copies its notes onto the ticket the same way.
NOTE_VISIBILITY_FLAGS = {
    "discussion": "detailDescriptionFlag",
    "internal": "internalAnalysisFlag",
    "resolution": "resolutionFlag",
}
ADD_TO_FLAGS = {
    "discussion": "addToDetailDescriptionFlag",
    "internal": "addToInternalAnalysisFlag",
    "resolution": "addToResolutionFlag",
}
#: TimeEntry ``billableOption`` values.
BILLABLE_OPTIONS = ("Billable", "DoNotBill", "NoCharge", "NoDefault")

_RETRYABLE_STATUSES = frozenset({502, 503, 504})
_CODEBASE_TTL = 3600.0
_LOCAL_CODEBASE_TTL = 60.0
_STATUS_CACHE_TTL = 300.0
#: How long a successful ``system/info`` keeps 404s meaning "not found" (not bad credentials).
_CREDENTIALS_CONFIRMED_TTL = 60.0
#: A retry is not started unless at least this much of the deadline is left after its pause:
#: a call with less time than this cannot answer, and the caller is better served by the error
#: already in hand than by a timeout (sleep overshoot on a busy machine is tens of ms).
_MIN_RETRY_SECONDS = 0.1
_CREDENTIALS_REJECTED = (
    "ConnectWise rejected the credentials (company id, public or private key, or client id)"
)
#: What keys, client ids and company ids may hold (they travel in HTTP headers).
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]+")


class CodebaseCache(Protocol):
    """Where discovered codebases are kept; a Flask-Caching ``Cache`` fits."""

    def get(self, key: str) -> Any: ...

    def set(self, key: str, value: Any, timeout: int | None = None) -> Any: ...


class _MemoryCache:
    """A small thread-safe TTL dictionary: the default codebase cache, shared per process."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        with self._lock:
            item = self._data.get(key)
            if item is None or item[0] < time.monotonic():
                self._data.pop(key, None)
                return None
            return item[1]

    def set(self, key: str, value: Any, timeout: int | None = None) -> bool:
        with self._lock:
            self._data[key] = (time.monotonic() + (timeout or _CODEBASE_TTL), value)
        return True


_PROCESS_CODEBASES = _MemoryCache()


def _normalise_base_url(base_url: str) -> str:
    """``scheme://host[:port]``, read by the URL policy's strict parser, so the host checked
    here is the one urllib3 connects to (no ``\\``, userinfo, ``%`` or whitespace tricks)."""
    parts = urlsplit((base_url or "").strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError("The base URL must look like https://api-na.myconnectwise.net")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigurationError("The base URL must not hold a user name, query or fragment")
    if parts.path not in ("", "/"):
        raise ConfigurationError(
            "The base URL is the host only, without a path such as /v4_6_release/apis/3.0"
        )
    try:
        strict = split_url(base_url.strip())
    except UnsafeURLError as exc:
        raise ConfigurationError(f"The base URL is not valid: {exc}") from None
    host = f"[{strict.host}]" if ":" in strict.host else strict.host
    port = f":{strict.port}" if strict.port is not None else ""
    return f"{strict.scheme}://{host}{port}"


def _request_was_sent(exc: requests.exceptions.RequestException) -> bool:
    """False only when the request provably never reached the server."""
    if isinstance(exc, requests.exceptions.ConnectTimeout | requests.exceptions.SSLError):
        return False
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason: Any = exc.args[0] if exc.args else None
        if isinstance(reason, urllib3.exceptions.MaxRetryError):
            reason = reason.reason
        return not isinstance(
            reason,
            urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError,
        )
    return True


def _redacted_str(redact: Callable[[str], str], value: Any) -> str | None:
    """A string field of an error answer, redacted and shortened (``None`` if not a string)."""
    return redact(value)[:100] if isinstance(value, str) else None


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _member_ref(member: str | int | Member | None) -> dict[str, Any] | None:
    if member is None or member == "":
        return None
    if isinstance(member, Member):
        return {"id": member.id}
    if isinstance(member, bool):
        raise TypeError("member must be an identifier, a member id or a Member")
    if isinstance(member, int):
        return {"id": member}
    return {"identifier": str(member).strip()}


def _positive_id(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{what} must be a positive integer")
    return value


#: What no identifier or e-mail address can hold and no quoted literal can carry: ``"`` would
#: end the literal, ``\`` has no documented meaning there, control characters and whitespace
#: have no place in an identifier (CONNECTWISE_API.md §3.1).
_NOT_IN_IDENTIFIER = re.compile(r"[\"\\\s\x00-\x1f\x7f]")
#: Longer than any member identifier or e-mail address ConnectWise stores.
_MAX_IDENTIFIER_LENGTH = 250


def _identifier_text(value: object) -> str | None:
    """A member identifier (or e-mail address) exactly as given, surrounding spaces aside, or
    ``None`` when no member can have it (empty, too long, or holding a character a quoted
    literal cannot carry). Unlike search text, nothing is replaced: ``j_doe`` stays ``j_doe``
    and is never turned into a different identifier."""
    text = str(value if value is not None else "").strip()
    if not text or len(text) > _MAX_IDENTIFIER_LENGTH or _NOT_IN_IDENTIFIER.search(text):
        return None
    return text


def _equals_exactly(name: str, value: str) -> str:
    """``name="value"`` for a value :func:`_identifier_text` accepted. An ``=`` comparison is
    no ``like``: ``_``, ``%``, ``*`` and ``[ ]`` are plain characters inside its quoted literal
    (CONNECTWISE_API.md §3.1: they are wildcards of ``like``), so they are kept; ``"``, ``\\``
    and whitespace never get here, so the text cannot leave the literal."""
    if _identifier_text(value) != value:
        raise ValueError("not a member identifier a condition can carry")
    return f'{cond.field(name)}="{value}"'


def format_time(value: datetime) -> str:
    """ConnectWise's UTC timestamp, ``2024-01-01T10:00:00Z``; naive datetimes are refused."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("times must be timezone-aware (a naive time would be sent as UTC)")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class MemberToken:
    """A member's impersonation keys (:meth:`ConnectWiseClient.member_token`), valid until
    ``expiration`` (UTC). The private key is left out of ``repr``."""

    public_key: str = field(repr=False)
    private_key: str = field(repr=False)
    expiration: datetime


class ConnectWiseClient:
    """A client for one ConnectWise Manage company, with one keep-alive HTTP session.

    ``base_url`` is the API host (``https://api-na.myconnectwise.net``, or an on-premises
    server's root). ``codebase`` pins the codebase (``"v2025_1/"``); when ``None`` it is read
    from ``login/companyinfo/{company_id}``, cached, and read again once after an unexpected
    404. ``timeout`` is the read timeout and ``connect_timeout`` the connect timeout, seconds.
    """

    #: The tenant this client serves (set by :class:`~flask_connectwise.tenants.Tenants`),
    #: and the sender of its :data:`~flask_connectwise.signals.connectwise_called` signals.
    tenant_id: str | None = None
    owner: object | None = None

    def __init__(
        self,
        base_url: str,
        company_id: str,
        public_key: str,
        private_key: str,
        client_id: str,
        *,
        codebase: str | None = None,
        timeout: float = 10.0,
        connect_timeout: float = 5.0,
        api_version: str = DEFAULT_API_VERSION,
        retry: RetryPolicy | None = None,
        codebase_cache: CodebaseCache | None = None,
        rediscover_interval: float = 60.0,
        status_cache_ttl: float = _STATUS_CACHE_TTL,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = _normalise_base_url(base_url)
        for name, value in (
            ("company id", company_id),
            ("public key", public_key),
            ("private key", private_key),
            ("client id", client_id),
        ):
            if not isinstance(value, str) or not value.strip():
                raise ConfigurationError(f"The ConnectWise {name} is missing")
            if not _PRINTABLE_ASCII.fullmatch(value):
                # It would fail in the HTTP headers (a UnicodeEncodeError) on every call.
                raise CredentialsUnusableError(
                    f"The stored ConnectWise {name} holds characters ConnectWise does not accept "
                    "(only ASCII letters, digits and punctuation): an administrator must "
                    "re-enter it"
                )
        if timeout <= 0 or connect_timeout <= 0:
            raise ConfigurationError("Timeouts must be positive")
        self.company_id = company_id.strip()
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.api_version = api_version
        self.retry = retry or RetryPolicy()
        self._pinned_codebase = self._clean_codebase(codebase) if codebase else None
        self._codebase_local: tuple[float, str] | None = None
        # A failing shared cache (Redis down) is a miss: the codebase is discovered again.
        self._codebases: CodebaseCache = (
            SafeCache.wrap(codebase_cache) if codebase_cache is not None else _PROCESS_CODEBASES
        )
        self._rediscover_interval = rediscover_interval
        self._last_rediscovery = float("-inf")
        self._status_cache_ttl = status_cache_ttl
        self._statuses: dict[int, tuple[float, list[BoardStatus]]] = {}
        self._members: dict[str, tuple[float, Member | None]] = {}
        self._ticket_boards: dict[int, tuple[float, int]] = {}
        self._tickets: dict[int, tuple[float, Ticket]] = {}
        self._credentials_confirmed_until = float("-inf")
        self._lock = threading.Lock()
        self._sleep = sleep
        token = basic_token(self.company_id, public_key.strip(), private_key.strip())
        # Any letter case, percent- or base64-encoded, and any ``Basic`` value (redaction.py).
        self._redact = Redactor.for_credentials(self.company_id, public_key, private_key, client_id)
        self._auth_headers = {"Authorization": f"Basic {token}", "clientId": client_id.strip()}
        self._session = session or requests.Session()
        # Environment proxies and .netrc would send our headers elsewhere: opt in explicitly.
        self._session.trust_env = False
        self._session.headers.update(
            {
                "Accept": f"application/vnd.connectwise.com+json; version={api_version}",
                "User-Agent": "flask-connectwise",
            }
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def __repr__(self) -> str:
        return (
            f"ConnectWiseClient(base_url={self.base_url!r}, company_id={self.company_id!r}, "
            f"codebase={self._pinned_codebase or 'discovered'!r})"
        )

    def close(self) -> None:
        """Close the HTTP session and its pooled connections."""
        self._session.close()

    def mount(self, prefix: str, adapter: requests.adapters.BaseAdapter) -> None:
        """Send the requests whose URL starts with ``prefix`` through ``adapter``: a transport
        for tests and fault injection (a tenant's client comes with the URL policy's guarded
        adapter; a replacement should subclass :class:`~flask_connectwise.urlpolicy.GuardedAdapter`)."""
        self._session.mount(prefix, adapter)

    def forget_local_codebase(self) -> None:
        """Drop this client's short-lived memo of the codebase: the next call reads the shared
        codebase cache (and discovers the codebase when that is empty)."""
        self._codebase_local = None

    def __enter__(self) -> ConnectWiseClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- codebase ----------------------------------------------------------------------------

    @staticmethod
    def _clean_codebase(codebase: str) -> str:
        value = codebase.strip().strip("/")
        if not value or "/" in value or ".." in value or not value.replace("_", "").isalnum():
            raise ConfigurationError(f"Not a ConnectWise codebase: {codebase!r}")
        return value + "/"

    @property
    def _codebase_key(self) -> str:
        return f"connectwise-codebase:{self.base_url}:{self.company_id.lower()}"

    @property
    def codebase(self) -> str:
        """The codebase in use (``"v2025_1/"``), discovering it on first use."""
        if self._pinned_codebase:
            return self._pinned_codebase
        local = self._codebase_local
        if local and local[0] > time.monotonic():
            return local[1]
        cached = self._codebases.get(self._codebase_key)
        if isinstance(cached, str) and cached:
            # Kept here for a minute too, so a shared cache (Redis) is not asked on every call.
            self._codebase_local = (time.monotonic() + _LOCAL_CODEBASE_TTL, cached)
            return cached
        return self._discover_codebase()

    def _discover_codebase(self) -> str:
        url = f"{self.base_url}/login/companyinfo/{urlquote(self.company_id, safe='')}"
        gate = _GATE.get()
        if gate is not None:
            gate()
        try:
            response = self._session.get(url, timeout=self._timeouts(), allow_redirects=False)
        except requests.exceptions.RequestException as exc:
            log.warning(
                "connectwise codebase discovery failed; using the router codebase",
                extra={"cw_error": type(exc).__name__, "cw_base_url": self.base_url},
            )
            return FALLBACK_CODEBASE
        info: Any = None
        if response.status_code == 200:
            try:
                info = response.json()
            except ValueError:
                info = None
            if info is None and response.content.strip() == b"null":
                raise AuthenticationError(
                    f"ConnectWise does not know the company id {self.company_id!r}",
                    status=200,
                )
        codebase = info.get("Codebase") if isinstance(info, dict) else None
        if not isinstance(codebase, str) or not codebase.strip("/"):
            log.warning(
                "connectwise companyinfo gave no codebase; using the router codebase",
                extra={"cw_status": response.status_code, "cw_base_url": self.base_url},
            )
            return FALLBACK_CODEBASE
        try:
            value = self._clean_codebase(codebase)
        except ConfigurationError:
            return FALLBACK_CODEBASE
        self._codebases.set(self._codebase_key, value, timeout=int(_CODEBASE_TTL))
        self._codebase_local = (time.monotonic() + _LOCAL_CODEBASE_TTL, value)
        log.info(
            "connectwise codebase discovered",
            extra={"cw_codebase": value, "cw_base_url": self.base_url},
        )
        return value

    def _rediscover(self) -> bool:
        """Read the codebase again after a 404; True when it changed."""
        if self._pinned_codebase:
            return False
        now = time.monotonic()
        with self._lock:
            if now - self._last_rediscovery < self._rediscover_interval:
                return False
            self._last_rediscovery = now
        old = self._codebases.get(self._codebase_key)
        self._codebase_local = None
        new = self._discover_codebase()
        return bool(new) and new != old

    # -- transport ---------------------------------------------------------------------------

    def _timeouts(self) -> tuple[float, float]:
        """(connect, read) timeouts, cut to what is left of the context's deadline; raises
        :class:`ConnectWiseTimeoutError` when it has passed."""
        left = _time_left()
        if left is None:
            return (self.connect_timeout, self.timeout)
        if left <= 0.01:
            raise ConnectWiseTimeoutError("ConnectWise did not answer in time", sent=False)
        return (min(self.connect_timeout, left), min(self.timeout, left))

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{self.codebase}apis/3.0/{path.lstrip('/')}"

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        idempotent: bool,
    ) -> Any:
        """Send one API call with the retry policy; return the decoded JSON answer."""
        headers = dict(self._auth_headers)
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json; charset=utf-8"
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        started = time.monotonic()
        attempt = 0
        rediscovered = False
        while True:
            attempt += 1
            url = self._url(path)
            timeouts = self._timeouts()
            gate = _GATE.get()
            if gate is not None:
                gate()
            call_started = time.monotonic()
            retry_after: float | None = None
            try:
                response = self._session.request(
                    method,
                    url,
                    params=params,
                    data=data,
                    headers=headers,
                    timeout=timeouts,
                    allow_redirects=False,
                )
            except requests.exceptions.RequestException as exc:
                error: ConnectWiseError = self._transport_error(exc)
                sent = getattr(error, "sent", True)
                retry = idempotent or not sent
                self._log(method, path, None, call_started, attempt, error=type(exc).__name__)
            else:
                self._log(method, path, response.status_code, call_started, attempt)
                status = response.status_code
                if status == 404 and not rediscovered and self._rediscover():
                    rediscovered = True
                    attempt -= 1
                    continue
                if 200 <= status < 300:
                    try:
                        return self._decode(response)
                    except UnavailableError as exc:
                        error, retry = exc, idempotent
                else:
                    error = self._http_error(response)
                    if isinstance(error, NotFoundError):
                        error = self._confirm_not_found(path, error)
                    retry_after = getattr(error, "retry_after", None)
                    retry = status == 429 or (idempotent and status in _RETRYABLE_STATUSES)
            elapsed = time.monotonic() - started
            delay = self.retry.backoff(attempt, retry_after)
            left = _time_left()
            if (
                not retry
                or not self.retry.allows(attempt, elapsed, delay)
                or (left is not None and delay + _MIN_RETRY_SECONDS >= left)
            ):
                raise error
            log.warning(
                "connectwise call failed; retrying",
                extra={
                    "cw_method": method,
                    "cw_path": path,
                    "cw_attempt": attempt,
                    "cw_error": error.error_code,
                    "cw_delay_s": round(delay, 3),
                },
            )
            self._sleep(delay)
            left = _time_left()
            if left is not None and left <= _MIN_RETRY_SECONDS:
                raise error  # the pause overran the deadline: the last answer is the truest

    def _confirm_not_found(self, path: str, error: NotFoundError) -> ConnectWiseError:
        """Tell a missing record from rejected credentials, which cloud ConnectWise can also
        answer with 404: ask ``system/info`` (which always exists) once. A success is kept
        for a minute, so a really missing record costs at most one extra call a minute."""
        if path.strip("/").lower() == "system/info":
            return AuthenticationError(_CREDENTIALS_REJECTED, status=error.status, code=error.code)
        if self._credentials_confirmed_until > time.monotonic():
            return error
        try:
            self._call("GET", "system/info", idempotent=True)
        except (AuthenticationError, ForbiddenError) as exc:
            log.warning(  # the status is for the logs; people read the sentence
                "connectwise credentials check failed after a 404",
                extra={"cw_path": path, "cw_check_status": exc.status},
            )
            return AuthenticationError(_CREDENTIALS_REJECTED, status=error.status, code=error.code)
        except ConnectWiseError:
            return UnavailableError(
                "ConnectWise answered 'not found' but could not be asked whether the "
                "credentials still work",
                sent=False,
            )
        self._credentials_confirmed_until = time.monotonic() + _CREDENTIALS_CONFIRMED_TTL
        return error

    def _log(
        self,
        method: str,
        path: str,
        status: int | None,
        started: float,
        attempt: int,
        *,
        error: str | None = None,
    ) -> None:
        log.debug(
            "connectwise call",
            extra={
                "cw_method": method,
                "cw_path": path,
                "cw_status": status,
                "cw_attempt": attempt,
                "cw_error": error,
                "cw_duration_ms": round((time.monotonic() - started) * 1000, 1),
            },
        )
        if connectwise_called.receivers:
            connectwise_called.send(
                self.owner if self.owner is not None else self,
                tenant=self.tenant_id,
                method=method,
                path=path,
                status=status,
                error=error,
                duration=time.monotonic() - started,
            )

    def _decode(self, response: requests.Response) -> Any:
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise UnavailableError(
                "ConnectWise sent an answer that is not JSON",
                status=response.status_code,
                sent=True,
            ) from None

    def _transport_error(self, exc: requests.exceptions.RequestException) -> ConnectWiseError:
        sent = _request_was_sent(exc)
        if isinstance(exc, requests.exceptions.Timeout):
            what = "answer" if sent else "connect"
            return ConnectWiseTimeoutError(f"ConnectWise did not {what} in time", sent=sent)
        if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
            return ConfigurationError("The ConnectWise base URL is not valid")
        if sent:
            return UnavailableError("The connection broke before ConnectWise answered", sent=True)
        return UnavailableError("ConnectWise could not be reached", sent=False)

    def _http_error(self, response: requests.Response) -> ConnectWiseError:
        status = response.status_code
        payload: Any = None
        try:
            payload = response.json()
        except ValueError:
            payload = None
        payload = payload if isinstance(payload, dict) else {}
        # Every text ConnectWise sent is redacted: it may echo the keys or the client id.
        code = payload.get("code") if isinstance(payload.get("code"), str) else None
        code = self._redact(code)[:100] if code else None
        remote = payload.get("message") if isinstance(payload.get("message"), str) else ""
        remote = self._redact(remote)[:300]
        field_errors = tuple(
            FieldError(
                code=self._redact(str(item.get("code") or ""))[:100],
                message=self._redact(str(item.get("message") or ""))[:300],
                field=_redacted_str(self._redact, item.get("field")),
                resource=_redacted_str(self._redact, item.get("resource")),
            )
            for item in payload.get("errors") or []
            if isinstance(item, dict)
        )
        kwargs: dict[str, Any] = {"status": status, "code": code}
        if status == 400:
            details = "; ".join(e.message for e in field_errors if e.message)
            message = f"ConnectWise rejected the request: {details or remote or 'invalid request'}"
            return ConnectWiseValidationError(message, errors=field_errors, **kwargs)
        if status == 401:
            return AuthenticationError(
                "ConnectWise rejected the credentials (company id, public or private key, "
                "or client id)",
                **kwargs,
            )
        if status == 403:
            return ForbiddenError(
                remote or "The ConnectWise API member's security role does not allow this",
                **kwargs,
            )
        if status == 404:
            return NotFoundError(remote or "Not found in ConnectWise", **kwargs)
        if status == 409:
            return ConflictError(remote or "ConnectWise reported a conflict", **kwargs)
        if status == 429:
            return RateLimitedError(
                "ConnectWise is limiting the request rate",
                retry_after=_retry_after(response),
                **kwargs,
            )
        if 300 <= status < 400:
            return ConfigurationError(
                "ConnectWise answered with a redirect; check the base URL", **kwargs
            )
        if status >= 500:
            return UnavailableError(f"ConnectWise failed (HTTP {status})", sent=True, **kwargs)
        return ConnectWiseError(f"ConnectWise answered HTTP {status}", **kwargs)

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self._call("GET", path, params=params, idempotent=True)

    def _list(self, path: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        rows = self._get(path, params)
        if not isinstance(rows, list):
            raise UnavailableError("ConnectWise sent an unexpected answer", status=200, sent=True)
        return [row for row in rows if isinstance(row, dict) and "id" in row]

    # -- tickets -----------------------------------------------------------------------------

    def search_tickets(
        self,
        text: str,
        *,
        limit: int = 25,
        open_only: bool = True,
        company_ids: Sequence[int] | None = None,
    ) -> list[Ticket]:
        """Tickets matching ``text``, newest first.

        ``company_ids`` limits every match (the ticket number too) to tickets of those
        ConnectWise companies, in the condition itself (``company/id in (250,251)``, built from
        ints only), so the ``limit`` results are the right ones; an empty sequence finds
        nothing, ``None`` (the default) does not limit.

        All digits: the ticket with that id (whatever its state) first, then tickets whose
        summary contains the digits. Otherwise: tickets whose summary contains the text. With
        ``open_only`` (the default) summary matches are limited to open tickets. The text is
        cleaned by :mod:`flask_connectwise.conditions`; text with nothing searchable left
        returns ``[]`` without a call. Text with ``_ % * [ ]`` (``SRV_DC01``) is searched by its
        literal pieces and the answer kept only where the summary holds the exact text; such a
        search asks for ``SEARCH_OVERFETCH`` times ``limit`` tickets, so it can come back short
        only when that many newer tickets hold every piece but not the text (logged at INFO).
        """
        query = cond.search_text(str(text or ""))
        summary = cond.contains_all("summary", query)
        if not summary:
            return []
        company = ""
        allowed: frozenset[int] | None = None
        if company_ids is not None:
            ids = list(company_ids)
            if not ids:
                return []
            company = cond.one_of_ids("company/id", ids)  # ValueError for anything but ints
            allowed = frozenset(ids)
        limit = max(1, min(int(limit), MAX_SEARCH_LIMIT))
        exact_check = cond.needs_exact_check(query)
        if open_only:
            summary = cond.all_of(summary, cond.equals("closedFlag", False))
        digits = query.isascii() and query.isdigit() and len(query) <= 9
        exact_id = int(query) if digits else None
        conditions = summary
        if exact_id:
            conditions = cond.any_of([cond.equals("id", exact_id), summary])
        conditions = cond.all_of(conditions, company)
        rows = self._list(
            "service/tickets",
            {
                "conditions": conditions,
                "orderBy": "id desc",
                "pageSize": limit * SEARCH_OVERFETCH if exact_check else limit,
                "fields": TICKET_FIELDS,
            },
        )
        tickets = [Ticket.from_api(row) for row in rows]
        self._remember_boards(tickets)
        if allowed is not None:
            tickets = [t for t in tickets if t.company_id in allowed]
        if exact_check:
            found = [t for t in tickets if t.id == exact_id or cond.matches(t.summary, query)]
            if len(rows) >= limit * SEARCH_OVERFETCH and len(found) < limit:
                log.info(
                    "search for text with wildcard characters kept %d of %d tickets; older"
                    " matches may exist beyond the page",
                    len(found),
                    len(rows),
                )
            tickets = found
        tickets.sort(key=lambda t: (t.id != exact_id, -t.id))
        # Fewer rows than the page asked for, none cut: no match was left out (refinement
        # may use the answer).
        page = limit * SEARCH_OVERFETCH if exact_check else limit
        complete = len(rows) < page and len(tickets) <= limit
        return TicketAnswer.of(tickets[:limit], complete=complete)

    def get_ticket(self, ticket_id: int) -> Ticket:
        """One ticket; :class:`NotFoundError` when it does not exist."""
        _positive_id(ticket_id, "ticket id")
        data = self._get(f"service/tickets/{ticket_id}")
        if not isinstance(data, dict) or "id" not in data:
            raise UnavailableError("ConnectWise sent an unexpected answer", status=200, sent=True)
        ticket = Ticket.from_api(data)
        self._remember_boards([ticket])
        return ticket

    def add_note(
        self,
        ticket_id: int,
        text: str,
        *,
        member: str | int | Member | None = None,
        internal: bool = False,
        visibility: str | None = None,
        email_contact: bool = False,
        process_notifications: bool = False,
    ) -> Note:
        """Add a note, shown as Discussion, or as Internal Analysis when ``internal``.

        ``visibility`` (``"discussion"``, ``"internal"`` or ``"resolution"``), when given, wins
        over ``internal`` and sets ``detailDescriptionFlag``, ``internalAnalysisFlag`` or
        ``resolutionFlag``. ConnectWise refuses a note without a display flag; exactly one is set.

        ``email_contact`` asks for the ticket's contact to be e-mailed. The published ServiceNote
        has no per-note contact e-mail flag, so this sends ``processNotifications: true``: the
        board's notification rules run, and they e-mail the contact on Discussion notes. It is
        honoured only for a Discussion note; an Internal Analysis or Resolution note is never
        e-mailed this way (``processNotifications: false`` is sent). ``process_notifications``
        runs the workflow notifications whatever the visibility (off by default).

        ``member`` attributes the note (an identifier, a member id or a :class:`Member`); without
        it ConnectWise attributes it to the API member.
        """
        _positive_id(ticket_id, "ticket id")
        if not isinstance(text, str) or not text.strip():
            raise ValueError("note text must not be empty")
        if visibility is None:
            visibility = "internal" if internal else "discussion"
        if visibility not in NOTE_VISIBILITY_FLAGS:
            raise ValueError("visibility must be one of " + ", ".join(NOTE_VISIBILITY_FLAGS))
        notify = bool(process_notifications) or (bool(email_contact) and visibility == "discussion")
        body: dict[str, Any] = {"text": text}
        for name, flag in NOTE_VISIBILITY_FLAGS.items():
            body[flag] = name == visibility
        body["processNotifications"] = notify
        ref = _member_ref(member)
        if ref:
            body["member"] = ref
        data = self._call("POST", f"service/tickets/{ticket_id}/notes", body=body, idempotent=False)
        return Note.from_api(self._record(data))

    def notes(self, ticket_id: int, *, containing: str | None = None) -> list[Note]:
        """The ticket's notes, newest first (up to 1,000), optionally only those whose text
        contains ``containing`` (filtered by ConnectWise, so busy tickets are searched whole)."""
        _positive_id(ticket_id, "ticket id")
        params: dict[str, Any] = {"orderBy": "id desc", "pageSize": MAX_PAGE_SIZE}
        if containing:
            params["conditions"] = cond.contains("text", containing)
        rows = self._list(f"service/tickets/{ticket_id}/notes", params)
        return [Note.from_api(row) for row in rows]

    def add_time_entry(
        self,
        ticket_id: int,
        *,
        hours: float,
        member: str | int | Member | None = None,
        notes: str | None = None,
        start: datetime | None = None,
        work_type: int | None = None,
        work_role: int | None = None,
        billable_option: str | None = None,
        add_to: str | None = None,
    ) -> TimeEntry:
        """Charge ``hours`` (more than 0, at most 24) to the ticket.

        ``start`` must be timezone-aware and is sent in UTC; by default the entry ends now.
        ``work_type`` and ``work_role`` (ids from :meth:`work_types` / :meth:`work_roles`) are
        sent as ``{"id": N}``; ``billable_option`` is one of ``Billable``, ``DoNotBill``,
        ``NoCharge``, ``NoDefault``; ``add_to`` (``"discussion"``, ``"internal"`` or
        ``"resolution"``) copies the entry's notes onto the ticket there: exactly that one of
        ``addToDetailDescriptionFlag`` / ``addToInternalAnalysisFlag`` / ``addToResolutionFlag``
        is true. Left at ``None``, each is not sent and ConnectWise applies its defaults.
        """
        _positive_id(ticket_id, "ticket id")
        if isinstance(hours, bool) or not isinstance(hours, int | float) or not 0 < hours <= 24:
            raise ValueError("hours must be more than 0 and at most 24")
        extra: dict[str, Any] = {}
        if work_type is not None:
            extra["workType"] = {"id": _positive_id(work_type, "work type id")}
        if work_role is not None:
            extra["workRole"] = {"id": _positive_id(work_role, "work role id")}
        if billable_option is not None:
            if billable_option not in BILLABLE_OPTIONS:
                raise ValueError("billable_option must be one of " + ", ".join(BILLABLE_OPTIONS))
            extra["billableOption"] = billable_option
        if add_to is not None:
            if add_to not in ADD_TO_FLAGS:
                raise ValueError("add_to must be one of " + ", ".join(ADD_TO_FLAGS))
            for name, flag in ADD_TO_FLAGS.items():
                extra[flag] = name == add_to
        # Whole seconds: ConnectWise keeps timestamps to the second, and hours made from
        # minutes (7 min is 0.1167 h) would otherwise end a fraction late, shown as 7:01.
        duration = timedelta(seconds=max(1, round(float(hours) * 3600)))
        if start is None:
            end = datetime.now(UTC).replace(microsecond=0)
            start = end - duration
        else:
            format_time(start)  # refuses naive times
            start = start.astimezone(UTC).replace(microsecond=0)
            end = start + duration
        body: dict[str, Any] = {
            "chargeToId": ticket_id,
            "chargeToType": "ServiceTicket",
            "timeStart": format_time(start),
            "timeEnd": format_time(end),
        }
        ref = _member_ref(member)
        if ref:
            body["member"] = ref
        if notes:
            body["notes"] = notes
        body.update(extra)
        data = self._call("POST", "time/entries", body=body, idempotent=False)
        return TimeEntry.from_api(self._record(data))

    def time_entries(self, ticket_id: int, *, containing: str | None = None) -> list[TimeEntry]:
        """Time entries charged to the ticket, newest first (up to 1,000), optionally only
        those whose notes contain ``containing``."""
        _positive_id(ticket_id, "ticket id")
        conditions = cond.all_of(
            cond.equals("chargeToId", ticket_id),
            cond.equals("chargeToType", "ServiceTicket"),
            cond.contains("notes", containing) if containing else "",
        )
        rows = self._list(
            "time/entries",
            {"conditions": conditions, "orderBy": "id desc", "pageSize": MAX_PAGE_SIZE},
        )
        return [TimeEntry.from_api(row) for row in rows]

    def member_time_entries_after(
        self, member: str | int | Member, moment: datetime, *, limit: int = 50
    ) -> list[TimeEntry]:
        """The member's time entries (any charge) that end after ``moment``, latest end first.

        Used to place a new entry where the member's time sheet is free. ``member`` is an
        identifier, a member id or a :class:`Member`.
        """
        if isinstance(member, Member):
            who = cond.equals("member/id", member.id)
        elif isinstance(member, int) and not isinstance(member, bool):
            who = cond.equals("member/id", _positive_id(member, "member id"))
        else:
            identifier = _identifier_text(member)
            if identifier is None:
                return []
            who = _equals_exactly("member/identifier", identifier)
        rows = self._list(
            "time/entries",
            {
                "conditions": cond.all_of(who, cond.later_than("timeEnd", moment)),
                "orderBy": "timeEnd desc",
                "pageSize": max(1, min(int(limit), MAX_PAGE_SIZE)),
            },
        )
        return [TimeEntry.from_api(row) for row in rows]

    def boards(self) -> list[Board]:
        """The active service boards (up to 1,000), by name."""
        rows = self._list(
            "service/boards",
            {
                "conditions": cond.equals("inactiveFlag", False),
                "orderBy": "name asc",
                "pageSize": MAX_PAGE_SIZE,
                "fields": "id,name,inactiveFlag",
            },
        )
        return [Board.from_api(row) for row in rows]

    def companies(self, text: str = "", *, limit: int = 25) -> list[Company]:
        """Companies whose name or identifier contains ``text`` (all when empty), by name;
        deleted companies are left out. Text with nothing searchable left returns ``[]``."""
        limit = max(1, min(int(limit), MAX_PAGE_SIZE))
        query = cond.search_text(str(text or ""))
        match = ""
        if query:
            match = cond.any_of(
                [cond.contains_all("name", query), cond.contains_all("identifier", query)]
            )
            if not match:
                return []
        exact_check = bool(query) and cond.needs_exact_check(query)
        rows = self._list(
            "company/companies",
            {
                "conditions": cond.all_of(cond.equals("deletedFlag", False), match),
                "orderBy": "name asc",
                "pageSize": min(limit * SEARCH_OVERFETCH, MAX_PAGE_SIZE) if exact_check else limit,
                "fields": "id,identifier,name,deletedFlag",
            },
        )
        found = [Company.from_api(row) for row in rows]
        if exact_check:
            found = [
                c for c in found if cond.matches(c.name, query) or cond.matches(c.identifier, query)
            ]
        return found[:limit]

    def companies_by_id(self, ids: Sequence[int]) -> list[Company]:
        """The companies with these ids that exist (at most 1,000 ids; unknown ones are simply
        absent from the answer)."""
        wanted = sorted({int(i) for i in ids})[:MAX_PAGE_SIZE]
        if not wanted:
            return []
        rows = self._list(
            "company/companies",
            {
                "conditions": cond.one_of_ids("id", wanted),
                "fields": "id,identifier,name,deletedFlag",
                "pageSize": len(wanted),
            },
        )
        return [Company.from_api(row) for row in rows]

    def work_types(self) -> list[WorkType]:
        """The active time entry work types (up to 1,000), by name."""
        rows = self._list(
            "time/workTypes",
            {
                "conditions": cond.equals("inactiveFlag", False),
                "orderBy": "name asc",
                "pageSize": MAX_PAGE_SIZE,
                "fields": "id,name,billTime,inactiveFlag",
            },
        )
        return [WorkType.from_api(row) for row in rows]

    def work_roles(self) -> list[WorkRole]:
        """The active time entry work roles (up to 1,000), by name."""
        rows = self._list(
            "time/workRoles",
            {
                "conditions": cond.equals("inactiveFlag", False),
                "orderBy": "name asc",
                "pageSize": MAX_PAGE_SIZE,
                "fields": "id,name,locationIds,inactiveFlag",
            },
        )
        return [WorkRole.from_api(row) for row in rows]

    def board_statuses(self, board_id: int, *, refresh: bool = False) -> list[BoardStatus]:
        """The statuses of a service board, in board order (cached for a few minutes)."""
        _positive_id(board_id, "board id")
        now = time.monotonic()
        cached = self._statuses.get(board_id)
        if cached and cached[0] > now and not refresh:
            return list(cached[1])
        rows = self._list(
            f"service/boards/{board_id}/statuses",
            {"pageSize": MAX_PAGE_SIZE, "orderBy": "sortOrder asc"},
        )
        statuses = [BoardStatus.from_api(row) for row in rows]
        self._statuses[board_id] = (now + self._status_cache_ttl, statuses)
        return list(statuses)

    def _remember_boards(self, tickets: list[Ticket]) -> None:
        expires = time.monotonic() + self._status_cache_ttl
        for ticket in tickets:
            if ticket.board_id:
                self._ticket_boards[ticket.id] = (expires, ticket.board_id)
            self._tickets[ticket.id] = (expires, ticket)

    def known_board(self, ticket_id: int) -> int | None:
        """The ticket's board as last seen by this client (searches, reads), if recent."""
        known = self._ticket_boards.get(ticket_id)
        return known[1] if known and known[0] > time.monotonic() else None

    def known_ticket(self, ticket_id: int) -> Ticket | None:
        """The ticket as last seen by this client (searches, reads, updates), if recent:
        its company, board, status and closed flag without a call."""
        known = self._tickets.get(ticket_id)
        return known[1] if known and known[0] > time.monotonic() else None

    def cached_statuses(self, board_id: int) -> list[BoardStatus] | None:
        """The board's statuses if this client holds them fresh, without a call."""
        cached = self._statuses.get(board_id)
        return list(cached[1]) if cached and cached[0] > time.monotonic() else None

    def update_status(
        self, ticket_id: int, status_id: int, *, board_id: int | None = None
    ) -> Ticket:
        """Set the ticket's status, after checking that it is an active status of its board.

        ``board_id`` saves a call when the caller already knows the ticket's board; without
        it the board last seen for the ticket is used, and read again if ConnectWise refuses.
        The answer's status is checked: a 200 that did not apply the status is an error.
        """
        _positive_id(ticket_id, "ticket id")
        _positive_id(status_id, "status id")
        if board_id is None:
            remembered = self.known_board(ticket_id)
            if remembered is not None:
                try:
                    return self.update_status(ticket_id, status_id, board_id=remembered)
                except ConnectWiseValidationError:
                    # The ticket may have moved to another board: read it and try once more.
                    self._ticket_boards.pop(ticket_id, None)
                    self._tickets.pop(ticket_id, None)
                    if self.get_ticket(ticket_id).board_id == remembered:
                        raise
            board_id = self.get_ticket(ticket_id).board_id
            if board_id is None:
                raise UnavailableError("ConnectWise did not name the ticket's board", sent=True)
        statuses = {s.id: s for s in self.board_statuses(board_id)}
        if status_id not in statuses or statuses[status_id].inactive:
            statuses = {s.id: s for s in self.board_statuses(board_id, refresh=True)}
        status = statuses.get(status_id)
        if status is None or status.inactive:
            raise StatusNotOnBoardError(
                f"Status {status_id} is not an active status of the ticket's board",
                errors=(FieldError("NotFound", "unknown status", field="statusId"),),
            )
        body = [{"op": "replace", "path": "status", "value": {"id": status_id}}]
        data = self._call("PATCH", f"service/tickets/{ticket_id}", body=body, idempotent=True)
        ticket = Ticket.from_api(self._record(data))
        self._remember_boards([ticket])
        if ticket.status_id != status_id:
            raise UnavailableError(
                "ConnectWise answered but did not apply the status", status=200, sent=True
            )
        return ticket

    # -- members and system ------------------------------------------------------------------

    def find_member(self, identifier: str) -> Member | None:
        """The active member with this identifier (or, for an e-mail address, this e-mail).

        Answers are cached for a few minutes.
        """
        value = _identifier_text(identifier)
        if value is None:
            return None  # no identifier (or one no member can have): nothing to ask
        key = value.casefold()
        cached = self._members.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        member = self._find_member(value)
        self._members[key] = (time.monotonic() + self._status_cache_ttl, member)
        return member

    def _find_member(self, value: str) -> Member | None:
        by = [_equals_exactly("identifier", value)]
        if "@" in value:
            by.append(_equals_exactly("primaryEmail", value))
        rows = self._list(
            "system/members",
            {
                "conditions": cond.all_of(cond.any_of(by), cond.equals("inactiveFlag", False)),
                "fields": MEMBER_FIELDS,
                "pageSize": 2,
            },
        )
        return Member.from_api(rows[0]) if rows else None

    def member(self, identifier_or_id: str | int | Member) -> Member:
        """The member with this identifier (or member id), active or not, with its
        ``license_class``: the caller decides whether it may be used. Not cached.

        :class:`NotFoundError` when ConnectWise has no such member.
        """
        if isinstance(identifier_or_id, Member):
            identifier_or_id = identifier_or_id.id
        if isinstance(identifier_or_id, int) and not isinstance(identifier_or_id, bool):
            member_id = _positive_id(identifier_or_id, "member id")
            rows = self._list(
                "system/members",
                {
                    "conditions": cond.equals("id", member_id),
                    "fields": MEMBER_FIELDS,
                    "pageSize": 1,
                },
            )
            what = f"member id {member_id}"
        else:
            value = _identifier_text(identifier_or_id)
            if value is None:
                raise NotFoundError("ConnectWise has no member with that identifier")
            rows = self._list(
                "system/members",
                {
                    "conditions": _equals_exactly("identifier", value),
                    "fields": MEMBER_FIELDS,
                    "pageSize": 1,
                },
            )
            what = f"member {value!r}"
        if not rows:
            raise NotFoundError(f"ConnectWise has no {what}")
        return Member.from_api(rows[0])

    def member_token(self, identifier: str) -> MemberToken:
        """Impersonation keys for a member (``POST system/members/{identifier}/tokens``):
        calls made with them (see :meth:`act_as_member`) act as that member, so ConnectWise's
        audit trail names them. Nothing is cached here and the private key is never shown.

        :class:`NotFoundError` for an unknown member; a 403 when the API member may not
        issue tokens."""
        value = _identifier_text(identifier)
        if value is None:
            raise NotFoundError("No ConnectWise member has that identifier")
        data = self._call(
            "POST",
            f"system/members/{urlquote(value, safe='')}/tokens",
            body={},
            idempotent=True,  # another token is harmless
        )
        if not isinstance(data, dict):
            raise UnavailableError("ConnectWise sent an unexpected answer", status=200, sent=True)
        public, private = data.get("publicKey"), data.get("privateKey")
        expiration = parse_datetime(data.get("expiration"))
        if not (isinstance(public, str) and public and isinstance(private, str) and private):
            raise UnavailableError("ConnectWise sent a token without keys", status=200, sent=True)
        if expiration is None or expiration.tzinfo is None:
            expiration = datetime.now(UTC) + timedelta(minutes=10)  # unknown: assume short
        return MemberToken(public, private, expiration)

    def act_as_member(self) -> None:
        """This client's keys are a member's impersonation keys: every call also sends
        ``x-cw-usertype: member`` (CONNECTWISE_API.md §2, marked uncertain there)."""
        self._auth_headers["x-cw-usertype"] = "member"

    def system_info(self) -> SystemInfo:
        """ConnectWise's version: the cheapest call that proves the credentials work."""
        data = self._get("system/info")
        if not isinstance(data, dict):
            raise UnavailableError("ConnectWise sent an unexpected answer", status=200, sent=True)
        return SystemInfo.from_api(data, codebase=self.codebase)

    @staticmethod
    def _record(data: Any) -> dict[str, Any]:
        if not isinstance(data, dict) or "id" not in data:
            raise UnavailableError("ConnectWise sent an unexpected answer", status=200, sent=True)
        return data
