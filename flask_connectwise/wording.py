"""Small helpers for the words operators read."""

from __future__ import annotations

import re

__all__ = ["aside"]

_INNER = re.compile(r"\s*\(([^()]*)\)")


def aside(text: str) -> str:
    """``text`` in parentheses, its own parenthesised parts turned into ``": part"``, so an
    operator never reads ``(ConnectWise failed (HTTP 503))``: ``(ConnectWise failed: HTTP 503)``."""
    flat = str(text)
    while True:
        changed = _INNER.sub(
            lambda m: ": " + m.group(1).strip() if m.group(1).strip() else "", flat
        )
        if changed == flat:
            break
        flat = changed
    flat = flat.replace("(", "").replace(")", "")  # unbalanced leftovers
    return f"({flat.strip()})"
