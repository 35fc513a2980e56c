"""Alembic wiring: the extension's revisions ship in the package as the ``connectwise`` branch.

A host using Flask-Migrate adds one line after creating its ``Migrate``::

    migrate = Migrate(app, db)
    flask_connectwise.migrate.register(migrate)      # then: flask db upgrade heads

The extension's tables then come and go with ``flask db upgrade heads`` / ``downgrade``, next to
the host's own revisions, and ``flask db migrate`` sees no difference for them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

#: The branch label of the extension's revisions.
BRANCH = "connectwise"
VERSIONS = Path(__file__).resolve().parent / "migrations" / "versions"


def versions_path() -> str:
    """Directory holding the extension's Alembic revisions."""
    return str(VERSIONS)


def add_version_location(config: Any) -> Any:
    """Add the extension's revisions to an Alembic ``Config``'s ``version_locations``."""
    script_location = config.get_main_option("script_location") or "migrations"
    host_versions = os.path.join(script_location, "versions")
    locations = config.get_main_option("version_locations")
    current = locations.split(os.pathsep) if locations else [host_versions]
    if versions_path() not in current:
        current.append(versions_path())
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", os.pathsep.join(current))
    return config


def register(migrate: Any) -> Any:
    """Make a Flask-Migrate ``Migrate`` find the extension's revisions."""
    migrate.configure(add_version_location)
    return migrate
