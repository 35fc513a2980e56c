"""A cache that never fails a request.

The extension's caches (search answers, the discovered codebase, admin board statuses) only save
ConnectWise calls. :class:`SafeCache` wraps the host's Flask-Caching ``Cache`` (or anything with
``get``/``set``): every error of the backend (Redis down, a timeout, an unreadable value) is a
cache miss, and the caller goes to ConnectWise or the database instead.

An outage is logged as a structured warning at most once per ``warn_every`` seconds per operation
(with how many errors were not logged since), and once more when the cache answers again. After
an error the backend is left alone for ``retry_after`` seconds, so a Redis that hangs costs one
request its timeout, not every request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("flask_connectwise.cache")

#: Seconds between two warnings about the same cache operation.
WARN_EVERY = 60.0
#: Seconds the backend is not asked after an error.
RETRY_AFTER = 5.0


class SafeCache:
    """The ``get``/``set``/``add``/``delete``/``clear`` of ``cache``, turning errors into misses.

    Other attributes (``cache.cache``, ``init_app``...) are the wrapped object's.
    """

    def __init__(
        self,
        cache: Any,
        *,
        warn_every: float = WARN_EVERY,
        retry_after: float = RETRY_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.wrapped = cache
        self.warn_every = warn_every
        self.retry_after = retry_after
        self._clock = clock
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._failing = False
        # operation -> (when last warned, errors not logged since)
        self._warned: dict[str, tuple[float, int]] = {}

    @classmethod
    def wrap(cls, cache: Any) -> SafeCache:
        """``cache`` itself when it is already a :class:`SafeCache`, else a new wrapper."""
        return cache if isinstance(cache, SafeCache) else cls(cache)

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes not found on the wrapper itself.
        if name == "wrapped":
            raise AttributeError(name)
        return getattr(self.wrapped, name)

    def __repr__(self) -> str:
        return f"SafeCache({type(self.wrapped).__name__}, failing={self._failing})"

    @property
    def failing(self) -> bool:
        """True while the last call to the backend failed."""
        return self._failing

    # -- the cache interface -----------------------------------------------------------------

    def get(self, key: str) -> Any:
        """The cached value, or ``None`` when missing or when the cache fails."""
        return self._call("get", None, key)

    def set(self, key: str, value: Any, timeout: int | None = None) -> bool:
        """Store ``value``; ``False`` when the cache fails."""
        return bool(self._call("set", False, key, value, timeout=timeout))

    def add(self, key: str, value: Any, timeout: int | None = None) -> bool:
        """Store ``value`` unless ``key`` exists; ``False`` when it exists or the cache fails."""
        return bool(self._call("add", False, key, value, timeout=timeout))

    def delete(self, key: str) -> bool:
        """Remove ``key``; ``False`` when the cache fails."""
        return bool(self._call("delete", False, key))

    def clear(self) -> bool:
        """Empty the cache; ``False`` when the cache fails."""
        return bool(self._call("clear", False))

    # -- internals ---------------------------------------------------------------------------

    def _call(self, operation: str, fallback: Any, *args: Any, **kwargs: Any) -> Any:
        if self._down_until and self._clock() < self._down_until:
            return fallback
        try:
            result = getattr(self.wrapped, operation)(*args, **kwargs)
        except Exception as exc:  # any backend error is a miss: the cache is an optimisation
            self._failed(operation, exc)
            return fallback
        if self._failing:
            self._recovered()
        return result

    def _failed(self, operation: str, exc: Exception) -> None:
        now = self._clock()
        with self._lock:
            self._failing = True
            self._down_until = now + self.retry_after
            last, suppressed = self._warned.get(operation, (None, 0))
            if last is not None and now - last < self.warn_every:
                self._warned[operation] = (last, suppressed + 1)
                return
            self._warned[operation] = (now, 0)
        # The exception's text may name hosts or keys; its type says enough.
        log.warning(
            "connectwise cache %s failed; going to ConnectWise or the database instead",
            operation,
            extra={
                "cw_cache_operation": operation,
                "cw_error": type(exc).__name__,
                "cw_errors_not_logged": suppressed,
                "cw_retry_after_s": self.retry_after,
            },
        )

    def _recovered(self) -> None:
        with self._lock:
            if not self._failing:
                return
            self._failing = False
            self._down_until = 0.0
            self._warned.clear()
        log.info("connectwise cache answers again", extra={"cw_cache_operation": "recovered"})
