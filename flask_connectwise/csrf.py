"""The CSRF token and its check, shared by the JSON routes and the admin.

Flask-WTF's token when Flask-WTF is installed (so a host running ``CSRFProtect`` accepts our
requests and we accept its tokens); otherwise a random token kept in the Flask session.
"""

from __future__ import annotations

import hmac
import secrets

from flask import session

#: Where the fallback token lives in the session (only without Flask-WTF).
SESSION_KEY = "_connectwise_csrf"


def uses_flask_wtf() -> bool:
    """Whether tokens are Flask-WTF's (it is installed)."""
    try:
        import flask_wtf.csrf  # noqa: F401
    except ImportError:  # pragma: no cover - Flask-WTF is optional
        return False
    return True


def csrf_token() -> str:
    """A CSRF token for this session, to send in the ``X-CSRFToken`` header (the
    ``CONNECTWISE_CSRF_HEADER``) of every state-changing JSON request. Needs a request
    context; Flask-WTF's ``generate_csrf()`` when it is installed."""
    try:
        from flask_wtf.csrf import generate_csrf
    except ImportError:  # pragma: no cover - Flask-WTF is optional
        token = session.get(SESSION_KEY)
        if not token:
            token = session[SESSION_KEY] = secrets.token_urlsafe(32)
        return str(token)
    return str(generate_csrf())


def csrf_valid(token: str | None) -> bool:
    """Whether ``token`` is this session's CSRF token (and, with Flask-WTF, not expired)."""
    if not token:
        return False
    try:
        from flask_wtf.csrf import ValidationError as CSRFError
        from flask_wtf.csrf import validate_csrf
    except ImportError:  # pragma: no cover - Flask-WTF is optional
        expected = session.get(SESSION_KEY)
        return bool(expected) and hmac.compare_digest(str(expected), token)
    try:
        validate_csrf(token)
    except CSRFError:
        return False
    return True
