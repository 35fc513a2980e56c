"""Text an admin reads: plain words for errors, HTML escaping, CSV neutralising."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeVar, overload

from markupsafe import Markup, escape

from ..crypto import CryptoError, DecryptionError, KeyConfigurationError, UnknownKeyError
from ..errors import ConnectWiseError

__all__ = ["crypto_message", "csv_safe", "error_message", "plain_text", "sentence", "timestamp"]

T = TypeVar("T")

#: What makes a spreadsheet read a cell as a formula (OWASP "CSV injection"), fullwidth forms too.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def timestamp(value: datetime) -> str:
    """A stored time as an operator reads it: to the second, with its time zone
    (``2026-11-25 15:13:30 UTC``). The tables store naive UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def crypto_message(exc: CryptoError) -> str:
    """What an admin should read when the stored secrets cannot be used."""
    if isinstance(exc, KeyConfigurationError):
        return (
            "The encryption keys are not configured (CONNECTWISE_ENCRYPTION_KEYS), so "
            "credentials cannot be stored or read. Ask your operator to set them."
        )
    if isinstance(exc, UnknownKeyError | DecryptionError):
        return (
            "The stored credentials cannot be read with the configured encryption keys. "
            "Enter the keys again, or restore the encryption key they were stored with."
        )
    return "The stored credentials cannot be read. Enter the keys again."


def sentence(text: str) -> str:
    """``text`` ending as a sentence does, so that another sentence can follow it."""
    text = text.rstrip()
    return text if not text or text[-1] in ".!?…" else text + "."


def error_message(exc: Exception) -> str:
    """What an admin should read about ``exc``: ConnectWise's safe words, or a pointer to the
    log; always a whole sentence (a message that follows it never runs on)."""
    if isinstance(exc, CryptoError):
        return crypto_message(exc)
    if isinstance(exc, ConnectWiseError):
        return sentence(exc.message)
    return "Something went wrong; the details are in the server log."


@overload
def plain_text(text: None) -> None: ...
@overload
def plain_text(text: object) -> Markup: ...
def plain_text(text: object) -> Markup | None:
    """``text`` escaped for HTML, unless it is already :class:`~markupsafe.Markup`.

    Flask-Admin renders field descriptions with ``|safe``: every description of our forms goes
    through this, so text from ConnectWise or a user (a board status, an error) is never HTML.
    """
    if text is None:
        return None
    if isinstance(text, Markup):
        return text
    return escape(str(text))


def csv_safe(value: T) -> T | str:
    """``value`` for a CSV/spreadsheet cell: text that a spreadsheet would run as a formula
    (starting with ``= + - @``, a tab or a line break, after any leading spaces) gets a ``'``
    in front, so it is shown as text. Other values are returned unchanged."""
    if not isinstance(value, str):
        return value
    text = str(value)  # Markup too: the cell is plain text
    if text.lstrip(" ").startswith(_FORMULA_STARTS):
        return "'" + text
    return text
