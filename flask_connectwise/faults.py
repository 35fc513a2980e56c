"""Faults that are not ConnectWise's answers: database outages and unexpected errors.

A database that is down, restarting or unreachable is no one change's fault: the worker rolls
back, waits and tries again, and a route answers 503 "temporarily unavailable". Anything else
that goes wrong while delivering one change is that change's failure.

Such errors are logged by :func:`log_fields`: the error's type and where it was raised, never its
text (a database error's text holds the SQL and its parameters, a ``UnicodeEncodeError`` holds
the whole string it could not encode, which may be a secret).
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import sqlalchemy.exc as sa_exc


class DatabaseUnavailableError(Exception):
    """The database could not be used; raised in place of a host hook's database error."""


#: Errors that mean the database, or the connection to it, cannot be used right now.
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,  # the connection pool's
    sa_exc.PendingRollbackError,  # an earlier database error in the same session
    DatabaseUnavailableError,
)
#: Every error that comes from the database (a constraint, bad SQL... as well as an outage).
DATABASE_ERRORS: tuple[type[BaseException], ...] = (sa_exc.DBAPIError, *OUTAGE_ERRORS)


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and what caused it (``raise … from`` or raised while handling), nearest first."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def outage_cause(exc: BaseException) -> BaseException | None:
    """The database outage behind ``exc`` (itself or a cause), or ``None``."""
    for error in _chain(exc):
        if isinstance(error, OUTAGE_ERRORS):
            return error
        if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
            return error
    return None


def database_cause(exc: BaseException) -> BaseException | None:
    """The database error behind ``exc`` (itself or a cause), or ``None``."""
    return next((e for e in _chain(exc) if isinstance(e, DATABASE_ERRORS)), None)


def error_name(exc: BaseException) -> str:
    """``OperationalError``; for a wrapped driver error also the driver's, e.g.
    ``OperationalError(AdminShutdown)``. Never the error's text."""
    name = type(exc).__name__
    orig = getattr(exc, "orig", None)
    if isinstance(orig, BaseException):
        name = f"{name}({type(orig).__name__})"
    return name


def raised_at(exc: BaseException) -> str | None:
    """``file.py:123 in function`` of the innermost frame, to find a bug without the text."""
    tb = exc.__traceback__
    if tb is None:
        return None
    while tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code
    return f"{os.path.basename(code.co_filename)}:{tb.tb_lineno} in {code.co_name}"


def new_incident() -> str:
    """A short id that ties an answer or a change's error to its log line."""
    return f"err-{uuid.uuid4().hex[:8]}"


def log_fields(exc: BaseException, **extra: Any) -> dict[str, Any]:
    """Structured, redacted log fields for an unexpected error (``extra=`` of a log call)."""
    fields: dict[str, Any] = {"cw_error": error_name(exc), "cw_raised_at": raised_at(exc)}
    fields.update(extra)
    return fields


def unexpected_reason(exc: BaseException, incident: str, *, final: bool) -> str:
    """What an admin reads on a change an unexpected error stopped: plain words, what to do,
    and the incident id of the log line (never the error's text)."""
    from .errors import CredentialsUnusableError

    if isinstance(exc, UnicodeError | CredentialsUnusableError):
        cause = (
            "this tenant's stored ConnectWise settings hold characters ConnectWise cannot take "
            "(keys and the client id are plain ASCII letters and digits). Re-enter the "
            "tenant's ConnectWise credentials"
        )
    else:
        cause = (
            f"delivery stopped on an unexpected error ({type(exc).__name__}). Have the cause "
            f"looked into (the server log has it under {incident})"
        )
    if final:
        return (
            f"Needs attention: {cause}, then retry this change. It was set aside so that "
            f"other changes keep going. [{incident}]"
        )
    return f"Not delivered yet: {cause}. The change stays queued and is tried again. [{incident}]"
