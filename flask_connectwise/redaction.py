"""Removing a tenant's secrets from text that came back from ConnectWise.

A server (or a proxy in front of it) may echo what it was sent: the client id in another letter
case, the ``Authorization`` header, its base64 value or the decoded ``company+public:private``.
:class:`Redactor` replaces every such form, whatever its letter case, before the text can reach
an answer, a flash, ``last_error``, the change log, the database or a log line.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

__all__ = ["REDACTED", "Redactor", "basic_token"]

REDACTED = "••••"

#: Any ``Basic <token>`` credential, even one we did not send (another company id casing):
#: at least 8 base64 characters, one of them a digit, ``+``, ``/`` or ``=``.
_BASIC_HEADER = r"\bbasic\s+(?=[a-z0-9+/_-]*[0-9+/=])[a-z0-9+/_-]{8,}={0,2}"


def basic_token(company_id: str, public_key: str, private_key: str) -> str:
    """The base64 value of the ``Authorization: Basic`` header ConnectWise expects."""
    raw = f"{company_id}+{public_key}:{private_key}".encode()
    return base64.b64encode(raw).decode("ascii")


def _forms(secret: str) -> set[str]:
    """``secret`` as it may be echoed: as is, percent-encoded, and base64 (padded or not)."""
    forms = {secret, quote(secret, safe=""), quote_plus(secret, safe="")}
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        encoded = encode(secret.encode()).decode("ascii")
        forms |= {encoded, encoded.rstrip("=")}
    return {form for form in forms if form}


class Redactor:
    """Replaces secrets (any letter case, and their encoded forms) and ``Basic`` credentials.

    ``Redactor.for_credentials(company, public, private, client_id)`` covers the keys, the
    client id, ``company+public:private`` and its base64 ``Basic`` value.
    """

    def __init__(self, secrets: Iterable[str | None]) -> None:
        forms: set[str] = set()
        for secret in secrets:
            secret = (secret or "").strip()
            if secret:
                forms |= _forms(secret)
        # Longest first, so a token is replaced whole rather than around a shorter secret.
        parts = [_BASIC_HEADER, *(re.escape(f) for f in sorted(forms, key=len, reverse=True))]
        self._pattern = re.compile("|".join(parts), re.IGNORECASE)

    @classmethod
    def for_credentials(
        cls, company_id: str, public_key: str, private_key: str, client_id: str
    ) -> Redactor:
        company, public, private = company_id.strip(), public_key.strip(), private_key.strip()
        token = basic_token(company, public, private)
        return cls(
            (
                public,
                private,
                client_id,
                f"{company}+{public}:{private}",
                f"{public}:{private}",
                token,
            )
        )

    def __call__(self, text: str) -> str:
        """``text`` with every secret replaced by ``••••``."""
        if not text:
            return text
        return self._pattern.sub(_replacement, text)


def _replacement(match: re.Match[str]) -> str:
    found = match.group(0)
    if found[:5].lower() == "basic" and found[5:6].isspace():
        return f"{found[:5]} {REDACTED}"
    return REDACTED
