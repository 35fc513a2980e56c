"""Configuration: defaults, then environment variables, then the ``config`` given to
:func:`example_app.create_app`.

Environment variables read:

=============================== ============================================================
``SECRET_KEY``                  Flask's session key (default: generated once into
                                ``instance/secret_key``)
``DATABASE_URL``                any SQLAlchemy URL (default: SQLite ``instance/example.db``)
``CONNECTWISE_DEMO``            ``1`` demo mode on, ``0`` off; unset: on unless real (non-
                                loopback) ConnectWise credentials are stored
``CONNECTWISE_ENCRYPTION_KEYS`` the extension's keys, comma separated (default: the key file
                                ``instance/connectwise_keys``, generated in demo mode)
``CONNECTWISE_SANDBOX_PORT``    demo sandbox port (default 0: a free port)
``REDIS_URL``                   share the search cache through Redis (default: in-process)
``EXAMPLE_INSTANCE_PATH``       where the instance folder is (default ``<repo>/instance``)
=============================== ============================================================
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

SECRET_KEY_FILE = "secret_key"  # noqa: S105 - a file name, not a secret
KEYS_FILE = "connectwise_keys"
DATABASE_FILE = "example.db"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_flag(name: str) -> bool | None:
    """``True``/``False`` for a yes/no environment variable, ``None`` when unset or blank."""
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise RuntimeError(f"{name} must be 1 or 0 (got {value!r})")


def write_private(path: Path, text: str) -> None:
    """Create ``path`` readable by its owner only (``0600``) holding ``text``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")


def read_or_create(path: Path, make: Any) -> str:
    """The stripped content of ``path``, creating it with ``make()`` first when missing."""
    if not path.exists():
        with contextlib.suppress(FileExistsError):  # another process created it first
            write_private(path, make())
    return path.read_text(encoding="utf-8").strip()


def keys_file(app: Flask) -> Path:
    """The instance file holding the generated encryption key."""
    return Path(app.instance_path) / KEYS_FILE


def load(app: Flask, overrides: Mapping[str, Any] | None = None) -> None:
    """Fill ``app.config``: defaults, environment, then ``overrides``."""
    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    config = app.config
    config.update(
        SQLALCHEMY_DATABASE_URI=os.environ.get("DATABASE_URL")
        or f"sqlite:///{instance / DATABASE_FILE}",
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True},
        WTF_CSRF_TIME_LIMIT=None,  # tokens live as long as the session
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_HTTPONLY=True,
        CONNECTWISE_DEMO=env_flag("CONNECTWISE_DEMO"),
        CONNECTWISE_SANDBOX_PORT=int(os.environ.get("CONNECTWISE_SANDBOX_PORT") or 0),
        CONNECTWISE_ADMIN_VIEWS=False,  # example_app.admin adds them, for logged-in users only
        CACHE_TYPE="SimpleCache",
        CACHE_DEFAULT_TIMEOUT=300,
        CACHE_THRESHOLD=5000,  # SimpleCache's default of 500 entries is small for a search cache
    )
    if os.environ.get("SECRET_KEY"):
        config["SECRET_KEY"] = os.environ["SECRET_KEY"]
    if os.environ.get("CONNECTWISE_ENCRYPTION_KEYS"):
        config["CONNECTWISE_ENCRYPTION_KEYS"] = os.environ["CONNECTWISE_ENCRYPTION_KEYS"]
    if os.environ.get("REDIS_URL"):
        config.update(CACHE_TYPE="RedisCache", CACHE_REDIS_URL=os.environ["REDIS_URL"])
    config.update(overrides or {})
    if not config.get("SECRET_KEY"):
        config["SECRET_KEY"] = read_or_create(
            instance / SECRET_KEY_FILE, lambda: secrets.token_urlsafe(48)
        )
    if not config.get("CONNECTWISE_ENCRYPTION_KEYS") and keys_file(app).exists():
        config["CONNECTWISE_ENCRYPTION_KEYS"] = keys_file(app).read_text("utf-8").strip()
