"""ConnectWise-shaped error answers: ``{"code", "message", "errors"?}``."""

from __future__ import annotations

from typing import Any

GENERIC = "ConnectWiseApi"
# Codes for statuses without a request-specific meaning (faults, rate limit, 405, 415). ConnectWise
# answers generic errors as ``{"code": "ConnectWiseApi", "message": ..., "errors": null}``
# (CONNECTWISE_API.md §10); only 400/401/403/404 have codes of their own (§6).
STATUS_CODES: dict[int, tuple[str, str]] = {
    400: ("InvalidObject", "The request is invalid."),
    401: ("Unauthorized", "Authentication failed."),
    403: ("Security", "You do not have security permission to perform this action."),
    404: ("NotFound", "The requested resource was not found."),
    405: (GENERIC, "The requested resource does not support this http method."),
    409: (GENERIC, "The record is in use or was changed by another user."),
    415: (GENERIC, "The request entity's media type is not supported."),
    429: (GENERIC, "Too many requests. Please retry after the given delay."),
    500: (GENERIC, "An unexpected error occurred. The operation timed out."),
    502: (GENERIC, "The server received an invalid response from an upstream server."),
    503: (GENERIC, "The service is temporarily unavailable."),
    504: (GENERIC, "The server did not answer in time."),
}


class CWError(Exception):
    """An error answered to the client as ConnectWise would (status + JSON body)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors
        self.headers = headers or {}
        #: Sandbox-only keys after ConnectWise's (the 404 help: control routes and members).
        self.extra: dict[str, Any] = {}

    def body(self) -> dict[str, Any]:
        """The JSON body ConnectWise sends for this error."""
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.errors is not None or self.code == GENERIC:
            out["errors"] = self.errors  # generic errors carry "errors": null
        out.update(self.extra)
        return out


def for_status(status: int, message: str | None = None) -> CWError:
    """A generic ConnectWise error for ``status`` (used by faults and the rate limit)."""
    code, default = STATUS_CODES.get(status, (GENERIC, "The request failed."))
    return CWError(status, code, message or default)


def not_found(message: str) -> CWError:
    """404 ``NotFound``, e.g. ``Ticket 123 not found``."""
    return CWError(404, "NotFound", message)


def bad_request(message: str) -> CWError:
    """400 without a field list (malformed request, conditions syntax)."""
    return CWError(400, "InvalidObject", message)


def invalid(resource: str, field: str, code: str, message: str) -> CWError:
    """400 ``InvalidObject`` naming one invalid field, the shape of ConnectWise validation."""
    return CWError(
        400,
        "InvalidObject",
        f"{resource} object is invalid",
        [{"code": code, "message": message, "resource": resource, "field": field}],
    )


def missing(resource: str, field: str) -> CWError:
    """A required field is absent (``MissingRequiredField`` inside ``InvalidObject``)."""
    return invalid(resource, field, "MissingRequiredField", f"The {field} field is required.")
