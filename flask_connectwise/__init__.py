"""flask-connectwise: log operators' changes from a Flask app into ConnectWise Manage tickets."""

from .client import ConnectWiseClient
from .errors import (
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    ConnectWiseError,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    StatusNotOnBoardError,
    TimeoutError,
    UnavailableError,
    ValidationError,
)
from .records import BoardStatus, Member, Note, SystemInfo, Ticket, TimeEntry

__version__ = "0.1.0"

__all__ = [
    "AuthenticationError",
    "BoardStatus",
    "ConfigurationError",
    "ConflictError",
    "ConnectWiseClient",
    "ConnectWiseError",
    "ForbiddenError",
    "Member",
    "NotFoundError",
    "Note",
    "RateLimitedError",
    "StatusNotOnBoardError",
    "SystemInfo",
    "Ticket",
    "TimeEntry",
    "TimeoutError",
    "UnavailableError",
    "ValidationError",
]
