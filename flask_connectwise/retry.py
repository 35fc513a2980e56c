"""Retry policy: full-jitter exponential backoff with a bounded number of tries and total time.

See "Exponential Backoff and Jitter" (AWS Architecture Blog): the wait before try ``n`` is a
uniform random value in ``[0, min(cap, base * 2**n)]``. A ``Retry-After`` from the server is
honoured as a lower bound.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long the client repeats a call that may succeed later."""

    #: Tries in all, the first included. ``1`` disables retries.
    max_attempts: int = 4
    #: Seconds; the first backoff window.
    base: float = 0.25
    #: Seconds; the largest backoff window.
    cap: float = 8.0
    #: Seconds; no retry starts once this much time has passed since the first try, and no
    #: ``Retry-After`` longer than what is left is waited for.
    deadline: float = 30.0
    #: Random source (replaceable in tests).
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base < 0 or self.cap < 0 or self.deadline < 0:
            raise ValueError("backoff times must not be negative")

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based)."""
        window = min(self.cap, self.base * (2 ** (attempt - 1)))
        delay = self.rng.uniform(0, window)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay

    def allows(self, attempt: int, elapsed: float, delay: float) -> bool:
        """Whether another try may start after ``attempt`` tries and ``elapsed`` seconds."""
        return attempt < self.max_attempts and elapsed + delay <= self.deadline


NO_RETRY = RetryPolicy(max_attempts=1)
