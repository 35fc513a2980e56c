"""Per-tenant rate limits shared by every process that delivers changes.

Public interface (the worker, the thread sweep and the Celery/RQ tasks call these)::

    from flask_connectwise import ratelimit

    throttle = ratelimit.for_app(app)      # one per app and process; app defaults to current_app
    wait = throttle.peek(tenant_id)        # before a change: seconds to wait, no token taken
    wait = throttle.wait_time(tenant_id)   # right before each call: 0.0 = a token was taken, send
    throttle.pause(tenant_id, seconds)     # after a 429's Retry-After: the whole tenant waits

Both methods never raise and never block. :class:`Throttle` is the protocol they satisfy.

Each tenant has a token bucket (``CONNECTWISE_RATE_LIMIT`` calls per second, bursts of
``CONNECTWISE_RATE_LIMIT_BURST``) and a pause set by ``Retry-After``. A token is taken right
before each request is sent (never before a change's database work: a token taken early lets
calls bunch up on arrival, and ConnectWise counts calls by arrival). In any window of S seconds
a bucket lets through at most ``rate * S + burst`` calls, so the default burst is 1 and the rate
should stay a little (about 5 %) below what ConnectWise allows the tenant:

* **Shared** (:class:`SharedThrottle`) when there is a Redis: the client of
  ``CONNECTWISE_RATE_LIMIT_REDIS_URL`` when set, else the client of the host's Flask-Caching
  ``RedisCache`` (or any cachelib Redis backend). Bucket and pause live in one Redis hash per
  tenant, ``connectwise:rl:<tenant>``, updated by one Lua script (atomic, on Redis's own clock, so
  processes and hosts agree) and expiring once the bucket would be full again and the pause is
  over: nothing lingers. Any number of workers together respect one tenant's limit.
* **Per process** (:class:`TenantThrottle`) otherwise (``SimpleCache``, no cache): each process
  has its own bucket, so N processes together may send up to N times the limit.

A Redis that fails mid-run (down, timing out) never blocks or crashes delivery: the shared
throttle fails open to its per-process bucket, logs one warning, leaves Redis alone for
``retry_after`` seconds, tries again and logs once more when Redis answers again (as
:mod:`flask_connectwise.cachesafe` does for the cache). A pause is also remembered locally, so it
holds across the switch.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from flask import Flask, current_app

from .config import DEFAULTS

log = logging.getLogger("flask_connectwise.ratelimit")

#: Namespace of the Redis keys: ``connectwise:rl:<tenant>``.
KEY_PREFIX = "connectwise:rl:"
#: Seconds Redis is not asked after an error (the local bucket is used meanwhile).
RETRY_AFTER = 5.0
#: Where :func:`for_app` keeps each app's throttle.
EXTENSION_KEY = "connectwise.ratelimit"


class Throttle(Protocol):
    """What delivery asks before each change of a tenant."""

    def wait_time(self, tenant: str) -> float:
        """Seconds until the tenant may send again; 0.0 means a token was taken: send now."""

    def peek(self, tenant: str) -> float:
        """Seconds until the tenant may send again (paused or bucket empty); takes no token."""

    def pause(self, tenant: str, seconds: float) -> None:
        """Hold the whole tenant for ``seconds`` (a 429's ``Retry-After``)."""


@dataclass
class TenantThrottle:
    """A per-process token bucket per tenant, paused by ``Retry-After``."""

    rate: float = DEFAULTS["CONNECTWISE_RATE_LIMIT"]  # calls per second
    burst: int = DEFAULTS["CONNECTWISE_RATE_LIMIT_BURST"]
    _tokens: dict[str, float] = field(default_factory=dict)
    _stamp: dict[str, float] = field(default_factory=dict)
    _paused_until: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def pause(self, tenant: str, seconds: float) -> None:
        with self._lock:
            until = time.monotonic() + seconds
            self._paused_until[tenant] = max(self._paused_until.get(tenant, 0.0), until)

    def paused_for(self, tenant: str) -> float:
        """Seconds the tenant's pause still lasts here (0.0 when none)."""
        with self._lock:
            return max(0.0, self._paused_until.get(tenant, 0.0) - time.monotonic())

    def wait_time(self, tenant: str) -> float:
        """Seconds until the tenant may send again (0: a token was taken now)."""
        return self._check(tenant, take=True)

    def peek(self, tenant: str) -> float:
        """Seconds until the tenant may send again; takes no token."""
        return self._check(tenant, take=False)

    def _check(self, tenant: str, *, take: bool) -> float:
        with self._lock:
            now = time.monotonic()
            paused = self._paused_until.get(tenant, 0.0) - now
            if paused > 0:
                return paused
            tokens = self._tokens.get(tenant, float(self.burst))
            tokens = min(
                float(self.burst), tokens + (now - self._stamp.get(tenant, now)) * self.rate
            )
            if not take:
                return 0.0 if tokens >= 1 else (1 - tokens) / self.rate
            self._stamp[tenant] = now
            if tokens >= 1:
                self._tokens[tenant] = tokens - 1
                return 0.0
            self._tokens[tenant] = tokens
            return (1 - tokens) / self.rate


# KEYS[1]: the tenant's hash. ARGV: rate, burst, pause seconds (0: take a token), peek (1: only
# say how long to wait: no token taken, nothing written).
# Fields: tokens, stamp (Redis time of the last refill), paused (Redis time the pause ends).
# Returns the wait in seconds as a string (Lua numbers become integers on the way out).
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local pause = tonumber(ARGV[3])
local peek = tonumber(ARGV[4]) == 1
local v = redis.call('HMGET', KEYS[1], 'tokens', 'stamp', 'paused')
local tokens = tonumber(v[1]) or burst
local stamp = tonumber(v[2]) or now
local paused = tonumber(v[3]) or 0
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
local wait = 0
if peek then
  if paused > now then
    wait = paused - now
  elseif tokens < 1 then
    wait = (1 - tokens) / rate
  end
  return tostring(wait)
end
if pause > 0 then
  paused = math.max(paused, now + pause)
elseif paused > now then
  wait = paused - now
elseif tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now),
           'paused', tostring(paused))
local ttl = math.max((burst - tokens) / rate, paused - now, 0) + 1
redis.call('PEXPIRE', KEYS[1], math.ceil(ttl * 1000))
return tostring(wait)
"""


class SharedThrottle:
    """The token bucket and pause of each tenant in Redis, shared by every process.

    ``client`` is a ``redis.Redis`` (or anything with ``register_script``). On any Redis error
    the per-process ``local`` bucket answers instead (see the module's docstring).
    """

    def __init__(
        self,
        client: Any,
        *,
        rate: float = 5.0,
        burst: int = 1,
        retry_after: float = RETRY_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.rate = float(rate)
        self.burst = int(burst)
        self.retry_after = retry_after
        self.local = TenantThrottle(rate=self.rate, burst=self.burst)
        self._clock = clock
        self._script: Any = None
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._failing = False

    @staticmethod
    def key(tenant: str) -> str:
        """The tenant's Redis key."""
        return f"{KEY_PREFIX}{tenant}"

    @property
    def failing(self) -> bool:
        """True while Redis failed last and the local bucket answers."""
        return self._failing

    def wait_time(self, tenant: str) -> float:
        """Seconds until the tenant may send again (0.0: a token was taken, send now)."""
        local_pause = self.local.paused_for(tenant)
        if local_pause > 0:
            return local_pause
        answer = self._run(tenant, 0.0)
        if answer is None:
            return self.local.wait_time(tenant)
        return answer

    def peek(self, tenant: str) -> float:
        """Seconds until the tenant may send again (paused anywhere, or the shared bucket
        empty); takes no token."""
        local_pause = self.local.paused_for(tenant)
        if local_pause > 0:
            return local_pause
        answer = self._run(tenant, 0.0, peek=True)
        if answer is None:
            return self.local.peek(tenant)
        return answer

    def pause(self, tenant: str, seconds: float) -> None:
        """Hold the tenant for ``seconds`` in every process (and locally, in case Redis fails)."""
        if seconds <= 0:
            return
        self.local.pause(tenant, seconds)
        self._run(tenant, float(seconds))

    def _run(self, tenant: str, pause: float, *, peek: bool = False) -> float | None:
        if self._down_until and self._clock() < self._down_until:
            return None
        try:
            if self._script is None:
                self._script = self.client.register_script(_SCRIPT)
            raw = self._script(
                keys=[self.key(tenant)], args=[self.rate, self.burst, pause, 1 if peek else 0]
            )
            wait = float(raw.decode() if isinstance(raw, bytes) else raw)
        except Exception as exc:  # any Redis error: fail open to the local bucket
            self._failed(exc)
            return None
        if self._failing:
            self._recovered()
        return max(0.0, wait) if math.isfinite(wait) else 0.0

    def _failed(self, exc: Exception) -> None:
        with self._lock:
            self._down_until = self._clock() + self.retry_after
            if self._failing:
                return
            self._failing = True
        # The exception's text may name hosts; its type says enough.
        log.warning(
            "connectwise rate limits: Redis failed; each process limits its own calls until "
            "it answers again",
            extra={"cw_error": type(exc).__name__, "cw_retry_after_s": self.retry_after},
        )

    def _recovered(self) -> None:
        with self._lock:
            if not self._failing:
                return
            self._failing = False
            self._down_until = 0.0
        log.info("connectwise rate limits: Redis answers again; limits are shared again")


def redis_client_for(app: Flask) -> Any | None:
    """The Redis client the app's rate limits share: ``CONNECTWISE_RATE_LIMIT_REDIS_URL``'s, else
    the Flask-Caching Redis backend's, else ``None``."""
    url = app.config.get("CONNECTWISE_RATE_LIMIT_REDIS_URL")
    if url:
        import redis

        return redis.Redis.from_url(str(url), socket_timeout=2.0, socket_connect_timeout=2.0)
    try:
        from .current import state

        cache = state(app).search.cache
        wrapped = getattr(cache, "wrapped", cache)
        with app.app_context():
            backend = getattr(wrapped, "cache", None)
        client = getattr(backend, "_write_client", None)
    except Exception:  # no extension state, no cache, an unusual backend: no shared limits
        return None
    return client if client is not None and hasattr(client, "register_script") else None


def from_config(app: Flask, *, rate: float | None = None, burst: int | None = None) -> Throttle:
    """A new throttle for ``app``: shared when a Redis is found (see :func:`redis_client_for`);
    ``rate``/``burst`` override ``CONNECTWISE_RATE_LIMIT``/``CONNECTWISE_RATE_LIMIT_BURST``."""
    if rate is None:
        rate = float(app.config.get("CONNECTWISE_RATE_LIMIT", DEFAULTS["CONNECTWISE_RATE_LIMIT"]))
    if burst is None:
        burst = int(
            app.config.get("CONNECTWISE_RATE_LIMIT_BURST", DEFAULTS["CONNECTWISE_RATE_LIMIT_BURST"])
        )
    burst = max(1, burst)
    client = redis_client_for(app)
    if client is None:
        return TenantThrottle(rate=rate, burst=burst)
    return SharedThrottle(client, rate=rate, burst=burst)


_create_lock = threading.Lock()


def for_app(app: Flask | None = None) -> Throttle:
    """The app's throttle, created once per process (default app: the current app)."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    found = app.extensions.get(EXTENSION_KEY)
    if found is None:
        with _create_lock:
            found = app.extensions.get(EXTENSION_KEY)
            if found is None:
                found = app.extensions[EXTENSION_KEY] = from_config(app)
    throttle: Throttle = found
    return throttle
