"""Injected faults (FIFO, consumed per matching request) and a sliding-window rate limit."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from fnmatch import fnmatchcase

#: ``slow_apply``: the request is held ``delay`` seconds and only then applied and answered (a
#: slow server: a client that timed out meanwhile cannot know the write will land).
KINDS = (
    "status",
    "timeout",
    "apply_then_timeout",
    "apply_then_drop",
    "slow_apply",
    "invalid_json",
    "reset",
)
API_PREFIX = "apis/3.0/"


@dataclass
class Fault:
    """One injected fault; ``remaining`` counts down (``None`` = forever)."""

    path: str
    kind: str
    remaining: int | None = 1
    status: int | None = None
    method: str | None = None
    delay: float | None = None
    retry_after: int | None = None
    #: The error body's ``message`` of a ``status`` fault (default: the status's usual one).
    message: str | None = None

    def matches(self, method: str, path: str) -> bool:
        """True when ``path`` (after ``apis/3.0/``) and ``method`` fit this fault."""
        if self.method and self.method.upper() != method.upper():
            return False
        return path_matches(self.path, path)


def path_matches(pattern: str, path: str) -> bool:
    """Glob match per segment: ``*`` is one segment, ``**`` any number; ``"*"`` alone is all."""
    pattern = pattern.strip().strip("/")
    if pattern.startswith(API_PREFIX):
        pattern = pattern[len(API_PREFIX) :]
    if pattern in ("*", "**", ""):
        return True
    return _match(pattern.lower().split("/"), path.strip("/").lower().split("/"))


def _match(pats: list[str], parts: list[str]) -> bool:
    if not pats:
        return not parts
    if pats[0] == "**":
        return any(_match(pats[1:], parts[i:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatchcase(parts[0], pats[0]) and _match(pats[1:], parts[1:])


def make_fault(
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
    """Validate arguments (``count <= 0`` means every matching request, forever)."""
    if kind not in KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(KINDS)}")
    if kind == "status" and (status is None or not 100 <= int(status) <= 599):
        raise ValueError("a 'status' fault needs status=<HTTP status code>")
    return Fault(
        path,
        kind,
        int(count) if int(count) > 0 else None,
        int(status) if status is not None else None,
        method.upper() if method else None,
        float(delay) if delay is not None else None,
        int(retry_after) if retry_after is not None else None,
        str(message) if message is not None else None,
    )


class FaultQueue:
    """Thread-safe FIFO of faults."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        """Queue ``fault`` behind the others."""
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        """Drop every pending fault."""
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[Fault]:
        """A copy of the pending faults."""
        with self._lock:
            return list(self._faults)

    def take(self, method: str, path: str) -> Fault | None:
        """Consume one use of the first fault matching this request."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining <= 0:
                            self._faults.remove(fault)
                    return fault
        return None


class RateLimiter:
    """Sliding window: at most ``max_requests`` accepted per ``per_seconds``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hits: deque[float] = deque()
        self.max_requests: int | None = None
        self.per_seconds = 60.0
        self.retry_after: int | None = None

    def configure(
        self, max_requests: int | None, per_seconds: float = 60.0, retry_after: int | None = None
    ) -> None:
        """Set the limit (``max_requests=None`` disables it) and forget past requests."""
        with self._lock:
            self.max_requests = max_requests
            self.per_seconds = float(per_seconds)
            self.retry_after = retry_after
            self._hits.clear()

    def check(self) -> int | None:
        """Record a request; ``None`` if allowed, else the ``Retry-After`` seconds."""
        with self._lock:
            if self.max_requests is None:
                return None
            now = time.monotonic()
            while self._hits and self._hits[0] <= now - self.per_seconds:
                self._hits.popleft()
            if len(self._hits) < self.max_requests:
                self._hits.append(now)
                return None
            if self.retry_after is not None:
                return self.retry_after
            return max(1, math.ceil(self._hits[0] + self.per_seconds - now))
