"""The one set of input rules: tenant ids, texts, numbers, and the :class:`InputError` they raise.

Used by the JSON routes, the admin forms, the credentials store and the CLI, so that what one
accepts the others accept too. Flask-free and dependency-free.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping

#: The largest id ConnectWise stores (a signed 32-bit integer).
MAX_ID = 2**31 - 1
#: The shortest time entry ConnectWise is sent: one minute.
MIN_HOURS = 1 / 60
MAX_HOURS = 24.0
MAX_MINUTES = 1440

#: A tenant id: 1-64 ASCII letters, digits or ``_.:-``. ``*`` (the flags' "every tenant") never
#: matches, so no credentials can be stored for a tenant the routes cannot address.
TENANT_ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
#: The ``Idempotency-Key`` header of ``/log-change``.
IDEMPOTENCY_KEY_RE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
#: The line breaks and tab a multi-line text (a note) may hold; every other control character
#: is refused. ``\r`` is allowed because browsers send a textarea's line breaks as ``\r\n``.
MULTILINE_CONTROLS = frozenset("\n\r\t")

_ASCII_DIGITS_RE = re.compile(r"[0-9]{1,10}")


class InputError(ValueError):
    """Invalid input; ``field`` names the offending field (camelCase, as the client sent it).

    ``code`` is the machine-readable error of the JSON answer (``validation_error`` unless a
    rule says otherwise, e.g. ``invalid_ticket_id``).
    """

    def __init__(self, field: str, message: str, *, code: str = "validation_error") -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.code = code


# -- tenant ids ------------------------------------------------------------------------------


def is_tenant_id(value: object) -> bool:
    """Whether ``value`` is a tenant id the routes can address (never ``*``)."""
    return isinstance(value, str) and TENANT_ID_RE.fullmatch(value) is not None


def check_tenant_id(value: object, field: str = "tenantId") -> str:
    """``value`` if it is a tenant id (see :data:`TENANT_ID_RE`), else :class:`InputError`."""
    if not is_tenant_id(value):
        raise InputError(
            field,
            "A tenant id is 1-64 ASCII letters, digits, '_', '.', ':' or '-' (one tenant: not '*')",
        )
    return str(value)


# -- texts -----------------------------------------------------------------------------------


def check_text(key: str, value: str, *, multiline: bool = False) -> str:
    """``value`` unchanged, or :class:`InputError` on ``key`` when it holds a control character
    (a multi-line text may hold line breaks and tabs) or an unpaired surrogate (JSON's
    ``"\\ud800"``), which no database or HTTP call can carry."""
    if "\x00" in value:
        raise InputError(key, f"{key} must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(key, f"{key} holds an invalid character (an unpaired surrogate)") from None
    allowed = MULTILINE_CONTROLS if multiline else frozenset()
    if any(unicodedata.category(ch) == "Cc" and ch not in allowed for ch in value):
        raise InputError(key, f"{key} must not contain control characters")
    return value


def check_ascii(key: str, value: str) -> str:
    """``value`` unchanged, or :class:`InputError` on ``key`` unless it is printable ASCII
    (ConnectWise keys and client ids are: an emoji or a pasted curly quote is a typo)."""
    if not all(" " <= ch <= "~" for ch in value):
        raise InputError(
            key,
            f"{key} may hold only ASCII letters, digits and punctuation; "
            "retype it (a pasted curly quote or emoji is not allowed)",
        )
    return value


def optional_text(
    payload: Mapping[str, object],
    key: str,
    *,
    max_length: int,
    multiline: bool = False,
    ascii_only: bool = False,
) -> str | None:
    """``payload[key]`` stripped, ``None`` when missing or blank; :class:`InputError` when it
    is not a string, longer than ``max_length`` or breaks :func:`check_text` (and
    :func:`check_ascii` with ``ascii_only``)."""
    value = payload.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(key, f"{key} must be a string")
    if len(value) > max_length:
        raise InputError(key, f"{key} must be at most {max_length} characters")
    value = check_text(key, value, multiline=multiline).strip()
    if not value:
        return None
    return check_ascii(key, value) if ascii_only else value


def required_text(
    payload: Mapping[str, object],
    key: str,
    *,
    max_length: int,
    multiline: bool = False,
    ascii_only: bool = False,
) -> str:
    """As :func:`optional_text`, but a missing or blank value is an :class:`InputError`."""
    value = optional_text(
        payload, key, max_length=max_length, multiline=multiline, ascii_only=ascii_only
    )
    if value is None:
        raise InputError(key, f"{key} is required")
    return value


def check_idempotency_key(value: str | None) -> str | None:
    """The ``Idempotency-Key`` header, ``None`` when absent; :class:`InputError` unless 1-128
    ASCII letters, digits or ``_.:-``."""
    if value is not None and not IDEMPOTENCY_KEY_RE.fullmatch(value):
        raise InputError("Idempotency-Key", "Idempotency-Key must be 1-128 letters, digits or _.:-")
    return value


# -- numbers ---------------------------------------------------------------------------------


def parse_ticket_id(value: str) -> int:
    """A ticket id from a URL: ASCII digits only (``int()`` would also read ``١٢`` as 12),
    1 to :data:`MAX_ID`."""
    if not _ASCII_DIGITS_RE.fullmatch(value) or not 0 < int(value) <= MAX_ID:
        raise InputError(
            "ticketId", "The ticket id must be a positive integer", code="invalid_ticket_id"
        )
    return int(value)


def optional_id(payload: Mapping[str, object], key: str) -> int | None:
    """``payload[key]`` as a positive id (a JSON integer, 1 to :data:`MAX_ID`), or ``None``."""
    value = payload.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_ID:
        raise InputError(key, f"{key} must be a positive integer")
    return value


def optional_whole_number(
    payload: Mapping[str, object], key: str, *, low: int, high: int
) -> int | None:
    """``payload[key]`` as an integer from ``low`` to ``high``; ``None`` when missing or ``""``
    (a blank form field)."""
    value = payload.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(key, f"{key} must be a whole number")
    if not low <= value <= high:
        raise InputError(key, f"{key} must be between {low} and {high}")
    return value


def _optional_number(
    payload: Mapping[str, object], key: str, *, low: float, high: float
) -> float | None:
    value = payload.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(key, f"{key} must be a number")
    if not low <= value <= high:
        raise InputError(key, f"{key} must be at least {low:.4g} (one minute) and at most {high:g}")
    return float(value)


def optional_hours(payload: Mapping[str, object], key: str = "hours") -> float | None:
    """``payload[key]`` as hours: one minute (1/60) to 24, or ``None``."""
    return _optional_number(payload, key, low=MIN_HOURS, high=MAX_HOURS)


def optional_minutes(payload: Mapping[str, object], key: str = "minutes") -> float | None:
    """``payload[key]`` as minutes: 1 to 1440, or ``None``."""
    return _optional_number(payload, key, low=1, high=MAX_MINUTES)


def check_hours(
    hours: float | None, field: str = "hours", *, optional: bool = True
) -> float | None:
    """``hours`` if it is a time entry ConnectWise takes (one minute to 24 hours), else
    :class:`InputError` naming ``field``. With ``optional``, ``None`` (the tenant's default)
    and ``0`` (no time entry) pass too. For Python callers (``log_change``); JSON bodies use
    :func:`optional_hours`."""
    if hours is None and optional:
        return None
    if isinstance(hours, bool) or not isinstance(hours, int | float) or hours != hours:
        raise InputError(field, f"{field} must be a number")
    if hours == 0 and optional:
        return 0.0
    # A little slack: minutes are stored as hours rounded to 4 places (1 min = 0.0167 h).
    if hours * 60 < 1 - 1e-6:
        raise InputError(field, f"{field} must be at least one minute (1/60 hour)")
    if hours > MAX_HOURS:
        raise InputError(field, f"{field} must be at most {MAX_HOURS:g}")
    return float(hours)
