"""Checks of the versions of the libraries the extension builds on (docs/versions.md)."""

from __future__ import annotations

from importlib import metadata

#: The oldest Flask-Admin the admin views work with: 2.1 is the first whose SQLAlchemy views take
#: the Flask-SQLAlchemy object (what the extension passes; passing the session is deprecated
#: there). Flask-Admin 1.6 predates Flask 3 and is refused (docs/versions.md says why).
MIN_FLASK_ADMIN = (2, 1)


def installed_version(distribution: str) -> str | None:
    """The installed version of ``distribution``, or None when it is not installed."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _release(version: str) -> tuple[int, ...]:
    parts: list[int] = []
    for piece in version.split("."):
        digits = ""
        for char in piece:
            if not char.isdigit():
                break
            digits += char
        if not digits:
            break
        parts.append(int(digits))
        if digits != piece:
            break
    return tuple(parts)


def check_flask_admin() -> None:
    """Refuse, in plain words, a Flask-Admin older than the admin views need."""
    version = installed_version("flask-admin")
    needed = ".".join(map(str, MIN_FLASK_ADMIN))
    if version is None:
        raise RuntimeError(
            f"flask-connectwise's admin views need Flask-Admin {needed} or newer, "
            "and Flask-Admin is not installed: pip install 'flask-admin>=2.1'"
        )
    if _release(version) < MIN_FLASK_ADMIN:
        raise RuntimeError(
            f"flask-connectwise's admin views need Flask-Admin {needed} or newer, "
            f"but Flask-Admin {version} is installed: pip install 'flask-admin>=2.1' "
            "(see the supported versions in docs/versions.md)"
        )
