"""flask-connectwise: log operators' changes from a Flask app into ConnectWise Manage tickets.

The client, errors and records import without Flask; ``ConnectWise`` (the extension) and the
other Flask parts are imported on first use (type checkers see them through the
``TYPE_CHECKING`` imports below, so nothing of the public API is ``Any``).
"""

from typing import TYPE_CHECKING, Any

from .client import ConnectWiseClient
from .errors import (
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    ConnectWiseError,
    ConnectWiseTimeoutError,
    ConnectWiseValidationError,
    CredentialsUnusableError,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    StatusNotOnBoardError,
    TimeoutError,
    UnavailableError,
    ValidationError,
)
from .records import BoardStatus, Member, Note, SystemInfo, Ticket, TimeEntry

if TYPE_CHECKING:
    from .changelogging import ConnectWiseChangeLogging
    from .csrf import csrf_token
    from .extension import ConnectWise
    from .fields import TicketSearchField
    from .signals import change_failed, change_logged

__version__ = "0.1.0"

_LAZY = {
    "ConnectWise": ("flask_connectwise.extension", "ConnectWise"),
    "TicketSearchField": ("flask_connectwise.fields", "TicketSearchField"),
    "ConnectWiseChangeLogging": ("flask_connectwise.changelogging", "ConnectWiseChangeLogging"),
    "change_logged": ("flask_connectwise.signals", "change_logged"),
    "change_failed": ("flask_connectwise.signals", "change_failed"),
    "csrf_token": ("flask_connectwise.csrf", "csrf_token"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'flask_connectwise' has no attribute {name!r}")


__all__ = [
    "AuthenticationError",
    "BoardStatus",
    "ConfigurationError",
    "ConflictError",
    "ConnectWise",
    "ConnectWiseChangeLogging",
    "ConnectWiseClient",
    "ConnectWiseError",
    "ConnectWiseTimeoutError",
    "ConnectWiseValidationError",
    "CredentialsUnusableError",
    "ForbiddenError",
    "Member",
    "NotFoundError",
    "Note",
    "RateLimitedError",
    "StatusNotOnBoardError",
    "SystemInfo",
    "Ticket",
    "TicketSearchField",
    "TimeEntry",
    "TimeoutError",
    "UnavailableError",
    "ValidationError",
    "change_failed",
    "change_logged",
    "csrf_token",
]
