"""The exception hierarchy.

Every error raised because of ConnectWise derives from :class:`ConnectWiseError`. Messages are
safe to show to an operator: they never contain a key, the client id or a request header.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One entry of ConnectWise's ``errors`` list (a validation problem on one field)."""

    code: str
    message: str
    field: str | None = None
    resource: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {
            "code": self.code,
            "message": self.message,
            "field": self.field,
            "resource": self.resource,
        }


class ConnectWiseError(Exception):
    """Base class for every failure talking to ConnectWise.

    ``status`` is the HTTP status ConnectWise answered (``None`` when no answer arrived),
    ``code`` ConnectWise's error code when it sent one. ``retryable`` tells whether the client
    may repeat the request at once; ``permanent`` whether repeating it can ever succeed.
    """

    http_status: int = 502
    error_code: str = "connectwise_error"
    retryable: bool = False
    #: True when an admin must act (credentials, permissions, base URL) before it can work;
    #: the same request may then succeed, so delivery keeps retrying it.
    needs_admin: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        errors: tuple[FieldError, ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.errors = errors

    @property
    def permanent(self) -> bool:
        """True when sending the same request again can never succeed: ConnectWise refused
        its content (400 validation, 404 not found, other 4xx about the request itself).

        Not permanent: no answer, timeouts, 5xx, 429, 408, 409 (record in use), and the
        refusals an admin can fix (401, 403, 407, redirects, a bad base URL).
        """
        status = self.status
        return status is not None and 400 <= status < 500 and status not in _TRANSIENT_4XX

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}({self.message!r}, status={self.status!r}, code={self.code!r})"


#: 4xx answers that may pass later without the request changing (see ``permanent``).
_TRANSIENT_4XX = frozenset({401, 403, 407, 408, 409, 421, 423, 425, 429})


class ConfigurationError(ConnectWiseError):
    """The client was given settings it cannot work with (bad base URL, missing key...)."""

    http_status = 400
    error_code = "configuration_error"
    needs_admin = True

    @property
    def permanent(self) -> bool:
        return False  # an admin fixes the settings; the same change can then go out


class CredentialsUnusableError(ConfigurationError):
    """Stored credentials hold characters ConnectWise cannot receive (keys and client ids are
    printable ASCII); stored before input was checked, or written around the checks."""

    http_status = 503
    error_code = "credentials_unusable"


class AuthenticationError(ConnectWiseError):
    """ConnectWise refused the keys, company id or client id (HTTP 401, or on cloud a 404
    that a ``system/info`` call confirmed to be about the credentials)."""

    error_code = "connectwise_auth_failed"
    needs_admin = True

    @property
    def permanent(self) -> bool:
        return False  # an admin corrects the credentials; the same change can then go out


class ForbiddenError(ConnectWiseError):
    """The API member's security role does not allow the call (HTTP 403)."""

    error_code = "connectwise_forbidden"
    needs_admin = True


class NotFoundError(ConnectWiseError):
    """The ticket, member or resource does not exist (HTTP 404)."""

    http_status = 404
    error_code = "not_found"

    @property
    def permanent(self) -> bool:
        return True


class ConnectWiseValidationError(ConnectWiseError):
    """ConnectWise rejected the content (HTTP 400), with its per-field errors in ``errors``.

    Permanent: the same request is refused again (also :class:`StatusNotOnBoardError`, which
    the client raises before sending).
    """

    http_status = 400
    error_code = "connectwise_validation"

    @property
    def permanent(self) -> bool:
        return True


class ConflictError(ConnectWiseError):
    """ConnectWise reported a conflict, e.g. a record in use (HTTP 409)."""

    http_status = 409
    error_code = "connectwise_conflict"


class RateLimitedError(ConnectWiseError):
    """ConnectWise answered 429; ``retry_after`` is the wait it asked for, in seconds."""

    http_status = 429
    error_code = "connectwise_rate_limited"
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class ConnectWiseTimeoutError(ConnectWiseError):
    """ConnectWise did not answer within the timeout.

    ``sent`` is True when the request may have reached ConnectWise (a read timeout): the
    outcome of a write is then unknown and must be looked up before it is repeated.
    """

    http_status = 504
    error_code = "connectwise_timeout"
    retryable = True

    def __init__(self, message: str, *, sent: bool, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.sent = sent


class UnavailableError(ConnectWiseError):
    """ConnectWise could not be reached, failed (5xx) or answered something unreadable.

    ``sent`` is True when the request may have been applied (a 5xx, a dropped connection after
    sending, an unreadable answer): a write's outcome is then unknown.
    """

    error_code = "connectwise_unavailable"
    retryable = True

    def __init__(self, message: str, *, sent: bool, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.sent = sent


class StatusNotOnBoardError(ConnectWiseValidationError):
    """The requested status does not belong to the ticket's board."""

    error_code = "invalid_status"


#: The old names, kept for integrators (``TimeoutError`` shadows the builtin, ``ValidationError``
#: collides with WTForms'): prefer ``ConnectWiseTimeoutError`` and ``ConnectWiseValidationError``.
TimeoutError = ConnectWiseTimeoutError
ValidationError = ConnectWiseValidationError


class MemberUnusableError(ConnectWiseError):
    """The change's member cannot be used: it does not exist, is inactive, or is an API member.

    Permanent: nothing was written, and sending the change again cannot help until the member
    (or the operator's link to it) is corrected.
    """

    http_status = 400
    error_code = "member_unusable"

    @property
    def permanent(self) -> bool:
        return True


class MemberRequiredError(ConnectWiseError):
    """Time was asked for, but no ConnectWise member is linked to the caller's user and
    ``CONNECTWISE_REQUIRE_MEMBER`` is on."""

    http_status = 400
    error_code = "member_required"

    def __init__(self, message: str | None = None, **kwargs: object) -> None:
        super().__init__(
            message
            or (
                "No ConnectWise member is linked to your user: time cannot be logged (an "
                "administrator can link one, or set CONNECTWISE_REQUIRE_MEMBER = False)"
            ),
            **kwargs,  # type: ignore[arg-type]
        )

    @property
    def permanent(self) -> bool:
        return True
